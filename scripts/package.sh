#!/usr/bin/env bash
# Builds the task folders and packs the extension: dist/<publisher>.<id>-<version>.vsix
# Usage: scripts/package.sh [--with-native] [--publisher NAME]
#   --with-native     also bundle a static linux-x64 binary into each task folder
#   --publisher NAME  publish under your own Marketplace publisher (default: the manifest's)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }
with_native=false
publisher=""
while [ $# -gt 0 ]; do
  case "$1" in
    --with-native) with_native=true ;;
    --publisher) publisher=$2; shift ;;
    *) echo "error: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

scripts/build.sh
rm -rf task/*/bin
if $with_native; then
  log "building the static linux-x64 binary"
  # glibc linked statically: runs on any x64 Linux agent, no musl toolchain needed. Without the
  # workspace emulator and the demo (the default feature `emulator`): agents only run tasks.
  target=x86_64-unknown-linux-gnu
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --locked --release --no-default-features \
    --bin databricks-azdo --target "$target"
  for folder in task/*/; do
    mkdir -p "$folder/bin/linux-x64"
    cp "target/$target/release/databricks-azdo" "$folder/bin/linux-x64/"
  done
fi

tfx=scripts/node_modules/.bin/tfx
[ -x "$tfx" ] || { echo "error: $tfx is missing; run scripts/setup.sh" >&2; exit 1; }
mkdir -p dist
args=(extension create --manifest-globs vss-extension.json --output-path dist --no-prompt)
[ -n "$publisher" ] && args+=(--publisher "$publisher")
log "tfx ${args[*]}"
output=$("$tfx" "${args[@]}" 2>&1) || { echo "$output" >&2; exit 1; }
echo "$output"
if grep -qi "warn" <<<"$output"; then
  echo "error: tfx printed warnings (see above)" >&2
  exit 1
fi
vsix=$(ls -t dist/*.vsix | head -n 1)
log "$vsix: $(( $(wc -c < "$vsix") / 1024 )) KB"
