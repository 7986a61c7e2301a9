#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian machine. Idempotent: a second run
# only checks. Run as root (CI) or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages=()
command -v git >/dev/null || apt_packages+=(git)
command -v python3 >/dev/null || apt_packages+=(python3)
command -v cc >/dev/null || apt_packages+=(gcc)
command -v openssl >/dev/null || apt_packages+=(openssl)   # a test certificate for HTTPS through a proxy

# wasm32: a rustup toolchain that has the target is used as it is (a developer laptop).
# Otherwise Debian's rustc-web builds std for wasm32 from source (see scripts/build-wasm.sh).
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  if ! { [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ]; }; then
    apt_packages+=(rustc-web cargo-web rust-web-src rust-web-llvm)
  fi
fi

if [ ${#apt_packages[@]} -gt 0 ]; then
  log "installing Debian packages: ${apt_packages[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

# The example pytest notebook runs in the emulator's Python (the python3 on PATH).
if ! python3 -c 'import pytest' 2>/dev/null; then
  log "installing pytest for the example notebooks"
  python3 -m pip install -q --disable-pip-version-check pytest==8.3.4 2>/dev/null || {
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends python3-pytest >/dev/null
  }
fi

# The Databricks Python SDK, pinned: a test signs in with it against the emulator, as users'
# scripts do against a workspace (tests/python).
databricks_sdk_version=0.167.0
if ! python3 -c "import databricks.sdk.version as v, sys; sys.exit(v.__version__ != '$databricks_sdk_version')" 2>/dev/null; then
  log "installing the Databricks Python SDK $databricks_sdk_version"
  python3 -m pip install -q --disable-pip-version-check "databricks-sdk==$databricks_sdk_version" 2>/dev/null \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages "databricks-sdk==$databricks_sdk_version"
fi

command -v cargo >/dev/null || { echo "error: cargo not found; install Rust with rustup (https://rustup.rs)" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy >/dev/null 2>&1 || true

command -v node >/dev/null || apt_missing_node=1
if [ -n "${apt_missing_node:-}" ]; then
  log "installing Node.js"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# wasm-bindgen's CLI must be exactly the crate's version (pinned in Cargo.toml).
wasm_bindgen_version=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' Cargo.toml)
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $wasm_bindgen_version"; then
  log "installing wasm-bindgen-cli $wasm_bindgen_version (a few minutes, once)"
  cargo install --quiet wasm-bindgen-cli --version "$wasm_bindgen_version"
fi

# Build and test tools from npm (wasm-opt, tfx-cli, task-lib's parser, Node.js 24 for the
# Node24 handler's tests), pinned by the lockfile.
if [ ! -d scripts/node_modules ] || [ scripts/package-lock.json -nt scripts/node_modules/.package-lock.json ]; then
  log "installing the npm build tools"
  npm ci --prefix scripts --no-audit --no-fund --silent
fi

log "fetching crates"
cargo fetch --locked >/dev/null
log "setup done"
