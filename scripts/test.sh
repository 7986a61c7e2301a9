#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (against the embedded
# workspace emulator), and the wasm32 build of the library.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings

log "cargo test"
cargo test --locked --all-targets

log "wasm32 build of the library"
scripts/build-wasm.sh

log "all checks passed"
