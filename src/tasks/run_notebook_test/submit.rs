//! Submitting the run: one `runs/submit` with an idempotency token. When the answer is lost
//! or the pipeline is cancelled meanwhile, the same submit finds the run that may have started,
//! and it is cancelled: giving up never leaves a run behind.

use std::time::Duration;

use serde_json::json;

use super::libraries::Library;
use super::settings::{Compute, RunAs, Settings};
use super::watch::{budget, stop_run, within, CANCELLED};
use crate::databricks::models::{
    NotebookSource, NotebookTask, QueueSettings, RunIf, SubmitRun, SubmitTask, TaskDependency,
};
use crate::databricks::{ApiError, Client};
use crate::host::or_cancelled;
use crate::pipeline::Log;
use crate::tasks::{Failure, FailureKind};

/// One run with a task per notebook. With `maxParallel` N, notebook i waits for notebook
/// i - N to be over (whatever its outcome): N lanes, so at most N run at once, in one submit.
pub fn submit_request(settings: &Settings) -> SubmitRun {
    let source = if settings.git_source.is_some() {
        NotebookSource::Git
    } else {
        NotebookSource::Workspace
    };
    let (existing_cluster_id, new_cluster) = match &settings.compute {
        Compute::Existing(id) => (Some(id.clone()), None),
        Compute::New(spec) => (None, Some(spec.clone())),
        Compute::Serverless => (None, None),
    };
    let (libraries, environments, environment_key) = code_under_test(settings);
    let retry = settings.retry;
    let retries = (retry.retries > 0).then_some(retry.retries);
    let notebooks = &settings.notebooks;
    let upstream = |index: usize| {
        settings
            .max_parallel
            .and_then(|lanes| index.checked_sub(lanes))
            .map(|earlier| &notebooks[earlier])
    };
    SubmitRun {
        run_name: settings.run_name.clone(),
        tasks: notebooks
            .iter()
            .enumerate()
            .map(|(index, notebook)| SubmitTask {
                task_key: notebook.task_key.clone(),
                notebook_task: NotebookTask {
                    notebook_path: notebook.path.clone(),
                    base_parameters: settings.parameters.clone(),
                    source,
                },
                existing_cluster_id: existing_cluster_id.clone(),
                new_cluster: new_cluster.clone(),
                timeout_seconds: None,
                max_retries: retries,
                min_retry_interval_millis: retries.map(|_| retry.interval.as_millis() as u64),
                depends_on: upstream(index)
                    .map(|earlier| TaskDependency {
                        task_key: earlier.task_key.clone(),
                    })
                    .into_iter()
                    .collect(),
                run_if: upstream(index).map(|_| RunIf::AllDone),
                libraries: libraries.clone(),
                environment_key: environment_key.clone(),
            })
            .collect(),
        git_source: settings.git_source.clone(),
        timeout_seconds: settings.timeout.map(|t| t.as_secs_f64().ceil() as u64),
        idempotency_token: Some(settings.idempotency_token.clone()),
        environments,
        run_as: settings.run_as.as_ref().map(|who| match who {
            RunAs::User(email) => json!({ "user_name": email }),
            RunAs::ServicePrincipal(id) => json!({ "service_principal_name": id }),
        }),
        queue: Some(QueueSettings { enabled: true }),
        performance_target: settings.performance_target.clone(),
        budget_policy_id: settings.budget_policy_id.clone(),
    }
}

/// The environment every task shares on serverless compute.
const ENVIRONMENT_KEY: &str = "tests";

/// `libraries` as the run takes them: each task's `libraries` on a cluster; on serverless,
/// one environment of the run (its dependencies replace the notebook's own environment).
fn code_under_test(
    settings: &Settings,
) -> (
    Vec<serde_json::Value>,
    Vec<serde_json::Value>,
    Option<String>,
) {
    let list = &settings.libraries.list;
    let Some(version) = &settings.environment_version else {
        return (list.iter().map(Library::to_api).collect(), Vec::new(), None);
    };
    let mut dependencies = Vec::new();
    let mut java = Vec::new();
    for library in list {
        match library {
            Library::Whl(path) => dependencies.push(path.clone()),
            Library::Pypi(spec) => dependencies.push(spec.clone()),
            Library::Requirements(path) => dependencies.push(format!("-r {path}")),
            Library::Jar(path) => java.push(path.clone()),
            // Refused with serverless compute when the inputs were read.
            Library::Maven(_) | Library::Api(_) => {}
        }
    }
    let mut spec = json!({ "environment_version": version, "dependencies": dependencies });
    if !java.is_empty() {
        spec["java_dependencies"] = json!(java);
    }
    let environment = json!({ "environment_key": ENVIRONMENT_KEY, "spec": spec });
    (
        Vec::new(),
        vec![environment],
        Some(ENVIRONMENT_KEY.to_string()),
    )
}

/// Submits the run and returns its id; on a failure, makes sure no run is left behind.
pub async fn submit(client: &Client, log: &Log, request: &SubmitRun) -> Result<i64, Failure> {
    match or_cancelled(client.host(), client.submit_run(request)).await {
        Some(Ok(run_id)) => Ok(run_id),
        Some(Err(e)) if refused(&e) => Err(Failure::api("submitting the run", e)),
        Some(Err(e)) => Err(abandon_uncertain_submit(client, log, request, e).await),
        None => Err(cancel_interrupted_submit(client, log, request).await),
    }
}

/// The request was answered with a clear no: a 4xx other than 408 and 429 from Databricks, or
/// a redirect (not followed, so nothing there ran it). No run started.
fn refused(error: &ApiError) -> bool {
    error
        .status()
        .is_some_and(|s| (300..500).contains(&s) && s != 408 && s != 429)
}

/// The submit failed without Databricks saying no (no answer, a 5xx, an unreadable answer, the
/// time limit): the run may have started all the same. It is looked for and cancelled, as
/// after an interrupted submit, so that giving up leaves nothing running.
async fn abandon_uncertain_submit(
    client: &Client,
    log: &Log,
    request: &SubmitRun,
    error: ApiError,
) -> Failure {
    let failure = Failure::api("submitting the run", error);
    log.warning("The submit failed without a clear answer: making sure no run is left behind");
    let (run_id, outcome) = cancel_any_submitted(client, log, request, budget(client.host())).await;
    Failure {
        message: format!("{}; {outcome}", failure.message.trim_end_matches('.')),
        details: run_id.map(|id| json!({ "runId": id })),
        ..failure
    }
}

/// Submits `request` again, which returns the run if one started (same idempotency token),
/// and cancels it. Returns the run, if any, and how it went, as the end of the step's message.
async fn cancel_any_submitted(
    client: &Client,
    log: &Log,
    request: &SubmitRun,
    until: Duration,
) -> (Option<i64>, String) {
    client.set_deadline(None);
    match within(client.host(), until, client.submit_run(request)).await {
        Some(Ok(run_id)) => {
            log.warning(&format!("Run {run_id} had started: cancelling it"));
            (Some(run_id), stop_run(client, log, run_id, until).await)
        }
        Some(Err(e)) => (
            None,
            format!("Databricks could not be asked whether a run started ({e})"),
        ),
        None => (
            None,
            "Databricks did not answer in time to confirm that no run started".to_string(),
        ),
    }
}

/// The cancel came while `runs/submit` was in flight: the request may have reached Databricks
/// even though no answer did. Submitting again with the same idempotency token returns that
/// run if it exists, so it can be cancelled; a run is never left behind.
async fn cancel_interrupted_submit(client: &Client, log: &Log, request: &SubmitRun) -> Failure {
    log.warning(&format!(
        "{CANCELLED} while the run was being submitted: making sure no run is left behind"
    ));
    let (run_id, outcome) = cancel_any_submitted(client, log, request, budget(client.host())).await;
    let failure = Failure::new(
        FailureKind::Canceled,
        format!("{CANCELLED} while the run was being submitted; {outcome}"),
    );
    match run_id {
        Some(id) => failure.details(json!({ "runId": id })),
        None => failure,
    }
}
