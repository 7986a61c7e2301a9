"""Runs each tool against the workspace emulator on the same notebooks and reports start-up,
detection latency, API requests and peak memory. Driven by scripts/bench.sh.

Start-up: process start → the emulator's first API request. Detection latency: the run's
end_time on the server → the process exits. Requests: every API request the emulator counted
for that invocation. Peak RSS: of the process itself (for `node index.js` with the native
runtime that excludes the child binary)."""
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKEN = "bench-token"
CLUSTER = "0101-000000-emulator"
REPO = "/Repos/bench/project"


def api(base, path, method="GET", body=None, token=None):
    request = urllib.request.Request(base + path, method=method, data=body)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"{}")


def our_tools():
    return {
        "databricks-azdo (wasm, node index.js)": lambda nb: (
            ["node", os.path.join(ROOT, "task", "DatabricksRunNotebookTest", "index.js")], {}),
        "databricks-azdo (native binary)": lambda nb: (
            [os.path.join(ROOT, "target", "release", "databricks-azdo"), "task", "DatabricksRunNotebookTest"], {}),
    }


def tools(venv):
    python = os.path.join(venv, "bin", "python")
    bench = os.path.join(ROOT, "scripts", "bench")
    return {
        **our_tools(),
        "article: databricks-cli, 5 s polling": lambda nb: (
            [python, os.path.join(bench, "article.py"), nb, CLUSTER], {}),
        "Databricks SDK: submit().result()": lambda nb: (
            [python, os.path.join(bench, "sdk_waiter.py"), nb, CLUSTER], {}),
    }


def step_env(base, **inputs):
    """The environment of one notebook step against the emulator: its URL and token (also as
    the peers read them), the emulator's cluster, and `inputs` as INPUT_<NAME> variables."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("BENCH_HOME", "/tmp"),
        "DATABRICKS_HOST": base,
        "DATABRICKS_TOKEN": TOKEN,
        "INPUT_DATABRICKSHOST": base,
        "INPUT_DATABRICKSTOKEN": TOKEN,
        "INPUT_EXISTINGCLUSTERID": CLUSTER,
    }
    env.update({f"INPUT_{name.upper()}": value for name, value in inputs.items()})
    return env


def run_once(base, command, notebook):
    env = step_env(base, notebookPaths=notebook)
    api(base, "/emulator/requests/reset", method="POST", body=b"", token=TOKEN)
    started = time.time() * 1000
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    exited = time.time() * 1000
    counted = api(base, "/emulator/requests", token=TOKEN)
    run_id = api(base, "/emulator/runs", token=TOKEN)[-1]["run_id"]
    run = api(base, f"/api/2.2/jobs/runs/get?run_id={run_id}", token=TOKEN)
    return {
        "ok": os.waitstatus_to_exitcode(status) == 0 and run["state"].get("result_state") == "SUCCESS",
        "startup_ms": counted["first_request_at_ms"] - started,
        "detection_ms": exited - run["end_time"],
        "run_ms": run["end_time"] - run["start_time"],
        "requests": counted["total"],
        "by_endpoint": counted["by_endpoint"],
        "rss_mb": usage.ru_maxrss / 1024,
    }


def main():
    base, venv, short_runs, long_runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    scenarios = [("short", f"{REPO}/test/short", short_runs), ("long", f"{REPO}/test/long", long_runs)]
    report = {}
    for scenario, notebook, repeats in scenarios:
        if repeats == 0:
            continue
        for name, make in tools(venv).items():
            command, _ = make(notebook)
            samples = [run_once(base, command, notebook) for _ in range(repeats)]
            failed = [s for s in samples if not s["ok"]]
            if failed:
                sys.exit(f"{name} / {scenario}: a run did not succeed: {failed}")
            report.setdefault(scenario, {})[name] = {
                key: statistics.median(s[key] for s in samples)
                for key in ("startup_ms", "detection_ms", "run_ms", "requests", "rss_mb")
            }
            print(f"{scenario:5} {name:40} {json.dumps(report[scenario][name])}", file=sys.stderr)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
