//! The build summary's Markdown table (`##vso[task.uploadsummary]`): outside text (notebook
//! names, outputs, errors, a link that does not lead into the workspace) is code, never markup.

use crate::databricks::WorkspaceLink;
use crate::pipeline::{markdown, Masked};
use crate::text::seconds;

use super::super::test_report::Counts;
use super::junit::{Outcome, TestCase};

/// One notebook's row: the notebook as one case, its own test cases' counts when it handed
/// back a report, and its task's run page when that leads into the workspace.
pub struct Row {
    pub notebook: TestCase,
    pub tests: Option<Counts>,
    pub link: Option<WorkspaceLink>,
}

/// The run page as the summary shows it: a link when it leads into the workspace, else the
/// URL Databricks gave as text.
pub struct RunPage {
    pub link: Option<WorkspaceLink>,
    pub url: Masked,
}

/// The summary of one run, one row per notebook.
pub fn summary_markdown(run_id: &Masked, run_page: &RunPage, rows: &[Row]) -> String {
    let cell = |text: &Masked| markdown::code(&text.shorten(200));
    let run = format!("run {}", markdown::text(run_id));
    let heading_link = match &run_page.link {
        Some(link) => markdown::link(&run, link),
        None if run_page.url.is_empty() => run,
        None => format!("{run}, not linked: {}", markdown::code(&run_page.url)),
    };
    let passed = rows
        .iter()
        .filter(|r| r.notebook.outcome == Outcome::Passed && r.tests.is_none_or(|t| t.failed == 0))
        .count();
    let mut md = format!(
        "### Databricks notebook tests: {passed} of {} passed ({heading_link})\n\n",
        rows.len()
    );
    if rows.iter().any(|r| r.tests.is_some()) {
        let mut total = Counts::default();
        rows.iter()
            .filter_map(|r| r.tests)
            .for_each(|t| total.add(t));
        md.push_str(&format!(
            "Test cases reported by the notebooks: {}\n\n",
            total.describe()
        ));
    }
    md.push_str("| | Notebook | Tests | Duration | Output or error |\n|---|---|---|---|---|\n");
    for row in rows {
        let case = &row.notebook;
        let failed_cases = row.tests.is_some_and(|t| t.failed > 0);
        let mark = match case.outcome {
            Outcome::Passed if failed_cases => "❌",
            Outcome::Passed if case.flaky.is_some() => "⚠️",
            Outcome::Passed => "✅",
            Outcome::Skipped => "⏭️",
            Outcome::Failed | Outcome::Error => "❌",
        };
        let duration = case
            .duration
            .map(|d| format!("{}s", seconds(d)))
            .unwrap_or_default();
        let text = match (&row.tests, case.outcome) {
            (_, Outcome::Passed) if case.flaky.is_some() => case.flaky.clone().unwrap_or_default(),
            // A report is the Tests tab's business; its document is not an output to show.
            (Some(_), Outcome::Passed) => Masked::default(),
            (None, Outcome::Passed) => case.output.clone().unwrap_or_default(),
            _ => case.message.clone(),
        };
        let name = match &row.link {
            Some(link) => markdown::link(&cell(&case.name), link),
            None => cell(&case.name),
        };
        let tests = row.tests.map(|t| t.describe()).unwrap_or_default();
        md.push_str(&format!(
            "| {mark} | {name} | {tests} | {duration} | {} |\n",
            cell(&text)
        ));
    }
    md
}
