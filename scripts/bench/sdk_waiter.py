"""The Databricks Python SDK's way: jobs.submit(...).result(), its built-in waiter.
Usage: sdk_waiter.py NOTEBOOK_PATH CLUSTER_ID   (DATABRICKS_HOST and DATABRICKS_TOKEN set)"""
import sys

from databricks.sdk import WorkspaceClient
from databricks.sdk.service import jobs


def main():
    notebook, cluster = sys.argv[1], sys.argv[2]
    workspace = WorkspaceClient()
    run = workspace.jobs.submit(
        run_name="benchmark",
        tasks=[
            jobs.SubmitTask(
                task_key="notebook",
                existing_cluster_id=cluster,
                notebook_task=jobs.NotebookTask(notebook_path=notebook),
            )
        ],
    ).result()
    print(run.state.result_state)
    return 0 if run.state.result_state == jobs.RunResultState.SUCCESS else 1


if __name__ == "__main__":
    sys.exit(main())
