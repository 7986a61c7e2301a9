//! Integration tests of the local workspace emulator, over real HTTP, with real `git`
//! repositories and real `python3` notebook runs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::common::api::{error_code, message, notebook_task, single_run, Workspace};
use crate::common::{ms, process_alive, wait_until_gone, CLUSTER, DEADLINE};
use databricks_azdo::emulator::{Fault, FaultRule};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const TOKEN: &str = "dapi-emulator-test-token";

// ----- notebooks of the source repository -----

const UNIT_NOTEBOOK: &str = r#"# Databricks notebook source
# MAGIC %md
# MAGIC # Unit tests
# MAGIC Markdown cells are skipped.

# COMMAND ----------

import json
from helpers import double
dbutils.widgets.text("greeting", "hello")

# COMMAND ----------

# MAGIC %python
# MAGIC value = double(21)

# COMMAND ----------

print("printed output is captured, not returned")
dbutils.notebook.exit(json.dumps({"greeting": dbutils.widgets.get("greeting"), "value": value}))
"#;

const HELPERS: &str = "def double(x):\n    return 2 * x\n";

const FAILING_NOTEBOOK: &str = r#"# Databricks notebook source
def check():
    raise ValueError("expected 2, got 3")

# COMMAND ----------

check()
"#;

const WIDGETS_NOTEBOOK: &str = r#"# Databricks notebook source
import json
dbutils.widgets.text("env", "dev")
dbutils.widgets.dropdown("mode", "fast", ["fast", "slow"])
result = {"env": dbutils.widgets.get("env"), "mode": dbutils.widgets.get("mode")}
try:
    dbutils.widgets.get("missing")
except Exception as e:
    result["missing"] = type(e).__name__
try:
    spark
except NameError:
    result["spark"] = "NameError"
dbutils.notebook.exit(json.dumps(result))
"#;

const SQL_NOTEBOOK: &str = r#"# Databricks notebook source
# MAGIC %sql
# MAGIC SELECT 1
"#;

/// Reports its pid and working directory through a file, then sleeps until killed.
const SLEEPY_NOTEBOOK: &str = r#"# Databricks notebook source
import os, time
report = dbutils.widgets.get("report")
with open(report + ".tmp", "w") as f:
    f.write("%d\n%s" % (os.getpid(), os.getcwd()))
os.replace(report + ".tmp", report)
time.sleep(60)
"#;

fn version_notebook(version: &str) -> String {
    format!("# Databricks notebook source\ndbutils.notebook.exit(\"{version}\")\n")
}

// ----- a local source repository, made with the git CLI -----

struct SourceRepo {
    dir: PathBuf,
}

impl SourceRepo {
    fn new(scratch: &Path) -> SourceRepo {
        let repo = SourceRepo {
            dir: scratch.join("source"),
        };
        std::fs::create_dir_all(&repo.dir).unwrap();
        repo.git(&["init", "--quiet", "--initial-branch=main"]);
        repo.write("README.md", "# demo\n");
        repo.write("test/unit.py", UNIT_NOTEBOOK);
        repo.write("test/helpers.py", HELPERS);
        repo.write("test/failing.py", FAILING_NOTEBOOK);
        repo.write("test/widgets.py", WIDGETS_NOTEBOOK);
        repo.write("test/sql.py", SQL_NOTEBOOK);
        repo.write("test/sleepy.py", SLEEPY_NOTEBOOK);
        repo.write("test/version.py", &version_notebook("v1"));
        repo.commit("initial");
        repo
    }

    fn url(&self) -> String {
        format!("file://{}", self.dir.display())
    }

    fn write(&self, relative: &str, content: &str) {
        let path = self.dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn commit(&self, message: &str) -> String {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Runs git in the repository, isolated from the machine's configuration.
    fn git(&self, args: &[&str]) -> String {
        crate::common::git(&self.dir, args)
    }
}

// ----- the emulator under test (common::api::Workspace), with this file's source repo -----

impl Workspace {
    fn source(&self) -> SourceRepo {
        SourceRepo::new(self.scratch.path())
    }

    /// Creates `/Repos/ci/project` from `source`.
    async fn create_repo(&self, source: &SourceRepo) -> Value {
        self.mkdirs("/Repos/ci").await;
        let body =
            json!({ "url": source.url(), "provider": "gitHub", "path": "/Repos/ci/project" });
        self.ok(Method::POST, "/api/2.0/repos", Some(body)).await
    }

    /// Waits until a sleepy notebook reports `(pid, cwd)`.
    async fn wait_for_report(&self, report: &Path) -> (u32, PathBuf) {
        let deadline = Instant::now() + DEADLINE;
        while !report.exists() {
            assert!(Instant::now() < deadline, "the notebook never started");
            tokio::time::sleep(ms(10)).await;
        }
        let text = std::fs::read_to_string(report).unwrap();
        let (pid, cwd) = text.split_once('\n').unwrap();
        (pid.parse().unwrap(), PathBuf::from(cwd))
    }
}

// ----- authentication and envelopes -----

#[tokio::test]
async fn rejects_missing_and_wrong_credentials_with_the_real_envelopes() {
    let ws = Workspace::start(TOKEN).await;
    let url = format!("{}/api/2.0/workspace/get-status?path=/", ws.base);

    let missing = ws.http.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.json::<Value>().await.unwrap(),
        json!({ "error_code": "UNAUTHENTICATED", "message": "Credential was not sent or was of an unsupported type for this API." })
    );

    let basic = ws
        .http
        .get(&url)
        .basic_auth("user", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);

    let wrong = ws
        .http
        .get(&url)
        .bearer_auth("dapi-wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let text = wrong.text().await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({ "error_code": "403", "message": "Invalid access token." })
    );
    assert!(!text.contains("dapi"), "tokens are never echoed: {text}");

    let (status, body) = ws.get("/api/2.0/no/such/thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "ENDPOINT_NOT_FOUND");
    assert_eq!(
        message(&body),
        "No API found for 'GET /api/2.0/no/such/thing'"
    );

    let (status, body) = ws.call(Method::PUT, "/api/2.0/repos", None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "ENDPOINT_NOT_FOUND")
    );

    let malformed = ws
        .request(Method::POST, "/api/2.0/workspace/mkdirs")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        error_code(&malformed.json().await.unwrap()),
        "MALFORMED_REQUEST"
    );

    let (status, body) = ws.get("/api/2.0/workspace/get-status").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE")
    );

    // Every API request was counted, the rejected ones included; control routes are not.
    let counts = ws.control(Method::GET, "/emulator/requests").await;
    assert_eq!(
        counts["by_endpoint"]["GET /api/2.0/workspace/get-status"],
        4
    );
    assert_eq!(counts["total"], 7);
    assert_eq!(
        ws.emulator.request_counts()["POST /api/2.0/workspace/mkdirs"],
        1
    );
    ws.control(Method::POST, "/emulator/requests/reset").await;
    assert!(ws.emulator.request_counts().is_empty());
    ws.emulator.shutdown().await;
}

// ----- workspace -----

#[tokio::test]
async fn workspace_folders_can_be_made_listed_and_inspected() {
    let ws = Workspace::start(TOKEN).await;
    let root = ws
        .ok(Method::GET, "/api/2.0/workspace/get-status?path=/", None)
        .await;
    assert_eq!(root["object_type"], "DIRECTORY");
    for top in ["/Repos", "/Users", "/Shared"] {
        let info = ws
            .ok(
                Method::GET,
                &format!("/api/2.0/workspace/get-status?path={top}"),
                None,
            )
            .await;
        assert_eq!(info["object_type"], "DIRECTORY", "{top}");
    }

    let made = ws.mkdirs("/Users/someone/a/b").await;
    assert_eq!(made, json!({}));
    let again = ws.mkdirs("/Users/someone/a/b").await;
    assert_eq!(again, json!({}), "mkdirs is idempotent");

    let a = ws
        .ok(
            Method::GET,
            "/api/2.0/workspace/get-status?path=/Users/someone/a",
            None,
        )
        .await;
    assert_eq!(a["object_type"], "DIRECTORY");
    assert_eq!(a["path"], "/Users/someone/a");
    assert!(a["object_id"].as_i64().unwrap() > 0);

    let listing = ws
        .ok(
            Method::GET,
            "/api/2.0/workspace/list?path=/Users/someone",
            None,
        )
        .await;
    assert_eq!(listing["objects"].as_array().unwrap().len(), 1);
    assert_eq!(listing["objects"][0]["path"], "/Users/someone/a");
    let empty = ws
        .ok(
            Method::GET,
            "/api/2.0/workspace/list?path=/Users/someone/a/b",
            None,
        )
        .await;
    assert_eq!(
        empty,
        json!({}),
        "an empty folder lists without an objects field"
    );

    let (status, body) = ws.get("/api/2.0/workspace/get-status?path=/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({ "error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Path (/nope) doesn't exist." })
    );
    let (status, _) = ws.get("/api/2.0/workspace/list?path=/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    ws.emulator.shutdown().await;
}

#[tokio::test]
async fn repo_checkouts_show_notebooks_without_their_extension() {
    let ws = Workspace::start(TOKEN).await;
    let source = ws.source();
    let repo = ws.create_repo(&source).await;
    let status = async |path: &str| {
        ws.get(&format!("/api/2.0/workspace/get-status?path={path}"))
            .await
    };

    // A Git folder is a DIRECTORY, as workspaces with the Git CLI show it, and its object id
    // is the repo id.
    let (_, root) = status("/Repos/ci/project").await;
    assert_eq!(root["object_type"], "DIRECTORY");
    assert_eq!(root["object_id"], repo["id"]);

    let (_, notebook) = status("/Repos/ci/project/test/unit").await;
    assert_eq!(notebook["object_type"], "NOTEBOOK");
    assert_eq!(notebook["language"], "PYTHON");
    assert_eq!(notebook["path"], "/Repos/ci/project/test/unit");
    let (code, _) = status("/Repos/ci/project/test/unit.py").await;
    assert_eq!(
        code,
        StatusCode::NOT_FOUND,
        "a notebook is not addressed by its file name"
    );
    let (_, helpers) = status("/Repos/ci/project/test/helpers.py").await;
    assert_eq!(
        helpers["object_type"], "FILE",
        "a .py file without the header is a file"
    );
    let (_, folder) = status("/Repos/ci/project/test").await;
    assert_eq!(folder["object_type"], "DIRECTORY");
    let (code, _) = status("/Repos/ci/project/.git").await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    let top = ws
        .ok(
            Method::GET,
            "/api/2.0/workspace/list?path=/Repos/ci/project",
            None,
        )
        .await;
    let kinds: Vec<(String, String)> = top["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["path"].as_str().unwrap().into(),
                o["object_type"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "/Repos/ci/project/README.md".to_string(),
                "FILE".to_string()
            ),
            (
                "/Repos/ci/project/test".to_string(),
                "DIRECTORY".to_string()
            ),
        ]
    );
    let tests = ws
        .ok(
            Method::GET,
            "/api/2.0/workspace/list?path=/Repos/ci/project/test",
            None,
        )
        .await;
    let notebooks: Vec<&str> = tests["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["object_type"] == "NOTEBOOK")
        .map(|o| o["path"].as_str().unwrap())
        .collect();
    assert!(
        notebooks.contains(&"/Repos/ci/project/test/unit"),
        "{notebooks:?}"
    );
    let ci = ws
        .ok(Method::GET, "/api/2.0/workspace/list?path=/Repos/ci", None)
        .await;
    assert_eq!(ci["objects"][0]["object_type"], "DIRECTORY");
    assert_eq!(ci["objects"][0]["object_id"], repo["id"]);

    let (code, body) = ws
        .post(
            "/api/2.0/workspace/mkdirs",
            json!({ "path": "/Repos/ci/project/new" }),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    ws.emulator.shutdown().await;
}

/// Writes workspace files as a notebook on Databricks does: through `/Workspace/...`.
const WRITER_NOTEBOOK: &str = r#"# Databricks notebook source
import os
os.makedirs("/Workspace/Shared/reports", exist_ok=True)
with open("/Workspace/Shared/reports/run.xml", "w") as handle:
    handle.write("<testsuite/>")
os.makedirs("/Workspace/Repos/ci/project/reports", exist_ok=True)
with open("/Workspace/Repos/ci/project/reports/in-repo.xml", "w") as handle:
    handle.write("<testsuites/>")
with open("/Workspace/Shared/big.bin", "wb") as handle:
    handle.write(b"x" * (10 * 1024 * 1024 + 1))
dbutils.notebook.exit("written")
"#;

#[tokio::test]
async fn workspace_files_are_exported_from_notebooks_writes_and_repo_checkouts() {
    use base64::Engine as _;
    let ws = Workspace::start(TOKEN).await;
    let source = ws.source();
    source.write("test/writer.py", WRITER_NOTEBOOK);
    std::os::unix::fs::symlink("/etc/hostname", source.dir.join("leak.txt")).unwrap();
    source.commit("a notebook writing workspace files, and a link out of the checkout");
    ws.create_repo(&source).await;
    let run_id = ws
        .submit(single_run(notebook_task(
            "writer",
            "/Repos/ci/project/test/writer",
        )))
        .await;
    let (run, _) = ws.wait_terminal(run_id).await;
    assert_eq!(run["state"]["result_state"], "SUCCESS", "{run}");

    let export = async |query: &str| ws.get(&format!("/api/2.0/workspace/export?{query}")).await;
    let exported = async |query: &str| {
        let (status, body) = export(query).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        let content = base64::engine::general_purpose::STANDARD
            .decode(body["content"].as_str().unwrap())
            .unwrap();
        (
            String::from_utf8(content).unwrap(),
            body["file_type"].clone(),
        )
    };
    // What the notebook wrote, with or without the /Workspace prefix, in either format.
    for query in [
        "path=/Shared/reports/run.xml&format=SOURCE",
        "path=/Workspace/Shared/reports/run.xml&format=SOURCE",
        "path=/Shared/reports/run.xml&format=AUTO",
        "path=/Shared/reports/run.xml",
    ] {
        assert_eq!(
            exported(query).await,
            ("<testsuite/>".to_string(), json!("xml")),
            "{query}"
        );
    }
    // Written into the repo's checkout through /Workspace/Repos/..., and committed files.
    assert_eq!(
        exported("path=/Repos/ci/project/reports/in-repo.xml&format=SOURCE").await,
        ("<testsuites/>".to_string(), json!("xml"))
    );
    assert_eq!(
        exported("path=/Workspace/Repos/ci/project/README.md&format=SOURCE").await,
        ("# demo\n".to_string(), json!("md"))
    );
    let (notebook, file_type) = exported("path=/Repos/ci/project/test/unit&format=SOURCE").await;
    assert!(
        notebook.starts_with("# Databricks notebook source\n"),
        "{notebook}"
    );
    assert_eq!(file_type, "py");
    let raw = ws
        .request(
            Method::GET,
            "/api/2.0/workspace/export?path=/Shared/reports/run.xml&direct_download=true",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::OK);
    assert_eq!(raw.text().await.unwrap(), "<testsuite/>");

    let refused = async |query: &str, status: StatusCode, code: &str| {
        let (got, body) = export(query).await;
        assert_eq!((got, error_code(&body)), (status, code), "{query}: {body}");
        message(&body).to_string()
    };
    let not_found = StatusCode::NOT_FOUND;
    let bad = StatusCode::BAD_REQUEST;
    assert_eq!(
        refused(
            "path=/Shared/reports/none.xml",
            not_found,
            "RESOURCE_DOES_NOT_EXIST"
        )
        .await,
        "Path (/Shared/reports/none.xml) doesn't exist."
    );
    assert_eq!(
        refused(
            "path=/Workspace/Repos/ci/project/none.xml",
            not_found,
            "RESOURCE_DOES_NOT_EXIST"
        )
        .await,
        "Path (/Repos/ci/project/none.xml) doesn't exist."
    );
    refused(
        "path=/Repos/ci/project/.git/config",
        not_found,
        "RESOURCE_DOES_NOT_EXIST",
    )
    .await;
    refused(
        "path=/Repos/ci/project/leak.txt",
        not_found,
        "RESOURCE_DOES_NOT_EXIST",
    )
    .await;
    // The notebook is addressed without its extension, as everywhere in the workspace.
    refused(
        "path=/Repos/ci/project/test/unit.py",
        not_found,
        "RESOURCE_DOES_NOT_EXIST",
    )
    .await;
    refused(
        "path=/Shared/../../etc/passwd",
        bad,
        "INVALID_PARAMETER_VALUE",
    )
    .await;
    refused(
        "path=Shared/reports/run.xml",
        bad,
        "INVALID_PARAMETER_VALUE",
    )
    .await;
    refused("format=SOURCE", bad, "INVALID_PARAMETER_VALUE").await;
    refused(
        "path=/Shared/reports/run.xml&format=HTML",
        bad,
        "INVALID_PARAMETER_VALUE",
    )
    .await;
    refused(
        "path=/Shared/reports/run.xml&format=source",
        bad,
        "INVALID_PARAMETER_VALUE",
    )
    .await;
    refused("path=/Shared/reports", bad, "INVALID_PARAMETER_VALUE").await;
    refused("path=/Repos/ci/project", bad, "INVALID_PARAMETER_VALUE").await;
    let too_large = refused("path=/Shared/big.bin", bad, "MAX_NOTEBOOK_SIZE_EXCEEDED").await;
    assert!(too_large.contains("10485760 bytes"), "{too_large}");
    ws.emulator.shutdown().await;
}

// ----- repos -----

#[tokio::test]
async fn repos_follow_branches_and_tags_of_the_source() {
    let ws = Workspace::start(TOKEN).await;
    let source = ws.source();
    let first = source.git(&["rev-parse", "HEAD"]);
    source.git(&["tag", "v1"]);

    ws.mkdirs("/Repos/ci").await;
    let body = json!({ "url": source.url(), "provider": "GITHUB", "path": "/Repos/ci/project" });
    let repo = ws.ok(Method::POST, "/api/2.0/repos", Some(body)).await;
    let id = repo["id"].as_i64().unwrap();
    assert!(id > 1_000_000_000, "ids look like Databricks ids: {id}");
    assert_eq!(repo["path"], "/Repos/ci/project");
    assert_eq!(repo["provider"], "gitHub");
    assert_eq!(repo["url"], source.url());
    assert_eq!(repo["branch"], "main");
    assert_eq!(repo["head_commit_id"], first.as_str());
    assert_eq!(
        ws.ok(Method::GET, &format!("/api/2.0/repos/{id}"), None)
            .await,
        repo
    );

    let listed = ws
        .ok(Method::GET, "/api/2.0/repos?path_prefix=/Repos/ci", None)
        .await;
    assert_eq!(listed, json!({ "repos": [repo] }));
    let none = ws
        .ok(Method::GET, "/api/2.0/repos?path_prefix=/Repos/other", None)
        .await;
    assert_eq!(none, json!({}));

    // New commits on the branch: PATCH with the same branch pulls them.
    source.write("test/version.py", &version_notebook("v2"));
    let second = source.commit("v2");
    let pulled = ws
        .ok(
            Method::PATCH,
            &format!("/api/2.0/repos/{id}"),
            Some(json!({ "branch": "main" })),
        )
        .await;
    assert_eq!(pulled["head_commit_id"], second.as_str());
    assert_eq!(pulled["branch"], "main");

    source.git(&["checkout", "--quiet", "-b", "feature"]);
    source.write("feature.txt", "new\n");
    let feature = source.commit("feature");
    source.git(&["checkout", "--quiet", "main"]);
    let switched = ws
        .ok(
            Method::PATCH,
            &format!("/api/2.0/repos/{id}"),
            Some(json!({ "branch": "feature" })),
        )
        .await;
    assert_eq!(
        (
            switched["branch"].as_str(),
            switched["head_commit_id"].as_str()
        ),
        (Some("feature"), Some(feature.as_str()))
    );
    let file = ws
        .ok(
            Method::GET,
            "/api/2.0/workspace/get-status?path=/Repos/ci/project/feature.txt",
            None,
        )
        .await;
    assert_eq!(
        file["object_type"], "FILE",
        "the checkout follows the branch"
    );

    let tagged = ws
        .ok(
            Method::PATCH,
            &format!("/api/2.0/repos/{id}"),
            Some(json!({ "tag": "v1" })),
        )
        .await;
    assert_eq!(tagged["head_commit_id"], first.as_str());
    assert!(
        tagged.get("branch").is_none(),
        "a tag checkout has no branch: {tagged}"
    );

    let (status, body) = ws
        .call(
            Method::PATCH,
            &format!("/api/2.0/repos/{id}"),
            Some(json!({ "branch": "nope" })),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE")
    );
    assert!(message(&body).contains("nope"), "{body}");
    let (status, body) = ws
        .call(
            Method::PATCH,
            &format!("/api/2.0/repos/{id}"),
            Some(json!({ "tag": "v9" })),
        )
        .await;
    assert!(
        status == StatusCode::BAD_REQUEST && message(&body).contains("v9"),
        "{body}"
    );
    let both = json!({ "branch": "main", "tag": "v1" });
    let (status, body) = ws
        .call(Method::PATCH, &format!("/api/2.0/repos/{id}"), Some(both))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE")
    );

    assert_eq!(
        ws.ok(Method::DELETE, &format!("/api/2.0/repos/{id}"), None)
            .await,
        json!({})
    );
    let (status, body) = ws.get(&format!("/api/2.0/repos/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({ "error_code": "RESOURCE_DOES_NOT_EXIST", "message": format!("Repo {id} does not exist.") })
    );
    let (status, _) = ws
        .get("/api/2.0/workspace/get-status?path=/Repos/ci/project")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = ws
        .call(Method::DELETE, &format!("/api/2.0/repos/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    ws.emulator.shutdown().await;
}

#[tokio::test]
async fn repo_creation_rejects_what_databricks_rejects() {
    let ws = Workspace::start(TOKEN).await;
    let source = ws.source();
    ws.create_repo(&source).await;
    let create = |body: Value| ws.post("/api/2.0/repos", body);

    let (status, body) =
        create(json!({ "url": source.url(), "provider": "gitHub", "path": "/Repos/ci/project" }))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({ "error_code": "RESOURCE_ALREADY_EXISTS", "message": "Repo /Repos/ci/project already exists. Please choose a different path." })
    );

    let (status, body) =
        create(json!({ "url": source.url(), "provider": "gitHub", "path": "/Repos/nobody/x" }))
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "RESOURCE_DOES_NOT_EXIST");
    assert_eq!(
        message(&body),
        "Parent directory /Repos/nobody does not exist."
    );

    let remote = json!({ "url": "https://github.com/org/project.git", "provider": "gitHub", "path": "/Repos/ci/remote" });
    let (status, body) = create(remote).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "PERMISSION_DENIED")
    );
    assert!(
        message(&body).starts_with("Missing Git provider credentials."),
        "{body}"
    );

    let (status, body) =
        create(json!({ "url": source.url(), "provider": "svn", "path": "/Repos/ci/x" })).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE")
    );
    assert!(
        message(&body).contains("azureDevOpsServices"),
        "names the valid providers: {body}"
    );

    let (status, body) = create(json!({ "provider": "gitHub", "path": "/Repos/ci/x" })).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE")
    );

    let not_git = ws.scratch.path().join("plain");
    std::fs::create_dir_all(&not_git).unwrap();
    let (status, body) =
        create(json!({ "url": not_git, "provider": "gitHub", "path": "/Repos/ci/plain" })).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE"),
        "{body}"
    );

    // A local path works as well as a file:// URL, and without `path` the repo lands in the
    // user's folder.
    let plain = ws
        .ok(
            Method::POST,
            "/api/2.0/repos",
            Some(json!({ "url": source.dir, "provider": "gitLab" })),
        )
        .await;
    assert_eq!(plain["path"], "/Repos/emulator@example.com/source");
    ws.emulator.shutdown().await;
}

#[tokio::test]
async fn repo_lists_are_paged_by_twenty() {
    let ws = Workspace::start(TOKEN).await;
    let source = ws.source();
    ws.mkdirs("/Repos/many").await;
    for n in 0..21 {
        let body = json!({ "url": source.url(), "provider": "gitHub", "path": format!("/Repos/many/r{n:02}") });
        ws.ok(Method::POST, "/api/2.0/repos", Some(body)).await;
    }
    let first = ws
        .ok(Method::GET, "/api/2.0/repos?path_prefix=/Repos/many", None)
        .await;
    assert_eq!(first["repos"].as_array().unwrap().len(), 20);
    let token = first["next_page_token"].as_str().unwrap();
    let second = ws
        .ok(
            Method::GET,
            &format!("/api/2.0/repos?path_prefix=/Repos/many&next_page_token={token}"),
            None,
        )
        .await;
    assert_eq!(second["repos"].as_array().unwrap().len(), 1);
    assert_eq!(second["repos"][0]["path"], "/Repos/many/r20");
    assert!(second.get("next_page_token").is_none());
    ws.emulator.shutdown().await;
}

// ----- runs -----

#[tokio::test]
async fn a_notebook_run_succeeds_with_its_exit_value() {
    let ws = Workspace::start(TOKEN).await;
    let source = ws.source();
    ws.create_repo(&source).await;
    let mut task = notebook_task("unit", "/Repos/ci/project/test/unit");
    task["notebook_task"]["base_parameters"] = json!({ "greeting": "hi" });
    let run_id = ws.submit(single_run(task)).await;

    let (run, seen) = ws.wait_terminal(run_id).await;
    let order = ["PENDING", "RUNNING", "TERMINATING", "TERMINATED"];
    let positions: Vec<usize> = seen
        .iter()
        .map(|s| order.iter().position(|o| o == s).unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "states move forward: {seen:?}"
    );
    assert_eq!(run["state"]["result_state"], "SUCCESS");
    assert_eq!(run["state"]["user_cancelled_or_timedout"], false);
    assert_eq!(run["status"]["state"], "TERMINATED");
    assert_eq!(run["status"]["termination_details"]["code"], "SUCCESS");
    assert_eq!(run["run_type"], "SUBMIT_RUN");
    assert_eq!(run["format"], "MULTI_TASK");
    assert_eq!(run["run_name"], "emulator test");
    let job_id = run["job_id"].as_i64().unwrap();
    assert_eq!(
        run["run_page_url"],
        format!("{}/?o=1234567890#job/{job_id}/run/{run_id}", ws.base)
    );
    assert!(run["end_time"].as_i64().unwrap() >= run["start_time"].as_i64().unwrap());
    assert!(run["run_duration"].as_i64().is_some());

    let task = &run["tasks"][0];
    assert_eq!(task["task_key"], "unit");
    assert_eq!(task["existing_cluster_id"], CLUSTER);
    assert_eq!(task["state"]["result_state"], "SUCCESS");
    assert_eq!(
        task["notebook_task"]["notebook_path"],
        "/Repos/ci/project/test/unit"
    );
    assert!(task["execution_duration"].as_i64().unwrap() > 0);
    let task_run_id = task["run_id"].as_i64().unwrap();
    assert_ne!(task_run_id, run_id);

    let output = ws.output(task_run_id).await;
    assert_eq!(output["notebook_output"]["truncated"], false);
    let result: Value =
        serde_json::from_str(output["notebook_output"]["result"].as_str().unwrap()).unwrap();
    assert_eq!(result, json!({ "greeting": "hi", "value": 42 }));
    assert_eq!(output["metadata"]["run_id"], task_run_id);
    assert!(output.get("error").is_none());
    // Jobs 2.1 and later refuse the parent's run id, even with a single task, as Databricks
    // does; only 2.0 still answers for a single-task run.
    for version in ["2.1", "2.2"] {
        let (status, body) = ws
            .get(&format!(
                "/api/{version}/jobs/runs/get-output?run_id={run_id}"
            ))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{version}: {body}");
        assert_eq!(error_code(&body), "INVALID_PARAMETER_VALUE");
        assert!(
            message(&body)
                .starts_with("Retrieving the output of runs with multiple tasks is not supported."),
            "{body}"
        );
    }
    let legacy = ws
        .ok(
            Method::GET,
            &format!("/api/2.0/jobs/runs/get-output?run_id={run_id}"),
            None,
        )
        .await;
    assert_eq!(legacy["notebook_output"], output["notebook_output"]);
    ws.emulator.shutdown().await;
}

#[tokio::test]
async fn a_failing_notebook_reports_its_exception_and_traceback() {
    let ws = Workspace::start(TOKEN).await;
    ws.create_repo(&ws.source()).await;
    let run_id = ws
        .submit(single_run(notebook_task(
            "unit",
            "/Repos/ci/project/test/failing",
        )))
        .await;
    let (run, _) = ws.wait_terminal(run_id).await;
    assert_eq!(run["state"]["life_cycle_state"], "TERMINATED");
    assert_eq!(run["state"]["result_state"], "FAILED");
    assert!(
        run["state"]["state_message"]
            .as_str()
            .unwrap()
            .starts_with("Task unit failed"),
        "{run}"
    );
    assert_eq!(
        run["status"]["termination_details"]["code"],
        "RUN_EXECUTION_ERROR"
    );
    assert_eq!(run["tasks"][0]["state"]["result_state"], "FAILED");

    let output = ws.output(run["tasks"][0]["run_id"].as_i64().unwrap()).await;
    assert_eq!(output["error"], "ValueError: expected 2, got 3");
    let trace = output["error_trace"].as_str().unwrap();
    assert!(
        trace.starts_with("Traceback (most recent call last):"),
        "{trace}"
    );
    assert!(
        trace.contains("<command-2>") && trace.contains("in check"),
        "{trace}"
    );
    assert!(
        !trace.contains("notebook_runner"),
        "the runner's frames are hidden: {trace}"
    );
    assert!(output.get("notebook_output").is_none());
    ws.emulator.shutdown().await;
}

#[tokio::test]
async fn multi_task_runs_pass_widgets_and_reject_parent_output() {
    let ws = Workspace::start(TOKEN).await;
    ws.create_repo(&ws.source()).await;
    let mut widgets = notebook_task("widgets", "/Repos/ci/project/test/widgets");
    widgets["notebook_task"]["base_parameters"] = json!({ "env": "prod" });
    let serverless = json!({ "task_key": "sql", "notebook_task": { "notebook_path": "/Repos/ci/project/test/sql" }, "depends_on": [] });
    let run_id = ws
        .submit(json!({ "run_name": "two", "tasks": [widgets, serverless] }))
        .await;
    let (run, _) = ws.wait_terminal(run_id).await;
    assert_eq!(run["state"]["result_state"], "FAILED");
    assert!(
        run["state"]["state_message"]
            .as_str()
            .unwrap()
            .contains("sql"),
        "{run}"
    );

    let (status, body) = ws
        .get(&format!("/api/2.1/jobs/runs/get-output?run_id={run_id}"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "INVALID_PARAMETER_VALUE");
    assert_eq!(
        message(&body),
        "Retrieving the output of runs with multiple tasks is not supported. Please retrieve the output of each individual task run instead."
    );

    let task_id = |key: &str| {
        run["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["task_key"] == key)
            .unwrap()["run_id"]
            .as_i64()
            .unwrap()
    };
    let widgets = ws.output(task_id("widgets")).await;
    let values: Value =
        serde_json::from_str(widgets["notebook_output"]["result"].as_str().unwrap()).unwrap();
    assert_eq!(
        values,
        json!({ "env": "prod", "mode": "fast", "missing": "InputWidgetNotDefined", "spark": "NameError" })
    );
    let sql = ws.output(task_id("sql")).await;
    let error = sql["error"].as_str().unwrap();
    assert!(
        error.starts_with("UnsupportedMagicCommand") && error.contains("%sql"),
        "{error}"
    );
    ws.emulator.shutdown().await;
}

#[tokio::test]
async fn submit_validates_like_databricks() {
    let ws = Workspace::start(TOKEN).await;
    let submit = |body: Value| ws.post("/api/2.1/jobs/runs/submit", body);

    let mut unknown = notebook_task("t", "/x");
    unknown["existing_cluster_id"] = json!("0000-nope");
    let (status, body) = submit(single_run(unknown)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({ "error_code": "INVALID_PARAMETER_VALUE", "message": "Cluster 0000-nope does not exist" })
    );

    let python = json!({ "task_key": "p", "spark_python_task": { "python_file": "x.py" } });
    let (status, body) = submit(single_run(python)).await;
    assert!(
        status == StatusCode::BAD_REQUEST
            && message(&body).contains("not supported by the emulator"),
        "{body}"
    );

    let (status, _) = submit(json!({ "tasks": [] })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let mut new_cluster = notebook_task("n", "/x");
    new_cluster
        .as_object_mut()
        .unwrap()
        .remove("existing_cluster_id");
    new_cluster["new_cluster"] = json!({ "spark_version": "15.4.x-scala2.12", "num_workers": 1 });
    let (status, body) = submit(single_run(new_cluster)).await;
    assert!(
        status == StatusCode::BAD_REQUEST && message(&body).contains("node_type_id"),
        "{body}"
    );

    let (status, body) = ws.get("/api/2.1/jobs/runs/get?run_id=123").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({ "error_code": "INVALID_PARAMETER_VALUE", "message": "Run 123 does not exist." })
    );
    let (status, _) = ws.get("/api/2.1/jobs/runs/get-output?run_id=123").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = ws
        .post("/api/2.1/jobs/runs/cancel", json!({ "run_id": 123 }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(ws.control(Method::GET, "/emulator/runs").await, json!([]));
    ws.emulator.shutdown().await;
}

#[tokio::test]
async fn an_idempotency_token_makes_a_second_submit_return_the_first_run() {
    let ws = Workspace::start(TOKEN).await;
    ws.create_repo(&ws.source()).await;
    let mut body = single_run(notebook_task("unit", "/Repos/ci/project/test/version"));
    body["idempotency_token"] = json!("build-42-attempt");
    let first = ws.submit(body.clone()).await;
    let second = ws.submit(body.clone()).await;
    assert_eq!(first, second);
    assert_eq!(
        ws.emulator.request_counts()["POST /api/2.1/jobs/runs/submit"],
        2
    );
    assert_eq!(
        ws.control(Method::GET, "/emulator/runs")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    body["idempotency_token"] = json!("x".repeat(65));
    let (status, _) = ws.post("/api/2.1/jobs/runs/submit", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    ws.emulator.shutdown().await;
}

#[tokio::test]
async fn a_missing_notebook_fails_the_task_not_the_submit() {
    let ws = Workspace::start(TOKEN).await;
    let run_id = ws
        .submit(single_run(notebook_task("gone", "/Repos/ci/nothing/here")))
        .await;
    let (run, _) = ws.wait_terminal(run_id).await;
    assert_eq!(run["state"]["life_cycle_state"], "INTERNAL_ERROR");
    assert_eq!(run["state"]["result_state"], "FAILED");
    let task = &run["tasks"][0];
    assert_eq!(task["state"]["life_cycle_state"], "INTERNAL_ERROR");
    let message = task["state"]["state_message"].as_str().unwrap();
    assert!(
        message.starts_with("Unable to access the notebook \"/Repos/ci/nothing/here\""),
        "{message}"
    );
    let output = ws.output(task["run_id"].as_i64().unwrap()).await;
    assert_eq!(output["error"], message);
    ws.emulator.shutdown().await;
}

#[tokio::test]
async fn cancel_stops_the_run_and_kills_the_notebook() {
    let ws = Workspace::start(TOKEN).await;
    ws.create_repo(&ws.source()).await;
    let report = ws.scratch.path().join("sleepy.report");
    let mut task = notebook_task("sleepy", "/Repos/ci/project/test/sleepy");
    task["notebook_task"]["base_parameters"] = json!({ "report": report });
    let run_id = ws.submit(single_run(task)).await;
    let (pid, cwd) = ws.wait_for_report(&report).await;
    assert!(
        cwd.ends_with("test"),
        "notebooks run in their folder: {}",
        cwd.display()
    );
    assert!(process_alive(pid));
    assert_eq!(ws.run(run_id).await["state"]["life_cycle_state"], "RUNNING");

    assert_eq!(
        ws.ok(
            Method::POST,
            "/api/2.1/jobs/runs/cancel",
            Some(json!({ "run_id": run_id }))
        )
        .await,
        json!({})
    );
    let (run, _) = ws.wait_terminal(run_id).await;
    assert_eq!(run["state"]["life_cycle_state"], "TERMINATED");
    assert_eq!(run["state"]["result_state"], "CANCELED");
    assert_eq!(run["state"]["state_message"], "Run cancelled.");
    assert_eq!(run["state"]["user_cancelled_or_timedout"], true);
    assert_eq!(
        run["status"]["termination_details"]["code"],
        "USER_CANCELED"
    );
    assert_eq!(run["tasks"][0]["state"]["result_state"], "CANCELED");
    assert!(
        !process_alive(pid),
        "the notebook process is gone once the run is terminal"
    );

    let runs = ws.control(Method::GET, "/emulator/runs").await;
    assert_eq!(runs[0]["run_id"], run_id);
    assert_eq!(runs[0]["result_state"], "CANCELED");
    assert_eq!(runs[0]["tasks"][0]["result_state"], "CANCELED");
    // Cancelling a finished run changes nothing.
    ws.ok(
        Method::POST,
        "/api/2.1/jobs/runs/cancel",
        Some(json!({ "run_id": run_id })),
    )
    .await;
    assert_eq!(ws.run(run_id).await["state"]["result_state"], "CANCELED");
    ws.emulator.shutdown().await;
}

#[tokio::test]
async fn a_run_past_its_timeout_ends_timedout() {
    let ws = Workspace::start(TOKEN).await;
    ws.create_repo(&ws.source()).await;
    let report = ws.scratch.path().join("timeout.report");
    let mut task = notebook_task("sleepy", "/Repos/ci/project/test/sleepy");
    task["notebook_task"]["base_parameters"] = json!({ "report": report });
    let mut body = single_run(task);
    body["timeout_seconds"] = json!(1);
    let run_id = ws.submit(body).await;
    let (run, _) = ws.wait_terminal(run_id).await;
    assert_eq!(run["state"]["result_state"], "TIMEDOUT", "{run}");
    assert_eq!(run["state"]["user_cancelled_or_timedout"], true);
    assert_eq!(run["tasks"][0]["state"]["result_state"], "TIMEDOUT");
    let (pid, _) = ws.wait_for_report(&report).await;
    assert!(!process_alive(pid));
    ws.emulator.shutdown().await;
}

#[tokio::test]
async fn git_source_runs_use_the_requested_commit() {
    let ws = Workspace::start(TOKEN).await;
    let source = ws.source();
    let v1 = source.git(&["rev-parse", "HEAD"]);
    source.write("test/version.py", &version_notebook("v2"));
    source.commit("v2");

    let body = |reference: Value| {
        let mut git_source = json!({ "git_url": source.dir, "git_provider": "gitHub" });
        git_source
            .as_object_mut()
            .unwrap()
            .extend(reference.as_object().unwrap().clone());
        let task =
            json!({ "task_key": "version", "notebook_task": { "notebook_path": "test/version" } });
        json!({ "run_name": "git", "tasks": [task], "git_source": git_source })
    };
    let pinned = ws.submit(body(json!({ "git_commit": v1 }))).await;
    let latest = ws.submit(body(json!({ "git_branch": "main" }))).await;

    let (run, _) = ws.wait_terminal(pinned).await;
    assert_eq!(run["state"]["result_state"], "SUCCESS", "{run}");
    assert_eq!(
        run["git_source"]["git_snapshot"]["used_commit"],
        v1.as_str()
    );
    assert_eq!(run["git_source"]["git_commit"], v1.as_str());
    assert_eq!(run["tasks"][0]["notebook_task"]["source"], "GIT");
    let task_run = |run: &Value| run["tasks"][0]["run_id"].as_i64().unwrap();
    assert_eq!(
        ws.output(task_run(&run)).await["notebook_output"]["result"],
        "v1"
    );

    let (latest_run, _) = ws.wait_terminal(latest).await;
    assert_eq!(
        ws.output(task_run(&latest_run)).await["notebook_output"]["result"],
        "v2"
    );

    let missing = ws.submit(body(json!({ "git_branch": "nope" }))).await;
    let (run, _) = ws.wait_terminal(missing).await;
    assert_eq!(run["state"]["life_cycle_state"], "INTERNAL_ERROR");
    assert_eq!(
        run["status"]["termination_details"]["code"],
        "REPOSITORY_CHECKOUT_FAILED"
    );
    ws.emulator.shutdown().await;
}

#[tokio::test]
async fn jobs_2_0_accepts_the_single_task_form() {
    let ws = Workspace::start(TOKEN).await;
    ws.create_repo(&ws.source()).await;
    let body = json!({
        "run_name": "legacy",
        "existing_cluster_id": CLUSTER,
        "notebook_task": { "notebook_path": "/Repos/ci/project/test/version" },
    });
    let answer = ws
        .ok(Method::POST, "/api/2.0/jobs/runs/submit", Some(body))
        .await;
    let run_id = answer["run_id"].as_i64().unwrap();
    ws.wait_terminal(run_id).await;

    let run = ws
        .ok(
            Method::GET,
            &format!("/api/2.0/jobs/runs/get?run_id={run_id}"),
            None,
        )
        .await;
    assert_eq!(run["state"]["result_state"], "SUCCESS");
    assert_eq!(
        run["task"]["notebook_task"]["notebook_path"],
        "/Repos/ci/project/test/version"
    );
    assert_eq!(run["cluster_spec"]["existing_cluster_id"], CLUSTER);
    assert!(run.get("status").is_none(), "status arrived with 2.1");
    let newer = ws
        .ok(
            Method::GET,
            &format!("/api/2.2/jobs/runs/get?run_id={run_id}"),
            None,
        )
        .await;
    assert_eq!(newer["status"]["state"], "TERMINATED");
    let output = ws
        .ok(
            Method::GET,
            &format!("/api/2.0/jobs/runs/get-output?run_id={run_id}"),
            None,
        )
        .await;
    assert_eq!(output["notebook_output"]["result"], "v1");
    ws.emulator.shutdown().await;
}

// ----- faults -----

#[tokio::test]
async fn status_faults_fire_the_given_number_of_times() {
    let ws = Workspace::start(TOKEN).await;
    ws.create_repo(&ws.source()).await;
    ws.emulator
        .set_faults(vec!["POST /api/2.1/jobs/runs/submit=503*2"
            .parse()
            .unwrap()]);
    let body = single_run(notebook_task("unit", "/Repos/ci/project/test/version"));
    for _ in 0..2 {
        let (status, answer) = ws.post("/api/2.1/jobs/runs/submit", body.clone()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error_code(&answer), "TEMPORARILY_UNAVAILABLE");
    }
    ws.submit(body).await;
    assert_eq!(
        ws.emulator.request_counts()["POST /api/2.1/jobs/runs/submit"],
        3
    );
    assert_eq!(
        ws.control(Method::GET, "/emulator/runs")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    ws.emulator.shutdown().await;
}

#[tokio::test]
async fn rate_limit_faults_carry_retry_after() {
    let ws = Workspace::start(TOKEN).await;
    ws.emulator.set_faults(vec![FaultRule {
        endpoint: "*".into(),
        fault: Fault::Status {
            status: 429,
            retry_after_secs: Some(1),
        },
        times: Some(1),
        probability: 1.0,
    }]);
    let response = ws
        .request(Method::GET, "/api/2.0/workspace/get-status?path=/")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        error_code(&response.json().await.unwrap()),
        "REQUEST_LIMIT_EXCEEDED"
    );
    let (status, _) = ws.get("/api/2.0/workspace/get-status?path=/").await;
    assert_eq!(status, StatusCode::OK, "the rule fired once");
    ws.emulator.shutdown().await;
}

#[tokio::test]
async fn dropped_answers_still_have_their_side_effects() {
    let ws = Workspace::start(TOKEN).await;
    let source = ws.source();
    ws.mkdirs("/Repos/ci").await;
    ws.emulator.set_faults(vec![
        "POST /api/2.0/repos=drop-after*1".parse().unwrap(),
        "POST /api/2.0/workspace/mkdirs=drop-before*1"
            .parse()
            .unwrap(),
    ]);

    let body = json!({ "url": source.url(), "provider": "gitHub", "path": "/Repos/ci/project" });
    let lost = ws
        .request(Method::POST, "/api/2.0/repos")
        .json(&body)
        .send()
        .await;
    assert!(
        lost.is_err(),
        "the client sees a broken connection: {lost:?}"
    );
    let created = ws
        .ok(
            Method::GET,
            "/api/2.0/workspace/get-status?path=/Repos/ci/project",
            None,
        )
        .await;
    assert_eq!(
        created["object_type"], "DIRECTORY",
        "the repo was created before the answer was lost"
    );
    let repo_id = created["object_id"].as_i64().unwrap();
    ws.ok(Method::GET, &format!("/api/2.0/repos/{repo_id}"), None)
        .await;

    let lost = ws
        .request(Method::POST, "/api/2.0/workspace/mkdirs")
        .json(&json!({ "path": "/Shared/x" }))
        .send()
        .await;
    assert!(lost.is_err());
    let (status, _) = ws.get("/api/2.0/workspace/get-status?path=/Shared/x").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "drop-before does not process the request"
    );
    assert_eq!(ws.emulator.request_counts()["POST /api/2.0/repos"], 1);
    ws.emulator.shutdown().await;
}

#[tokio::test]
async fn faults_can_be_set_over_http() {
    let ws = Workspace::start(TOKEN).await;
    let set = |rules: Value| {
        ws.request(Method::PUT, "/emulator/faults")
            .json(&rules)
            .send()
    };

    let bad = set(json!(["*=teapot"])).await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let good = set(json!(["GET /api/2.0/workspace/*=502*1", "*=delay:60*1"]))
        .await
        .unwrap();
    assert_eq!(good.status(), StatusCode::OK);

    let proxy = ws
        .request(Method::GET, "/api/2.0/workspace/get-status?path=/")
        .send()
        .await
        .unwrap();
    assert_eq!(proxy.status(), StatusCode::BAD_GATEWAY);
    assert!(proxy.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(proxy.text().await.unwrap().contains("502 Bad Gateway"));

    let started = Instant::now();
    let (status, _) = ws.get("/api/2.0/workspace/get-status?path=/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= ms(60), "the delay applied");
    ws.emulator.shutdown().await;
}

#[tokio::test]
async fn control_routes_need_the_token() {
    let ws = Workspace::start(TOKEN).await;
    let routes = [
        (Method::GET, "/emulator/runs"),
        (Method::GET, "/emulator/requests"),
        (Method::POST, "/emulator/requests/reset"),
        (Method::PUT, "/emulator/faults"),
    ];
    for (method, path) in routes {
        let url = format!("{}{path}", ws.base);
        let anonymous = ws.http.request(method.clone(), &url).json(&json!([]));
        let response = anonymous.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        let wrong = ws
            .http
            .request(method.clone(), &url)
            .bearer_auth("dapi-guess");
        let response = wrong.json(&json!([])).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let right = ws
            .request(method.clone(), path)
            .json(&json!([]))
            .send()
            .await;
        assert_eq!(right.unwrap().status(), StatusCode::OK, "{method} {path}");
    }
    ws.emulator.shutdown().await;
}

#[test]
fn listening_beyond_loopback_is_announced() {
    use databricks_azdo::emulator::exposure_warning;
    for quiet in ["127.0.0.1:8080", "[::1]:8080"] {
        assert_eq!(exposure_warning(quiet.parse().unwrap()), None, "{quiet}");
    }
    for (exposed, reach) in [
        ("0.0.0.0:8080", "every network interface"),
        ("[::]:8080", "every network interface"),
        ("192.168.1.5:8080", "a network interface"),
    ] {
        let warning = exposure_warning(exposed.parse().unwrap()).unwrap();
        assert!(warning.contains(exposed), "{warning}");
        assert!(warning.contains(reach), "{warning}");
        assert!(warning.contains("runs code on this machine"), "{warning}");
    }
}

/// `--listen 0.0.0.0:0`: stdout still starts with a URL this machine can use, and stderr says
/// where it really listens and what that exposes.
#[test]
fn the_binary_warns_when_it_listens_on_every_interface() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_databricks-azdo"))
        .args(["emulator", "--listen", "0.0.0.0:0", "--token", TOKEN])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let mut warning = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut warning)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let port = url.trim().rsplit(':').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(
        warning.contains(&format!(
            "listening on 0.0.0.0:{port} (every network interface"
        )),
        "{warning}"
    );
    assert!(warning.contains("runs code on this machine"), "{warning}");
}

// ----- shutdown -----

#[tokio::test]
async fn shutdown_kills_notebooks_and_removes_temporary_files() {
    let ws = Workspace::start(TOKEN).await;
    ws.create_repo(&ws.source()).await;
    let report = ws.scratch.path().join("shutdown.report");
    let mut task = notebook_task("sleepy", "/Repos/ci/project/test/sleepy");
    task["notebook_task"]["base_parameters"] = json!({ "report": report });
    ws.submit(single_run(task)).await;
    let (pid, checkout) = ws.wait_for_report(&report).await;
    assert!(checkout.exists());

    let base = ws.base.clone();
    ws.emulator.shutdown().await;
    wait_until_gone(pid).await;
    assert!(
        !checkout.exists(),
        "the checkout went with the emulator's temporary directory"
    );
    let after = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{base}/emulator/runs"))
        .send()
        .await;
    assert!(after.is_err(), "the server no longer answers");
}

/// `workspace/import` writes a file into an existing folder outside Repos (at most 10 MB);
/// `workspace/delete` removes a file, an empty folder, or with `recursive` a folder and all in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_files_are_imported_and_deleted() {
    use base64::Engine as _;
    let ws = Workspace::start(TOKEN).await;
    let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let import = |path: &str, content: String| json!({ "path": path, "format": "AUTO", "content": content, "overwrite": true });
    let (status, body) = ws
        .post(
            "/api/2.0/workspace/import",
            import("/Shared/ci/x.whl", encode(b"wheel")),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "no parent folder yet: {body}"
    );
    assert_eq!(error_code(&body), "RESOURCE_DOES_NOT_EXIST");

    ws.mkdirs("/Shared/ci/run").await;
    let (status, body) = ws
        .post(
            "/api/2.0/workspace/import",
            import("/Workspace/Shared/ci/run/x.whl", encode(b"wheel")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = ws
        .get("/api/2.0/workspace/export?path=/Shared/ci/run/x.whl")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["content"], encode(b"wheel"));
    let again =
        json!({ "path": "/Shared/ci/run/x.whl", "format": "AUTO", "content": encode(b"w") });
    let (status, body) = ws.post("/api/2.0/workspace/import", again).await;
    assert_eq!(
        error_code(&body),
        "RESOURCE_ALREADY_EXISTS",
        "{status}: {body}"
    );
    let huge = encode(&vec![0u8; 10 * 1024 * 1024 + 1]);
    let (status, body) = ws
        .post(
            "/api/2.0/workspace/import",
            import("/Shared/ci/run/big.whl", huge),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_code(&body), "MAX_NOTEBOOK_SIZE_EXCEEDED");

    let delete = |path: &str, recursive: bool| json!({ "path": path, "recursive": recursive });
    let (status, body) = ws
        .post("/api/2.0/workspace/delete", delete("/Shared/ci", false))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_code(&body), "DIRECTORY_NOT_EMPTY");
    let (status, body) = ws
        .post(
            "/api/2.0/workspace/delete",
            delete("/Workspace/Shared/ci", true),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = ws
        .get("/api/2.0/workspace/export?path=/Shared/ci/run/x.whl")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = ws
        .get("/api/2.0/workspace/get-status?path=/Shared/ci")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = ws
        .post("/api/2.0/workspace/delete", delete("/Shared/ci", true))
        .await;
    assert_eq!(
        error_code(&body),
        "RESOURCE_DOES_NOT_EXIST",
        "{status}: {body}"
    );
}
