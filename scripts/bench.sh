#!/usr/bin/env bash
# Side-by-side benchmark on the workspace emulator: our task (wasm through `node index.js`, and
# the native binary), the article's databricks-cli script with 5 s polling, and the Databricks
# SDK's waiter, on a short (~2 s) and a long (~60 s) notebook.
# Usage: scripts/bench.sh [short repeats=5] [long repeats=1]     (takes ~10 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
short=${1:-5}
long=${2:-1}
. scripts/bench/workspace.sh

# The peers' dependencies, each in a fresh virtualenv; the article's install is timed.
log "installing the peers' Python packages"
venv=$work/venv
python3 -m venv "$venv"
install_started=$(date +%s%N)
"$venv/bin/pip" install --quiet --disable-pip-version-check databricks-cli==0.18.0
install_seconds=$(( ($(date +%s%N) - install_started) / 1000000 ))e-3
"$venv/bin/pip" install --quiet --disable-pip-version-check databricks-sdk==0.162.0

log "measuring ($short short and $long long runs per tool)"
BENCH_HOME=$work python3 scripts/bench/bench.py "$base" "$venv" "$short" "$long" > "$work/report.json"
python3 - "$work/report.json" "$install_seconds" <<'PY'
import json, sys
report, install = json.load(open(sys.argv[1])), float(sys.argv[2])
for scenario, tools in report.items():
    base = next(iter(tools.values()))
    print(f"\n{scenario} notebook (run ~{base['run_ms'] / 1000:.0f} s), medians; ratios vs databricks-azdo (wasm)")
    print(f"| tool | start-up | detection latency | API requests | peak RSS |")
    print(f"|---|---|---|---|---|")
    for name, r in tools.items():
        print(f"| {name} | {r['startup_ms']:.0f} ms ({r['startup_ms'] / base['startup_ms']:.2f}x) "
              f"| {r['detection_ms']:.0f} ms ({r['detection_ms'] / base['detection_ms']:.2f}x) "
              f"| {r['requests']:.0f} ({r['requests'] / base['requests']:.2f}x) "
              f"| {r['rss_mb']:.0f} MB ({r['rss_mb'] / base['rss_mb']:.2f}x) |")
print(f"\ninstall of the article's dependency (pip install databricks-cli): {install:.1f} s")
PY
