"""One RunNotebookTest step with many notebooks (1000 by default) in one run, for the wasm core
and the native binary: requests per poll of runs/get (Jobs API 2.2 pages tasks by 100), all
requests, peak RSS, and the time from the run's end_time to the step's exit. Driven by
scripts/bench-scale.sh. The notebooks are matched with a glob and run `maxParallel` at a time,
so that the emulator's machine is not asked for 1000 Python processes at once."""
import os
import subprocess
import sys
import time

from bench import REPO, TOKEN, api, our_tools, step_env


def main():
    base, count, lanes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print("| runtime | notebooks passed | runs/get requests | polls | requests per poll | all requests | peak RSS | run end → step end |")
    print("|---|---|---|---|---|---|---|---|")
    for name, make in our_tools().items():
        command, _ = make("")
        env = step_env(
            base,
            repoPath=REPO,
            notebookPaths="test/scale/s*",
            maxParallel=str(lanes),
            timeoutMinutes="30",
        )
        # A step of its own for each runtime: each submits its own run.
        env["SYSTEM_TASKINSTANCEID"] = f"scale-{name}-{time.time()}"
        api(base, "/emulator/requests/reset", method="POST", body=b"", token=TOKEN)
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        lines, seen_end = [], None
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace")
            lines.append(line)
            # The watcher logs the run's end the moment a poll sees it.
            if seen_end is None and " run TERMINATED" in line:
                seen_end = time.time() * 1000
        output = "".join(lines)
        _, status, usage = os.wait4(process.pid, 0)
        exited = time.time() * 1000
        counted = api(base, "/emulator/requests", token=TOKEN)
        summary = api(base, "/emulator/runs", token=TOKEN)[-1]
        # Each poll reads the first page once: the emulator counts those apart from the rest.
        polls = summary["runs_get_reads"]["first_page"]
        finished = api(base, f"/api/2.2/jobs/runs/get?run_id={summary['run_id']}", token=TOKEN)
        if os.waitstatus_to_exitcode(status) != 0 or finished["state"].get("result_state") != "SUCCESS":
            sys.exit(f"{name}: the step or the run did not succeed:\n{output[-3000:]}")
        passed = next((l.split("]", 1)[1] for l in output.splitlines() if "variable=testsPassed;" in l), "?")
        reads = counted["by_endpoint"].get("GET /api/2.2/jobs/runs/get", 0)
        outputs = counted["by_endpoint"].get("GET /api/2.2/jobs/runs/get-output", 0)
        seen = (seen_end - finished["end_time"]) / 1000 if seen_end else float("nan")
        read = (exited - seen_end) / 1000 if seen_end else float("nan")
        print(
            f"| {name} | {passed} | {reads} | {polls} | {reads / polls:.2f} | {counted['total']} ({outputs} outputs) "
            f"| {usage.ru_maxrss / 1024:.1f} MB | {(exited - finished['end_time']) / 1000:.1f} s "
            f"(seen after {seen:.1f} s, results read in {read:.1f} s) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
