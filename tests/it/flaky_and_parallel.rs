//! `retries` (a notebook that passes on a later attempt is reported as flaky, never silently;
//! one that fails every attempt says how many it made) and `maxParallel` (at most N notebooks
//! at once, still one run and one submit; a failure does not stop the notebooks after it).

use crate::common::*;
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::tasks::TaskName;

/// Fails on its first attempt and passes on the next: the first attempt leaves a mark in a
/// volume, which the emulator keeps between the attempts.
const FLAKY: &str = r#"# Databricks notebook source
import os
mark = "/Volumes/main/ci/state/flaky-mark"
os.makedirs(os.path.dirname(mark), exist_ok=True)
if not os.path.exists(mark):
    open(mark, "w").write("attempt 1")
    raise ConnectionResetError("warehouse connection reset by peer")
dbutils.notebook.exit("passed once the warehouse answered")
"#;

const SLOW: &str = r#"# Databricks notebook source
import time
time.sleep(0.4)
dbutils.notebook.exit("done")
"#;

async fn run(
    emulator: &databricks_azdo::emulator::Emulator,
    notebooks: &[(&str, &str)],
    inputs: &[(&str, &str)],
) -> (Outcome, String, tempfile::TempDir) {
    let project = Project::new(notebooks);
    let paths: Vec<String> = notebooks.iter().map(|(n, _)| format!("test/{n}")).collect();
    let reports = tempfile::tempdir().unwrap();
    let joined = paths.join("\n");
    let temp = reports.path().display().to_string();
    let mut settings: Vec<(&str, &str)> = vec![
        ("source", "git"),
        ("existingClusterId", CLUSTER),
        ("notebookPaths", &joined),
        ("AGENT_TEMPDIRECTORY", &temp),
    ];
    settings.extend_from_slice(inputs);
    let env = with(&pipeline_env(emulator, &project), &settings);
    let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;
    let junit = published_junit(&outcome.stdout);
    (outcome, junit, reports)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notebook_that_passes_on_a_retry_is_reported_as_flaky() {
    let emulator = emulator().await;
    let (outcome, junit, _reports) = run(
        &emulator,
        &[("flaky", FLAKY), ("unit", PASSING)],
        &[("retries", "2"), ("retryIntervalSeconds", "0")],
    )
    .await;
    let log = &outcome.stdout;
    assert_eq!(outcome.code, 0, "{log}");
    assert!(
        log.contains("A failed notebook is run again up to 2 times (retries)"),
        "{log}"
    );
    assert!(
        log.contains("test/flaky: TERMINATED FAILED (attempt 1)"),
        "{log}"
    );
    assert!(log.contains("PASS test/flaky: TERMINATED SUCCESS"), "{log}");
    assert!(log.contains(", attempt 2\n"), "{log}");
    assert!(
        log.contains("##vso[task.logissue type=warning]test/flaky passed on attempt 2 (flaky); attempt 1 failed: ConnectionResetError: warehouse connection reset by peer"),
        "{log}"
    );
    assert!(
        log.contains("##vso[task.complete result=SucceededWithIssues]2 of 2 notebooks passed; 1 passed only on a retry (flaky)"),
        "{log}"
    );
    // The Tests tab: passed, with the failed attempt as a flakyFailure (Surefire's form).
    assert!(
        junit.contains(r#"<flakyFailure message="passed on attempt 2 (flaky); attempt 1 failed: ConnectionResetError: warehouse connection reset by peer"/>"#),
        "{junit}"
    );
    assert!(!junit.contains("<failure"), "{junit}");
    let runs = emulator_runs(&emulator).await;
    let attempts: Vec<(String, u64)> = runs[0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["task_key"].as_str().unwrap().to_string(),
                t["attempt_number"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [
            ("flaky".to_string(), 0),
            ("unit".to_string(), 0),
            ("flaky".to_string(), 1)
        ]
    );
    assert_eq!(count(&emulator, "POST /api/2.2/jobs/runs/submit"), 1);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notebook_that_fails_every_attempt_says_how_many_it_made() {
    let emulator = emulator().await;
    let (outcome, junit, _reports) = run(
        &emulator,
        &[("broken", FAILING)],
        &[("retries", "1"), ("retryIntervalSeconds", "0")],
    )
    .await;
    let log = &outcome.stdout;
    assert_eq!(outcome.code, 1, "{log}");
    assert!(log.contains("FAIL test/broken: TERMINATED FAILED"), "{log}");
    assert!(log.contains("(attempt 2 of 2)"), "{log}");
    assert!(!log.contains("flaky"), "{log}");
    assert!(junit.contains("<failure"), "{junit}");
    let runs = emulator_runs(&emulator).await;
    assert_eq!(runs[0]["tasks"].as_array().unwrap().len(), 2);
    // As submitted: one retry, no wait, and a notebook that timed out is not retried.
    let run_id = output_variable(log, "runId").unwrap();
    let run = reqwest::Client::new()
        .get(format!(
            "{}/api/2.2/jobs/runs/get?run_id={run_id}",
            emulator.base_url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let task = &run["tasks"][0];
    assert_eq!(
        (
            &task["max_retries"],
            &task["min_retry_interval_millis"],
            &task["retry_on_timeout"]
        ),
        (
            &serde_json::json!(1),
            &serde_json::json!(0),
            &serde_json::json!(false)
        ),
        "{task}"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_retries_a_failed_notebook_runs_once() {
    let emulator = emulator().await;
    let (outcome, _junit, _reports) = run(&emulator, &[("broken", FAILING)], &[]).await;
    assert_eq!(outcome.code, 1, "{}", outcome.stdout);
    assert!(!outcome.stdout.contains("attempt"), "{}", outcome.stdout);
    let runs = emulator_runs(&emulator).await;
    assert_eq!(runs[0]["tasks"].as_array().unwrap().len(), 1);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_parallel_runs_at_most_n_notebooks_at_once_and_a_failure_does_not_stop_the_rest() {
    let emulator = emulator().await;
    let notebooks = [
        ("a", SLOW),
        ("b", FAILING),
        ("c", SLOW),
        ("d", SLOW),
        ("e", SLOW),
    ];
    let (outcome, junit, _reports) = run(&emulator, &notebooks, &[("maxParallel", "2")]).await;
    let log = &outcome.stdout;
    assert_eq!(outcome.code, 1, "{log}");
    assert!(
        log.contains("At most 2 notebooks at once (maxParallel)"),
        "{log}"
    );
    for name in ["a", "c", "d", "e"] {
        assert!(log.contains(&format!("PASS test/{name}:")), "{name}: {log}");
    }
    assert!(log.contains("FAIL test/b:"), "{log}");
    assert_eq!(junit.matches("<testcase").count(), 5, "{junit}");
    let runs = emulator_runs(&emulator).await;
    assert_eq!(runs.len(), 1, "one run");
    assert_eq!(count(&emulator, "POST /api/2.2/jobs/runs/submit"), 1);
    assert_eq!(runs[0]["peak_running_tasks"], 2, "{:#}", runs[0]);
    let lanes: Vec<(String, Vec<String>)> = runs[0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["task_key"].as_str().unwrap().to_string(),
                serde_json::from_value(t["depends_on"].clone()).unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, Vec<String>)> = [
        ("a", vec![]),
        ("b", vec![]),
        ("c", vec!["a"]),
        ("d", vec!["b"]),
        ("e", vec!["c"]),
    ]
    .into_iter()
    .map(|(k, d)| (k.to_string(), d.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(lanes, expected);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_retry_and_parallel_inputs_fail_before_any_request() {
    let emulator = emulator().await;
    for (input, value, message) in [
        (
            "retries",
            "11",
            "input `retries`: `11` is out of range: use a whole number from 0 to 10",
        ),
        (
            "retries",
            "1.5",
            "input `retries`: `1.5` is not a whole number (0 to 10)",
        ),
        (
            "retries",
            "-1",
            "input `retries`: `-1` is not a whole number",
        ),
        (
            "maxParallel",
            "two",
            "input `maxParallel`: `two` is not a whole number",
        ),
        (
            "retryIntervalSeconds",
            "3601",
            "input `retryIntervalSeconds`: `3601` is out of range",
        ),
    ] {
        let (outcome, _, _) = run(&emulator, &[("unit", PASSING)], &[(input, value)]).await;
        assert_eq!(outcome.code, 2, "{input}={value}: {}", outcome.stdout);
        assert!(
            outcome.stdout.contains(message),
            "{input}={value}: {}",
            outcome.stdout
        );
    }
    assert_eq!(total_api_requests(&emulator), 0);
    emulator.shutdown().await;
}
