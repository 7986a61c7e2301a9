//! Jobs API 2.2: `runs/get` pages the tasks of a large run (100 an answer); the emulator pages
//! as Databricks does and refuses tokens it did not issue and 2.1 reads that would need pages;
//! the step reads every page, judges the run whole, and costs one request per page per poll.
//! Also queueing (`queue: {enabled: true}`), `status`, and the serverless run fields.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::api::{self, Workspace};
use crate::common::*;
use databricks_azdo::databricks::RetryPolicy;
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::tasks::TaskName;

const RUNS_GET: &str = "GET /api/2.2/jobs/runs/get";

/// A run of `count` tasks whose notebooks do not exist (they end at once, without Python).
async fn submit_missing_notebooks(ws: &Workspace, count: usize) -> i64 {
    let tasks: Vec<Value> = (0..count)
        .map(|i| api::notebook_task(&format!("t{i:04}"), &format!("/Shared/missing/n{i}")))
        .collect();
    let answer = ws
        .ok(
            Method::POST,
            "/api/2.2/jobs/runs/submit",
            Some(json!({ "run_name": "pages", "tasks": tasks })),
        )
        .await;
    answer["run_id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_pages_tasks_by_a_hundred_and_refuses_tokens_it_did_not_issue() {
    let ws = Workspace::start(TOKEN).await;
    let run_id = submit_missing_notebooks(&ws, 250).await;
    let other_run = submit_missing_notebooks(&ws, 101).await;

    let mut keys = Vec::new();
    let mut sizes = Vec::new();
    let mut tokens = Vec::new();
    let mut query = format!("/api/2.2/jobs/runs/get?run_id={run_id}");
    loop {
        let page = ws.ok(Method::GET, &query, None).await;
        assert_eq!(page["run_id"], run_id);
        assert!(page["state"]["life_cycle_state"].is_string(), "{page}");
        let tasks = page["tasks"].as_array().unwrap();
        sizes.push(tasks.len());
        keys.extend(
            tasks
                .iter()
                .map(|t| t["task_key"].as_str().unwrap().to_string()),
        );
        let Some(token) = page["next_page_token"].as_str() else {
            break;
        };
        tokens.push(token.to_string());
        query = format!("/api/2.2/jobs/runs/get?run_id={run_id}&page_token={token}");
    }
    assert_eq!(sizes, [100, 100, 50]);
    let expected: Vec<String> = (0..250).map(|i| format!("t{i:04}")).collect();
    assert_eq!(keys, expected, "every task once, in order");

    // Tokens are opaque and bound to their run: changed, made up or of another run, refused.
    let changed = format!("{}x", tokens[0]);
    let other_token = ws
        .ok(
            Method::GET,
            &format!("/api/2.2/jobs/runs/get?run_id={other_run}"),
            None,
        )
        .await["next_page_token"]
        .as_str()
        .unwrap()
        .to_string();
    for (token, against) in [
        (changed.as_str(), run_id),
        ("MTIzOjEwMDphYmM", run_id),
        (other_token.as_str(), run_id),
        (tokens[0].as_str(), other_run),
    ] {
        let (status, body) = ws
            .get(&format!(
                "/api/2.2/jobs/runs/get?run_id={against}&page_token={token}"
            ))
            .await;
        assert_eq!(status, 400, "{token}: {body}");
        assert_eq!(api::error_code(&body), "INVALID_PARAMETER_VALUE");
        assert!(api::message(&body).contains("page token"), "{body}");
    }

    // Jobs 2.1 cannot page: a run with more than 100 task runs cannot be read with it.
    let (status, body) = ws
        .get(&format!("/api/2.1/jobs/runs/get?run_id={run_id}"))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(api::message(&body).contains("Use Jobs API 2.2"), "{body}");
    let small = submit_missing_notebooks(&ws, 100).await;
    let whole = ws.run(small).await;
    assert_eq!(whole["tasks"].as_array().unwrap().len(), 100);
    assert!(whole.get("next_page_token").is_none(), "{whole}");
}

/// `count` passing notebooks `test/n000`… and a step that runs them all with a glob.
fn many_notebooks(count: usize) -> Vec<(String, &'static str)> {
    (0..count)
        .map(|i| {
            (
                format!("n{i:03}"),
                "# Databricks notebook source\ndbutils.notebook.exit('ok')\n",
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_several_pages_is_judged_whole_at_one_request_a_page_a_poll() {
    let emulator = emulator().await;
    let notebooks = many_notebooks(230);
    let named: Vec<(&str, &str)> = notebooks.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    let (_project, env) = checked_out(&emulator, &named).await;
    // One step id for the three steps: the later ones get the first run back (its idempotency
    // token), so the notebooks run once and only the reading of the pages differs.
    let step_id = next_step_id();
    let step = |rewrite: Option<&str>| {
        emulator.set_faults(
            rewrite
                .map(|r| faults(&[&format!("{RUNS_GET}=rewrite:{r}")]))
                .unwrap_or_default(),
        );
        with(
            &env,
            &[
                ("notebookPaths", "test/n*"),
                ("existingClusterId", CLUSTER),
                ("SYSTEM_TASKINSTANCEID", &step_id),
            ],
        )
    };

    let before = count(&emulator, RUNS_GET);
    let outcome = run_task(TaskName::RunNotebookTest, step(None), OutputMode::Agent).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    assert_eq!(output_variable(&outcome.stdout, "testsPassed"), Some("230"));
    assert!(
        outcome.stdout.contains("230 of 230 notebooks passed"),
        "{}",
        outcome.stdout
    );
    // Each poll reads the three pages, no more, and nothing else reads runs/get.
    let reads = count(&emulator, RUNS_GET) - before;
    let run = emulator_runs(&emulator).await.pop().unwrap();
    let first = run["runs_get_reads"]["first_page"].as_u64().unwrap();
    let later = run["runs_get_reads"]["later_pages"].as_u64().unwrap();
    assert!(first >= 1, "{run}");
    assert_eq!(later, 2 * first, "two more pages a poll");
    assert_eq!(reads, first + later, "nothing else reads runs/get");

    // A page without its last task, or with it twice: the run is not judged on what is
    // missing or doubled, whichever page it was on.
    for (rewrite, said) in [
        ("drop-task", "does not list its task"),
        ("duplicate-task", "2 times"),
    ] {
        let outcome = run_task(
            TaskName::RunNotebookTest,
            step(Some(rewrite)),
            OutputMode::Agent,
        )
        .await;
        assert_eq!(outcome.code, 1, "{rewrite}: {}", outcome.stdout);
        assert_eq!(
            emulator_runs(&emulator).await.len(),
            1,
            "the same run, read again"
        );
        let named: Vec<&str> = outcome
            .stdout
            .lines()
            .filter(|l| l.starts_with("##vso[task.logissue type=error]") && l.contains(said))
            .collect();
        // The last task of each of the three pages: n099, n199 and n229.
        for notebook in ["n099", "n199", "n229"] {
            assert!(
                named
                    .iter()
                    .any(|l| l.contains(&format!("/test/{notebook}"))),
                "{rewrite}: {notebook} is named: {}",
                outcome.stdout
            );
        }
    }
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_queued_at_the_workspace_limit_waits_and_says_why() {
    let emulator = emulator_configured(|config| config.max_active_runs = Some(1)).await;
    let (_project, env) = checked_out(&emulator, &[("unit", PASSING), ("slow", SLOW)]).await;
    let base = emulator.base_url();
    let http = http();
    // Another pipeline's run holds the only slot.
    let occupying = json_of(
        http.post(format!("{base}/api/2.2/jobs/runs/submit"))
            .bearer_auth(TOKEN)
            .json(&json!({ "tasks": [api::notebook_task("slow", &format!("{REPO_PATH}/test/slow"))] })),
    )
    .await["run_id"]
        .as_i64()
        .unwrap();

    let cancel_sent = std::cell::Cell::new(false);
    let outcome = run_watching(
        with(
            &env,
            &[
                ("notebookPaths", "test/unit"),
                ("existingClusterId", CLUSTER),
            ],
        ),
        RetryPolicy::default(),
        |stdout| {
            if stdout.contains("run QUEUED") && !cancel_sent.replace(true) {
                let (http, base) = (http.clone(), base.clone());
                tokio::spawn(async move {
                    http.post(format!("{base}/api/2.2/jobs/runs/cancel"))
                        .bearer_auth(TOKEN)
                        .json(&json!({ "run_id": occupying }))
                        .send()
                        .await
                        .unwrap();
                });
            }
        },
    )
    .await;
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    assert!(
        outcome.stdout.contains(
            "run QUEUED: ACTIVE_RUNS_LIMIT_REACHED: The run is queued: the workspace has reached its limit of active runs."
        ),
        "{}",
        outcome.stdout
    );
    let runs = emulator_runs(&emulator).await;
    let ours = runs.last().unwrap();
    assert_eq!(ours["queue"]["enabled"], true, "{ours}");
    assert_eq!(ours["result_state"], "SUCCESS", "{ours}");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_queueing_a_run_at_the_limit_is_skipped_and_never_passes() {
    let emulator = emulator_configured(|config| config.max_active_runs = Some(1)).await;
    let http = http();
    let base = emulator.base_url();
    let submit = |queue: Option<bool>| {
        let mut body = json!({ "tasks": [api::notebook_task("a", "/Shared/missing")] });
        if let Some(enabled) = queue {
            body["queue"] = json!({ "enabled": enabled });
        }
        let request = http
            .post(format!("{base}/api/2.2/jobs/runs/submit"))
            .bearer_auth(TOKEN)
            .json(&body);
        async move { json_of(request).await["run_id"].as_i64().unwrap() }
    };
    // A slow first run: a missing notebook still takes its PENDING time.
    let _first = submit(None).await;
    let skipped = submit(Some(false)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let run = loop {
        let run = json_of(
            http.get(format!("{base}/api/2.2/jobs/runs/get?run_id={skipped}"))
                .bearer_auth(TOKEN),
        )
        .await;
        if run["state"]["life_cycle_state"] == "SKIPPED" || std::time::Instant::now() > deadline {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(run["state"]["life_cycle_state"], "SKIPPED", "{run}");
    assert!(run["state"].get("result_state").is_none(), "{run}");
    assert_eq!(
        run["status"]["termination_details"]["code"], "WORKSPACE_RUN_LIMIT_EXCEEDED",
        "{run}"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn performance_target_and_budget_policy_reach_the_run() {
    let emulator = emulator().await;
    let (_project, env) = checked_out(&emulator, &[("unit", PASSING)]).await;
    let outcome = run_task(
        TaskName::RunNotebookTest,
        with(
            &env,
            &[
                ("notebookPaths", "test/unit"),
                ("clusterMode", "serverless"),
                ("performanceTarget", "STANDARD"),
                ("budgetPolicyId", "1a2b3c4d-0000-4000-8000-123456789abc"),
            ],
        ),
        OutputMode::Agent,
    )
    .await;
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    let runs = emulator_runs(&emulator).await;
    let run = runs.last().unwrap();
    assert_eq!(run["performance_target"], "STANDARD", "{run}");
    assert_eq!(
        run["budget_policy_id"], "1a2b3c4d-0000-4000-8000-123456789abc",
        "{run}"
    );
    assert_eq!(run["queue"]["enabled"], true, "{run}");

    let before = total_api_requests(&emulator);
    for (inputs, said) in [
        (
            vec![("performanceTarget", "FAST"), ("clusterMode", "serverless")],
            "input `performanceTarget`: `FAST` is not one of",
        ),
        (
            vec![("budgetPolicyId", "policy; drop")],
            "input `budgetPolicyId`: `policy; drop` is not a budget policy id",
        ),
    ] {
        let mut inputs = inputs;
        inputs.push(("notebookPaths", "test/unit"));
        let outcome = run_task(
            TaskName::RunNotebookTest,
            with(&env, &inputs),
            OutputMode::Agent,
        )
        .await;
        assert_eq!(outcome.code, 2, "{inputs:?}: {}", outcome.stdout);
        assert!(
            outcome.stdout.contains(said),
            "{inputs:?}: {}",
            outcome.stdout
        );
    }
    assert_eq!(
        total_api_requests(&emulator),
        before,
        "refused before any request"
    );

    let warned = run_task(
        TaskName::RunNotebookTest,
        with(
            &env,
            &[
                ("notebookPaths", "test/unit"),
                ("existingClusterId", CLUSTER),
                ("performanceTarget", "PERFORMANCE_OPTIMIZED"),
                ("SYSTEM_TASKINSTANCEID", &next_step_id()),
            ],
        ),
        OutputMode::Agent,
    )
    .await;
    assert!(
        warned.stdout.contains(
            "##vso[task.logissue type=warning]input `performanceTarget` is ignored with `clusterMode: existing`"
        ),
        "{}",
        warned.stdout
    );
    let runs = emulator_runs(&emulator).await;
    assert!(runs.last().unwrap()["performance_target"].is_null());
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_out_of_time_while_its_run_is_queued_cancels_the_run() {
    let emulator = emulator_configured(|config| config.max_active_runs = Some(1)).await;
    let (_project, env) = checked_out(&emulator, &[("unit", PASSING), ("slow", SLOW)]).await;
    json_of(
        http()
            .post(format!("{}/api/2.2/jobs/runs/submit", emulator.base_url()))
            .bearer_auth(TOKEN)
            .json(&json!({ "tasks": [api::notebook_task("slow", &format!("{REPO_PATH}/test/slow"))] })),
    )
    .await;
    // 0.02 minutes = 1.2 s, all of it in the queue.
    let outcome = run_task(
        TaskName::RunNotebookTest,
        with(
            &env,
            &[("notebookPaths", "test/unit"), ("timeoutMinutes", "0.02")],
        ),
        OutputMode::Agent,
    )
    .await;
    assert_eq!(outcome.code, 4, "{}", outcome.stdout);
    assert!(outcome.stdout.contains("run QUEUED"), "{}", outcome.stdout);
    assert!(
        outcome
            .stdout
            .contains("did not finish within timeoutMinutes"),
        "{}",
        outcome.stdout
    );
    let runs = emulator_runs(&emulator).await;
    let ours = runs.last().unwrap();
    assert_eq!(ours["result_state"], "CANCELED", "{ours}");
    assert_eq!(ours["tasks"][0]["life_cycle_state"], "TERMINATED", "{ours}");
    emulator.shutdown().await;
}
