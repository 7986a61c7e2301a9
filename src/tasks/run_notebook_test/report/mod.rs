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

/// The most of `notebookOutput`, all notebooks together: a later step gets it as an
/// environment variable, and Windows holds at most 32,767 characters in one.
pub const MAX_NOTEBOOK_OUTPUT_BYTES: usize = 32_000;
/// The most of one notebook's exit value in the published JUnit (its `<system-out>`).
pub const MAX_EXIT_VALUE_SHOWN: usize = 64 * 1024;
/// `notebookOutput`: each notebook's exit value, masked, in the order listed, as long as the
/// whole stays within [`MAX_NOTEBOOK_OUTPUT_BYTES`] as JSON. A value that does not fit is cut
/// (and says so) when at least 1 KB is left; the notebooks that do not fit at all are counted
/// under the key `(left out)`, which says where their values are whole.
fn notebook_outputs(log: &Log, results: &[NotebookResult]) -> serde_json::Value {
    const NOTE_ROOM: usize = 300;
    let escaped_len = |text: &str| serde_json::to_string(text).map_or(usize::MAX, |s| s.len());
    let mut outputs = serde_json::Map::new();
    let mut left = MAX_NOTEBOOK_OUTPUT_BYTES - NOTE_ROOM;
    let mut left_out = 0usize;
    for result in results {
        let key = log.mask(&result.path);
        let value = result.exit_value().map(|v| log.mask(v));
        // `"key":value,` in the compact JSON the agent receives.
        let entry = |value: Option<&str>| {
            escaped_len(key.as_str()).saturating_add(value.map_or(4, escaped_len)) + 2
        };
        let whole = entry(value.as_ref().map(|v| v.as_str()));
        let chosen = if whole <= left {
            Some(value.map_or(serde_json::Value::Null, |v| json!(v.as_str())))
        } else {
            value.and_then(|v| {
                let room = left.saturating_sub(entry(Some("")) + 100);
                let cut = format!(
                    "{} [cut: the whole exit value is on the notebook's run page]",
                    v.shorten(room / 6).as_str()
                );
                (room >= 1024 && entry(Some(&cut)) <= left).then(|| json!(cut))
            })
        };
        match chosen {
            Some(value) => {
                left -= entry(value.as_str()).min(left);
                insert_masked(&mut outputs, key, value);
            }
            None => left_out += 1,
        }
    }
    if left_out > 0 {
        outputs.insert(
            "(left out)".into(),
            json!(format!(
                "the exit values of {left_out} more notebook(s): notebookOutput holds at most {MAX_NOTEBOOK_OUTPUT_BYTES} bytes in all; each is whole on its run page"
            )),
        );
    }
    serde_json::Value::Object(outputs)
}

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
    log.set_output(output::RESULT_STATE, &verdict.run_result);
    log.set_output_json(output::NOTEBOOK_OUTPUT, &notebook_outputs(log, &results));
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
