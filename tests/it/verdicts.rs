//! Verdicts only on what Databricks really said: a run whose answer does not match what was
//! submitted never passes, a step that gives up on its run cancels it, parameters reach the
//! notebook as written, and the idempotency token is the specified one.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::*;
use databricks_azdo::databricks::RetryPolicy;
use databricks_azdo::emulator::Emulator;
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::tasks::TaskName;

const RUNS_GET: &str = "GET /api/2.2/jobs/runs/get";

/// Two passing notebooks checked out at REPO_PATH (and a slow one), and a notebook step's env.
async fn setup() -> (Emulator, Project, BTreeMap<String, String>) {
    let emulator = emulator().await;
    let project = Project::new(&[
        ("unit", PASSING),
        ("other", PASSING),
        ("slow", SLOW),
        ("params", WITH_PARAM),
    ]);
    let env = with(
        &pipeline_env(&emulator, &project),
        &[
            ("repoPath", REPO_PATH),
            ("existingClusterId", CLUSTER),
            ("notebookPaths", "test/unit\ntest/other"),
        ],
    );
    let update = run_task(TaskName::RepoUpdate, env.clone(), OutputMode::Agent).await;
    assert_eq!(update.code, 0, "{}", update.stdout);
    (emulator, project, env)
}

/// The env of one more pipeline step: each step has its own task instance id, and so its own
/// idempotency token (the same one would get the earlier step's run back).
fn step(env: &BTreeMap<String, String>, inputs: &[(&str, &str)]) -> BTreeMap<String, String> {
    with(
        &with(env, &[("SYSTEM_TASKINSTANCEID", &next_step_id())]),
        inputs,
    )
}

/// Tasks the step did not submit (renamed, duplicated, without a key) fail the verdict, and
/// nothing is fetched for them: a hostile answer listing thousands costs no request each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_fetched_for_a_task_nobody_submitted() {
    let (emulator, _project, env) = setup().await;
    for rewrite in ["rename-task", "no-task-key", "duplicate-task"] {
        emulator.set_faults(faults(&[&format!("{RUNS_GET}=rewrite:{rewrite}")]));
        let before = count(&emulator, "GET /api/2.2/jobs/runs/get-output");
        let outcome = run_task(
            TaskName::RunNotebookTest,
            step(&env, &[]),
            OutputMode::Agent,
        )
        .await;
        assert_eq!(outcome.code, 1, "{rewrite}: {}", outcome.stdout);
        let fetched = count(&emulator, "GET /api/2.2/jobs/runs/get-output") - before;
        // Only test/unit is listed once, as submitted: the other entry has no trustworthy task.
        assert_eq!(fetched, 1, "{rewrite}: {}", outcome.stdout);
    }
    emulator.shutdown().await;
}

fn errors(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("##vso[task.logissue type=error]"))
        .collect()
}

/// Each way `runs/get` can disagree with the submission, with one notebook or two: the step
/// fails, and the notebook without a trustworthy result is named in the log, in the Tests tab
/// (JUnit) and in the JSON document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_does_not_match_the_submission_never_passes() {
    let (emulator, _project, env) = setup().await;
    let other = "/Repos/ci/project/test/other";
    let unit = "/Repos/ci/project/test/unit";
    // A task nobody submitted, which says it ran the same notebook.
    const OTHER_UNEXPECTED: &str = "/Repos/ci/project/test/other (unexpected task)";
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str, &str)] = &[
        // rewrite of runs/get, notebooks, notebook named, what is said about it
        ("drop-task", "test/unit\ntest/other", other, "does not list its task (other)"),
        ("drop-task", "test/unit", unit, "does not list its task (unit)"),
        ("rename-task", "test/unit\ntest/other", other, "does not list its task (other)"),
        ("rename-task", "test/unit\ntest/other", OTHER_UNEXPECTED, "was not submitted by this step (task key not_submitted)"),
        ("duplicate-task", "test/unit\ntest/other", other, "lists its task (other) 2 times"),
        ("no-task-key", "test/unit\ntest/other", other, "does not list its task (other)"),
        ("no-task-key", "test/unit\ntest/other", OTHER_UNEXPECTED, "was not submitted by this step (no task key)"),
        ("no-result", "test/unit\ntest/other", unit, "Databricks reported no result_state"),
        ("no-result", "test/unit", unit, "Databricks reported no result_state"),
    ];
    for (rewrite, notebooks, named, said) in cases {
        let case = format!("{rewrite} with {notebooks:?}");
        emulator.set_faults(faults(&[&format!("{RUNS_GET}=rewrite:{rewrite}")]));
        let reports = tempfile::tempdir().unwrap();
        let temp = reports.path().display().to_string();
        let inputs = [
            ("notebookPaths", *notebooks),
            ("AGENT_TEMPDIRECTORY", &temp),
        ];
        let outcome = run_task(
            TaskName::RunNotebookTest,
            step(&env, &inputs),
            OutputMode::Agent,
        )
        .await;
        assert_eq!(outcome.code, 1, "{case}: {}", outcome.stdout);
        assert!(
            errors(&outcome.stdout)
                .iter()
                .any(|e| e.starts_with(named) && e.contains(said)),
            "{case}: the log names {named}: {}",
            outcome.stdout
        );
        if said.starts_with("does not list") {
            let line = format!("FAIL {named}: no result from Databricks");
            assert!(outcome.stdout.contains(&line), "{case}: {}", outcome.stdout);
        }
        assert!(
            outcome
                .stdout
                .contains("##vso[task.complete result=Failed]"),
            "{case}: {}",
            outcome.stdout
        );
        let junit = std::fs::read_dir(reports.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "xml"))
            .unwrap_or_else(|| panic!("{case}: no JUnit file: {}", outcome.stdout));
        let junit = std::fs::read_to_string(junit).unwrap();
        let document = roxmltree::Document::parse(&junit).unwrap();
        let test_case = document
            .descendants()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(named))
            .unwrap_or_else(|| panic!("{case}: no test case for {named}: {junit}"));
        assert!(
            test_case.children().any(|c| c.has_tag_name("failure")),
            "{case}: {junit}"
        );

        let json = run_task(
            TaskName::RunNotebookTest,
            step(&env, &inputs),
            OutputMode::Json,
        )
        .await;
        assert_eq!(json.code, 1, "{case}: {}", json.stdout);
        let document: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        assert_eq!(document["ok"], false, "{case}");
        let entry = document["notebooks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| {
                let unverified = n["unverified"].as_str().unwrap_or_default();
                n["path"] == *named && (unverified.contains(said) || said.contains("result_state"))
            })
            .unwrap_or_else(|| panic!("{case}: {named} in the JSON document: {document}"));
        if said.contains("result_state") {
            assert!(entry["resultState"].is_null(), "{case}: {entry}");
        }
    }
    emulator.shutdown().await;
}

/// The run, once it has stopped (the emulator cancels asynchronously).
async fn final_state(emulator: &Emulator) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let runs = emulator_runs(emulator).await;
        let run = runs.last().cloned().expect("a run was submitted");
        let state = run["life_cycle_state"].as_str().unwrap_or_default();
        if ["TERMINATED", "INTERNAL_ERROR", "SKIPPED"].contains(&state) || Instant::now() > deadline
        {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Following the run fails in several ways after the submit: the step cancels the run before
/// it exits, and says so; the run does not go on using the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_gives_up_cancels_its_run() {
    let (emulator, _project, env) = setup().await;
    let short_budget = RetryPolicy {
        budget: Duration::from_millis(800),
        ..fast_retries()
    };
    #[rustfmt::skip]
    let cases: &[(&str, &str, &[&str])] = &[
        // what runs/get does after the submit, the retry policy, what the step says
        ("400*1", "fast", &["INVALID_PARAMETER_VALUE", " was cancelled"]),
        ("403*1", "fast", &["PERMISSION_DENIED", " was cancelled"]),
        ("404*1", "fast", &["RESOURCE_DOES_NOT_EXIST", " was cancelled"]),
        ("rewrite:not-json*1", "fast", &["reading the state of run", " was cancelled"]),
        // Every answer lost, the retry budget spent: the cancel is accepted, but its
        // confirmation cannot be read either.
        ("503", "short", &["reading the state of run", "gave up after", " was asked to cancel"]),
        ("drop-before", "short", &["reading the state of run", "gave up after", " was asked to cancel"]),
    ];
    for (fault, policy, said) in cases {
        emulator.set_faults(faults(&[&format!("{RUNS_GET}={fault}")]));
        let retry = if *policy == "short" {
            short_budget.clone()
        } else {
            fast_retries()
        };
        let slow = step(&env, &[("notebookPaths", "test/slow")]);
        let started = Instant::now();
        let outcome = run_task_with_retry(
            TaskName::RunNotebookTest,
            slow,
            OutputMode::Agent,
            None,
            retry,
        )
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{fault}: {:?}",
            started.elapsed()
        );
        assert_eq!(outcome.code, 3, "{fault}: {}", outcome.stdout);
        assert!(
            outcome.stdout.contains("Could not follow run ")
                && outcome.stdout.contains("cancelling it"),
            "{fault}: says it cancels: {}",
            outcome.stdout
        );
        let errors = errors(&outcome.stdout);
        let last = errors.last().unwrap_or(&"");
        for needle in *said {
            assert!(last.contains(needle), "{fault}: `{needle}` in: {last}");
        }
        let run = final_state(&emulator).await;
        assert_eq!(run["result_state"], "CANCELED", "{fault}: {run}");
    }
    emulator.shutdown().await;
}

/// Parameters reach the notebook exactly as written, numbers included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_reach_the_notebook_as_written() {
    let (emulator, _project, env) = setup().await;
    for (parameters, seen) in [
        (r#"{"env": 1e20}"#, "env=1e20"),
        (
            r#"{"env": 123456789012345678901234567890}"#,
            "env=123456789012345678901234567890",
        ),
        (r#"{"env": -0.50}"#, "env=-0.50"),
        (r#"{"env": true}"#, "env=true"),
        ("env = 1e20", "env=1e20"),
    ] {
        let inputs = [("notebookPaths", "test/params"), ("parameters", parameters)];
        let outcome = run_task(
            TaskName::RunNotebookTest,
            step(&env, &inputs),
            OutputMode::Json,
        )
        .await;
        assert_eq!(outcome.code, 0, "{parameters}: {}", outcome.stderr);
        let document: serde_json::Value = serde_json::from_str(&outcome.stdout).unwrap();
        assert_eq!(document["notebooks"][0]["output"], seen, "{parameters}");
    }
    emulator.shutdown().await;
}

/// The token for a fixed pipeline identity, computed from the specification in
/// `idempotency_token` (FNV-1a over length-prefixed fields). tests/node/verdicts.test.mjs
/// expects the same one from the wasm core.
pub const PINNED_TOKEN: &str = "azdo-60a930a1f41dcc65e27234baed567805";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idempotency_token_is_the_specified_one() {
    let (emulator, _project, env) = setup().await;
    let pinned = with(
        &env,
        &[
            ("SYSTEM_PLANID", "plan-7"),
            ("SYSTEM_JOBID", "job-7"),
            ("SYSTEM_JOBATTEMPT", "1"),
            ("SYSTEM_TASKINSTANCEID", "step-7"),
            ("runName", "ci 42"),
            (
                "notebookPaths",
                "/Shared/pinned/ünïcode\n/Shared/pinned/unit",
            ),
        ],
    );
    // The notebooks do not exist: the run fails, but its token is what this test is about.
    run_task(TaskName::RunNotebookTest, pinned, OutputMode::Agent).await;
    let runs = emulator_runs(&emulator).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["idempotency_token"], PINNED_TOKEN);
    emulator.shutdown().await;
}

/// The submit fails without Databricks saying no, after the run may have started: the run is
/// looked for with the same idempotency token and cancelled. A clear refusal is not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_without_a_clear_answer_leaves_no_run_behind() {
    let (emulator, _project, env) = setup().await;
    let short_budget = RetryPolicy {
        budget: Duration::from_millis(800),
        ..fast_retries()
    };
    const SUBMIT: &str = "POST /api/2.2/jobs/runs/submit";
    #[rustfmt::skip]
    let cases: &[(&[&str], usize, &str)] = &[
        // faults on runs/submit, runs started, what the step says
        // The run starts, its answer is lost, then 503s until the retry budget is spent
        // (they stop once the step looks for the run).
        (&["drop-after*1", "503"], 1, "was cancelled"),
        // The run starts, and the answer is a sign-in page.
        (&["rewrite:not-json*1"], 1, "was cancelled"),
        // A clear refusal: nothing started, nothing to look for.
        (&["400*1"], 0, "INVALID_PARAMETER_VALUE"),
    ];
    for (rules, started, said) in cases {
        let before = emulator_runs(&emulator).await.len();
        let rules: Vec<String> = rules.iter().map(|r| format!("{SUBMIT}={r}")).collect();
        emulator.set_faults(faults(
            &rules.iter().map(String::as_str).collect::<Vec<_>>(),
        ));
        let slow = step(&env, &[("notebookPaths", "test/slow")]);
        // The workspace heals once the step starts looking for the run it may have started.
        let heal = |out: &str| {
            if out.contains("making sure no run is left behind") {
                emulator.set_faults(Vec::new());
            }
        };
        let outcome = run_watching(slow, short_budget.clone(), heal).await;
        assert_eq!(outcome.code, 3, "{rules:?}: {}", outcome.stdout);
        let last = errors(&outcome.stdout).last().copied().unwrap_or_default();
        assert!(last.contains(said), "{rules:?}: `{said}` in: {last}");
        let runs = emulator_runs(&emulator).await;
        assert_eq!(runs.len() - before, *started, "{rules:?}: {runs:?}");
        if *started > 0 {
            let run = final_state(&emulator).await;
            assert_eq!(run["result_state"], "CANCELED", "{rules:?}: {run}");
        } else {
            assert!(
                !outcome.stdout.contains("making sure no run is left behind"),
                "{rules:?}: a refusal is not resubmitted: {}",
                outcome.stdout
            );
        }
    }
    emulator.shutdown().await;
}
