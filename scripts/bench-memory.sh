#!/usr/bin/env bash
# Peak memory of one RunNotebookTest step with 1, 10 and 100 notebooks, wasm core and native
# binary, on the workspace emulator (README, Performance).
# Usage: scripts/bench-memory.sh [repeats=3]     (takes ~2 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-3}
. scripts/bench/workspace.sh

log "measuring (largest of $repeats per size)"
BENCH_HOME=$work python3 scripts/bench/memory.py "$base" "$repeats"
