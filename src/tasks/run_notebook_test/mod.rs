//! DatabricksRunNotebookTest: submit the notebooks as one run (`submit`), watch it until it
//! ends (`watch`), judge the outcome (`verdict`) and show it (`report`): the log, the Tests
//! tab, the build summary, output variables and the JSON document.

pub mod discovery;
mod libraries;
pub mod poll;
mod report;
mod requirement;
mod settings;
mod submit;
pub mod test_report;
mod uploads;
mod verdict;
mod watch;

use futures::FutureExt;
use serde_json::json;

pub use settings::{
    parse_cluster_spec, parse_parameters, Compute, Notebook, Settings, CLUSTER_MODE,
    DEFAULT_TIMEOUT_MINUTES, INPUTS, MAX_NOTEBOOKS, OUTPUTS, PICK_LISTS, SOURCE,
};
pub use submit::submit_request;

use self::watch::{Stop, CANCELLED, RESULTS_GRACE};
use super::{Failure, FailureKind, Report};
use crate::databricks::Client;
use crate::host::or_cancelled;
use crate::pipeline::Log;
use crate::tasks::names::output;

pub async fn run(settings: &Settings, client: &Client, log: &Log) -> Result<Report, Failure> {
    let host = client.host();
    // `timeoutMinutes` bounds the whole step, the submit and every retry included; only the
    // cancel that follows it has its own budget.
    let deadline = settings.timeout.map(|t| host.elapsed() + t);
    client.set_deadline(deadline);
    log.info(&format!("Databricks workspace: {}", client.base()));
    let resolved;
    let settings = match &settings.workspace_globs {
        None => settings,
        Some(entries) => {
            resolved = Settings {
                notebooks: discover_in_workspace(client, entries).await?,
                workspace_globs: None,
                ..settings.clone()
            };
            &resolved
        }
    };
    if settings.from_globs {
        let count = settings.notebooks.len();
        log.info(&format!(
            "notebookPaths: {count} notebook{} matched",
            if count == 1 { "" } else { "s" }
        ));
        for notebook in &settings.notebooks {
            log.info(&format!("  {}", notebook.path));
        }
    }
    let count = settings.notebooks.len();
    log.info(&format!(
        "Submitting {count} notebook{} as one run on {}",
        if count == 1 { "" } else { "s" },
        settings.compute
    ));
    if let Some(lanes) = settings.max_parallel.filter(|n| *n < count) {
        log.info(&format!(
            "At most {lanes} notebook{} at once (maxParallel): each waits for the one {lanes} before it in the list",
            if lanes == 1 { "" } else { "s" }
        ));
    }
    if settings.retry.retries > 0 {
        log.info(&format!(
            "A failed notebook is run again up to {} time{} (retries), at least {}s after its failed attempt started",
            settings.retry.retries,
            if settings.retry.retries == 1 { "" } else { "s" },
            settings.retry.interval.as_secs()
        ));
    }
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
    describe_libraries(log, settings);
    let request = submit_request(settings);
    if host.cancelled().now_or_never().is_some() {
        return Err(Failure::new(
            FailureKind::Canceled,
            "The pipeline was cancelled before the run was submitted",
        ));
    }
    uploads::upload(client, log, &settings.libraries).await?;
    let outcome = submit_and_follow(settings, client, log, &request, deadline).await;
    uploads::remove_all(client, log, &settings.libraries).await;
    outcome
}

fn describe_libraries(log: &Log, settings: &Settings) {
    let libraries = &settings.libraries;
    if libraries.list.is_empty() {
        return;
    }
    let count = libraries.list.len();
    let place = match &settings.environment_version {
        Some(version) => format!("the run's serverless environment (version {version})"),
        None => "every task's cluster".to_string(),
    };
    log.info(&format!(
        "{count} librar{} installed in {place}{}",
        if count == 1 { "y" } else { "ies" },
        match libraries.uploads.len() {
            0 => String::new(),
            n => format!(", {n} uploaded from the agent first"),
        }
    ));
    for library in &libraries.list {
        log.debug(&format!("library {}", library.to_api()));
    }
}

/// Submits the run and follows it to its report; the run is never left behind.
async fn submit_and_follow(
    settings: &Settings,
    client: &Client,
    log: &Log,
    request: &crate::databricks::models::SubmitRun,
    deadline: Option<std::time::Duration>,
) -> Result<Report, Failure> {
    let run_id = submit::submit(client, log, request).await?;
    log.set_output(output::RUN_ID, &run_id.to_string());
    // The one way out after the submit: whatever ends following the run early, the run is
    // cancelled rather than left to go on using the cluster.
    match follow(settings, client, log, run_id, deadline).await {
        Ok(report) => Ok(report),
        Err(Stop::Settled(failure)) => Err(failure),
        Err(Stop::GaveUp(failure)) => {
            Err(watch::cancel_abandoned(client, log, run_id, failure).await)
        }
    }
}

/// Watches the run until it ends, then reads, judges and reports its results.
async fn follow(
    settings: &Settings,
    client: &Client,
    log: &Log,
    run_id: i64,
    deadline: Option<std::time::Duration>,
) -> Result<Report, Stop> {
    let host = client.host();
    let notebooks = &settings.notebooks;
    let finished = watch::watch(
        client,
        log,
        run_id,
        notebooks,
        settings.retry.attempts(),
        settings.timeout,
        deadline,
    )
    .await?;
    // The run is over: reading its results may take the few seconds it needs even when the
    // run ended just before the time limit.
    client.set_deadline(deadline.map(|d| d.max(host.elapsed() + RESULTS_GRACE)));
    let fetching = watch::fetch_outputs(client, &finished, notebooks, settings.retry.attempts());
    let Some(results) = or_cancelled(host, fetching).await else {
        let result = finished.state.result_state.as_ref().map(|r| r.to_string());
        let message = format!(
            "{CANCELLED} while the results were read; run {run_id} had already finished ({})",
            result.unwrap_or_else(|| "no result".into())
        );
        return Err(Stop::Settled(
            Failure::new(FailureKind::Canceled, message).details(json!({ "runId": run_id })),
        ));
    };
    let verdict = verdict::judge(run_id, &finished, &results, settings.fail_on_failed_tests);
    report::report(
        host,
        log,
        client.base(),
        run_id,
        &finished,
        results,
        verdict,
    )
    .map_err(Stop::Settled)
}

/// The notebooks `entries` (globs among them) match in the workspace, by its list API.
async fn discover_in_workspace(
    client: &Client,
    entries: &[discovery::Entry],
) -> Result<Vec<Notebook>, Failure> {
    let candidates = discovery::list_workspace(client, entries)
        .await
        .map_err(|e| match e {
            discovery::DiscoveryError::Input(e) => Failure::from(e),
            discovery::DiscoveryError::Api(e) => {
                Failure::api("listing the notebooks that notebookPaths' globs match", e)
            }
        })?;
    let selected = discovery::select(entries, &candidates)?;
    settings::check_count(selected.len())?;
    Ok(settings::with_task_keys(selected))
}

fn git_reference(reference: &crate::databricks::models::GitReference) -> String {
    use crate::databricks::models::GitReference;
    match reference {
        GitReference::Commit(c) => format!("commit {c}"),
        GitReference::Branch(b) => format!("branch {b}"),
        GitReference::Tag(t) => format!("tag {t}"),
    }
}
