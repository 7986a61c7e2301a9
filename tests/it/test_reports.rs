//! Notebooks that hand back their own test report (JUnit XML or the JSON report) as their exit
//! value: each case in the Tests tab, counts in the log, summary and output variables, a
//! notebook with failed cases failing the step (unless `failOnFailedTests` is false), and a
//! hostile or broken report a warning on that notebook, never a crash.

use std::collections::BTreeMap;

use crate::common::*;
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::tasks::TaskName;

const UNITTEST: &str = include_str!("../../examples/income-model/tests/test_features_unittest.py");
const JUNIT_REPORT: &str = include_str!("../../examples/income-model/tests/junit_report.py");
const JSON_REPORT: &str = include_str!("../../examples/income-model/tests/test_report_json.py");
const PYTEST: &str = include_str!("../../examples/income-model/tests/test_rules_pytest.py");
const PYTEST_TESTS: &str = include_str!("../../examples/income-model/tests/rules/test_yearly.py");
const FAILING_CASE: &str = r#"# Databricks notebook source
dbutils.notebook.exit('<testsuite name="model"><testcase classname="model.Drift" name="test_stable" time="0.5"/><testcase classname="model.Drift" name="test_small_drift" time="1.25"><failure message="drift 0.31 &gt; 0.2">Traceback (most recent call last):\n  AssertionError: drift 0.31 &gt; 0.2</failure></testcase></testsuite>')
"#;
const LAUGHS: &str = r#"# Databricks notebook source
dbutils.notebook.exit('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><testsuite><testcase name="&b;"/></testsuite>')
"#;

async fn run_reports(
    emulator: &databricks_azdo::emulator::Emulator,
    notebooks: &[(&str, &str)],
    inputs: &[(&str, &str)],
) -> (Outcome, String, tempfile::TempDir) {
    let project = Project::new(notebooks);
    // Modules next to the notebooks (pytest tests, the JUnit writer) are not notebooks to run.
    let paths: Vec<String> = notebooks
        .iter()
        .filter(|(_, source)| source.starts_with("# Databricks notebook source"))
        .map(|(n, _)| format!("test/{n}"))
        .collect();
    let reports = tempfile::tempdir().unwrap();
    // The example notebooks test the income_model wheel, built and installed for the run.
    let wheel = IncomeModelWheel::build();
    let wheel_glob = wheel.glob();
    let mut settings: Vec<(&str, &str)> = vec![
        ("source", "git"),
        ("existingClusterId", CLUSTER),
        ("libraries", &wheel_glob),
        ("libraryUploadPath", "/Volumes/main/ci/artifacts"),
    ];
    let joined = paths.join("\n");
    let temp = reports.path().display().to_string();
    settings.push(("notebookPaths", &joined));
    settings.push(("AGENT_TEMPDIRECTORY", &temp));
    settings.extend_from_slice(inputs);
    let env = with(&pipeline_env(emulator, &project), &settings);
    let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;
    let junit = published_junit(&outcome.stdout);
    (outcome, junit, reports)
}

/// Each `<testcase>` of the published JUnit: suite → [(classname, name, outcome)].
fn cases(junit: &str) -> BTreeMap<String, Vec<(String, String, String)>> {
    let document = roxmltree::Document::parse(junit).unwrap();
    let mut suites = BTreeMap::new();
    for suite in document
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
    {
        let cases = suite
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .map(|case| {
                let outcome = case
                    .children()
                    .find(|c| c.is_element() && !c.has_tag_name("system-out"))
                    .map_or("passed".to_string(), |c| c.tag_name().name().to_string());
                (
                    case.attribute("classname").unwrap().to_string(),
                    case.attribute("name").unwrap().to_string(),
                    outcome,
                )
            })
            .collect();
        suites.insert(suite.attribute("name").unwrap().to_string(), cases);
    }
    suites
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reported_case_reaches_the_tests_tab_and_a_failed_one_fails_the_step() {
    let emulator = emulator().await;
    let notebooks = [
        ("test_features_unittest", UNITTEST),
        ("junit_report", JUNIT_REPORT),
        ("report", JSON_REPORT),
        ("drift", FAILING_CASE),
        ("plain", PASSING),
    ];
    let (outcome, junit, _reports) = run_reports(&emulator, &notebooks, &[]).await;
    assert_eq!(outcome.code, 1, "{}", outcome.stdout);
    let suites = cases(&junit);
    let git = |name: &str| format!("test/{name}");
    let unittest = &suites[&git("test_features_unittest")];
    let class = format!("{}.BucketIncome", git("test_features_unittest"));
    assert_eq!(
        unittest
            .iter()
            .map(|(c, n, o)| (c.as_str(), n.as_str(), o.as_str()))
            .collect::<Vec<_>>(),
        [
            (class.as_str(), "test_brackets_2027", "skipped"),
            (class.as_str(), "test_high", "passed"),
            (class.as_str(), "test_low", "passed"),
            (class.as_str(), "test_negative_is_refused", "passed"),
        ],
        "{junit}"
    );
    assert_eq!(suites[&git("report")].len(), 2, "{junit}");
    assert_eq!(
        suites[&git("report")][0].0,
        format!("{}.income.yearly", git("report"))
    );
    assert_eq!(
        suites[&git("drift")][1],
        (
            format!("{}.model.Drift", git("drift")),
            "test_small_drift".into(),
            "failure".into()
        )
    );
    // A notebook without a report stays one case.
    assert_eq!(suites[&git("plain")].len(), 1, "{junit}");
    assert!(junit.contains(r#"time="1.25""#), "{junit}");

    let log = &outcome.stdout;
    assert!(log.contains("  tests: 3 passed, 1 skipped"), "{log}");
    assert!(log.contains("  tests: 1 passed, 1 failed"), "{log}");
    assert!(
        log.contains(&format!(
            "##[group]{}: model.Drift.test_small_drift failed",
            git("drift")
        )),
        "{log}"
    );
    assert!(log.contains("drift 0.31 > 0.2"), "{log}");
    assert!(log.contains("FAIL test/drift: TERMINATED SUCCESS"), "{log}");
    assert!(
        log.contains("test/drift reported failed test cases: 1 of 2 failed"),
        "{log}"
    );
    assert_eq!(output_variable(log, "testsPassed"), Some("7"), "{log}");
    assert_eq!(output_variable(log, "testsFailed"), Some("1"), "{log}");
    assert_eq!(output_variable(log, "testsSkipped"), Some("1"), "{log}");
    assert!(
        log.contains("##vso[task.complete result=Failed]1 of 4 notebooks did not pass"),
        "{log}"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fail_on_failed_tests_off_the_counts_are_reported_and_the_step_has_issues() {
    let emulator = emulator().await;
    let (outcome, junit, _reports) = run_reports(
        &emulator,
        &[("drift", FAILING_CASE)],
        &[("failOnFailedTests", "false")],
    )
    .await;
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    let log = &outcome.stdout;
    assert!(
        log.contains("##vso[task.logissue type=warning]test/drift reported failed test cases"),
        "{log}"
    );
    assert!(!log.contains("type=error"), "{log}");
    assert!(log.contains("##vso[task.complete result=SucceededWithIssues]1 of 1 notebook passed; test cases: 1 passed, 1 failed (failOnFailedTests is false)"), "{log}");
    assert_eq!(output_variable(log, "testsFailed"), Some("1"));
    assert!(junit.contains("<failure"), "{junit}");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_report_fails_its_notebook_as_one_case() {
    let emulator = emulator().await;
    let (outcome, junit, _reports) = run_reports(&emulator, &[("laughs", LAUGHS)], &[]).await;
    assert_eq!(outcome.code, 1, "{}", outcome.stdout);
    let log = &outcome.stdout;
    assert!(
        log.contains("##vso[task.logissue type=error]test/laughs ended SUCCESS, but does not pass: what it handed back could not be read whole (its test report cannot be read: it declares a DTD"),
        "{log}"
    );
    assert!(
        log.contains("FAIL test/laughs: TERMINATED SUCCESS"),
        "{log}"
    );
    let laughs = &cases(&junit)["test/laughs"];
    assert_eq!(laughs.len(), 1, "{junit}");
    assert_eq!(laughs[0].2, "failure", "{junit}");
    assert_eq!(output_variable(log, "testsPassed"), Some("0"));
    assert_eq!(output_variable(log, "testsFailed"), Some("1"));
    emulator.shutdown().await;
}

/// The pytest notebook writes its JUnit report to a Unity Catalog volume and exits with
/// `{"junit": path}`: the report is read with the Files API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_written_to_a_volume_is_read_with_the_files_api() {
    let emulator = emulator().await;
    let notebooks = [
        ("test_rules_pytest", PYTEST),
        ("rules/test_yearly", PYTEST_TESTS),
    ];
    let (outcome, junit, _reports) = run_reports(&emulator, &notebooks, &[]).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    let suites = cases(&junit);
    let pytest = &suites["test/test_rules_pytest"];
    assert_eq!(pytest.len(), 5, "{junit}");
    assert!(
        pytest.iter().all(
            |(class, _, outcome)| class.starts_with("test/test_rules_pytest.")
                && outcome == "passed"
        ),
        "{junit}"
    );
    assert!(
        pytest
            .iter()
            .any(|(_, name, _)| name == "test_yearly_is_twelve_months[2500]"),
        "{junit}"
    );
    assert!(
        outcome.stdout.contains("  tests: 5 passed"),
        "{}",
        outcome.stdout
    );
    let downloads = count_prefix(
        &emulator,
        "GET /api/2.0/fs/files/Volumes/main/ci/test_reports/pytest-",
    );
    assert_eq!(downloads, 1, "{:?}", emulator.request_counts());
    emulator.shutdown().await;
}

/// Writes a JUnit report to a workspace file and exits with `{"junit": path}`, the path as
/// the notebook wrote it or, with `drop_prefix`, as the workspace API names it.
fn workspace_report_notebook(drop_prefix: bool) -> String {
    format!(
        r#"# Databricks notebook source
import json, os, uuid
report = "/Workspace/Shared/reports/" + uuid.uuid4().hex + ".xml"
os.makedirs(os.path.dirname(report), exist_ok=True)
with open(report, "w") as handle:
    handle.write('<testsuite name="ws"><testcase classname="ws.Report" name="test_read" time="0.5"/><testcase classname="ws.Report" name="test_later"><skipped/></testcase></testsuite>')
named = report[len("/Workspace"):] if {drop_prefix} else report
dbutils.notebook.exit(json.dumps({{"junit": named}}))
"#,
        drop_prefix = if drop_prefix { "True" } else { "False" }
    )
}

/// A notebook writes its JUnit report to a workspace file (`/Workspace/Shared/...`) and exits
/// with that path, with or without `/Workspace`: the report is read with the workspace export
/// API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_written_to_a_workspace_file_is_read_with_the_export_api() {
    let emulator = emulator().await;
    let (prefixed, plain) = (
        workspace_report_notebook(false),
        workspace_report_notebook(true),
    );
    let notebooks = [("prefixed", prefixed.as_str()), ("plain", plain.as_str())];
    let (outcome, junit, _reports) = run_reports(&emulator, &notebooks, &[]).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    let suites = cases(&junit);
    for notebook in ["test/prefixed", "test/plain"] {
        let expected = [
            (format!("{notebook}.ws.Report"), "test_read", "passed"),
            (format!("{notebook}.ws.Report"), "test_later", "skipped"),
        ]
        .map(|(class, name, outcome)| (class, name.to_string(), outcome.to_string()));
        assert_eq!(suites[notebook], expected, "{junit}");
    }
    let log = &outcome.stdout;
    assert!(!log.contains("type=warning"), "{log}");
    assert_eq!(output_variable(log, "testsPassed"), Some("2"));
    assert_eq!(output_variable(log, "testsSkipped"), Some("2"));
    let exports = emulator.request_counts()["GET /api/2.0/workspace/export"];
    assert_eq!(exports, 2, "{:?}", emulator.request_counts());
    emulator.shutdown().await;
}

/// A report file that is missing, outside a volume and the workspace, or not a report is a
/// warning naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_misplaced_report_file_fails_its_notebook() {
    let emulator = emulator().await;
    let exit =
        |value: &str| format!("# Databricks notebook source\ndbutils.notebook.exit({value:?})\n");
    let missing = exit(r#"{"junit": "/Volumes/main/ci/reports/none.xml"}"#);
    let missing_in_workspace = exit(r#"{"junit": "/Workspace/Shared/reports/none.xml"}"#);
    let outside = exit(r#"{"junit": "/tmp/report.xml"}"#);
    let climbing = exit(r#"{"junit": "/Volumes/main/../../etc/passwd"}"#);
    let dbfs = exit(r#"{"junit": "dbfs:/x.xml"}"#);
    let relative = exit(r#"{"junit": "reports/x.xml"}"#);
    let too_large = r#"# Databricks notebook source
import os
os.makedirs("/Workspace/Shared/reports", exist_ok=True)
with open("/Workspace/Shared/reports/large.xml", "w") as handle:
    handle.write("<testsuite>" + " " * (10 * 1024 * 1024) + "</testsuite>")
dbutils.notebook.exit('{"junit": "/Workspace/Shared/reports/large.xml"}')
"#;
    let notebooks = [
        ("missing", missing.as_str()),
        ("missing_in_workspace", missing_in_workspace.as_str()),
        ("outside", outside.as_str()),
        ("climbing", climbing.as_str()),
        ("dbfs", dbfs.as_str()),
        ("relative", relative.as_str()),
        ("too_large", too_large),
    ];
    let (outcome, junit, _reports) = run_reports(&emulator, &notebooks, &[]).await;
    assert_eq!(outcome.code, 1, "{}", outcome.stdout);
    let log = &outcome.stdout;
    // Each notebook fails, as one failed case, and the step with them.
    assert_each_is_one_failed_case(&junit, &notebooks);
    assert_eq!(output_variable(log, "testsFailed"), Some("7"));
    assert!(
        log.contains(
            "test/missing ended SUCCESS, but does not pass: what it handed back could not be read whole (its report file /Volumes/main/ci/reports/none.xml could not be read"
        ),
        "{log}"
    );
    assert!(log.contains("does not exist"), "{log}");
    assert!(
        log.contains(
            "test/missing_in_workspace ended SUCCESS, but does not pass: what it handed back could not be read whole (its report file /Workspace/Shared/reports/none.xml could not be read: GET /api/2.0/workspace/export failed: HTTP 404 RESOURCE_DOES_NOT_EXIST: Path (/Shared/reports/none.xml) doesn't exist."
        ),
        "{log}"
    );
    assert!(
        log.contains("test/too_large ended SUCCESS, but does not pass: what it handed back could not be read whole (its report file /Workspace/Shared/reports/large.xml could not be read: GET /api/2.0/workspace/export failed: HTTP 400 MAX_NOTEBOOK_SIZE_EXCEEDED")
            && log.contains("(the workspace export API reads at most 10 MB: write a larger report to a volume)"),
        "{log}"
    );
    let misplaced = |notebook: &str, path: &str| {
        format!("test/{notebook} ended SUCCESS, but does not pass: what it handed back could not be read whole (its report file `{path}` is neither in a Unity Catalog volume (/Volumes/<catalog>/<schema>/<volume>/...) nor a workspace file (/Workspace/..., /Users/..., /Shared/..., /Repos/...): only those two places are read")
    };
    for (notebook, path) in [
        ("outside", "/tmp/report.xml"),
        ("climbing", "/Volumes/main/../../etc/passwd"),
        ("dbfs", "dbfs:/x.xml"),
        ("relative", "reports/x.xml"),
    ] {
        assert!(log.contains(&misplaced(notebook, path)), "{log}");
    }
    emulator.shutdown().await;
}

/// A report's names, messages and traces come from the notebook's author: they are shown,
/// never obeyed, in the log and the Tests tab.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reports_text_cannot_issue_logging_commands() {
    let emulator = emulator().await;
    let hostile = r#"# Databricks notebook source
dbutils.notebook.exit('<testsuite><testcase classname="a&#10;##vso[task.complete result=Succeeded]" name="b&#13;##vso[task.setvariable variable=x]y"><failure message="m&#10;##[error]fake">##vso[task.logissue type=warning]t</failure></testcase></testsuite>')
"#;
    let (outcome, junit, _reports) = run_reports(&emulator, &[("hostile", hostile)], &[]).await;
    assert_eq!(outcome.code, 1, "{}", outcome.stdout);
    for line in outcome.stdout.lines() {
        let ours = line.starts_with("##vso[task.setsecret]")
            || line.starts_with("##vso[task.setvariable variable=")
                && !line.starts_with("##vso[task.setvariable variable=x]")
            || line.starts_with("##vso[results.publish")
            || line.starts_with("##vso[task.uploadsummary")
            || line.starts_with("##vso[task.logissue type=error]")
            || line.starts_with("##vso[task.complete result=Failed]");
        if line.starts_with("##vso[") {
            assert!(ours, "a command the report issued: {line}");
        }
        assert!(!line.starts_with("##[error]fake"), "{line}");
    }
    assert!(
        outcome
            .stdout
            .contains("**vso[task.complete result=Succeeded]"),
        "{}",
        outcome.stdout
    );
    assert!(roxmltree::Document::parse(&junit).is_ok(), "{junit}");
    emulator.shutdown().await;
}

/// Each of `notebooks` is one failed test case in the published JUnit.
fn assert_each_is_one_failed_case(junit: &str, notebooks: &[(&str, &str)]) {
    let suites = cases(junit);
    for (notebook, _) in notebooks {
        let case = &suites[&format!("test/{notebook}")];
        assert_eq!(
            (case.len(), case[0].2.as_str()),
            (1, "failure"),
            "{notebook}: {junit}"
        );
    }
}

/// A notebook that exits with `value` (Python source of the exit value).
fn exiting_with(setup: &str, value: &str) -> String {
    format!("# Databricks notebook source\n{setup}\ndbutils.notebook.exit({value})\n")
}

/// The red gate: a notebook that ends SUCCESS but whose report (or output) could not be read
/// whole fails, whatever the report would have said, in each shape it can take; a report that
/// Python's `json.dumps` wrote with NaN durations is read, and its failed case fails the step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_not_read_whole_never_passes() {
    let emulator = emulator().await;
    let failing_case = r#"<testcase name="fails"><failure message="no"/></testcase>"#;
    let cut = exiting_with(
        "",
        &format!(
            "'<testsuite name=\"big\">' + '<testcase name=\"ok\"/>' * 300000 + '{failing_case}</testsuite>'"
        ),
    );
    let not_utf8 = exiting_with(
        "import os\nos.makedirs('/Volumes/main/ci/reports', exist_ok=True)\nopen('/Volumes/main/ci/reports/latin1.xml', 'wb').write(b'<testsuite name=\"caf\\xe9\"><testcase name=\"x\"/></testsuite>')",
        "'{\"junit\": \"/Volumes/main/ci/reports/latin1.xml\"}'",
    );
    let too_many_cases = exiting_with(
        "",
        "'<testsuite>' + '<testcase name=\"c\"/>' * 10001 + '</testsuite>'",
    );
    let control_characters =
        exiting_with("", "'<testsuite><testcase name=\"a\\x01b\"/></testsuite>'");
    let unknown_status = exiting_with(
        "",
        r#"'{"suites": [{"name": "s", "cases": [{"name": "x", "status": "green"}]}]}'"#,
    );
    // Keys the format does not have, which could say a case failed: in a case, and in a suite.
    let unknown_key = exiting_with(
        "",
        r#"'{"suites": [{"name": "s", "cases": [{"name": "x", "status": "passed", "outcome": "failed"}]}]}'"#,
    );
    let unknown_suite_key = exiting_with(
        "",
        r#"'{"suites": [{"name": "s", "failures": 3, "cases": [{"name": "x", "status": "passed"}]}]}'"#,
    );
    let notebooks = [
        ("cut", cut.as_str()),
        ("not_utf8", not_utf8.as_str()),
        ("too_many_cases", too_many_cases.as_str()),
        ("control_characters", control_characters.as_str()),
        ("unknown_status", unknown_status.as_str()),
        ("unknown_key", unknown_key.as_str()),
        ("unknown_suite_key", unknown_suite_key.as_str()),
    ];
    let (outcome, junit, _reports) = run_reports(&emulator, &notebooks, &[]).await;
    assert_eq!(outcome.code, 1, "{}", outcome.stdout);
    assert!(outcome
        .stdout
        .contains("##vso[task.complete result=Failed]"));
    assert_each_is_one_failed_case(&junit, &notebooks);
    for (notebook, _) in notebooks {
        let error = format!(
            "##vso[task.logissue type=error]test/{notebook} ended SUCCESS, but does not pass: what it handed back could not be read whole"
        );
        assert!(
            outcome.stdout.contains(&error),
            "{notebook}: {}",
            outcome.stdout
        );
    }
    assert_eq!(output_variable(&outcome.stdout, "testsPassed"), Some("0"));
    assert_eq!(output_variable(&outcome.stdout, "testsFailed"), Some("7"));
    assert!(
        outcome.stdout.contains("cut by Databricks"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains("is not UTF-8 text"),
        "{}",
        outcome.stdout
    );

    // NaN and Infinity, as Python writes them, are unknown durations: the report is read, and
    // its failed case fails the step (it gave no warning at all before).
    let nan = exiting_with(
        "import json",
        r#"json.dumps({"suites": [{"name": "s", "cases": [{"name": "a", "status": "passed", "duration": float("nan")}, {"name": "b", "status": "failed", "duration": float("inf"), "message": "off"}]}]})"#,
    );
    let (outcome, junit, _reports) = run_reports(&emulator, &[("nan", nan.as_str())], &[]).await;
    assert_eq!(outcome.code, 1, "{}", outcome.stdout);
    assert_eq!(output_variable(&outcome.stdout, "testsPassed"), Some("1"));
    assert_eq!(output_variable(&outcome.stdout, "testsFailed"), Some("1"));
    assert!(
        outcome
            .stdout
            .contains("reported failed test cases: 1 of 2 failed"),
        "{}",
        outcome.stdout
    );
    assert_eq!(cases(&junit)["test/nan"].len(), 2, "{junit}");
    emulator.shutdown().await;
}

/// Outputs that cannot be fetched (refused, retries spent) leave the notebook unread: it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notebook_whose_output_cannot_be_fetched_does_not_pass() {
    for rule in [
        "GET /api/2.2/jobs/runs/get-output=403",
        "GET /api/2.2/jobs/runs/get-output=503",
    ] {
        let emulator = emulator_with(faults(&[rule])).await;
        let (outcome, junit, _reports) = run_reports(&emulator, &[("unit", PASSING)], &[]).await;
        assert_eq!(outcome.code, 1, "{rule}: {}", outcome.stdout);
        assert!(
            outcome.stdout.contains(
                "test/unit ended SUCCESS, but does not pass: what it handed back could not be read whole (its output could not be read"
            ),
            "{rule}: {}",
            outcome.stdout
        );
        assert_eq!(
            cases(&junit)["test/unit"][0].2,
            "failure",
            "{rule}: {junit}"
        );
        // The `--output json` document says it did not pass, and why.
        let project = Project::new(&[("unit", PASSING)]);
        let env = with(
            &pipeline_env(&emulator, &project),
            &[
                ("source", "git"),
                ("existingClusterId", CLUSTER),
                ("notebookPaths", "test/unit"),
            ],
        );
        let json = run_task(TaskName::RunNotebookTest, env, OutputMode::Json).await;
        assert_eq!(json.code, 1, "{rule}: {}", json.stdout);
        let document: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        let notebook = &document["notebooks"][0];
        assert_eq!(notebook["passed"], false, "{rule}: {notebook}");
        assert!(
            notebook["unread"]
                .as_str()
                .unwrap()
                .starts_with("its output could not be read"),
            "{rule}: {notebook}"
        );
        emulator.shutdown().await;
    }
}

/// `notebookOutput` stays within 32,000 bytes as JSON however much the notebooks hand back
/// (a later step gets it as an environment variable); what does not fit is cut or counted
/// under `(left out)`, and each notebook's `<system-out>` in the JUnit holds at most 64 KB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_output_variable_and_the_published_outputs_are_bounded() {
    let emulator = emulator().await;
    let sizes = [("small", 100), ("mid", 20_000), ("large", 5_000_000)];
    let mut notebooks: Vec<(String, String)> = sizes
        .iter()
        .map(|(name, size)| {
            (
                name.to_string(),
                exiting_with("", &format!("'\\x01é' * {size}")),
            )
        })
        .collect();
    for n in 0..10 {
        notebooks.push((format!("more{n}"), exiting_with("", "'m' * 10000")));
    }
    let named: Vec<(&str, &str)> = notebooks
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    let (outcome, junit, _reports) = run_reports(&emulator, &named, &[]).await;
    assert_eq!(
        outcome.code,
        0,
        "{}",
        &outcome.stdout[..2000.min(outcome.stdout.len())]
    );
    let line = outcome
        .stdout
        .lines()
        .find(|l| l.contains("variable=notebookOutput;"))
        .unwrap();
    let value = output_variable(&outcome.stdout, "notebookOutput").unwrap();
    assert!(
        value.len() <= 32_000,
        "notebookOutput is {} bytes",
        value.len()
    );
    assert!(line.len() < 40_000, "{}", line.len());
    let outputs: serde_json::Value = serde_json::from_str(value).unwrap();
    assert_eq!(outputs["test/small"].as_str().unwrap().chars().count(), 200);
    assert!(
        outputs["test/mid"]
            .as_str()
            .unwrap()
            .ends_with("[cut: the whole exit value is on the notebook's run page]"),
        "{value}"
    );
    assert!(
        outputs["(left out)"]
            .as_str()
            .unwrap()
            .contains("more notebook(s)"),
        "{value}"
    );
    assert!(
        junit.len() < 13 * 70 * 1024,
        "the JUnit file is {} bytes",
        junit.len()
    );
    emulator.shutdown().await;
}
