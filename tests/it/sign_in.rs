//! Signing in without a personal access token, on the native runtime: every method through
//! the whole pipeline (repo update, notebook run, cleanup) with the agent's exact environment
//! for its service connection, tokens renewed during a run longer than their lifetime, each
//! refusal translated into what to fix, and no credential printed.

use std::collections::BTreeMap;
use std::time::Duration;

use databricks_azdo::emulator::{Emulator, EntraApplication, Identities, WorkspaceAccess};
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::scenarios::{self, AuthScenario, ScenarioSecrets};
use databricks_azdo::tasks::TaskName;

use crate::common::*;

const SLEEPY: &str =
    "# Databricks notebook source\nimport time\ntime.sleep(4)\ndbutils.notebook.exit('slept')\n";

async fn start(identities: Identities) -> Emulator {
    emulator_with_identities(identities).await
}

fn env_for(
    emulator: &Emulator,
    project: &Project,
    scenario: AuthScenario,
    secrets: &ScenarioSecrets,
) -> BTreeMap<String, String> {
    scenario_env(emulator, project, scenario, secrets)
}

/// No credential of the scenario, and no token the emulator issued, in what was printed
/// (besides the lines that register them as secrets).
fn assert_no_credential(outcome: &Outcome, secrets: &ScenarioSecrets, issued: &[String]) {
    let mut hunted: Vec<&str> = vec![
        &secrets.job_access_token,
        &secrets.client_secret,
        &secrets.identity_header,
    ];
    hunted.extend(issued.iter().map(String::as_str));
    // Every credential the task obtained (id tokens, access tokens, assertions) was registered
    // as a secret: none may appear anywhere else.
    let registered: Vec<String> = outcome
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("##vso[task.setsecret]"))
        .filter(|v| v.len() >= 8 && !v.contains('%'))
        .map(str::to_string)
        .collect();
    hunted.extend(registered.iter().map(String::as_str));
    let key_lines: Vec<&str> = databricks_azdo::emulator::TEST_CERTIFICATE_PEM
        .lines()
        .filter(|l| l.len() >= 16 && !l.starts_with("-----"))
        .collect();
    for (i, line) in outcome
        .stdout
        .lines()
        .chain(outcome.stderr.lines())
        .enumerate()
    {
        if line.starts_with("##vso[task.setsecret]") {
            continue;
        }
        for secret in &hunted {
            assert!(
                !line.contains(secret),
                "line {i} leaks a credential: {line}"
            );
        }
        for key_line in &key_lines {
            assert!(
                !line.contains(key_line),
                "line {i} leaks the certificate's key: {line}"
            );
        }
    }
    outcome.assert_no_secret();
}

async fn whole_pipeline(scenario: AuthScenario) {
    let secrets = ScenarioSecrets::random();
    let emulator = start(scenarios::identities(scenario, &secrets)).await;
    let project = Project::new(&[("unit", PASSING)]);
    let env = env_for(&emulator, &project, scenario, &secrets);
    let steps = [
        (TaskName::RepoUpdate, with(&env, &[("repoPath", REPO_PATH)])),
        (
            TaskName::RunNotebookTest,
            with(
                &env,
                &[
                    ("repoPath", REPO_PATH),
                    ("notebookPaths", "test/unit"),
                    ("existingClusterId", CLUSTER),
                ],
            ),
        ),
        (
            TaskName::RepoUpdate,
            with(&env, &[("repoPath", REPO_PATH), ("mode", "delete")]),
        ),
    ];
    for (task, env) in steps {
        let outcome = run_task(task, env, OutputMode::Agent).await;
        assert_eq!(outcome.code, 0, "{scenario:?} {task:?}: {}", outcome.stdout);
        assert!(
            outcome.stdout.contains("Signed in with"),
            "{scenario:?}: {}",
            outcome.stdout
        );
        assert!(
            outcome.stdout.starts_with("##vso[task.setsecret]"),
            "{scenario:?}: secrets are registered first"
        );
        assert_no_credential(&outcome, &secrets, &emulator.tokens_handed_out());
    }
    assert_eq!(count(&emulator, "POST /api/2.0/repos"), 1, "{scenario:?}");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_federation_runs_the_whole_pipeline_without_a_secret() {
    whole_pipeline(AuthScenario::AzureFederation).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_principal_with_a_client_secret_runs_the_whole_pipeline() {
    whole_pipeline(AuthScenario::AzureSecret).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_principal_with_a_certificate_runs_the_whole_pipeline() {
    whole_pipeline(AuthScenario::AzureCertificate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_identity_runs_the_whole_pipeline() {
    whole_pipeline(AuthScenario::AzureManagedIdentity).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databricks_oauth_m2m_runs_the_whole_pipeline() {
    whole_pipeline(AuthScenario::DatabricksM2m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databricks_token_federation_runs_the_whole_pipeline() {
    whole_pipeline(AuthScenario::DatabricksFederation).await;
}

/// Tokens that live 2 s, a notebook that runs 4 s: the poll loop keeps working, renewing
/// before expiry, and each exchange asks Azure DevOps for a new id token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_renewed_during_a_run_longer_than_their_lifetime() {
    let secrets = ScenarioSecrets::random();
    let identities =
        scenarios::identities(AuthScenario::AzureFederation, &secrets).with_token_lifetime(2);
    let emulator = start(identities).await;
    let project = Project::new(&[("sleepy", SLEEPY)]);
    let env = env_for(&emulator, &project, AuthScenario::AzureFederation, &secrets);
    let env = with(
        &env,
        &[
            ("source", "git"),
            ("notebookPaths", "test/sleepy"),
            ("existingClusterId", CLUSTER),
        ],
    );
    let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    let issued = emulator.tokens_issued();
    let entra = issued.get("entra").copied().unwrap_or_default();
    let devops = issued.get("devops").copied().unwrap_or_default();
    assert!(entra >= 2, "the token was renewed: {issued:?}");
    assert_eq!(
        devops, entra,
        "a new id token for every exchange: {issued:?}"
    );
    assert_no_credential(&outcome, &secrets, &[]);
    emulator.shutdown().await;
}

/// Runs RepoUpdate with `scenario`'s environment changed by `change`, against `identities`.
async fn refused(
    scenario: AuthScenario,
    secrets: &ScenarioSecrets,
    identities: Identities,
    change: &[(&str, &str)],
) -> (Outcome, Emulator) {
    let secrets = secrets.clone();
    let emulator = start(identities).await;
    let project = Project::new(&[("unit", PASSING)]);
    let env = env_for(&emulator, &project, scenario, &secrets);
    let env = with(&with(&env, &[("repoPath", REPO_PATH)]), change);
    let outcome = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;
    assert_ne!(outcome.code, 0, "{}", outcome.stdout);
    assert_no_credential(&outcome, &secrets, &[]);
    (outcome, emulator)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_without_a_federated_credential_is_named_exactly() {
    let secrets = ScenarioSecrets::random();
    let devops = scenarios::devops(&secrets);
    // The app trusts another connection's subject.
    let identities = Identities::default()
        .with_devops(devops.clone())
        .with_application(
            EntraApplication::new(scenarios::TENANT, scenarios::AZURE_CLIENT_ID).federated(
                &devops.issuer(),
                &devops.connection_subject("another-connection"),
            ),
        )
        .with_workspace(WorkspaceAccess::new().principal(scenarios::AZURE_CLIENT_ID));
    let (outcome, emulator) =
        refused(AuthScenario::AzureFederation, &secrets, identities, &[]).await;
    let expected_subject = devops.connection_subject(scenarios::AZURE_CONNECTION_NAME);
    assert!(
        outcome.stdout.contains("no federated credential"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome
            .stdout
            .contains(&format!("issuer `{}`", devops.issuer())),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome
            .stdout
            .contains(&format!("subject `{expected_subject}`")),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains("azureSubscription"),
        "{}",
        outcome.stdout
    );
    assert_eq!(count(&emulator, "POST /api/2.0/repos"), 0);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_expired_client_secret_and_an_unknown_app_are_explained() {
    let secrets = ScenarioSecrets::random();
    let expired = Identities::default()
        .with_devops(scenarios::devops(&secrets))
        .with_application(
            EntraApplication::new(scenarios::TENANT, scenarios::AZURE_CLIENT_ID)
                .expired_secret("whatever"),
        );
    let (outcome, emulator) = refused(AuthScenario::AzureSecret, &secrets, expired, &[]).await;
    // The scenario's secret differs from the one registered: an invalid secret.
    assert!(
        outcome.stdout.contains("is not valid") || outcome.stdout.contains("has expired"),
        "{}",
        outcome.stdout
    );
    emulator.shutdown().await;

    let unknown_app = Identities::default()
        .with_devops(scenarios::devops(&secrets))
        .with_application(
            EntraApplication::new(scenarios::TENANT, "00000000-0000-0000-0000-00000000beef")
                .secret("s"),
        );
    let (outcome, emulator) = refused(AuthScenario::AzureSecret, &secrets, unknown_app, &[]).await;
    assert!(
        outcome.stdout.contains("was not found in the tenant"),
        "{}",
        outcome.stdout
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_principal_outside_the_workspace_gets_the_resource_id_hint_and_is_added_with_it()
{
    let secrets = ScenarioSecrets::random();
    let app = EntraApplication::new(scenarios::TENANT, scenarios::AZURE_CLIENT_ID)
        .secret(&secrets.client_secret);
    let identities = Identities::default()
        .with_devops(scenarios::devops(&secrets))
        .with_application(app)
        .with_workspace(
            WorkspaceAccess::new()
                .resource_id(scenarios::WORKSPACE_RESOURCE_ID)
                .contributor(scenarios::AZURE_CLIENT_ID),
        );
    let emulator = start(identities).await;
    let project = Project::new(&[("unit", PASSING)]);
    let env = with(
        &env_for(&emulator, &project, AuthScenario::AzureSecret, &secrets),
        &[("repoPath", REPO_PATH)],
    );
    let outcome = run_task(TaskName::RepoUpdate, env.clone(), OutputMode::Agent).await;
    assert_ne!(outcome.code, 0);
    assert!(
        outcome.stdout.contains("workspaceResourceId"),
        "{}",
        outcome.stdout
    );
    assert_no_credential(&outcome, &secrets, &[]);

    let env = with(
        &env,
        &[("workspaceResourceId", scenarios::WORKSPACE_RESOURCE_ID)],
    );
    let outcome = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    assert!(emulator
        .workspace_principals()
        .contains(&scenarios::AZURE_CLIENT_ID.to_string()));
    assert_no_credential(&outcome, &secrets, &[]);
    emulator.shutdown().await;
}

/// `env` with variables set as they are named (ids keep their case).
fn set(env: &BTreeMap<String, String>, variables: &[(&String, &str)]) -> BTreeMap<String, String> {
    let mut env = env.clone();
    for (name, value) in variables {
        env.insert(name.to_string(), value.to_string());
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_fails_before_any_request() {
    let secrets = ScenarioSecrets::random();
    let emulator = start(scenarios::identities(
        AuthScenario::AzureFederation,
        &secrets,
    ))
    .await;
    let project = Project::new(&[("unit", PASSING)]);
    let base = with(
        &env_for(&emulator, &project, AuthScenario::AzureFederation, &secrets),
        &[("repoPath", REPO_PATH)],
    );
    let id = scenarios::AZURE_CONNECTION;
    let cases: Vec<(&str, BTreeMap<String, String>, &str)> = vec![
        (
            "no connection",
            {
                let mut env = base.clone();
                env.remove("INPUT_AZURESUBSCRIPTION");
                env
            },
            "input `azureSubscription`: is required",
        ),
        (
            "a connection the agent did not hand over",
            with(&base, &[("azureSubscription", "not-there")]),
            "was not handed to this step",
        ),
        (
            "an unsupported scheme",
            set(
                &base,
                &[(&format!("ENDPOINT_AUTH_SCHEME_{id}"), "PublishProfile")],
            ),
            "`PublishProfile`",
        ),
        (
            "no job access token",
            {
                let mut env = base.clone();
                env.remove("ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN");
                env
            },
            "variable `System.AccessToken`",
        ),
        (
            "a malformed certificate",
            set(
                &base,
                &[
                    (&format!("ENDPOINT_AUTH_SCHEME_{id}"), "ServicePrincipal"),
                    (
                        &format!("ENDPOINT_AUTH_PARAMETER_{id}_AUTHENTICATIONTYPE"),
                        "spnCertificate",
                    ),
                    (
                        &format!("ENDPOINT_AUTH_PARAMETER_{id}_SERVICEPRINCIPALCERTIFICATE"),
                        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----",
                    ),
                ],
            ),
            "certificate cannot be used",
        ),
        (
            "a malformed resource id",
            with(
                &base,
                &[("workspaceResourceId", "/subscriptions/x/workspaces/y")],
            ),
            "input `workspaceResourceId`",
        ),
        (
            "an Azure Arc identity endpoint (a challenge, not built)",
            with(
                &set(
                    &base,
                    &[(
                        &format!("ENDPOINT_AUTH_SCHEME_{id}"),
                        "ManagedServiceIdentity",
                    )],
                ),
                &[(
                    "IDENTITY_ENDPOINT",
                    "http://localhost:40342/metadata/identity/oauth2/token",
                )],
            ),
            "variable `IDENTITY_HEADER`",
        ),
        (
            "an unknown method",
            with(&base, &[("authMethod", "azureServiceConection")]),
            "did you mean `azureServiceConnection`",
        ),
    ];
    for (case, env, expected) in cases {
        let outcome = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;
        assert_eq!(outcome.code, 2, "{case}: {}", outcome.stdout);
        assert!(
            outcome.stdout.contains(expected),
            "{case}: expected {expected:?} in {}",
            outcome.stdout
        );
        assert_no_credential(&outcome, &secrets, &[]);
    }
    assert_eq!(total_api_requests(&emulator), 0, "no request was sent");
    assert_eq!(emulator.tokens_issued().values().sum::<u64>(), 0);
    emulator.shutdown().await;
}

/// The binary, as a script would run it: the Databricks unified-auth variables, each output
/// mode, no credential printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_reads_the_unified_auth_variables() {
    let secrets = ScenarioSecrets::random();
    let devops = scenarios::devops(&secrets);
    let identities = Identities::default()
        .with_devops(devops.clone())
        .with_application(
            EntraApplication::new(scenarios::TENANT, scenarios::AZURE_CLIENT_ID)
                .secret(&secrets.client_secret),
        )
        .with_managed_identity(databricks_azdo::emulator::ManagedIdentity::new(
            scenarios::MSI_CLIENT_ID,
        ))
        .with_workspace(
            WorkspaceAccess::new()
                .principal(scenarios::AZURE_CLIENT_ID)
                .principal(scenarios::MSI_CLIENT_ID)
                .oauth_client(scenarios::DATABRICKS_CLIENT_ID, &secrets.client_secret)
                .federation_policy(
                    scenarios::DATABRICKS_CLIENT_ID,
                    &devops.issuer(),
                    &devops.pipeline_subject(),
                ),
        );
    let emulator = start(identities).await;
    let base = emulator.base_url();
    let pipeline = scenarios::agent_env(AuthScenario::Pat, &base, &secrets);
    let cases: Vec<(&str, Vec<(String, String)>)> = vec![
        (
            "oauth-m2m",
            vec![
                (
                    "DATABRICKS_CLIENT_ID".into(),
                    scenarios::DATABRICKS_CLIENT_ID.into(),
                ),
                (
                    "DATABRICKS_CLIENT_SECRET".into(),
                    secrets.client_secret.clone(),
                ),
            ],
        ),
        (
            "azure-client-secret",
            vec![
                ("ARM_CLIENT_ID".into(), scenarios::AZURE_CLIENT_ID.into()),
                ("ARM_TENANT_ID".into(), scenarios::TENANT.into()),
                ("ARM_CLIENT_SECRET".into(), secrets.client_secret.clone()),
                ("AZURE_AUTHORITY_HOST".into(), format!("{base}/")),
            ],
        ),
        (
            "azure-msi",
            vec![
                ("ARM_USE_MSI".into(), "true".into()),
                ("AZURE_POD_IDENTITY_AUTHORITY_HOST".into(), base.clone()),
            ],
        ),
        (
            "azure-devops-oidc",
            vec![
                ("DATABRICKS_AUTH_TYPE".into(), "azure-devops-oidc".into()),
                (
                    "DATABRICKS_CLIENT_ID".into(),
                    scenarios::DATABRICKS_CLIENT_ID.into(),
                ),
                (
                    "SYSTEM_ACCESSTOKEN".into(),
                    secrets.job_access_token.clone(),
                ),
                (
                    "SYSTEM_OIDCREQUESTURI".into(),
                    pipeline["SYSTEM_OIDCREQUESTURI"].clone(),
                ),
            ],
        ),
    ];
    for (kind, variables) in cases {
        for output in ["text", "json"] {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_databricks-azdo"));
            command
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", std::env::temp_dir())
                .env("DATABRICKS_HOST", &base)
                .envs(variables.iter().cloned())
                .args([
                    "repo-update",
                    "--mode",
                    "delete",
                    "--repo-path",
                    "/Repos/ci/none",
                ])
                .args(["--output", output]);
            let result = tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap();
            let outcome = Outcome {
                code: result.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&result.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&result.stderr).into_owned(),
            };
            assert_eq!(
                outcome.code, 0,
                "{kind} {output}: {}{}",
                outcome.stdout, outcome.stderr
            );
            let printed = format!("{}{}", outcome.stdout, outcome.stderr);
            assert!(
                printed.contains("Signed in with"),
                "{kind} {output}: {printed}"
            );
            assert_no_credential(&outcome, &secrets, &[]);
        }
    }
    let issued = emulator.tokens_issued();
    assert!(issued.values().sum::<u64>() >= 8, "{issued:?}");
    emulator.shutdown().await;
}

/// A token the workspace stops accepting before the client expected (its clock jumped past the
/// expiry mid-run) is answered by one renewal and one retry: the run is still followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_mid_run_is_answered_by_one_renewal_and_one_retry() {
    let secrets = ScenarioSecrets::random();
    let emulator = start(scenarios::identities(
        AuthScenario::AzureFederation,
        &secrets,
    ))
    .await;
    let project = Project::new(&[("sleepy", SLEEPY)]);
    let env = with(
        &env_for(&emulator, &project, AuthScenario::AzureFederation, &secrets),
        &[
            ("source", "git"),
            ("notebookPaths", "test/sleepy"),
            ("existingClusterId", CLUSTER),
        ],
    );
    let expire_mid_run = async {
        let deadline = std::time::Instant::now() + DEADLINE;
        while count(&emulator, "GET /api/2.2/jobs/runs/get") == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the run was never polled"
            );
            tokio::time::sleep(ms(10)).await;
        }
        emulator.advance_identity_clock(Duration::from_secs(7200));
    };
    let (outcome, ()) = tokio::join!(
        run_task(TaskName::RunNotebookTest, env, OutputMode::Agent),
        expire_mid_run
    );
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    let issued = emulator.tokens_issued();
    assert_eq!(issued.get("entra").copied(), Some(2), "{issued:?}");
    assert_no_credential(&outcome, &secrets, &[]);
    emulator.shutdown().await;
}

/// The secret hunt in every output mode (the agent's log, a terminal, a JSON document for
/// scripts): no credential of any method, and none of the tokens the parties handed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_is_printed_in_any_output_mode() {
    let scenarios_hunted = [
        AuthScenario::AzureFederation,
        AuthScenario::AzureSecret,
        AuthScenario::AzureCertificate,
        AuthScenario::AzureManagedIdentity,
        AuthScenario::DatabricksM2m,
        AuthScenario::DatabricksFederation,
    ];
    let (mut hunted_tokens, mut lines_checked) = (0, 0);
    for scenario in scenarios_hunted {
        let secrets = ScenarioSecrets::random();
        let emulator = start(scenarios::identities(scenario, &secrets)).await;
        let project = Project::new(&[("unit", PASSING), ("bad", FAILING)]);
        let env = with(
            &env_for(&emulator, &project, scenario, &secrets),
            &[
                ("source", "git"),
                ("notebookPaths", "test/unit\ntest/bad"),
                ("existingClusterId", CLUSTER),
            ],
        );
        for mode in [OutputMode::Agent, OutputMode::Terminal, OutputMode::Json] {
            let outcome = run_task(TaskName::RunNotebookTest, env.clone(), mode).await;
            assert_eq!(
                outcome.code, 1,
                "{scenario:?} {mode:?}: {}{}",
                outcome.stdout, outcome.stderr
            );
            let handed_out = emulator.tokens_handed_out();
            assert!(!handed_out.is_empty(), "{scenario:?}");
            lines_checked += outcome.stdout.lines().count() + outcome.stderr.lines().count();
            assert_no_credential(&outcome, &secrets, &handed_out);
        }
        hunted_tokens += emulator.tokens_handed_out().len();
        emulator.shutdown().await;
    }
    assert!(hunted_tokens >= 18, "{hunted_tokens}");
    // The README quotes these figures.
    eprintln!("secret hunt: {hunted_tokens} tokens handed out, {lines_checked} lines checked, 6 methods x 3 output modes");
}

/// The pipeline's steps signed in with `scenario` against `identities`; the outcomes.
async fn steps_with(
    scenario: AuthScenario,
    secrets: &ScenarioSecrets,
    identities: Identities,
    extra_env: &[(&str, &str)],
) -> (Vec<Outcome>, Emulator) {
    let emulator = start(identities).await;
    let project = Project::new(&[("unit", PASSING)]);
    let env = with(&env_for(&emulator, &project, scenario, secrets), extra_env);
    let mut outcomes = Vec::new();
    for (task, inputs) in [
        (TaskName::RepoUpdate, vec![("repoPath", REPO_PATH)]),
        (
            TaskName::RunNotebookTest,
            vec![
                ("repoPath", REPO_PATH),
                ("notebookPaths", "test/unit"),
                ("existingClusterId", CLUSTER),
            ],
        ),
    ] {
        let outcome = run_task(task, with(&env, &inputs), OutputMode::Agent).await;
        assert_no_credential(&outcome, secrets, &emulator.tokens_handed_out());
        outcomes.push(outcome);
    }
    (outcomes, emulator)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_is_found_through_the_host_metadata_also_on_a_unified_host() {
    let secrets = ScenarioSecrets::random();
    let oauth = || {
        WorkspaceAccess::new().oauth_client(scenarios::DATABRICKS_CLIENT_ID, &secrets.client_secret)
    };
    let base = Identities::default().with_devops(scenarios::devops(&secrets));
    for (case, workspace) in [
        ("workspace host", oauth()),
        (
            "unified host",
            oauth().unified_host("a1b2c3d4-0000-4000-8000-0000000000aa"),
        ),
    ] {
        let (outcomes, emulator) = steps_with(
            AuthScenario::DatabricksM2m,
            &secrets,
            base.clone().with_workspace(workspace),
            &[],
        )
        .await;
        for outcome in &outcomes {
            assert_eq!(outcome.code, 0, "{case}: {}", outcome.stdout);
        }
        let counts = emulator.request_counts();
        assert!(
            counts
                .get("GET /.well-known/databricks-config")
                .is_some_and(|n| *n >= 2),
            "{case}: the host metadata is read first: {counts:?}"
        );
        let account_token = "POST /oidc/accounts/a1b2c3d4-0000-4000-8000-0000000000aa/v1/token";
        let (used, unused) = if case == "unified host" {
            (account_token, "POST /oidc/v1/token")
        } else {
            ("POST /oidc/v1/token", account_token)
        };
        assert!(
            counts.get(used).is_some_and(|n| *n >= 1),
            "{case}: {counts:?}"
        );
        assert!(!counts.contains_key(unused), "{case}: {counts:?}");
        emulator.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unified_host_refuses_calls_that_do_not_name_the_workspace() {
    // The emulator's side of the header: without it, the unified host's token is refused.
    let secrets = ScenarioSecrets::random();
    let identities = Identities::default().with_workspace(
        WorkspaceAccess::new()
            .oauth_client(scenarios::DATABRICKS_CLIENT_ID, &secrets.client_secret)
            .unified_host("acct-1"),
    );
    let emulator = start(identities).await;
    let http = http();
    let base = emulator.base_url();
    let metadata = json_of(http.get(format!("{base}/.well-known/databricks-config"))).await;
    assert_eq!(
        metadata["oidc_endpoint"],
        format!("{base}/oidc/accounts/{{account_id}}")
    );
    assert_eq!(metadata["account_id"], "acct-1");
    let classic = http
        .get(format!(
            "{base}/oidc/.well-known/oauth-authorization-server"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        classic.status(),
        404,
        "a unified host has no classic OAuth routes"
    );
    let token = json_of(
        http.post(format!("{base}/oidc/accounts/acct-1/v1/token"))
            .basic_auth(
                scenarios::DATABRICKS_CLIENT_ID,
                Some(&secrets.client_secret),
            )
            .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")]),
    )
    .await;
    let access = token["access_token"].as_str().unwrap();
    let status = |id: Option<&'static str>| {
        let mut request = http
            .get(format!("{base}/api/2.0/workspace/get-status?path=/"))
            .bearer_auth(access);
        if let Some(id) = id {
            request = request.header("X-Databricks-Workspace-Id", id);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(None).await, 401);
    assert_eq!(status(Some("999")).await, 401);
    assert_eq!(status(Some("1234567890")).await, 200);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_host_metadata_the_classic_discovery_is_used() {
    let secrets = ScenarioSecrets::random();
    let identities = Identities::default().with_workspace(
        WorkspaceAccess::new()
            .oauth_client(scenarios::DATABRICKS_CLIENT_ID, &secrets.client_secret),
    );
    for rule in [
        "GET /.well-known/databricks-config=404",
        "GET /.well-known/databricks-config=rewrite:not-json",
        "GET /.well-known/databricks-config=drop-before",
    ] {
        let emulator = start(identities.clone()).await;
        emulator.set_faults(faults(&[rule]));
        let project = Project::new(&[("unit", PASSING)]);
        let env = env_for(&emulator, &project, AuthScenario::DatabricksM2m, &secrets);
        let outcome = run_task(
            TaskName::RepoUpdate,
            with(&env, &[("repoPath", REPO_PATH)]),
            OutputMode::Agent,
        )
        .await;
        assert_eq!(outcome.code, 0, "{rule}: {}", outcome.stdout);
        assert_eq!(
            count(
                &emulator,
                "GET /oidc/.well-known/oauth-authorization-server"
            ),
            1,
            "{rule}"
        );
        emulator.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_tokens_of_the_entra_issuer_sign_in_with_entra_and_with_databricks_federation() {
    let secrets = ScenarioSecrets::random();
    let devops = scenarios::devops(&secrets).entra_issued_connection(
        scenarios::AZURE_CONNECTION,
        scenarios::AZURE_CONNECTION_NAME,
        scenarios::TENANT,
    );
    let (issuer, subject) = devops.federation_pair(scenarios::AZURE_CONNECTION).unwrap();
    assert!(
        issuer.starts_with("https://login.microsoftonline.com/"),
        "{issuer}"
    );
    assert!(subject.starts_with("/eid1/c/pub/t/"), "{subject}");

    // Microsoft Entra: the app registration trusts the Entra pair.
    let entra = Identities::default()
        .with_devops(devops.clone())
        .with_application(
            EntraApplication::new(scenarios::TENANT, scenarios::AZURE_CLIENT_ID)
                .federated(&issuer, &subject),
        )
        .with_workspace(WorkspaceAccess::new().principal(scenarios::AZURE_CLIENT_ID));
    let (outcomes, emulator) =
        steps_with(AuthScenario::AzureFederation, &secrets, entra, &[]).await;
    for outcome in &outcomes {
        assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    }
    emulator.shutdown().await;

    // The same app still trusting the retired issuer's pair: refused, and the message shows
    // the pair the token carries, to copy into the federated credential.
    let stale = Identities::default()
        .with_devops(devops.clone())
        .with_application(
            EntraApplication::new(scenarios::TENANT, scenarios::AZURE_CLIENT_ID).federated(
                &devops.issuer(),
                &devops.connection_subject(scenarios::AZURE_CONNECTION_NAME),
            ),
        )
        .with_workspace(WorkspaceAccess::new().principal(scenarios::AZURE_CLIENT_ID));
    let (outcome, emulator) = refused(AuthScenario::AzureFederation, &secrets, stale, &[]).await;
    assert!(
        outcome
            .stdout
            .contains(&format!("issuer `{issuer}`, subject `{subject}`")),
        "{}",
        outcome.stdout
    );
    emulator.shutdown().await;

    // Databricks token federation through the Databricks workspace connection, whose id
    // tokens Entra issues too.
    let connection = scenarios::DATABRICKS_CONNECTION;
    let devops = scenarios::devops(&secrets).entra_issued_connection(
        connection,
        "databricks-workspace",
        scenarios::TENANT,
    );
    let (issuer, subject) = devops.federation_pair(connection).unwrap();
    let workspace = Identities::default().with_devops(devops).with_workspace(
        WorkspaceAccess::new().federation_policy(
            scenarios::DATABRICKS_CLIENT_ID,
            &issuer,
            &subject,
        ),
    );
    let emulator = start(workspace).await;
    let project = Project::new(&[("unit", PASSING)]);
    let mut env = env_for(
        &emulator,
        &project,
        AuthScenario::DatabricksFederation,
        &secrets,
    );
    scenarios::connection_env(
        &mut env,
        connection,
        &emulator.base_url(),
        "None",
        &[("clientId", scenarios::DATABRICKS_CLIENT_ID.to_string())],
        &[],
    );
    let env = with(
        &env,
        &[
            ("authMethod", "databricksServiceConnection"),
            ("databricksConnection", connection),
            ("repoPath", REPO_PATH),
        ],
    );
    let outcome = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    assert_no_credential(&outcome, &secrets, &emulator.tokens_handed_out());
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_assigned_managed_identity_is_named_from_its_token() {
    let secrets = ScenarioSecrets::random();
    let mut identity = databricks_azdo::emulator::ManagedIdentity::new(scenarios::MSI_CLIENT_ID);
    identity.tenant_id = Some("0f0e0d0c-0000-4000-8000-0000000000ee".into());
    let identities = Identities::default()
        .with_managed_identity(identity)
        .with_workspace(WorkspaceAccess::new().principal(scenarios::MSI_CLIENT_ID));
    let (outcomes, emulator) = steps_with(
        AuthScenario::AzureManagedIdentity,
        &secrets,
        identities,
        &[],
    )
    .await;
    for outcome in &outcomes {
        assert_eq!(outcome.code, 0, "{}", outcome.stdout);
        // The connection names no client id (system-assigned); its tenant wins over the token's.
        let line = outcome
            .stdout
            .lines()
            .find(|l| l.starts_with("Signed in with"))
            .unwrap();
        assert!(
            line.contains(&format!(
                ": client id {}, tenant {} (read from its token)",
                scenarios::MSI_CLIENT_ID,
                scenarios::TENANT
            )),
            "{line}"
        );
    }
    emulator.shutdown().await;
}
