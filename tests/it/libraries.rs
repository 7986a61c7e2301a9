//! `libraries`: the wheel the pipeline built is uploaded to a volume folder of the step's own,
//! installed for the run (the notebooks import it), and removed afterwards, whatever the
//! outcome; on serverless compute the libraries form the run's environment; bad lines, missing
//! files and a missing or misplaced upload folder fail before any request.

use crate::common::*;
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::tasks::TaskName;

const UPLOAD_PATH: &str = "/Volumes/main/ci/artifacts";

/// Imports the package the pipeline built and checks it came from the wheel.
const IMPORTS_THE_WHEEL: &str = r#"# Databricks notebook source
import income_model
assert ".whl" in income_model.__file__, income_model.__file__
assert income_model.bucket_income(150_000) == "high"
dbutils.notebook.exit(f"income_model {income_model.__version__}")
"#;

async fn run(
    emulator: &databricks_azdo::emulator::Emulator,
    notebooks: &[(&str, &str)],
    inputs: &[(&str, &str)],
) -> Outcome {
    let project = Project::new(notebooks);
    let paths: Vec<String> = notebooks.iter().map(|(n, _)| format!("test/{n}")).collect();
    let joined = paths.join("\n");
    let mut settings: Vec<(&str, &str)> = vec![("source", "git"), ("notebookPaths", &joined)];
    if !inputs.iter().any(|(name, _)| *name == "clusterMode") {
        settings.push(("existingClusterId", CLUSTER));
    }
    settings.extend_from_slice(inputs);
    let env = with(&pipeline_env(emulator, &project), &settings);
    run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await
}

/// Runs `notebooks` with the example's wheel, built for the step, listed first in `libraries`
/// (then `more` lines) and uploaded to [`UPLOAD_PATH`].
async fn run_with_wheel(
    emulator: &databricks_azdo::emulator::Emulator,
    notebooks: &[(&str, &str)],
    more: &str,
    inputs: &[(&str, &str)],
) -> Outcome {
    let wheel = IncomeModelWheel::build();
    let libraries = format!("{}\n{more}", wheel.glob());
    let mut all = vec![
        ("libraries", libraries.as_str()),
        ("libraryUploadPath", UPLOAD_PATH),
    ];
    all.extend_from_slice(inputs);
    run(emulator, notebooks, &all).await
}

/// Whether `path` exists in the emulator's volumes, asked through the Files API.
async fn exists(emulator: &databricks_azdo::emulator::Emulator, path: &str) -> bool {
    let answer = reqwest::Client::new()
        .head(format!("{}/api/2.0/fs/files{path}", emulator.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    answer.status().is_success()
}

fn uploaded_to(log: &str) -> String {
    log.lines()
        .find_map(|l| {
            l.split(" to ")
                .nth(1)
                .filter(|_| l.starts_with("Uploaded "))
        })
        .unwrap_or_else(|| panic!("no upload in {log}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wheel_built_on_the_agent_is_uploaded_installed_and_removed_afterwards() {
    let emulator = emulator().await;
    let outcome = run_with_wheel(
        &emulator,
        &[("imports", IMPORTS_THE_WHEEL)],
        "pypi: pytest==8.3.4",
        &[],
    )
    .await;
    let log = &outcome.stdout;
    assert_eq!(outcome.code, 0, "{log}");
    assert!(
        log.contains(
            "2 libraries installed in every task's cluster, 1 uploaded from the agent first"
        ),
        "{log}"
    );
    let target = uploaded_to(log);
    assert!(
        target.starts_with(&format!("{UPLOAD_PATH}/azdo-"))
            && target.ends_with("/income_model-1.0.0-py3-none-any.whl"),
        "{target}"
    );
    assert!(log.contains("output: income_model 1.0.0"), "{log}");
    let runs = emulator_runs(&emulator).await;
    let libraries = &runs[0]["tasks"][0]["libraries"];
    assert_eq!(libraries[0]["library"], format!("whl: {target}"));
    assert_eq!(libraries[0]["installed"], true);
    assert_eq!(libraries[1]["library"], "pypi: pytest==8.3.4");
    assert_eq!(libraries[1]["installed"], false);
    // Nothing of the step's is left in the volume: the file and its folder are gone.
    assert!(!exists(&emulator, &target).await, "{target} is left");
    let folder = target.rsplit_once('/').unwrap().0;
    assert_eq!(
        count(
            &emulator,
            &format!("DELETE /api/2.0/fs/directories{folder}")
        ),
        1
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_is_removed_when_the_notebooks_fail_too() {
    let emulator = emulator().await;
    let outcome = run_with_wheel(&emulator, &[("broken", FAILING)], "", &[]).await;
    assert_eq!(outcome.code, 1, "{}", outcome.stdout);
    let target = uploaded_to(&outcome.stdout);
    assert!(!exists(&emulator, &target).await, "{target} is left");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_that_fails_is_a_warning_naming_the_folder() {
    let emulator = emulator_with(faults(&["DELETE /api/2.0/fs/files/*=403"])).await;
    let outcome = run_with_wheel(&emulator, &[("imports", IMPORTS_THE_WHEEL)], "", &[]).await;
    let log = &outcome.stdout;
    assert_eq!(outcome.code, 0, "the tests passed: {log}");
    let folder = uploaded_to(log).rsplit_once('/').unwrap().0.to_string();
    assert!(
        log.contains(&format!(
            "##vso[task.logissue type=warning]could not remove the uploaded libraries from {folder}"
        )),
        "{log}"
    );
    assert!(log.contains("remove the folder by hand"), "{log}");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upload_fails_the_step_before_the_submit_and_leaves_nothing() {
    let emulator = emulator_with(faults(&["PUT /api/2.0/fs/files/*=403"])).await;
    let outcome = run_with_wheel(&emulator, &[("imports", IMPORTS_THE_WHEEL)], "", &[]).await;
    let log = &outcome.stdout;
    assert_eq!(outcome.code, 3, "{log}");
    assert!(log.contains("uploading "), "{log}");
    assert!(log.contains("income_model-1.0.0-py3-none-any.whl"), "{log}");
    assert_eq!(count(&emulator, "POST /api/2.2/jobs/runs/submit"), 0);
    let deletes = count_prefix(&emulator, "DELETE /api/2.0/fs/");
    assert_eq!(deletes, 2, "{:?}", emulator.request_counts());
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_folder_takes_the_upload_too() {
    let emulator = emulator().await;
    let outcome = run_with_wheel(
        &emulator,
        &[("imports", IMPORTS_THE_WHEEL)],
        "",
        &[("libraryUploadPath", "/Workspace/Shared/ci-artifacts")],
    )
    .await;
    let log = &outcome.stdout;
    assert_eq!(outcome.code, 0, "{log}");
    let target = uploaded_to(log);
    assert!(
        target.starts_with("/Workspace/Shared/ci-artifacts/azdo-"),
        "{target}"
    );
    assert!(log.contains("output: income_model 1.0.0"), "{log}");
    let runs = emulator_runs(&emulator).await;
    assert_eq!(runs[0]["tasks"][0]["libraries"][0]["installed"], true);
    // Written with the import API into a folder of its own, which is removed with it.
    assert_eq!(count(&emulator, "POST /api/2.0/workspace/import"), 1);
    assert_eq!(count(&emulator, "POST /api/2.0/workspace/delete"), 1);
    let folder = target
        .rsplit_once('/')
        .unwrap()
        .0
        .trim_start_matches("/Workspace");
    let answer = reqwest::Client::new()
        .get(format!(
            "{}/api/2.0/workspace/get-status?path={folder}",
            emulator.base_url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404, "{folder} is left");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_too_large_for_the_workspace_is_refused_before_any_request() {
    let emulator = emulator().await;
    let dist = tempfile::tempdir().unwrap();
    let wheel = dist.path().join("huge-1.0-py3-none-any.whl");
    std::fs::write(&wheel, vec![0u8; 10 * 1024 * 1024 + 1]).unwrap();
    let outcome = run(
        &emulator,
        &[("unit", PASSING)],
        &[
            ("libraries", wheel.to_str().unwrap()),
            ("libraryUploadPath", "/Workspace/Shared/ci-artifacts"),
        ],
    )
    .await;
    let log = &outcome.stdout;
    assert_eq!(outcome.code, 2, "{log}");
    assert!(
        log.contains("is 10485761 bytes; at most 10485760 are uploaded to /Workspace/Shared/ci-artifacts/azdo-"),
        "{log}"
    );
    assert!(
        log.contains("set libraryUploadPath to a folder in a Unity Catalog volume"),
        "{log}"
    );
    assert_eq!(total_api_requests(&emulator), 0);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_serverless_the_libraries_are_the_runs_environment() {
    let emulator = emulator().await;
    let outcome = run_with_wheel(
        &emulator,
        &[("imports", IMPORTS_THE_WHEEL)],
        "pandas==2.2.2",
        &[("clusterMode", "serverless"), ("environmentVersion", "3")],
    )
    .await;
    let log = &outcome.stdout;
    assert_eq!(outcome.code, 0, "{log}");
    assert!(
        log.contains("2 libraries installed in the run's serverless environment (version 3)"),
        "{log}"
    );
    let runs = emulator_runs(&emulator).await;
    let libraries = &runs[0]["tasks"][0]["libraries"];
    assert_eq!(libraries[0]["installed"], true, "{libraries}");
    assert_eq!(libraries[1]["library"], "pip: pandas==2.2.2");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_as_and_a_cluster_policy_reach_the_submit() {
    let emulator = emulator().await;
    let outcome = run(
        &emulator,
        &[("unit", PASSING)],
        &[
            ("clusterMode", "new"),
            (
                "newClusterJson",
                r#"{"spark_version": "15.4.x-scala2.12", "num_workers": 1}"#,
            ),
            ("clusterPolicyId", "0012ABCD34EF5678"),
            ("runAs", "6A2C1C6E-8A8B-4F5E-9D7A-1B2C3D4E5F60"),
        ],
    )
    .await;
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    let runs = emulator_runs(&emulator).await;
    assert_eq!(
        runs[0]["run_as"],
        "service_principal_name: 6a2c1c6e-8a8b-4f5e-9d7a-1b2c3d4e5f60"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_libraries_fail_before_any_request_naming_the_line() {
    let emulator = emulator().await;
    let wheel = IncomeModelWheel::build();
    let glob = wheel.glob();
    let missing = format!("{}/nothing-*.whl", wheel.dir.path().display());
    let many = tempfile::tempdir().unwrap();
    for n in 0..51 {
        std::fs::write(
            many.path().join(format!("lib{n}-1.0-py3-none-any.whl")),
            b"w",
        )
        .unwrap();
    }
    let too_many = format!("{}/*.whl", many.path().display());
    let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
        (
            vec![("libraries", &missing), ("libraryUploadPath", UPLOAD_PATH)],
            "input `libraries`: line 1 (`".to_string() + &missing + "`) names a file on the agent, but nothing in",
        ),
        (
            vec![("libraries", &glob)],
            "input `libraryUploadPath`: is required: `libraries` names a file on the agent".into(),
        ),
        (
            vec![("libraries", &too_many), ("libraryUploadPath", UPLOAD_PATH)],
            "input `libraries`: names 51 files on the agent; at most 50 are uploaded in one step".into(),
        ),
        (
            vec![("libraries", &glob), ("libraryUploadPath", "/Shared/libs")],
            "input `libraryUploadPath`: `/Shared/libs` is neither a folder in a Unity Catalog volume nor a workspace folder".into(),
        ),
        (
            vec![("libraries", &glob), ("libraryUploadPath", "/Workspace/Repos/ci/project/dist")],
            "input `libraryUploadPath`: `/Workspace/Repos/ci/project/dist` is inside a Git folder".into(),
        ),
        (
            vec![("libraries", "requirements: requirements.txt")],
            "names a file on the agent: a requirements file is read by Databricks".into(),
        ),
        (
            vec![("libraries", "maven: a:b")],
            "line 1 (`maven: a:b`) is not Maven coordinates".into(),
        ),
        (
            vec![("libraries", "com.example:lib:1.0"), ("clusterMode", "serverless")],
            "input `libraries`: lists Maven coordinates, which serverless compute cannot install".into(),
        ),
        (
            vec![("libraries", "pandas==2.2.2\nnpm: left-pad@^1.3.0")],
            "input `libraries`: line 2 (`npm: left-pad@^1.3.0`) is not a PyPI requirement (PEP 508): `:` at character 4".into(),
        ),
        (
            vec![("libraries", "pypi: pandas>=2,\r\n")],
            "input `libraries`: line 1 (`pypi: pandas>=2,`) is not a PyPI requirement (PEP 508): it ends where a comparison".into(),
        ),
        (
            vec![("libraries", "-r requirements-dev.txt")],
            "line 1 (`-r requirements-dev.txt`) is not a PyPI requirement (PEP 508): `-` at character 1".into(),
        ),
        (
            vec![("runAs", "someone")],
            "input `runAs`: `someone` is neither a user's e-mail address nor a service principal's application id".into(),
        ),
        (
            vec![("clusterMode", "serverless"), ("libraries", "pandas"), ("environmentVersion", "latest")],
            "input `environmentVersion`: `latest` is not a serverless environment version".into(),
        ),
    ];
    for (inputs, message) in cases {
        let outcome = run(&emulator, &[("unit", PASSING)], &inputs).await;
        assert_eq!(outcome.code, 2, "{inputs:?}: {}", outcome.stdout);
        assert!(
            outcome.stdout.contains(&message),
            "{inputs:?}: {}",
            outcome.stdout
        );
    }
    assert_eq!(total_api_requests(&emulator), 0);
    emulator.shutdown().await;
}
