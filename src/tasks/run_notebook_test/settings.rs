//! Inputs of DatabricksRunNotebookTest, validated into [`Settings`] before any request.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::databricks::models::{GitReference, GitSource};
use crate::databricks::RepoRef;
use crate::host::{Host, MAX_INPUT_FILE_BYTES};
use crate::pipeline::inputs::{input_lines, PickList};
use crate::pipeline::{InputError, Inputs};
use crate::tasks::connection::{Connection, AUTH_METHOD};
use crate::tasks::git_ref;
use crate::tasks::names::{input, output, variable};
use crate::tasks::repo_update::check_workspace_path;

use super::discovery::{globs, is_glob, list_checkout, select, Entry, Glob};
use super::libraries::{self, Libraries, Library};

/// The task's own inputs; besides them, both tasks read [`connection::INPUTS`](crate::tasks::connection::INPUTS).
pub const INPUTS: &[&str] = &[
    input::NOTEBOOK_PATHS,
    input::REPO_PATH,
    input::SOURCE,
    input::REPO_URL,
    input::GIT_PROVIDER,
    input::CLUSTER_MODE,
    input::EXISTING_CLUSTER_ID,
    input::NEW_CLUSTER_JSON,
    input::PARAMETERS,
    input::TIMEOUT_MINUTES,
    input::RUN_NAME,
    input::FAIL_ON_FAILED_TESTS,
    input::RETRIES,
    input::RETRY_INTERVAL_SECONDS,
    input::MAX_PARALLEL,
    input::LIBRARIES,
    input::LIBRARY_UPLOAD_PATH,
    input::ENVIRONMENT_VERSION,
    input::CLUSTER_POLICY_ID,
    input::RUN_AS,
    input::PERFORMANCE_TARGET,
    input::BUDGET_POLICY_ID,
];

pub const SOURCE: PickList = PickList {
    input: input::SOURCE,
    options: &["workspace", "git"],
    default: "workspace",
};
pub const CLUSTER_MODE: PickList = PickList {
    input: input::CLUSTER_MODE,
    options: &["existing", "new", "serverless"],
    default: "existing",
};
/// `default` leaves the choice to Databricks (nothing is sent).
pub const PERFORMANCE_TARGET: PickList = PickList {
    input: input::PERFORMANCE_TARGET,
    options: &["default", "STANDARD", "PERFORMANCE_OPTIMIZED"],
    default: "default",
};
pub const PICK_LISTS: &[PickList] = &[AUTH_METHOD, SOURCE, CLUSTER_MODE, PERFORMANCE_TARGET];
pub const OUTPUTS: &[&str] = &[
    output::RUN_ID,
    output::RUN_PAGE_URL,
    output::RESULT_STATE,
    output::NOTEBOOK_OUTPUT,
    output::TESTS_PASSED,
    output::TESTS_FAILED,
    output::TESTS_SKIPPED,
];
pub const DEFAULT_TIMEOUT_MINUTES: f64 = 60.0;

/// Most notebooks one step submits (Databricks allows up to 1000 tasks in a run).
pub const MAX_NOTEBOOKS: usize = 1000;
/// Most retries of one notebook: a test that needs more is broken, not flaky.
pub const MAX_RETRIES: u32 = 10;
pub const DEFAULT_RETRY_INTERVAL_SECONDS: u32 = 30;
/// The serverless environment version when `libraries` are installed on serverless compute.
pub const DEFAULT_ENVIRONMENT_VERSION: &str = "4";

#[derive(Clone, Debug, PartialEq)]
pub struct Notebook {
    /// As given to Databricks: absolute for workspace notebooks, relative for Git ones.
    pub path: String,
    pub task_key: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Compute {
    Existing(String),
    New(Map<String, Value>),
    Serverless,
}

impl std::fmt::Display for Compute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Compute::Existing(id) => write!(f, "existing cluster {id}"),
            Compute::New(spec) => write!(
                f,
                "a new job cluster ({})",
                spec.get("spark_version")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
            ),
            Compute::Serverless => f.write_str("serverless compute"),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retry {
    pub retries: u32,
    /// The least time between a failed attempt's start and the next one's.
    pub interval: Duration,
}

impl Retry {
    /// Attempts a notebook may make in all.
    pub fn attempts(&self) -> u32 {
        self.retries + 1
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub connection: Connection,
    pub notebooks: Vec<Notebook>,
    /// `source: workspace` with globs: the `notebookPaths` lines, resolved with the workspace
    /// list API when the step starts (`notebooks` is then empty until it is).
    pub workspace_globs: Option<Vec<Entry>>,
    /// Some `notebookPaths` lines were globs: the log lists what they matched.
    pub from_globs: bool,
    pub git_source: Option<GitSource>,
    pub compute: Compute,
    pub parameters: BTreeMap<String, String>,
    /// `None` = no timeout.
    pub timeout: Option<Duration>,
    pub run_name: String,
    pub idempotency_token: String,
    /// A notebook that ends normally but reports failed test cases fails the step.
    pub fail_on_failed_tests: bool,
    /// How a failed notebook is run again (`retries` 0: never).
    pub retry: Retry,
    /// At most this many notebooks run at once (`None`: all together).
    pub max_parallel: Option<usize>,
    /// The code under test, and what is uploaded from the agent for it.
    pub libraries: Libraries,
    /// Serverless only, with libraries: the environment they are installed in.
    pub environment_version: Option<String>,
    pub run_as: Option<RunAs>,
    /// Serverless: `STANDARD` or `PERFORMANCE_OPTIMIZED` (`None`: Databricks' default).
    pub performance_target: Option<String>,
    /// The budget policy the run's cost is attributed to.
    pub budget_policy_id: Option<String>,
    /// Inputs that were set but have no effect with the others, said before any request.
    pub warnings: Vec<String>,
}

impl Settings {
    pub fn from_inputs(inputs: &Inputs, host: &dyn Host) -> Result<Settings, InputError> {
        let connection = Connection::from_inputs(inputs, host)?;
        let source = inputs.pick_list(&SOURCE)?;
        let repo_path = match (source, inputs.get(input::REPO_PATH)?) {
            ("workspace", Some(path)) => Some(check_workspace_path(input::REPO_PATH, &path)?),
            _ => None,
        };
        let raw_paths = inputs.text(input::NOTEBOOK_PATHS)?.ok_or_else(|| {
            InputError::new(
                input::NOTEBOOK_PATHS,
                "is required: list the notebooks to run, one per line",
            )
            .with_hint("e.g. test/unit (relative to repoPath) or /Repos/ci/my-project/test/unit")
        })?;
        let entries = notebook_paths(&raw_paths, source == "git", repo_path.as_deref())?;
        let has_globs = globs(&entries).next().is_some();
        let (paths, workspace_globs) = match (has_globs, source) {
            (false, _) => (plain_paths(&entries), None),
            (true, "git") => (checkout_globs(inputs, host, &entries)?, None),
            (true, _) => (Vec::new(), Some(entries.clone())),
        };
        let git_source = if source == "git" {
            Some(git_source(inputs)?)
        } else {
            None
        };
        let compute = compute(inputs, host)?;
        let run_as = run_as(inputs)?;
        let parameters = match inputs.text(input::PARAMETERS)? {
            Some(text) => parse_parameters(&text)?,
            None => BTreeMap::new(),
        };
        let minutes = inputs.number(input::TIMEOUT_MINUTES, DEFAULT_TIMEOUT_MINUTES, 43_200.0)?;
        let timeout = (minutes > 0.0)
            .then(|| Duration::from_secs_f64(minutes * 60.0).max(Duration::from_secs(1)));
        let run_name = match inputs.get(input::RUN_NAME)? {
            Some(name) => name,
            None => default_run_name(inputs),
        };
        let notebooks = with_task_keys(paths);
        // With workspace globs, the lines stand for the notebooks they will match.
        let identity: Vec<String> = match &workspace_globs {
            None => notebooks.iter().map(|n| n.path.clone()).collect(),
            Some(entries) => entries.iter().map(entry_identity).collect(),
        };
        let idempotency_token = idempotency_token(inputs, host, &identity, &run_name);
        let libraries = match inputs.text(input::LIBRARIES)? {
            Some(text) => libraries::parse(
                &text,
                inputs.get(input::LIBRARY_UPLOAD_PATH)?.as_deref(),
                &idempotency_token,
                host,
            )?,
            None => Libraries::default(),
        };
        let environment_version = environment_version(inputs, &compute, &libraries)?;
        let mut warnings = ignored_inputs(inputs, source, &compute);
        if libraries.uploads.is_empty() && inputs.is_set(input::LIBRARY_UPLOAD_PATH, None) {
            warnings.push(format!(
                "input `{}` is ignored: `libraries` names no wheel or JAR on the agent to upload",
                input::LIBRARY_UPLOAD_PATH
            ));
        }
        let fail_on_failed_tests = inputs.boolean(input::FAIL_ON_FAILED_TESTS, true)?;
        let retry = Retry {
            retries: inputs.whole_number(input::RETRIES, 0, MAX_RETRIES)?,
            interval: Duration::from_secs(u64::from(inputs.whole_number(
                input::RETRY_INTERVAL_SECONDS,
                DEFAULT_RETRY_INTERVAL_SECONDS,
                3600,
            )?)),
        };
        let max_parallel =
            match inputs.whole_number(input::MAX_PARALLEL, 0, MAX_NOTEBOOKS as u32)? {
                0 => None,
                n => Some(n as usize),
            };
        let performance_target = match inputs.pick_list(&PERFORMANCE_TARGET)? {
            "default" => None,
            target if matches!(compute, Compute::Serverless) => Some(target.to_string()),
            _ => None,
        };
        let budget_policy_id = budget_policy_id(inputs)?;
        Ok(Settings {
            connection,
            notebooks,
            workspace_globs,
            from_globs: has_globs,
            git_source,
            compute,
            parameters,
            timeout,
            run_name,
            idempotency_token,
            fail_on_failed_tests,
            retry,
            max_parallel,
            libraries,
            environment_version,
            run_as,
            performance_target,
            budget_policy_id,
            warnings,
        })
    }
}

/// A budget policy id: letters, digits and `-` (Databricks' ids are UUIDs).
fn budget_policy_id(inputs: &Inputs) -> Result<Option<String>, InputError> {
    let Some(id) = inputs.get(input::BUDGET_POLICY_ID)? else {
        return Ok(None);
    };
    let well_formed = id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if well_formed {
        Ok(Some(id))
    } else {
        Err(InputError::new(
            input::BUDGET_POLICY_ID,
            format!("`{id}` is not a budget policy id"),
        )
        .with_hint("copy the policy's id from Compute > Policies > Budget policies, e.g. 1a2b3c4d-0000-4000-8000-123456789abc"))
    }
}

/// Inputs that the chosen `source` and `clusterMode` leave unused. The classic editor hides
/// them (visibleRule) but keeps their values, so they are warnings, not errors. `gitProvider`
/// is not one: it only names the kind of host, and templates often set it for every step.
fn ignored_inputs(inputs: &Inputs, source: &str, compute: &Compute) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut ignored = |input: &str, choice: &str, why: &str| {
        warnings.push(format!("input `{input}` is ignored with {choice}: {why}"));
    };
    if source == "git" && inputs.is_set(input::REPO_PATH, None) {
        ignored(
            input::REPO_PATH,
            "`source: git`",
            "notebooks come from repoUrl at the build's commit, relative to the repository root (remove repoPath, or use source `workspace` to run the Repo)",
        );
    }
    if source == "workspace" {
        let build_repository = inputs.variable(variable::BUILD_REPOSITORY_URI);
        if inputs.is_set(input::REPO_URL, build_repository.as_deref()) {
            ignored(
                input::REPO_URL,
                "`source: workspace`",
                "it is only used with source `git`",
            );
        }
    }
    if !matches!(compute, Compute::Existing(_)) && inputs.is_set(input::EXISTING_CLUSTER_ID, None) {
        ignored(
            input::EXISTING_CLUSTER_ID,
            &format!("`clusterMode: {}`", cluster_mode_name(compute)),
            "set clusterMode to `existing` to run on that cluster",
        );
    }
    if !matches!(compute, Compute::New(_)) && inputs.is_set(input::NEW_CLUSTER_JSON, None) {
        ignored(
            input::NEW_CLUSTER_JSON,
            &format!("`clusterMode: {}`", cluster_mode_name(compute)),
            "set clusterMode to `new` to run on a new job cluster",
        );
    }
    if !matches!(compute, Compute::New(_)) && inputs.is_set(input::CLUSTER_POLICY_ID, None) {
        ignored(
            input::CLUSTER_POLICY_ID,
            &format!("`clusterMode: {}`", cluster_mode_name(compute)),
            "a cluster policy applies to the new job cluster of clusterMode `new`",
        );
    }
    if !matches!(compute, Compute::Serverless)
        && inputs.is_set(input::PERFORMANCE_TARGET, Some(PERFORMANCE_TARGET.default))
    {
        ignored(
            input::PERFORMANCE_TARGET,
            &format!("`clusterMode: {}`", cluster_mode_name(compute)),
            "the performance target is for serverless compute",
        );
    }
    if !matches!(compute, Compute::Serverless)
        && inputs.is_set(
            input::ENVIRONMENT_VERSION,
            Some(DEFAULT_ENVIRONMENT_VERSION),
        )
    {
        ignored(
            input::ENVIRONMENT_VERSION,
            &format!("`clusterMode: {}`", cluster_mode_name(compute)),
            "the environment version is for libraries on serverless compute",
        );
    }
    warnings
}

fn cluster_mode_name(compute: &Compute) -> &'static str {
    match compute {
        Compute::Existing(_) => "existing",
        Compute::New(_) => "new",
        Compute::Serverless => "serverless",
    }
}

fn notebook_paths(raw: &str, git: bool, repo_path: Option<&str>) -> Result<Vec<Entry>, InputError> {
    const INPUT: &str = input::NOTEBOOK_PATHS;
    let mut entries: Vec<Entry> = Vec::new();
    for (number, line) in input_lines(INPUT, raw)? {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: String| {
            Err(InputError::new(
                INPUT,
                format!("line {number} (`{line}`) {why}"),
            ))
        };
        let (exclude, written) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        if written.split('/').any(|s| s == ".." || s == ".") || written.contains("//") {
            return bad("has an empty, `.` or `..` segment".into());
        }
        let path = if git {
            if written.starts_with('/') {
                return bad("is absolute, but with source `git` notebook paths are relative to the repository root".into());
            }
            written.to_string()
        } else if written.starts_with('/') {
            written.to_string()
        } else if let Some(repo) = repo_path {
            format!("{repo}/{written}")
        } else {
            return Err(InputError::new(
                INPUT,
                format!("line {number} (`{line}`) is relative, but repoPath is not set"),
            )
            .with_hint(
                "set repoPath (e.g. /Repos/ci/my-project), or give absolute workspace paths",
            ));
        };
        let path = path.trim_end_matches('/').to_string();
        if path.is_empty() {
            return bad("is the workspace root, not a notebook".into());
        }
        if exclude || is_glob(written) {
            entries.push(Entry::Glob(Glob {
                line: number,
                written: line.to_string(),
                pattern: path,
                exclude,
            }));
            continue;
        }
        if entries.contains(&Entry::Path(path.clone())) {
            return bad("is listed twice".into());
        }
        entries.push(Entry::Path(path));
    }
    if !entries
        .iter()
        .any(|e| !matches!(e, Entry::Glob(Glob { exclude: true, .. })))
    {
        return Err(InputError::new(INPUT, "lists no notebook"));
    }
    check_count(
        entries
            .iter()
            .filter(|e| matches!(e, Entry::Path(_)))
            .count(),
    )?;
    Ok(entries)
}

/// At most [`MAX_NOTEBOOKS`] notebooks fit in one run.
pub fn check_count(count: usize) -> Result<(), InputError> {
    if count > MAX_NOTEBOOKS {
        return Err(InputError::new(
            input::NOTEBOOK_PATHS,
            format!("lists {count} notebooks; at most {MAX_NOTEBOOKS} fit in one run"),
        ));
    }
    Ok(())
}

fn plain_paths(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| match e {
            Entry::Path(path) => Some(path.clone()),
            Entry::Glob(_) => None,
        })
        .collect()
}

fn entry_identity(entry: &Entry) -> String {
    match entry {
        Entry::Path(path) => path.clone(),
        Entry::Glob(glob) => format!("glob:{}", glob.written),
    }
}

/// `source: git` globs, resolved in the agent's checkout of the commit being built: what
/// matches there is what runs.
fn checkout_globs(
    inputs: &Inputs,
    host: &dyn Host,
    entries: &[Entry],
) -> Result<Vec<String>, InputError> {
    let root = inputs.variable(variable::BUILD_SOURCES_DIRECTORY).ok_or_else(|| {
        InputError::variable(variable::BUILD_SOURCES_DIRECTORY, "is not set, and `notebookPaths` has globs to resolve in the checkout")
            .with_hint("with source `git`, globs are matched in the agent's checkout of the commit being built: keep the pipeline's `checkout` step, or list the notebooks one per line")
    })?;
    let candidates = list_checkout(host, root.trim_end_matches(['/', '\\']), entries)?;
    let selected = select(entries, &candidates)?;
    check_count(selected.len())?;
    Ok(selected)
}

pub fn with_task_keys(paths: Vec<String>) -> Vec<Notebook> {
    let mut used = std::collections::HashSet::new();
    paths
        .into_iter()
        .map(|path| {
            let name = path.rsplit('/').next().unwrap_or(&path);
            let mut base: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .take(90)
                .collect();
            if base.is_empty() {
                base = "notebook".into();
            }
            let mut key = base.clone();
            let mut n = 2;
            while !used.insert(key.clone()) {
                key = format!("{base}_{n}");
                n += 1;
            }
            Notebook {
                path,
                task_key: key,
            }
        })
        .collect()
}

fn git_source(inputs: &Inputs) -> Result<GitSource, InputError> {
    let url = git_ref::repository_url(inputs, input::REPO_URL)?;
    let provider = git_ref::provider(inputs, input::GIT_PROVIDER, &url)?;
    let reference =
        match git_ref::commit_from_build(inputs) {
            Some(commit) => GitReference::Commit(git_ref::check_commit(input::SOURCE, &commit)?),
            None => match git_ref::ref_from_build(inputs) {
                Some(RepoRef::Branch(branch)) => GitReference::Branch(branch),
                Some(RepoRef::Tag(tag)) => GitReference::Tag(tag),
                None => return Err(InputError::new(
                    input::SOURCE,
                    "is `git`, but the commit to run is unknown (Build.SourceVersion is not set)",
                )
                .with_hint(
                    "run inside a pipeline, or use source `workspace` with DatabricksRepoUpdate",
                )),
            },
        };
    Ok(GitSource {
        git_url: url,
        git_provider: provider,
        reference,
    })
}

fn compute(inputs: &Inputs, host: &dyn Host) -> Result<Compute, InputError> {
    match inputs.pick_list(&CLUSTER_MODE)? {
        "existing" => {
            let id = inputs.get(input::EXISTING_CLUSTER_ID)?.ok_or_else(|| {
                InputError::new(input::EXISTING_CLUSTER_ID, "is required when clusterMode is `existing`")
                    .with_hint("copy the cluster id from the cluster's page in Databricks, or set clusterMode to `new` or `serverless`")
            })?;
            if id.len() > 100 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(InputError::new(
                    input::EXISTING_CLUSTER_ID,
                    format!("`{id}` is not a cluster id (e.g. 0923-164208-abcd123)"),
                ));
            }
            Ok(Compute::Existing(id))
        }
        "new" => {
            let raw = inputs.text(input::NEW_CLUSTER_JSON)?.ok_or_else(|| {
                InputError::new(input::NEW_CLUSTER_JSON, "is required when clusterMode is `new`")
                    .with_hint(r#"e.g. {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 1}"#)
            })?;
            let text = if raw.trim_start().starts_with(['{', '[']) {
                raw
            } else {
                let path = match inputs.variable(variable::DEFAULT_WORKING_DIRECTORY) {
                    Some(dir) if !raw.starts_with('/') => format!("{dir}/{raw}"),
                    _ => raw.clone(),
                };
                host.read_file(&path, MAX_INPUT_FILE_BYTES).map_err(|e| {
                    InputError::new(
                        input::NEW_CLUSTER_JSON,
                        format!("is neither inline JSON nor a readable file: {path}: {e}"),
                    )
                })?
            };
            let policy = inputs.get(input::CLUSTER_POLICY_ID)?;
            Ok(Compute::New(cluster_spec(&text, policy.as_deref())?))
        }
        _ => Ok(Compute::Serverless),
    }
}

pub fn parse_cluster_spec(text: &str) -> Result<Map<String, Value>, InputError> {
    cluster_spec(text, None)
}

/// `newClusterJson`, with `clusterPolicyId` as its `policy_id` when that input is set.
fn cluster_spec(text: &str, policy: Option<&str>) -> Result<Map<String, Value>, InputError> {
    const INPUT: &str = input::NEW_CLUSTER_JSON;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| InputError::new(INPUT, format!("is not valid JSON: {e}")))?;
    if let Err(e) = serde_json::from_str::<UniqueKeys>(text) {
        return Err(InputError::new(INPUT, e.to_string())
            .with_hint("JSON would keep only the last value: remove one of them"));
    }
    let Value::Object(mut spec) = value else {
        return Err(InputError::new(
            INPUT,
            "must be a JSON object (a `new_cluster` specification)",
        ));
    };
    if let Some(policy) = policy {
        check_policy_id(policy)?;
        match spec.get("policy_id").and_then(Value::as_str) {
            Some(written) if written != policy => {
                return Err(InputError::new(
                    input::CLUSTER_POLICY_ID,
                    format!("is `{policy}`, but newClusterJson sets policy_id `{written}`"),
                )
                .with_hint("keep one of them"))
            }
            _ => {
                spec.insert("policy_id".into(), Value::String(policy.to_string()));
            }
        }
    }
    let field = |name: &str| spec.get(name).filter(|v| !v.is_null());
    if field("spark_version").is_none_or(|v| v.as_str().is_none_or(|s| s.trim().is_empty())) {
        return Err(InputError::new(
            INPUT,
            "needs `spark_version` (a string such as \"15.4.x-scala2.12\")",
        ));
    }
    if field("node_type_id").is_none()
        && field("instance_pool_id").is_none()
        && field("policy_id").is_none()
    {
        return Err(InputError::new(
            INPUT,
            "needs `node_type_id` or `instance_pool_id` (or a `policy_id` that sets them)",
        ));
    }
    match (field("num_workers"), field("autoscale")) {
        (Some(n), _) if n.as_u64().is_none() => {
            return Err(InputError::new(
                INPUT,
                "`num_workers` must be a whole number ≥ 0",
            ))
        }
        (Some(_), _) => {}
        (None, Some(auto)) => {
            let min = auto.get("min_workers").and_then(Value::as_u64);
            let max = auto.get("max_workers").and_then(Value::as_u64);
            match (min, max) {
                (Some(min), Some(max)) if min <= max && max > 0 => {}
                _ => {
                    return Err(InputError::new(
                        INPUT,
                        "`autoscale` needs whole numbers `min_workers` ≤ `max_workers`",
                    ))
                }
            }
        }
        (None, None) => return Err(InputError::new(INPUT, "needs `num_workers` or `autoscale`")),
    }
    Ok(spec)
}

/// Any JSON value, accepted only if no object in it has the same key twice.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<UniqueKeys, A::Error> {
                let mut seen = std::collections::HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
                        return Err(serde::de::Error::custom(format!(
                            "has the key `{key}` twice"
                        )));
                    }
                    map.next_value::<UniqueKeys>()?;
                }
                Ok(UniqueKeys)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<UniqueKeys, A::Error> {
                while seq.next_element::<UniqueKeys>()?.is_some() {}
                Ok(UniqueKeys)
            }
            fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys)
            }
            fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys)
            }
            fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys)
            }
            fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys)
            }
            fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys)
            }
            fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `key=value` lines, or a JSON object of strings (numbers and booleans are passed as written:
/// `base_parameters` are strings).
pub fn parse_parameters(text: &str) -> Result<BTreeMap<String, String>, InputError> {
    const INPUT: &str = input::PARAMETERS;
    if text.trim_start().starts_with('{') {
        return parse_json_parameters(text);
    }
    let mut parameters = BTreeMap::new();
    for (number, line) in input_lines(INPUT, text)? {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(InputError::new(
                INPUT,
                format!("line {number} (`{line}`) is not `key=value`"),
            ));
        };
        let key = key.trim();
        check_key(key)?;
        if parameters
            .insert(key.to_string(), value.trim().to_string())
            .is_some()
        {
            return Err(InputError::new(
                INPUT,
                format!("line {number}: `{key}` is set twice"),
            ));
        }
    }
    Ok(parameters)
}

/// The members of a JSON object in the order written, each value as its source text.
struct JsonMembers(Vec<(String, Box<serde_json::value::RawValue>)>);

impl<'de> serde::Deserialize<'de> for JsonMembers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = JsonMembers;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<JsonMembers, A::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    members.push((key, map.next_value()?));
                }
                Ok(JsonMembers(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// Read member by member rather than into a map: a map would keep the last of two equal keys
/// without a word, and would turn `1e20` into `1e+20` and 30 digits into a float.
fn parse_json_parameters(text: &str) -> Result<BTreeMap<String, String>, InputError> {
    const INPUT: &str = input::PARAMETERS;
    let JsonMembers(members) = serde_json::from_str(text)
        .map_err(|e| InputError::new(INPUT, format!("is not valid JSON: {e}")))?;
    let mut parameters = BTreeMap::new();
    for (key, raw) in members {
        check_key(&key)?;
        let written = raw.get();
        let value = match written.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<String>(written).expect("a JSON string"),
            Some(b'-' | b'0'..=b'9' | b't' | b'f') => written.to_string(),
            _ => {
                return Err(InputError::new(
                    INPUT,
                    // Named by its kind, not quoted: a parameter may carry a secret.
                    format!(
                        "the value of `{key}` is {}; parameters are strings, numbers or booleans",
                        match written.as_bytes().first() {
                            Some(b'{') => "an object",
                            Some(b'[') => "an array",
                            _ => "null",
                        }
                    ),
                ));
            }
        };
        if parameters.insert(key.clone(), value).is_some() {
            return Err(InputError::new(INPUT, format!("`{key}` is set twice"))
                .with_hint("JSON would keep only the last value: remove one of them"));
        }
    }
    Ok(parameters)
}

fn check_key(key: &str) -> Result<(), InputError> {
    if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InputError::new(
            input::PARAMETERS,
            format!("`{key}` is not a parameter name (no spaces, not empty)"),
        ));
    }
    Ok(())
}

fn default_run_name(inputs: &Inputs) -> String {
    match (
        inputs.variable(variable::BUILD_DEFINITION_NAME),
        inputs.variable(variable::BUILD_NUMBER),
    ) {
        (Some(definition), Some(number)) => format!("{definition} {number}"),
        (Some(definition), None) => definition,
        _ => "databricks-azdo notebook test".to_string(),
    }
}

/// Same pipeline step attempt + same notebooks → same token, on every runtime, so a retried
/// submit (even one from the other runtime, after the native fallback) returns the first run
/// instead of starting a second one. Outside a pipeline, unique per invocation.
///
/// The token is `azdo-` and, in 32 lower-case hex digits, the 128-bit FNV-1a hash (offset
/// basis 0x6c62272e07bb014262b821756295c58d, prime 2^88 + 0x13b) of these fields in order:
/// [`IDENTITY_VERSION`], System.PlanId, System.JobId, System.JobAttempt,
/// System.TaskInstanceId, the run name, each notebook path (outside a pipeline, then the
/// invocation's start time); each field as its UTF-8 bytes preceded by their count as a
/// 4-byte big-endian number. Nothing platform-sized (`usize`) or library-defined (`Hash`,
/// `DefaultHasher`) goes in, so the native binary and the wasm core agree. FNV-1a rather than
/// SHA-256: uniqueness is all a token needs, and it costs the wasm core nothing (sha2: 4 KB).
fn idempotency_token(
    inputs: &Inputs,
    host: &dyn Host,
    notebooks: &[String],
    run_name: &str,
) -> String {
    let identity = [
        "System.PlanId",
        "System.JobId",
        "System.JobAttempt",
        "System.TaskInstanceId",
    ]
    .map(|name| inputs.variable(name).unwrap_or_default());
    let mut fields: Vec<String> = vec![IDENTITY_VERSION.to_string()];
    fields.extend(identity.iter().cloned());
    fields.push(run_name.to_string());
    fields.extend(notebooks.iter().cloned());
    if identity.iter().all(String::is_empty) {
        fields.push(format!(
            "{}.{}",
            host.unix_millis(),
            host.elapsed().as_nanos()
        ));
    }
    token_from_fields(&fields)
}

/// Names the encoding of [`idempotency_token`]; a new encoding needs a new name.
const IDENTITY_VERSION: &str = "databricks-azdo idempotency v1";

fn token_from_fields(fields: &[String]) -> String {
    const OFFSET_BASIS: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    let mut hash = OFFSET_BASIS;
    for field in fields {
        let length = u32::try_from(field.len()).unwrap_or(u32::MAX);
        for byte in length.to_be_bytes().iter().chain(field.as_bytes()) {
            hash = (hash ^ u128::from(*byte)).wrapping_mul(PRIME);
        }
    }
    format!("azdo-{hash:032x}")
}

fn check_policy_id(policy: &str) -> Result<(), InputError> {
    let valid = policy.len() <= 64
        && policy
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(InputError::new(
            input::CLUSTER_POLICY_ID,
            format!("`{policy}` is not a cluster policy id (e.g. 0012ABCD34EF5678)"),
        ))
    }
}

/// Who the run runs as (`run_as`): a user by e-mail, or a service principal by application id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunAs {
    User(String),
    ServicePrincipal(String),
}

fn run_as(inputs: &Inputs) -> Result<Option<RunAs>, InputError> {
    let Some(value) = inputs.get(input::RUN_AS)? else {
        return Ok(None);
    };
    let is_guid = value.len() == 36
        && value.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    let is_email = value.split_once('@').is_some_and(|(user, domain)| {
        !user.is_empty() && domain.contains('.') && !value.chars().any(char::is_whitespace)
    });
    match (is_guid, is_email) {
        (true, _) => Ok(Some(RunAs::ServicePrincipal(value.to_ascii_lowercase()))),
        (_, true) => Ok(Some(RunAs::User(value))),
        _ => Err(InputError::new(
            input::RUN_AS,
            format!("`{value}` is neither a user's e-mail address nor a service principal's application id"),
        )
        .with_hint("e.g. ci-tests@contoso.com, or 6a2c1c6e-8a8b-4f5e-9d7a-1b2c3d4e5f60")),
    }
}

/// `environmentVersion`: only with libraries on serverless compute, where they form the run's
/// environment.
fn environment_version(
    inputs: &Inputs,
    compute: &Compute,
    libraries: &Libraries,
) -> Result<Option<String>, InputError> {
    if !matches!(compute, Compute::Serverless) || libraries.list.is_empty() {
        return Ok(None);
    }
    let version = inputs
        .get(input::ENVIRONMENT_VERSION)?
        .unwrap_or_else(|| DEFAULT_ENVIRONMENT_VERSION.to_string());
    if version.is_empty() || version.len() > 3 || !version.chars().all(|c| c.is_ascii_digit()) {
        return Err(InputError::new(
            input::ENVIRONMENT_VERSION,
            format!("`{version}` is not a serverless environment version (a number such as 4)"),
        ));
    }
    for library in &libraries.list {
        let refused = match library {
            Library::Maven(_) => Some("Maven coordinates"),
            Library::Api(_) => Some("a library in the Jobs API's JSON form"),
            _ => None,
        };
        if let Some(what) = refused {
            return Err(InputError::new(
                input::LIBRARIES,
                format!("lists {what}, which serverless compute cannot install: its environment takes Python packages, wheels, requirements files and JARs"),
            )
            .with_hint("use a JAR in a volume, a `pypi:` line, or clusterMode `existing` or `new`"));
        }
    }
    Ok(Some(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_lines_resolve_like_paths_and_keep_their_line() {
        let entries = notebook_paths(
            "smoke\ntests/**/test_*\n!tests/slow/**",
            false,
            Some("/Repos/ci/p"),
        )
        .unwrap();
        assert_eq!(entries[0], Entry::Path("/Repos/ci/p/smoke".into()));
        assert_eq!(
            entries[1],
            Entry::Glob(Glob {
                line: 2,
                written: "tests/**/test_*".into(),
                pattern: "/Repos/ci/p/tests/**/test_*".into(),
                exclude: false
            })
        );
        assert_eq!(
            entries[2],
            Entry::Glob(Glob {
                line: 3,
                written: "!tests/slow/**".into(),
                pattern: "/Repos/ci/p/tests/slow/**".into(),
                exclude: true
            })
        );
        assert!(notebook_paths("tests/../**", true, None)
            .unwrap_err()
            .to_string()
            .contains("`..`"));
        assert!(notebook_paths("/Repos/**", true, None)
            .unwrap_err()
            .to_string()
            .contains("absolute"));
        assert!(notebook_paths("!tests/slow/**", true, None)
            .unwrap_err()
            .to_string()
            .contains("lists no notebook"));
    }

    #[test]
    fn notebook_paths_resolve_against_the_repo() {
        let paths = notebook_paths(
            "test/unit\n\n# comment\n/Shared/x/y\n",
            false,
            Some("/Repos/ci/p"),
        )
        .unwrap();
        assert_eq!(
            plain_paths(&paths),
            ["/Repos/ci/p/test/unit", "/Shared/x/y"]
        );
        assert!(notebook_paths("test/unit", false, None)
            .unwrap_err()
            .to_string()
            .contains("repoPath"));
        assert!(notebook_paths("/abs", true, None)
            .unwrap_err()
            .to_string()
            .contains("relative"));
        assert!(notebook_paths("a\na", true, None)
            .unwrap_err()
            .to_string()
            .contains("twice"));
        assert!(notebook_paths("\n#\n", true, None)
            .unwrap_err()
            .to_string()
            .contains("no notebook"));
        assert!(notebook_paths("../x", true, None).is_err());
    }

    #[test]
    fn task_keys_are_unique_and_safe() {
        let notebooks = with_task_keys(vec![
            "/a/unit".into(),
            "/b/unit".into(),
            "/c/my test.py".into(),
        ]);
        let keys: Vec<_> = notebooks.iter().map(|n| n.task_key.as_str()).collect();
        assert_eq!(keys, ["unit", "unit_2", "my_test_py"]);
    }

    #[test]
    fn parameters_from_lines_or_json() {
        let p = parse_parameters("env = ci\n# c\nurl=https://x?a=b").unwrap();
        assert_eq!(p["env"], "ci");
        assert_eq!(p["url"], "https://x?a=b");
        let p = parse_parameters(r#"{"n": 3, "flag": true, "s": "x"}"#).unwrap();
        assert_eq!(
            (p["n"].as_str(), p["flag"].as_str(), p["s"].as_str()),
            ("3", "true", "x")
        );
        assert!(parse_parameters("novalue")
            .unwrap_err()
            .to_string()
            .contains("line 1"));
        assert!(parse_parameters("a=1\na=2")
            .unwrap_err()
            .to_string()
            .contains("twice"));
        assert!(parse_parameters(r#"{"a": [1]}"#).is_err());
        assert!(parse_parameters("{bad json").is_err());
    }

    #[test]
    fn json_parameters_keep_numbers_as_written() {
        let p = parse_parameters(
            r#"{"big": 1e20, "digits": 123456789012345678901234567890, "neg": -0.50, "t": false, "s": "1e20", "u": "\u00e9"}"#,
        )
        .unwrap();
        let got: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("big", "1e20"),
                ("digits", "123456789012345678901234567890"),
                ("neg", "-0.50"),
                ("s", "1e20"),
                ("t", "false"),
                ("u", "é"),
            ]
        );
    }

    #[test]
    fn ambiguous_parameters_and_paths_are_refused() {
        for (text, needle) in [
            (r#"{"a": 1, "a": 2}"#, "`a` is set twice"),
            (r#"{"a": "x", "b": 1, "a": "x"}"#, "`a` is set twice"),
            (r#"{"a": null}"#, "parameters are strings"),
            (r#"{"a": [1]}"#, "parameters are strings"),
            ("env=ci\rdebug=1", "carriage return"),
            ("env=c\ri", "carriage return"),
        ] {
            let err = parse_parameters(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
        assert_eq!(
            parse_parameters("a=1\r\nb=2\r\n").unwrap().len(),
            2,
            "CRLF is a line break"
        );
        for (text, needle) in [
            ("/", "workspace root"),
            ("test/unit\n/", "line 2"),
            ("/Repos/ci/p/test/unit\r/Shared/x", "carriage return"),
            ("test/a\rb", "carriage return"),
        ] {
            let err = notebook_paths(text, false, Some("/Repos/ci/p"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
        assert_eq!(
            plain_paths(&notebook_paths("a\r\nb\r\n", true, None).unwrap()),
            ["a", "b"],
            "CRLF is a line break"
        );
        let err = parse_cluster_spec(
            r#"{"spark_version": "s", "node_type_id": "n", "num_workers": 1, "spark_conf": {"k": "1", "k": "2"}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("the key `k` twice"), "{err}");
    }

    #[test]
    fn cluster_specs_are_checked() {
        assert!(parse_cluster_spec(
            r#"{"spark_version": "15.4.x-scala2.12", "node_type_id": "n", "num_workers": 0}"#
        )
        .is_ok());
        assert!(parse_cluster_spec(r#"{"spark_version": "s", "instance_pool_id": "p", "autoscale": {"min_workers": 1, "max_workers": 2}}"#).is_ok());
        for (spec, needle) in [
            ("[]", "object"),
            ("{", "JSON"),
            (
                r#"{"node_type_id": "n", "num_workers": 1}"#,
                "spark_version",
            ),
            (
                r#"{"spark_version": "s", "num_workers": 1}"#,
                "node_type_id",
            ),
            (
                r#"{"spark_version": "s", "node_type_id": "n"}"#,
                "num_workers",
            ),
            (
                r#"{"spark_version": "s", "node_type_id": "n", "num_workers": -1}"#,
                "whole number",
            ),
            (
                r#"{"spark_version": "s", "node_type_id": "n", "autoscale": {"min_workers": 3, "max_workers": 2}}"#,
                "autoscale",
            ),
        ] {
            let err = parse_cluster_spec(spec).unwrap_err().to_string();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }

    #[test]
    fn idempotency_tokens_follow_the_pipeline_identity() {
        use crate::host::NativeHost;
        use std::sync::{Arc, Mutex};
        let env = |attempt: &str| -> std::collections::BTreeMap<String, String> {
            [
                ("SYSTEM_PLANID", "p"),
                ("SYSTEM_JOBID", "j"),
                ("SYSTEM_JOBATTEMPT", attempt),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        };
        let sink = || Arc::new(Mutex::new(std::io::sink()));
        let host = NativeHost::new(Default::default(), sink(), sink());
        let notebooks = vec!["/a".to_string(), "/b".to_string()];
        let token = |env| idempotency_token(&Inputs::new(&env), &host, &notebooks, "ci");
        let first = token(env("1"));
        assert_eq!(
            first,
            token(env("1")),
            "the same step attempt gets the same token"
        );
        assert_ne!(first, token(env("2")), "a new attempt gets a new token");
        assert!(first.len() <= 64 && first.starts_with("azdo-"), "{first}");
        assert_ne!(
            token(Default::default()),
            token(Default::default()),
            "outside a pipeline: unique"
        );
    }

    /// The encoding is specified (see `idempotency_token`): this value was computed from the
    /// specification alone (a few lines of Python); tests/it/verdicts.rs and
    /// tests/node/verdicts.test.mjs check the same specification through both runtimes.
    #[test]
    fn idempotency_token_is_pinned_for_a_fixed_identity() {
        let fields = [
            "databricks-azdo idempotency v1",
            "plan-7",
            "job-7",
            "1",
            "step-7",
            "ci 42",
            "/Repos/ci/p/test/unit",
            "/Repos/ci/p/test/ünïcode",
        ]
        .map(String::from);
        assert_eq!(
            token_from_fields(&fields),
            "azdo-eb7ab6b1894bf01dd90ae35a633403a1"
        );
    }
}
