"""The approach of Databricks' CI/CD article (its deploy.py), written again for the benchmark:
the legacy databricks-cli package's Jobs service, one run submitted, polled every 5 seconds.
Usage: article.py NOTEBOOK_PATH CLUSTER_ID   (DATABRICKS_HOST and DATABRICKS_TOKEN set)"""
import os
import sys
import time

from databricks_cli.sdk.api_client import ApiClient
from databricks_cli.sdk.service import JobsService


def main():
    notebook, cluster = sys.argv[1], sys.argv[2]
    host = os.environ["DATABRICKS_HOST"]
    client = ApiClient(host=host, token=os.environ["DATABRICKS_TOKEN"])
    # The legacy client keeps only scheme and host name, dropping the port; a workspace never
    # has one, the local emulator does.
    client.url = host.rstrip("/") + "/api/"
    jobs = JobsService(client)
    run_id = jobs.submit_run(
        run_name="benchmark", existing_cluster_id=cluster, notebook_task={"notebook_path": notebook}
    )["run_id"]
    while True:
        state = jobs.get_run(run_id)["state"]
        result = state.get("result_state")
        if result:
            print(result)
            return 0 if result == "SUCCESS" else 1
        time.sleep(5)


if __name__ == "__main__":
    sys.exit(main())
