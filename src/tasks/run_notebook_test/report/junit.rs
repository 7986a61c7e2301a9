//! JUnit XML for the pipeline's Tests tab (`##vso[results.publish type=JUnit]`).
//!
//! Every text in the file is a [`Masked`] value, escaped here: secrets are masked in values,
//! never across the markup (the agent does not mask the Tests tab). The numbers (counts, times)
//! are ours.

use std::fmt::Write as _;
use std::time::Duration;

use super::super::test_report::{CaseStatus, Reported, TestCase as ReportedCase};
use super::super::verdict::NotebookResult;
use crate::databricks::models::LifeCycleState;
use crate::pipeline::escape::plain_text;
use crate::pipeline::{Log, Masked};
use crate::text::seconds;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// The test ran and did not pass (an assertion, a timeout, a cancel).
    Failed,
    /// The test could not run (Databricks reported an internal error).
    Error,
    Skipped,
}

#[derive(Clone, Debug)]
pub struct TestCase {
    /// The notebook path, and the case's class when the notebook reported its own cases.
    pub class: Masked,
    pub name: Masked,
    pub duration: Option<Duration>,
    /// The time as the notebook's own report wrote it (kept exactly in the JUnit file).
    pub reported_time: Option<String>,
    pub outcome: Outcome,
    /// One line: why it did not pass.
    pub message: Masked,
    /// The error trace, for failures.
    pub detail: Masked,
    /// What the notebook returned with `dbutils.notebook.exit`.
    pub output: Option<Masked>,
    /// Passed on a retry: why the earlier attempt failed (a `flakyFailure`, as Maven
    /// Surefire writes it; consumers that do not know it count the case as passed).
    pub flaky: Option<Masked>,
}

/// The cases of one notebook: `<testsuite>` named after it.
#[derive(Clone, Debug)]
pub struct Suite {
    pub name: Masked,
    pub cases: Vec<TestCase>,
    /// The notebook passed on a retry (a `flaky` property of the suite).
    pub flaky: Option<Masked>,
}

/// `<testsuites>` named `title`, one `<testsuite>` per notebook.
pub fn junit_xml(title: &Masked, suites: &[Suite]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{}\">\n",
        escape(title)
    );
    for suite in suites {
        write_suite(&mut xml, suite);
    }
    xml.push_str("</testsuites>\n");
    xml
}

fn write_suite(xml: &mut String, suite: &Suite) {
    let cases = &suite.cases;
    let count = |outcome| cases.iter().filter(|c| c.outcome == outcome).count();
    let total: Duration = cases.iter().filter_map(|c| c.duration).sum();
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">",
        escape(&suite.name),
        cases.len(),
        count(Outcome::Failed),
        count(Outcome::Error),
        count(Outcome::Skipped),
        seconds(total)
    );
    if let Some(note) = &suite.flaky {
        let _ = writeln!(
            xml,
            "    <properties><property name=\"flaky\" value=\"{}\"/></properties>",
            escape(note)
        );
    }
    for case in cases {
        let time = case
            .reported_time
            .clone()
            .unwrap_or_else(|| seconds(case.duration.unwrap_or_default()));
        let _ = write!(
            xml,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{time}\"",
            escape(&case.class),
            escape(&case.name),
        );
        let element = match case.outcome {
            Outcome::Passed => None,
            Outcome::Failed => Some("failure"),
            Outcome::Error => Some("error"),
            Outcome::Skipped => Some("skipped"),
        };
        if element.is_none() && case.output.is_none() && case.flaky.is_none() {
            xml.push_str("/>\n");
            continue;
        }
        xml.push_str(">\n");
        if let Some(note) = &case.flaky {
            let _ = writeln!(xml, "      <flakyFailure message=\"{}\"/>", escape(note));
        }
        if let Some(element) = element {
            let _ = writeln!(
                xml,
                "      <{element} message=\"{}\">{}</{element}>",
                escape(&case.message),
                escape(&case.detail)
            );
        }
        if let Some(output) = &case.output {
            let _ = writeln!(xml, "      <system-out>{}</system-out>", escape(output));
        }
        xml.push_str("    </testcase>\n");
    }
    xml.push_str("  </testsuite>\n");
}

/// Escapes text for XML content and attributes; ANSI escape sequences (colours in a Python
/// trace) are dropped and other characters XML 1.0 cannot hold replaced.
fn escape(text: &Masked) -> String {
    escape_str(&plain_text(text.as_str()))
}

fn escape_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push('\t'),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// A notebook as the Tests tab shows it: its own test cases when it ran and handed back a
/// report, else one case for the notebook. Every text is masked here, as a raw value, before
/// the JUnit writer escapes it.
pub fn suite(result: &NotebookResult, log: &Log) -> Suite {
    let name = log.mask(&result.path);
    let cases = match &result.tests {
        Reported::Report(report) if result.ran() => report
            .cases
            .iter()
            .map(|case| reported_case(&result.path, case, log))
            .collect(),
        _ => vec![test_case(result, log)],
    };
    let flaky = match &result.tests {
        Reported::Report(_) if result.ran() => {
            result.flaky_note(log.secrets()).map(|note| log.mask(&note))
        }
        _ => None,
    };
    Suite { name, cases, flaky }
}

/// A case the notebook reported: classname = the notebook path and the case's class.
fn reported_case(path: &str, case: &ReportedCase, log: &Log) -> TestCase {
    let outcome = match case.status {
        CaseStatus::Passed => Outcome::Passed,
        CaseStatus::Failed => Outcome::Failed,
        CaseStatus::Error => Outcome::Error,
        CaseStatus::Skipped => Outcome::Skipped,
    };
    let class = match &case.class {
        Some(class) => format!("{path}.{class}"),
        None => path.to_string(),
    };
    TestCase {
        class: log.mask(&class),
        name: log.mask(&case.name),
        duration: case.time.as_deref().and_then(parse_seconds),
        // A plain decimal number (checked when the report was read): nothing to escape.
        reported_time: case.time.clone(),
        outcome,
        message: log.mask(case.message.as_deref().unwrap_or_default()),
        detail: log.mask(case.trace.as_deref().unwrap_or_default()),
        output: case.output.as_deref().map(|o| log.mask(o)),
        flaky: None,
    }
}

/// `"1.25"` seconds as a duration, without floating point (a plain decimal number).
fn parse_seconds(text: &str) -> Option<Duration> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let digits: String = fraction.chars().take(9).collect();
    let nanos: u32 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    Some(Duration::new(secs.min(u32::MAX as u64), nanos))
}

/// The notebook itself as one test case (no report, or it did not run to its end).
pub fn test_case(result: &NotebookResult, log: &Log) -> TestCase {
    let state = &result.task.state;
    let output = result.output.as_ref();
    let outcome = if result.succeeded() {
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
        class: log.mask("databricks"),
        name: log.mask(&result.path),
        duration: result
            .duration_ms()
            .map(|ms| Duration::from_millis(ms as u64)),
        reported_time: None,
        outcome,
        message: if outcome == Outcome::Passed {
            Masked::default()
        } else {
            log.mask(&result.failure_reason(log.secrets()))
        },
        detail: log.mask(&detail),
        // Masked whole, then cut: the Tests tab shows the start, the run page has it all.
        output: result
            .exit_value()
            .map(|v| log.mask(v).shorten(super::MAX_EXIT_VALUE_SHOWN)),
        flaky: result.flaky_note(log.secrets()).map(|note| log.mask(&note)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pipeline::Secrets;

    fn text(text: &str) -> Masked {
        Secrets::default().mask(text)
    }

    #[test]
    fn writes_each_outcome() {
        let case = |name: &str, outcome, output: Option<&str>| TestCase {
            class: text("databricks"),
            name: text(name),
            duration: Some(Duration::from_millis(1500)),
            reported_time: None,
            outcome,
            message: text("AssertionError: x & y < z"),
            detail: text("Traceback\n  line 1"),
            output: output.map(text),
            flaky: None,
        };
        let xml = junit_xml(
            &text("Databricks run 7"),
            &[Suite {
                name: text("/a"),
                cases: vec![
                    case("/a/unit", Outcome::Passed, Some("ok \"quoted\"")),
                    case("/a/bad", Outcome::Failed, None),
                    case("/a/gone", Outcome::Error, None),
                    case("/a/skip", Outcome::Skipped, None),
                    case("/a/bare", Outcome::Passed, None),
                ],
                flaky: None,
            }],
        );
        assert!(
            xml.contains(r#"<testsuites name="Databricks run 7">"#),
            "{xml}"
        );
        assert!(
            xml.contains(
                r#"<testsuite name="/a" tests="5" failures="1" errors="1" skipped="1" time="7.5">"#
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<system-out>ok &quot;quoted&quot;</system-out>"),
            "{xml}"
        );
        assert!(xml.contains(r#"<failure message="AssertionError: x &amp; y &lt; z">Traceback&#10;  line 1</failure>"#), "{xml}");
        assert!(xml.contains(r#"<error message="#), "{xml}");
        assert!(
            xml.contains(r#"<testcase classname="databricks" name="/a/bare" time="1.5"/>"#),
            "{xml}"
        );
    }

    #[test]
    fn case_times_are_read_without_floating_point() {
        assert_eq!(parse_seconds("1.25"), Some(Duration::from_millis(1250)));
        assert_eq!(parse_seconds("0.0001"), Some(Duration::from_micros(100)));
        assert_eq!(parse_seconds("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_seconds("0.1234567891"),
            Some(Duration::from_nanos(123_456_789))
        );
        assert_eq!(parse_seconds("x"), None);
    }

    #[test]
    fn drops_characters_xml_cannot_hold() {
        assert_eq!(escape_str("a\u{0}b\u{1b}c\td"), "abc\td");
        assert_eq!(
            escape(&text("\u{1b}[0;31mError\u{1b}[0m\r\nx\u{0}")),
            "Error&#10;x\u{FFFD}"
        );
    }
}
