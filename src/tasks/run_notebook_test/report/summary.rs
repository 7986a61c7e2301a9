//! The build summary's Markdown table (`##vso[task.uploadsummary]`): outside text (notebook
//! names, outputs, errors, a link that does not lead into the workspace) is code, never markup.

use crate::databricks::WorkspaceLink;
use crate::pipeline::{markdown, Masked};
use crate::text::seconds;

use super::junit::{Outcome, TestCase};

/// The run page as the summary shows it: a link when it leads into the workspace, else the
/// URL Databricks gave as text.
pub struct RunPage {
    pub link: Option<WorkspaceLink>,
    pub url: Masked,
}

/// The summary of one run, one row per notebook.
pub fn summary_markdown(run_id: &Masked, run_page: &RunPage, cases: &[TestCase]) -> String {
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
