"""The current Databricks Python SDK, with its default settings, signs in against the emulator:
OAuth machine-to-machine and Azure DevOps federation (`azure-devops-oidc`), on a workspace host
and on a unified host. It finds the OAuth server through the host metadata
(/.well-known/databricks-config), as it does on a real workspace, so these tests hold the
emulator to what the SDK expects of the platform."""

import json
import os
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "target" / "debug" / "databricks-azdo"
TOKEN = "dapi-python-sdk-test"
CLIENT_ID = "1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b"
CLIENT_SECRET = "dose-python-sdk-secret"
JOB_TOKEN = "job-python-sdk-token"
ORG, ORG_ID = "contoso", "0d6b3e2a-8a51-4c0e-9d7f-5e4b0c1a2f30"
PROJECT, PROJECT_ID, PIPELINE = "income-model", "7a1f9c44-2b3d-4e5f-8a6b-9c0d1e2f3a4b", "income-model-ci"
ACCOUNT = "a1b2c3d4-0000-4000-8000-0000000000aa"


def identities(unified):
    workspace = {
        "oauthClients": [{"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}],
        # The SDK asks for the pipeline's id token (no service connection): p:// subject.
        "federationPolicies": [{
            "clientId": CLIENT_ID,
            "issuer": f"https://vstoken.dev.azure.com/{ORG_ID}",
            "subject": f"p://{ORG}/{PROJECT}/{PIPELINE}",
        }],
    }
    if unified:
        workspace["unifiedHost"] = {"accountId": ACCOUNT}
    return {
        "devops": {"organization": ORG, "organizationId": ORG_ID, "project": PROJECT,
                   "projectId": PROJECT_ID, "pipeline": PIPELINE, "jobAccessToken": JOB_TOKEN},
        "workspace": workspace,
    }


@pytest.fixture(params=["workspace host", "unified host"])
def emulator(request):
    folder = tempfile.TemporaryDirectory()
    config = Path(folder.name) / "identities.json"
    config.write_text(json.dumps(identities(request.param == "unified host")))
    child = subprocess.Popen(
        [str(BINARY), "emulator", "--listen", "127.0.0.1:0", "--token", TOKEN, "--identities", str(config)],
        stdout=subprocess.PIPE, text=True,
    )
    url = child.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), url
    try:
        yield url, request.param
    finally:
        child.terminate()
        child.wait(timeout=10)
        folder.cleanup()


def requests_seen(url):
    asked = urllib.request.Request(f"{url}/emulator/requests", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(asked, timeout=10) as answer:
        return json.load(answer)["by_endpoint"]


@pytest.fixture
def clean_environment(monkeypatch, tmp_path):
    """No Databricks or Azure DevOps settings but those a test sets, and no config file."""
    for name in list(os.environ):
        if name.startswith(("DATABRICKS_", "ARM_", "SYSTEM_", "ACTIONS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "none.cfg"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def token_endpoint(kind):
    return f"POST /oidc/accounts/{ACCOUNT}/v1/token" if kind == "unified host" else "POST /oidc/v1/token"


def test_oauth_machine_to_machine(emulator, clean_environment):
    url, kind = emulator
    client = WorkspaceClient(host=url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    status = client.workspace.get_status("/Repos")
    assert status.path == "/Repos"
    seen = requests_seen(url)
    assert seen.get("GET /.well-known/databricks-config", 0) >= 1, seen
    assert seen.get(token_endpoint(kind), 0) >= 1, seen


def test_azure_devops_federation(emulator, clean_environment, monkeypatch):
    url, kind = emulator
    monkeypatch.setenv("SYSTEM_ACCESSTOKEN", JOB_TOKEN)
    monkeypatch.setenv("SYSTEM_TEAMFOUNDATIONCOLLECTIONURI", f"{url}/{ORG}/")
    monkeypatch.setenv("SYSTEM_TEAMPROJECTID", PROJECT_ID)
    monkeypatch.setenv("SYSTEM_PLANID", "3f2e1d0c-9b8a-4756-8493-a2b1c0d9e8f7")
    monkeypatch.setenv("SYSTEM_JOBID", "12f1170f-54f2-53f3-20dd-22fc7dff55f9")
    monkeypatch.setenv("SYSTEM_HOSTTYPE", "build")
    client = WorkspaceClient(host=url, client_id=CLIENT_ID)
    status = client.workspace.get_status("/Repos")
    assert status.path == "/Repos"
    seen = requests_seen(url)
    assert seen.get("POST /{organization}/{project}/_apis/distributedtask/hubs/{hub}/plans/{plan}/jobs/{job}/oidctoken", 0) >= 1, seen
    assert seen.get(token_endpoint(kind), 0) >= 1, seen
