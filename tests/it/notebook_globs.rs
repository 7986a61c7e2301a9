//! `notebookPaths` globs: resolved under the Repo with the workspace list API (`source:
//! workspace`), or in the agent's checkout of the commit being built (`source: git`); the log
//! lists what matched, exclusions leave notebooks out, and a line that matches nothing is an
//! error naming it, before any run is submitted.

use crate::common::*;
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::tasks::TaskName;

const HELPER: &str = "def helper():\n    return 1\n";

/// Notebooks, and a plain Python module (no notebook header) next to them: never matched.
const FILES: [(&str, &str); 6] = [
    ("test_a", PASSING),
    ("test_b", PASSING),
    ("slow/test_big", PASSING),
    ("unit/test_c", PASSING),
    ("helpers_nb", PASSING),
    ("test_helpers", HELPER),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_globs_are_resolved_under_the_repo() {
    let emulator = emulator().await;
    let (_project, env) = checked_out(&emulator, &FILES).await;
    let env = with(
        &env,
        &[
            ("repoPath", REPO_PATH),
            ("existingClusterId", CLUSTER),
            ("notebookPaths", "test/**/test_*\n!test/slow/**"),
        ],
    );
    let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    let log = &outcome.stdout;
    assert!(log.contains("notebookPaths: 3 notebooks matched"), "{log}");
    for name in ["test/test_a", "test/test_b", "test/unit/test_c"] {
        assert!(
            log.contains(&format!("  {REPO_PATH}/{name}\n")),
            "{name}: {log}"
        );
        assert!(
            log.contains(&format!("PASS {REPO_PATH}/{name}:")),
            "{name}: {log}"
        );
    }
    assert!(
        !log.contains("test_big") && !log.contains("test_helpers"),
        "{log}"
    );
    assert_eq!(count(&emulator, "POST /api/2.2/jobs/runs/submit"), 1);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_globs_are_resolved_in_the_agents_checkout() {
    let emulator = emulator().await;
    let project = Project::new(&FILES);
    let env = with(
        &pipeline_env(&emulator, &project),
        &[
            ("source", "git"),
            ("existingClusterId", CLUSTER),
            ("notebookPaths", "test/**/test_*\n!test/slow/**"),
            (
                "BUILD_SOURCESDIRECTORY",
                &project.path().display().to_string(),
            ),
        ],
    );
    let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    let log = &outcome.stdout;
    assert!(log.contains("notebookPaths: 3 notebooks matched\n  test/test_a\n  test/test_b\n  test/unit/test_c\n"), "{log}");
    assert!(
        !log.contains("test_helpers"),
        "a module without the notebook header is no notebook: {log}"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_glob_that_matches_nothing_is_an_error_naming_its_line_before_any_run() {
    let emulator = emulator().await;
    let (project, env) = checked_out(&emulator, &FILES).await;
    let cases = [
        (
            vec![("repoPath", REPO_PATH), ("notebookPaths", "test/test_a\nspec/**/test_*")],
            "input `notebookPaths`: line 2 (`spec/**/test_*`) matches no notebook under /Repos/ci/project/spec",
        ),
        (
            vec![("repoPath", REPO_PATH), ("notebookPaths", "test/slow/*\n!test/slow/**")],
            "line 1 (`test/slow/*`) matches 1 notebooks, all left out by the `!` lines",
        ),
        (
            vec![("source", "git"), ("notebookPaths", "test/*")],
            "variable `Build.SourcesDirectory`: is not set",
        ),
    ];
    for (inputs, expected) in cases {
        let mut inputs = inputs;
        inputs.push(("existingClusterId", CLUSTER));
        let outcome = run_task(
            TaskName::RunNotebookTest,
            with(&env, &inputs),
            OutputMode::Agent,
        )
        .await;
        assert_eq!(outcome.code, 2, "{expected}: {}", outcome.stdout);
        assert!(
            outcome.stdout.contains(expected),
            "{expected}: {}",
            outcome.stdout
        );
    }
    let git_nothing = with(
        &env,
        &[
            ("source", "git"),
            ("existingClusterId", CLUSTER),
            ("notebookPaths", "spec/*"),
            (
                "BUILD_SOURCESDIRECTORY",
                &project.path().display().to_string(),
            ),
        ],
    );
    let outcome = run_task(TaskName::RunNotebookTest, git_nothing, OutputMode::Agent).await;
    assert_eq!(outcome.code, 2, "{}", outcome.stdout);
    assert!(
        outcome
            .stdout
            .contains("line 1 (`spec/*`) matches no notebook under spec"),
        "{}",
        outcome.stdout
    );
    assert_eq!(
        count(&emulator, "POST /api/2.2/jobs/runs/submit"),
        0,
        "no run was submitted"
    );
    emulator.shutdown().await;
}

/// In the agent's checkout, a file is read (for its notebook header) only when its name could
/// match: a file under the glob's base that cannot (here a FIFO, which would block a reader
/// for ever) is never opened. And a glob base that is a symbolic link, out of the checkout or
/// not, is not followed: it matches nothing, as a link inside the tree.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_globs_read_only_what_may_match_and_never_follow_a_link() {
    let emulator = emulator().await;
    let project = Project::new(&FILES);
    let checkout = project.path();
    let fifo = checkout.join("test/never_read.py");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("test_stolen.py"), PASSING).unwrap();
    std::os::unix::fs::symlink(outside.path(), checkout.join("linked")).unwrap();
    std::os::unix::fs::symlink(outside.path(), checkout.join("test/linked_inside")).unwrap();
    let run = |paths: &str| {
        run_task(
            TaskName::RunNotebookTest,
            with(
                &pipeline_env(&emulator, &project),
                &[
                    ("source", "git"),
                    ("existingClusterId", CLUSTER),
                    ("notebookPaths", paths),
                    ("BUILD_SOURCESDIRECTORY", &checkout.display().to_string()),
                    ("SYSTEM_TASKINSTANCEID", &next_step_id()),
                ],
            ),
            OutputMode::Agent,
        )
    };
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(60), run("test/test_*"))
        .await
        .expect("the FIFO was never opened");
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    assert!(
        outcome
            .stdout
            .contains("notebookPaths: 2 notebooks matched"),
        "{}",
        outcome.stdout
    );
    for linked in ["linked/*", "test/linked_inside/*"] {
        let outcome = run(linked).await;
        assert_eq!(outcome.code, 2, "{linked}: {}", outcome.stdout);
        assert!(
            outcome.stdout.contains("matches no notebook under"),
            "{linked}: {}",
            outcome.stdout
        );
    }
    emulator.shutdown().await;
}
