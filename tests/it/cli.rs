//! The binary, run as a user or the agent would: a clean environment, real signals.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_databricks-azdo"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir());
    command
}

fn run(command: &mut Command) -> Outcome {
    let output = command.output().expect("the binary runs");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn help_shows_examples() {
    let outcome = run(binary().arg("--help"));
    assert_eq!(outcome.code, 0);
    insta::assert_snapshot!(outcome.stdout);
}

#[test]
fn an_unknown_task_name_is_a_usage_error() {
    let outcome = run(binary().args(["task", "DatabricksRunNotebook"]));
    assert_eq!(outcome.code, 2);
    assert!(
        outcome
            .stderr
            .contains("unknown task `DatabricksRunNotebook`"),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains("DatabricksRunNotebookTest"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn the_demo_runs_the_whole_flow_and_exits_zero() {
    let outcome = run(binary().arg("demo"));
    assert_eq!(outcome.code, 0, "{}\n{}", outcome.stdout, outcome.stderr);
    for expected in [
        "Created repo /Repos/ci/income-model",
        "Repo /Repos/ci/income-model is at branch main, commit",
        "submitted: http://127.0.0.1:",
        "run TERMINATED SUCCESS",
        "output: 2 checks passed",
        "output: integration test ran with env=ci",
        "  tests: 3 passed, 1 skipped",
        "3 of 3 notebooks passed; test cases: 5 passed, 1 skipped",
        "Deleted repo /Repos/ci/income-model",
        "Tests tab: Databricks notebooks (run ",
        "BucketIncome.test_brackets_2027",
        "output variables:\n  runId = ",
    ] {
        assert!(
            outcome.stdout.contains(expected),
            "missing `{expected}` in:\n{}",
            outcome.stdout
        );
    }
    assert_rendered(&outcome.stdout);
    insta::assert_snapshot!(redact_demo(&outcome.stdout));
}

#[test]
fn the_failing_demo_shows_the_error_and_exits_non_zero() {
    let outcome = run(binary().args(["demo", "--fail"]));
    assert_eq!(outcome.code, 1, "{}\n{}", outcome.stdout, outcome.stderr);
    assert!(
        outcome
            .stdout
            .contains("\n  AssertionError: model regression"),
        "the trace, in its group: {}",
        outcome.stdout
    );
    assert!(
        outcome
            .stdout
            .contains("\nerror: 1 of 4 notebooks did not pass"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains("Deleted repo"),
        "cleanup runs after a failure: {}",
        outcome.stdout
    );
    assert_rendered(&outcome.stdout);
    insta::assert_snapshot!(redact_demo(&outcome.stdout));
}

#[test]
fn the_raw_demo_prints_the_agents_stream() {
    let outcome = run(binary().args(["demo", "--raw"]));
    assert_eq!(outcome.code, 0, "{}\n{}", outcome.stdout, outcome.stderr);
    for expected in [
        "\n##[section]Starting: Run the notebook tests (DatabricksRunNotebookTest@1)\n",
        "\n##vso[task.setvariable variable=runId;isoutput=true;issecret=false]",
        "\n##vso[results.publish type=JUnit;",
        "\n##vso[task.uploadsummary]",
        "\n##vso[task.complete result=Succeeded]3 of 3 notebooks passed",
    ] {
        assert!(
            outcome.stdout.contains(expected),
            "missing `{expected}` in:\n{}",
            outcome.stdout
        );
    }
    // The agent needs each secret once, to mask it; nowhere else does it appear.
    let secrets: Vec<&str> = outcome
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("##vso[task.setsecret]"))
        .collect();
    assert!(
        secrets.iter().any(|s| s.starts_with("demo-")),
        "{secrets:?}"
    );
    for line in outcome.stdout.lines() {
        if !line.starts_with("##vso[task.setsecret]") {
            for secret in &secrets {
                assert!(!line.contains(secret), "a secret in `{line}`");
            }
        }
    }
}

/// No logging command, formatting line or secret (the demo's token, the job's access token)
/// reaches the rendered log.
fn assert_rendered(stdout: &str) {
    for line in stdout.lines() {
        assert!(!line.contains("##vso["), "a logging command: `{line}`");
        assert!(!line.starts_with("##["), "a formatting line: `{line}`");
    }
    let secret = regex::Regex::new(r"(demo|job)-[0-9a-f]{16}").unwrap();
    assert!(!secret.is_match(stdout), "a secret in:\n{stdout}");
    assert!(
        !stdout.contains('\x1b'),
        "no colours when stdout is not a terminal"
    );
}

/// [`redact`], and what else varies from one demo to the next: the temporary folder, the
/// durations in the Tests tab, and the order in which one poll lists the notebooks it saw end.
fn redact_demo(stdout: &str) -> String {
    let text = redact(stdout, None);
    let text = regex::Regex::new(r"(/[^/\s]+)*/\.tmp[A-Za-z0-9_]+")
        .unwrap()
        .replace_all(&text, "[TEMP]");
    // The step's own upload folder is named after its idempotency token.
    let text = regex::Regex::new(r"/azdo-[0-9a-f]{32}/")
        .unwrap()
        .replace_all(&text, "/[STEP-TOKEN]/");
    let text = regex::Regex::new(r"(?m)  \d+\.\ds$")
        .unwrap()
        .replace_all(&text, "  [DURATION]");
    let mut lines: Vec<&str> = text.lines().collect();
    for block in lines.chunk_by_mut(|a, b| a.starts_with("[TIME]") && b.starts_with("[TIME]")) {
        block.sort_unstable();
    }
    lines.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_cancels_the_run_within_the_agents_window() {
    let emulator = emulator().await;
    let project = Project::new(&[("slow", SLOW)]);
    let env: BTreeMap<String, String> = with(
        &pipeline_env(&emulator, &project),
        &[
            ("repoPath", REPO_PATH),
            ("notebookPaths", "test/slow"),
            ("existingClusterId", CLUSTER),
        ],
    );
    let update = run_task(
        databricks_azdo::tasks::TaskName::RepoUpdate,
        env.clone(),
        databricks_azdo::pipeline::OutputMode::Agent,
    )
    .await;
    assert_eq!(update.code, 0, "{}", update.stdout);

    let mut child = binary()
        .args(["task", "DatabricksRunNotebookTest@1"])
        .envs(&env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut seen = Vec::new();
    loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the run starts");
        let running = line.contains("run RUNNING");
        seen.push(line);
        if running {
            break;
        }
    }
    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = tokio::task::spawn_blocking(move || child.wait().unwrap().code())
        .await
        .unwrap();
    let took = signalled.elapsed();
    // Every line the process printed: the reader ends (and drops its sender) at the pipe's
    // end, after the exit. `try_iter` here lost lines still in flight (a flaky failure).
    seen.extend(lines_rx.iter());
    let log = seen.join("\n");
    assert_eq!(code, Some(130), "{log}");
    assert!(took < Duration::from_secs(7), "cancelled in {took:?}");
    assert!(log.contains("stopped (TERMINATED CANCELED)"), "{log}");
    assert!(
        log.contains("##vso[task.complete result=Canceled]"),
        "{log}"
    );
    let runs = emulator_runs(&emulator).await;
    assert_eq!(runs[0]["result_state"], "CANCELED", "{runs:?}");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_takes_flags_and_the_token_from_the_environment() {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), format!("{TOKEN}\n")).unwrap();
    let base_url = emulator.base_url();
    let project_url = project.url();
    let update = tokio::task::spawn_blocking(move || {
        run(binary().args([
            "repo-update",
            "--host",
            &base_url,
            "--token-file",
            token_file.path().to_str().unwrap(),
            "--repo-path",
            REPO_PATH,
            "--repo-url",
            &project_url,
            "--git-provider",
            "gitHub",
            "--branch",
            "main",
        ]))
    })
    .await
    .unwrap();
    assert_eq!(update.code, 0, "{}\n{}", update.stdout, update.stderr);
    assert!(
        !update.stdout.contains("##vso["),
        "a terminal gets no logging commands: {}",
        update.stdout
    );
    update.assert_no_secret();

    let base_url = emulator.base_url();
    let test = tokio::task::spawn_blocking(move || {
        run(binary()
            .env("DATABRICKS_HOST", &base_url)
            .env("DATABRICKS_TOKEN", TOKEN)
            .args([
                "run-notebook-test",
                "--repo-path",
                REPO_PATH,
                "--notebook",
                "test/unit",
                "--cluster-id",
                CLUSTER,
                "--retries",
                "2",
                "--max-parallel",
                "1",
                "--library",
                "pypi:pytest==8.3.4",
                "--library",
                "maven:com.example:lib:1.0",
                "--run-as",
                "ci@example.com",
                "--output",
                "json",
            ]))
    })
    .await
    .unwrap();
    assert_eq!(test.code, 0, "{}\n{}", test.stdout, test.stderr);
    let doc: serde_json::Value = serde_json::from_str(&test.stdout).unwrap();
    assert_eq!(doc["notebooks"][0]["output"], "all good");
    assert_eq!(doc["notebooks"][0]["attempts"], 1);
    // The flags reached the submit as the task inputs they stand for.
    let runs = emulator_runs(&emulator).await;
    assert_eq!(runs[0]["run_as"], "user_name: ci@example.com");
    let libraries: Vec<&str> = runs[0]["tasks"][0]["libraries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["library"].as_str().unwrap())
        .collect();
    assert_eq!(
        libraries,
        ["pypi: pytest==8.3.4", "maven: com.example:lib:1.0"]
    );
    test.assert_no_secret();
    emulator.shutdown().await;
}

/// `--token-file` reads a regular file of bounded size: a device never ends and a FIFO waits
/// for a writer forever, so both are refused before they are read, as is a huge file.
#[test]
fn a_token_file_that_is_not_a_small_regular_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("token.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let huge = dir.path().join("huge-token");
    std::fs::write(&huge, "x".repeat(2 * 1024 * 1024)).unwrap();
    let cases = [
        ("/dev/zero".into(), "not a regular file"),
        (fifo, "not a regular file"),
        (dir.path().to_path_buf(), "not a regular file"),
        (huge, "larger than 1048576 bytes"),
    ];
    for (file, reason) in cases {
        let mut child = binary()
            .args([
                "run-notebook-test",
                "--host",
                "http://127.0.0.1:9",
                "--notebook",
            ])
            .args(["/Shared/x", "--cluster-id", CLUSTER, "--token-file"])
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(10) {
                child.kill().unwrap();
                panic!("{}: the binary hung", file.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let outcome = run_finished(child);
        assert_eq!(outcome.code, 2, "{}: {}", file.display(), outcome.stderr);
        assert!(
            outcome.stderr.contains("--token-file"),
            "{}",
            outcome.stderr
        );
        assert!(outcome.stderr.contains(reason), "{}", outcome.stderr);
    }
}

fn run_finished(child: std::process::Child) -> Outcome {
    let output = child.wait_with_output().unwrap();
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
