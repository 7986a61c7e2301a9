//! The two tasks: validated settings in, Databricks calls and log lines out. No I/O of their
//! own: they talk to Databricks through [`Client`] and to the user through [`Log`].

pub mod connection;
mod document;
pub mod failure;
pub mod git_ref;
pub mod names;
pub mod repo_update;
pub mod run_notebook_test;

use std::rc::Rc;

use crate::auth;
use crate::databricks::{user_agent, Client, RetryPolicy};
use crate::host::Host;
use crate::pipeline::{Inputs, Log, OutputMode, TaskResult};
use crate::rest::Caller;
use crate::tasks::names::variable;
pub use failure::{Failure, FailureKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskName {
    RepoUpdate,
    RunNotebookTest,
}

impl TaskName {
    pub const ALL: [TaskName; 2] = [TaskName::RepoUpdate, TaskName::RunNotebookTest];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskName::RepoUpdate => "DatabricksRepoUpdate",
            TaskName::RunNotebookTest => "DatabricksRunNotebookTest",
        }
    }

    pub fn parse(name: &str) -> Option<TaskName> {
        let name = name.split('@').next().unwrap_or(name);
        TaskName::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name))
    }
}

/// Options that come from how we were started rather than from task inputs.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub mode: OutputMode,
    /// Forces debug lines on (`--verbose`); `SYSTEM_DEBUG=true` turns them on too.
    pub verbose: bool,
    pub retry: RetryPolicy,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            mode: OutputMode::Agent,
            verbose: false,
            retry: RetryPolicy::default(),
        }
    }
}

/// Runs one task with the inputs found in the host's environment, and returns the process
/// exit code. This is the single entry point of the native `task` command, the CLI
/// subcommands and the wasm export.
pub async fn run(task: TaskName, host: Rc<dyn Host>, options: &RunOptions) -> i32 {
    let env = host.env();
    let inputs = Inputs::new(env);
    let debug = options.verbose
        || inputs
            .variable(variable::SYSTEM_DEBUG)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let log = Rc::new(Log::new(host.clone(), options.mode, debug));
    // Masking comes first: nothing is printed before every secret is registered.
    for secret in connection::secrets_in(env) {
        log.add_secret(&secret);
    }

    let outcome = match task {
        TaskName::RepoUpdate => match repo_update::Settings::from_inputs(&inputs, &*host) {
            Ok(settings) => {
                settings.warnings.iter().for_each(|w| log.warning(w));
                let client = make_client(&settings.connection, &host, &log, options);
                // Nothing to clean up on cancel: stop at once (a cleanup step with
                // `condition: always()` deletes a repo this step may have created).
                let update = repo_update::run(&settings, &client, &log);
                crate::host::or_cancelled(&*host, update)
                    .await
                    .unwrap_or_else(|| {
                        Err(Failure::new(
                            FailureKind::Canceled,
                            "The pipeline was cancelled; the repo update was stopped",
                        ))
                    })
            }
            Err(e) => Err(Failure::from(e)),
        },
        TaskName::RunNotebookTest => {
            match run_notebook_test::Settings::from_inputs(&inputs, &*host) {
                Ok(settings) => {
                    settings.warnings.iter().for_each(|w| log.warning(w));
                    let client = make_client(&settings.connection, &host, &log, options);
                    run_notebook_test::run(&settings, &client, &log).await
                }
                Err(e) => Err(Failure::from(e)),
            }
        }
    };

    let json = document::document(task, &outcome);
    match outcome {
        Ok(report) => {
            log.json_document(&json);
            let result = if report.issues {
                TaskResult::SucceededWithIssues
            } else {
                TaskResult::Succeeded
            };
            log.complete(result, &report.summary);
            0
        }
        Err(failure) => {
            failure.report(&log);
            log.json_document(&json);
            let result = match failure.kind {
                FailureKind::Canceled => TaskResult::Canceled,
                _ => TaskResult::Failed,
            };
            log.complete(result, &failure.message);
            failure.kind.exit_code()
        }
    }
}

fn make_client(
    connection: &connection::Connection,
    host: &Rc<dyn Host>,
    log: &Rc<Log>,
    options: &RunOptions,
) -> Client {
    let in_pipeline = Inputs::new(host.env())
        .variable(variable::TF_BUILD)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let agent = user_agent(in_pipeline || options.mode == OutputMode::Agent);
    if let Some(proxy) = &connection.proxy {
        let shown = crate::text::redact_url(proxy.url().as_str());
        log.debug(&format!("through the agent's proxy {shown}"));
    }
    let caller = |proxied: bool| {
        let mut caller = Caller::new(agent.clone(), options.retry.clone(), host.clone());
        configure(
            &mut caller,
            log,
            proxied.then_some(connection.proxy.as_ref()).flatten(),
        );
        caller
    };
    let secret_log = log.clone();
    let (info_log, debug_log) = (log.clone(), log.clone());
    let wiring = auth::Wiring {
        workspace: connection.url.clone(),
        host: host.clone(),
        caller: caller(true),
        direct_caller: caller(false),
        secrets: Rc::new(move |secret| secret_log.add_secret(secret)),
        signed_in: Rc::new(move |text| info_log.info(text)),
        renewed: Rc::new(move |text| debug_log.debug(text)),
    };
    let credential = auth::credential(&connection.sign_in, connection.who.clone(), wiring);
    Client::from_caller(connection.url.clone(), credential, caller(true))
}

/// Where a caller's notices, masking and traces go, and whether it uses the agent's proxy.
fn configure(
    caller: &mut Caller,
    log: &Rc<Log>,
    proxy: Option<&crate::host::proxy::ProxySettings>,
) {
    let notice_log = log.clone();
    caller.set_notice(Rc::new(move |text| notice_log.warning(text)));
    let mask_log = log.clone();
    caller.set_masker(Rc::new(move |text| {
        mask_log.mask(text).as_str().to_string()
    }));
    if let Some(proxy) = proxy {
        caller.set_proxy(proxy);
    }
    if log.debug_enabled() {
        let trace_log = log.clone();
        caller.set_trace(Rc::new(move |text| trace_log.debug(text)));
    }
}

/// What a successful task run leaves behind.
#[derive(Debug)]
pub struct Report {
    /// One line for `task.complete`.
    pub summary: String,
    /// True when it succeeded with warnings.
    pub issues: bool,
    /// The task's part of the `--output json` document (a JSON object; see `document`).
    pub details: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{connection, repo_update, run_notebook_test};
    use crate::pipeline::inputs::env_name;
    use crate::pipeline::Inputs;
    use crate::rest::scripted::test_host;

    fn env(inputs: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = inputs
            .iter()
            .map(|(name, value)| (format!("INPUT_{}", env_name(name)), value.to_string()))
            .collect();
        env.insert(
            "BUILD_REPOSITORY_URI".into(),
            "https://github.com/o/r".into(),
        );
        env.insert("BUILD_SOURCEBRANCH".into(), "refs/heads/main".into());
        env.insert("BUILD_SOURCEVERSION".into(), "a".repeat(40));
        env
    }

    /// Parses `inputs` with `parse` and checks what it read: only `declared` inputs, and every
    /// input that was set.
    fn check(
        inputs: &[(&str, &str)],
        declared: &[&str],
        parse: impl Fn(&Inputs) -> Result<(), crate::pipeline::InputError>,
    ) {
        let env = env(inputs);
        let read = Inputs::new(&env);
        parse(&read).unwrap();
        let asked = read.asked();
        for name in &asked {
            assert!(declared.contains(&name.as_str()), "{name} is not declared");
        }
        for (name, _) in inputs {
            assert!(
                asked.iter().any(|a| a == name),
                "{name} was set but not read"
            );
        }
    }

    /// Every input the code reads is one the task declares (`INPUTS`, which the manifest test
    /// compares with task.json): a name typed differently where it is read would be an input
    /// no pipeline can set.
    #[tokio::test]
    async fn the_tasks_read_only_the_inputs_they_declare() {
        let host = test_host();
        let common = [
            ("databricksHost", "https://adb-1.2.azuredatabricks.net"),
            ("databricksToken", "dapi1"),
        ];
        let repo_cases: &[&[(&str, &str)]] = &[
            &[
                ("mode", "createOrUpdate"),
                ("repoPath", "/Repos/ci/p"),
                ("repoUrl", "https://github.com/o/r"),
                ("gitProvider", "gitHub"),
                ("branch", "main"),
                ("expectedCommit", "abc1234"),
                ("onCommitMismatch", "fail"),
            ],
            &[("mode", "update"), ("repoId", "12"), ("tag", "v1")],
            &[("mode", "delete"), ("repoPath", "/Repos/ci/p")],
        ];
        for case in repo_cases {
            let inputs = [&common[..], case].concat();
            check(
                &inputs,
                &[connection::INPUTS, repo_update::INPUTS].concat(),
                |read| repo_update::Settings::from_inputs(read, &*host).map(drop),
            );
        }
        let run_cases: &[&[(&str, &str)]] = &[
            &[
                ("notebookPaths", "test/a"),
                ("repoPath", "/Repos/ci/p"),
                ("source", "workspace"),
                ("clusterMode", "existing"),
                ("existingClusterId", "0101-x"),
                ("parameters", "a=b"),
                ("timeoutMinutes", "5"),
                ("runName", "r"),
            ],
            &[
                ("notebookPaths", "test/a"),
                ("source", "git"),
                ("repoUrl", "https://github.com/o/r"),
                ("gitProvider", "gitHub"),
                ("clusterMode", "serverless"),
            ],
            &[
                ("notebookPaths", "/Repos/x/test/a"),
                ("clusterMode", "new"),
                (
                    "newClusterJson",
                    r#"{"spark_version":"x","node_type_id":"y","num_workers":1}"#,
                ),
            ],
        ];
        for case in run_cases {
            let inputs = [&common[..], case].concat();
            check(
                &inputs,
                &[connection::INPUTS, run_notebook_test::INPUTS].concat(),
                |read| run_notebook_test::Settings::from_inputs(read, &*host).map(drop),
            );
        }
    }
}
