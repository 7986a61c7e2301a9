//! The `--output json` document's part for this task: the run and each notebook's result.
//! The envelope (`task`, `ok`, `exitCode`, `error`) is added by `tasks::document`.

use serde::Serialize;

use super::super::test_report::{Counts, Reported};
use super::super::verdict::{NotebookResult, Verdict};
use crate::databricks::models::{LifeCycleState, ResultState, Run};
use crate::databricks::WorkspaceUrl;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunDocument<'a> {
    run_id: i64,
    run_page_url: Option<String>,
    result_state: &'a str,
    /// Test cases over all notebooks, as the Tests tab counts them.
    tests: TestsDocument,
    notebooks: Vec<NotebookDocument<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NotebookDocument<'a> {
    path: &'a str,
    task_key: Option<&'a str>,
    run_id: Option<i64>,
    run_page_url: Option<String>,
    life_cycle_state: Option<&'a LifeCycleState>,
    result_state: Option<&'a ResultState>,
    state_message: Option<&'a str>,
    duration_ms: Option<i64>,
    output: Option<&'a str>,
    error: Option<&'a str>,
    unverified: Option<&'a str>,
    /// The counts of the test cases it reported, if it handed back a report.
    tests: Option<TestsDocument>,
    /// Why its test report could not be read (kept under its 1.5 name: it now fails the
    /// notebook, and `unread` says so for the output too).
    test_report_warning: Option<&'a str>,
    /// What it handed back that could not be read whole (its output or its report): it then
    /// does not pass, whatever its state.
    unread: Option<&'a str>,
    /// Whether it passed (ran, was read whole, and no case it reported failed).
    passed: bool,
    /// Attempts made (more than 1 with `retries`).
    attempts: usize,
    /// It passed, but only on a retry.
    flaky: bool,
}

#[derive(Serialize)]
struct TestsDocument {
    passed: usize,
    failed: usize,
    skipped: usize,
}

impl From<Counts> for TestsDocument {
    fn from(counts: Counts) -> TestsDocument {
        TestsDocument {
            passed: counts.passed,
            failed: counts.failed,
            skipped: counts.skipped,
        }
    }
}

/// A run page link for the document: only one into the workspace, as for `runPageUrl`.
fn workspace_link(workspace: &WorkspaceUrl, url: Option<&str>) -> Option<String> {
    Some(workspace.link(url?).ok()?.as_str().to_string())
}

pub fn details(
    workspace: &WorkspaceUrl,
    run_id: i64,
    run: &Run,
    verdict: &Verdict,
    results: &[NotebookResult],
) -> serde_json::Value {
    let notebooks = results
        .iter()
        .map(|r| NotebookDocument {
            path: &r.path,
            task_key: r.task.task_key.as_deref(),
            run_id: r.task.run_id,
            run_page_url: workspace_link(workspace, r.task.run_page_url.as_deref()),
            life_cycle_state: r.task.state.life_cycle_state.as_ref(),
            result_state: r.task.state.result_state.as_ref(),
            state_message: r.task.state.state_message.as_deref(),
            duration_ms: r.duration_ms(),
            output: r.exit_value(),
            error: r.output.as_ref().and_then(|o| o.error.as_deref()),
            unverified: r.unverified.as_deref(),
            tests: r.case_counts().map(TestsDocument::from),
            test_report_warning: match &r.tests {
                Reported::Unreadable(why) => Some(why),
                _ => None,
            },
            unread: r.unreadable().filter(|_| r.ran()),
            passed: r.succeeded(),
            attempts: r.attempts(),
            flaky: r.flaky(),
        })
        .collect();
    let document = RunDocument {
        run_id,
        run_page_url: workspace_link(workspace, run.run_page_url.as_deref()),
        result_state: &verdict.run_result,
        tests: verdict.tests.into(),
        notebooks,
    };
    serde_json::to_value(document).expect("the document serializes")
}
