//! Git folders as workspaces show them now (`DIRECTORY` in get-status, since the Git CLI) and
//! as they did before (`REPO`): the repos API by object id decides what is a Git folder, in
//! every task that resolves a path. Also Git folders outside `/Repos`, and sparse checkout.

use databricks_azdo::emulator::{Emulator, GitFolderObjects};
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::tasks::TaskName;
use serde_json::{json, Value};

use crate::common::*;

const BOTH_FORMS: [GitFolderObjects; 2] = [GitFolderObjects::Directory, GitFolderObjects::Repo];

async fn emulator_showing(form: GitFolderObjects) -> Emulator {
    emulator_configured(|config| config.git_folders = form).await
}

/// One request to the emulator's API, with the tests' token.
async fn api(emulator: &Emulator, method: reqwest::Method, path: &str, body: Value) -> Value {
    let response = http()
        .request(method, format!("{}{path}", emulator.base_url()))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

async fn get_status(emulator: &Emulator, path: &str) -> Value {
    api(
        emulator,
        reqwest::Method::GET,
        &format!("/api/2.0/workspace/get-status?path={path}&return_git_info=true"),
        Value::Null,
    )
    .await
}

/// Requests that would change a Git folder.
fn changes(emulator: &Emulator) -> u64 {
    count(emulator, "POST /api/2.0/repos")
        + count_prefix(emulator, "PATCH /api/2.0/repos")
        + count_prefix(emulator, "DELETE /api/2.0/repos")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_update_again_run_and_delete_with_either_form_of_get_status() {
    for form in BOTH_FORMS {
        let emulator = emulator_showing(form).await;
        let project = Project::new(&[("unit", PASSING)]);
        let env = with(
            &pipeline_env(&emulator, &project),
            &[("repoPath", REPO_PATH)],
        );

        let created = run_task(TaskName::RepoUpdate, env.clone(), OutputMode::Agent).await;
        assert_eq!(created.code, 0, "{form:?}: {}", created.stdout);
        let status = get_status(&emulator, REPO_PATH).await;
        let expected_type = match form {
            GitFolderObjects::Directory => "DIRECTORY",
            GitFolderObjects::Repo => "REPO",
        };
        assert_eq!(status["object_type"], expected_type, "{status}");
        let repo_id = output_variable(&created.stdout, "repoId")
            .unwrap()
            .to_string();
        assert_eq!(status["git_info"]["id"].to_string(), repo_id, "{status}");
        assert_eq!(
            status["git_info"].get("head_commit_id").is_some(),
            form == GitFolderObjects::Repo,
            "a Git CLI folder's get-status carries no Git state: {status}"
        );

        // The second run of the pipeline: found, not created again, and pulled.
        let new_head = project.commit(&[("more", PASSING)], "second");
        let env = with(
            &pipeline_env(&emulator, &project),
            &[("repoPath", REPO_PATH)],
        );
        let again = run_task(TaskName::RepoUpdate, env.clone(), OutputMode::Agent).await;
        assert_eq!(again.code, 0, "{form:?}: {}", again.stdout);
        assert!(
            again.stdout.contains(&format!("Found repo {REPO_PATH}")),
            "{}",
            again.stdout
        );
        assert_eq!(
            output_variable(&again.stdout, "headCommitId"),
            Some(new_head.as_str())
        );
        assert_eq!(count(&emulator, "POST /api/2.0/repos"), 1, "{form:?}");

        let tests = run_task(
            TaskName::RunNotebookTest,
            with(
                &env,
                &[
                    ("repoPath", REPO_PATH),
                    ("notebookPaths", "test/*"),
                    ("existingClusterId", CLUSTER),
                ],
            ),
            OutputMode::Agent,
        )
        .await;
        assert_eq!(tests.code, 0, "{form:?}: {}", tests.stdout);
        assert_eq!(output_variable(&tests.stdout, "testsPassed"), Some("2"));

        let delete = with(&env, &[("repoPath", REPO_PATH), ("mode", "delete")]);
        let deleted = run_task(TaskName::RepoUpdate, delete, OutputMode::Agent).await;
        assert_eq!(deleted.code, 0, "{form:?}: {}", deleted.stdout);
        assert!(
            deleted
                .stdout
                .contains("##vso[task.complete result=Succeeded]"),
            "{}",
            deleted.stdout
        );
        assert_eq!(
            count_prefix(&emulator, "DELETE /api/2.0/repos"),
            1,
            "{form:?}"
        );
        let (status, _) = raw_status(&emulator, REPO_PATH).await;
        assert_eq!(status, 404, "{form:?}: the Git folder is gone");
        emulator.shutdown().await;
    }
}

async fn raw_status(emulator: &Emulator, path: &str) -> (u16, String) {
    let response = http()
        .get(format!(
            "{}/api/2.0/workspace/get-status?path={path}",
            emulator.base_url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_folder_is_refused_and_left_as_it_is_in_every_mode() {
    for form in BOTH_FORMS {
        let emulator = emulator_showing(form).await;
        let project = Project::new(&[("unit", PASSING)]);
        let plain = "/Repos/ci/plain";
        api(
            &emulator,
            reqwest::Method::POST,
            "/api/2.0/workspace/mkdirs",
            json!({ "path": plain }),
        )
        .await;
        for mode in ["createOrUpdate", "update", "delete"] {
            let env = with(
                &pipeline_env(&emulator, &project),
                &[("repoPath", plain), ("mode", mode)],
            );
            let outcome = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;
            assert_eq!(outcome.code, 2, "{form:?} {mode}: {}", outcome.stdout);
            let errors: Vec<&str> = outcome
                .stdout
                .lines()
                .filter(|l| l.starts_with("##vso[task.logissue type=error]"))
                .collect();
            assert_eq!(errors.len(), 1, "{}", outcome.stdout);
            assert!(
                errors[0].contains(
                    "input `repoPath`: /Repos/ci/plain is a folder, not a Git folder (the repos API does not know it); nothing was changed"
                ),
                "{form:?} {mode}: {}",
                errors[0]
            );
        }
        assert_eq!(changes(&emulator), 0, "{form:?}: nothing was changed");
        assert_eq!(
            get_status(&emulator, plain).await["object_type"],
            "DIRECTORY"
        );
        emulator.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notebook_or_a_folder_inside_a_git_folder_is_not_a_git_folder() {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    let env = pipeline_env(&emulator, &project);
    // Outside /Repos, as under it a Git folder is exactly two levels down.
    let git_folder = "/Shared/project";
    let created = run_task(
        TaskName::RepoUpdate,
        with(&env, &[("repoPath", git_folder)]),
        OutputMode::Agent,
    )
    .await;
    assert_eq!(created.code, 0, "{}", created.stdout);
    let before = changes(&emulator);
    for (path, what) in [
        (
            format!("{git_folder}/test"),
            "is a folder, not a Git folder",
        ),
        (
            format!("{git_folder}/test/unit"),
            "is a notebook, not a Git folder",
        ),
    ] {
        for mode in ["createOrUpdate", "delete"] {
            let outcome = run_task(
                TaskName::RepoUpdate,
                with(&env, &[("repoPath", &path), ("mode", mode)]),
                OutputMode::Agent,
            )
            .await;
            assert_eq!(outcome.code, 2, "{path} {mode}: {}", outcome.stdout);
            assert!(
                outcome.stdout.contains(&format!("{path} {what}")),
                "{path} {mode}: {}",
                outcome.stdout
            );
        }
    }
    assert_eq!(changes(&emulator), before);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_is_reconciled_with_either_form() {
    for form in BOTH_FORMS {
        let emulator = emulator_configured(|config| {
            config.git_folders = form;
            config.faults = faults(&["POST /api/2.0/repos=drop-after*1"]);
        })
        .await;
        let project = Project::new(&[("unit", PASSING)]);
        let env = with(
            &pipeline_env(&emulator, &project),
            &[("repoPath", REPO_PATH)],
        );
        let outcome = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;
        assert_eq!(outcome.code, 0, "{form:?}: {}", outcome.stdout);
        assert_eq!(
            count(&emulator, "POST /api/2.0/repos"),
            1,
            "{form:?}: found by its path, not created twice"
        );
        emulator.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_folders_outside_repos_work_in_both_tasks() {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    let env = pipeline_env(&emulator, &project);
    for path in [
        "/Workspace/Users/emulator@example.com/project",
        "/Workspace/Shared/ci/project",
        "/Shared/project",
    ] {
        let created = run_task(
            TaskName::RepoUpdate,
            with(&env, &[("repoPath", path)]),
            OutputMode::Agent,
        )
        .await;
        assert_eq!(created.code, 0, "{path}: {}", created.stdout);
        let again = run_task(
            TaskName::RepoUpdate,
            with(&env, &[("repoPath", path)]),
            OutputMode::Agent,
        )
        .await;
        assert_eq!(again.code, 0, "{path}: {}", again.stdout);
        assert!(again.stdout.contains("Found repo"), "{}", again.stdout);

        let tests = run_task(
            TaskName::RunNotebookTest,
            with(
                &env,
                &[
                    ("repoPath", path),
                    ("notebookPaths", "test/unit"),
                    ("existingClusterId", CLUSTER),
                ],
            ),
            OutputMode::Agent,
        )
        .await;
        assert_eq!(tests.code, 0, "{path}: {}", tests.stdout);
        assert!(tests.stdout.contains("all good"), "{}", tests.stdout);

        let deleted = run_task(
            TaskName::RepoUpdate,
            with(&env, &[("repoPath", path), ("mode", "delete")]),
            OutputMode::Agent,
        )
        .await;
        assert_eq!(deleted.code, 0, "{path}: {}", deleted.stdout);
        assert!(
            deleted.stdout.contains("Deleted repo"),
            "{}",
            deleted.stdout
        );
    }
    assert_eq!(count(&emulator, "POST /api/2.0/repos"), 3);
    assert_eq!(count_prefix(&emulator, "DELETE /api/2.0/repos"), 3);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparse_checkout_is_set_at_create_and_changed_on_update() {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING), ("../other/elsewhere", PASSING)]);
    let env = pipeline_env(&emulator, &project);
    let created = run_task(
        TaskName::RepoUpdate,
        with(
            &env,
            &[("repoPath", REPO_PATH), ("sparseCheckout", "test\n")],
        ),
        OutputMode::Agent,
    )
    .await;
    assert_eq!(created.code, 0, "{}", created.stdout);
    assert!(
        created.stdout.contains("Sparse checkout: test"),
        "{}",
        created.stdout
    );
    let run = |notebooks: &'static str| {
        run_task(
            TaskName::RunNotebookTest,
            with(
                &env,
                &[
                    ("repoPath", REPO_PATH),
                    ("notebookPaths", notebooks),
                    ("existingClusterId", CLUSTER),
                    ("SYSTEM_TASKINSTANCEID", &next_step_id()),
                ],
            ),
            OutputMode::Agent,
        )
    };
    assert_eq!(run("test/unit").await.code, 0);
    let outside = run("other/elsewhere").await;
    assert_ne!(
        outside.code, 0,
        "a folder outside the patterns is not checked out: {}",
        outside.stdout
    );

    let changed = run_task(
        TaskName::RepoUpdate,
        with(
            &env,
            &[("repoPath", REPO_PATH), ("sparseCheckout", "test\r\nother")],
        ),
        OutputMode::Agent,
    )
    .await;
    assert_eq!(changed.code, 0, "{}", changed.stdout);
    let inside = run("other/elsewhere").await;
    assert_eq!(inside.code, 0, "{}", inside.stdout);

    // Without the input, the patterns stay as they are, and the log says so.
    let kept = run_task(
        TaskName::RepoUpdate,
        with(&env, &[("repoPath", REPO_PATH)]),
        OutputMode::Agent,
    )
    .await;
    assert_eq!(kept.code, 0, "{}", kept.stdout);
    assert!(
        kept.stdout
            .contains("keeps its sparse checkout (test, other)"),
        "{}",
        kept.stdout
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_checkout_cannot_be_made_sparse_and_is_left_as_it_is() {
    for form in BOTH_FORMS {
        let emulator = emulator_showing(form).await;
        let project = Project::new(&[("unit", PASSING)]);
        let env = pipeline_env(&emulator, &project);
        let created = run_task(
            TaskName::RepoUpdate,
            with(&env, &[("repoPath", REPO_PATH)]),
            OutputMode::Agent,
        )
        .await;
        assert_eq!(created.code, 0, "{}", created.stdout);
        let refused = run_task(
            TaskName::RepoUpdate,
            with(&env, &[("repoPath", REPO_PATH), ("sparseCheckout", "test")]),
            OutputMode::Agent,
        )
        .await;
        assert_eq!(refused.code, 2, "{}", refused.stdout);
        assert!(
            refused.stdout.contains(
                "input `sparseCheckout`: /Repos/ci/project was created without sparse checkout"
            ),
            "{}",
            refused.stdout
        );
        assert!(
            refused
                .stdout
                .contains("delete the Git folder (a step with `mode: delete`)"),
            "{}",
            refused.stdout
        );
        assert_eq!(
            count_prefix(&emulator, "PATCH /api/2.0/repos"),
            1,
            "{form:?}"
        );
        emulator.shutdown().await;
    }
}
