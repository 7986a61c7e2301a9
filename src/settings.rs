//! Resolves parsed command-line arguments and the process environment into the environment a
//! task reads (`INPUT_*` and variables), so the CLI and the pipeline share one validation path.

use std::collections::BTreeMap;

use anyhow::Context as _;
use databricks_azdo::host::{read_small_file, MAX_INPUT_FILE_BYTES};
use databricks_azdo::pipeline::inputs::env_name;
use databricks_azdo::pipeline::OutputMode;

use crate::cli::{Common, OutputFormat, RepoUpdateArgs, RunNotebookTestArgs};
use databricks_azdo::tasks::names::{input, variable};

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
        env.insert(input(input::DATABRICKS_HOST), host.clone());
    }
    if let Some(path) = token_file {
        // A token file is a few hundred bytes: /dev/zero or a FIFO must not hang the CLI.
        let token = read_small_file(path, MAX_INPUT_FILE_BYTES).with_context(|| {
            format!(
                "--token-file {}: cannot read the token file",
                path.display()
            )
        })?;
        env.insert(input(input::DATABRICKS_TOKEN), token.trim().to_string());
    }
    unified_auth(&mut env)?;
    let in_pipeline = env
        .get(variable::TF_BUILD)
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

/// The id of the service connection the CLI makes from the environment.
const CLI_CONNECTION: &str = "cli-environment";

/// The Databricks unified-auth environment variables (what the Databricks CLI and SDKs read),
/// turned into the inputs and the service connection a task would get from the agent, so the
/// CLI signs in through the same checks as the tasks.
fn unified_auth(env: &mut BTreeMap<String, String>) -> anyhow::Result<()> {
    let get = |env: &BTreeMap<String, String>, name: &str| {
        env.get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let has = |env: &BTreeMap<String, String>, names: &[&str]| {
        names.iter().all(|n| get(env, n).is_some())
    };
    let auth_type = match get(env, "DATABRICKS_AUTH_TYPE") {
        Some(kind) => kind.to_ascii_lowercase(),
        None if has(env, &["DATABRICKS_TOKEN"])
            || env.contains_key(&input(input::DATABRICKS_TOKEN)) =>
        {
            "pat".into()
        }
        None if has(env, &["DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"]) => {
            "oauth-m2m".into()
        }
        None if has(
            env,
            &["ARM_CLIENT_ID", "ARM_TENANT_ID", "ARM_CLIENT_SECRET"],
        ) =>
        {
            "azure-client-secret".into()
        }
        None if get(env, "ARM_USE_MSI")
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1") =>
        {
            "azure-msi".into()
        }
        None => "pat".into(),
    };
    let endpoint = |env: &mut BTreeMap<String, String>,
                    scheme: &str,
                    parameters: &[(&str, Option<String>)]| {
        env.insert(
            format!("ENDPOINT_AUTH_SCHEME_{CLI_CONNECTION}"),
            scheme.to_string(),
        );
        for (key, value) in parameters {
            if let Some(value) = value {
                env.insert(
                    format!(
                        "ENDPOINT_AUTH_PARAMETER_{CLI_CONNECTION}_{}",
                        key.to_ascii_uppercase()
                    ),
                    value.clone(),
                );
            }
        }
    };
    match auth_type.as_str() {
        "pat" => {}
        "oauth-m2m" => {
            env.insert(input(input::AUTH_METHOD), "databricksServiceConnection".into());
            env.insert(input(input::DATABRICKS_CONNECTION), CLI_CONNECTION.into());
            let url = get(env, &input(input::DATABRICKS_HOST)).or_else(|| get(env, variable::DATABRICKS_HOST)).unwrap_or_default();
            env.insert(format!("ENDPOINT_URL_{CLI_CONNECTION}"), url);
            let parameters = [("username", get(env, "DATABRICKS_CLIENT_ID")), ("password", get(env, "DATABRICKS_CLIENT_SECRET"))];
            endpoint(env, "UsernamePassword", &parameters);
        }
        "azure-client-secret" | "azure-msi" => {
            env.insert(input(input::AUTH_METHOD), "azureServiceConnection".into());
            env.insert(input(input::AZURE_SUBSCRIPTION), CLI_CONNECTION.into());
            if let Some(id) = get(env, "DATABRICKS_AZURE_RESOURCE_ID") {
                env.insert(input(input::WORKSPACE_RESOURCE_ID), id);
            }
            let authority = match get(env, "AZURE_AUTHORITY_HOST") {
                Some(host) => host,
                None => match get(env, "ARM_ENVIRONMENT").map(|e| e.to_ascii_lowercase()).as_deref() {
                    None | Some("public") | Some("azurecloud") => "https://login.microsoftonline.com/".into(),
                    Some("usgovernment") | Some("azureusgovernment") => "https://login.microsoftonline.us/".into(),
                    Some("china") | Some("azurechinacloud") => "https://login.chinacloudapi.cn/".into(),
                    Some(other) => anyhow::bail!("ARM_ENVIRONMENT `{other}` is not one of: public, usgovernment, china"),
                },
            };
            env.insert(format!("ENDPOINT_DATA_{CLI_CONNECTION}_ACTIVEDIRECTORYAUTHORITY"), authority);
            let client = ("serviceprincipalid", get(env, "ARM_CLIENT_ID"));
            let tenant = ("tenantid", get(env, "ARM_TENANT_ID"));
            if auth_type == "azure-msi" {
                endpoint(env, "ManagedServiceIdentity", &[client, tenant]);
            } else {
                let secret = ("serviceprincipalkey", get(env, "ARM_CLIENT_SECRET"));
                let kind = ("authenticationType", Some("spnKey".to_string()));
                endpoint(env, "ServicePrincipal", &[client, tenant, secret, kind]);
            }
        }
        "azure-devops-oidc" => {
            env.insert(input(input::AUTH_METHOD), "databricksFederation".into());
            if let Some(client) = get(env, "DATABRICKS_CLIENT_ID") {
                env.insert(input(input::CLIENT_ID), client);
            }
        }
        other => anyhow::bail!(
            "DATABRICKS_AUTH_TYPE `{other}` is not one of: pat, oauth-m2m, azure-client-secret, azure-msi, azure-devops-oidc"
        ),
    }
    Ok(())
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
        sparse_checkout,
    } = args;
    let mut resolved = base(common, process_env)?;
    let env = &mut resolved.env;
    set(env, input::MODE, mode);
    set(env, input::REPO_PATH, repo_path);
    set(env, input::REPO_ID, repo_id);
    set(env, input::REPO_URL, repo_url);
    set(env, input::GIT_PROVIDER, git_provider);
    set(env, input::BRANCH, branch);
    set(env, input::TAG, tag);
    set(env, input::EXPECTED_COMMIT, expected_commit);
    set(env, input::ON_COMMIT_MISMATCH, on_commit_mismatch);
    if !sparse_checkout.is_empty() {
        env.insert(input(input::SPARSE_CHECKOUT), sparse_checkout.join("\n"));
    }
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
        retries,
        retry_interval_seconds,
        max_parallel,
        fail_on_failed_tests,
        libraries,
        library_upload_path,
        environment_version,
        cluster_policy_id,
        run_as,
        performance_target,
        budget_policy_id,
    } = args;
    let mut resolved = base(common, process_env)?;
    let env = &mut resolved.env;
    env.insert(input(input::NOTEBOOK_PATHS), notebooks.join("\n"));
    set(env, input::REPO_PATH, repo_path);
    set(env, input::SOURCE, source);
    set(env, input::REPO_URL, repo_url);
    set(env, input::GIT_PROVIDER, git_provider);
    if let Some(commit) = commit {
        env.insert("BUILD_SOURCEVERSION".into(), commit.clone());
    }
    let implied_mode = match (cluster_id, new_cluster) {
        (Some(_), None) => Some("existing".to_string()),
        (None, Some(_)) => Some("new".to_string()),
        _ => None,
    };
    set(
        env,
        input::CLUSTER_MODE,
        &cluster_mode.clone().or(implied_mode),
    );
    set(env, input::EXISTING_CLUSTER_ID, cluster_id);
    set(env, input::NEW_CLUSTER_JSON, new_cluster);
    if !params.is_empty() {
        env.insert(input(input::PARAMETERS), params.join("\n"));
    }
    set(env, input::TIMEOUT_MINUTES, timeout_minutes);
    set(env, input::RUN_NAME, run_name);
    set(env, input::RETRIES, retries);
    set(env, input::RETRY_INTERVAL_SECONDS, retry_interval_seconds);
    set(env, input::MAX_PARALLEL, max_parallel);
    set(env, input::FAIL_ON_FAILED_TESTS, fail_on_failed_tests);
    if !libraries.is_empty() {
        env.insert(input(input::LIBRARIES), libraries.join("\n"));
    }
    set(env, input::LIBRARY_UPLOAD_PATH, library_upload_path);
    set(env, input::ENVIRONMENT_VERSION, environment_version);
    set(env, input::CLUSTER_POLICY_ID, cluster_policy_id);
    set(env, input::RUN_AS, run_as);
    set(env, input::PERFORMANCE_TARGET, performance_target);
    set(env, input::BUDGET_POLICY_ID, budget_policy_id);
    Ok(resolved)
}
