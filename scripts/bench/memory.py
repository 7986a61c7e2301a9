"""Peak memory of one RunNotebookTest step as the number of notebooks grows (1, 10, 100), for
the wasm core and the native binary, with the requests it made. Driven by scripts/bench-memory.sh.
Each notebook returns 1 KB of output, all of which the step keeps for its notebookOutput variable."""
import sys

from bench import our_tools, run_once

REPO = "/Repos/bench/project"


def main():
    base, repeats = sys.argv[1], int(sys.argv[2])
    print("| notebooks | runtime | peak RSS | API requests | of them runs/get |")
    print("|---|---|---|---|---|")
    for count in (1, 10, 100):
        paths = "\n".join(f"{REPO}/test/many/nb{i:03}" for i in range(count))
        for name, make in our_tools().items():
            command, _ = make(paths)
            samples = [run_once(base, command, paths) for _ in range(repeats)]
            if not all(s["ok"] for s in samples):
                sys.exit(f"{name} with {count} notebooks: a run did not succeed: {samples}")
            rss = max(s["rss_mb"] for s in samples)
            requests = max(s["requests"] for s in samples)
            polls = max(s["by_endpoint"].get("GET /api/2.2/jobs/runs/get", 0) for s in samples)
            print(f"| {count} | {name} | {rss:.1f} MB | {requests} | {polls} |", flush=True)


if __name__ == "__main__":
    main()
