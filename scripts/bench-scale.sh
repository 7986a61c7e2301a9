#!/usr/bin/env bash
# One RunNotebookTest step with 1000 notebooks in one run (Jobs API 2.2: ten pages of tasks),
# wasm core and native binary, on the workspace emulator (README, Performance): requests per
# poll, all requests, peak RSS, and the time from the run's end to the step's end.
# Usage: scripts/bench-scale.sh [notebooks=1000] [maxParallel=100]     (takes ~5 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000}
lanes=${2:-100}
export BENCH_SCALE=$count
. scripts/bench/workspace.sh

log "measuring a run of $count notebooks, at most $lanes at once"
BENCH_HOME=$work python3 scripts/bench/scale.py "$base" "$count" "$lanes"
