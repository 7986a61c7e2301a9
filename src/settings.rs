//! Resolves parsed command-line arguments and the process environment into the environment a
//! task reads (`INPUT_*` and variables), so the CLI and the pipeline share one validation path.

use std::collections::BTreeMap;

use anyhow::Context as _;
use databricks_azdo::host::{read_small_file, MAX_INPUT_FILE_BYTES};
use databricks_azdo::pipeline::inputs::env_name;
use databricks_azdo::pipeline::OutputMode;

use crate::cli::{Common, OutputFormat, RepoUpdateArgs, RunNotebookTestArgs};

pub struct Resolved {
    pub env: BTreeMap<String, String>,
    pub mode: OutputMode,
    pub verbose: bool,
}

fn base(common: &Common, process_env: BTreeMap<String, String>) -> anyhow::Result<Resolved> {
    let Common {
        host,
        token_file,
        output,
        verbose,
    } = common;
    // Stray INPUT_* variables of the shell must not leak into a CLI run.
    let mut env: BTreeMap<String, String> = process_env
        .into_iter()
        .filter(|(k, _)| !k.starts_with("INPUT_"))
        .collect();
    if let Some(host) = host {
        env.insert(input("databricksHost"), host.clone());
    }
    if let Some(path) = token_file {
        // A token file is a few hundred bytes: /dev/zero or a FIFO must not hang the CLI.
        let token = read_small_file(path, MAX_INPUT_FILE_BYTES).with_context(|| {
            format!(
                "--token-file {}: cannot read the token file",
                path.display()
            )
        })?;
        env.insert(input("databricksToken"), token.trim().to_string());
    }
    let in_pipeline = env
        .get("TF_BUILD")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mode = match output {
        OutputFormat::Json => OutputMode::Json,
        OutputFormat::Text if in_pipeline => OutputMode::Agent,
        OutputFormat::Text => OutputMode::Terminal,
    };
    Ok(Resolved {
        env,
        mode,
        verbose: *verbose,
    })
}

fn input(name: &str) -> String {
    format!("INPUT_{}", env_name(name))
}

fn set(env: &mut BTreeMap<String, String>, name: &str, value: &Option<String>) {
    if let Some(value) = value {
        env.insert(input(name), value.clone());
    }
}

pub fn repo_update(
    args: &RepoUpdateArgs,
    process_env: BTreeMap<String, String>,
) -> anyhow::Result<Resolved> {
    let RepoUpdateArgs {
        common,
        mode,
        repo_path,
        repo_id,
        repo_url,
        git_provider,
        branch,
        tag,
        expected_commit,
        on_commit_mismatch,
    } = args;
    let mut resolved = base(common, process_env)?;
    let env = &mut resolved.env;
    set(env, "mode", mode);
    set(env, "repoPath", repo_path);
    set(env, "repoId", repo_id);
    set(env, "repoUrl", repo_url);
    set(env, "gitProvider", git_provider);
    set(env, "branch", branch);
    set(env, "tag", tag);
    set(env, "expectedCommit", expected_commit);
    set(env, "onCommitMismatch", on_commit_mismatch);
    Ok(resolved)
}

pub fn run_notebook_test(
    args: &RunNotebookTestArgs,
    process_env: BTreeMap<String, String>,
) -> anyhow::Result<Resolved> {
    let RunNotebookTestArgs {
        common,
        notebooks,
        repo_path,
        source,
        repo_url,
        git_provider,
        commit,
        cluster_mode,
        cluster_id,
        new_cluster,
        params,
        timeout_minutes,
        run_name,
    } = args;
    let mut resolved = base(common, process_env)?;
    let env = &mut resolved.env;
    env.insert(input("notebookPaths"), notebooks.join("\n"));
    set(env, "repoPath", repo_path);
    set(env, "source", source);
    set(env, "repoUrl", repo_url);
    set(env, "gitProvider", git_provider);
    if let Some(commit) = commit {
        env.insert("BUILD_SOURCEVERSION".into(), commit.clone());
    }
    let implied_mode = match (cluster_id, new_cluster) {
        (Some(_), None) => Some("existing".to_string()),
        (None, Some(_)) => Some("new".to_string()),
        _ => None,
    };
    set(env, "clusterMode", &cluster_mode.clone().or(implied_mode));
    set(env, "existingClusterId", cluster_id);
    set(env, "newClusterJson", new_cluster);
    if !params.is_empty() {
        env.insert(input("parameters"), params.join("\n"));
    }
    set(env, "timeoutMinutes", timeout_minutes);
    set(env, "runName", run_name);
    Ok(resolved)
}
