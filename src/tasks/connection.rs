//! Which workspace to talk to, and how to sign in to it (`authMethod` and the inputs each
//! method needs, including the service connections the agent hands over).

use std::collections::BTreeMap;

use crate::auth::{
    EntraApp, IdTokenRequest, JobIds, MsiEndpoint, OAuthProof, Proof, SignIn, Translate,
};
use crate::databricks::{ProxySettings, WorkspaceUrl, WORKSPACE_URL_EXAMPLE};
use crate::host::Host;
use crate::pipeline::inputs::{Endpoint, PickList};
use crate::pipeline::{InputError, Inputs};
use crate::tasks::names::{input, variable};

pub const AUTH_METHOD: PickList = PickList {
    input: input::AUTH_METHOD,
    options: &[
        "pat",
        "azureServiceConnection",
        "databricksServiceConnection",
        "databricksFederation",
    ],
    default: "pat",
};

/// The inputs both tasks share: where the workspace is and how to sign in to it.
pub const INPUTS: &[&str] = &[
    input::AUTH_METHOD,
    input::AZURE_SUBSCRIPTION,
    input::DATABRICKS_CONNECTION,
    input::CLIENT_ID,
    input::DATABRICKS_HOST,
    input::DATABRICKS_TOKEN,
    input::WORKSPACE_RESOURCE_ID,
];

/// The endpoint type `vss-extension.json` contributes ("Databricks workspace").
pub const DATABRICKS_ENDPOINT_TYPE: &str = "databricks-azdo-workspace";

#[derive(Clone)]
pub struct Connection {
    pub url: WorkspaceUrl,
    pub sign_in: SignIn,
    /// Who signs in, for messages.
    pub who: Translate,
    /// The agent's web proxy, when it has one.
    pub proxy: Option<ProxySettings>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.url)
            .field("sign_in", &self.sign_in)
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl Connection {
    pub fn from_inputs(inputs: &Inputs, host: &dyn Host) -> Result<Connection, InputError> {
        let method = inputs.pick_list(&AUTH_METHOD)?;
        let (url, sign_in, who) = match method {
            "azureServiceConnection" => {
                let url = workspace_url(inputs)?;
                let (sign_in, who) = azure_connection(inputs, host)?;
                (url, sign_in, who)
            }
            "databricksServiceConnection" => databricks_connection(inputs)?,
            "databricksFederation" => {
                let url = workspace_url(inputs)?;
                let client_id = identifier(inputs, input::CLIENT_ID, None)?.ok_or_else(|| {
                    InputError::new(input::CLIENT_ID, "is required with authMethod databricksFederation")
                        .with_hint("set it to the application id (a UUID) of the Databricks service principal that has a federation policy for this pipeline")
                })?;
                let request = id_token_request(inputs, None)?;
                let who = Translate {
                    input: input::CLIENT_ID,
                    method: "Databricks token federation (the pipeline's id token)".into(),
                    client_id: Some(client_id.clone()),
                    tenant: None,
                };
                let proof = OAuthProof::Federated(request);
                (url, SignIn::Databricks { client_id, proof }, who)
            }
            _ => {
                let url = workspace_url(inputs)?;
                let who = Translate {
                    input: input::DATABRICKS_TOKEN,
                    method: "a personal access token".into(),
                    client_id: None,
                    tenant: None,
                };
                (url, SignIn::Token(personal_access_token(inputs)?), who)
            }
        };
        let proxy = agent_proxy(inputs)?;
        Ok(Connection {
            url,
            sign_in,
            who,
            proxy,
        })
    }
}

fn workspace_url(inputs: &Inputs) -> Result<WorkspaceUrl, InputError> {
    let host = match inputs.get(input::DATABRICKS_HOST)? {
        Some(host) => host,
        None => inputs.secret_variable(variable::DATABRICKS_HOST).ok_or_else(|| {
            InputError::new(input::DATABRICKS_HOST, format!("is not set, and there is no {} variable", variable::DATABRICKS_HOST))
                .with_hint(format!(
                    "add {} (e.g. {WORKSPACE_URL_EXAMPLE}) to a variable group linked to this pipeline, or set the input",
                    variable::DATABRICKS_HOST
                ))
        })?,
    };
    WorkspaceUrl::parse(&host).map_err(|e| {
        InputError::new(input::DATABRICKS_HOST, e.reason).with_hint(format!(
            "expected a workspace URL such as {WORKSPACE_URL_EXAMPLE}"
        ))
    })
}

fn personal_access_token(inputs: &Inputs) -> Result<String, InputError> {
    let token = match inputs.get(input::DATABRICKS_TOKEN)? {
        Some(token) => token,
        None => inputs.secret_variable(variable::DATABRICKS_TOKEN).ok_or_else(|| {
            InputError::new(input::DATABRICKS_TOKEN, format!("is not set, and there is no {} variable", variable::DATABRICKS_TOKEN))
                .with_hint(format!(
                    "add {} as a secret variable (a Databricks personal access token) to a variable group linked to this pipeline, or sign in without one: set authMethod to azureServiceConnection, databricksServiceConnection or databricksFederation",
                    variable::DATABRICKS_TOKEN
                ))
        })?,
    };
    single_word(input::DATABRICKS_TOKEN, &token, "a token")?;
    Ok(token)
}

/// A secret that travels in a header or a form: one word of printable ASCII. The value is
/// never echoed, even when it is malformed.
fn single_word(input: &str, value: &str, what: &str) -> Result<(), InputError> {
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InputError::new(
            input,
            format!("contains spaces or line breaks; {what} is a single word"),
        )
        .with_hint("copy it again without surrounding text"));
    }
    if !value.is_ascii() {
        return Err(InputError::new(
            input,
            "contains non-ASCII characters, which an HTTP request cannot carry",
        ));
    }
    Ok(())
}

/// A client id, tenant id or similar: letters, digits, `-`, `.` and `_` (it goes into URLs).
fn check_identifier(input: &str, what: &str, value: &str) -> Result<String, InputError> {
    let value = value.trim();
    let fine = !value.is_empty()
        && value.len() <= 256
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
    if fine {
        Ok(value.to_string())
    } else {
        Err(InputError::new(
            input,
            format!(
                "{what} `{}` is not an id (letters, digits, `-`, `.` and `_`)",
                crate::text::shorten(value, 80)
            ),
        ))
    }
}

fn identifier(
    inputs: &Inputs,
    name: &str,
    what: Option<&str>,
) -> Result<Option<String>, InputError> {
    inputs
        .get(name)?
        .map(|v| check_identifier(name, what.unwrap_or("the value"), &v))
        .transpose()
}

/// The service connection named by `name`, which the agent must have handed to the step.
fn connection<'a>(inputs: &Inputs<'a>, name: &str, kind: &str) -> Result<Endpoint<'a>, InputError> {
    let id = inputs.get(name)?.ok_or_else(|| {
        InputError::new(
            name,
            format!(
                "is required with authMethod {}",
                inputs.pick_list(&AUTH_METHOD).unwrap_or_default()
            ),
        )
        .with_hint(format!(
            "choose {kind} service connection (its name in YAML)"
        ))
    })?;
    let endpoint = inputs.endpoint(&id);
    if !endpoint.exists() {
        return Err(InputError::new(
            name,
            format!("the service connection `{}` was not handed to this step by the agent", crate::text::shorten(&id, 80)),
        )
        .with_hint(format!("give the name or id of {kind} service connection of this project, and authorize this pipeline to use it")));
    }
    Ok(endpoint)
}

fn azure_connection(inputs: &Inputs, host: &dyn Host) -> Result<(SignIn, Translate), InputError> {
    let name = input::AZURE_SUBSCRIPTION;
    let endpoint = connection(inputs, name, "an Azure Resource Manager")?;
    let scheme = endpoint.scheme().unwrap_or_default();
    let missing = |what: &str, key: &str| {
        InputError::new(name, format!("the service connection has no {what} (`{key}`)"))
            .with_hint("edit the service connection in Project settings > Service connections and fill in every field, or create it again")
    };
    let client_id = endpoint
        .auth("serviceprincipalid")
        .map(|v| check_identifier(name, "the service principal id", &v))
        .transpose()?;
    let tenant = endpoint
        .auth("tenantid")
        .map(|v| check_identifier(name, "the tenant id", &v))
        .transpose()?;
    let workspace_resource_id = workspace_resource_id(inputs)?;
    let entra = |proof: Proof, label: &str| -> Result<(SignIn, Translate), InputError> {
        let client_id = client_id
            .clone()
            .ok_or_else(|| missing("service principal id", "serviceprincipalid"))?;
        let tenant = tenant
            .clone()
            .ok_or_else(|| missing("tenant id", "tenantid"))?;
        let app = EntraApp {
            authority: authority(&endpoint)?,
            tenant: tenant.clone(),
            client_id: client_id.clone(),
            proof,
        };
        let who = Translate {
            input: name,
            method: format!("the Azure service connection ({label})"),
            client_id: Some(client_id),
            tenant: Some(tenant),
        };
        Ok((
            SignIn::Entra {
                app,
                workspace_resource_id: workspace_resource_id.clone(),
            },
            who,
        ))
    };
    match scheme.to_ascii_lowercase().as_str() {
        "workloadidentityfederation" => {
            let request = id_token_request(inputs, Some(&endpoint.id))?;
            entra(Proof::Federated(request), "workload identity federation")
        }
        "serviceprincipal" => {
            let kind = endpoint.auth("authenticationType").unwrap_or_else(|| "spnKey".into());
            match kind.to_ascii_lowercase().as_str() {
                "spnkey" => {
                    let secret = endpoint.auth("serviceprincipalkey").ok_or_else(|| missing("client secret", "serviceprincipalkey"))?;
                    single_word(name, &secret, "the service connection's client secret")?;
                    entra(Proof::Secret(secret), "service principal, client secret")
                }
                "spncertificate" => {
                    let pem = endpoint.auth("servicePrincipalCertificate").ok_or_else(|| missing("certificate", "servicePrincipalCertificate"))?;
                    let certificate = host.load_certificate(&pem).map_err(|reason| {
                        InputError::new(name, format!("the service connection's certificate cannot be used: {reason}"))
                            .with_hint("paste the certificate and its private key, both in PEM, into the service connection (`openssl pkcs12 -in cert.pfx -out cert.pem -nodes` converts a .pfx)")
                    })?;
                    entra(Proof::Certificate(certificate), "service principal, certificate")
                }
                _ => Err(InputError::new(name, format!("the service connection uses the authentication type `{}`, which these tasks do not support", crate::text::shorten(&kind, 40)))
                    .with_hint("use a client secret (spnKey) or a certificate (spnCertificate), or workload identity federation")),
            }
        }
        "managedserviceidentity" => {
            let variable = |name: &str| inputs.variable(name);
            let endpoint_url = variable(variable::IDENTITY_ENDPOINT)
                .map(|url| identity_url(&url).map_err(|e| InputError::variable(variable::IDENTITY_ENDPOINT, e)))
                .transpose()?;
            let pod_host = variable(variable::POD_IDENTITY_AUTHORITY_HOST)
                .map(|url| identity_url(&url).map_err(|e| InputError::variable(variable::POD_IDENTITY_AUTHORITY_HOST, e)))
                .transpose()?;
            let header = inputs.secret_variable(variable::IDENTITY_HEADER);
            if endpoint_url.is_some() && header.is_none() {
                // Azure Arc announces its endpoint without a header: it answers with a challenge
                // (a key file to read), which is not built. Say so rather than ask another host.
                return Err(InputError::variable(variable::IDENTITY_HEADER, "is not set, while IDENTITY_ENDPOINT is: this looks like an Azure Arc machine, whose challenge-based identity endpoint these tasks do not support")
                    .with_hint("use a service principal or workload identity federation on this agent, or run it on an Azure VM (instance metadata service) or an App Service-style host (IDENTITY_ENDPOINT with IDENTITY_HEADER)"));
            }
            let msi = MsiEndpoint::from_env(endpoint_url, header, pod_host);
            let who = Translate {
                input: name,
                method: format!("the Azure service connection (managed identity, via {})", msi.describe()),
                client_id: client_id.clone(),
                tenant: tenant.clone(),
            };
            // A user-assigned identity is picked by its client id.
            Ok((SignIn::ManagedIdentity { endpoint: msi, client_id, workspace_resource_id }, who))
        }
        "" => Err(InputError::new(name, "the agent handed over the service connection without its authentication scheme")),
        _ => Err(InputError::new(
            name,
            format!("the service connection uses the authentication scheme `{}`, which these tasks do not support", crate::text::shorten(&scheme, 40)),
        )
        .with_hint("use an Azure Resource Manager connection with workload identity federation (recommended), a service principal (secret or certificate) or a managed identity")),
    }
}

/// The Entra authority of the connection's cloud (sovereign clouds have their own).
fn authority(endpoint: &Endpoint) -> Result<String, InputError> {
    let raw = endpoint
        .data("activeDirectoryAuthority")
        .or_else(|| endpoint.data("environmentAuthorityUrl"))
        .unwrap_or_else(|| crate::auth::entra::DEFAULT_AUTHORITY.to_string());
    let url = service_url(&raw).map_err(|e| {
        InputError::new(
            input::AZURE_SUBSCRIPTION,
            format!("the service connection's Entra authority: {e}"),
        )
    })?;
    Ok(format!("{}/", url.trim_end_matches('/')))
}

/// A URL of a service we send credentials to: https, or http on this machine (the emulator).
fn service_url(raw: &str) -> Result<String, String> {
    let shown = crate::text::redact_url(raw.trim());
    let url = crate::text::parse_url(raw.trim()).map_err(|_| format!("`{shown}` is not a URL"))?;
    let host = url.host_str().unwrap_or_default();
    let secure = url.scheme() == "https"
        || url.scheme() == "http" && crate::databricks::workspace_url::is_loopback(host);
    if !secure || host.is_empty() {
        return Err(format!(
            "`{shown}` is not an https:// URL (http is accepted only on 127.0.0.1 or localhost)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{shown}` contains credentials"));
    }
    Ok(raw.trim().to_string())
}

/// A managed identity endpoint: on the machine itself or its link-local metadata service
/// (169.254.x.x), where plain http is how they are served; anywhere else, https.
fn identity_url(raw: &str) -> Result<String, String> {
    let local = crate::text::parse_url(raw.trim()).ok().is_some_and(|url| {
        url.scheme() == "http"
            && url.username().is_empty()
            && url.password().is_none()
            && match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_link_local() || ip.is_loopback(),
                Some(url::Host::Domain(host)) => {
                    crate::databricks::workspace_url::is_loopback(host)
                }
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            }
    });
    if local {
        Ok(raw.trim().to_string())
    } else {
        service_url(raw).map_err(|e| {
            format!(
                "{e}; a metadata endpoint may also be http on a link-local address (169.254.x.x)"
            )
        })
    }
}

fn workspace_resource_id(inputs: &Inputs) -> Result<Option<String>, InputError> {
    let Some(value) = inputs.get(input::WORKSPACE_RESOURCE_ID)? else {
        return Ok(None);
    };
    let parts: Vec<&str> = value.trim_matches('/').split('/').collect();
    let shaped = parts.len() == 8
        && parts[0].eq_ignore_ascii_case("subscriptions")
        && parts[2].eq_ignore_ascii_case("resourceGroups")
        && parts[4].eq_ignore_ascii_case("providers")
        && parts[5].eq_ignore_ascii_case("Microsoft.Databricks")
        && parts[6].eq_ignore_ascii_case("workspaces")
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._()".contains(c))
        });
    if !shaped {
        return Err(InputError::new(input::WORKSPACE_RESOURCE_ID, "is not the Azure resource id of a Databricks workspace")
            .with_hint("copy it from the workspace's page in the Azure portal (JSON view): /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Databricks/workspaces/<name>"));
    }
    Ok(Some(format!("/{}", parts.join("/"))))
}

/// How to ask Azure DevOps for this job's id token (for `service_connection`, if given).
fn id_token_request(
    inputs: &Inputs,
    service_connection: Option<&str>,
) -> Result<IdTokenRequest, InputError> {
    let access_token = inputs
        .endpoint("SYSTEMVSSCONNECTION")
        .auth("AccessToken")
        .or_else(|| inputs.secret_variable(variable::ACCESS_TOKEN))
        .ok_or_else(|| {
            InputError::variable(variable::ACCESS_TOKEN, "(the job's access token) is not available to this step; federation needs it to ask Azure DevOps for the pipeline's id token")
                .with_hint("tasks always receive it on an Azure Pipelines agent; from a script step, map it: `env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)`")
        })?;
    single_word(variable::ACCESS_TOKEN, &access_token, "a token").map_err(|e| InputError {
        is_variable: true,
        ..e
    })?;
    let var = |name: &str| inputs.variable(name);
    let oidc_uri = var(variable::OIDC_REQUEST_URI);
    let collection =
        var(variable::COLLECTION_URI).or_else(|| var(variable::TEAM_FOUNDATION_COLLECTION_URI));
    let ids = [
        var(variable::TEAM_PROJECT_ID),
        var(variable::HOST_TYPE),
        var(variable::PLAN_ID),
        var(variable::JOB_ID),
    ];
    let checked =
        |name: &str, value: &str| service_url(value).map_err(|e| InputError::variable(name, e));
    if let Some(uri) = &oidc_uri {
        checked(variable::OIDC_REQUEST_URI, uri)?;
    }
    if let Some(uri) = &collection {
        checked(variable::COLLECTION_URI, uri)?;
    }
    let job = match (&collection, &ids) {
        (Some(collection_uri), [Some(project_id), Some(hub), Some(plan_id), Some(job_id)]) => {
            Some(JobIds {
                collection_uri,
                project_id,
                hub,
                plan_id,
                job_id,
            })
        }
        _ => None,
    };
    if let Some(job) = &job {
        for value in [job.project_id, job.hub, job.plan_id, job.job_id] {
            check_identifier(variable::JOB_ID, "an id of this job", value).map_err(|e| {
                InputError {
                    is_variable: true,
                    ..e
                }
            })?;
        }
    }
    let url = IdTokenRequest::endpoint(oidc_uri.as_deref(), job, service_connection).ok_or_else(|| {
        InputError::variable(variable::OIDC_REQUEST_URI, "is not set, nor are the ids of this job (System.CollectionUri, System.TeamProjectId, System.HostType, System.PlanId, System.JobId)")
            .with_hint("federation works inside an Azure Pipelines job, where the agent sets these variables")
    })?;
    Ok(IdTokenRequest { url, access_token })
}

/// Our own "Databricks workspace" connection: the URL, and a personal access token, an OAuth
/// client id and secret, or a client id for federation.
fn databricks_connection(inputs: &Inputs) -> Result<(WorkspaceUrl, SignIn, Translate), InputError> {
    let name = input::DATABRICKS_CONNECTION;
    let endpoint = connection(inputs, name, "a Databricks workspace")?;
    let url = WorkspaceUrl::parse(&endpoint.url().unwrap_or_default()).map_err(|e| {
        InputError::new(name, format!("the service connection's workspace URL: {}", e.reason))
            .with_hint(format!("edit the service connection: its URL is the workspace URL, such as {WORKSPACE_URL_EXAMPLE}"))
    })?;
    let scheme = endpoint.scheme().unwrap_or_default();
    let missing = |what: &str| {
        InputError::new(name, format!("the service connection has no {what}"))
            .with_hint("edit the service connection in Project settings > Service connections and fill in every field")
    };
    let who = |method: &str, client_id: Option<String>| Translate {
        input: name,
        method: format!("the Databricks service connection ({method})"),
        client_id,
        tenant: None,
    };
    match scheme.to_ascii_lowercase().as_str() {
        "token" => {
            let token = endpoint.auth("apitoken").ok_or_else(|| missing("personal access token"))?;
            single_word(name, &token, "a token")?;
            Ok((url, SignIn::Token(token), who("personal access token", None)))
        }
        "usernamepassword" => {
            let client_id = endpoint.auth("username").ok_or_else(|| missing("OAuth client id"))?;
            let client_id = check_identifier(name, "the OAuth client id", &client_id)?;
            let secret = endpoint.auth("password").ok_or_else(|| missing("OAuth secret"))?;
            single_word(name, &secret, "an OAuth secret")?;
            let sign_in = SignIn::Databricks { client_id: client_id.clone(), proof: OAuthProof::Secret(secret) };
            Ok((url, sign_in, who("OAuth machine-to-machine", Some(client_id))))
        }
        "none" => {
            let client_id = endpoint.auth("clientid").or_else(|| endpoint.data("clientid")).ok_or_else(|| missing("service principal client id"))?;
            let client_id = check_identifier(name, "the client id", &client_id)?;
            let request = id_token_request(inputs, Some(&endpoint.id))?;
            let sign_in = SignIn::Databricks { client_id: client_id.clone(), proof: OAuthProof::Federated(request) };
            Ok((url, sign_in, who("token federation", Some(client_id))))
        }
        _ => Err(InputError::new(name, format!("the service connection uses the authentication scheme `{}`, which these tasks do not support", crate::text::shorten(&scheme, 40)))
            .with_hint(format!("use a service connection of type \"Databricks workspace\" ({DATABRICKS_ENDPOINT_TYPE})"))),
    }
}

/// The proxy the agent was configured with (`config.sh --proxyurl ...`), if any: read and
/// checked here, for both runtimes, and handed to the transport as data.
fn agent_proxy(inputs: &Inputs) -> Result<Option<ProxySettings>, InputError> {
    let Some(raw) = inputs
        .variable(variable::PROXY_URL)
        .filter(|u| !u.trim().is_empty())
    else {
        return Ok(None);
    };
    let url = url::Url::parse(raw.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            // Quoted with its credentials, query values and fragment hidden: they may not be
            // registered secrets.
            let value = crate::text::redact_url(raw.trim());
            InputError::variable(variable::PROXY_URL, format!("`{value}` is not an http(s) URL"))
                .with_hint("the agent's proxy comes from `config.sh --proxyurl`; reconfigure it as http://host:port")
        })?;
    let bypass = match inputs.variable(variable::PROXY_BYPASS_LIST) {
        None => Vec::new(),
        Some(list) if list.trim().is_empty() => Vec::new(),
        Some(list) => serde_json::from_str::<Vec<String>>(&list).map_err(|_| {
            InputError::variable(
                variable::PROXY_BYPASS_LIST,
                "is not a JSON array of regular expressions",
            )
        })?,
    };
    Ok(Some(ProxySettings::new(
        url,
        inputs.variable(variable::PROXY_USERNAME),
        inputs.secret_variable(variable::PROXY_PASSWORD),
        bypass,
    )))
}

/// Every value in the environment that is, or may be, a secret: masked before anything is
/// printed, even when the inputs turn out to be invalid.
pub fn secrets_in(env: &BTreeMap<String, String>) -> Vec<String> {
    let proxy_password = env
        .get("AGENT_PROXYURL")
        .and_then(|u| url::Url::parse(u.trim()).ok())
        .and_then(|u| u.password().map(str::to_string));
    env.iter()
        .filter(|(key, _)| {
            key.starts_with("SECRET_")
                || *key == "INPUT_DATABRICKSTOKEN"
                || *key == variable::DATABRICKS_TOKEN
                || *key == "DATABRICKS_CLIENT_SECRET"
                || *key == "ARM_CLIENT_SECRET"
                || *key == "SYSTEM_ACCESSTOKEN"
                || *key == variable::IDENTITY_HEADER
                || *key == "AGENT_PROXYPASSWORD"
                || is_endpoint_secret(key)
        })
        .flat_map(|(_, value)| {
            let trimmed = value.trim();
            [value.as_str(), trimmed]
        })
        .filter(|value| !(value.is_empty() || value.starts_with("$(") && value.ends_with(')')))
        .map(str::to_string)
        .chain(proxy_password)
        .chain(endpoint_json_secrets(env))
        .flat_map(with_its_lines)
        .collect()
}

/// The authorization parameters of service connections that identify rather than prove:
/// shown in messages ("signed in as application ...").
const ENDPOINT_IDENTIFIERS: [&str; 4] = ["SERVICEPRINCIPALID", "TENANTID", "USERNAME", "CLIENTID"];

/// `ENDPOINT_AUTH_PARAMETER_<id>_<KEY>` holding a secret (a key, a certificate, a token,
/// the job's access token): every parameter but the identifiers and the scheme names.
fn is_endpoint_secret(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("ENDPOINT_AUTH_PARAMETER_") else {
        return false;
    };
    let name = rest.rsplit('_').next().unwrap_or_default();
    !ENDPOINT_IDENTIFIERS.contains(&name) && name != "AUTHENTICATIONTYPE" && name != "SCOPE"
}

/// The same secrets in the JSON form `ENDPOINT_AUTH_<id>` (which the agent also sets).
fn endpoint_json_secrets(env: &BTreeMap<String, String>) -> Vec<String> {
    env.iter()
        .filter(|(key, _)| {
            key.starts_with("ENDPOINT_AUTH_")
                && !key.starts_with("ENDPOINT_AUTH_PARAMETER_")
                && !key.starts_with("ENDPOINT_AUTH_SCHEME_")
        })
        .filter_map(|(_, json)| serde_json::from_str::<serde_json::Value>(json).ok())
        .filter_map(|value| value.get("parameters").and_then(|p| p.as_object()).cloned())
        .flat_map(|parameters| {
            parameters
                .into_iter()
                .filter(|(name, _)| {
                    let upper = name.to_ascii_uppercase();
                    !ENDPOINT_IDENTIFIERS.contains(&upper.as_str())
                        && upper != "AUTHENTICATIONTYPE"
                        && upper != "SCOPE"
                })
                .filter_map(|(_, v)| v.as_str().map(|s| s.trim().to_string()))
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A multi-line secret (a PEM key) is masked whole and, for the lines of a private key block,
/// line by line: a line of it may be printed on its own. A certificate is public.
fn with_its_lines(secret: String) -> Vec<String> {
    let mut lines = Vec::new();
    let mut in_key = false;
    for line in secret.lines().map(str::trim) {
        if line.starts_with("-----BEGIN") {
            in_key = line.contains("PRIVATE KEY");
        } else if line.starts_with("-----END") {
            in_key = false;
        } else if in_key && line.len() >= 16 {
            lines.push(line.to_string());
        }
    }
    std::iter::once(secret).chain(lines).collect()
}

#[cfg(test)]
mod tests {
    use super::{identity_url, service_url, with_its_lines};

    #[test]
    fn credentials_go_only_to_https_or_to_this_machine() {
        assert!(service_url("https://login.microsoftonline.com/").is_ok());
        assert!(service_url("http://127.0.0.1:8080/").is_ok());
        assert!(service_url("http://login.example.com/").is_err());
        assert!(service_url("https://user:pass@login.example.com/").is_err());
        assert!(service_url("ftp://x/").is_err());
        // The metadata service is plain http on a link-local address, and so may be an override.
        assert!(identity_url("http://169.254.169.254").is_ok());
        assert!(identity_url("http://localhost:40342/metadata/identity/oauth2/token").is_ok());
        assert!(identity_url("http://10.0.0.4/").is_err());
        assert!(identity_url("http://metadata.example.com/").is_err());
    }

    #[test]
    fn a_private_key_is_masked_line_by_line_but_a_certificate_is_not() {
        let pem = "-----BEGIN CERTIFICATE-----\nCERTLINEAAAAAAAAAAAAAAAA\n-----END CERTIFICATE-----\n-----BEGIN RSA PRIVATE KEY-----\nKEYLINE1AAAAAAAAAAAAAAAA\nKEYLINE2AAAAAAAAAAAAAAAA\n-----END RSA PRIVATE KEY-----\n";
        let masked = with_its_lines(pem.to_string());
        assert_eq!(masked[0], pem);
        assert_eq!(
            &masked[1..],
            ["KEYLINE1AAAAAAAAAAAAAAAA", "KEYLINE2AAAAAAAAAAAAAAAA"]
        );
    }
}
