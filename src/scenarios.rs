//! Sign-in scenarios against the emulator, one per way a pipeline can prove who it is: the
//! parties the emulator plays (Azure DevOps, Microsoft Entra, the instance metadata service,
//! the workspace's OAuth server), and the environment the agent would give a task for it
//! (inputs, the service connection's `ENDPOINT_*` variables, the job's ids and access token).
//! The demo (`demo --auth <method>`) and the tests use the same ones.

use std::collections::BTreeMap;

use crate::emulator::{
    DevOps, EntraApplication, Identities, ManagedIdentity, WorkspaceAccess, TEST_CERTIFICATE_PEM,
};

/// Every way to sign in the demo shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthScenario {
    /// A personal access token from a variable group.
    Pat,
    /// An Azure service connection with workload identity federation: no secret anywhere.
    AzureFederation,
    /// An Azure service connection: a service principal with a client secret.
    AzureSecret,
    /// An Azure service connection: a service principal with a certificate.
    AzureCertificate,
    /// An Azure service connection: the agent machine's managed identity.
    AzureManagedIdentity,
    /// A Databricks workspace service connection with an OAuth client id and secret (M2M).
    DatabricksM2m,
    /// Databricks token federation with the pipeline's id token.
    DatabricksFederation,
}

pub const ORGANIZATION: &str = "contoso";
pub const ORGANIZATION_ID: &str = "0d6b3e2a-8a51-4c0e-9d7f-5e4b0c1a2f30";
pub const PROJECT: &str = "income-model";
pub const PROJECT_ID: &str = "7a1f9c44-2b3d-4e5f-8a6b-9c0d1e2f3a4b";
pub const PIPELINE: &str = "income-model-ci";
pub const PLAN_ID: &str = "3f2e1d0c-9b8a-4756-8493-a2b1c0d9e8f7";
pub const JOB_ID: &str = "12f1170f-54f2-53f3-20dd-22fc7dff55f9";
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// The Entra application behind the Azure service connection.
pub const AZURE_CLIENT_ID: &str = "9b0c1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4";
/// The service connection's id and name.
pub const AZURE_CONNECTION: &str = "5e8a1b9c-2d3f-4a5b-9c6d-7e8f9a0b1c2d";
pub const AZURE_CONNECTION_NAME: &str = "databricks-ci";
pub const DATABRICKS_CONNECTION: &str = "c4d5e6f7-0819-4a2b-8c3d-4e5f60718293";
/// The managed identity of the agent's machine.
pub const MSI_CLIENT_ID: &str = "e1f2a3b4-c5d6-4e7f-8091-a2b3c4d5e6f7";
/// A Databricks service principal (OAuth M2M and federation).
pub const DATABRICKS_CLIENT_ID: &str = "1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b";
pub const WORKSPACE_RESOURCE_ID: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/ml/providers/Microsoft.Databricks/workspaces/income-model";

/// Secrets of a scenario: made fresh for each run, so that a test can hunt for them.
#[derive(Clone)]
pub struct ScenarioSecrets {
    pub job_access_token: String,
    pub client_secret: String,
    pub identity_header: String,
}

impl ScenarioSecrets {
    pub fn random() -> ScenarioSecrets {
        let word = |prefix: &str| {
            format!(
                "{prefix}-{:016x}{:016x}",
                fastrand::u64(..),
                fastrand::u64(..)
            )
        };
        ScenarioSecrets {
            job_access_token: word("job"),
            client_secret: word("spn~secret"),
            identity_header: word("idh"),
        }
    }
}

pub fn devops(secrets: &ScenarioSecrets) -> DevOps {
    DevOps::new(
        ORGANIZATION,
        ORGANIZATION_ID,
        PROJECT,
        PROJECT_ID,
        PIPELINE,
        &secrets.job_access_token,
    )
    .connection(AZURE_CONNECTION, AZURE_CONNECTION_NAME)
    .connection(DATABRICKS_CONNECTION, "databricks-workspace")
}

/// The parties the emulator plays for `scenario`: each identity known, trusted and a user of
/// the workspace.
pub fn identities(scenario: AuthScenario, secrets: &ScenarioSecrets) -> Identities {
    let devops = devops(secrets);
    let issuer = devops.issuer();
    let app = EntraApplication::new(TENANT, AZURE_CLIENT_ID);
    let base = Identities::default().with_devops(devops.clone());
    match scenario {
        AuthScenario::Pat => base,
        AuthScenario::AzureFederation => base
            .with_application(
                app.federated(&issuer, &devops.connection_subject(AZURE_CONNECTION_NAME)),
            )
            .with_workspace(WorkspaceAccess::new().principal(AZURE_CLIENT_ID)),
        AuthScenario::AzureSecret => base
            .with_application(app.secret(&secrets.client_secret))
            .with_workspace(WorkspaceAccess::new().principal(AZURE_CLIENT_ID)),
        AuthScenario::AzureCertificate => base
            .with_application(app.certificate(TEST_CERTIFICATE_PEM))
            .with_workspace(WorkspaceAccess::new().principal(AZURE_CLIENT_ID)),
        AuthScenario::AzureManagedIdentity => base
            .with_managed_identity(ManagedIdentity::new(MSI_CLIENT_ID))
            .with_workspace(WorkspaceAccess::new().principal(MSI_CLIENT_ID)),
        AuthScenario::DatabricksM2m => base.with_workspace(
            WorkspaceAccess::new().oauth_client(DATABRICKS_CLIENT_ID, &secrets.client_secret),
        ),
        AuthScenario::DatabricksFederation => {
            base.with_workspace(WorkspaceAccess::new().federation_policy(
                DATABRICKS_CLIENT_ID,
                &issuer,
                &devops.pipeline_subject(),
            ))
        }
    }
}

/// What the agent puts in a task's environment for `scenario`, with the emulator at
/// `base_url` playing every party (besides the workspace URL and the build's variables).
pub fn agent_env(
    scenario: AuthScenario,
    base_url: &str,
    secrets: &ScenarioSecrets,
) -> BTreeMap<String, String> {
    let base = base_url.trim_end_matches('/');
    let collection = format!("{base}/{ORGANIZATION}/");
    let mut env: BTreeMap<String, String> = [
        ("SYSTEM_COLLECTIONURI", collection.clone()),
        ("SYSTEM_TEAMFOUNDATIONCOLLECTIONURI", collection.clone()),
        ("SYSTEM_TEAMPROJECTID", PROJECT_ID.to_string()),
        ("SYSTEM_TEAMPROJECT", PROJECT.to_string()),
        ("SYSTEM_HOSTTYPE", "build".to_string()),
        ("SYSTEM_PLANID", PLAN_ID.to_string()),
        ("SYSTEM_JOBID", JOB_ID.to_string()),
        (
            "SYSTEM_OIDCREQUESTURI",
            format!("{collection}{PROJECT_ID}/_apis/distributedtask/hubs/build/plans/{PLAN_ID}/jobs/{JOB_ID}/oidctoken"),
        ),
        ("ENDPOINT_URL_SYSTEMVSSCONNECTION", collection.clone()),
        ("ENDPOINT_AUTH_SCHEME_SYSTEMVSSCONNECTION", "OAuth".to_string()),
        ("ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN", secrets.job_access_token.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut input = |name: &str, value: &str| {
        env.insert(
            format!("INPUT_{}", crate::pipeline::inputs::env_name(name)),
            value.to_string(),
        );
    };
    let method = match scenario {
        AuthScenario::Pat => "pat",
        AuthScenario::AzureFederation
        | AuthScenario::AzureSecret
        | AuthScenario::AzureCertificate
        | AuthScenario::AzureManagedIdentity => "azureServiceConnection",
        AuthScenario::DatabricksM2m => "databricksServiceConnection",
        AuthScenario::DatabricksFederation => "databricksFederation",
    };
    input("authMethod", method);
    match scenario {
        AuthScenario::Pat => {}
        AuthScenario::AzureFederation
        | AuthScenario::AzureSecret
        | AuthScenario::AzureCertificate
        | AuthScenario::AzureManagedIdentity => {
            input("azureSubscription", AZURE_CONNECTION);
            let (scheme, parameters): (&str, Vec<(&str, String)>) = match scenario {
                AuthScenario::AzureFederation => ("WorkloadIdentityFederation", vec![]),
                AuthScenario::AzureSecret => (
                    "ServicePrincipal",
                    vec![
                        ("authenticationType", "spnKey".into()),
                        ("serviceprincipalkey", secrets.client_secret.clone()),
                    ],
                ),
                AuthScenario::AzureCertificate => (
                    "ServicePrincipal",
                    vec![
                        ("authenticationType", "spnCertificate".into()),
                        (
                            "servicePrincipalCertificate",
                            TEST_CERTIFICATE_PEM.to_string(),
                        ),
                    ],
                ),
                _ => ("ManagedServiceIdentity", vec![]),
            };
            let mut parameters = parameters;
            parameters.push(("tenantid", TENANT.to_string()));
            if scenario != AuthScenario::AzureManagedIdentity {
                parameters.push(("serviceprincipalid", AZURE_CLIENT_ID.to_string()));
            } else {
                env.insert("AZURE_POD_IDENTITY_AUTHORITY_HOST".into(), base.to_string());
            }
            connection_env(
                &mut env,
                AZURE_CONNECTION,
                "https://management.azure.com/",
                scheme,
                &parameters,
                &[
                    ("environment", "AzureCloud".into()),
                    ("scopeLevel", "Subscription".into()),
                    (
                        "subscriptionId",
                        "00000000-0000-0000-0000-000000000001".into(),
                    ),
                    ("activeDirectoryAuthority", format!("{base}/")),
                ],
            );
        }
        AuthScenario::DatabricksM2m => {
            input("databricksConnection", DATABRICKS_CONNECTION);
            connection_env(
                &mut env,
                DATABRICKS_CONNECTION,
                base,
                "UsernamePassword",
                &[
                    ("username", DATABRICKS_CLIENT_ID.to_string()),
                    ("password", secrets.client_secret.clone()),
                ],
                &[],
            );
        }
        AuthScenario::DatabricksFederation => input("clientId", DATABRICKS_CLIENT_ID),
    }
    env
}

/// A service connection as the agent hands it over: each parameter as its own variable (key
/// upper-cased) and the JSON forms.
pub fn connection_env(
    env: &mut BTreeMap<String, String>,
    id: &str,
    url: &str,
    scheme: &str,
    parameters: &[(&str, String)],
    data: &[(&str, String)],
) {
    env.insert(format!("ENDPOINT_URL_{id}"), url.to_string());
    env.insert(format!("ENDPOINT_AUTH_SCHEME_{id}"), scheme.to_string());
    let mut json = serde_json::Map::new();
    for (key, value) in parameters {
        env.insert(
            format!("ENDPOINT_AUTH_PARAMETER_{id}_{}", key.to_ascii_uppercase()),
            value.clone(),
        );
        json.insert(key.to_string(), value.clone().into());
    }
    env.insert(
        format!("ENDPOINT_AUTH_{id}"),
        serde_json::json!({ "parameters": json, "scheme": scheme }).to_string(),
    );
    let mut data_json = serde_json::Map::new();
    for (key, value) in data {
        env.insert(
            format!("ENDPOINT_DATA_{id}_{}", key.to_ascii_uppercase()),
            value.clone(),
        );
        data_json.insert(key.to_string(), value.clone().into());
    }
    env.insert(
        format!("ENDPOINT_DATA_{id}"),
        serde_json::Value::Object(data_json).to_string(),
    );
}
