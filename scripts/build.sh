#!/usr/bin/env bash
# Builds the wasm core and puts it, with the shared entry script, into every task folder:
#   cargo (wasm32, release) → wasm-bindgen --target nodejs → wasm-opt → smoke test → task/*/core
# Usage: scripts/build.sh [--skip-opt]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }
skip_opt=false
[ "${1:-}" = "--skip-opt" ] && skip_opt=true

wasm_bindgen_version=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' Cargo.toml)
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $wasm_bindgen_version"; then
  echo "error: wasm-bindgen $wasm_bindgen_version is needed (found: $(wasm-bindgen --version 2>/dev/null || echo none))" >&2
  echo "hint: run scripts/setup.sh, or: cargo install wasm-bindgen-cli --version $wasm_bindgen_version" >&2
  exit 1
fi

log "building the core for wasm32 (release)"
scripts/build-wasm.sh --cdylib --release

out=target/wasm-pkg
rm -rf "$out"
log "wasm-bindgen --target nodejs"
wasm-bindgen --target nodejs --no-typescript --out-dir "$out" \
  target/wasm-module/wasm32-unknown-unknown/release/databricks_azdo.wasm

if ! $skip_opt; then
  log "wasm-opt -Oz"
  wasm_opt=scripts/node_modules/.bin/wasm-opt
  [ -x "$wasm_opt" ] || { echo "error: $wasm_opt is missing; run scripts/setup.sh" >&2; exit 1; }
  "$wasm_opt" -Oz --strip-debug --strip-producers --enable-reference-types --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-multivalue \
    "$out/databricks_azdo_bg.wasm" -o "$out/databricks_azdo_bg.opt.wasm"
  mv "$out/databricks_azdo_bg.opt.wasm" "$out/databricks_azdo_bg.wasm"
fi

log "smoke test"
expected=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
actual=$(node -e "process.stdout.write(require('./$out/databricks_azdo.js').version())")
[ "$actual" = "$expected" ] || { echo "error: smoke test: version() returned '$actual', expected '$expected'" >&2; exit 1; }
# The agent's Node16 handler (Azure DevOps Server 2022): V8 9.4, no WebAssembly reference types.
node16=scripts/node_modules/node16/bin/node
if [ -x "$node16" ]; then
  actual=$("$node16" -e "process.stdout.write(require('./$out/databricks_azdo.js').version())") || actual="(no answer)"
  [ "$actual" = "$expected" ] || { echo "error: smoke test on Node $("$node16" --version): version() returned '$actual'" >&2; exit 1; }
fi

size=$(wc -c < "$out/databricks_azdo_bg.wasm")
log "wasm size: $((size / 1024)) KB"

for folder in task/*/; do
  rm -rf "$folder/core"
  mkdir -p "$folder/core"
  cp "$out/databricks_azdo.js" "$out/databricks_azdo_bg.wasm" "$folder/core/"
  cp task/index.js "$folder/index.js"
  cp task/http.js "$folder/http.js"
done
log "task folders ready: $(ls -d task/*/ | tr '\n' ' ')"
