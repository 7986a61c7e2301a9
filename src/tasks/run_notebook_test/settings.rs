//! Inputs of DatabricksRunNotebookTest, validated into [`Settings`] before any request.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::databricks::models::{GitReference, GitSource};
use crate::databricks::RepoRef;
use crate::host::{Host, MAX_INPUT_FILE_BYTES};
use crate::pipeline::inputs::PickList;
use crate::pipeline::{InputError, Inputs};
use crate::tasks::connection::Connection;
use crate::tasks::git_ref;
use crate::tasks::repo_update::check_workspace_path;

pub const INPUTS: &[&str] = &[
    "databricksHost",
    "databricksToken",
    "notebookPaths",
    "repoPath",
    "source",
    "repoUrl",
    "gitProvider",
    "clusterMode",
    "existingClusterId",
    "newClusterJson",
    "parameters",
    "timeoutMinutes",
    "runName",
];

pub const SOURCE: PickList = PickList {
    input: "source",
    options: &["workspace", "git"],
    default: "workspace",
};
pub const CLUSTER_MODE: PickList = PickList {
    input: "clusterMode",
    options: &["existing", "new", "serverless"],
    default: "existing",
};
pub const PICK_LISTS: &[PickList] = &[SOURCE, CLUSTER_MODE];
pub const OUTPUTS: &[&str] = &["runId", "runPageUrl", "resultState", "notebookOutput"];
pub const DEFAULT_TIMEOUT_MINUTES: f64 = 60.0;

/// Most notebooks one step submits (Databricks allows up to 1000 tasks in a run).
pub const MAX_NOTEBOOKS: usize = 1000;

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

#[derive(Clone, Debug)]
pub struct Settings {
    pub connection: Connection,
    pub notebooks: Vec<Notebook>,
    pub git_source: Option<GitSource>,
    pub compute: Compute,
    pub parameters: BTreeMap<String, String>,
    /// `None` = no timeout.
    pub timeout: Option<Duration>,
    pub run_name: String,
    pub idempotency_token: String,
}

impl Settings {
    pub fn from_inputs(inputs: &Inputs, host: &dyn Host) -> Result<Settings, InputError> {
        let connection = Connection::from_inputs(inputs)?;
        let source = inputs.pick_list(&SOURCE)?;
        let repo_path = match (source, inputs.get("repoPath")?) {
            ("workspace", Some(path)) => Some(check_workspace_path("repoPath", &path)?),
            _ => None,
        };
        let raw_paths = inputs.text("notebookPaths")?.ok_or_else(|| {
            InputError::new(
                "notebookPaths",
                "is required: list the notebooks to run, one per line",
            )
            .with_hint("e.g. test/unit (relative to repoPath) or /Repos/ci/my-project/test/unit")
        })?;
        let paths = notebook_paths(&raw_paths, source == "git", repo_path.as_deref())?;
        let git_source = if source == "git" {
            Some(git_source(inputs)?)
        } else {
            None
        };
        let compute = compute(inputs, host)?;
        let parameters = match inputs.text("parameters")? {
            Some(text) => parse_parameters(&text)?,
            None => BTreeMap::new(),
        };
        let minutes = inputs.number("timeoutMinutes", DEFAULT_TIMEOUT_MINUTES, 43_200.0)?;
        let timeout = (minutes > 0.0)
            .then(|| Duration::from_secs_f64(minutes * 60.0).max(Duration::from_secs(1)));
        let run_name = match inputs.get("runName")? {
            Some(name) => name,
            None => default_run_name(inputs),
        };
        let notebooks = with_task_keys(paths);
        let idempotency_token = idempotency_token(inputs, host, &notebooks, &run_name);
        Ok(Settings {
            connection,
            notebooks,
            git_source,
            compute,
            parameters,
            timeout,
            run_name,
            idempotency_token,
        })
    }
}

fn notebook_paths(
    raw: &str,
    git: bool,
    repo_path: Option<&str>,
) -> Result<Vec<String>, InputError> {
    const INPUT: &str = "notebookPaths";
    let mut paths: Vec<String> = Vec::new();
    for (number, line) in raw.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: String| {
            Err(InputError::new(
                INPUT,
                format!("line {number} (`{line}`) {why}"),
            ))
        };
        if line.split('/').any(|s| s == ".." || s == ".") || line.contains("//") {
            return bad("has an empty, `.` or `..` segment".into());
        }
        let path = if git {
            if line.starts_with('/') {
                return bad("is absolute, but with source `git` notebook paths are relative to the repository root".into());
            }
            line.to_string()
        } else if line.starts_with('/') {
            line.to_string()
        } else if let Some(repo) = repo_path {
            format!("{repo}/{line}")
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
        if paths.contains(&path) {
            return bad("is listed twice".into());
        }
        paths.push(path);
    }
    if paths.is_empty() {
        return Err(InputError::new(INPUT, "lists no notebook"));
    }
    if paths.len() > MAX_NOTEBOOKS {
        return Err(InputError::new(
            INPUT,
            format!(
                "lists {} notebooks; at most {MAX_NOTEBOOKS} fit in one run",
                paths.len()
            ),
        ));
    }
    Ok(paths)
}

/// Unique, readable task keys (`[A-Za-z0-9_-]`, ≤ 100 chars) from the notebook names.
fn with_task_keys(paths: Vec<String>) -> Vec<Notebook> {
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
    let url = git_ref::repository_url(inputs, "repoUrl")?;
    let provider = git_ref::provider(inputs, "gitProvider", &url)?;
    let reference =
        match git_ref::commit_from_build(inputs) {
            Some(commit) => GitReference::Commit(git_ref::check_commit("source", &commit)?),
            None => match git_ref::ref_from_build(inputs) {
                Some(RepoRef::Branch(branch)) => GitReference::Branch(branch),
                Some(RepoRef::Tag(tag)) => GitReference::Tag(tag),
                None => return Err(InputError::new(
                    "source",
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
            let id = inputs.get("existingClusterId")?.ok_or_else(|| {
                InputError::new("existingClusterId", "is required when clusterMode is `existing`")
                    .with_hint("copy the cluster id from the cluster's page in Databricks, or set clusterMode to `new` or `serverless`")
            })?;
            if id.len() > 100 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(InputError::new(
                    "existingClusterId",
                    format!("`{id}` is not a cluster id (e.g. 0923-164208-abcd123)"),
                ));
            }
            Ok(Compute::Existing(id))
        }
        "new" => {
            let raw = inputs.text("newClusterJson")?.ok_or_else(|| {
                InputError::new("newClusterJson", "is required when clusterMode is `new`")
                    .with_hint(r#"e.g. {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 1}"#)
            })?;
            let text = if raw.trim_start().starts_with(['{', '[']) {
                raw
            } else {
                let path = match inputs.variable("System.DefaultWorkingDirectory") {
                    Some(dir) if !raw.starts_with('/') => format!("{dir}/{raw}"),
                    _ => raw.clone(),
                };
                host.read_file(&path, MAX_INPUT_FILE_BYTES).map_err(|e| {
                    InputError::new(
                        "newClusterJson",
                        format!("is neither inline JSON nor a readable file: {path}: {e}"),
                    )
                })?
            };
            Ok(Compute::New(parse_cluster_spec(&text)?))
        }
        _ => Ok(Compute::Serverless),
    }
}

pub fn parse_cluster_spec(text: &str) -> Result<Map<String, Value>, InputError> {
    const INPUT: &str = "newClusterJson";
    let value: Value = serde_json::from_str(text)
        .map_err(|e| InputError::new(INPUT, format!("is not valid JSON: {e}")))?;
    let Value::Object(spec) = value else {
        return Err(InputError::new(
            INPUT,
            "must be a JSON object (a `new_cluster` specification)",
        ));
    };
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

/// `key=value` lines, or a JSON object of strings (numbers and booleans are converted).
pub fn parse_parameters(text: &str) -> Result<BTreeMap<String, String>, InputError> {
    const INPUT: &str = "parameters";
    let mut parameters = BTreeMap::new();
    if text.trim_start().starts_with('{') {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| InputError::new(INPUT, format!("is not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            unreachable!("starts with a brace")
        };
        for (key, value) in map {
            let value = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    return Err(InputError::new(
                        INPUT,
                        format!("the value of `{key}` is {other}; parameters are strings"),
                    ))
                }
            };
            check_key(&key)?;
            parameters.insert(key, value);
        }
        return Ok(parameters);
    }
    for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
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

fn check_key(key: &str) -> Result<(), InputError> {
    if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InputError::new(
            "parameters",
            format!("`{key}` is not a parameter name (no spaces, not empty)"),
        ));
    }
    Ok(())
}

fn default_run_name(inputs: &Inputs) -> String {
    match (
        inputs.variable("Build.DefinitionName"),
        inputs.variable("Build.BuildNumber"),
    ) {
        (Some(definition), Some(number)) => format!("{definition} {number}"),
        (Some(definition), None) => definition,
        _ => "databricks-azdo notebook test".to_string(),
    }
}

/// Same pipeline step attempt + same notebooks → same token, so a retried submit (even from a
/// retried process) never starts a second run. Outside a pipeline, unique per invocation.
/// Two SipHash passes give 128 bits: uniqueness is all a token needs, and std's hasher keeps
/// a hashing crate out of the wasm core.
fn idempotency_token(
    inputs: &Inputs,
    host: &dyn Host,
    notebooks: &[Notebook],
    run_name: &str,
) -> String {
    use std::hash::{Hash, Hasher};
    let identity = [
        "System.PlanId",
        "System.JobId",
        "System.JobAttempt",
        "System.TaskInstanceId",
    ]
    .map(|name| inputs.variable(name).unwrap_or_default());
    let invocation = identity
        .iter()
        .all(String::is_empty)
        .then(|| (host.unix_millis(), host.elapsed().as_nanos()));
    let digest = |salt: u8| {
        let mut hasher = std::hash::DefaultHasher::new();
        (salt, &identity, invocation, run_name).hash(&mut hasher);
        notebooks.iter().for_each(|n| n.path.hash(&mut hasher));
        hasher.finish()
    };
    format!("azdo-{:016x}{:016x}", digest(1), digest(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notebook_paths_resolve_against_the_repo() {
        let paths = notebook_paths(
            "test/unit\n\n# comment\n/Shared/x/y\n",
            false,
            Some("/Repos/ci/p"),
        )
        .unwrap();
        assert_eq!(paths, ["/Repos/ci/p/test/unit", "/Shared/x/y"]);
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
        let notebooks = with_task_keys(vec!["/a".into(), "/b".into()]);
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
}
