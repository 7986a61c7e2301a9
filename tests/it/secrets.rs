//! Secret hunt: the token never appears in anything we print, whatever the path (success,
//! failures, retries, bad input, debug mode, every output mode), except in the one
//! `##vso[task.setsecret]` line that tells the agent to mask it.

use std::collections::BTreeMap;

use crate::common::*;
use databricks_azdo::emulator::Emulator;
use databricks_azdo::pipeline::escape::{escape_message, escape_property};
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::tasks::TaskName;

const ECHO_PARAM: &str = "# Databricks notebook source\nv = dbutils.widgets.get('leak')\nprint(v)\nraise ValueError('leaking ' + v)\n";

fn assert_clean(label: &str, outcome: &Outcome, secret: &str) {
    for (stream, text) in [("stdout", &outcome.stdout), ("stderr", &outcome.stderr)] {
        for line in text.lines() {
            if line.starts_with("##vso[task.setsecret]") {
                continue;
            }
            assert!(
                !line.contains(secret),
                "{label}: {stream} leaks the secret: {line}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_never_appears_in_output() {
    let emulator = emulator_with(faults(&[
        "GET /api/2.2/jobs/runs/get=503*2",
        "POST /api/2.2/jobs/runs/submit=drop-after*1",
    ]))
    .await;
    let project = Project::new(&[("unit", PASSING), ("leaky", ECHO_PARAM)]);
    let reports = tempfile::tempdir().unwrap();
    let reports_dir = reports.path().display().to_string();
    let base = with(
        &pipeline_env(&emulator, &project),
        &[
            ("SYSTEM_DEBUG", "true"),
            ("AGENT_TEMPDIRECTORY", &reports_dir),
        ],
    );

    let update = with(&base, &[("repoPath", REPO_PATH)]);
    let tests = with(
        &base,
        &[
            ("repoPath", REPO_PATH),
            ("existingClusterId", CLUSTER),
            ("notebookPaths", "test/unit\ntest/leaky"),
            ("parameters", &format!("leak={TOKEN}")),
        ],
    );
    for mode in [OutputMode::Agent, OutputMode::Terminal, OutputMode::Json] {
        let outcome = run_task(TaskName::RepoUpdate, update.clone(), mode).await;
        assert_eq!(outcome.code, 0, "{}", outcome.stdout);
        assert_clean(&format!("repo update {mode:?}"), &outcome, TOKEN);
        let outcome = run_task(TaskName::RunNotebookTest, tests.clone(), mode).await;
        assert_eq!(
            outcome.code, 1,
            "the leaky notebook fails: {}",
            outcome.stdout
        );
        assert_clean(&format!("notebook test {mode:?}"), &outcome, TOKEN);
        let all = format!("{}{}", outcome.stdout, outcome.stderr);
        assert!(
            all.contains("leaking ***"),
            "the notebook's echo is masked: {all}"
        );
        if mode == OutputMode::Agent {
            assert!(
                all.contains("##[debug]GET /api/2.2/jobs/runs/get: ok in"),
                "debug lines are on: {all}"
            );
        }
    }

    // The test results and the summary written for the agent are masked too.
    let mut files = 0;
    for entry in std::fs::read_dir(reports.path()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(
            !text.contains(TOKEN),
            "a report file leaks the token: {text}"
        );
        assert!(text.contains("leaking ***"), "{text}");
        files += 1;
    }
    assert!(files >= 2, "JUnit and summary files were written");

    // A wrong token is a secret too, on the error path.
    let wrong = "dapi-wrong%;]token";
    let outcome = run_task(
        TaskName::RunNotebookTest,
        with(
            &tests,
            &[
                ("databricksToken", wrong),
                ("SECRET_DATABRICKS_TOKEN", wrong),
            ],
        ),
        OutputMode::Agent,
    )
    .await;
    assert_eq!(outcome.code, 3);
    assert_clean("wrong token", &outcome, wrong);

    // Malformed tokens are rejected without being echoed.
    for malformed in [
        "dapi secret with spaces",
        "dapi-ünïcode-secret",
        "dapi\u{7}bell",
    ] {
        let outcome = run_task(
            TaskName::RepoUpdate,
            with(
                &update,
                &[
                    ("databricksToken", malformed),
                    ("SECRET_DATABRICKS_TOKEN", malformed),
                ],
            ),
            OutputMode::Agent,
        )
        .await;
        assert_eq!(outcome.code, 2, "{}", outcome.stdout);
        assert_clean("malformed token", &outcome, malformed);
        assert_clean("malformed token", &outcome, malformed.trim());
    }
    emulator.shutdown().await;
}

/// Exits with `pad_exit` x's and the `leak` parameter.
const EXIT_PADDED: &str = "# Databricks notebook source\nv = dbutils.widgets.get('leak')\ndbutils.notebook.exit('x' * int(dbutils.widgets.get('pad_exit')) + v)\n";
/// Raises `ValueError` with `pad_error` y's and the `leak` parameter.
const RAISE_PADDED: &str = "# Databricks notebook source\nv = dbutils.widgets.get('leak')\nraise ValueError('y' * int(dbutils.widgets.get('pad_error')) + v)\n";

/// A secret long enough to be cut by a shortening limit.
const LONG: &str = "L0NG-S3CRET-abcdefghijklmnopqrstuvwxyz0123456789";

/// Every way `secret` may be spelled once something transformed it: as it is, escaped for
/// XML, JSON, a Markdown table or a logging command, and (for a long one) its first part.
fn spellings(secret: &str) -> Vec<String> {
    let xml = secret
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;");
    let json = serde_json::to_string(secret).unwrap();
    let mut all = vec![
        secret.to_string(),
        xml,
        json[1..json.len() - 1].to_string(),
        secret.replace('|', "\\|"),
        escape_message(secret),
        escape_property(secret),
    ];
    if secret.len() > 20 {
        all.push(secret[..4].to_string());
    }
    all.sort();
    all.dedup();
    all
}

/// The JUnit file and the summary written to `dir`.
fn reports(dir: &std::path::Path) -> Vec<(String, String)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            (path.display().to_string(), text)
        })
        .collect()
}

fn notebook_test_env(
    base: &BTreeMap<String, String>,
    secret: &str,
    pad_exit: usize,
    pad_error: usize,
    reports: &std::path::Path,
) -> BTreeMap<String, String> {
    let parameters = serde_json::json!({
        "leak": secret,
        "pad_exit": pad_exit.to_string(),
        "pad_error": pad_error.to_string(),
    });
    with(
        base,
        &[
            ("repoPath", REPO_PATH),
            ("existingClusterId", CLUSTER),
            ("notebookPaths", "test/exit\ntest/raise"),
            ("parameters", &parameters.to_string()),
            ("SECRET_LEAK", secret),
            ("AGENT_TEMPDIRECTORY", &reports.display().to_string()),
            // A step of its own each time: the same step would get the first run back.
            ("SYSTEM_TASKINSTANCEID", &next_step_id()),
        ],
    )
}

async fn project_with_padded_notebooks(emulator: &Emulator) -> (Project, BTreeMap<String, String>) {
    let project = Project::new(&[("exit", EXIT_PADDED), ("raise", RAISE_PADDED)]);
    let base = pipeline_env(emulator, &project);
    let update = run_task(
        TaskName::RepoUpdate,
        with(&base, &[("repoPath", REPO_PATH)]),
        OutputMode::Agent,
    )
    .await;
    assert_eq!(update.code, 0, "{}", update.stdout);
    (project, base)
}

/// Item: mask before you transform. A secret with characters that XML, JSON, Markdown or the
/// agent escape, or cut by one of our shortening limits, is masked in every output: log lines,
/// output variables, the JUnit file, the summary and the JSON document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_masked_before_they_are_escaped_or_shortened() {
    let emulator = emulator().await;
    let (_project, base) = project_with_padded_notebooks(&emulator).await;
    // (what, secret, x's before it in the exit value, y's before it in the error)
    let shapes: &[(&str, &str, usize, usize)] = &[
        ("XML specials", "s3&c<r>e\"t'q", 0, 0),
        ("JSON specials", "s3cr\\et\"json/x", 0, 0),
        ("a pipe and a backtick", "pi|pe`s3cret", 0, 0),
        ("logging command specials", "pct%AZP;]s3c", 0, 0),
        // The printed output stops at 2000 characters.
        ("cut at the printed output's limit", LONG, 1995, 0),
        // "ValueError: " and 283 y's: the first line of the error stops at 300.
        ("cut at the failure message's limit", LONG, 0, 283),
        // A summary cell stops at 200: the output, and "failed: ValueError: " + the error.
        ("cut at the summary's limit", LONG, 195, 175),
    ];
    for &(what, secret, pad_exit, pad_error) in shapes {
        for mode in [OutputMode::Agent, OutputMode::Terminal, OutputMode::Json] {
            let dir = tempfile::tempdir().unwrap();
            let env = notebook_test_env(&base, secret, pad_exit, pad_error, dir.path());
            let outcome = run_task(TaskName::RunNotebookTest, env, mode).await;
            assert_eq!(outcome.code, 1, "{what}: {}", outcome.stdout);
            let mut outputs = vec![
                ("stdout".to_string(), outcome.stdout.clone()),
                ("stderr".to_string(), outcome.stderr.clone()),
            ];
            outputs.extend(reports(dir.path()));
            if mode == OutputMode::Agent {
                assert_eq!(outputs.len(), 4, "{what}: JUnit and summary are written");
            }
            for (name, text) in &outputs {
                for line in text.lines() {
                    if line.starts_with("##vso[task.setsecret]") {
                        continue;
                    }
                    for spelling in spellings(secret) {
                        assert!(
                            !line.contains(&spelling),
                            "{what}, {mode:?}: {name} shows `{spelling}`: {line}"
                        );
                    }
                }
            }
            let all: String = outputs.iter().map(|(_, text)| text.as_str()).collect();
            assert!(all.contains("***"), "{what}, {mode:?}: masked: {all}");
        }
    }
    emulator.shutdown().await;
}

/// Item: masking never breaks a document. A secret that is a digit, a letter, a word of the
/// markup or a character JSON, XML or Markdown is made of is masked in the values; the JUnit
/// file stays XML, the summary keeps its table, the JSON document and `notebookOutput` stay
/// JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masking_never_breaks_a_document() {
    let emulator = emulator().await;
    let (_project, base) = project_with_padded_notebooks(&emulator).await;
    for secret in [
        "1", "a", "e", "name", "testcase", "time", "failure", "<", ">", "&", "\"", "'", "/", ":",
        "{", ",", "*", "|", "`", "\\", "-",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let env = notebook_test_env(&base, &format!("value-{secret}"), 0, 0, dir.path());
        let env = with(&env, &[("SECRET_SHORT", secret)]);
        let outcome = run_task(TaskName::RunNotebookTest, env.clone(), OutputMode::Agent).await;
        assert_eq!(outcome.code, 1, "{secret}: {}", outcome.stdout);

        let (junit, summary) = junit_and_summary(&outcome.stdout);
        let xml = std::fs::read_to_string(&junit).unwrap();
        let document = roxmltree::Document::parse(&xml).unwrap_or_else(|e| {
            panic!("secret {secret:?}: the JUnit file is not XML ({e}):\n{xml}")
        });
        // One suite per notebook: one failure and two cases in all.
        let failures: usize = document
            .descendants()
            .filter(|n| n.has_tag_name("testsuite"))
            .map(|n| n.attribute("failures").unwrap().parse::<usize>().unwrap())
            .sum();
        assert_eq!(failures, 1, "{secret:?}: {xml}");
        let cases: Vec<_> = document
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases.len(), 2, "{secret:?}: {xml}");
        for node in document.descendants() {
            let texts = node
                .attributes()
                .filter(|a| matches!(a.name(), "name" | "message"))
                .map(|a| a.value())
                .chain(node.text());
            // The mask itself is made of `*`.
            for text in texts.filter(|_| secret != "*") {
                assert!(!text.contains(secret), "{secret:?} shows in {text:?}");
            }
        }

        let markdown = std::fs::read_to_string(&summary).unwrap();
        let table = summary_table(&markdown);
        assert_eq!(
            table.len(),
            3,
            "{secret:?}: header and two rows:\n{markdown}"
        );
        assert!(
            table.iter().all(|row| row.len() == 5),
            "{secret:?}: five cells a row: {table:?}\n{markdown}"
        );

        let output = output_variable(&outcome.stdout, "notebookOutput").expect("notebookOutput");
        let value: serde_json::Value = serde_json::from_str(&output)
            .unwrap_or_else(|e| panic!("{secret:?}: notebookOutput is not JSON ({e}): {output}"));
        assert_eq!(value.as_object().map(|o| o.len()), Some(2), "{output}");

        let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Json).await;
        let document: serde_json::Value =
            serde_json::from_str(&outcome.stdout).unwrap_or_else(|e| {
                panic!(
                    "{secret:?}: the JSON document is not JSON ({e}): {}",
                    outcome.stdout
                )
            });
        assert_eq!(document["notebooks"].as_array().map(Vec::len), Some(2));
        assert_eq!(document["exitCode"], 1, "numbers are not masked");
    }
    emulator.shutdown().await;
}

/// The JUnit file and the summary a run in agent mode published.
fn junit_and_summary(stdout: &str) -> (String, String) {
    let junit = stdout
        .lines()
        .find(|l| l.starts_with("##vso[results.publish "))
        .and_then(|l| l.split("resultFiles=").nth(1))
        .map(|f| f.trim_end_matches(']').to_string())
        .expect("a JUnit file is published");
    let summary = stdout
        .lines()
        .find_map(|l| l.strip_prefix("##vso[task.uploadsummary]"))
        .expect("a summary is attached")
        .to_string();
    (junit, summary)
}

/// The value of an output variable set with `##vso[task.setvariable]`, unescaped.
fn output_variable(stdout: &str, name: &str) -> Option<String> {
    let prefix = format!("##vso[task.setvariable variable={name};");
    let line = stdout.lines().find(|l| l.starts_with(&prefix))?;
    let message = &line[line.find(']')? + 1..];
    Some(
        message
            .replace("%0D", "\r")
            .replace("%0A", "\n")
            .replace("%AZP25", "%"),
    )
}

/// Item: no secret in our own errors. A URL with credentials, a token in its query or its
/// fragment is refused, or used, without repeating the secret part: the workspace host, the
/// repository URL of both tasks, and the agent's proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_with_credentials_are_never_repeated() {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    let base = pipeline_env(&emulator, &project);
    let update = with(&base, &[("repoPath", REPO_PATH)]);
    let from_git = with(
        &base,
        &[
            ("source", "git"),
            ("notebookPaths", "test/unit"),
            ("existingClusterId", CLUSTER),
            ("branch", "main"),
        ],
    );
    let refused: Vec<(TaskName, &BTreeMap<String, String>, &str, &str)> = vec![
        (
            TaskName::RepoUpdate,
            &update,
            "databricksHost",
            "https://ci:S3CRET@adb-1.2.azuredatabricks.net",
        ),
        (
            TaskName::RepoUpdate,
            &update,
            "databricksHost",
            "https://S3CRET@adb-1.2.azuredatabricks.net",
        ),
        (
            TaskName::RepoUpdate,
            &update,
            "databricksHost",
            "https://adb-1.2.azuredatabricks.net/?token=S3CRET",
        ),
        (
            TaskName::RepoUpdate,
            &update,
            "databricksHost",
            "https://adb-1.2.azuredatabricks.net/?o=1&S3CRET",
        ),
        (
            TaskName::RepoUpdate,
            &update,
            "databricksHost",
            "http://ci:S3CRET@adb-1.2.azuredatabricks.net",
        ),
        (
            TaskName::RepoUpdate,
            &update,
            "databricksHost",
            "ftp://ci:S3CRET@adb-1.2.azuredatabricks.net",
        ),
        (
            TaskName::RepoUpdate,
            &update,
            "databricksHost",
            "https://ci:S3CRET@adb-1.2.azuredatabricks.net/api/2.0",
        ),
        (
            TaskName::RepoUpdate,
            &update,
            "databricksHost",
            "https://ci:S3CRET@",
        ),
        (
            TaskName::RepoUpdate,
            &update,
            "databricksHost",
            "https://ci:S3CRET@adb.net:99999",
        ),
        (
            TaskName::RepoUpdate,
            &update,
            "databricksHost",
            "https://ci:S3CRET@hóst.net",
        ),
        (
            TaskName::RepoUpdate,
            &update,
            "databricksHost",
            "ci:S3#CRET@adb-1.2.azuredatabricks.net",
        ),
        (
            TaskName::RunNotebookTest,
            &from_git,
            "databricksHost",
            "https://ci:S3CRET@adb-1.2.azuredatabricks.net",
        ),
        (
            TaskName::RepoUpdate,
            &update,
            "repoUrl",
            "ftp://ci:S3CRET@github.com/o/r.git",
        ),
        (
            TaskName::RepoUpdate,
            &update,
            "repoUrl",
            "https://github.com/o/r.git?token=S3CRET",
        ),
        (
            TaskName::RepoUpdate,
            &update,
            "repoUrl",
            "https://github.com/o/r.git#S3CRET",
        ),
        (
            TaskName::RepoUpdate,
            &update,
            "repoUrl",
            "S3CRET@github.com:o/r.git",
        ),
        (
            TaskName::RepoUpdate,
            &update,
            "repoUrl",
            "https://ci:S3CRET@github.com/o/r .git",
        ),
        (
            TaskName::RunNotebookTest,
            &from_git,
            "repoUrl",
            "https://github.com/o/r.git?token=S3CRET",
        ),
        (
            TaskName::RunNotebookTest,
            &from_git,
            "repoUrl",
            "ftp://ci:S3CRET@github.com/o/r.git",
        ),
        (
            TaskName::RepoUpdate,
            &update,
            "AGENT_PROXYURL",
            "proxy.corp:8080?token=S3CRET",
        ),
        (
            TaskName::RepoUpdate,
            &update,
            "AGENT_PROXYURL",
            "ftp://ci:S3CRET@proxy.corp:8080",
        ),
    ];
    for (task, env, input, value) in refused {
        for mode in [OutputMode::Agent, OutputMode::Json] {
            let outcome = run_task(task, with(env, &[(input, value)]), mode).await;
            assert_eq!(
                outcome.code, 2,
                "{input}={value}: {}{}",
                outcome.stdout, outcome.stderr
            );
            let all = format!("{}{}", outcome.stdout, outcome.stderr);
            assert!(
                all.contains(input_label(input)),
                "{input}={value}: names the input: {all}"
            );
            // A proxy password is a secret the agent is told to mask, as the token is.
            let printed = all
                .lines()
                .filter(|l| !l.starts_with("##vso[task.setsecret]"));
            for line in printed {
                assert!(!line.contains("S3"), "{input}={value}, {mode:?}: {line}");
            }
        }
    }
    assert_eq!(
        total_api_requests(&emulator),
        0,
        "refused before any request"
    );

    // A proxy URL with a token in its query is used, and shown without it in debug lines.
    let outcome = run_task(
        TaskName::RepoUpdate,
        with(
            &update,
            &[
                ("AGENT_PROXYURL", "http://proxy.corp:8080/?token=S3CRET"),
                ("AGENT_PROXYBYPASSLIST", r#"["127\\.0\\.0\\.1"]"#),
                ("SYSTEM_DEBUG", "true"),
            ],
        ),
        OutputMode::Agent,
    )
    .await;
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    assert!(
        outcome
            .stdout
            .contains("through the agent's proxy http://proxy.corp:8080/?token=***"),
        "{}",
        outcome.stdout
    );
    assert!(!outcome.stdout.contains("S3CRET"), "{}", outcome.stdout);
    emulator.shutdown().await;
}

/// How an error names the input (variables by their agent name).
fn input_label(input: &str) -> &str {
    match input {
        "AGENT_PROXYURL" => "Agent.ProxyUrl",
        other => other,
    }
}
