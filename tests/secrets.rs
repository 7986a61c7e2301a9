//! Secret hunt: the token never appears in anything we print, whatever the path (success,
//! failures, retries, bad input, debug mode, every output mode), except in the one
//! `##vso[task.setsecret]` line that tells the agent to mask it.
mod common;

use common::*;
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
        "GET /api/2.1/jobs/runs/get=503*2",
        "POST /api/2.1/jobs/runs/submit=drop-after*1",
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
                all.contains("##[debug]GET /api/2.1/jobs/runs/get: ok in"),
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
