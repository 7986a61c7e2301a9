//! A cancel (SIGINT/SIGTERM from the agent) at any moment: the run is cancelled or never
//! started, the step ends at once with exit code 130, and the log says what happened.
mod common;

use std::time::{Duration, Instant};

use common::*;
use databricks_azdo::databricks::RetryPolicy;
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::tasks::TaskName;

/// The agent's window between SIGINT and the kill.
const AGENT_WINDOW: Duration = Duration::from_millis(7500);

async fn setup(
    notebook: &str,
) -> (
    databricks_azdo::emulator::Emulator,
    Project,
    std::collections::BTreeMap<String, String>,
) {
    let emulator = emulator().await;
    let project = Project::new(&[("nb", notebook)]);
    let env = with(
        &pipeline_env(&emulator, &project),
        &[
            ("repoPath", REPO_PATH),
            ("notebookPaths", "test/nb"),
            ("existingClusterId", CLUSTER),
        ],
    );
    let update = run_task(TaskName::RepoUpdate, env.clone(), OutputMode::Agent).await;
    assert_eq!(update.code, 0, "{}", update.stdout);
    (emulator, project, env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_submit_nothing_is_started() {
    let (emulator, _project, env) = setup(PASSING).await;
    let outcome = run_task_with(
        TaskName::RunNotebookTest,
        env,
        OutputMode::Agent,
        Some(Box::new(|_| true)),
    )
    .await;
    assert_eq!(outcome.code, 130, "{}", outcome.stdout);
    assert!(
        outcome
            .stdout
            .contains("cancelled before the run was submitted"),
        "{}",
        outcome.stdout
    );
    assert_eq!(count(&emulator, "POST /api/2.1/jobs/runs/submit"), 0);
    assert!(emulator_runs(&emulator).await.is_empty());
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_submit_retry_the_run_that_started_is_found_and_cancelled() {
    let (emulator, _project, env) = setup(SLOW).await;
    // The first submit starts a run but its answer is lost; the cancel comes while the client
    // waits to retry.
    emulator.set_faults(faults(&["POST /api/2.1/jobs/runs/submit=drop-after*1"]));
    let slow_retries = RetryPolicy {
        base_delay: Duration::from_secs(4),
        max_delay: Duration::from_secs(4),
        ..fast_retries()
    };
    let started = Instant::now();
    let outcome = run_task_with_retry(
        TaskName::RunNotebookTest,
        env,
        OutputMode::Agent,
        Some(Box::new(|out: &str| {
            out.contains("POST /api/2.1/jobs/runs/submit:")
        })),
        slow_retries,
    )
    .await;
    assert!(
        started.elapsed() < AGENT_WINDOW,
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(outcome.code, 130, "{}", outcome.stdout);
    assert!(
        outcome.stdout.contains("making sure no run is left behind"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains("stopped (TERMINATED CANCELED)"),
        "{}",
        outcome.stdout
    );
    let runs = emulator_runs(&emulator).await;
    assert_eq!(
        runs.len(),
        1,
        "the idempotent resubmit found the run instead of starting another: {runs:?}"
    );
    assert_eq!(runs[0]["result_state"], "CANCELED");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_polling_the_run_is_cancelled_and_the_cancel_confirmed() {
    let (emulator, _project, env) = setup(SLOW).await;
    let outcome = run_task_with(
        TaskName::RunNotebookTest,
        env,
        OutputMode::Agent,
        Some(Box::new(|out: &str| out.contains("run RUNNING"))),
    )
    .await;
    assert_eq!(outcome.code, 130, "{}", outcome.stdout);
    assert!(
        outcome
            .stdout
            .contains("The pipeline was cancelled: cancelling run"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains("stopped (TERMINATED CANCELED)"),
        "{}",
        outcome.stdout
    );
    assert_eq!(
        emulator_runs(&emulator).await[0]["result_state"],
        "CANCELED"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_reading_results_the_step_stops_at_once() {
    let (emulator, _project, env) = setup(PASSING).await;
    emulator.set_faults(faults(&["GET /api/2.1/jobs/runs/get-output=delay:20000"]));
    let started = Instant::now();
    let outcome = run_task_with(
        TaskName::RunNotebookTest,
        env,
        OutputMode::Agent,
        Some(Box::new(|out: &str| out.contains("run TERMINATED"))),
    )
    .await;
    assert!(
        started.elapsed() < AGENT_WINDOW,
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(outcome.code, 130, "{}", outcome.stdout);
    assert!(
        outcome.stdout.contains("while the results were read; run"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains("had already finished (SUCCESS)"),
        "{}",
        outcome.stdout
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repo_update_stops_at_once() {
    let emulator = emulator_with(faults(&["GET /api/2.0/workspace/get-status=delay:20000"])).await;
    let project = Project::new(&[("nb", PASSING)]);
    let env = with(
        &pipeline_env(&emulator, &project),
        &[("repoPath", REPO_PATH)],
    );
    let started = Instant::now();
    let outcome = run_task_with(
        TaskName::RepoUpdate,
        env,
        OutputMode::Agent,
        Some(Box::new(|out: &str| out.contains("Databricks workspace:"))),
    )
    .await;
    assert!(
        started.elapsed() < AGENT_WINDOW,
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(outcome.code, 130, "{}", outcome.stdout);
    assert!(
        outcome.stdout.contains("the repo update was stopped"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome
            .stdout
            .contains("##vso[task.complete result=Canceled]"),
        "{}",
        outcome.stdout
    );
    emulator.shutdown().await;
}
