#!/usr/bin/env bash
# Builds the library for wasm32-unknown-unknown, choosing the toolchain path that exists here:
# a rustup toolchain with the wasm32 target, or Debian's rustc-web building std from source.
# Usage: scripts/build-wasm.sh [--cdylib] [extra cargo args...]
#   --cdylib  link the loadable .wasm module (cargo rustc --crate-type cdylib), not only the rlib
set -euo pipefail
cd "$(dirname "$0")/.."

target=wasm32-unknown-unknown
# Its own target dir: two compilers sharing one rebuild each other's host artifacts.
target_dir=target/wasm
# `cargo rustc --crate-type cdylib` links a .wasm without making every native build link a
# cdylib too (Cargo.toml keeps the lib an rlib).
subcommand=(build --lib)
cdylib=false
if [ "${1:-}" = "--cdylib" ]; then
  shift
  cdylib=true
  subcommand=(rustc --lib --crate-type cdylib)
  target_dir=target/wasm-module
fi

if rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  exec cargo "${subcommand[@]}" --locked --target "$target" --target-dir "$target_dir" "$@"
fi

if [ ! -x /usr/bin/rustc ] || [ ! -d /usr/lib/rustlib/src/rust/library ]; then
  echo "error: no wasm32 toolchain: run scripts/setup.sh (installs Debian's rustc-web)," >&2
  echo "hint: or, with rustup online: rustup target add $target" >&2
  exit 1
fi

linker=""
for candidate in "$(rustc --print sysroot 2>/dev/null)/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld" \
                 /usr/bin/rust-lld /usr/bin/ld.lld-22 /usr/bin/lld-22 /usr/bin/wasm-ld; do
  if [ -x "$candidate" ]; then linker=$candidate; break; fi
done
if [ -n "$linker" ]; then
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$linker"
fi

if $cdylib; then
  # std is built from source here, so panics can abort without their formatting machinery:
  # about 100 KB less wasm. index.js reports a trap as an internal error.
  export RUSTFLAGS="${RUSTFLAGS:-} -Zunstable-options -Cpanic=immediate-abort"
fi

RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 exec /usr/bin/cargo "${subcommand[@]}" --locked --target "$target" \
  -Zbuild-std=std,panic_abort --target-dir "$target_dir" "$@"
