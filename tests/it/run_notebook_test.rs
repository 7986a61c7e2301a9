use crate::common::*;
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::tasks::TaskName;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passing_notebooks_pass_the_step_with_outputs_and_links() {
    let emulator = emulator().await;
    let (project, env) = checked_out(&emulator, &[("unit", PASSING), ("params", WITH_PARAM)]).await;
    let env = with(
        &env,
        &[
            ("notebookPaths", "test/unit\ntest/params"),
            ("parameters", "env=ci"),
        ],
    );

    let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    outcome.assert_no_secret();
    assert_eq!(
        count(&emulator, "POST /api/2.2/jobs/runs/submit"),
        1,
        "one submit for all notebooks"
    );
    assert_eq!(
        count(&emulator, "GET /api/2.2/jobs/runs/get-output"),
        2,
        "one output fetch per notebook"
    );
    let outputs: serde_json::Value =
        serde_json::from_str(output_variable(&outcome.stdout, "notebookOutput").unwrap()).unwrap();
    assert_eq!(outputs["/Repos/ci/project/test/unit"], "all good");
    assert_eq!(outputs["/Repos/ci/project/test/params"], "env=ci");
    assert_eq!(
        output_variable(&outcome.stdout, "resultState"),
        Some("SUCCESS")
    );
    let url = output_variable(&outcome.stdout, "runPageUrl").unwrap();
    assert!(
        url.starts_with(&emulator.base_url()) && url.contains("/run/"),
        "{url}"
    );
    insta::assert_snapshot!(redact(&outcome.stdout, Some(&project)));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_notebook_fails_the_step_and_shows_its_error() {
    let emulator = emulator().await;
    let (project, env) = checked_out(&emulator, &[("unit", PASSING), ("bad", FAILING)]).await;
    let env = with(&env, &[("notebookPaths", "test/unit\ntest/bad")]);

    let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;

    assert_eq!(outcome.code, 1, "{}", outcome.stdout);
    assert!(
        outcome
            .stdout
            .contains("##[group]/Repos/ci/project/test/bad: error"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains("AssertionError"),
        "{}",
        outcome.stdout
    );
    // The notebook's message tried to issue a logging command: it is defused.
    assert!(
        !outcome
            .stdout
            .lines()
            .any(|l| l.starts_with("##vso[task.complete result=Succeeded]")),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome
            .stdout
            .contains("**vso[task.complete result=Succeeded]"),
        "{}",
        outcome.stdout
    );
    assert_eq!(
        output_variable(&outcome.stdout, "resultState"),
        Some("FAILED")
    );
    insta::assert_snapshot!(redact(&outcome.stdout, Some(&project)));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_fails_with_a_hint_and_never_shows_the_token() {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    let env = with(
        &pipeline_env(&emulator, &project),
        &[
            ("notebookPaths", "/Repos/ci/project/test/unit"),
            ("existingClusterId", CLUSTER),
            ("databricksToken", "dapi-test-5ecret-but-wrong"),
            ("SECRET_DATABRICKS_TOKEN", "dapi-test-5ecret-but-wrong"),
            ("SYSTEM_DEBUG", "true"),
        ],
    );
    let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;
    assert_eq!(outcome.code, 3, "{}", outcome.stdout);
    assert!(outcome.stdout.contains("HTTP 403"), "{}", outcome.stdout);
    assert!(
        outcome.stdout.contains("hint: the token was rejected"),
        "{}",
        outcome.stdout
    );
    assert!(!outcome
        .stdout
        .lines()
        .filter(|l| !l.starts_with("##vso[task.setsecret]"))
        .any(|l| l.contains("5ecret-but-wrong")));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_cluster_is_reported_with_a_hint() {
    let emulator = emulator().await;
    let (_project, env) = checked_out(&emulator, &[("unit", PASSING)]).await;
    let env = with(
        &env,
        &[
            ("notebookPaths", "test/unit"),
            ("existingClusterId", "0000-000000-missing"),
        ],
    );
    let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;
    assert_eq!(outcome.code, 3, "{}", outcome.stdout);
    assert!(
        outcome.stdout.contains("0000-000000-missing"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains("hint: check existingClusterId"),
        "{}",
        outcome.stdout
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_notebook_fails_the_step() {
    let emulator = emulator().await;
    let (_project, env) = checked_out(&emulator, &[("unit", PASSING)]).await;
    let env = with(&env, &[("notebookPaths", "test/nope")]);
    let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;
    assert_eq!(outcome.code, 1, "{}", outcome.stdout);
    assert!(
        outcome.stdout.contains("FAIL /Repos/ci/project/test/nope"),
        "{}",
        outcome.stdout
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_faults_on_every_endpoint_still_create_exactly_one_run() {
    let emulator = emulator().await;
    let (_project, env) =
        checked_out(&emulator, &[("unit", PASSING), ("params", WITH_PARAM)]).await;
    emulator.set_faults(faults(&[
        "POST /api/2.2/jobs/runs/submit=drop-after*1",
        "POST /api/2.2/jobs/runs/submit=503*1",
        "GET /api/2.2/jobs/runs/get=429:1*1",
        "GET /api/2.2/jobs/runs/get=drop-before*1",
        "GET /api/2.2/jobs/runs/get=502*1",
        "GET /api/2.2/jobs/runs/get-output=503*2",
        "GET /api/2.2/jobs/runs/get-output=drop-after*1",
    ]));
    let env = with(&env, &[("notebookPaths", "test/unit\ntest/params")]);
    let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    assert_eq!(
        emulator_runs(&emulator).await.len(),
        1,
        "exactly one run was created"
    );
    assert!(
        count(&emulator, "POST /api/2.2/jobs/runs/submit") >= 3,
        "the submit was retried"
    );
    assert!(outcome.stdout.contains("retrying"), "{}", outcome.stdout);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_deadline_cancels_the_run() {
    let emulator = emulator().await;
    let (_project, env) = checked_out(&emulator, &[("slow", SLOW)]).await;
    // 0.02 minutes = 1.2 s; the emulator's own timeout (2 s) would come later.
    let env = with(
        &env,
        &[("notebookPaths", "test/slow"), ("timeoutMinutes", "0.02")],
    );
    let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;
    assert_eq!(outcome.code, 4, "{}", outcome.stdout);
    assert!(
        outcome
            .stdout
            .contains("did not finish within timeoutMinutes"),
        "{}",
        outcome.stdout
    );
    let runs = emulator_runs(&emulator).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["result_state"], "CANCELED", "{runs:?}");
    assert_eq!(count(&emulator, "POST /api/2.2/jobs/runs/cancel"), 1);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_source_runs_the_built_commit_without_a_repo() {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    let built = project.head();
    project.commit(&[("unit", FAILING)], "a later commit that would fail");
    let env = with(
        &pipeline_env(&emulator, &project),
        &[
            ("notebookPaths", "test/unit"),
            ("source", "git"),
            ("existingClusterId", CLUSTER),
            ("BUILD_SOURCEVERSION", &built),
        ],
    );
    let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;
    assert_eq!(
        outcome.code, 0,
        "the built commit passes, the later one would not: {}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains(&format!("at commit {built}")),
        "{}",
        outcome.stdout
    );
    assert_eq!(count(&emulator, "POST /api/2.0/repos"), 0);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_mode_prints_no_logging_commands() {
    let emulator = emulator().await;
    let (_project, env) = checked_out(&emulator, &[("unit", PASSING)]).await;
    let env = with(&env, &[("notebookPaths", "test/unit")]);
    let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Terminal).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    assert!(!outcome.stdout.contains("##vso["), "{}", outcome.stdout);
    assert!(!outcome.stdout.contains("##["), "{}", outcome.stdout);
    assert!(
        outcome.stdout.contains("PASS /Repos/ci/project/test/unit"),
        "{}",
        outcome.stdout
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_mode_prints_one_document_on_stdout() {
    let emulator = emulator().await;
    let (_project, env) = checked_out(&emulator, &[("unit", PASSING), ("bad", FAILING)]).await;
    let env = with(&env, &[("notebookPaths", "test/unit\ntest/bad")]);
    let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Json).await;
    assert_eq!(outcome.code, 1);
    let doc: serde_json::Value =
        serde_json::from_str(&outcome.stdout).expect("stdout is one JSON document");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["exitCode"], 1);
    assert_eq!(doc["notebooks"][0]["resultState"], "SUCCESS");
    assert_eq!(doc["notebooks"][0]["output"], "all good");
    assert_eq!(doc["notebooks"][1]["resultState"], "FAILED");
    assert!(doc["notebooks"][1]["error"]
        .as_str()
        .unwrap()
        .contains("AssertionError"));
    assert!(
        outcome.stderr.contains("FAIL /Repos/ci/project/test/bad"),
        "human lines go to stderr"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_survives_faults_on_every_endpoint() {
    // Seeded: the same faults on every run of this test.
    let emulator = emulator_with(faults(&[
        "*=503@0.2",
        "*=drop-after@0.1",
        "*=429:0@0.1",
        "*=drop-before@0.1",
    ]))
    .await;
    let project = Project::new(&[("unit", PASSING), ("params", WITH_PARAM)]);
    let env = with(
        &pipeline_env(&emulator, &project),
        &[("repoPath", REPO_PATH)],
    );

    let update = run_task(TaskName::RepoUpdate, env.clone(), OutputMode::Agent).await;
    assert_eq!(update.code, 0, "{}", update.stdout);
    let tests = with(
        &env,
        &[
            ("existingClusterId", CLUSTER),
            ("notebookPaths", "test/unit\ntest/params"),
        ],
    );
    let outcome = run_task(TaskName::RunNotebookTest, tests, OutputMode::Agent).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    let cleanup = run_task(
        TaskName::RepoUpdate,
        with(&env, &[("mode", "delete")]),
        OutputMode::Agent,
    )
    .await;
    assert_eq!(cleanup.code, 0, "{}", cleanup.stdout);

    assert_eq!(emulator_runs(&emulator).await.len(), 1, "exactly one run");
    let retries = [&update, &outcome, &cleanup]
        .iter()
        .map(|o| o.stdout.matches("retrying in").count())
        .sum::<usize>();
    assert!(
        retries >= 3,
        "faults were injected and retried ({retries} retries)"
    );
    emulator.set_faults(Vec::new());
    let repos: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/2.0/repos", emulator.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        repos
            .get("repos")
            .is_none_or(|r| r.as_array().unwrap().is_empty()),
        "no repo left behind: {repos}"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_go_to_the_tests_tab_and_the_build_summary() {
    let emulator = emulator().await;
    let (_project, env) = checked_out(&emulator, &[("unit", PASSING), ("bad", FAILING)]).await;
    let temp = tempfile::tempdir().unwrap();
    let temp_dir = temp.path().display().to_string();
    let env = with(
        &env,
        &[
            ("notebookPaths", "test/unit\ntest/bad"),
            ("AGENT_TEMPDIRECTORY", &temp_dir),
        ],
    );

    let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;

    assert_eq!(outcome.code, 1, "{}", outcome.stdout);
    let publish = outcome
        .stdout
        .lines()
        .find(|l| l.starts_with("##vso[results.publish "))
        .expect("results are published");
    let file = publish
        .split("resultFiles=")
        .nth(1)
        .unwrap()
        .trim_end_matches(']');
    assert!(file.starts_with(&temp_dir), "{publish}");
    assert!(publish.contains("type=JUnit;"), "{publish}");
    let xml = std::fs::read_to_string(file).unwrap();
    // One suite per notebook, each notebook one case (they hand back no report of their own).
    assert!(
        xml.contains(r#"<testsuite name="/Repos/ci/project/test/unit" tests="1" failures="0" errors="0" skipped="0""#)
            && xml.contains(r#"<testsuite name="/Repos/ci/project/test/bad" tests="1" failures="1" errors="0" skipped="0""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"name="/Repos/ci/project/test/unit""#)
            && xml.contains("<system-out>all good</system-out>"),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<failure message="failed: AssertionError: x should be 2"#),
        "{xml}"
    );
    let summary = outcome
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("##vso[task.uploadsummary]"))
        .expect("a summary is attached");
    let markdown = std::fs::read_to_string(summary).unwrap();
    assert!(
        markdown.starts_with("### Databricks notebook tests: 1 of 2 passed ([run "),
        "{markdown}"
    );
    // Each notebook links to its task's run page.
    let origin = emulator.base_url();
    assert!(
        markdown.contains(&format!(
            "| ✅ | [` /Repos/ci/project/test/unit `](<{origin}/"
        )),
        "{markdown}"
    );
    assert!(
        markdown.contains(&format!(
            "| ❌ | [` /Repos/ci/project/test/bad `](<{origin}/"
        )),
        "{markdown}"
    );
    emulator.shutdown().await;
}
