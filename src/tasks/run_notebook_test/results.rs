//! Following a run's states, fetching each notebook's output, and judging the outcome.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde_json::json;

use super::settings::Notebook;
use crate::databricks::models::{LifeCycleState, ResultState, Run, RunOutput, RunState, RunTask};
use crate::databricks::{Client, WorkspaceLink, WorkspaceUrl};
use crate::host::Host;
use crate::pipeline::junit::{junit_xml, Outcome, TestCase};
use crate::pipeline::markdown;
use crate::pipeline::secrets::insert_masked;
use crate::pipeline::{Inputs, Log, Masked, OutputMode};
use crate::tasks::{Failure, FailureKind, Report};
use crate::text::seconds;

/// Outputs fetched at once; the rest wait for a free slot.
const OUTPUT_CONCURRENCY: usize = 8;
/// Longest notebook output printed inline (the output variable keeps all of it).
const MAX_PRINTED_OUTPUT: usize = 2000;

/// Remembers the last state seen, to log changes only.
#[derive(Default)]
pub struct StateTracker {
    run: Option<RunState>,
    tasks: BTreeMap<String, RunState>,
}

fn describe_state(state: &RunState) -> String {
    let mut text = state
        .life_cycle_state
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_else(|| "UNKNOWN".into());
    if let Some(result) = &state.result_state {
        text = format!("{text} {result}");
    }
    text
}

impl StateTracker {
    pub fn changes(&mut self, run: &Run, notebooks: &[Notebook]) -> Vec<String> {
        let mut changes = Vec::new();
        let state = RunState {
            state_message: None,
            user_cancelled_or_timedout: None,
            ..run.state.clone()
        };
        if self.run.as_ref() != Some(&state) {
            changes.push(format!("run {}", describe_state(&state)));
            self.run = Some(state);
        }
        // Per-notebook lines only when there are several: with one they repeat the run's.
        if notebooks.len() > 1 {
            for task in &run.tasks {
                let key = task.task_key.clone().unwrap_or_default();
                let state = RunState {
                    state_message: None,
                    user_cancelled_or_timedout: None,
                    ..task.state.clone()
                };
                let terminal = state
                    .life_cycle_state
                    .as_ref()
                    .is_some_and(LifeCycleState::is_terminal);
                if terminal && self.tasks.get(&key) != Some(&state) {
                    changes.push(format!(
                        "{}: {}",
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

#[derive(Debug)]
pub struct NotebookResult {
    pub path: String,
    pub task: RunTask,
    pub output: Option<RunOutput>,
    /// Why Databricks' answer gives no trustworthy result for this entry (a submitted notebook
    /// missing or listed twice, a task nobody submitted); it then fails whatever its state.
    pub unverified: Option<String>,
}

impl NotebookResult {
    fn succeeded(&self) -> bool {
        self.unverified.is_none() && self.task.state.result_state == Some(ResultState::Success)
    }

    fn duration_ms(&self) -> Option<i64> {
        let t = &self.task;
        t.run_duration
            .or_else(|| Some(t.setup_duration? + t.execution_duration? + t.cleanup_duration?))
            .or_else(|| Some(t.end_time? - t.start_time?))
            .filter(|d| *d > 0)
    }

    fn exit_value(&self) -> Option<&str> {
        self.output
            .as_ref()?
            .notebook_output
            .as_ref()?
            .result
            .as_deref()
    }

    /// Why it did not succeed, in words a user acts on. The server's words are masked before
    /// their first line is taken and shortened, so no part of a secret survives the cut.
    fn failure_reason(&self, log: &Log) -> String {
        if let Some(why) = &self.unverified {
            return why.clone();
        }
        let state = &self.task.state;
        let message = state.state_message.as_deref().filter(|m| !m.is_empty());
        let error = self
            .output
            .as_ref()
            .and_then(|o| o.error.as_deref())
            .filter(|e| !e.is_empty());
        let detail = error
            .or(message)
            .map(|d| format!(": {}", log.mask(d).first_line().shorten(300)))
            .unwrap_or_default();
        match (&state.life_cycle_state, &state.result_state) {
            (_, Some(ResultState::TimedOut)) => {
                format!("timed out (the run's timeout_seconds passed){detail}")
            }
            (_, Some(ResultState::Canceled)) => format!("was cancelled{detail}"),
            (Some(LifeCycleState::Skipped), _) => format!("was skipped{detail}"),
            (Some(LifeCycleState::InternalError), Some(ResultState::Failed)) if error.is_some() => {
                format!("failed{detail}")
            }
            (Some(LifeCycleState::InternalError), _) => {
                format!("could not run (INTERNAL_ERROR){detail}")
            }
            (_, Some(ResultState::Failed)) => format!("failed{detail}"),
            (_, Some(ResultState::UpstreamFailed | ResultState::UpstreamCanceled)) => {
                format!("did not run because another task failed{detail}")
            }
            (lifecycle, None) => format!(
                "has no result: Databricks reported no result_state (life cycle {}){detail}",
                lifecycle.as_ref().map_or("unknown", |l| l.as_str())
            ),
            (lifecycle, result) => format!(
                "ended in state {}{detail}",
                describe_state(&RunState {
                    life_cycle_state: lifecycle.clone(),
                    result_state: result.clone(),
                    ..Default::default()
                })
            ),
        }
    }
}

/// Pairs each submitted notebook with its task in the run, by task key. Every submitted
/// notebook gets exactly one entry, in the order the user listed them: one whose task is
/// missing or listed twice is unverified, and so is each task the step did not submit
/// (appended after them). An answer that does not match the submission never passes.
pub fn match_tasks(run: &Run, notebooks: &[Notebook]) -> Vec<NotebookResult> {
    let run_id = run
        .run_id
        .map_or_else(|| "the run".to_string(), |id| format!("run {id}"));
    let mut results: Vec<NotebookResult> = notebooks
        .iter()
        .map(|notebook| {
            let key = notebook.task_key.as_str();
            let mut tasks = run
                .tasks
                .iter()
                .filter(|t| t.task_key.as_deref() == Some(key));
            let (task, unverified) = match (tasks.next(), tasks.count()) {
                (Some(task), 0) => (task.clone(), None),
                (Some(task), others) => (
                    task.clone(),
                    Some(format!(
                        "has no trustworthy result: {run_id} lists its task ({key}) {} times",
                        others + 1
                    )),
                ),
                (None, _) => (
                    RunTask {
                        task_key: Some(key.to_string()),
                        ..RunTask::default()
                    },
                    Some(format!(
                        "has no result: {run_id} does not list its task ({key}) although it was submitted"
                    )),
                ),
            };
            NotebookResult {
                path: notebook.path.clone(),
                task,
                output: None,
                unverified,
            }
        })
        .collect();
    let submitted = |task: &&RunTask| {
        notebooks
            .iter()
            .any(|n| task.task_key.as_deref() == Some(n.task_key.as_str()))
    };
    for task in run.tasks.iter().filter(|t| !submitted(t)) {
        let key = task
            .task_key
            .as_deref()
            .map_or_else(|| "no task key".to_string(), |k| format!("task key {k}"));
        results.push(NotebookResult {
            // Named apart from the submitted notebooks: it may report one of their paths.
            path: format!("{} (unexpected task)", stranger_name(task)),
            task: task.clone(),
            output: None,
            unverified: Some(format!(
                "was not submitted by this step ({key}): {run_id} does not match what was submitted"
            )),
        });
    }
    results
}

/// What a task the step did not submit says it ran, or its key.
fn stranger_name(task: &RunTask) -> String {
    let reported = task.notebook_task.as_ref();
    match (
        reported.and_then(|t| t.notebook_path.as_deref()),
        &task.task_key,
    ) {
        (Some(path), _) => path.to_string(),
        (None, Some(key)) => format!("task {key}"),
        (None, None) => "a task without a key".to_string(),
    }
}

/// Fetches the output of every task in the run, a few at a time. A task whose output cannot
/// be read is reported without it rather than failing the whole step.
pub async fn collect_results(
    client: &Client,
    log: &Log,
    run: &Run,
    notebooks: &[Notebook],
) -> Vec<NotebookResult> {
    let fetches = match_tasks(run, notebooks)
        .into_iter()
        .map(|mut result| async move {
            // Only a task's own run has an output: Jobs 2.1 refuses the parent's run id.
            let task_run = result.task.run_id.filter(|id| Some(*id) != run.run_id);
            if let Some(id) = task_run {
                match client.get_run_output(id).await {
                    Ok(output) => result.output = Some(output),
                    Err(e) => log.warning(&format!(
                        "could not read the output of {}: {e}",
                        result.path
                    )),
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

/// The run page link Databricks gave, if it is a link into `workspace`; when it is not, says
/// so in a debug line and gives nothing, so no output carries a link elsewhere.
fn run_page_link(
    log: &Log,
    workspace: &WorkspaceUrl,
    what: &str,
    url: Option<&str>,
) -> Option<WorkspaceLink> {
    match workspace.link(url?) {
        Ok(link) => Some(link),
        Err(why) => {
            log.debug(&format!("the run page link of {what} is not shown: {why}"));
            None
        }
    }
}

/// A run page link for the JSON document: only one into the workspace, as for `runPageUrl`.
fn workspace_link(workspace: &WorkspaceUrl, url: Option<&str>) -> Option<String> {
    Some(workspace.link(url?).ok()?.as_str().to_string())
}

pub fn report_results(
    log: &Log,
    workspace: &WorkspaceUrl,
    run_id: i64,
    run: &Run,
    results: Vec<NotebookResult>,
) -> Result<Report, Failure> {
    let run_result = run
        .state
        .result_state
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_else(|| describe_state(&run.state));
    log.section("Results");
    for result in &results {
        let duration = result
            .duration_ms()
            .map(|ms| format!(" in {}s", seconds(Duration::from_millis(ms as u64))))
            .unwrap_or_default();
        let state = match (&result.unverified, result.task.state == RunState::default()) {
            // A submitted notebook Databricks did not list has no state to show.
            (Some(_), true) => "no result from Databricks".to_string(),
            _ => describe_state(&result.task.state),
        };
        log.info(&format!(
            "{} {}: {state}{duration}",
            if result.succeeded() { "PASS" } else { "FAIL" },
            result.path
        ));
        if let Some(value) = result.exit_value() {
            let truncated = result
                .output
                .as_ref()
                .and_then(|o| o.notebook_output.as_ref())
                .and_then(|n| n.truncated)
                == Some(true);
            log.untrusted(&format!(
                "  output: {}{}",
                log.mask(value).shorten(MAX_PRINTED_OUTPUT),
                if truncated {
                    " (truncated by Databricks)"
                } else {
                    ""
                }
            ));
        }
        if let Some(link) = result.run_page_link(log, workspace) {
            log.debug(&format!("  {link}"));
        }
    }
    let failed: Vec<&NotebookResult> = results.iter().filter(|r| !r.succeeded()).collect();
    for result in &failed {
        let output = result.output.as_ref();
        let error = output
            .and_then(|o| o.error.as_deref())
            .filter(|e| !e.is_empty());
        let trace = output
            .and_then(|o| o.error_trace.as_deref())
            .filter(|t| !t.is_empty());
        if error.is_some() || trace.is_some() {
            log.group(&format!("{}: error", result.path));
            if let Some(error) = error {
                log.untrusted(error);
            }
            if let Some(trace) = trace {
                log.untrusted(trace);
            }
            log.end_group();
        }
        let link = result
            .run_page_link(log, workspace)
            .map(|link| format!(" ({link})"))
            .unwrap_or_default();
        log.error(&format!(
            "{} {}{link}",
            result.path,
            result.failure_reason(log)
        ));
    }

    let mut outputs = serde_json::Map::new();
    for result in &results {
        let value = result
            .exit_value()
            .map_or(serde_json::Value::Null, |v| json!(v));
        insert_masked(&mut outputs, log.mask(&result.path), value);
    }
    log.set_output("resultState", &run_result);
    log.set_output_json("notebookOutput", &serde_json::Value::Object(outputs));

    let notebooks_json: Vec<_> = results
        .iter()
        .map(|r| {
            json!({
                "path": r.path,
                "taskKey": r.task.task_key,
                "runId": r.task.run_id,
                "runPageUrl": workspace_link(workspace, r.task.run_page_url.as_deref()),
                "lifeCycleState": r.task.state.life_cycle_state,
                "resultState": r.task.state.result_state,
                "stateMessage": r.task.state.state_message,
                "durationMs": r.duration_ms(),
                "output": r.exit_value(),
                "error": r.output.as_ref().and_then(|o| o.error.clone()),
                "unverified": r.unverified,
            })
        })
        .collect();
    let details = json!({
        "runId": run_id,
        "runPageUrl": workspace_link(workspace, run.run_page_url.as_deref()),
        "resultState": run_result,
        "notebooks": notebooks_json,
    });
    let total = results.len();
    let all_ok =
        failed.is_empty() && total > 0 && run.state.result_state == Some(ResultState::Success);
    if all_ok {
        let summary = format!(
            "{total} of {total} notebook{} passed",
            if total == 1 { "" } else { "s" }
        );
        log.info(&summary);
        let mut json = details;
        json["task"] = json!("DatabricksRunNotebookTest");
        json["ok"] = json!(true);
        json["exitCode"] = json!(0);
        return Ok(Report {
            summary,
            issues: false,
            json,
        });
    }
    let message = if total == 0 {
        format!(
            "run {run_id} ended {run_result}: {}",
            run.state.state_message.as_deref().unwrap_or("no task ran")
        )
    } else if failed.is_empty() {
        format!(
            "every notebook passed, but run {run_id} did not succeed ({run_result}): {}",
            run.state
                .state_message
                .as_deref()
                .filter(|m| !m.is_empty())
                .unwrap_or("Databricks gave no reason")
        )
    } else {
        let unverified = results.iter().filter(|r| r.unverified.is_some()).count();
        format!(
            "{} of {total} notebook{} did not pass (run {run_id}: {run_result}){}",
            failed.len(),
            if total == 1 { "" } else { "s" },
            match unverified {
                0 => String::new(),
                n => format!("; {n} without a trustworthy result from Databricks"),
            }
        )
    };
    Err(Failure::new(FailureKind::Tests, message).details(details))
}

impl NotebookResult {
    fn run_page_link(&self, log: &Log, workspace: &WorkspaceUrl) -> Option<WorkspaceLink> {
        let url = self.task.run_page_url.as_deref();
        run_page_link(log, workspace, &self.path, url)
    }

    /// Every text masked here, as a raw value, before the JUnit writer escapes it.
    fn test_case(&self, log: &Log) -> TestCase {
        let state = &self.task.state;
        let output = self.output.as_ref();
        let outcome = if self.succeeded() {
            Outcome::Passed
        } else if state.life_cycle_state == Some(LifeCycleState::Skipped) {
            Outcome::Skipped
        } else if state.life_cycle_state == Some(LifeCycleState::InternalError)
            && output.and_then(|o| o.error.as_ref()).is_none()
        {
            Outcome::Error
        } else {
            Outcome::Failed
        };
        let detail = output
            .and_then(|o| o.error_trace.clone().or_else(|| o.error.clone()))
            .or_else(|| state.state_message.clone())
            .unwrap_or_default();
        TestCase {
            name: log.mask(&self.path),
            duration: self
                .duration_ms()
                .map(|ms| Duration::from_millis(ms as u64)),
            outcome,
            message: if outcome == Outcome::Passed {
                Masked::default()
            } else {
                log.mask(&self.failure_reason(log))
            },
            detail: log.mask(&detail),
            output: self.exit_value().map(|v| log.mask(v)),
        }
    }
}

/// In a pipeline: the results as JUnit for the Tests tab, and a Markdown table for the build
/// summary, both written to `Agent.TempDirectory`. Their values are masked before they are
/// escaped, like everything else we print; the markup never is.
pub fn publish_reports(
    host: &dyn Host,
    log: &Log,
    workspace: &WorkspaceUrl,
    run_id: i64,
    run: &Run,
    results: &[NotebookResult],
) {
    if log.mode() != OutputMode::Agent {
        return;
    }
    let Some(dir) = Inputs::new(host.env()).variable("Agent.TempDirectory") else {
        log.debug("Agent.TempDirectory is not set: no test results or summary are published");
        return;
    };
    let dir = dir.trim_end_matches(['/', '\\']);
    let title = format!("Databricks notebooks (run {run_id})");
    let cases: Vec<TestCase> = results.iter().map(|r| r.test_case(log)).collect();
    let junit = format!("{dir}/databricks-run-{run_id}.xml");
    match host.write_file(&junit, &junit_xml(&log.mask(&title), &cases)) {
        Ok(()) => log.publish_junit(&junit, &title),
        Err(e) => log.warning(&format!("could not write the test results to {junit}: {e}")),
    }
    let summary = format!("{dir}/databricks-run-{run_id}-summary.md");
    let url = log.mask(run.run_page_url.as_deref().unwrap_or_default());
    let run_page = RunPage {
        // A link with a secret in it would have to be masked, and would then lead nowhere.
        link: run_page_link(log, workspace, "the run", run.run_page_url.as_deref())
            .filter(|link| log.mask(link.as_str()).as_str() == link.as_str()),
        url,
    };
    match host.write_file(
        &summary,
        &summary_markdown(&log.mask(&run_id.to_string()), &run_page, &cases),
    ) {
        Ok(()) => log.upload_summary(&summary),
        Err(e) => log.warning(&format!("could not write the summary to {summary}: {e}")),
    }
}

/// The run page as the summary shows it: a link when it leads into the workspace, else the
/// URL Databricks gave as text.
struct RunPage {
    link: Option<WorkspaceLink>,
    url: Masked,
}

/// The summary: outside text (notebook names, outputs, errors, a link that does not lead into
/// the workspace) is code, never markup.
fn summary_markdown(run_id: &Masked, run_page: &RunPage, cases: &[TestCase]) -> String {
    let cell = |text: &Masked| markdown::code(&text.shorten(200));
    let run = format!("run {}", markdown::text(run_id));
    let heading_link = match &run_page.link {
        Some(link) => markdown::link(&run, link),
        None if run_page.url.is_empty() => run,
        None => format!("{run}, not linked: {}", markdown::code(&run_page.url)),
    };
    let passed = cases
        .iter()
        .filter(|c| c.outcome == Outcome::Passed)
        .count();
    let mut md = format!(
        "### Databricks notebook tests: {passed} of {} passed ({heading_link})\n\n",
        cases.len()
    );
    md.push_str("| | Notebook | Duration | Output or error |\n|---|---|---|---|\n");
    for case in cases {
        let mark = match case.outcome {
            Outcome::Passed => "✅",
            Outcome::Skipped => "⏭️",
            Outcome::Failed | Outcome::Error => "❌",
        };
        let duration = case
            .duration
            .map(|d| format!("{}s", seconds(d)))
            .unwrap_or_default();
        let text = if case.outcome == Outcome::Passed {
            case.output.clone().unwrap_or_default()
        } else {
            case.message.clone()
        };
        md.push_str(&format!(
            "| {mark} | {} | {duration} | {} |\n",
            cell(&case.name),
            cell(&text)
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notebooks(keys: &[&str]) -> Vec<Notebook> {
        keys.iter()
            .map(|k| Notebook {
                path: format!("/n/{k}"),
                task_key: k.to_string(),
            })
            .collect()
    }

    /// A run whose tasks have these keys (`-` = no key), all SUCCESS.
    fn run(keys: &[&str]) -> Run {
        let tasks: Vec<serde_json::Value> = keys
            .iter()
            .map(|k| {
                let mut task = json!({ "state": { "result_state": "SUCCESS" } });
                if *k != "-" {
                    task["task_key"] = json!(k);
                }
                task
            })
            .collect();
        serde_json::from_value(json!({ "run_id": 9, "tasks": tasks })).unwrap()
    }

    #[test]
    fn every_submitted_notebook_gets_one_entry_and_strangers_fail() {
        #[rustfmt::skip]
        let cases: &[(&[&str], &[&str], &[&str])] = &[
            // submitted, listed by runs/get, entries (path: passes or why not)
            (&["a", "b"], &["b", "a"], &["/n/a: pass", "/n/b: pass"]),
            (&["a", "b"], &["a"], &["/n/a: pass", "/n/b: does not list its task (b)"]),
            (&["a"], &[], &["/n/a: does not list its task (a)"]),
            (&["a", "b"], &["a", "b", "b"], &["/n/a: pass", "/n/b: lists its task (b) 2 times"]),
            (&["a"], &["a", "x"], &["/n/a: pass", "task x (unexpected task): was not submitted by this step (task key x)"]),
            (&["a"], &["-"], &["/n/a: does not list its task (a)", "a task without a key (unexpected task): was not submitted by this step (no task key)"]),
        ];
        for (submitted, listed, expected) in cases {
            let entries: Vec<String> = match_tasks(&run(listed), &notebooks(submitted))
                .iter()
                .map(|r| match (&r.unverified, r.succeeded()) {
                    (None, true) => format!("{}: pass", r.path),
                    (Some(why), false) => format!("{}: {why}", r.path),
                    other => panic!("{}: {other:?}", r.path),
                })
                .collect();
            assert_eq!(entries.len(), expected.len(), "{listed:?}: {entries:?}");
            for (entry, expected) in entries.iter().zip(*expected) {
                let (path, why) = expected.split_once(": ").unwrap();
                assert!(
                    entry.starts_with(&format!("{path}: ")) && entry.contains(why),
                    "{listed:?}: {entry} is not {expected}"
                );
            }
        }
    }

    #[test]
    fn a_task_without_a_result_state_does_not_pass() {
        let run: Run = serde_json::from_value(
            json!({ "run_id": 9, "tasks": [{ "task_key": "a", "state": { "life_cycle_state": "TERMINATED" } }] }),
        )
        .unwrap();
        let results = match_tasks(&run, &notebooks(&["a"]));
        assert!(!results[0].succeeded());
        let sink = || std::sync::Arc::new(std::sync::Mutex::new(std::io::sink()));
        let host = crate::host::NativeHost::new(Default::default(), sink(), sink());
        let log = Log::new(std::rc::Rc::new(host), OutputMode::Agent, false);
        let reason = results[0].failure_reason(&log);
        assert!(
            reason.contains("no result_state (life cycle TERMINATED)"),
            "{reason}"
        );
    }
}
