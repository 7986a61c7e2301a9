//! The log's Results section: a PASS or FAIL line per notebook with its output or its test
//! cases' counts, then each failure as an error with its trace in a collapsible group (each
//! failed test case with its message and trace). Outside text is printed through
//! [`Log::untrusted`], masked and unable to issue a logging command.

use std::time::Duration;

use super::run_page_link;
use crate::databricks::models::RunState;
use crate::databricks::WorkspaceUrl;
use crate::pipeline::Log;
use crate::text::seconds;

use super::super::test_report::{CaseStatus, Reported};
use super::super::verdict::{describe_state, NotebookResult, Verdict};

/// Longest notebook output printed inline (the output variable keeps all of it).
const MAX_PRINTED_OUTPUT: usize = 2000;

pub fn results(log: &Log, workspace: &WorkspaceUrl, results: &[NotebookResult], verdict: &Verdict) {
    log.section("Results");
    for result in results {
        let duration = result
            .duration_ms()
            .map(|ms| format!(" in {}s", seconds(Duration::from_millis(ms as u64))))
            .unwrap_or_default();
        let state = match (&result.unverified, result.task.state == RunState::default()) {
            // A submitted notebook Databricks did not list has no state to show.
            (Some(_), true) => "no result from Databricks".to_string(),
            _ => describe_state(&result.task.state),
        };
        let attempt = match result.attempts() {
            1 => String::new(),
            n => format!(", attempt {n}"),
        };
        log.info(&format!(
            "{} {}: {state}{duration}{attempt}",
            if result.succeeded() { "PASS" } else { "FAIL" },
            result.path
        ));
        if let Some(note) = result.flaky_note(log.secrets()) {
            log.warning(&format!("{} {note}", result.path));
        }
        match &result.tests {
            Reported::Report(report) => {
                log.info(&format!("  tests: {}", report.counts().describe()));
            }
            // Said once, as its failure, below.
            Reported::Unreadable(_) | Reported::Nothing | Reported::File(_) => {}
        }
        // A report is shown as its cases, not as the document it came in.
        let value = match result.tests {
            Reported::Report(_) => None,
            _ => result.exit_value(),
        };
        if let Some(value) = value {
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
        if let Some(link) = run_page_link(
            log,
            workspace,
            &result.path,
            result.task.run_page_url.as_deref(),
        ) {
            log.debug(&format!("  {link}"));
        }
    }
    let failed: Vec<&NotebookResult> = results.iter().filter(|r| !r.succeeded()).collect();
    for result in &failed {
        failed_cases(log, result);
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
        let link = run_page_link(
            log,
            workspace,
            &result.path,
            result.task.run_page_url.as_deref(),
        )
        .map(|link| format!(" ({link})"))
        .unwrap_or_default();
        let text = format!(
            "{} {}{link}",
            result.path,
            result.failure_reason(log.secrets())
        );
        // Failed cases of a notebook that ran do not fail the step with failOnFailedTests false.
        if result.ran_and_read() && !verdict.failed_cases_fail {
            log.warning(&text);
        } else {
            log.error(&text);
        }
    }
}

/// Each failed test case of a notebook's report, with its message and trace, in a group.
fn failed_cases(log: &Log, result: &NotebookResult) {
    let Reported::Report(report) = &result.tests else {
        return;
    };
    for case in report.cases.iter().filter(|c| c.status.failed()) {
        let name = match &case.class {
            Some(class) => format!("{class}.{}", case.name),
            None => case.name.clone(),
        };
        let kind = if case.status == CaseStatus::Error {
            "error"
        } else {
            "failed"
        };
        log.group(&format!("{}: {name} {kind}", result.path));
        if let Some(message) = &case.message {
            log.untrusted(message);
        }
        if let Some(trace) = &case.trace {
            log.untrusted(trace);
        }
        if let Some(output) = &case.output {
            log.untrusted(&format!("output:\n{output}"));
        }
        log.end_group();
    }
}
