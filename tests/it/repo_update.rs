use crate::common::*;
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::tasks::TaskName;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_the_repo_checks_out_the_branch_and_reports_the_head() {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    let env = with(
        &pipeline_env(&emulator, &project),
        &[("repoPath", REPO_PATH)],
    );

    let outcome = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    outcome.assert_no_secret();
    assert!(
        outcome.stdout.starts_with("##vso[task.setsecret]"),
        "secrets are masked first"
    );
    assert_eq!(
        output_variable(&outcome.stdout, "headCommitId"),
        Some(project.head().as_str())
    );
    assert_eq!(output_variable(&outcome.stdout, "branch"), Some("main"));
    assert_eq!(
        output_variable(&outcome.stdout, "repoPath"),
        Some(REPO_PATH)
    );
    assert_eq!(count(&emulator, "POST /api/2.0/repos"), 1);
    assert_eq!(
        count(&emulator, "POST /api/2.0/workspace/mkdirs"),
        1,
        "the parent folder /Repos/ci is created"
    );
    insta::assert_snapshot!(redact(&outcome.stdout, Some(&project)));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_pulls_new_commits_without_creating_again() {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    let env = with(
        &pipeline_env(&emulator, &project),
        &[("repoPath", REPO_PATH)],
    );
    assert_eq!(
        run_task(TaskName::RepoUpdate, env, OutputMode::Agent)
            .await
            .code,
        0
    );

    let new_head = project.commit(&[("more", PASSING)], "second");
    let env = with(
        &pipeline_env(&emulator, &project),
        &[("repoPath", REPO_PATH)],
    );
    let outcome = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    assert_eq!(
        output_variable(&outcome.stdout, "headCommitId"),
        Some(new_head.as_str())
    );
    assert!(
        !outcome.stdout.contains("##vso[task.logissue type=warning]"),
        "{}",
        outcome.stdout
    );
    assert_eq!(
        count(&emulator, "POST /api/2.0/repos"),
        1,
        "the repo is created once"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_out_a_tag_from_a_tag_build() {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    let tagged = project.head();
    git(&project.path(), &["tag", "v1.0"]);
    project.commit(&[("later", PASSING)], "after the tag");
    let env = with(
        &pipeline_env(&emulator, &project),
        &[
            ("repoPath", REPO_PATH),
            ("BUILD_SOURCEBRANCH", "refs/tags/v1.0"),
            ("BUILD_SOURCEVERSION", &tagged),
        ],
    );
    let outcome = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    assert!(outcome.stdout.contains("at tag v1.0"), "{}", outcome.stdout);
    assert_eq!(
        output_variable(&outcome.stdout, "headCommitId"),
        Some(tagged.as_str())
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_branch_fails_with_a_hint() {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    let env = with(
        &pipeline_env(&emulator, &project),
        &[("repoPath", REPO_PATH), ("branch", "no-such-branch")],
    );
    let outcome = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;
    assert_eq!(outcome.code, 3, "{}", outcome.stdout);
    let error = outcome
        .stdout
        .lines()
        .find(|l| l.starts_with("##vso[task.logissue type=error]"))
        .unwrap();
    assert!(
        error.contains("checking out branch no-such-branch"),
        "{error}"
    );
    assert!(
        error.contains("hint: check that the branch no-such-branch exists"),
        "{error}"
    );
    assert!(outcome
        .stdout
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .starts_with("##vso[task.complete result=Failed]"));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_mode_needs_an_existing_repo() {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    let env = with(
        &pipeline_env(&emulator, &project),
        &[("repoPath", REPO_PATH), ("mode", "update")],
    );
    let outcome = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;
    assert_eq!(outcome.code, 3, "{}", outcome.stdout);
    assert!(
        outcome.stdout.contains("/Repos/ci/project does not exist"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains("use mode `createOrUpdate`"),
        "{}",
        outcome.stdout
    );
    assert_eq!(count(&emulator, "POST /api/2.0/repos"), 0);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_the_repo_and_a_missing_repo_is_only_a_warning() {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    let env = pipeline_env(&emulator, &project);
    assert_eq!(
        run_task(
            TaskName::RepoUpdate,
            with(&env, &[("repoPath", REPO_PATH)]),
            OutputMode::Agent
        )
        .await
        .code,
        0
    );

    let delete = with(&env, &[("repoPath", REPO_PATH), ("mode", "delete")]);
    let first = run_task(TaskName::RepoUpdate, delete.clone(), OutputMode::Agent).await;
    assert_eq!(first.code, 0, "{}", first.stdout);
    assert!(
        first.stdout.contains("Deleted repo /Repos/ci/project"),
        "{}",
        first.stdout
    );

    let second = run_task(TaskName::RepoUpdate, delete, OutputMode::Agent).await;
    assert_eq!(second.code, 0, "{}", second.stdout);
    assert!(
        second.stdout.contains(
            "##vso[task.logissue type=warning]/Repos/ci/project does not exist; nothing to delete"
        ),
        "{}",
        second.stdout
    );
    assert!(
        second
            .stdout
            .contains("##vso[task.complete result=SucceededWithIssues]"),
        "{}",
        second.stdout
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_that_is_not_the_built_commit_warns_or_fails() {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    let built = project.head();
    project.commit(
        &[("pushed_later", PASSING)],
        "pushed while the pipeline waited",
    );
    let env = with(
        &pipeline_env(&emulator, &project),
        &[("repoPath", REPO_PATH), ("BUILD_SOURCEVERSION", &built)],
    );

    let warned = run_task(TaskName::RepoUpdate, env.clone(), OutputMode::Agent).await;
    assert_eq!(warned.code, 0, "{}", warned.stdout);
    assert!(
        warned
            .stdout
            .contains("is not the commit this pipeline built"),
        "{}",
        warned.stdout
    );
    assert!(warned.stdout.contains("result=SucceededWithIssues"));

    let failed = run_task(
        TaskName::RepoUpdate,
        with(&env, &[("onCommitMismatch", "fail")]),
        OutputMode::Agent,
    )
    .await;
    assert_eq!(failed.code, 1, "{}", failed.stdout);
    assert!(
        failed
            .stdout
            .contains("##vso[task.logissue type=error]the repo's head commit"),
        "{}",
        failed.stdout
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_is_reconciled_not_repeated() {
    let emulator = emulator_with(faults(&["POST /api/2.0/repos=drop-after*1"])).await;
    let project = Project::new(&[("unit", PASSING)]);
    let env = with(
        &pipeline_env(&emulator, &project),
        &[("repoPath", REPO_PATH)],
    );
    let outcome = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    assert_eq!(
        count(&emulator, "POST /api/2.0/repos"),
        1,
        "no second create: the path was looked up instead"
    );
    assert!(
        outcome.stdout.contains("retrying"),
        "the retry is visible: {}",
        outcome.stdout
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_provider_credentials_errors_carry_a_hint() {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    let env = with(
        &pipeline_env(&emulator, &project),
        &[
            ("repoPath", REPO_PATH),
            ("repoUrl", "https://github.com/example/private-project.git"),
            ("gitProvider", ""),
        ],
    );
    let outcome = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;
    assert_eq!(outcome.code, 3, "{}", outcome.stdout);
    assert!(
        outcome.stdout.contains("PERMISSION_DENIED"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome
            .stdout
            .contains("hint: the identity behind the token has no working Git credentials"),
        "{}",
        outcome.stdout
    );
    emulator.shutdown().await;
}
