//! Watching one submitted run: polling it until it ends, logging its state changes, stopping
//! it on a cancel or at the step's time limit (a run is never left going when the step gives
//! up on it), and fetching its notebooks' outputs once it is over.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use futures::future::{select, Either};
use futures::stream::{self, StreamExt};
use serde_json::json;

use super::poll;
use super::settings::Notebook;
use super::test_report::{read_document, Reported};
use super::verdict::{describe_state, match_tasks, NotebookResult};
use crate::databricks::models::{LifeCycleState, Run, RunState, RunTask};
use crate::databricks::{ApiError, Client};
use crate::host::{or_cancelled, Host};
use crate::pipeline::Log;
use crate::tasks::names::output;
use crate::tasks::{Failure, FailureKind};
use crate::text::{elapsed_label, seconds};

/// SIGINT to SIGKILL is 10 s on the agent: the cancel and its confirmation must fit in less.
pub const CANCEL_BUDGET: Duration = Duration::from_secs(6);

/// Outputs fetched at once; the rest wait for a free slot.
const OUTPUT_CONCURRENCY: usize = 8;

/// How following a submitted run ended, when it did not end in a report.
pub enum Stop {
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

/// Watches one run: polls it (soon after the submit, then less often) until it ends, logs its
/// state changes, and stops it on a cancel or at the step's `deadline`. Returns the finished
/// run, or why watching stopped.
pub async fn watch(
    client: &Client,
    log: &Log,
    run_id: i64,
    notebooks: &[Notebook],
    attempts: u32,
    timeout: Option<Duration>,
    deadline: Option<Duration>,
) -> Result<Run, Stop> {
    // Every attempt of every notebook, and a page to spare: tasks nobody submitted beyond that
    // are not read (the verdict fails the run on the first of them anyway).
    let most_tasks = notebooks.len() * attempts as usize + crate::databricks::TASKS_PER_PAGE;
    let host = client.host();
    let started = host.elapsed();
    let elapsed = || host.elapsed().saturating_sub(started);
    let mut tracker = StateTracker::default();
    let mut polls_made = 0;
    let finished: Run = loop {
        // The run is never over right after submitting: wait first, then ask.
        let mut delay = poll::delay_before_poll(polls_made);
        if let Some(deadline) = deadline {
            let left = deadline.saturating_sub(host.elapsed());
            if left.is_zero() {
                return Err(Stop::Settled(timed_out(client, log, run_id, timeout).await));
            }
            delay = delay.min(left);
        }
        if or_cancelled(host, host.sleep(delay)).await.is_none() {
            let failure = cancel(client, log, run_id, CANCELLED, budget(host)).await;
            return Err(Stop::Settled(failure));
        }
        let run = match or_cancelled(host, client.get_run(run_id, most_tasks)).await {
            Some(Err(ApiError::OutOfTime { .. })) => {
                return Err(Stop::Settled(timed_out(client, log, run_id, timeout).await))
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
        for change in tracker.changes(&run, notebooks) {
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
    Ok(finished)
}

/// Remembers the last state seen, to log changes only.
#[derive(Default)]
pub struct StateTracker {
    run: Option<RunState>,
    /// By task key and attempt number.
    tasks: BTreeMap<(String, i64), RunState>,
}

impl StateTracker {
    pub fn changes(&mut self, run: &Run, notebooks: &[Notebook]) -> Vec<String> {
        let mut changes = Vec::new();
        // A queued run says why it waits (`status.queue_details`, folded into the message).
        let queued = run.state.life_cycle_state == Some(LifeCycleState::Queued);
        let state = RunState {
            state_message: run.state.state_message.clone().filter(|_| queued),
            user_cancelled_or_timedout: None,
            ..run.state.clone()
        };
        if self.run.as_ref() != Some(&state) {
            let reason = state
                .state_message
                .as_deref()
                .map(|m| format!(": {}", crate::text::shorten(m, 300)))
                .unwrap_or_default();
            changes.push(format!("run {}{reason}", describe_state(&state)));
            self.run = Some(state);
        }
        // Per-notebook lines only when there are several (or retries): with one they repeat
        // the run's.
        if notebooks.len() > 1 || run.tasks.len() > notebooks.len() {
            let mut listed: BTreeMap<&str, usize> = BTreeMap::new();
            for task in &run.tasks {
                *listed
                    .entry(task.task_key.as_deref().unwrap_or_default())
                    .or_default() += 1;
            }
            for task in &run.tasks {
                let key = task.task_key.clone().unwrap_or_default();
                let attempt = task.attempt_number.unwrap_or(0);
                // Listed more than once: its attempts are told apart.
                let retried = listed.get(key.as_str()).is_some_and(|n| *n > 1);
                let label = if retried {
                    format!(" (attempt {})", attempt.saturating_add(1))
                } else {
                    String::new()
                };
                let state = RunState {
                    state_message: None,
                    user_cancelled_or_timedout: None,
                    ..task.state.clone()
                };
                let terminal = state
                    .life_cycle_state
                    .as_ref()
                    .is_some_and(LifeCycleState::is_terminal);
                let key = (key, attempt);
                if terminal && self.tasks.get(&key) != Some(&state) {
                    changes.push(format!(
                        "{}: {}{label}",
                        notebook_name(task, notebooks),
                        describe_state(&state)
                    ));
                }
                self.tasks.insert(key, state);
            }
        }
        changes
    }
}

fn notebook_name(task: &RunTask, notebooks: &[Notebook]) -> String {
    let key = task.task_key.as_deref().unwrap_or_default();
    notebooks
        .iter()
        .find(|n| n.task_key == key)
        .map(|n| n.path.clone())
        .or_else(|| {
            task.notebook_task
                .as_ref()
                .and_then(|t| t.notebook_path.clone())
        })
        .unwrap_or_else(|| key.to_string())
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
            log.set_output(output::RUN_PAGE_URL, link.as_str());
        }
        Some(Err(why)) => {
            log.info(&format!(
                "Run {run_id} submitted (its run page link is not shown: {why})"
            ));
            log.set_output(output::RUN_PAGE_URL, "");
        }
        None => {
            log.info(&format!("Run {run_id} submitted"));
            log.set_output(output::RUN_PAGE_URL, "");
        }
    }
}

/// Fetches the output of every submitted task in the run, a few at a time. A task whose output
/// cannot be read is reported without it (and so does not pass) rather than failing the step.
pub async fn fetch_outputs(
    client: &Client,
    run: &Run,
    notebooks: &[Notebook],
    attempts_allowed: u32,
) -> Vec<NotebookResult> {
    let fetches = match_tasks(run, notebooks, attempts_allowed)
        .into_iter()
        .map(|mut result| async move {
            // Why the attempt before the last failed: a flaky notebook is never shown silently.
            let retried = result.retried.last().and_then(|t| t.run_id);
            if let Some(id) = retried.filter(|_| result.unverified.is_none()) {
                if let Ok(output) = client.get_run_output(id).await {
                    result.retried_error = output.error.filter(|e| !e.is_empty());
                }
            }
            // Nothing is fetched for a task this step did not submit: it fails the verdict
            // anyway, and a hostile answer could list thousands of them.
            if result.unverified.is_some() {
                return result;
            }
            // Only a task's own run has an output: Jobs 2.1 and 2.2 refuse the parent's run id.
            match result.task.run_id {
                Some(id) if Some(id) == run.run_id => {
                    result.unread = Some(format!(
                        "its task run id is the run's own ({id}), whose output cannot be read"
                    ));
                }
                Some(id) => {
                    match client.get_run_output(id).await {
                        Ok(output) => result.attach_output(output),
                        Err(e) => {
                            result.unread = Some(format!(
                            "its output could not be read ({e}), so what it handed back is unknown"
                        ))
                        }
                    }
                    if let Reported::File(path) = &result.tests {
                        result.tests = read_report_file(client, path).await;
                    }
                }
                None => {
                    result.unread = Some(
                        "Databricks gave no run id for its task, so its output cannot be read"
                            .into(),
                    );
                }
            }
            result
        });
    // `buffered` keeps the order, which is the order the user listed the notebooks in.
    stream::iter(fetches)
        .buffered(OUTPUT_CONCURRENCY)
        .collect()
        .await
}

/// Where a report file named by `{"junit": path}` can be read from.
#[derive(Debug, PartialEq, Eq)]
enum ReportFile<'a> {
    /// A Unity Catalog volume (`/Volumes/...`), read with the Files API.
    Volume(&'a str),
    /// A workspace file, read with the workspace export API: the path without the
    /// `/Workspace` prefix a notebook writes through.
    Workspace(&'a str),
}

impl<'a> ReportFile<'a> {
    /// `None` for anything else: a relative path, `dbfs:/`, the driver's own disk, or a path
    /// that climbs (`..`) and so might not be where it seems.
    fn locate(path: &'a str) -> Option<Self> {
        let plain = path.starts_with('/')
            && path.len() <= 4096
            && !path.split('/').any(|part| part == ".." || part == ".");
        if !plain {
            return None;
        }
        if path.starts_with("/Volumes/") {
            return Some(ReportFile::Volume(path));
        }
        if let Some(inside) = path.strip_prefix("/Workspace") {
            return (inside.starts_with('/') && inside.len() > 1)
                .then_some(ReportFile::Workspace(inside));
        }
        ["/Users/", "/Shared/", "/Repos/"]
            .iter()
            .any(|root| path.starts_with(root))
            .then_some(ReportFile::Workspace(path))
    }
}

/// The report a notebook wrote to a file (`{"junit": path}`) in a Unity Catalog volume or in
/// the workspace; what went wrong becomes a warning on that notebook.
async fn read_report_file(client: &Client, path: &str) -> Reported {
    let shown = crate::text::shorten(path, 300);
    let read = match ReportFile::locate(path) {
        Some(ReportFile::Volume(path)) => client.download_volume_file(path).await,
        Some(ReportFile::Workspace(path)) => client.export_workspace_file(path).await,
        None => {
            return Reported::Unreadable(format!(
                "its report file `{shown}` is neither in a Unity Catalog volume (/Volumes/<catalog>/<schema>/<volume>/...) nor a workspace file (/Workspace/..., /Users/..., /Shared/..., /Repos/...): only those two places are read"
            ))
        }
    };
    let bytes = match read {
        Ok(bytes) => bytes,
        Err(e) if e.error_code() == Some("MAX_NOTEBOOK_SIZE_EXCEEDED") => {
            return Reported::Unreadable(format!(
                "its report file {shown} could not be read: {e} (the workspace export API reads at most 10 MB: write a larger report to a volume)"
            ))
        }
        Err(e) => {
            return Reported::Unreadable(format!("its report file {shown} could not be read: {e}"))
        }
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return Reported::Unreadable(format!("its report file {shown} is not UTF-8 text"));
    };
    match read_document(&text, false) {
        Reported::Nothing | Reported::File(_) => Reported::Unreadable(format!(
            "its report file {shown} is neither a JUnit XML document nor a JSON test report"
        )),
        other => other,
    }
}

pub const CANCELLED: &str = "The pipeline was cancelled";

/// Time allowed for reading the results of a run that ended near the step's time limit.
pub const RESULTS_GRACE: Duration = Duration::from_secs(30);

/// `timeoutMinutes` passed while the run was going: cancel it and say so.
async fn timed_out(client: &Client, log: &Log, run_id: i64, timeout: Option<Duration>) -> Failure {
    let limit = seconds(timeout.unwrap_or_default());
    let why = format!("The run did not finish within timeoutMinutes ({limit}s)");
    let failure = cancel(client, log, run_id, &why, budget(client.host())).await;
    Failure {
        kind: FailureKind::Timeout,
        ..failure
    }
    .hint("raise timeoutMinutes if the notebooks need longer, or make them faster")
}

/// The moment (on the host's clock) by which cancelling must be done.
pub fn budget(host: &dyn Host) -> Duration {
    host.elapsed() + CANCEL_BUDGET
}

/// `work`, unless the host's clock passes `until` first.
pub async fn within<T>(
    host: &dyn Host,
    until: Duration,
    work: impl Future<Output = T>,
) -> Option<T> {
    let left = until.saturating_sub(host.elapsed());
    match select(std::pin::pin!(work), host.sleep(left)).await {
        Either::Left((value, _)) => Some(value),
        Either::Right(_) => None,
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
pub async fn cancel_abandoned(
    client: &Client,
    log: &Log,
    run_id: i64,
    failure: Failure,
) -> Failure {
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
pub async fn stop_run(client: &Client, log: &Log, run_id: i64, until: Duration) -> String {
    let host = client.host();
    // The cancel has its own budget (`until`), also after the step's time limit.
    client.set_deadline(None);
    // One deadline for both steps; `accepted` tells them apart afterwards.
    let accepted = std::cell::Cell::new(false);
    let confirmed = within(host, until, async {
        client.cancel_run(run_id).await?;
        accepted.set(true);
        loop {
            let run = client.get_run_state(run_id).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_files_are_read_from_volumes_and_workspace_files_only() {
        let volume = "/Volumes/main/ci/reports/run.xml";
        assert_eq!(ReportFile::locate(volume), Some(ReportFile::Volume(volume)));
        for (path, in_workspace) in [
            (
                "/Workspace/Shared/reports/run.xml",
                "/Shared/reports/run.xml",
            ),
            ("/Workspace/Users/a@b.com/run.xml", "/Users/a@b.com/run.xml"),
            (
                "/Repos/ci/proj/reports/run.xml",
                "/Repos/ci/proj/reports/run.xml",
            ),
            ("/Shared/run.xml", "/Shared/run.xml"),
            ("/Users/a@b.com/run.xml", "/Users/a@b.com/run.xml"),
        ] {
            assert_eq!(
                ReportFile::locate(path),
                Some(ReportFile::Workspace(in_workspace)),
                "{path}"
            );
        }
        for elsewhere in [
            "report.xml",
            "reports/run.xml",
            "dbfs:/x.xml",
            "dbfs:/Volumes/main/ci/r/x.xml",
            "/tmp/report.xml",
            "/dbfs/x.xml",
            "/Workspace",
            "/Workspace/",
            "/WorkspaceX/run.xml",
            "/Volumes/main/../../etc/passwd",
            "/Workspace/Shared/../../etc/passwd",
            "/Shared/./run.xml",
            "",
        ] {
            assert_eq!(ReportFile::locate(elsewhere), None, "{elsewhere}");
        }
        let long = format!("/Shared/{}", "a".repeat(4096));
        assert_eq!(ReportFile::locate(&long), None);
    }
}
