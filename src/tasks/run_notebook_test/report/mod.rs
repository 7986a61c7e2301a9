//! Showing a judged run, each form in one place, all from the same results and verdict:
//! the log's Results section (`lines`), the output variables (here), the Tests tab's JUnit
//! (`junit`), the build summary (`summary`) and the `--output json` document (`document`).
//! Every value is masked before it is escaped for its format.

mod document;
mod junit;
mod lines;
mod summary;

use serde_json::json;

use self::junit::{junit_xml, suite, test_case, Suite};
use self::summary::{summary_markdown, Row, RunPage};
use super::verdict::{NotebookResult, Verdict};
use crate::databricks::models::Run;
use crate::databricks::{WorkspaceLink, WorkspaceUrl};
use crate::host::Host;
use crate::pipeline::secrets::insert_masked;
use crate::pipeline::{Inputs, Log, OutputMode};
use crate::tasks::names::{output, variable};
use crate::tasks::{Failure, FailureKind, Report};

/// Reports the run everywhere it is shown, and turns the verdict into the step's result.
pub fn report(
    host: &dyn Host,
    log: &Log,
    workspace: &WorkspaceUrl,
    run_id: i64,
    run: &Run,
    results: Vec<NotebookResult>,
    verdict: Verdict,
) -> Result<Report, Failure> {
    publish_files(host, log, workspace, run_id, run, &results);
    lines::results(log, workspace, &results, &verdict);
    let mut outputs = serde_json::Map::new();
    for result in &results {
        let value = result
            .exit_value()
            .map_or(serde_json::Value::Null, |v| json!(v));
        insert_masked(&mut outputs, log.mask(&result.path), value);
    }
    log.set_output(output::RESULT_STATE, &verdict.run_result);
    log.set_output_json(output::NOTEBOOK_OUTPUT, &serde_json::Value::Object(outputs));
    log.set_output(output::TESTS_PASSED, &verdict.tests.passed.to_string());
    log.set_output(output::TESTS_FAILED, &verdict.tests.failed.to_string());
    log.set_output(output::TESTS_SKIPPED, &verdict.tests.skipped.to_string());
    let details = document::details(workspace, run_id, run, &verdict, &results);
    match verdict.outcome {
        Ok(summary) => {
            log.info(&summary);
            Ok(Report {
                summary,
                issues: verdict.issues,
                details,
            })
        }
        Err(message) => Err(Failure::new(FailureKind::Tests, message).details(details)),
    }
}

/// The run page link Databricks gave, if it is a link into `workspace`; when it is not, says
/// so in a debug line and gives nothing, so no output carries a link elsewhere.
pub(super) fn run_page_link(
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

/// In a pipeline: the results as JUnit for the Tests tab, and a Markdown table for the build
/// summary, both written to `Agent.TempDirectory`. Their values are masked before they are
/// escaped, like everything else we print; the markup never is.
fn publish_files(
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
    let Some(dir) = Inputs::new(host.env()).variable(variable::AGENT_TEMP_DIRECTORY) else {
        log.debug("Agent.TempDirectory is not set: no test results or summary are published");
        return;
    };
    let dir = dir.trim_end_matches(['/', '\\']);
    let title = format!("Databricks notebooks (run {run_id})");
    let suites: Vec<Suite> = results.iter().map(|r| suite(r, log)).collect();
    let junit = format!("{dir}/databricks-run-{run_id}.xml");
    match host.write_file(&junit, &junit_xml(&log.mask(&title), &suites)) {
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
    let rows: Vec<Row> = results
        .iter()
        .map(|r| Row {
            notebook: test_case(r, log),
            tests: r.case_counts(),
            link: run_page_link(log, workspace, &r.path, r.task.run_page_url.as_deref())
                .filter(|link| log.mask(link.as_str()).as_str() == link.as_str()),
        })
        .collect();
    match host.write_file(
        &summary,
        &summary_markdown(&log.mask(&run_id.to_string()), &run_page, &rows),
    ) {
        Ok(()) => log.upload_summary(&summary),
        Err(e) => log.warning(&format!("could not write the summary to {summary}: {e}")),
    }
}
