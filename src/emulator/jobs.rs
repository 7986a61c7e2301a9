//! The Jobs API subset for one-time runs (`/api/{2.0,2.1,2.2}/jobs/runs/*`): request
//! validation and the JSON views of runs. The runs themselves live in `runs`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult, JsonBody, Query};
use super::git::GitRef;
use super::libraries::{self, Library};
use super::repos::provider_from;
use super::runs::{
    self, Compute, Found, GitSourceSpec, NotebookSource, RunRecord, RunSpec, RunState, StopReason,
    TaskRun, TaskSpec,
};
use super::schedule::{self, RetryPolicy, RunIf};
use super::state::{lock, Shared};
use super::workspace::{USER, WORKSPACE_ID};

/// Task key of a run submitted in the 2.0 single-task form.
const SINGLE_TASK_KEY: &str = "notebook_task";

/// Task types of the Jobs API other than `notebook_task`; the emulator runs none of them.
const OTHER_TASK_TYPES: [&str; 14] = [
    "spark_python_task",
    "spark_jar_task",
    "spark_submit_task",
    "python_wheel_task",
    "sql_task",
    "dbt_task",
    "pipeline_task",
    "run_job_task",
    "condition_task",
    "for_each_task",
    "clean_rooms_notebook_task",
    "dashboard_task",
    "power_bi_task",
    "gen_ai_compute_task",
];

const MULTI_TASK_OUTPUT: &str = "Retrieving the output of runs with multiple tasks is not supported. Please retrieve the output of each individual task run instead.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ApiVersion {
    V2_0,
    V2_1,
    V2_2,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V2_0 => "2.0",
            ApiVersion::V2_1 => "2.1",
            ApiVersion::V2_2 => "2.2",
        }
    }

    /// `status` objects arrived with Jobs 2.1.
    fn has_status(self) -> bool {
        self != ApiVersion::V2_0
    }
}

pub(crate) fn routes(version: ApiVersion) -> Router<Arc<Shared>> {
    let base = format!("/api/{}/jobs/runs", version.as_str());
    Router::new()
        .route(&format!("{base}/submit"), post(submit))
        .route(&format!("{base}/get"), get(get_run))
        .route(&format!("{base}/get-output"), get(get_output))
        .route(&format!("{base}/cancel"), post(cancel))
        .layer(Extension(version))
}

fn no_such_run(id: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!("Run {id} does not exist."))
}

// ----- runs/submit -----

#[derive(Default, Deserialize)]
#[serde(default)]
struct SubmitRequest {
    run_name: Option<String>,
    tasks: Option<Vec<TaskRequest>>,
    git_source: Option<GitSourceRequest>,
    timeout_seconds: Option<i64>,
    idempotency_token: Option<String>,
    environments: Option<Vec<Value>>,
    run_as: Option<Value>,
    queue: Option<QueueRequest>,
    performance_target: Option<String>,
    budget_policy_id: Option<String>,
    /// The 2.0 single-task form puts the task's fields at the top level.
    #[serde(flatten)]
    single_task: TaskRequest,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct QueueRequest {
    enabled: Option<bool>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct TaskRequest {
    task_key: Option<String>,
    notebook_task: Option<NotebookTaskRequest>,
    existing_cluster_id: Option<String>,
    new_cluster: Option<Value>,
    job_cluster_key: Option<String>,
    timeout_seconds: Option<i64>,
    depends_on: Option<Vec<Value>>,
    run_if: Option<String>,
    max_retries: Option<i64>,
    min_retry_interval_millis: Option<i64>,
    retry_on_timeout: Option<bool>,
    libraries: Option<Vec<Value>>,
    environment_key: Option<String>,
    /// Everything else, to recognise task types the emulator does not run.
    #[serde(flatten)]
    other: Map<String, Value>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct NotebookTaskRequest {
    notebook_path: Option<String>,
    base_parameters: Option<Map<String, Value>>,
    source: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct GitSourceRequest {
    git_url: Option<String>,
    git_provider: Option<String>,
    git_branch: Option<String>,
    git_tag: Option<String>,
    git_commit: Option<String>,
}

async fn submit(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    JsonBody(request): JsonBody<SubmitRequest>,
) -> ApiResult<Json<Value>> {
    let spec = validate_submit(version, request, &shared.known_cluster_id)?;
    let (run_id, created) = lock(&shared.runs).create(spec);
    if created {
        runs::launch(&shared, run_id);
    }
    Ok(Json(json!({ "run_id": run_id })))
}

fn validate_submit(
    version: ApiVersion,
    request: SubmitRequest,
    known_cluster: &str,
) -> ApiResult<RunSpec> {
    let single_task = &request.single_task;
    let single_task_form = version == ApiVersion::V2_0
        && request.tasks.is_none()
        && (single_task.notebook_task.is_some()
            || OTHER_TASK_TYPES
                .iter()
                .any(|t| single_task.other.contains_key(*t)));
    let tasks = if single_task_form {
        let mut task = request.single_task;
        task.task_key = Some(SINGLE_TASK_KEY.to_string());
        vec![task]
    } else {
        request.tasks.unwrap_or_default()
    };
    if tasks.is_empty() {
        return Err(ApiError::invalid(
            "A run must have at least one task: tasks is empty.",
        ));
    }

    let git_source = request.git_source.map(validate_git_source).transpose()?;
    let environments = libraries::parse_environments(request.environments)?;
    let run_as = libraries::parse_run_as(request.run_as.as_ref())?;
    let mut keys = HashSet::new();
    let tasks = tasks
        .into_iter()
        .map(|task| {
            let task = validate_task(task, git_source.is_some(), known_cluster, &environments)?;
            if !keys.insert(task.task_key.clone()) {
                return Err(ApiError::invalid(format!(
                    "Task key '{}' is used by more than one task. Task keys must be unique within a run.",
                    task.task_key
                )));
            }
            Ok(task)
        })
        .collect::<ApiResult<Vec<_>>>()?;
    schedule::check_dependencies(
        tasks
            .iter()
            .map(|t| (t.task_key.as_str(), t.depends_on.as_slice())),
    )?;

    let timeout_seconds = non_negative(request.timeout_seconds, "timeout_seconds")?;
    if let Some(token) = &request.idempotency_token {
        if token.chars().count() > 64 {
            return Err(ApiError::invalid(
                "The idempotency token is too long: at most 64 characters are allowed.",
            ));
        }
    }
    let queue = match request.queue {
        None => false,
        Some(QueueRequest {
            enabled: Some(enabled),
        }) => enabled,
        Some(QueueRequest { enabled: None }) => {
            return Err(ApiError::invalid("Missing required field: queue.enabled"))
        }
    };
    let performance_target = match request.performance_target.as_deref() {
        None => None,
        Some(target @ ("STANDARD" | "PERFORMANCE_OPTIMIZED")) => Some(target.to_string()),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Invalid performance_target '{other}'. Valid values are: STANDARD, PERFORMANCE_OPTIMIZED."
            )))
        }
    };
    let budget_policy_id = match request.budget_policy_id {
        Some(id) if id.trim().is_empty() => {
            return Err(ApiError::invalid("budget_policy_id must not be empty."))
        }
        other => other,
    };
    Ok(RunSpec {
        run_name: request
            .run_name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "Untitled".into()),
        tasks,
        git_source,
        timeout_seconds,
        idempotency_token: request.idempotency_token.filter(|t| !t.is_empty()),
        single_task_form,
        run_as,
        queue,
        performance_target,
        budget_policy_id,
    })
}

fn non_negative(value: Option<i64>, field: &str) -> ApiResult<u64> {
    match value {
        None => Ok(0),
        Some(v) => u64::try_from(v).map_err(|_| {
            ApiError::invalid(format!("Invalid {field}: {v}. It must not be negative."))
        }),
    }
}

fn is_valid_task_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 100
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn validate_task(
    task: TaskRequest,
    has_git_source: bool,
    known_cluster: &str,
    environments: &BTreeMap<String, Vec<Library>>,
) -> ApiResult<TaskSpec> {
    let key = task
        .task_key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::invalid("Missing required field: task_key"))?;
    if !is_valid_task_key(&key) {
        return Err(ApiError::invalid(format!(
            "Invalid task_key '{key}': it must match ^[\\w\\-.]+$ and be at most 100 characters long."
        )));
    }
    let other_type = OTHER_TASK_TYPES
        .iter()
        .find(|t| task.other.contains_key(**t));
    let notebook = match (task.notebook_task, other_type) {
        (Some(_), Some(other)) => {
            return Err(ApiError::invalid(format!(
                "Task {key} must have exactly one task type, but both notebook_task and {other} are set."
            )))
        }
        (None, Some(other)) => {
            return Err(ApiError::invalid(format!(
                "Task {key}: {other} is not supported by the emulator; only notebook_task is."
            )))
        }
        (None, None) => {
            return Err(ApiError::invalid(format!(
                "Task {key} has no task type: it must set notebook_task."
            )))
        }
        (Some(notebook), None) => notebook,
    };

    let notebook_path = notebook
        .notebook_path
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Task {key}: missing required field notebook_task.notebook_path."
            ))
        })?;
    let source = match notebook.source.as_deref() {
        None if has_git_source => NotebookSource::Git,
        None | Some("WORKSPACE") => NotebookSource::Workspace,
        Some("GIT") => NotebookSource::Git,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Invalid notebook_task.source '{other}' in task {key}: expected WORKSPACE or GIT."
            )))
        }
    };
    match source {
        NotebookSource::Git if !has_git_source => {
            return Err(ApiError::invalid(format!(
                "Task {key} has source GIT, but the run has no git_source."
            )))
        }
        NotebookSource::Workspace if !notebook_path.starts_with('/') => {
            return Err(ApiError::invalid(format!(
                "Invalid notebook_path '{notebook_path}' in task {key}: only absolute paths are supported for workspace notebooks. Paths must begin with '/'."
            )))
        }
        NotebookSource::Git if notebook_path.starts_with('/') => {
            return Err(ApiError::invalid(format!(
                "Invalid notebook_path '{notebook_path}' in task {key}: notebooks from git_source are addressed relative to the repository root."
            )))
        }
        _ => {}
    }
    let base_parameters = notebook
        .base_parameters
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| match value {
            Value::String(s) => Ok((name, s)),
            Value::Number(_) | Value::Bool(_) => Ok((name, value.to_string())),
            _ => Err(ApiError::invalid(format!(
                "Task {key}: base_parameters.{name} must be a string."
            ))),
        })
        .collect::<ApiResult<BTreeMap<_, _>>>()?;

    let compute = validate_compute(
        &key,
        task.existing_cluster_id,
        task.new_cluster,
        task.job_cluster_key,
        known_cluster,
    )?;
    let timeout_seconds = non_negative(task.timeout_seconds, "timeout_seconds")?;
    let depends_on = schedule::parse_depends_on(&key, task.depends_on)?;
    let run_if = RunIf::parse(&key, task.run_if.as_deref())?;
    let retry = RetryPolicy::parse(
        &key,
        task.max_retries,
        task.min_retry_interval_millis,
        task.retry_on_timeout,
    )?;
    let own = libraries::parse_libraries(&key, task.libraries)?;
    let serverless = matches!(compute, Compute::Serverless);
    let libraries = match (task.environment_key.filter(|k| !k.is_empty()), serverless) {
        (Some(_), false) => {
            return Err(ApiError::invalid(format!(
                "Task {key}: environment_key is only for tasks on serverless compute."
            )))
        }
        (Some(environment), true) => match environments.get(&environment) {
            Some(dependencies) if own.is_empty() => dependencies.clone(),
            Some(_) => {
                return Err(ApiError::invalid(format!(
                    "Task {key}: Libraries field is not supported for serverless task, please specify libraries in environment."
                )))
            }
            None => {
                return Err(ApiError::invalid(format!(
                    "Task {key}: environment_key {environment} does not match any environment of the run."
                )))
            }
        },
        (None, true) if !own.is_empty() => {
            return Err(ApiError::invalid(format!(
                "Task {key}: Libraries field is not supported for serverless task, please specify libraries in environment."
            )))
        }
        (None, _) => own,
    };
    Ok(TaskSpec {
        task_key: key,
        notebook_path,
        source,
        base_parameters,
        compute,
        timeout_seconds,
        depends_on,
        run_if,
        retry,
        libraries,
    })
}

fn validate_compute(
    key: &str,
    existing: Option<String>,
    new_cluster: Option<Value>,
    job_cluster_key: Option<String>,
    known_cluster: &str,
) -> ApiResult<Compute> {
    match (existing, new_cluster, job_cluster_key) {
        (None, None, None) => Ok(Compute::Serverless),
        (Some(id), None, None) if id == known_cluster => Ok(Compute::ExistingCluster(id)),
        (Some(id), None, None) => Err(ApiError::invalid(format!("Cluster {id} does not exist"))),
        (None, Some(cluster), None) => {
            let spec = cluster.as_object().ok_or_else(|| {
                ApiError::invalid(format!("Task {key}: new_cluster must be an object."))
            })?;
            let has = |field: &str| spec.get(field).is_some_and(|v| !v.is_null() && v != "");
            if !has("spark_version") {
                return Err(ApiError::invalid(format!(
                    "Task {key}: missing required field new_cluster.spark_version."
                )));
            }
            // A cluster policy may set what the spec leaves out.
            if has("policy_id") {
                return Ok(Compute::NewCluster(cluster));
            }
            if !has("node_type_id") && !has("instance_pool_id") {
                return Err(ApiError::invalid(format!(
                    "Task {key}: new_cluster must set node_type_id or instance_pool_id."
                )));
            }
            if !has("num_workers") && !has("autoscale") {
                return Err(ApiError::invalid(format!(
                    "Task {key}: new_cluster must set num_workers or autoscale."
                )));
            }
            Ok(Compute::NewCluster(cluster))
        }
        (None, None, Some(cluster_key)) => Err(ApiError::invalid(format!(
            "Task {key}: job cluster '{cluster_key}' is not defined; one-time runs take existing_cluster_id or new_cluster."
        ))),
        _ => Err(ApiError::invalid(format!(
            "Task {key} must set at most one of existing_cluster_id, new_cluster and job_cluster_key."
        ))),
    }
}

fn validate_git_source(source: GitSourceRequest) -> ApiResult<GitSourceSpec> {
    let url = source
        .git_url
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("Missing required field: git_source.git_url"))?;
    let provider = provider_from(source.git_provider.as_deref())?;
    let nonblank = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let reference = match (
        nonblank(source.git_branch),
        nonblank(source.git_tag),
        nonblank(source.git_commit),
    ) {
        (Some(branch), None, None) => GitRef::Branch(branch),
        (None, Some(tag), None) => GitRef::Tag(tag),
        (None, None, Some(commit)) => GitRef::Commit(commit),
        _ => {
            return Err(ApiError::invalid(
                "git_source must set exactly one of git_branch, git_tag and git_commit.",
            ))
        }
    };
    Ok(GitSourceSpec {
        url,
        provider,
        reference,
    })
}

// ----- runs/get, runs/get-output, runs/cancel -----

async fn get_run(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    query: Query,
) -> ApiResult<Json<Value>> {
    let id = query.required_id("run_id")?;
    let runs = lock(&shared.runs);
    match runs.find(id) {
        Some(Found::Run(run)) => {
            let page = task_page(&shared, version, run, query.get("page_token"))?;
            let reads = match page.range.start {
                0 => &run.first_page_reads,
                _ => &run.later_page_reads,
            };
            reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(Json(run_view(&shared, version, run, page)))
        }
        Some(Found::Task(run, task)) => Ok(Json(task_run_view(&shared, version, run, task))),
        None => Err(no_such_run(id)),
    }
}

async fn get_output(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    query: Query,
) -> ApiResult<Json<Value>> {
    let id = query.required_id("run_id")?;
    let runs = lock(&shared.runs);
    let (run, task) = match runs.find(id) {
        Some(Found::Task(run, task)) => (run, task),
        // Jobs 2.1 and later refuse every parent run id, even of a run with a single task;
        // only 2.0 still answers for a single-task run.
        Some(Found::Run(run)) if version == ApiVersion::V2_0 && run.tasks.len() == 1 => {
            (run, &run.tasks[0])
        }
        Some(Found::Run(_)) => return Err(ApiError::invalid(MULTI_TASK_OUTPUT)),
        None => return Err(no_such_run(id)),
    };
    let mut answer = Map::new();
    answer.insert(
        "metadata".into(),
        task_run_view(&shared, version, run, task),
    );
    if let Some(output) = &task.output {
        if let Some(result) = &output.result {
            answer.insert(
                "notebook_output".into(),
                json!({ "result": result, "truncated": output.truncated }),
            );
        }
        if let Some(error) = &output.error {
            answer.insert("error".into(), json!(error));
        }
        if let Some(trace) = &output.error_trace {
            answer.insert("error_trace".into(), json!(trace));
        }
    } else if task.state.life_cycle == runs::LifeCycle::InternalError {
        answer.insert("error".into(), json!(task.state.message));
    }
    Ok(Json(Value::Object(answer)))
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct CancelRequest {
    run_id: Option<Value>,
}

async fn cancel(
    State(shared): State<Arc<Shared>>,
    JsonBody(request): JsonBody<CancelRequest>,
) -> ApiResult<Json<Value>> {
    // Like Databricks, take the id as a number or as a numeric string.
    let id = match request.run_id {
        None | Some(Value::Null) => {
            return Err(ApiError::invalid("Missing required field: run_id"))
        }
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    }
    .ok_or_else(|| ApiError::invalid("Invalid value for run_id: it must be an integer."))?;
    let runs = lock(&shared.runs);
    if runs.find(id).is_none() {
        return Err(no_such_run(id));
    }
    runs.stop(id, StopReason::Cancelled);
    Ok(Json(json!({})))
}

// ----- pages of tasks (Jobs 2.2) -----

/// Tasks in one answer of Jobs 2.2's `runs/get`; 2.1 and 2.0 refuse runs with more.
pub(crate) const TASKS_PER_PAGE: usize = 100;

/// Which tasks of `run` one answer holds, and the token of the next page. Jobs 2.2 pages them
/// by [`TASKS_PER_PAGE`] with opaque tokens (ones it did not issue are refused); the older
/// versions cannot page, so a run with more tasks cannot be read with them, and a client that
/// forgets to page fails as it would on a real workspace.
fn task_page(
    shared: &Shared,
    version: ApiVersion,
    run: &RunRecord,
    page_token: Option<&str>,
) -> ApiResult<TaskPage> {
    let total = run.tasks.len();
    if version != ApiVersion::V2_2 {
        if total > TASKS_PER_PAGE {
            return Err(ApiError::invalid(format!(
                "Run {} has {total} task runs, more than the {TASKS_PER_PAGE} Jobs API {} can return. Use Jobs API 2.2, which pages them.",
                run.run_id,
                version.as_str()
            )));
        }
        return Ok(TaskPage {
            range: 0..total,
            next_page_token: None,
        });
    }
    let start = match page_token {
        None => 0,
        Some(token) => shared
            .page_offset(run.run_id, token)
            .filter(|offset| *offset < total && offset % TASKS_PER_PAGE == 0)
            .ok_or_else(|| ApiError::invalid(format!("Invalid page token: {token}")))?,
    };
    let end = (start + TASKS_PER_PAGE).min(total);
    Ok(TaskPage {
        range: start..end,
        next_page_token: (end < total).then(|| shared.page_token(run.run_id, end)),
    })
}

pub(crate) struct TaskPage {
    range: std::ops::Range<usize>,
    next_page_token: Option<String>,
}

// ----- views -----

fn run_page_url(shared: &Shared, job_id: i64, run_id: i64) -> String {
    format!(
        "{}/?o={WORKSPACE_ID}#job/{job_id}/run/{run_id}",
        shared.base_url
    )
}

fn state_view(state: &RunState) -> Value {
    let mut view = json!({
        "life_cycle_state": state.life_cycle.as_str(),
        "state_message": state.message,
        "user_cancelled_or_timedout": state.user_cancelled_or_timedout,
    });
    if let Some(result) = state.result {
        view["result_state"] = json!(result.as_str());
    }
    view
}

fn status_view(state: &RunState) -> Value {
    let mut view = json!({ "state": state.life_cycle.status_state() });
    if state.life_cycle == runs::LifeCycle::Queued {
        view["queue_details"] = json!({
            "code": "ACTIVE_RUNS_LIMIT_REACHED",
            "message": "The run is queued: the workspace has reached its limit of active runs.",
        });
    }
    if let Some(termination) = state.termination {
        view["termination_details"] = json!({
            "code": termination.code(),
            "type": termination.kind(),
            "message": state.message,
        });
    }
    view
}

fn notebook_task_view(spec: &TaskSpec) -> Value {
    let mut view = json!({ "notebook_path": spec.notebook_path, "source": spec.source.as_str() });
    if !spec.base_parameters.is_empty() {
        view["base_parameters"] = json!(spec.base_parameters);
    }
    view
}

fn compute_view(compute: &Compute) -> Map<String, Value> {
    let mut view = Map::new();
    match compute {
        Compute::ExistingCluster(id) => {
            view.insert("existing_cluster_id".into(), json!(id));
        }
        Compute::NewCluster(cluster) => {
            view.insert("new_cluster".into(), cluster.clone());
        }
        Compute::Serverless => {}
    }
    view
}

/// A task as it appears in its parent's `tasks` array.
fn task_view(
    shared: &Shared,
    version: ApiVersion,
    run: &RunRecord,
    task: &TaskRun,
) -> Map<String, Value> {
    let (setup, execution, cleanup) = task.durations();
    let mut view = Map::new();
    view.insert("run_id".into(), json!(task.run_id));
    view.insert("task_key".into(), json!(task.spec.task_key));
    view.insert("notebook_task".into(), notebook_task_view(&task.spec));
    view.insert("state".into(), state_view(&task.state));
    if version.has_status() {
        view.insert("status".into(), status_view(&task.state));
    }
    view.insert(
        "run_page_url".into(),
        json!(run_page_url(shared, run.job_id, task.run_id)),
    );
    view.insert("start_time".into(), json!(task.start_time));
    view.insert("setup_duration".into(), json!(setup));
    view.insert("execution_duration".into(), json!(execution));
    view.insert("cleanup_duration".into(), json!(cleanup));
    view.insert("end_time".into(), json!(task.end_time.unwrap_or(0)));
    view.insert("attempt_number".into(), json!(task.attempt_number));
    if task.attempt_number > 0 {
        view.insert(
            "original_attempt_run_id".into(),
            json!(task.original_attempt_run_id),
        );
    }
    view.insert("run_if".into(), json!(task.spec.run_if.as_str()));
    if !task.spec.depends_on.is_empty() {
        let upstream: Vec<Value> = task
            .spec
            .depends_on
            .iter()
            .map(|key| json!({ "task_key": key }))
            .collect();
        view.insert("depends_on".into(), json!(upstream));
    }
    let retry = &task.spec.retry;
    if retry.max_retries != 0 {
        view.insert("max_retries".into(), json!(retry.max_retries));
        view.insert(
            "min_retry_interval_millis".into(),
            json!(retry.min_interval.as_millis() as u64),
        );
        view.insert("retry_on_timeout".into(), json!(retry.on_timeout));
    }
    view.extend(compute_view(&task.spec.compute));
    if let (Compute::ExistingCluster(id), Some(_)) = (&task.spec.compute, task.running_since) {
        view.insert("cluster_instance".into(), json!({ "cluster_id": id }));
    }
    if task.spec.timeout_seconds > 0 {
        view.insert("timeout_seconds".into(), json!(task.spec.timeout_seconds));
    }
    view
}

/// A task run seen on its own (`runs/get` with a task run id, `metadata` of `get-output`).
fn task_run_view(shared: &Shared, version: ApiVersion, run: &RunRecord, task: &TaskRun) -> Value {
    let mut view = task_view(shared, version, run, task);
    view.insert("job_id".into(), json!(run.job_id));
    view.insert("number_in_job".into(), json!(task.run_id));
    view.insert("run_name".into(), json!(run.spec.run_name));
    view.insert("creator_user_name".into(), json!(USER));
    view.insert("run_type".into(), json!("SUBMIT_RUN"));
    view.insert("format".into(), json!("SINGLE_TASK"));
    if let Some(end) = task.end_time {
        view.insert("run_duration".into(), json!(end - task.start_time));
    }
    Value::Object(view)
}

fn run_view(shared: &Shared, version: ApiVersion, run: &RunRecord, page: TaskPage) -> Value {
    let state = run.state();
    let end_time = run.end_time();
    let mut view = Map::new();
    view.insert("job_id".into(), json!(run.job_id));
    view.insert("run_id".into(), json!(run.run_id));
    view.insert("number_in_job".into(), json!(run.run_id));
    view.insert("creator_user_name".into(), json!(USER));
    view.insert("run_name".into(), json!(run.spec.run_name));
    view.insert(
        "run_page_url".into(),
        json!(run_page_url(shared, run.job_id, run.run_id)),
    );
    view.insert("state".into(), state_view(&state));
    if version.has_status() {
        view.insert("status".into(), status_view(&state));
    }
    let tasks: Vec<Value> = run.tasks[page.range]
        .iter()
        .map(|task| Value::Object(task_view(shared, version, run, task)))
        .collect();
    view.insert("tasks".into(), json!(tasks));
    if let Some(token) = page.next_page_token {
        view.insert("next_page_token".into(), json!(token));
    }
    view.insert("start_time".into(), json!(run.start_time));
    view.insert("end_time".into(), json!(end_time.unwrap_or(0)));
    // Multi-task runs report their length in run_duration; the phase durations stay 0.
    view.insert("setup_duration".into(), json!(0));
    view.insert("execution_duration".into(), json!(0));
    view.insert("cleanup_duration".into(), json!(0));
    if let Some(end) = end_time {
        view.insert("run_duration".into(), json!(end - run.start_time));
    }
    view.insert("run_type".into(), json!("SUBMIT_RUN"));
    view.insert("attempt_number".into(), json!(0));
    if run.spec.timeout_seconds > 0 {
        view.insert("timeout_seconds".into(), json!(run.spec.timeout_seconds));
    }
    if let Some(source) = &run.spec.git_source {
        view.insert(
            "git_source".into(),
            git_source_view(source, run.used_commit.as_deref()),
        );
    }
    if run.spec.single_task_form {
        // The 2.0 shape: the one task's settings at the top level.
        let task = &run.tasks[0].spec;
        view.insert("format".into(), json!("SINGLE_TASK"));
        view.insert(
            "task".into(),
            json!({ "notebook_task": notebook_task_view(task) }),
        );
        view.insert("notebook_task".into(), notebook_task_view(task));
        view.insert(
            "cluster_spec".into(),
            Value::Object(compute_view(&task.compute)),
        );
    } else {
        view.insert("format".into(), json!("MULTI_TASK"));
    }
    Value::Object(view)
}

fn git_source_view(source: &GitSourceSpec, used_commit: Option<&str>) -> Value {
    let mut view = json!({ "git_url": source.url, "git_provider": source.provider });
    match &source.reference {
        GitRef::Branch(branch) => view["git_branch"] = json!(branch),
        GitRef::Tag(tag) => view["git_tag"] = json!(tag),
        GitRef::Commit(commit) => view["git_commit"] = json!(commit),
    }
    if let Some(commit) = used_commit {
        view["git_snapshot"] = json!({ "used_commit": commit });
    }
    view
}

/// `GET /emulator/runs`: every run with its task states, for tests and scripts.
pub(crate) fn summaries(shared: &Shared) -> Value {
    let summary = |run_id: i64, state: &RunState| {
        json!({
            "run_id": run_id,
            "life_cycle_state": state.life_cycle.as_str(),
            "result_state": state.result.map(|r| r.as_str()),
            "state_message": state.message,
        })
    };
    let runs = lock(&shared.runs);
    let all: Vec<Value> = runs
        .all()
        .map(|run| {
            let mut view = summary(run.run_id, &run.state());
            view["run_name"] = json!(run.spec.run_name);
            view["idempotency_token"] = json!(run.spec.idempotency_token);
            view["peak_running_tasks"] = json!(run.peak_running);
            let reads = |count: &std::sync::atomic::AtomicU64| {
                count.load(std::sync::atomic::Ordering::Relaxed)
            };
            view["runs_get_reads"] = json!({
                "first_page": reads(&run.first_page_reads),
                "later_pages": reads(&run.later_page_reads),
            });
            view["run_as"] = json!(run.spec.run_as);
            view["queue"] = json!({ "enabled": run.spec.queue });
            view["performance_target"] = json!(run.spec.performance_target);
            view["budget_policy_id"] = json!(run.spec.budget_policy_id);
            view["tasks"] = run
                .tasks
                .iter()
                .map(|task| {
                    let mut task_view = summary(task.run_id, &task.state);
                    task_view["task_key"] = json!(task.spec.task_key);
                    task_view["attempt_number"] = json!(task.attempt_number);
                    task_view["depends_on"] = json!(task.spec.depends_on);
                    task_view["libraries"] = libraries::view(&task.libraries);
                    task_view
                })
                .collect();
            view
        })
        .collect();
    Value::Array(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit(version: ApiVersion, body: Value) -> ApiResult<RunSpec> {
        validate_submit(version, serde_json::from_value(body).unwrap(), "known")
    }

    fn message(result: ApiResult<RunSpec>) -> String {
        result.expect_err("should be rejected").message
    }

    #[test]
    fn accepts_the_three_kinds_of_compute() {
        let spec = submit(
            ApiVersion::V2_1,
            json!({ "run_name": "r", "tasks": [
                { "task_key": "a", "notebook_task": { "notebook_path": "/x" }, "existing_cluster_id": "known" },
                { "task_key": "b", "notebook_task": { "notebook_path": "/x" }, "depends_on": [],
                  "new_cluster": { "spark_version": "15.4.x-scala2.12", "node_type_id": "n", "num_workers": 1 } },
                { "task_key": "c.d-e_f", "notebook_task": { "notebook_path": "/x", "base_parameters": { "n": 1 } } }
            ]}),
        )
        .unwrap();
        assert_eq!(spec.tasks.len(), 3);
        assert_eq!(spec.tasks[2].base_parameters["n"], "1");
        assert!(matches!(spec.tasks[2].compute, Compute::Serverless));
    }

    #[test]
    fn rejects_bad_tasks() {
        let task = |extra: Value| {
            let mut task = json!({ "task_key": "a", "notebook_task": { "notebook_path": "/x" } });
            task.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            submit(ApiVersion::V2_1, json!({ "tasks": [task] }))
        };
        assert!(message(task(json!({ "existing_cluster_id": "nope" })))
            .contains("Cluster nope does not exist"));
        assert!(message(task(json!({ "spark_python_task": {} }))).contains("spark_python_task"));
        assert!(message(task(json!({ "task_key": "a b" }))).contains("Invalid task_key"));
        assert!(
            message(task(json!({ "new_cluster": { "spark_version": "x" } })))
                .contains("node_type_id")
        );
        assert!(
            message(task(json!({ "notebook_task": { "notebook_path": "rel" } })))
                .contains("absolute")
        );
        assert!(
            message(submit(ApiVersion::V2_1, json!({ "tasks": [] }))).contains("at least one task")
        );
        let duplicate = json!({ "task_key": "a", "notebook_task": { "notebook_path": "/x" } });
        assert!(message(submit(
            ApiVersion::V2_1,
            json!({ "tasks": [duplicate.clone(), duplicate] })
        ))
        .contains("unique"));
        let valid = json!({ "task_key": "a", "notebook_task": { "notebook_path": "/x" } });
        let long_token = json!({ "tasks": [valid], "idempotency_token": "x".repeat(65) });
        assert!(message(submit(ApiVersion::V2_1, long_token)).contains("idempotency token"));
    }

    #[test]
    fn git_source_makes_paths_relative() {
        let spec = submit(
            ApiVersion::V2_1,
            json!({ "tasks": [{ "task_key": "a", "notebook_task": { "notebook_path": "tests/unit" } }],
                    "git_source": { "git_url": "/src", "git_provider": "gitHub", "git_commit": "abc" } }),
        )
        .unwrap();
        assert_eq!(spec.tasks[0].source, NotebookSource::Git);
        let both = submit(
            ApiVersion::V2_1,
            json!({ "tasks": [{ "task_key": "a", "notebook_task": { "notebook_path": "t" } }],
                    "git_source": { "git_url": "/src", "git_provider": "gitHub", "git_commit": "abc", "git_branch": "main" } }),
        );
        assert!(message(both).contains("exactly one"));
    }

    #[test]
    fn jobs_2_0_accepts_the_single_task_form() {
        let body = json!({ "run_name": "legacy", "existing_cluster_id": "known",
                           "notebook_task": { "notebook_path": "/x" } });
        let spec = submit(ApiVersion::V2_0, body.clone()).unwrap();
        assert!(spec.single_task_form);
        assert_eq!(spec.tasks[0].task_key, SINGLE_TASK_KEY);
        assert!(submit(ApiVersion::V2_1, body).is_err());
    }
}
