//! Wire shapes of the endpoints we use. Every field we do not strictly need is optional and
//! every enum keeps unknown values, so a new server-side value never crashes a pipeline.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Declares a string enum that keeps unknown values as `Other(String)`.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($variant,)+
            Other(String),
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                match value.as_str() {
                    $($wire => $name::$variant,)+
                    _ => $name::Other(value),
                }
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.as_str().to_string()
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)+
                    $name::Other(value) => value,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

open_enum!(LifeCycleState {
    Queued = "QUEUED",
    Pending = "PENDING",
    Running = "RUNNING",
    Terminating = "TERMINATING",
    Terminated = "TERMINATED",
    Skipped = "SKIPPED",
    InternalError = "INTERNAL_ERROR",
    Blocked = "BLOCKED",
    WaitingForRetry = "WAITING_FOR_RETRY",
});

impl LifeCycleState {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            LifeCycleState::Terminated | LifeCycleState::Skipped | LifeCycleState::InternalError
        )
    }
}

open_enum!(ResultState {
    Success = "SUCCESS",
    Failed = "FAILED",
    TimedOut = "TIMEDOUT",
    Canceled = "CANCELED",
    MaximumConcurrentRunsReached = "MAXIMUM_CONCURRENT_RUNS_REACHED",
    Excluded = "EXCLUDED",
    SuccessWithFailures = "SUCCESS_WITH_FAILURES",
    UpstreamFailed = "UPSTREAM_FAILED",
    UpstreamCanceled = "UPSTREAM_CANCELED",
    Disabled = "DISABLED",
});

open_enum!(StatusState {
    Blocked = "BLOCKED",
    Pending = "PENDING",
    Queued = "QUEUED",
    Running = "RUNNING",
    Terminating = "TERMINATING",
    Terminated = "TERMINATED",
    Waiting = "WAITING",
});

open_enum!(ObjectType {
    Notebook = "NOTEBOOK",
    Directory = "DIRECTORY",
    Library = "LIBRARY",
    File = "FILE",
    Repo = "REPO",
    Dashboard = "DASHBOARD",
});

/// The Git providers Databricks knows, spelled as its API spells them (a Repo's and a
/// `git_source`'s `provider`/`git_provider`). One list for the tasks and the emulator.
pub const PROVIDERS: &[&str] = &[
    "gitHub",
    "bitbucketCloud",
    "gitLab",
    "azureDevOpsServices",
    "gitHubEnterprise",
    "bitbucketServer",
    "gitLabEnterpriseEdition",
    "awsCodeCommit",
];

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RepoInfo {
    pub id: i64,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub head_commit_id: Option<String>,
    /// Present for a Git folder created with sparse checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse_checkout: Option<SparseCheckout>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SparseCheckout {
    #[serde(default)]
    pub patterns: Vec<String>,
}

/// What is at a workspace path, as far as Git folders go.
#[derive(Clone, Debug, PartialEq)]
pub enum RepoAtPath {
    Nothing,
    GitFolder(RepoInfo),
    /// Something that is not a Git folder: a plain folder (or one inside a Git folder), a
    /// notebook, a file.
    Other(Option<ObjectType>),
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RepoList {
    #[serde(default)]
    pub repos: Vec<RepoInfo>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ObjectInfo {
    pub object_type: Option<ObjectType>,
    #[serde(default)]
    pub object_id: Option<i64>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ObjectList {
    #[serde(default)]
    pub objects: Vec<ObjectInfo>,
}

/// `workspace/export` without `direct_download`: the object's bytes, base64-encoded.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ExportedObject {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub file_type: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct RunState {
    #[serde(default)]
    pub life_cycle_state: Option<LifeCycleState>,
    #[serde(default)]
    pub result_state: Option<ResultState>,
    #[serde(default)]
    pub state_message: Option<String>,
    #[serde(default)]
    pub user_cancelled_or_timedout: Option<bool>,
}

/// `status`, the current form of a run's state (Jobs 2.1 and later); `state` is deprecated but
/// still sent. [`Run::reconcile_status`] folds it into `state`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct RunStatus {
    #[serde(default)]
    pub state: Option<StatusState>,
    #[serde(default)]
    pub termination_details: Option<TerminationDetails>,
    #[serde(default)]
    pub queue_details: Option<QueueDetails>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct TerminationDetails {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// Why a run waits in the queue (`ACTIVE_RUNS_LIMIT_REACHED`, …).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct QueueDetails {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// Folds `status` into `state`: the life cycle from `status.state` where it is given (the
/// more specific SKIPPED and INTERNAL_ERROR of `state` kept), a result from the termination
/// code where `state` has none, the queue's reason as the message of a queued run. A success
/// in `state` that `status` contradicts is no success: the gate stays red on data that does
/// not agree with itself.
fn reconcile(state: &mut RunState, status: Option<&RunStatus>) {
    let Some(status) = status else { return };
    let termination = status.termination_details.as_ref();
    if let Some(life_cycle) = &status.state {
        let from_status = match life_cycle {
            StatusState::Terminated => match &state.life_cycle_state {
                Some(LifeCycleState::Skipped | LifeCycleState::InternalError) => None,
                _ => Some(LifeCycleState::Terminated),
            },
            StatusState::Waiting => Some(LifeCycleState::WaitingForRetry),
            StatusState::Other(_) => None,
            known => Some(LifeCycleState::from(known.as_str().to_string())),
        };
        if let Some(life_cycle) = from_status {
            state.life_cycle_state = Some(life_cycle);
        }
    }
    if status.state == Some(StatusState::Queued) {
        if let Some(queue) = &status.queue_details {
            let reason = [queue.code.as_deref(), queue.message.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            if !reason.is_empty() {
                state.state_message = Some(reason);
            }
        }
    }
    let Some(code) = termination.and_then(|t| t.code.as_deref()) else {
        return;
    };
    let detail = termination
        .and_then(|t| t.message.as_deref())
        .filter(|m| !m.is_empty());
    match &state.result_state {
        None if state
            .life_cycle_state
            .as_ref()
            .is_some_and(LifeCycleState::is_terminal) =>
        {
            state.result_state = Some(match code {
                "SUCCESS" => ResultState::Success,
                "SUCCESS_WITH_FAILURES" => ResultState::SuccessWithFailures,
                "CANCELED" | "USER_CANCELED" => ResultState::Canceled,
                "SKIPPED" | "DISABLED" => ResultState::Excluded,
                _ => ResultState::Failed,
            });
            if state.state_message.is_none() {
                state.state_message = detail.map(str::to_string);
            }
        }
        Some(ResultState::Success) if code != "SUCCESS" => {
            state.result_state = Some(ResultState::Failed);
            state.state_message = Some(format!(
                "Databricks' answer contradicts itself: `state` says SUCCESS, `status` says {code}{}",
                detail.map(|d| format!(" ({d})")).unwrap_or_default()
            ));
        }
        _ => {}
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct NotebookTaskInfo {
    #[serde(default)]
    pub notebook_path: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RunTask {
    #[serde(default)]
    pub run_id: Option<i64>,
    #[serde(default)]
    pub task_key: Option<String>,
    #[serde(default)]
    pub state: RunState,
    #[serde(default)]
    pub status: Option<RunStatus>,
    #[serde(default)]
    pub run_page_url: Option<String>,
    #[serde(default)]
    pub notebook_task: Option<NotebookTaskInfo>,
    #[serde(default)]
    pub start_time: Option<i64>,
    #[serde(default)]
    pub end_time: Option<i64>,
    #[serde(default)]
    pub execution_duration: Option<i64>,
    #[serde(default)]
    pub setup_duration: Option<i64>,
    #[serde(default)]
    pub cleanup_duration: Option<i64>,
    #[serde(default)]
    pub run_duration: Option<i64>,
    /// 0 for the first attempt; a retry is another task run with the same key.
    #[serde(default)]
    pub attempt_number: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct GitSnapshot {
    #[serde(default)]
    pub used_commit: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct GitSourceInfo {
    #[serde(default)]
    pub git_snapshot: Option<GitSnapshot>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Run {
    #[serde(default)]
    pub run_id: Option<i64>,
    #[serde(default)]
    pub run_name: Option<String>,
    #[serde(default)]
    pub run_page_url: Option<String>,
    #[serde(default)]
    pub state: RunState,
    #[serde(default)]
    pub status: Option<RunStatus>,
    #[serde(default)]
    pub tasks: Vec<RunTask>,
    /// Jobs 2.2: more tasks than this answer holds (at most 100 a page) are on the page this
    /// token names.
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub git_source: Option<GitSourceInfo>,
    #[serde(default)]
    pub start_time: Option<i64>,
    #[serde(default)]
    pub end_time: Option<i64>,
    #[serde(default)]
    pub run_duration: Option<i64>,
}

impl Run {
    /// Folds `status` into `state`, for the run and each task (see `reconcile`).
    pub fn reconcile_status(&mut self) {
        reconcile(&mut self.state, self.status.as_ref());
        for task in &mut self.tasks {
            reconcile(&mut task.state, task.status.as_ref());
        }
    }

    pub fn life_cycle(&self) -> Option<&LifeCycleState> {
        self.state.life_cycle_state.as_ref()
    }

    pub fn is_terminal(&self) -> bool {
        self.life_cycle().is_some_and(LifeCycleState::is_terminal)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct NotebookOutput {
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub truncated: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RunOutput {
    #[serde(default)]
    pub notebook_output: Option<NotebookOutput>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_trace: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SubmitResponse {
    pub run_id: i64,
}

/// One `runs/submit` request in the multi-task form.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SubmitRun {
    pub run_name: String,
    pub tasks: Vec<SubmitTask>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_source: Option<GitSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_token: Option<String>,
    /// Serverless environments: `{environment_key, spec: {environment_version, dependencies}}`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<serde_json::Value>,
    /// `{"user_name": …}` or `{"service_principal_name": …}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as: Option<serde_json::Value>,
    /// `{"enabled": true}`: a workspace at its limit of active runs queues the run instead of
    /// skipping it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueSettings>,
    /// Serverless: `STANDARD` or `PERFORMANCE_OPTIMIZED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performance_target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_policy_id: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueueSettings {
    pub enabled: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SubmitTask {
    pub task_key: String,
    pub notebook_task: NotebookTask,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_cluster_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_cluster: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_retry_interval_millis: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<TaskDependency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_if: Option<RunIf>,
    /// `{"whl": …}`, `{"pypi": {"package": …}}`, … (clusters).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub libraries: Vec<serde_json::Value>,
    /// The run's environment the task runs in (serverless).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_key: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TaskDependency {
    pub task_key: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RunIf {
    /// Runs once the tasks it depends on are over, whatever their outcome.
    #[serde(rename = "ALL_DONE")]
    AllDone,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct NotebookTask {
    pub notebook_path: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub base_parameters: BTreeMap<String, String>,
    pub source: NotebookSource,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum NotebookSource {
    #[default]
    #[serde(rename = "WORKSPACE")]
    Workspace,
    #[serde(rename = "GIT")]
    Git,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GitSource {
    pub git_url: String,
    pub git_provider: String,
    #[serde(flatten)]
    pub reference: GitReference,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum GitReference {
    #[serde(rename = "git_commit")]
    Commit(String),
    #[serde(rename = "git_branch")]
    Branch(String),
    #[serde(rename = "git_tag")]
    Tag(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_enum_values_and_missing_fields_are_tolerated() {
        let run: Run = serde_json::from_str(
            r#"{"run_id": 5, "state": {"life_cycle_state": "HIBERNATING", "result_state": "MOSTLY_FINE"},
                "tasks": [{"task_key": "a"}], "surprise": [1, 2]}"#,
        )
        .unwrap();
        assert_eq!(
            run.life_cycle(),
            Some(&LifeCycleState::Other("HIBERNATING".into()))
        );
        assert_eq!(
            run.state.result_state,
            Some(ResultState::Other("MOSTLY_FINE".into()))
        );
        assert!(!run.is_terminal());
        assert_eq!(run.tasks[0].state, RunState::default());
        let empty: Run = serde_json::from_str("{}").unwrap();
        assert!(empty.life_cycle().is_none());
    }

    #[test]
    fn submit_serializes_in_the_multi_task_form() {
        let submit = SubmitRun {
            run_name: "ci".into(),
            tasks: vec![SubmitTask {
                task_key: "unit".into(),
                notebook_task: NotebookTask {
                    notebook_path: "test/unit".into(),
                    base_parameters: BTreeMap::from([("env".into(), "ci".into())]),
                    source: NotebookSource::Git,
                },
                existing_cluster_id: Some("c-1".into()),
                ..Default::default()
            }],
            git_source: Some(GitSource {
                git_url: "https://github.com/o/r".into(),
                git_provider: "gitHub".into(),
                reference: GitReference::Commit("abc".into()),
            }),
            timeout_seconds: Some(60),
            idempotency_token: Some("t".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&submit).unwrap(),
            serde_json::json!({
                "run_name": "ci",
                "tasks": [{"task_key": "unit", "existing_cluster_id": "c-1",
                           "notebook_task": {"notebook_path": "test/unit", "base_parameters": {"env": "ci"}, "source": "GIT"}}],
                "git_source": {"git_url": "https://github.com/o/r", "git_provider": "gitHub", "git_commit": "abc"},
                "timeout_seconds": 60,
                "idempotency_token": "t"
            })
        );
    }

    fn reconciled(answer: serde_json::Value) -> RunState {
        let mut run: Run = serde_json::from_value(answer).unwrap();
        run.reconcile_status();
        run.state
    }

    #[test]
    fn status_is_read_where_state_says_less() {
        let state = reconciled(serde_json::json!({
            "status": { "state": "TERMINATED", "termination_details": { "code": "SUCCESS", "type": "SUCCESS" } }
        }));
        assert_eq!(state.life_cycle_state, Some(LifeCycleState::Terminated));
        assert_eq!(state.result_state, Some(ResultState::Success));

        let state = reconciled(serde_json::json!({
            "status": { "state": "TERMINATED", "termination_details": { "code": "RUN_EXECUTION_ERROR", "message": "boom" } }
        }));
        assert_eq!(state.result_state, Some(ResultState::Failed));
        assert_eq!(state.state_message.as_deref(), Some("boom"));

        let state = reconciled(serde_json::json!({
            "state": { "life_cycle_state": "PENDING" },
            "status": { "state": "QUEUED", "queue_details": { "code": "ACTIVE_RUNS_LIMIT_REACHED", "message": "wait" } }
        }));
        assert_eq!(state.life_cycle_state, Some(LifeCycleState::Queued));
        assert_eq!(
            state.state_message.as_deref(),
            Some("ACTIVE_RUNS_LIMIT_REACHED: wait")
        );

        let state = reconciled(serde_json::json!({
            "state": { "life_cycle_state": "INTERNAL_ERROR", "result_state": "FAILED" },
            "status": { "state": "TERMINATED", "termination_details": { "code": "DRIVER_ERROR" } }
        }));
        assert_eq!(state.life_cycle_state, Some(LifeCycleState::InternalError));
        assert_eq!(state.result_state, Some(ResultState::Failed));

        let state = reconciled(serde_json::json!({
            "state": { "life_cycle_state": "WAITING_FOR_RETRY" },
            "status": { "state": "WAITING" }
        }));
        assert_eq!(
            state.life_cycle_state,
            Some(LifeCycleState::WaitingForRetry)
        );
    }

    #[test]
    fn a_success_that_status_contradicts_is_no_success() {
        let state = reconciled(serde_json::json!({
            "state": { "life_cycle_state": "TERMINATED", "result_state": "SUCCESS" },
            "status": { "state": "TERMINATED", "termination_details": { "code": "CLUSTER_ERROR", "message": "lost" } }
        }));
        assert_eq!(state.result_state, Some(ResultState::Failed));
        let message = state.state_message.unwrap();
        assert!(
            message.contains("`status` says CLUSTER_ERROR (lost)"),
            "{message}"
        );
        // Without status, or agreeing, nothing changes.
        for status in [
            serde_json::Value::Null,
            serde_json::json!({ "state": "TERMINATED", "termination_details": { "code": "SUCCESS" } }),
        ] {
            let state = reconciled(serde_json::json!({
                "state": { "life_cycle_state": "TERMINATED", "result_state": "SUCCESS" },
                "status": status
            }));
            assert_eq!(state.result_state, Some(ResultState::Success));
        }
    }
}
