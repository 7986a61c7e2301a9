//! A notebook's own test report, handed back as its exit value: a JUnit XML document
//! (`<testsuites>` or `<testsuite>`, as pytest, unittest-xml-reporting and Nutter-style writers
//! emit them), or our small JSON report for code without a JUnit writer. Anything else is not
//! a report: the notebook stays one test, its exit value its output. Pure: text in, cases out.
//!
//! The exit value comes from whoever wrote the notebook: parsing is bounded (no DTD, so no
//! entity expansion; a node limit; texts cut), walks iteratively (deep nesting cannot overflow
//! the stack), and a bad report is a warning on that notebook, never a crash.

use serde::Deserialize;

/// Most cases one report may hold.
pub const MAX_CASES: usize = 10_000;
/// Most XML nodes parsed (elements, texts, attributes count once each).
const MAX_NODES: u32 = 400_000;
/// Longest message, trace or output kept per case.
const MAX_TEXT: usize = 64 * 1024;
/// Longest name or class kept.
const MAX_NAME: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseStatus {
    Passed,
    /// An assertion failed.
    Failed,
    /// The test could not run to its assertions (JUnit `<error>`); counted as failed.
    Error,
    Skipped,
}

impl CaseStatus {
    pub fn failed(self) -> bool {
        matches!(self, CaseStatus::Failed | CaseStatus::Error)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestCase {
    /// The case's class or module (`tests.test_model.TestIncome`), if the writer gave one.
    pub class: Option<String>,
    pub name: String,
    /// Seconds, as the writer wrote them (a decimal number).
    pub time: Option<String>,
    pub status: CaseStatus,
    pub message: Option<String>,
    pub trace: Option<String>,
    /// What the case printed (`system-out`).
    pub output: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestReport {
    pub cases: Vec<TestCase>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl TestReport {
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for case in &self.cases {
            match case.status {
                CaseStatus::Passed => counts.passed += 1,
                CaseStatus::Failed | CaseStatus::Error => counts.failed += 1,
                CaseStatus::Skipped => counts.skipped += 1,
            }
        }
        counts
    }
}

impl Counts {
    pub fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }

    /// "12 passed, 1 failed, 2 skipped" (zero counts left out, but never an empty text).
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            (self.passed, "passed"),
            (self.failed, "failed"),
            (self.skipped, "skipped"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, word)| format!("{n} {word}"))
        .collect();
        if parts.is_empty() {
            "no test cases".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// What a notebook's exit value says about its tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reported {
    /// Not a report: the exit value is plain output.
    Nothing,
    Report(TestReport),
    /// `{"junit": "<path>"}`: the notebook wrote its report to a file (read by the caller).
    File(String),
    /// It looks like a report but cannot be read: why, for a warning on that notebook.
    Unreadable(String),
}

/// Reads an exit value. `truncated`: Databricks cut it (at 5 MB).
pub fn read_exit_value(value: &str, truncated: bool) -> Reported {
    read(value, truncated, true)
}

/// Reads a report document: the content of a report file (which cannot name another file).
pub fn read_document(value: &str, truncated: bool) -> Reported {
    read(value, truncated, false)
}

fn read(value: &str, truncated: bool, may_name_a_file: bool) -> Reported {
    let text = value.trim_start_matches('\u{feff}').trim();
    let looks_like = if text.starts_with('<') {
        Some(read_junit(text))
    } else if text.starts_with('{') {
        // Parsed once: `{"junit": "<path>"}` names a report file, `{"suites": …}` is one.
        let text = without_python_non_numbers(text);
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            // Cut JSON that was meant as a report says so; other JSON output stays output.
            let meant = truncated && (text.contains("\"suites\"") || text.contains("\"junit\""));
            return if meant {
                cut_report()
            } else {
                Reported::Nothing
            };
        };
        if let Some(path) = json
            .get("junit")
            .and_then(|p| p.as_str())
            .filter(|_| may_name_a_file)
        {
            return Reported::File(path.trim().to_string());
        }
        read_json(json)
    } else {
        None
    };
    match looks_like {
        None => Reported::Nothing,
        Some(Ok(report)) => Reported::Report(report),
        Some(Err(_)) if truncated => cut_report(),
        Some(Err(ReadError::NotAReport)) => Reported::Nothing,
        // Bounded: the reason may quote the document (a key serde did not expect).
        Some(Err(ReadError::Bad(why))) => Reported::Unreadable(format!(
            "its test report cannot be read: {}",
            crate::text::shorten(&why, 500)
        )),
    }
}

/// Python's `json.dumps` writes `NaN`, `Infinity` and `-Infinity` (a duration it could not
/// measure), which JSON has not: read as `null`, an unknown value. Only where a value stands
/// (after `:`, `,` or `[`), never inside a string.
fn without_python_non_numbers(text: &str) -> std::borrow::Cow<'_, str> {
    const WORDS: [&str; 3] = ["-Infinity", "Infinity", "NaN"];
    if !WORDS.iter().any(|w| text.contains(w)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped, mut value_may_start) = (false, false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if !in_string && value_may_start {
            if let Some(word) = WORDS.iter().find(|w| rest.starts_with(**w)) {
                let after = rest[word.len()..].chars().next();
                if after.is_none_or(|a| !a.is_ascii_alphanumeric() && a != '_') {
                    out.push_str("null");
                    rest = &rest[word.len()..];
                    value_may_start = false;
                    continue;
                }
            }
        }
        match c {
            _ if in_string && escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            _ => {}
        }
        if !in_string && !c.is_whitespace() {
            value_may_start = matches!(c, ':' | ',' | '[');
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    std::borrow::Cow::Owned(out)
}

fn cut_report() -> Reported {
    Reported::Unreadable(
        "its test report was cut by Databricks, which keeps at most 5 MB of an exit value; have the notebook write the report to a file in a Unity Catalog volume and exit with {\"junit\": \"/Volumes/<catalog>/<schema>/<volume>/report.xml\"} instead"
            .to_string(),
    )
}

enum ReadError {
    /// Some other XML or JSON: plain output.
    NotAReport,
    Bad(String),
}

fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (cut at {} KB)", &text[..end], max / 1024)
}

fn nonempty(text: Option<&str>, max: usize) -> Option<String> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| cut(t, max))
}

/// A duration in seconds, kept as written if it is a plain decimal number.
fn seconds(text: Option<&str>) -> Option<String> {
    let text = text?.trim();
    let plain = !text.is_empty()
        && text.len() <= 20
        && text.chars().all(|c| c.is_ascii_digit() || c == '.')
        && text.matches('.').count() <= 1
        && !text.starts_with('.');
    plain.then(|| text.to_string())
}

fn read_junit(text: &str) -> Result<TestReport, ReadError> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    let document =
        match roxmltree::Document::parse_with_options(text, options) {
            Ok(document) => document,
            // Some other text that starts with `<`: plain output, unless it meant to be a report.
            Err(_) if !text.contains("<testsuite") => return Err(ReadError::NotAReport),
            Err(roxmltree::Error::DtdDetected) => return Err(ReadError::Bad(
                "it declares a DTD, which is not accepted (entities could expand without bound)"
                    .into(),
            )),
            Err(roxmltree::Error::NodesLimitReached) => {
                return Err(ReadError::Bad(format!(
                    "it has more than {MAX_NODES} XML nodes"
                )))
            }
            Err(e) => return Err(ReadError::Bad(format!("it is not well-formed XML ({e})"))),
        };
    let root = document.root_element();
    if !matches!(root.tag_name().name(), "testsuites" | "testsuite") {
        return Err(ReadError::NotAReport);
    }
    let mut cases = Vec::new();
    // One iterative walk in document order, each element once, carrying the name of the
    // nearest suite down: linear in the document however deep it nests (asking each case for
    // its ancestors was quadratic in the depth), and no recursion.
    let mut pending = vec![(root, None::<&str>)];
    while let Some((node, suite_name)) = pending.pop() {
        if !node.has_tag_name("testcase") {
            let inner = if node.has_tag_name("testsuite") {
                node.attribute("name")
            } else {
                suite_name
            };
            let children: Vec<roxmltree::Node> =
                node.children().filter(|c| c.is_element()).collect();
            pending.extend(children.into_iter().rev().map(|c| (c, inner)));
            continue;
        }
        if cases.len() == MAX_CASES {
            return Err(ReadError::Bad(format!(
                "it has more than {MAX_CASES} test cases"
            )));
        }
        let child = |tag: &str| node.children().find(|c| c.has_tag_name(tag));
        let (status, detail) = if let Some(failure) = child("failure") {
            (CaseStatus::Failed, Some(failure))
        } else if let Some(error) = child("error") {
            (CaseStatus::Error, Some(error))
        } else if let Some(skipped) = child("skipped") {
            (CaseStatus::Skipped, Some(skipped))
        } else {
            (CaseStatus::Passed, None)
        };
        let body = |element: roxmltree::Node| -> Option<String> {
            let text: String = element
                .children()
                .filter_map(|c| c.text())
                .collect::<Vec<_>>()
                .join("");
            nonempty(Some(&text), MAX_TEXT)
        };
        let class = node.attribute("classname").or(suite_name);
        let name = nonempty(node.attribute("name"), MAX_NAME).unwrap_or_else(|| "(unnamed)".into());
        cases.push(TestCase {
            class: nonempty(class, MAX_NAME),
            name,
            time: seconds(node.attribute("time")),
            status,
            message: detail.and_then(|d| nonempty(d.attribute("message"), MAX_TEXT)),
            trace: detail.and_then(body),
            output: child("system-out").and_then(body),
        });
    }
    Ok(TestReport { cases })
}

/// Our JSON report: `{"suites": [{"name", "cases": [{"class", "name", "status", "duration",
/// "message", "trace", "output"}]}]}`, status one of passed, failed, error, skipped.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonReport {
    suites: Vec<JsonSuite>,
}

// Unknown keys are refused at every level: a key we do not know (an `outcome`, a `failures`
// count) could say a case failed, and a report not read whole does not pass.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonSuite {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    cases: Vec<JsonCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonCase {
    #[serde(default)]
    class: Option<String>,
    name: String,
    status: String,
    #[serde(default)]
    duration: Option<serde_json::Number>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    trace: Option<String>,
    #[serde(default)]
    output: Option<String>,
}

/// `None` when the JSON is no report of ours (no `suites` key): plain output.
fn read_json(value: serde_json::Value) -> Option<Result<TestReport, ReadError>> {
    value.get("suites")?;
    let report: JsonReport = match serde_json::from_value(value) {
        Ok(report) => report,
        Err(e) => {
            return Some(Err(ReadError::Bad(format!(
                "it is not a test report of the documented shape ({e})"
            ))))
        }
    };
    let mut cases = Vec::new();
    for suite in report.suites {
        for case in suite.cases {
            if cases.len() == MAX_CASES {
                return Some(Err(ReadError::Bad(format!(
                    "it has more than {MAX_CASES} test cases"
                ))));
            }
            let status = match case.status.to_ascii_lowercase().as_str() {
                "passed" | "pass" | "ok" => CaseStatus::Passed,
                "failed" | "fail" | "failure" => CaseStatus::Failed,
                "error" => CaseStatus::Error,
                "skipped" | "skip" => CaseStatus::Skipped,
                other => {
                    return Some(Err(ReadError::Bad(format!(
                        "case `{}` has the status `{}`; use passed, failed, error or skipped",
                        cut(&case.name, 80),
                        cut(other, 40)
                    ))))
                }
            };
            let duration = case.duration.map(|d| d.to_string());
            cases.push(TestCase {
                class: nonempty(case.class.as_deref().or(suite.name.as_deref()), MAX_NAME),
                name: nonempty(Some(&case.name), MAX_NAME).unwrap_or_else(|| "(unnamed)".into()),
                time: seconds(duration.as_deref()),
                status,
                message: nonempty(case.message.as_deref(), MAX_TEXT),
                trace: nonempty(case.trace.as_deref(), MAX_TEXT),
                output: nonempty(case.output.as_deref(), MAX_TEXT),
            });
        }
    }
    Some(Ok(TestReport { cases }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(text: &str) -> TestReport {
        match read_exit_value(text, false) {
            Reported::Report(report) => report,
            other => panic!("not a report: {other:?}"),
        }
    }

    fn unreadable(text: &str) -> String {
        match read_exit_value(text, false) {
            Reported::Unreadable(why) => why,
            other => panic!("expected a warning: {other:?}"),
        }
    }

    const PYTEST: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="3" time="0.051" timestamp="2026-11-30T10:00:00" hostname="driver"><testcase classname="test_model" name="test_bucket_high" time="0.001" /><testcase classname="test_model" name="test_bucket_low" time="0.002"><failure message="assert 'high' == 'low'">def test_bucket_low():
&gt;       assert bucket(10) == "low"
E       AssertionError: assert 'high' == 'low'</failure></testcase><testcase classname="test_model" name="test_later" time="0.000"><skipped type="pytest.skip" message="not yet">/Workspace/tests/test_model.py:12: not yet</skipped></testcase></testsuite></testsuites>"#;

    const UNITTEST_XML_REPORTING: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
	<testsuite name="tests.TestIncome-20261130100000" tests="2" file="tests.py" time="0.003" timestamp="2026-11-30T10:00:00" failures="0" errors="1" skipped="0">
		<testcase classname="tests.TestIncome" name="test_ok" time="0.001" timestamp="2026-11-30T10:00:00" file="tests.py" line="5"/>
		<testcase classname="tests.TestIncome" name="test_divide" time="0.002" timestamp="2026-11-30T10:00:00" file="tests.py" line="9">
			<error type="ZeroDivisionError" message="division by zero"><![CDATA[Traceback (most recent call last):
  File "tests.py", line 10, in test_divide
ZeroDivisionError: division by zero
]]></error>
			<system-out><![CDATA[computing the ratio
]]></system-out>
		</testcase>
	</testsuite>
</testsuites>"#;

    #[test]
    fn pytest_reports_are_read_case_by_case() {
        let read = report(PYTEST);
        assert_eq!(
            read.counts(),
            Counts {
                passed: 1,
                failed: 1,
                skipped: 1
            }
        );
        assert_eq!(read.counts().describe(), "1 passed, 1 failed, 1 skipped");
        let failed = &read.cases[1];
        assert_eq!(failed.class.as_deref(), Some("test_model"));
        assert_eq!(failed.name, "test_bucket_low");
        assert_eq!(failed.time.as_deref(), Some("0.002"));
        assert_eq!(failed.message.as_deref(), Some("assert 'high' == 'low'"));
        assert!(
            failed.trace.as_deref().unwrap().contains("> "),
            "entities are decoded"
        );
        assert_eq!(read.cases[2].status, CaseStatus::Skipped);
        assert_eq!(read.cases[2].message.as_deref(), Some("not yet"));
    }

    #[test]
    fn unittest_xml_reporting_errors_count_as_failed_and_keep_their_output() {
        let read = report(UNITTEST_XML_REPORTING);
        assert_eq!(
            read.counts(),
            Counts {
                passed: 1,
                failed: 1,
                skipped: 0
            }
        );
        let error = &read.cases[1];
        assert_eq!(error.status, CaseStatus::Error);
        assert!(error.trace.as_deref().unwrap().starts_with("Traceback"));
        assert_eq!(error.output.as_deref(), Some("computing the ratio"));
    }

    #[test]
    fn nested_and_bare_suites_and_nutter_style_reports_are_read() {
        let nested = r#"<testsuites><testsuite name="outer"><testsuite name="inner"><testcase name="a"/></testsuite><testcase name="b" classname="c.D"/></testsuite></testsuites>"#;
        let read = report(nested);
        assert_eq!(read.cases.len(), 2);
        assert_eq!(
            read.cases[0].class.as_deref(),
            Some("inner"),
            "the nearest suite names a case without a class"
        );
        assert_eq!(read.cases[1].class.as_deref(), Some("c.D"));
        let bare = r#"<testsuite name="/Repos/ci/p/tests/test_x" tests="1"><testcase classname="/Repos/ci/p/tests/test_x" name="assertion_total" time="1.234"></testcase></testsuite>"#;
        assert_eq!(report(bare).counts().passed, 1);
    }

    #[test]
    fn our_json_report_is_read() {
        let json = r#"{"suites": [{"name": "income", "cases": [
            {"name": "test_a", "status": "passed", "duration": 0.5},
            {"class": "income.Edge", "name": "test_b", "status": "failed", "message": "off by one", "trace": "line 3"},
            {"name": "test_c", "status": "skipped"},
            {"name": "test_d", "status": "error", "message": "boom"}]}]}"#;
        let read = report(json);
        assert_eq!(
            read.counts(),
            Counts {
                passed: 1,
                failed: 2,
                skipped: 1
            }
        );
        assert_eq!(read.cases[0].class.as_deref(), Some("income"));
        assert_eq!(read.cases[0].time.as_deref(), Some("0.5"));
        assert_eq!(read.cases[1].class.as_deref(), Some("income.Edge"));
        assert!(
            unreadable(r#"{"suites": [{"cases": [{"name": "x", "status": "green"}]}]}"#)
                .contains("`green`")
        );
        assert!(unreadable(r#"{"suites": "all"}"#).contains("documented shape"));
    }

    #[test]
    fn deeply_nested_reports_are_read_in_one_pass_with_the_nearest_suite() {
        let depth = 20_000;
        let text = format!(
            r#"<testsuites><testsuite name="outer"><testcase name="first"/>{}<testsuite name="inner"><testcase name="deep"/></testsuite><testcase name="deep_in_outer"/>{}<testsuite><testcase name="in_unnamed"/></testsuite></testsuite></testsuites>"#,
            "<x>".repeat(depth),
            "</x>".repeat(depth)
        );
        let read = report(&text);
        let seen: Vec<(Option<&str>, &str)> = read
            .cases
            .iter()
            .map(|c| (c.class.as_deref(), c.name.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (Some("outer"), "first"),
                (Some("inner"), "deep"),
                (Some("outer"), "deep_in_outer"),
                (None, "in_unnamed"),
            ]
        );
    }

    #[test]
    fn python_non_numbers_are_unknown_durations() {
        // What `json.dumps` writes for a duration it could not measure.
        for word in ["NaN", "Infinity", "-Infinity"] {
            let json = format!(
                r#"{{"suites": [{{"name": "NaN and Infinity", "cases": [
                    {{"name": "test_Infinity", "status": "failed", "duration": {word}, "message": "x = NaN"}},
                    {{"name": "test_b", "status": "passed", "duration":{word}}}]}}]}}"#
            );
            let read = report(&json);
            assert_eq!(read.counts().failed, 1, "{word}");
            assert_eq!(read.cases[0].time, None, "{word}");
            assert_eq!(
                read.cases[0].name, "test_Infinity",
                "{word}: strings are kept"
            );
            assert_eq!(read.cases[0].message.as_deref(), Some("x = NaN"));
        }
        // Only where a value stands: inside strings and names nothing changes.
        assert_eq!(
            without_python_non_numbers(r#"{"a": "NaN", "b\"NaN": [NaN, -Infinity], "NaNx": 1}"#),
            r#"{"a": "NaN", "b\"NaN": [null, null], "NaNx": 1}"#
        );
        assert_eq!(
            without_python_non_numbers(r#"{"a": NaNa}"#),
            r#"{"a": NaNa}"#
        );
    }

    #[test]
    fn anything_else_is_plain_output() {
        for text in [
            "all good",
            "",
            "42",
            "<3 all good",
            "<html><body>hi</body></html>",
            r#"{"accuracy": 0.93}"#,
            "[1, 2]",
            "{not json",
        ] {
            assert_eq!(read_exit_value(text, false), Reported::Nothing, "{text}");
        }
    }

    #[test]
    fn hostile_reports_are_warnings_not_crashes() {
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><testsuite><testcase name="&lol2;"/></testsuite>"#;
        assert!(unreadable(laughs).contains("DTD"));
        let external = r#"<!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]><testsuite><testcase name="&x;"/></testsuite>"#;
        assert!(unreadable(external).contains("DTD"));
        assert!(unreadable("<testsuite><testcase name='a'>").contains("not well-formed"));
        // Deep nesting: parsed and walked without recursion.
        let depth = 50_000;
        let deep = format!(
            "{}<testcase name=\"deep\"/>{}",
            "<testsuite>".repeat(depth),
            "</testsuite>".repeat(depth)
        );
        assert_eq!(report(&deep).cases.len(), 1);
        // A huge attribute is cut.
        let huge = format!(
            "<testsuite><testcase name=\"a\"><failure message=\"{}\"/></testcase></testsuite>",
            "x".repeat(1_000_000)
        );
        let message = report(&huge).cases[0].message.clone().unwrap();
        assert!(
            message.len() < 70 * 1024 && message.ends_with("(cut at 64 KB)"),
            "{}",
            message.len()
        );
        // Too many nodes.
        let many = format!(
            "<testsuite>{}</testsuite>",
            "<testcase name=\"a\"/>".repeat(450_000)
        );
        assert!(unreadable(&many).contains("nodes") || unreadable(&many).contains("test cases"));
        let too_many_cases = format!(
            "<testsuite>{}</testsuite>",
            "<testcase name=\"a\"/>".repeat(MAX_CASES + 1)
        );
        assert!(unreadable(&too_many_cases).contains("test cases"));
    }

    #[test]
    fn a_report_file_is_named_by_a_junit_key() {
        assert_eq!(
            read_exit_value(
                r#"{"junit": " /Volumes/main/ci/reports/run.xml ", "cases": 3}"#,
                false
            ),
            Reported::File("/Volumes/main/ci/reports/run.xml".into())
        );
        assert_eq!(read_exit_value(r#"{"junit": 3}"#, false), Reported::Nothing);
    }

    #[test]
    fn a_warning_about_a_report_is_bounded() {
        let huge_key = format!(r#"{{"suites": [], "{}": 1}}"#, "k".repeat(100_000));
        let why = unreadable(&huge_key);
        assert!(why.len() < 700, "{}", why.len());
        let cut_json = r#"{"suites": [{"name": "s", "cases": [{"na"#;
        assert!(
            matches!(read_exit_value(cut_json, true), Reported::Unreadable(w) if w.contains("5 MB"))
        );
        assert_eq!(
            read_exit_value(r#"{"accuracy": [0.9, 0.8"#, true),
            Reported::Nothing,
            "cut output that was no report"
        );
    }

    #[test]
    fn a_report_cut_by_databricks_says_so() {
        let cut_report = &PYTEST[..PYTEST.len() / 2];
        match read_exit_value(cut_report, true) {
            Reported::Unreadable(why) => {
                assert!(why.contains("5 MB") && why.contains("junit"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }
}
