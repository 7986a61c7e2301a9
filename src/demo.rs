//! `databricks-azdo demo`: the article's whole flow, offline. Starts the workspace emulator,
//! makes a small Git project with test notebooks, then runs the pipeline's three steps
//! (repo update, notebook tests, cleanup) through the same code path as `task`. What they print
//! is shown as the web log shows it, or as the agent's stream (`--raw`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context as _};

use crate::emulator::{Emulator, EmulatorConfig};
use crate::host::{Host, NativeHost};
use crate::scenarios::{self, AuthScenario, ScenarioSecrets};
use crate::tasks::{self, RunOptions, TaskName};
use crate::terminal_log::Renderer;

pub const UNIT_NOTEBOOK: &str = r#"# Databricks notebook source
# MAGIC %md
# MAGIC Unit tests for the income model's feature code.

# COMMAND ----------

def bucket_income(income):
    return "high" if income >= 100_000 else "low"

# COMMAND ----------

assert bucket_income(150_000) == "high"
assert bucket_income(20_000) == "low"
print("2 checks passed")
dbutils.notebook.exit("2 checks passed")
"#;

pub const PARAMS_NOTEBOOK: &str = r#"# Databricks notebook source
import time

dbutils.widgets.text("env", "dev")
env = dbutils.widgets.get("env")

# COMMAND ----------

time.sleep(1.5)  # stands in for training on the test data set

# COMMAND ----------

assert env in ("dev", "staging", "ci"), f"unexpected env {env}"
dbutils.notebook.exit(f"integration test ran with env={env}")
"#;

pub const FAILING_NOTEBOOK: &str = r#"# Databricks notebook source
def predicted_income(age):
    return 1000 * age

# COMMAND ----------

assert predicted_income(30) == 31000, "model regression: predicted_income(30) is off"
"#;

/// A notebook that hands back a JUnit report of its unittest cases (each case reaches the
/// Tests tab), testing the project's wheel; the JUnit writer it imports; the package and the
/// script that builds its wheel (the pipeline's build step).
pub const UNITTEST_NOTEBOOK: &str =
    include_str!("../examples/income-model/tests/test_features_unittest.py");
const JUNIT_REPORT: &str = include_str!("../examples/income-model/tests/junit_report.py");
const PACKAGE: &str = include_str!("../examples/income-model/src/income_model/__init__.py");
const BUILD_WHEEL: &str = include_str!("../examples/income-model/build_wheel.py");

/// The volume folder the wheel is uploaded to.
const UPLOAD_PATH: &str = "/Volumes/main/ci/artifacts";

/// Runs `git` in `dir` with a pinned identity, ignoring the machine's configuration.
fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=Demo",
            "-c",
            "user.email=demo@example.com",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .with_context(|| format!("running git {}: is git installed?", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A Git project like the article's: notebooks under `test/`, one commit on `main`.
pub fn make_project(dir: &Path, failing: bool) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir.join("test"))?;
    std::fs::write(dir.join("test/unit.py"), UNIT_NOTEBOOK)?;
    std::fs::write(dir.join("test/integration.py"), PARAMS_NOTEBOOK)?;
    std::fs::write(
        dir.join("test/test_features_unittest.py"),
        UNITTEST_NOTEBOOK,
    )?;
    std::fs::write(dir.join("test/junit_report.py"), JUNIT_REPORT)?;
    std::fs::create_dir_all(dir.join("src/income_model"))?;
    std::fs::write(dir.join("src/income_model/__init__.py"), PACKAGE)?;
    std::fs::write(dir.join("build_wheel.py"), BUILD_WHEEL)?;
    if failing {
        std::fs::write(dir.join("test/model_regression.py"), FAILING_NOTEBOOK)?;
    }
    std::fs::write(dir.join("README.md"), "# income-model\n")?;
    git(dir, &["init", "-q"])?;
    git(dir, &["add", "."])?;
    git(dir, &["commit", "-q", "-m", "Add notebook tests"])?;
    git(dir, &["rev-parse", "HEAD"])
}

/// The pipeline's build step: the project's wheel, into `dist`.
fn build_wheel(project: &Path, dist: &Path, output: &Output) -> anyhow::Result<()> {
    output.line("##[section]Starting: Build the wheel (script: python3 build_wheel.py)");
    let built = std::process::Command::new("python3")
        .arg("build_wheel.py")
        .arg("--out")
        .arg(dist)
        .current_dir(project)
        .output()
        .context("running python3 build_wheel.py: is python3 installed?")?;
    if !built.status.success() {
        bail!(
            "building the wheel failed: {}",
            String::from_utf8_lossy(&built.stderr).trim()
        );
    }
    for line in String::from_utf8_lossy(&built.stdout).lines() {
        output.line(line);
    }
    output.end_step();
    output.line("##[section]Finishing: Build the wheel");
    output.line("");
    Ok(())
}

fn pipeline_env(
    base_url: &str,
    project: &Path,
    commit: &str,
    agent_temp: &Path,
) -> BTreeMap<String, String> {
    [
        ("TF_BUILD", "True"),
        ("AGENT_TEMPDIRECTORY", &agent_temp.display().to_string()),
        ("DATABRICKS_HOST", base_url),
        ("BUILD_SOURCEBRANCH", "refs/heads/main"),
        ("BUILD_SOURCEVERSION", commit),
        ("BUILD_REPOSITORY_URI", &project.display().to_string()),
        ("BUILD_DEFINITIONNAME", "income-model-ci"),
        ("BUILD_BUILDNUMBER", "20261128.1"),
        ("SYSTEM_JOBATTEMPT", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn with_inputs(
    env: &BTreeMap<String, String>,
    inputs: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let mut env = env.clone();
    for (name, value) in inputs {
        env.insert(
            format!("INPUT_{}", crate::pipeline::inputs::env_name(name)),
            value.to_string(),
        );
    }
    env
}

/// Where the demo's lines go: rendered as the web log shows them, or the agent's stream as it
/// is (`raw`).
#[derive(Clone)]
struct Output {
    renderer: Option<Arc<Mutex<Renderer>>>,
}

impl Output {
    fn new(raw: bool, debug: bool) -> Output {
        Output {
            renderer: (!raw).then(|| Arc::new(Mutex::new(Renderer::for_stdout(debug)))),
        }
    }

    fn line(&self, line: &str) {
        match &self.renderer {
            None => print_lines(&[line]),
            Some(renderer) => print_lines(&lock(renderer).line(line)),
        }
    }

    fn end_step(&self) {
        if let Some(renderer) = &self.renderer {
            print_lines(&lock(renderer).finish_step());
        }
    }

    fn host(&self, env: BTreeMap<String, String>) -> NativeHost {
        let host = NativeHost::for_process(env, false);
        match self.renderer {
            None => host,
            Some(_) => {
                let output = self.clone();
                host.with_line_sink(Box::new(move |line| output.line(line)))
            }
        }
    }
}

fn lock(renderer: &Mutex<Renderer>) -> std::sync::MutexGuard<'_, Renderer> {
    renderer
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn print_lines<S: AsRef<str>>(lines: &[S]) {
    let mut stdout = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(stdout, "{}", line.as_ref());
    }
    let _ = stdout.flush();
}

/// Runs the demo, signing in the way `auth` says; returns the exit code of the notebook test
/// step (0 unless `failing`). `raw`: print the agent's stream instead of rendering it.
pub async fn run(failing: bool, auth: AuthScenario, raw: bool) -> anyhow::Result<i32> {
    let system_debug = std::env::var("SYSTEM_DEBUG").ok();
    let debug = system_debug
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let output = Output::new(raw, debug);
    let scratch = tempfile::tempdir().context("creating a temporary folder")?;
    let project = scratch.path().join("income-model");
    let commit = make_project(&project, failing)?;
    let agent_temp = scratch.path().join("agent-temp");
    std::fs::create_dir(&agent_temp).context("creating the agent's temporary folder")?;
    let token = format!("demo-{:016x}", fastrand::u64(..));
    let secrets = ScenarioSecrets::random();
    let emulator = Emulator::start(
        EmulatorConfig {
            token: token.clone(),
            identities: scenarios::identities(auth, &secrets),
            ..EmulatorConfig::default()
        },
        "127.0.0.1:0".parse().expect("valid address"),
    )
    .await
    .context("starting the workspace emulator")?;
    output.line(&format!(
        "Workspace emulator listening on {}",
        emulator.base_url()
    ));
    output.line(&format!(
        "Git project with notebook tests at {} (commit {})",
        project.display(),
        &commit[..10]
    ));
    output.line("");

    let mut env = pipeline_env(&emulator.base_url(), &project, &commit, &agent_temp);
    env.extend(scenarios::agent_env(auth, &emulator.base_url(), &secrets));
    if let Some(system_debug) = system_debug {
        env.insert("SYSTEM_DEBUG".into(), system_debug);
    }
    if auth == AuthScenario::Pat {
        // From a variable group, as a secret.
        env.insert("SECRET_DATABRICKS_TOKEN".into(), token.clone());
    }
    let repo_path = "/Repos/ci/income-model";
    let dist = scratch.path().join("dist");
    build_wheel(&project, &dist, &output)?;
    let wheels = format!("{}/*.whl", dist.display());
    let mut notebooks = String::from("test/unit\ntest/integration\ntest/test_features_unittest");
    if failing {
        notebooks.push_str("\ntest/model_regression");
    }
    let steps: [(&str, TaskName, BTreeMap<String, String>); 3] = [
        (
            "Check out the branch into a Databricks Repo",
            TaskName::RepoUpdate,
            with_inputs(&env, &[("repoPath", repo_path), ("gitProvider", "gitHub")]),
        ),
        (
            "Run the notebook tests",
            TaskName::RunNotebookTest,
            with_inputs(
                &env,
                &[
                    ("repoPath", repo_path),
                    ("notebookPaths", &notebooks),
                    ("clusterMode", "existing"),
                    (
                        "existingClusterId",
                        &EmulatorConfig::default().known_cluster_id,
                    ),
                    ("parameters", "env=ci"),
                    ("timeoutMinutes", "10"),
                    ("libraries", &wheels),
                    ("libraryUploadPath", UPLOAD_PATH),
                ],
            ),
        ),
        (
            "Clean up the Repo (condition: always())",
            TaskName::RepoUpdate,
            with_inputs(&env, &[("repoPath", repo_path), ("mode", "delete")]),
        ),
    ];
    let mut test_exit = 0;
    for (title, task, env) in steps {
        output.line(&format!(
            "##[section]Starting: {title} ({}@1)",
            task.as_str()
        ));
        let host: Rc<dyn Host> = Rc::new(output.host(env));
        let code = tasks::run(task, host, &RunOptions::default()).await;
        output.end_step();
        output.line(&format!("##[section]Finishing: {title} (exit code {code})"));
        output.line("");
        if task == TaskName::RunNotebookTest {
            test_exit = code;
        } else if code != 0 {
            test_exit = test_exit.max(code);
        }
    }
    emulator.shutdown().await;
    Ok(test_exit)
}
