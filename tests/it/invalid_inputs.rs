//! Bad input gets one clear error naming the input, exit code 2, and no request at all.

use crate::common::*;
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::tasks::TaskName;

async fn assert_rejected(task: TaskName, inputs: &[(&str, &str)], input: &str, needle: &str) {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    let mut env = with(
        &pipeline_env(&emulator, &project),
        &[
            ("repoPath", REPO_PATH),
            ("notebookPaths", "test/unit"),
            ("existingClusterId", CLUSTER),
        ],
    );
    for (key, value) in inputs {
        env = with(&env, &[(key, value)]);
        if value.is_empty() {
            env.remove(&format!("INPUT_{}", key.to_ascii_uppercase()));
            env.remove(*key);
        }
    }
    let outcome = run_task(task, env, OutputMode::Agent).await;
    let errors: Vec<&str> = outcome
        .stdout
        .lines()
        .filter(|l| l.starts_with("##vso[task.logissue type=error]"))
        .collect();
    assert_eq!(outcome.code, 2, "{inputs:?}: {}", outcome.stdout);
    assert_eq!(
        errors.len(),
        1,
        "{inputs:?}: exactly one error: {}",
        outcome.stdout
    );
    assert!(
        errors[0].contains(&format!("input `{input}`")),
        "{inputs:?}: names the input: {}",
        errors[0]
    );
    assert!(
        errors[0].contains(needle),
        "{inputs:?}: says `{needle}`: {}",
        errors[0]
    );
    assert_eq!(
        total_api_requests(&emulator),
        0,
        "{inputs:?}: no request reached the workspace"
    );
    outcome.assert_no_secret();
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_inputs() {
    let t = TaskName::RunNotebookTest;
    assert_rejected(
        t,
        &[("databricksHost", ""), ("DATABRICKS_HOST", "")],
        "databricksHost",
        "add DATABRICKS_HOST",
    )
    .await;
    assert_rejected(
        t,
        &[("databricksHost", "$(DATABRICKS_HOST)")],
        "databricksHost",
        "is not set",
    )
    .await;
    assert_rejected(
        t,
        &[("databricksHost", "http://adb-1.2.azuredatabricks.net")],
        "databricksHost",
        "https://",
    )
    .await;
    assert_rejected(
        t,
        &[(
            "databricksHost",
            "https://adb-1.2.azuredatabricks.net/api/2.0",
        )],
        "databricksHost",
        "path",
    )
    .await;
    assert_rejected(
        t,
        &[("databricksToken", ""), ("SECRET_DATABRICKS_TOKEN", "")],
        "databricksToken",
        "add DATABRICKS_TOKEN as a secret",
    )
    .await;
    assert_rejected(
        t,
        &[
            ("databricksToken", "dapi-test-5ecret%;]value with space"),
            (
                "SECRET_DATABRICKS_TOKEN",
                "dapi-test-5ecret%;]value with space",
            ),
        ],
        "databricksToken",
        "single word",
    )
    .await;
    assert_rejected(
        t,
        &[
            ("databricksToken", "dapi-test-5ecret%;]välue"),
            ("SECRET_DATABRICKS_TOKEN", "dapi-test-5ecret%;]välue"),
        ],
        "databricksToken",
        "non-ASCII",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repo_update_inputs() {
    let t = TaskName::RepoUpdate;
    assert_rejected(
        t,
        &[("mode", "createorupdat")],
        "mode",
        "did you mean `createOrUpdate`?",
    )
    .await;
    assert_rejected(t, &[("repoPath", "Repos/ci/x")], "repoPath", "absolute").await;
    for (path, why) in [
        (
            "/Repos/ci",
            "under /Repos a Git folder is /Repos/<folder>/<name>",
        ),
        (
            "/Repos/ci/project/sub",
            "under /Repos a Git folder is /Repos/<folder>/<name>",
        ),
        (
            "/Workspace/Repos/ci",
            "under /Repos a Git folder is /Repos/<folder>/<name>",
        ),
        (
            "/Workspace/Shared",
            "is too short: a Git folder lives in a folder",
        ),
        ("/Workspace", "is too short"),
    ] {
        assert_rejected(t, &[("repoPath", path)], "repoPath", why).await;
    }
    for (lines, why) in [
        ("test\n/abs", "line 2 (`/abs`) is absolute"),
        ("src/*", "line 1 (`src/*`) is not a cone pattern"),
        ("!tests", "is not a cone pattern"),
        ("a\\b", "is not a cone pattern"),
        ("a/../b", "has an empty, `.` or `..` segment"),
        ("a//b", "has an empty, `.` or `..` segment"),
        ("ok\r\nbad\rline", "contains a carriage return"),
    ] {
        assert_rejected(t, &[("sparseCheckout", lines)], "sparseCheckout", why).await;
    }
    assert_rejected(
        t,
        &[("repoPath", "/Repos/$(Build.BuildId)/x")],
        "repoPath",
        "not defined",
    )
    .await;
    assert_rejected(t, &[("repoPath", "")], "repoPath", "is required").await;
    assert_rejected(
        t,
        &[("repoId", "12x"), ("mode", "update"), ("repoPath", "")],
        "repoId",
        "positive whole number",
    )
    .await;
    assert_rejected(
        t,
        &[("branch", "main"), ("tag", "v1")],
        "tag",
        "cannot be combined",
    )
    .await;
    assert_rejected(
        t,
        &[("branch", "bad..name")],
        "branch",
        "not a valid Git ref",
    )
    .await;
    assert_rejected(
        t,
        &[("branch", "x\n##vso[task.complete result=Succeeded]")],
        "branch",
        "single line",
    )
    .await;
    assert_rejected(
        t,
        &[("gitProvider", "github.com")],
        "gitProvider",
        "is not one of",
    )
    .await;
    assert_rejected(
        t,
        &[
            ("gitProvider", ""),
            ("repoUrl", "https://git.example.com/r.git"),
        ],
        "gitProvider",
        "cannot be derived",
    )
    .await;
    assert_rejected(
        t,
        &[("repoUrl", "git@github.com:o/r.git")],
        "repoUrl",
        "not a URL",
    )
    .await;
    assert_rejected(
        t,
        &[("expectedCommit", "zzz")],
        "expectedCommit",
        "not a commit id",
    )
    .await;
    assert_rejected(
        t,
        &[("onCommitMismatch", "explode")],
        "onCommitMismatch",
        "is not one of",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values() {
    let t = TaskName::RepoUpdate;
    assert_rejected(t, &[("repoPath", "   ")], "repoPath", "is required").await;
    assert_rejected(
        t,
        &[("repoPath", &format!("/Repos/ci/{}", "x".repeat(5000)))],
        "repoPath",
        "bytes long",
    )
    .await;
    assert_rejected(
        t,
        &[("mode", "##vso[task.complete result=Succeeded]")],
        "mode",
        "is not one of",
    )
    .await;
    assert_rejected(
        t,
        &[("repoId", "1;2]%"), ("mode", "delete"), ("repoPath", "")],
        "repoId",
        "positive whole number",
    )
    .await;
    assert_rejected(
        t,
        &[("repoId", "7"), ("mode", "update")],
        "repoId",
        "cannot be combined",
    )
    .await;
    assert_rejected(
        t,
        &[("repoId", "7"), ("repoPath", "")],
        "repoId",
        "cannot be used to create",
    )
    .await;
    assert_rejected(
        t,
        &[("databricksHost", "ftp://adb-1.2.azuredatabricks.net")],
        "databricksHost",
        "unsupported scheme",
    )
    .await;
    assert_rejected(
        t,
        &[("databricksHost", "adb 1.2.azuredatabricks.net")],
        "databricksHost",
        "spaces",
    )
    .await;
    assert_rejected(
        t,
        &[("repoUrl", "https://user:pw@github.com/o/r.git")],
        "repoUrl",
        "password",
    )
    .await;
    assert_rejected(
        t,
        &[("repoUrl", "ftp://github.com/o/r.git")],
        "repoUrl",
        "not an HTTPS URL",
    )
    .await;
    assert_rejected(t, &[("branch", "-rf")], "branch", "not a valid Git ref").await;
    assert_rejected(t, &[("branch", "refs/heads/main")], "branch", "full ref").await;
    assert_rejected(t, &[("tag", "v 1")], "tag", "not a valid Git ref").await;
    assert_rejected(
        t,
        &[("expectedCommit", "abc")],
        "expectedCommit",
        "not a commit id",
    )
    .await;
    assert_rejected(
        t,
        &[("branch", ""), ("BUILD_SOURCEBRANCH", "refs/pull/1/merge")],
        "branch",
        "set branch or tag",
    )
    .await;
    let t = TaskName::RunNotebookTest;
    assert_rejected(
        t,
        &[("existingClusterId", "clüster")],
        "existingClusterId",
        "not a cluster id",
    )
    .await;
    assert_rejected(
        t,
        &[("notebookPaths", "../secrets")],
        "notebookPaths",
        "segment",
    )
    .await;
    assert_rejected(
        t,
        &[("notebookPaths", "  \n \t ")],
        "notebookPaths",
        "is required",
    )
    .await;
    assert_rejected(t, &[("parameters", "[1, 2]")], "parameters", "key=value").await;
    assert_rejected(
        t,
        &[("parameters", "{\"a\": {\"b\": 1}}")],
        "parameters",
        "parameters are strings",
    )
    .await;
    assert_rejected(
        t,
        &[("parameters", "=value")],
        "parameters",
        "not a parameter name",
    )
    .await;
    assert_rejected(
        t,
        &[("clusterMode", "new"), ("newClusterJson", "[]")],
        "newClusterJson",
        "must be a JSON object",
    )
    .await;
    assert_rejected(
        t,
        &[
            ("clusterMode", "new"),
            (
                "newClusterJson",
                "{\"spark_version\": \"s\", \"node_type_id\": \"n\", \"num_workers\": -1}",
            ),
        ],
        "newClusterJson",
        "whole number",
    )
    .await;
    assert_rejected(t, &[("clusterMode", "new"), ("newClusterJson", "{\"spark_version\": \"s\", \"node_type_id\": \"n\", \"autoscale\": {\"min_workers\": 3, \"max_workers\": 1}}")], "newClusterJson", "autoscale").await;
    assert_rejected(
        t,
        &[("timeoutMinutes", "1e9")],
        "timeoutMinutes",
        "out of range",
    )
    .await;
    assert_rejected(
        t,
        &[("timeoutMinutes", "NaN")],
        "timeoutMinutes",
        "out of range",
    )
    .await;
    assert_rejected(
        t,
        &[
            ("source", "git"),
            ("BUILD_SOURCEVERSION", ""),
            ("BUILD_SOURCEBRANCH", "refs/pull/1/merge"),
        ],
        "source",
        "commit to run is unknown",
    )
    .await;
    assert_rejected(
        t,
        &[("notebookPaths", &"n\n".repeat(1001))],
        "notebookPaths",
        "twice",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_notebook_test_inputs() {
    let t = TaskName::RunNotebookTest;
    assert_rejected(t, &[("notebookPaths", "")], "notebookPaths", "is required").await;
    assert_rejected(
        t,
        &[("notebookPaths", "test/unit"), ("repoPath", "")],
        "notebookPaths",
        "repoPath",
    )
    .await;
    assert_rejected(t, &[("notebookPaths", "a\na")], "notebookPaths", "twice").await;
    assert_rejected(
        t,
        &[("clusterMode", "serverles")],
        "clusterMode",
        "did you mean `serverless`?",
    )
    .await;
    assert_rejected(
        t,
        &[("existingClusterId", "")],
        "existingClusterId",
        "is required",
    )
    .await;
    assert_rejected(
        t,
        &[("existingClusterId", "a;b]")],
        "existingClusterId",
        "not a cluster id",
    )
    .await;
    assert_rejected(
        t,
        &[
            ("clusterMode", "new"),
            ("newClusterJson", "{\"spark_version\": 1"),
        ],
        "newClusterJson",
        "not valid JSON",
    )
    .await;
    assert_rejected(
        t,
        &[
            ("clusterMode", "new"),
            (
                "newClusterJson",
                "{\"node_type_id\": \"x\", \"num_workers\": 1}",
            ),
        ],
        "newClusterJson",
        "spark_version",
    )
    .await;
    assert_rejected(
        t,
        &[
            ("clusterMode", "new"),
            ("newClusterJson", "missing-file.json"),
        ],
        "newClusterJson",
        "readable file",
    )
    .await;
    assert_rejected(t, &[("parameters", "novalue")], "parameters", "key=value").await;
    assert_rejected(
        t,
        &[("timeoutMinutes", "-1")],
        "timeoutMinutes",
        "out of range",
    )
    .await;
    assert_rejected(
        t,
        &[("timeoutMinutes", "soon")],
        "timeoutMinutes",
        "not a number",
    )
    .await;
    assert_rejected(t, &[("source", "gti")], "source", "did you mean `git`?").await;
    assert_rejected(
        t,
        &[("source", "git"), ("notebookPaths", "/abs/path")],
        "notebookPaths",
        "relative",
    )
    .await;
    assert_rejected(
        t,
        &[("runName", &"x".repeat(5000))],
        "runName",
        "bytes long",
    )
    .await;
}

/// Input names and values, as a table cell.
type Inputs<'a> = &'a [(&'a str, &'a str)];

/// Inputs that would be read two ways (an empty path, a carriage return inside a line, a key
/// given twice): refused, naming the input, before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_inputs() {
    const DUPLICATE_IN_CLUSTER: &str = r#"{"spark_version": "s", "node_type_id": "n", "num_workers": 1, "custom_tags": {"team": "a", "team": "b"}}"#;
    let t = TaskName::RunNotebookTest;
    #[rustfmt::skip]
    let cases: &[(Inputs, &str, &str)] = &[
        (&[("notebookPaths", "/")], "notebookPaths", "workspace root"),
        (&[("notebookPaths", "test/unit\n/")], "notebookPaths", "line 2 (`/`) is the workspace root"),
        (&[("notebookPaths", "/Repos/ci/project/test/unit\r/Shared/x")], "notebookPaths", "carriage return"),
        (&[("notebookPaths", "test/unit\ntest/a\rb")], "notebookPaths", "line 2 (`test/a\\rb`) contains a carriage return"),
        (&[("parameters", "env=ci\rdebug=1")], "parameters", "carriage return"),
        (&[("parameters", r#"{"env": "ci", "env": "prod"}"#)], "parameters", "`env` is set twice"),
        (&[("parameters", r#"{"n": 1, "m": 2, "n": 1}"#)], "parameters", "`n` is set twice"),
        (&[("parameters", r#"{"env": null}"#)], "parameters", "parameters are strings"),
        (&[("clusterMode", "new"), ("newClusterJson", DUPLICATE_IN_CLUSTER)], "newClusterJson", "the key `team` twice"),
    ];
    for (inputs, input, needle) in cases {
        assert_rejected(t, inputs, input, needle).await;
    }
}

/// Inputs the other inputs make pointless are not silently dropped: a warning names them
/// before the first request, and the step goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_inputs_are_warned_about_before_any_request() {
    let run = TaskName::RunNotebookTest;
    let repo = TaskName::RepoUpdate;
    #[rustfmt::skip]
    let cases: &[(TaskName, Inputs, &str)] = &[
        (run, &[("source", "git")], "input `repoPath` is ignored with `source: git`"),
        (run, &[("repoUrl", "https://github.com/o/elsewhere.git")], "input `repoUrl` is ignored with `source: workspace`"),
        (run, &[("clusterMode", "serverless")], "input `existingClusterId` is ignored with `clusterMode: serverless`"),
        (run, &[("newClusterJson", "{\"spark_version\": \"s\"}")], "input `newClusterJson` is ignored with `clusterMode: existing`"),
        (repo, &[("mode", "delete"), ("branch", "main")], "input `branch` is ignored with `mode: delete`"),
        (repo, &[("mode", "delete"), ("onCommitMismatch", "fail")], "input `onCommitMismatch` is ignored with `mode: delete`"),
        (repo, &[("mode", "delete"), ("sparseCheckout", "tests")], "input `sparseCheckout` is ignored with `mode: delete`"),
        (run, &[("performanceTarget", "STANDARD")], "input `performanceTarget` is ignored with `clusterMode: existing`"),
        (repo, &[("mode", "update"), ("repoUrl", "https://github.com/o/elsewhere.git")], "input `repoUrl` is ignored with `mode: update`"),
        (repo, &[("branch", "main"), ("onCommitMismatch", "fail")], "input `onCommitMismatch` is ignored: there is no commit"),
    ];
    for (task, inputs, warning) in cases {
        let emulator = emulator().await;
        let project = Project::new(&[("unit", PASSING)]);
        let env = with(
            &pipeline_env(&emulator, &project),
            &[
                ("repoPath", REPO_PATH),
                ("notebookPaths", "test/unit"),
                ("existingClusterId", CLUSTER),
            ],
        );
        let created = run_task(TaskName::RepoUpdate, env.clone(), OutputMode::Agent).await;
        assert_eq!(created.code, 0, "{}", created.stdout);
        let outcome = run_task(*task, with(&env, inputs), OutputMode::Agent).await;
        assert_eq!(outcome.code, 0, "{inputs:?}: {}", outcome.stdout);
        let lines: Vec<&str> = outcome.stdout.lines().collect();
        let warned = lines
            .iter()
            .position(|l| l.starts_with("##vso[task.logissue type=warning]") && l.contains(warning))
            .unwrap_or_else(|| panic!("{inputs:?}: warns `{warning}`: {}", outcome.stdout));
        let first_request = lines
            .iter()
            .position(|l| l.contains("Databricks workspace:"))
            .unwrap_or(lines.len());
        assert!(
            warned < first_request,
            "{inputs:?}: warned first: {}",
            outcome.stdout
        );
        emulator.shutdown().await;
    }
}
