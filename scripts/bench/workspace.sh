# Sourced by the benchmark scripts, from the project root: builds what they measure (release
# binary, wasm task folders), starts the workspace emulator (stopped on exit) and checks out a
# project of benchmark notebooks into /Repos/bench/project. Defines log; sets $work and $base.
# test/short (~2 s), test/long (~60 s), test/many/nb000..nb099 (instant, 1 KB of output each),
# and with BENCH_SCALE=N, test/scale/s0000.. (N instant notebooks, 1 KB of output each).

log() { printf '==> %s\n' "$*" >&2; }

log "building (release binary, wasm task folders)"
cargo build --locked --release --bin databricks-azdo >&2
scripts/build.sh >&2

log "starting the emulator and checking out the notebooks"

work=$(mktemp -d)
emulator_pid=""
cleanup() { [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

target/release/databricks-azdo emulator --listen 127.0.0.1:0 --token bench-token > "$work/emulator.out" &
emulator_pid=$!
for _ in $(seq 50); do [ -s "$work/emulator.out" ] && break; sleep 0.1; done
base=$(head -n 1 "$work/emulator.out")
project=$work/project
mkdir -p "$project/test/many"
printf '# Databricks notebook source\nimport time\ntime.sleep(2)\ndbutils.notebook.exit("short")\n' > "$project/test/short.py"
printf '# Databricks notebook source\nimport time\ntime.sleep(60)\ndbutils.notebook.exit("long")\n' > "$project/test/long.py"
for i in $(seq -f '%03g' 0 99); do
  printf '# Databricks notebook source\ndbutils.notebook.exit("%s" * 250)\n' "$i" > "$project/test/many/nb$i.py"
done
if [ "${BENCH_SCALE:-0}" -gt 0 ]; then
  mkdir -p "$project/test/scale"
  for i in $(seq -f '%04g' 0 $((BENCH_SCALE - 1))); do
    printf '# Databricks notebook source\ndbutils.notebook.exit("%s" * 250)\n' "$i" > "$project/test/scale/s$i.py"
  done
fi
git -C "$project" init -q -b main
git -C "$project" -c user.name=bench -c user.email=bench@example.com add .
git -C "$project" -c user.name=bench -c user.email=bench@example.com commit -q -m notebooks
DATABRICKS_TOKEN=bench-token target/release/databricks-azdo repo-update --host "$base" \
  --repo-path /Repos/bench/project --repo-url "$project" --git-provider gitHub --branch main >&2
