//! DatabricksRunNotebookTest: submit the notebooks as one run, follow it, report each
//! notebook's result, and fail unless all of them succeeded.

pub mod poll;
mod results;
mod settings;

use std::time::Duration;

use std::future::Future;

use futures::future::{select, Either};
use futures::FutureExt;
use serde_json::json;

pub use settings::{
    parse_cluster_spec, parse_parameters, Compute, Notebook, Settings, CLUSTER_MODE,
    DEFAULT_TIMEOUT_MINUTES, INPUTS, MAX_NOTEBOOKS, OUTPUTS, PICK_LISTS, SOURCE,
};

use self::results::{collect_results, report_results};
use super::{Failure, FailureKind, Report};
use crate::databricks::models::{NotebookSource, NotebookTask, Run, SubmitRun, SubmitTask};
use crate::databricks::{ApiError, Client};
use crate::host::{or_cancelled, Host};
use crate::pipeline::Log;
use crate::text::{elapsed_label, seconds};

/// SIGINT to SIGKILL is 10 s on the agent: the cancel and its confirmation must fit in less.
const CANCEL_BUDGET: Duration = Duration::from_secs(6);

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
    SubmitRun {
        run_name: settings.run_name.clone(),
        tasks: settings
            .notebooks
            .iter()
            .map(|notebook| SubmitTask {
                task_key: notebook.task_key.clone(),
                notebook_task: NotebookTask {
                    notebook_path: notebook.path.clone(),
                    base_parameters: settings.parameters.clone(),
                    source,
                },
                existing_cluster_id: existing_cluster_id.clone(),
                new_cluster: new_cluster.clone(),
                timeout_seconds: None,
            })
            .collect(),
        git_source: settings.git_source.clone(),
        timeout_seconds: settings.timeout.map(|t| t.as_secs_f64().ceil() as u64),
        idempotency_token: Some(settings.idempotency_token.clone()),
    }
}

pub async fn run(settings: &Settings, client: &Client, log: &Log) -> Result<Report, Failure> {
    let host = client.host();
    // `timeoutMinutes` bounds the whole step, the submit and every retry included; only the
    // cancel that follows it has its own budget.
    let deadline = settings.timeout.map(|t| host.elapsed() + t);
    client.set_deadline(deadline);
    log.info(&format!("Databricks workspace: {}", client.base()));
    let count = settings.notebooks.len();
    log.info(&format!(
        "Submitting {count} notebook{} as one run on {}",
        if count == 1 { "" } else { "s" },
        settings.compute
    ));
    if let Some(git) = &settings.git_source {
        log.info(&format!(
            "Source: {} at {}",
            crate::text::redact_url(&git.git_url),
            git_reference(&git.reference)
        ));
    }
    for notebook in &settings.notebooks {
        log.debug(&format!("task {} = {}", notebook.task_key, notebook.path));
    }
    let request = submit_request(settings);
    if host.cancelled().now_or_never().is_some() {
        return Err(Failure::new(
            FailureKind::Canceled,
            "The pipeline was cancelled before the run was submitted",
        ));
    }
    let run_id = match or_cancelled(host, client.submit_run(&request)).await {
        Some(Ok(run_id)) => run_id,
        Some(Err(e)) if refused(&e) => return Err(Failure::api("submitting the run", e)),
        Some(Err(e)) => return Err(abandon_uncertain_submit(client, log, &request, e).await),
        None => return Err(cancel_interrupted_submit(client, log, &request).await),
    };
    log.set_output("runId", &run_id.to_string());
    // The one way out after the submit: whatever ends following the run early, the run is
    // cancelled rather than left to go on using the cluster.
    match follow(settings, client, log, run_id, deadline).await {
        Ok(report) => Ok(report),
        Err(Stop::Settled(failure)) => Err(failure),
        Err(Stop::GaveUp(failure)) => Err(cancel_abandoned(client, log, run_id, failure).await),
    }
}

/// How following a submitted run ended, when it did not end in a report.
enum Stop {
    /// The run is over, or was cancelled already: nothing is left running.
    Settled(Failure),
    /// The step gave up while the run may still be going: it must be cancelled.
    GaveUp(Failure),
}

/// An error while following the run (`?`) means giving up on it, unless the path that
/// returns it says otherwise: a new way to fail cannot leave a run behind by default.
impl From<Failure> for Stop {
    fn from(failure: Failure) -> Stop {
        Stop::GaveUp(failure)
    }
}

/// Polls the run until it ends, then reads and reports its results.
async fn follow(
    settings: &Settings,
    client: &Client,
    log: &Log,
    run_id: i64,
    deadline: Option<Duration>,
) -> Result<Report, Stop> {
    let host = client.host();
    let started = host.elapsed();
    let elapsed = || host.elapsed().saturating_sub(started);
    let mut tracker = results::StateTracker::default();
    let mut polls_made = 0;
    let finished: Run = loop {
        // The run is never over right after submitting: wait first, then ask.
        let mut delay = poll::delay_before_poll(polls_made);
        if let Some(deadline) = deadline {
            let left = deadline.saturating_sub(host.elapsed());
            if left.is_zero() {
                return Err(Stop::Settled(
                    timed_out(client, log, run_id, settings).await,
                ));
            }
            delay = delay.min(left);
        }
        if or_cancelled(host, host.sleep(delay)).await.is_none() {
            let failure = cancel(client, log, run_id, CANCELLED, budget(host)).await;
            return Err(Stop::Settled(failure));
        }
        let run = match or_cancelled(host, client.get_run(run_id)).await {
            Some(Err(ApiError::OutOfTime { .. })) => {
                return Err(Stop::Settled(
                    timed_out(client, log, run_id, settings).await,
                ))
            }
            Some(result) => result
                .map_err(|e| Failure::api(&format!("reading the state of run {run_id}"), e))?,
            None => {
                let failure = cancel(client, log, run_id, CANCELLED, budget(host)).await;
                return Err(Stop::Settled(failure));
            }
        };
        if polls_made == 0 {
            report_run_page(log, client, run_id, &run);
        }
        polls_made += 1;
        for change in tracker.changes(&run, &settings.notebooks) {
            log.info(&format!("{} {change}", elapsed_label(elapsed())));
        }
        if run.is_terminal() {
            break run;
        }
        let state = run
            .life_cycle()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "UNKNOWN".into());
        log.status(Some(&format!(
            "run {run_id}: {state} ({}s)",
            elapsed().as_secs()
        )));
    };
    log.status(None);
    // The run is over: reading its results may take the few seconds it needs even when the
    // run ended just before the time limit.
    client.set_deadline(deadline.map(|d| d.max(host.elapsed() + RESULTS_GRACE)));

    let collecting = collect_results(client, log, &finished, &settings.notebooks);
    let Some(results) = or_cancelled(host, collecting).await else {
        let result = finished.state.result_state.as_ref().map(|r| r.to_string());
        let message = format!(
            "{CANCELLED} while the results were read; run {run_id} had already finished ({})",
            result.unwrap_or_else(|| "no result".into())
        );
        return Err(Stop::Settled(
            Failure::new(FailureKind::Canceled, message).details(json!({ "runId": run_id })),
        ));
    };
    results::publish_reports(host, log, client.base(), run_id, &finished, &results);
    report_results(log, client.base(), run_id, &finished, results).map_err(Stop::Settled)
}

/// Prints the run page link and hands it on as `runPageUrl`, only if it leads into the
/// workspace: a link elsewhere (a hostile or misconfigured server) would be clickable in the
/// log and trusted by later steps, so it is left out, and the output is empty.
fn report_run_page(log: &Log, client: &Client, run_id: i64, run: &Run) {
    let link = run
        .run_page_url
        .as_deref()
        .map(|url| client.base().link(url));
    match link {
        Some(Ok(link)) => {
            log.info(&format!("Run {run_id} submitted: {link}"));
            log.set_output("runPageUrl", link.as_str());
        }
        Some(Err(why)) => {
            log.info(&format!(
                "Run {run_id} submitted (its run page link is not shown: {why})"
            ));
            log.set_output("runPageUrl", "");
        }
        None => {
            log.info(&format!("Run {run_id} submitted"));
            log.set_output("runPageUrl", "");
        }
    }
}

fn git_reference(reference: &crate::databricks::models::GitReference) -> String {
    use crate::databricks::models::GitReference;
    match reference {
        GitReference::Commit(c) => format!("commit {c}"),
        GitReference::Branch(b) => format!("branch {b}"),
        GitReference::Tag(t) => format!("tag {t}"),
    }
}

const CANCELLED: &str = "The pipeline was cancelled";

/// Time allowed for reading the results of a run that ended near the step's time limit.
const RESULTS_GRACE: Duration = Duration::from_secs(30);

/// `timeoutMinutes` passed while the run was going: cancel it and say so.
async fn timed_out(client: &Client, log: &Log, run_id: i64, settings: &Settings) -> Failure {
    let limit = seconds(settings.timeout.unwrap_or_default());
    let why = format!("The run did not finish within timeoutMinutes ({limit}s)");
    let failure = cancel(client, log, run_id, &why, budget(client.host())).await;
    Failure {
        kind: FailureKind::Timeout,
        ..failure
    }
    .hint("raise timeoutMinutes if the notebooks need longer, or make them faster")
}

/// The moment (on the host's clock) by which cancelling must be done.
fn budget(host: &dyn Host) -> Duration {
    host.elapsed() + CANCEL_BUDGET
}

/// `work`, unless the host's clock passes `until` first.
async fn within<T>(host: &dyn Host, until: Duration, work: impl Future<Output = T>) -> Option<T> {
    let left = until.saturating_sub(host.elapsed());
    match select(std::pin::pin!(work), host.sleep(left)).await {
        Either::Left((value, _)) => Some(value),
        Either::Right(_) => None,
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

/// Cancels the run because the pipeline was cancelled or `timeoutMinutes` passed.
async fn cancel(client: &Client, log: &Log, run_id: i64, why: &str, until: Duration) -> Failure {
    log.warning(&format!("{why}: cancelling run {run_id}"));
    let outcome = stop_run(client, log, run_id, until).await;
    Failure::new(FailureKind::Canceled, format!("{why}; {outcome}"))
        .details(json!({ "runId": run_id }))
}

/// The step gives up on a run that may still be going (it could not be followed any more):
/// cancels it, so it does not go on using the cluster, and adds how that went to `failure`.
async fn cancel_abandoned(client: &Client, log: &Log, run_id: i64, failure: Failure) -> Failure {
    log.warning(&format!(
        "Could not follow run {run_id} any more: cancelling it, so that it does not go on using the cluster"
    ));
    let outcome = stop_run(client, log, run_id, budget(client.host())).await;
    Failure {
        message: format!("{}; {outcome}", failure.message.trim_end_matches('.')),
        ..failure
    }
    .details(json!({ "runId": run_id }))
}

/// Cancels the run and waits (until `until`) for Databricks to confirm that it stopped.
/// Returns how it went, as the end of the step's message.
async fn stop_run(client: &Client, log: &Log, run_id: i64, until: Duration) -> String {
    let host = client.host();
    // The cancel has its own budget (`until`), also after the step's time limit.
    client.set_deadline(None);
    // One deadline for both steps; `accepted` tells them apart afterwards.
    let accepted = std::cell::Cell::new(false);
    let confirmed = within(host, until, async {
        client.cancel_run(run_id).await?;
        accepted.set(true);
        loop {
            let run = client.get_run(run_id).await?;
            if run.is_terminal() {
                return Ok::<_, crate::databricks::ApiError>(run);
            }
            host.sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    match (confirmed, accepted.get()) {
        (Some(Ok(run)), _) => {
            let state = format!(
                "{} {}",
                run.life_cycle().map(|s| s.to_string()).unwrap_or_default(),
                run.state
                    .result_state
                    .as_ref()
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            );
            log.info(&format!("Run {run_id} stopped ({})", state.trim()));
            format!("run {run_id} was cancelled")
        }
        (Some(Err(e)), false) => {
            log.warning(&format!("could not cancel run {run_id}: {e}"));
            format!("cancelling run {run_id} failed, it may still be running")
        }
        (None, false) => {
            log.warning(&format!("run {run_id} did not answer the cancel in time"));
            format!("run {run_id} was asked to cancel, without an answer; it may still be running")
        }
        (Some(Err(e)), true) => {
            log.warning(&format!(
                "run {run_id} accepted the cancel, but its state could not be read to confirm it: {e}"
            ));
            format!("run {run_id} was asked to cancel")
        }
        (None, true) => {
            log.warning(&format!("run {run_id} did not confirm the cancel in time"));
            format!("run {run_id} was asked to cancel")
        }
    }
}
