//! One step with 100 notebooks: one submit, one poll stream for the whole run, outputs fetched
//! concurrently with a bound.

use crate::common::*;
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::tasks::TaskName;

const NOTEBOOKS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_notebooks_in_one_run() {
    let emulator = emulator().await;
    let names: Vec<String> = (0..NOTEBOOKS).map(|i| format!("nb{i:03}")).collect();
    let notebooks: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), PASSING)).collect();
    let project = Project::new(&notebooks);
    let env = with(
        &pipeline_env(&emulator, &project),
        &[("repoPath", REPO_PATH)],
    );
    assert_eq!(
        run_task(TaskName::RepoUpdate, env.clone(), OutputMode::Agent)
            .await
            .code,
        0
    );

    let paths: Vec<String> = names.iter().map(|n| format!("test/{n}")).collect();
    let env = with(
        &env,
        &[
            ("existingClusterId", CLUSTER),
            ("notebookPaths", &paths.join("\n")),
        ],
    );
    // Slow answers make the fetches overlap, so the bound is what limits them.
    emulator.set_faults(faults(&["GET /api/2.2/jobs/runs/get-output=delay:50"]));
    let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    assert!(outcome
        .stdout
        .contains(&format!("{NOTEBOOKS} of {NOTEBOOKS} notebooks passed")));
    assert_eq!(
        count(&emulator, "POST /api/2.2/jobs/runs/submit"),
        1,
        "one submit"
    );
    let polls = count(&emulator, "GET /api/2.2/jobs/runs/get");
    assert!(
        polls < 40,
        "one poll stream for the whole run, not one per notebook: {polls} polls"
    );
    assert_eq!(
        count(&emulator, "GET /api/2.2/jobs/runs/get-output"),
        NOTEBOOKS as u64,
        "one output fetch each"
    );
    let concurrent = emulator.max_in_flight()["GET /api/2.2/jobs/runs/get-output"];
    assert!(
        (2..=8).contains(&concurrent),
        "outputs are fetched concurrently, at most 8 at once: {concurrent}"
    );
    let results: Vec<&str> = outcome
        .stdout
        .lines()
        .filter(|l| l.starts_with("PASS "))
        .collect();
    assert_eq!(results.len(), NOTEBOOKS);
    assert!(
        results[0].contains("test/nb000") && results[99].contains("test/nb099"),
        "reported in the listed order"
    );
    emulator.shutdown().await;
}
