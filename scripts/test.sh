#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust unit and integration tests (against the
# embedded workspace emulator), the wasm core and the .vsix package, and the Node tests that
# run the packaged task folders the way the agent does.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings

log "cargo test"
cargo test --locked --all-targets

log "wasm core, task folders and .vsix"
cargo build --locked --bin databricks-azdo   # the emulator and native runtime for the Node tests
scripts/package.sh

log "node tests"
node --test tests/node/

log "all checks passed"
