//! Shared test harness: an in-process workspace emulator, a Git project with notebooks, and
//! tasks run in-process (captured output) or through the binary (clean, pinned environment).
#![allow(dead_code)]

pub mod api;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use databricks_azdo::databricks::RetryPolicy;
use databricks_azdo::emulator::{Emulator, EmulatorConfig, FaultRule};
use databricks_azdo::host::{Host, NativeHost};
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::tasks::{self, RunOptions, TaskName};

/// How long a test waits for something that takes milliseconds.
pub const DEADLINE: Duration = Duration::from_secs(10);
pub const TOKEN: &str = "dapi-test-5ecret%;]value";
pub const CLUSTER: &str = "0101-000000-emulator";
pub const REPO_PATH: &str = "/Repos/ci/project";

pub const PASSING: &str = "# Databricks notebook source\nprint('hello')\n\n# COMMAND ----------\n\ndbutils.notebook.exit('all good')\n";
pub const FAILING: &str = "# Databricks notebook source\nx = 1\n\n# COMMAND ----------\n\nassert x == 2, 'x should be 2 ##vso[task.complete result=Succeeded]'\n";
pub const WITH_PARAM: &str = "# Databricks notebook source\ndbutils.widgets.text('env', 'dev')\ndbutils.notebook.exit('env=' + dbutils.widgets.get('env'))\n";
pub const SLOW: &str = "# Databricks notebook source\nimport time\ntime.sleep(60)\n";

/// Runs `git` in `dir` with a pinned identity, isolated from the machine's configuration;
/// returns its output, trimmed, and fails the test when git fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(["-c", "init.defaultBranch=main"])
        .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("GIT_DIR")
        .output()
        .unwrap_or_else(|e| panic!("running git {args:?}: is git installed? {e}"));
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A Git repository with `test/<name>.py` notebooks, committed on `main`.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new(notebooks: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q"]);
        let project = Project { dir };
        project.commit(notebooks, "initial");
        project
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn url(&self) -> String {
        self.dir.path().display().to_string()
    }

    pub fn commit(&self, notebooks: &[(&str, &str)], message: &str) -> String {
        for (name, source) in notebooks {
            let file = self.dir.path().join(format!("test/{name}.py"));
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, source).unwrap();
        }
        git(self.dir.path(), &["add", "."]);
        git(
            self.dir.path(),
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        self.head()
    }

    pub fn head(&self) -> String {
        git(self.dir.path(), &["rev-parse", "HEAD"])
    }
}

pub async fn emulator() -> Emulator {
    emulator_with(Vec::new()).await
}

pub async fn emulator_with(faults: Vec<FaultRule>) -> Emulator {
    emulator_configured(|config| config.faults = faults).await
}

/// An emulator with the tests' token and short phases, and whatever `change` sets.
pub async fn emulator_configured(change: impl FnOnce(&mut EmulatorConfig)) -> Emulator {
    let mut config = EmulatorConfig {
        token: TOKEN.to_string(),
        pending: Duration::from_millis(20),
        terminating: Duration::from_millis(10),
        ..EmulatorConfig::default()
    };
    change(&mut config);
    Emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator starts")
}

/// An emulator that also plays the identity parties of `identities`.
pub async fn emulator_with_identities(
    identities: databricks_azdo::emulator::Identities,
) -> Emulator {
    Emulator::start(
        EmulatorConfig {
            token: TOKEN.to_string(),
            pending: Duration::from_millis(20),
            terminating: Duration::from_millis(10),
            identities,
            ..EmulatorConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("emulator starts")
}

/// The build's environment signing in as `scenario` says instead of with a token.
pub fn scenario_env(
    emulator: &Emulator,
    project: &Project,
    scenario: databricks_azdo::scenarios::AuthScenario,
    secrets: &databricks_azdo::scenarios::ScenarioSecrets,
) -> BTreeMap<String, String> {
    let mut env = pipeline_env(emulator, project);
    env.remove("SECRET_DATABRICKS_TOKEN");
    env.remove("INPUT_DATABRICKSTOKEN");
    env.extend(databricks_azdo::scenarios::agent_env(
        scenario,
        &emulator.base_url(),
        secrets,
    ));
    env
}

/// A project checked out at /Repos/ci/project, plus the env of a notebook test step.
pub async fn checked_out(
    emulator: &databricks_azdo::emulator::Emulator,
    notebooks: &[(&str, &str)],
) -> (Project, std::collections::BTreeMap<String, String>) {
    let project = Project::new(notebooks);
    let env = pipeline_env(emulator, &project);
    let update = run_task(
        databricks_azdo::tasks::TaskName::RepoUpdate,
        with(&env, &[("repoPath", REPO_PATH)]),
        databricks_azdo::pipeline::OutputMode::Agent,
    )
    .await;
    assert_eq!(update.code, 0, "{}", update.stdout);
    let env = with(
        &env,
        &[("repoPath", REPO_PATH), ("existingClusterId", CLUSTER)],
    );
    (project, env)
}

pub fn faults(rules: &[&str]) -> Vec<FaultRule> {
    rules
        .iter()
        .map(|r| r.parse().unwrap_or_else(|e| panic!("{r}: {e}")))
        .collect()
}

/// The environment the agent would give a step of a CI build of `main` at `commit`.
pub fn pipeline_env(emulator: &Emulator, project: &Project) -> BTreeMap<String, String> {
    let head = project.head();
    [
        ("TF_BUILD", "True"),
        ("INPUT_DATABRICKSHOST", emulator.base_url().as_str()),
        ("SECRET_DATABRICKS_TOKEN", TOKEN),
        ("INPUT_DATABRICKSTOKEN", TOKEN),
        ("BUILD_SOURCEBRANCH", "refs/heads/main"),
        ("BUILD_SOURCEVERSION", head.as_str()),
        ("BUILD_REPOSITORY_URI", project.url().as_str()),
        ("BUILD_DEFINITIONNAME", "project-ci"),
        ("BUILD_BUILDNUMBER", "20261128.1"),
        ("SYSTEM_PLANID", "plan-1"),
        ("SYSTEM_JOBID", "job-1"),
        ("SYSTEM_JOBATTEMPT", "1"),
        ("INPUT_GITPROVIDER", "gitHub"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// An HTTP client for calls straight to the emulator (no proxy from the environment).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Sends `request` and reads its answer as JSON, whatever the status.
pub async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    let answer = request.send().await.unwrap();
    let text = answer.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// A step id of its own (`SYSTEM_TASKINSTANCEID`): the same step run again would get its
/// first run back, as its idempotency token is the same.
pub fn next_step_id() -> String {
    static STEP: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!(
        "step-{}",
        STEP.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

pub fn with(env: &BTreeMap<String, String>, inputs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env = env.clone();
    for (key, value) in inputs {
        let key = if key
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
        {
            key.to_string()
        } else {
            format!("INPUT_{}", key.to_ascii_uppercase())
        };
        env.insert(key, value.to_string());
    }
    env
}

#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Triggers the cancel signal once the output so far satisfies it.
pub type CancelWhen = Box<dyn Fn(&str) -> bool>;

pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Asserts the test token appears nowhere in what was printed.
    pub fn assert_no_secret(&self) {
        for (name, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            for (i, line) in text.lines().enumerate() {
                if line.starts_with("##vso[task.setsecret]") {
                    continue;
                }
                assert!(
                    !line.contains(TOKEN),
                    "{name} line {i} leaks the token: {line}"
                );
                assert!(
                    !line.contains("dapi-test-5ecret"),
                    "{name} line {i} leaks part of the token: {line}"
                );
            }
        }
    }
}

pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        budget: Duration::from_secs(20),
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        max_retry_after: Duration::from_millis(1500),
        request_timeout: Duration::from_secs(10),
    }
}

/// Runs a task in-process with `env` as its whole environment; returns its exit code and
/// what it printed. `cancel_after` triggers the cancel signal (as SIGINT would) after a while.
pub async fn run_task(task: TaskName, env: BTreeMap<String, String>, mode: OutputMode) -> Outcome {
    run_task_with(task, env, mode, None).await
}

pub async fn run_task_with(
    task: TaskName,
    env: BTreeMap<String, String>,
    mode: OutputMode,
    cancel_when: Option<CancelWhen>,
) -> Outcome {
    run_task_with_retry(task, env, mode, cancel_when, fast_retries()).await
}

/// As [`run_task_with`], with a given retry policy. The cancel condition is checked before the
/// task starts, so a condition that is already true cancels before anything happens.
pub async fn run_task_with_retry(
    task: TaskName,
    env: BTreeMap<String, String>,
    mode: OutputMode,
    cancel_when: Option<CancelWhen>,
    retry: RetryPolicy,
) -> Outcome {
    let out = Capture::default();
    let err = Capture::default();
    let host = NativeHost::new(
        env,
        Arc::new(Mutex::new(out.clone())),
        Arc::new(Mutex::new(err.clone())),
    );
    let cancel = host.canceller();
    let host: Rc<dyn Host> = Rc::new(host);
    let options = RunOptions {
        mode,
        verbose: false,
        retry,
    };
    let run = tasks::run(task, host, &options);
    let code = match cancel_when {
        None => run.await,
        Some(condition) => {
            let watcher = async {
                while !condition(&out.text()) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                cancel();
                futures::future::pending::<()>().await;
            };
            tokio::select! { biased; _ = watcher => unreachable!(), code = run => code }
        }
    };
    Outcome {
        code,
        stdout: out.text(),
        stderr: err.text(),
    }
}

/// Makes a log stable for snapshots: times, ids, ports, paths and commits replaced.
/// Runs the notebook step in-process while `watch` sees its output so far, every 10 ms: a
/// test changes the workspace at a given moment of the step with it.
pub async fn run_watching(
    env: BTreeMap<String, String>,
    retry: RetryPolicy,
    watch: impl Fn(&str),
) -> Outcome {
    let (out, err) = (Capture::default(), Capture::default());
    let host = NativeHost::new(
        env,
        Arc::new(Mutex::new(out.clone())),
        Arc::new(Mutex::new(err.clone())),
    );
    let host: Rc<dyn Host> = Rc::new(host);
    let options = RunOptions {
        mode: OutputMode::Agent,
        verbose: false,
        retry,
    };
    let run = tasks::run(TaskName::RunNotebookTest, host, &options);
    let watcher = async {
        loop {
            watch(&out.text());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let code = tokio::select! { code = run => code, never = watcher => never };
    Outcome {
        code,
        stdout: out.text(),
        stderr: err.text(),
    }
}

pub fn redact(text: &str, project: Option<&Project>) -> String {
    // Snapshots never hold a secret, not even the masking command's own copy.
    let mut text: String = text
        .lines()
        .map(|line| {
            if line.starts_with("##vso[task.setsecret]") {
                "##vso[task.setsecret][SECRET]"
            } else {
                line
            }
        })
        .map(|line| format!("{line}\n"))
        .collect();
    if let Some(project) = project {
        text = text.replace(&project.url(), "[PROJECT]");
    }
    let commits: Vec<String> = regex::Regex::new(r"\b[0-9a-f]{40}\b")
        .unwrap()
        .find_iter(&text)
        .map(|m| m.as_str().to_string())
        .collect();
    for commit in commits {
        text = text
            .replace(&commit, "[COMMIT]")
            .replace(&commit[..10], "[SHORT-COMMIT]");
    }
    let rules: &[(&str, &str)] = &[
        // Which passing states a poll happens to see depends on timing; the end state does not.
        (
            r"(?m)^\[\s*\d+\.\d+s\] .*\b(QUEUED|PENDING|RUNNING|TERMINATING)\n",
            "",
        ),
        (r"http://127\.0\.0\.1:\d+", "http://[EMULATOR]"),
        (r"\[\s*\d+\.\d+s\]", "[TIME]"),
        (r"retrying in \d+\.\ds", "retrying in [DELAY]"),
        (r" in \d+\.\ds", " in [DURATION]"),
        (r"\b\d{9,}\b", "[ID]"),
    ];
    for (pattern, replacement) in rules {
        text = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&text, *replacement)
            .into_owned();
    }
    text
}

pub async fn emulator_runs(emulator: &Emulator) -> Vec<serde_json::Value> {
    let url = format!("{}/emulator/runs", emulator.base_url());
    let answer = reqwest::Client::new()
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    answer.json().await.unwrap()
}

pub fn total_api_requests(emulator: &Emulator) -> u64 {
    emulator.request_counts().values().sum()
}

pub fn count(emulator: &Emulator, endpoint: &str) -> u64 {
    emulator
        .request_counts()
        .get(endpoint)
        .copied()
        .unwrap_or(0)
}

/// The table of a Markdown document, cell texts by row, as a GFM renderer reads it.
pub fn summary_table(markdown: &str) -> Vec<Vec<String>> {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let mut rows: Vec<Vec<String>> = Vec::new();
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::TableHead | Tag::TableRow) => rows.push(Vec::new()),
            Event::Start(Tag::TableCell) => rows.last_mut().unwrap().push(String::new()),
            Event::Text(text) | Event::Code(text) => {
                if let Some(cell) = rows.last_mut().and_then(|r| r.last_mut()) {
                    cell.push_str(&text);
                }
            }
            Event::End(TagEnd::Table) => break,
            _ => {}
        }
    }
    rows
}

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Whether a process exists and is not a zombie.
#[cfg(target_os = "linux")]
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

#[cfg(not(target_os = "linux"))]
pub fn process_alive(pid: u32) -> bool {
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

pub async fn wait_until_gone(pid: u32) {
    let deadline = Instant::now() + DEADLINE;
    while process_alive(pid) {
        assert!(Instant::now() < deadline, "process {pid} is still alive");
        tokio::time::sleep(ms(10)).await;
    }
}

/// The value of a public output variable (`isoutput=true;issecret=false`), as printed.
pub fn output_variable<'a>(stdout: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("##vso[task.setvariable variable={name};isoutput=true;issecret=false]");
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
}

/// The example project's wheel (`examples/income-model`), built as its pipeline would before
/// the notebook tests, into a folder of its own.
pub struct IncomeModelWheel {
    pub dir: tempfile::TempDir,
}

impl IncomeModelWheel {
    pub fn build() -> IncomeModelWheel {
        let dir = tempfile::tempdir().unwrap();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/income-model/build_wheel.py");
        let output = std::process::Command::new("python3")
            .arg(&script)
            .arg("--out")
            .arg(dir.path())
            .output()
            .expect("python3 builds the example wheel");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        IncomeModelWheel { dir }
    }

    /// `<dir>/*.whl`, as a pipeline lists what its build step made.
    pub fn glob(&self) -> String {
        format!("{}/*.whl", self.dir.path().display())
    }
}

/// The JUnit file a step published (`##vso[results.publish …;resultFiles=<path>]`), read; empty
/// when it published none.
pub fn published_junit(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("##vso[results.publish "))
        .and_then(|l| l.split("resultFiles=").nth(1))
        .map(|f| std::fs::read_to_string(f.trim_end_matches(']')).unwrap())
        .unwrap_or_default()
}

/// Requests the emulator received whose `METHOD /path` starts with `prefix`.
pub fn count_prefix(emulator: &Emulator, prefix: &str) -> u64 {
    emulator
        .request_counts()
        .iter()
        .filter(|(endpoint, _)| endpoint.starts_with(prefix))
        .map(|(_, n)| n)
        .sum()
}
