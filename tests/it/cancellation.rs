//! A cancel (SIGINT/SIGTERM from the agent) at any moment: the run is cancelled or never
//! started, the step ends at once with exit code 130, and the log says what happened.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::*;
use databricks_azdo::databricks::RetryPolicy;
use databricks_azdo::emulator::Emulator;
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::tasks::TaskName;

/// The agent's window between SIGINT and the kill.
const AGENT_WINDOW: Duration = Duration::from_millis(7500);

/// An emulator with `notebook` checked out at REPO_PATH, and the env of a notebook test step.
async fn setup(notebook: &str) -> (Emulator, Project, BTreeMap<String, String>) {
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

/// Runs `task`, cancels it once its output satisfies `when`, and checks what every cancelled
/// step must show: exit code 130 inside the agent's window, and each of `log` in its output.
async fn cancelled(
    task: TaskName,
    env: BTreeMap<String, String>,
    when: fn(&str) -> bool,
    retry: RetryPolicy,
    log: &[&str],
) -> Outcome {
    let started = Instant::now();
    let outcome =
        run_task_with_retry(task, env, OutputMode::Agent, Some(Box::new(when)), retry).await;
    assert!(
        started.elapsed() < AGENT_WINDOW,
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(outcome.code, 130, "{}", outcome.stdout);
    for line in log {
        assert!(
            outcome.stdout.contains(line),
            "missing `{line}` in:\n{}",
            outcome.stdout
        );
    }
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_submit_nothing_is_started() {
    let (emulator, _project, env) = setup(PASSING).await;
    cancelled(
        TaskName::RunNotebookTest,
        env,
        |_| true,
        fast_retries(),
        &["cancelled before the run was submitted"],
    )
    .await;
    assert_eq!(count(&emulator, "POST /api/2.2/jobs/runs/submit"), 0);
    assert!(emulator_runs(&emulator).await.is_empty());
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_submit_retry_the_run_that_started_is_found_and_cancelled() {
    let (emulator, _project, env) = setup(SLOW).await;
    // The first submit starts a run but its answer is lost; the cancel comes while the client
    // waits to retry.
    emulator.set_faults(faults(&["POST /api/2.2/jobs/runs/submit=drop-after*1"]));
    let slow_retries = RetryPolicy {
        base_delay: Duration::from_secs(4),
        max_delay: Duration::from_secs(4),
        ..fast_retries()
    };
    cancelled(
        TaskName::RunNotebookTest,
        env,
        |out| out.contains("POST /api/2.2/jobs/runs/submit:"),
        slow_retries,
        &[
            "making sure no run is left behind",
            "stopped (TERMINATED CANCELED)",
        ],
    )
    .await;
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
    cancelled(
        TaskName::RunNotebookTest,
        env,
        |out| out.contains("run RUNNING"),
        fast_retries(),
        &[
            "The pipeline was cancelled: cancelling run",
            "stopped (TERMINATED CANCELED)",
        ],
    )
    .await;
    assert_eq!(
        emulator_runs(&emulator).await[0]["result_state"],
        "CANCELED"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_reading_results_the_step_stops_at_once() {
    let (emulator, _project, env) = setup(PASSING).await;
    emulator.set_faults(faults(&["GET /api/2.2/jobs/runs/get-output=delay:20000"]));
    cancelled(
        TaskName::RunNotebookTest,
        env,
        |out| out.contains("run TERMINATED"),
        fast_retries(),
        &[
            "while the results were read; run",
            "had already finished (SUCCESS)",
        ],
    )
    .await;
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
    cancelled(
        TaskName::RepoUpdate,
        env,
        |out| out.contains("Databricks workspace:"),
        fast_retries(),
        &[
            "the repo update was stopped",
            "##vso[task.complete result=Canceled]",
        ],
    )
    .await;
    emulator.shutdown().await;
}
