//! Who exists in the identity parties: the Azure DevOps organization and its service
//! connections, the Entra applications, the managed identity and the workspace's principals.
//!
//! Read from JSON (`databricks-azdo emulator --identities FILE.json`, camelCase keys) or built
//! in Rust with the small builders below. Debug output never shows a secret.

use std::fmt;
use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

/// The audience Azure DevOps puts in its id tokens and Entra expects of federated assertions.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// The application id of the Azure Databricks resource (public, US Gov and China clouds).
pub const AZURE_DATABRICKS_RESOURCE: &str = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d";
/// The Azure Resource Manager resource a management token is for.
pub const MANAGEMENT_RESOURCE: &str = "https://management.core.windows.net/";

/// Every identity party the emulator plays. `Identities::default()` configures none: the
/// emulator then accepts only its personal access token, as before.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Identities {
    /// Lifetime of access tokens (Entra, instance metadata, workspace OAuth).
    #[serde(default = "default_token_lifetime")]
    pub token_lifetime_seconds: u64,
    /// Lifetime of Azure DevOps id tokens.
    #[serde(default = "default_id_token_lifetime")]
    pub id_token_lifetime_seconds: u64,
    #[serde(default)]
    pub devops: Option<DevOps>,
    #[serde(default)]
    pub entra: Option<Entra>,
    #[serde(default)]
    pub managed_identity: Option<ManagedIdentity>,
    #[serde(default)]
    pub workspace: Option<WorkspaceAccess>,
}

fn default_token_lifetime() -> u64 {
    3600
}

fn default_id_token_lifetime() -> u64 {
    600
}

fn default_audience() -> String {
    TOKEN_EXCHANGE_AUDIENCE.to_string()
}

fn yes() -> bool {
    true
}

impl Default for Identities {
    fn default() -> Self {
        Identities {
            token_lifetime_seconds: default_token_lifetime(),
            id_token_lifetime_seconds: default_id_token_lifetime(),
            devops: None,
            entra: None,
            managed_identity: None,
            workspace: None,
        }
    }
}

/// The Azure DevOps organization whose job asks for id tokens.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DevOps {
    pub organization: String,
    pub organization_id: String,
    pub project: String,
    pub project_id: String,
    pub pipeline: String,
    /// The job's `System.AccessToken`: the only bearer token `oidctoken` accepts.
    pub job_access_token: String,
    #[serde(default)]
    pub service_connections: Vec<ServiceConnection>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceConnection {
    pub id: String,
    pub name: String,
    /// Whether the job references (may use) this connection.
    #[serde(default = "yes")]
    pub authorized: bool,
    /// Set for a connection created (or converted) since Azure DevOps moved to the Entra
    /// issuer: its id tokens are issued by `https://login.microsoftonline.com/<this>/v2.0`
    /// with a system-generated subject. Unset: the older `vstoken` issuer, `sc://` subject.
    #[serde(default)]
    pub entra_tenant_id: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entra {
    #[serde(default)]
    pub applications: Vec<EntraApplication>,
}

/// An application registration (service principal) in one tenant.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntraApplication {
    pub tenant_id: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// The secret exists but has expired (AADSTS7000222).
    #[serde(default)]
    pub secret_expired: bool,
    /// A PEM certificate (a private key beside it is ignored) whose key signs assertions.
    #[serde(default)]
    pub certificate_pem: Option<String>,
    #[serde(default)]
    pub federated_credentials: Vec<FederatedCredential>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederatedCredential {
    pub issuer: String,
    pub subject: String,
    #[serde(default = "default_audience")]
    pub audience: String,
}

/// The identity of the machine the agent runs on (instance metadata service, App Service).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedIdentity {
    pub client_id: String,
    /// Tenant named in its tokens' issuer; any value will do.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The secret the App Service style endpoint (`/msi/token`) wants in `X-IDENTITY-HEADER`;
    /// without it that endpoint does not exist.
    #[serde(default)]
    pub identity_header: Option<String>,
}

/// Who may call the workspace API besides the personal access token's owner.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceAccess {
    /// Application (client) ids that are workspace users from the start.
    #[serde(default)]
    pub principals: Vec<String>,
    /// The workspace's Azure resource id, for `X-Databricks-Azure-Workspace-Resource-Id`.
    #[serde(default)]
    pub resource_id: Option<String>,
    /// Application ids with Contributor on that resource: added to the workspace on first use.
    #[serde(default)]
    pub contributors: Vec<String>,
    /// Databricks service principals with an OAuth secret (machine-to-machine).
    #[serde(default)]
    pub oauth_clients: Vec<OAuthClient>,
    /// Token federation policies of Databricks service principals.
    #[serde(default)]
    pub federation_policies: Vec<FederationPolicy>,
    /// Serve the workspace as a unified host: its host metadata names an account-rooted OAuth
    /// server (`/oidc/accounts/{account_id}`), the classic `/oidc/...` routes are gone, and
    /// API calls with its OAuth tokens must name the workspace (`X-Databricks-Workspace-Id`).
    #[serde(default)]
    pub unified_host: Option<UnifiedHost>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnifiedHost {
    pub account_id: String,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederationPolicy {
    pub client_id: String,
    pub issuer: String,
    #[serde(default = "default_audience")]
    pub audience: String,
    pub subject: String,
}

impl Identities {
    /// Reads a JSON file in the documented format and checks it.
    pub fn from_file(path: &Path) -> anyhow::Result<Identities> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_json(&text)
            .with_context(|| format!("{} is not a valid identities file", path.display()))
    }

    /// Parses the documented JSON format and checks it (e.g. `include_str!` of
    /// `examples/emulator-identities.json` in a test).
    pub fn from_json(text: &str) -> anyhow::Result<Identities> {
        let identities: Identities = serde_json::from_str(text)?;
        identities.validate()?;
        Ok(identities)
    }

    /// Whether any party is configured (otherwise the identity routes do not exist).
    pub fn any(&self) -> bool {
        self.devops.is_some()
            || self.entra.is_some()
            || self.managed_identity.is_some()
            || self.workspace.is_some()
    }

    /// Refuses what would only fail later, at a request: zero lifetimes, unreadable
    /// certificates.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.token_lifetime_seconds > 0 && self.id_token_lifetime_seconds > 0,
            "token lifetimes must be at least one second"
        );
        for connection in self.devops.iter().flat_map(|d| &d.service_connections) {
            if let Some(tenant) = &connection.entra_tenant_id {
                anyhow::ensure!(
                    guid_base64url(tenant).is_some(),
                    "the entraTenantId of service connection {} is not a GUID",
                    connection.id
                );
            }
        }
        if let Some(unified) = self
            .workspace
            .as_ref()
            .and_then(|w| w.unified_host.as_ref())
        {
            anyhow::ensure!(
                !unified.account_id.is_empty()
                    && unified
                        .account_id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "the unifiedHost accountId must be letters, digits and `-`"
            );
        }
        for app in self.entra.iter().flat_map(|entra| &entra.applications) {
            if let Some(pem) = &app.certificate_pem {
                super::cert::Certificate::from_pem(pem)
                    .with_context(|| format!("the certificate of application {}", app.client_id))?;
            }
        }
        Ok(())
    }

    pub fn with_token_lifetime(mut self, seconds: u64) -> Self {
        self.token_lifetime_seconds = seconds;
        self
    }

    pub fn with_id_token_lifetime(mut self, seconds: u64) -> Self {
        self.id_token_lifetime_seconds = seconds;
        self
    }

    pub fn with_devops(mut self, devops: DevOps) -> Self {
        self.devops = Some(devops);
        self
    }

    /// Adds an application to Entra (creating the Entra party if needed).
    pub fn with_application(mut self, application: EntraApplication) -> Self {
        self.entra
            .get_or_insert_with(Entra::default)
            .applications
            .push(application);
        self
    }

    pub fn with_managed_identity(mut self, identity: ManagedIdentity) -> Self {
        self.managed_identity = Some(identity);
        self
    }

    pub fn with_workspace(mut self, workspace: WorkspaceAccess) -> Self {
        self.workspace = Some(workspace);
        self
    }
}

impl DevOps {
    pub fn new(
        organization: &str,
        organization_id: &str,
        project: &str,
        project_id: &str,
        pipeline: &str,
        job_access_token: &str,
    ) -> Self {
        DevOps {
            organization: organization.into(),
            organization_id: organization_id.into(),
            project: project.into(),
            project_id: project_id.into(),
            pipeline: pipeline.into(),
            job_access_token: job_access_token.into(),
            service_connections: Vec::new(),
        }
    }

    /// Adds a service connection the job may use.
    pub fn connection(mut self, id: &str, name: &str) -> Self {
        self.service_connections.push(ServiceConnection {
            id: id.into(),
            name: name.into(),
            authorized: true,
            entra_tenant_id: None,
        });
        self
    }

    /// Adds a service connection whose id tokens Microsoft Entra issues (tenant `tenant_id`);
    /// one with the same id is replaced (converted to the Entra issuer).
    pub fn entra_issued_connection(mut self, id: &str, name: &str, tenant_id: &str) -> Self {
        self.service_connections
            .retain(|c| !c.id.eq_ignore_ascii_case(id));
        self.service_connections.push(ServiceConnection {
            id: id.into(),
            name: name.into(),
            authorized: true,
            entra_tenant_id: Some(tenant_id.into()),
        });
        self
    }

    /// The issuer and subject of the id tokens of connection `connection_id`: what a federated
    /// credential or federation policy must name (Azure DevOps shows them on the connection).
    pub fn federation_pair(&self, connection_id: &str) -> Option<(String, String)> {
        let connection = self
            .service_connections
            .iter()
            .find(|c| c.id.eq_ignore_ascii_case(connection_id))?;
        Some(match &connection.entra_tenant_id {
            None => (self.issuer(), self.connection_subject(&connection.name)),
            Some(tenant) => (
                format!("https://login.microsoftonline.com/{tenant}/v2.0"),
                format!(
                    "/eid1/c/pub/t/{}/a/{}/sc/{}/{}",
                    guid_base64url(tenant).unwrap_or_default(),
                    guid_base64url(AZURE_DEVOPS_APPLICATION_ID).unwrap_or_default(),
                    self.organization_id,
                    connection.id
                ),
            ),
        })
    }

    /// Adds a service connection the job does not reference.
    pub fn unauthorized_connection(mut self, id: &str, name: &str) -> Self {
        self.service_connections.push(ServiceConnection {
            id: id.into(),
            name: name.into(),
            authorized: false,
            entra_tenant_id: None,
        });
        self
    }

    /// `iss` of its id tokens (the issuer of older service connections; it does not depend on
    /// where the emulator listens).
    pub fn issuer(&self) -> String {
        format!("https://vstoken.dev.azure.com/{}", self.organization_id)
    }

    /// `sub` of an id token asked for with `serviceConnectionId`.
    pub fn connection_subject(&self, connection_name: &str) -> String {
        format!(
            "sc://{}/{}/{}",
            self.organization, self.project, connection_name
        )
    }

    /// `sub` of an id token asked for without `serviceConnectionId`.
    pub fn pipeline_subject(&self) -> String {
        format!(
            "p://{}/{}/{}",
            self.organization, self.project, self.pipeline
        )
    }
}

impl EntraApplication {
    pub fn new(tenant_id: &str, client_id: &str) -> Self {
        EntraApplication {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            client_secret: None,
            secret_expired: false,
            certificate_pem: None,
            federated_credentials: Vec::new(),
        }
    }

    pub fn secret(mut self, secret: &str) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    pub fn expired_secret(mut self, secret: &str) -> Self {
        self.client_secret = Some(secret.into());
        self.secret_expired = true;
        self
    }

    pub fn certificate(mut self, pem: &str) -> Self {
        self.certificate_pem = Some(pem.into());
        self
    }

    /// Trusts id tokens of `issuer` for `subject`, audience `api://AzureADTokenExchange`.
    pub fn federated(mut self, issuer: &str, subject: &str) -> Self {
        self.federated_credentials.push(FederatedCredential {
            issuer: issuer.into(),
            subject: subject.into(),
            audience: default_audience(),
        });
        self
    }
}

impl ManagedIdentity {
    pub fn new(client_id: &str) -> Self {
        ManagedIdentity {
            client_id: client_id.into(),
            tenant_id: None,
            identity_header: None,
        }
    }

    pub fn identity_header(mut self, secret: &str) -> Self {
        self.identity_header = Some(secret.into());
        self
    }
}

/// Azure DevOps' own application id, in the subjects of the id tokens Entra issues for it.
const AZURE_DEVOPS_APPLICATION_ID: &str = "499b84ac-1321-427f-aa17-267ca6975798";

/// A GUID's 16 bytes in Microsoft's order (the first three groups little-endian), base64url:
/// how Entra-issued subjects spell tenant and application ids.
fn guid_base64url(guid: &str) -> Option<String> {
    let hex: String = guid.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || guid.len() != 36 {
        return None;
    }
    let mut bytes = (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    bytes[0..4].reverse();
    bytes[4..6].reverse();
    bytes[6..8].reverse();
    Some(crate::auth::jwt::base64url(&bytes))
}

impl WorkspaceAccess {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves the workspace as a unified host of account `account_id`.
    pub fn unified_host(mut self, account_id: &str) -> Self {
        self.unified_host = Some(UnifiedHost {
            account_id: account_id.into(),
        });
        self
    }

    pub fn principal(mut self, client_id: &str) -> Self {
        self.principals.push(client_id.into());
        self
    }

    pub fn resource_id(mut self, resource_id: &str) -> Self {
        self.resource_id = Some(resource_id.into());
        self
    }

    pub fn contributor(mut self, client_id: &str) -> Self {
        self.contributors.push(client_id.into());
        self
    }

    pub fn oauth_client(mut self, client_id: &str, client_secret: &str) -> Self {
        self.oauth_clients.push(OAuthClient {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        });
        self
    }

    /// Lets `client_id` exchange id tokens of `issuer` for `subject` (audience
    /// `api://AzureADTokenExchange`).
    pub fn federation_policy(mut self, client_id: &str, issuer: &str, subject: &str) -> Self {
        self.federation_policies.push(FederationPolicy {
            client_id: client_id.into(),
            issuer: issuer.into(),
            audience: default_audience(),
            subject: subject.into(),
        });
        self
    }
}

// Debug by hand: secrets and certificates never reach a log.
const REDACTED: &str = "<redacted>";

fn redacted<T>(value: &Option<T>) -> Option<&'static str> {
    value.as_ref().map(|_| REDACTED)
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identities")
            .field("token_lifetime_seconds", &self.token_lifetime_seconds)
            .field("id_token_lifetime_seconds", &self.id_token_lifetime_seconds)
            .field("devops", &self.devops)
            .field("entra", &self.entra)
            .field("managed_identity", &self.managed_identity)
            .field("workspace", &self.workspace)
            .finish()
    }
}

impl fmt::Debug for DevOps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevOps")
            .field("organization", &self.organization)
            .field("organization_id", &self.organization_id)
            .field("project", &self.project)
            .field("project_id", &self.project_id)
            .field("pipeline", &self.pipeline)
            .field("job_access_token", &REDACTED)
            .field("service_connections", &self.service_connections)
            .finish()
    }
}

impl fmt::Debug for EntraApplication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraApplication")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &redacted(&self.client_secret))
            .field("secret_expired", &self.secret_expired)
            // The PEM may carry the private key too.
            .field("certificate_pem", &redacted(&self.certificate_pem))
            .field("federated_credentials", &self.federated_credentials)
            .finish()
    }
}

impl fmt::Debug for ManagedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedIdentity")
            .field("client_id", &self.client_id)
            .field("tenant_id", &self.tenant_id)
            .field("identity_header", &redacted(&self.identity_header))
            .finish()
    }
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &REDACTED)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/emulator-identities.json");
        let identities = Identities::from_file(&path).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(identities.any());
        let devops = identities.devops.as_ref().unwrap();
        assert!(devops
            .issuer()
            .starts_with("https://vstoken.dev.azure.com/"));
    }

    #[test]
    fn entra_issued_subjects_spell_guids_as_entra_does() {
        // A subject seen in a real Entra-issued Azure DevOps id token: tenant
        // ff882432-09b0-437b-bd22-ca13c0037ded, Azure DevOps' application id.
        assert_eq!(
            guid_base64url("ff882432-09b0-437b-bd22-ca13c0037ded").as_deref(),
            Some("MiSI_7AJe0O9IsoTwAN97Q")
        );
        assert_eq!(
            guid_base64url(AZURE_DEVOPS_APPLICATION_ID).as_deref(),
            Some("rISbSSETf0KqFyZ8ppdXmA")
        );
        assert_eq!(guid_base64url("not-a-guid"), None);
        let devops = DevOps::new(
            "o",
            "0ca3ddd9-f0b0-4635-a98c-5866526961b6",
            "p",
            "pid",
            "ci",
            "t",
        )
        .entra_issued_connection(
            "64171687-7a59-4fce-b2c8-823278dcf176",
            "c",
            "ff882432-09b0-437b-bd22-ca13c0037ded",
        )
        .connection("11111111-1111-1111-1111-111111111111", "old");
        assert_eq!(
            devops.federation_pair("64171687-7a59-4fce-b2c8-823278dcf176"),
            Some((
                "https://login.microsoftonline.com/ff882432-09b0-437b-bd22-ca13c0037ded/v2.0".into(),
                "/eid1/c/pub/t/MiSI_7AJe0O9IsoTwAN97Q/a/rISbSSETf0KqFyZ8ppdXmA/sc/0ca3ddd9-f0b0-4635-a98c-5866526961b6/64171687-7a59-4fce-b2c8-823278dcf176".into()
            ))
        );
        assert_eq!(
            devops.federation_pair("11111111-1111-1111-1111-111111111111"),
            Some((
                "https://vstoken.dev.azure.com/0ca3ddd9-f0b0-4635-a98c-5866526961b6".into(),
                "sc://o/p/old".into()
            ))
        );
    }

    #[test]
    fn defaults_configure_nothing() {
        let identities: Identities = serde_json::from_str("{}").unwrap();
        assert!(!identities.any());
        assert_eq!(identities.token_lifetime_seconds, 3600);
        assert_eq!(identities.id_token_lifetime_seconds, 600);
        assert!(!Identities::default().any());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = serde_json::from_str::<Identities>(r#"{"tokenLifetime": 5}"#).unwrap_err();
        assert!(error.to_string().contains("tokenLifetime"), "{error}");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let identities = Identities::default()
            .with_devops(DevOps::new("o", "oid", "p", "pid", "ci", "job-secret-1"))
            .with_application(
                EntraApplication::new("t", "c")
                    .secret("app-secret-2")
                    .certificate(crate::emulator::TEST_CERTIFICATE_PEM),
            )
            .with_managed_identity(ManagedIdentity::new("mi").identity_header("header-secret-3"))
            .with_workspace(WorkspaceAccess::new().oauth_client("sp", "oauth-secret-4"));
        let text = format!("{identities:?}");
        for secret in [
            "job-secret-1",
            "app-secret-2",
            "header-secret-3",
            "oauth-secret-4",
            "PRIVATE KEY",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn a_bad_certificate_is_refused_up_front() {
        let identities = Identities::default()
            .with_application(EntraApplication::new("t", "c").certificate("not a pem"));
        assert!(identities.validate().is_err());
        assert!(Identities::default()
            .with_token_lifetime(0)
            .validate()
            .is_err());
    }
}
