//! Signing in: every way a pipeline can prove who it is to a workspace, as a [`Credential`]
//! the Databricks client asks before each attempt. A personal access token is used as it is;
//! the others obtain tokens from Microsoft Entra, the machine's managed identity or the
//! workspace's own OAuth endpoint, renewed before they expire (`token`). Token calls go through
//! a [`Caller`] like every other request: the same transport, proxy and retry policy.
//!
//! - `devops`: the job's id token from Azure DevOps (for federation)
//! - `entra`, `msi`, `oauth`: the three token issuers
//! - `certificate`: client assertions signed with a service principal's certificate
//! - `explain`: refusals translated into what to fix
//! - `jwt`: reading the claims of a token we were handed

mod certificate;
pub mod devops;
pub mod entra;
mod explain;
pub mod host_metadata;
pub mod jwt;
pub mod msi;
pub mod oauth;
mod token;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use futures::future::LocalBoxFuture;

pub use devops::{IdTokenRequest, JobIds};
pub use entra::{EntraApp, Proof};
pub use explain::Translate;
pub use msi::MsiEndpoint;
pub use oauth::OAuthProof;
pub use token::refresh_after;

use crate::databricks::WorkspaceUrl;
use crate::host::Host;
use crate::rest::{
    ApiError, Caller, Credential, CredentialHeaders, Envelope, Notice, Request, StaticToken,
};
use token::{Obtained, Refreshing, TokenSource};

/// Registers a value as a secret (masked in everything printed from then on).
pub type SecretSink = Rc<dyn Fn(&str)>;

/// Sends `call` with the caller's retries; the answer read as `T`, or the error `envelope` reads.
async fn send<T: serde::de::DeserializeOwned>(
    caller: &Caller,
    call: &Request,
    envelope: Envelope,
) -> Result<T, ApiError> {
    caller
        .retrying(
            &call.label(),
            || caller.attempt(call.clone(), envelope),
            || async { None },
        )
        .await
}

/// The fewest characters a real token has: Entra's, Databricks' and Azure DevOps' are JWTs or
/// opaque strings of hundreds. A shorter one would be registered as a secret and so mask that
/// text in every later line of the job: it is refused instead.
const MIN_TOKEN_CHARS: usize = 16;

/// A token handed to us goes into a header and into the job's list of secrets: one word of
/// visible ASCII, long enough to be real. Checked before it is registered.
fn check_token_shape(party: &str, what: &str, token: &str) -> Result<(), ApiError> {
    let problem = if !token.bytes().all(|b| b.is_ascii_graphic()) {
        Some("is not a single word of visible ASCII characters".to_string())
    } else if token.len() < MIN_TOKEN_CHARS {
        Some(format!(
            "has {} characters, too few for a real token (at least {MIN_TOKEN_CHARS})",
            token.len()
        ))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(ApiError::SignIn {
            message: format!("{party} answered with {what} that {problem}"),
            hint: Some("check that nothing between the agent and the identity provider (a proxy) rewrites its answers".into()),
        }),
    }
}

/// One request to a token endpoint (OAuth's error shape): a refusal is translated by
/// `explain`, and the token is registered as a secret before it is handed back.
async fn token_request(
    caller: &Caller,
    call: &Request,
    issuer: &str,
    secrets: &SecretSink,
    explain: impl FnOnce(ApiError) -> ApiError,
) -> Result<Issued, ApiError> {
    let answer: entra::TokenAnswer = send(caller, call, entra::oauth_envelope)
        .await
        .map_err(explain)?;
    let issued = answer.issued(issuer)?;
    secrets(&issued.token);
    Ok(issued)
}

/// A token an issuer handed out.
pub struct Issued {
    pub token: String,
    pub lifetime: Duration,
}

/// How to sign in, resolved from the task's inputs (or the CLI's environment).
#[derive(Clone)]
pub enum SignIn {
    /// A personal access token (or any Databricks token given as it is).
    Token(String),
    /// A Microsoft Entra application; with `workspace_resource_id`, Databricks adds it to the
    /// workspace on first use.
    Entra {
        app: EntraApp,
        workspace_resource_id: Option<String>,
    },
    ManagedIdentity {
        endpoint: MsiEndpoint,
        client_id: Option<String>,
        workspace_resource_id: Option<String>,
    },
    /// A Databricks service principal, through the workspace's OAuth endpoint.
    Databricks {
        client_id: String,
        proof: OAuthProof,
    },
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only what identifies, never what proves.
        match self {
            SignIn::Token(_) => f.write_str("Token(***)"),
            SignIn::Entra { app, .. } => write!(
                f,
                "Entra({}, {}, {})",
                app.tenant,
                app.client_id,
                app.proof.describe()
            ),
            SignIn::ManagedIdentity {
                endpoint,
                client_id,
                ..
            } => write!(f, "ManagedIdentity({endpoint:?}, {client_id:?})"),
            SignIn::Databricks { client_id, .. } => write!(f, "Databricks({client_id})"),
        }
    }
}

/// Everything a credential needs besides the sign-in itself.
pub struct Wiring {
    pub workspace: WorkspaceUrl,
    pub host: Rc<dyn Host>,
    /// For token calls through the agent's proxy.
    pub caller: Caller,
    /// For the managed identity endpoint, which is local and never proxied.
    pub direct_caller: Caller,
    pub secrets: SecretSink,
    /// Told once who signed in, and about each renewal.
    pub signed_in: Notice,
    pub renewed: Notice,
}

/// The credential for `sign_in`: a static token, or tokens obtained and renewed.
pub fn credential(sign_in: &SignIn, translate: Translate, wiring: Wiring) -> Rc<dyn Credential> {
    if let SignIn::Token(token) = sign_in {
        return Rc::new(StaticToken::new(token));
    }
    let hint = refused_hint(sign_in, &translate);
    let host = wiring.host.clone();
    let source = Source {
        sign_in: sign_in.clone(),
        translate,
        wiring,
        obtained: Cell::new(0),
        identified: RefCell::new(None),
    };
    Rc::new(Refreshing::new(Box::new(source), host, Some(hint)))
}

/// What to check when the workspace refuses a token this sign-in obtained.
fn refused_hint(sign_in: &SignIn, translate: &Translate) -> String {
    let client = translate.client_id.as_deref().unwrap_or("?");
    match sign_in {
        SignIn::Entra { workspace_resource_id: None, .. } | SignIn::ManagedIdentity { workspace_resource_id: None, .. } => format!(
            "the workspace refused the Microsoft Entra token of {client}: add this service principal to the workspace (Settings > Identity and access > Service principals > Add, with application id {client}), or set workspaceResourceId to the workspace's Azure resource id so that Databricks adds it on first use (it needs the Contributor role on that resource)"
        ),
        SignIn::Entra { .. } | SignIn::ManagedIdentity { .. } => format!(
            "the workspace refused the Microsoft Entra token of {client} even with workspaceResourceId: check that it is the resource id of this workspace and that the service principal has the Contributor role on it, or add the service principal to the workspace"
        ),
        SignIn::Databricks { .. } => format!(
            "the workspace refused the OAuth token of service principal {client}: check that it is assigned to this workspace and has the Workspace access entitlement"
        ),
        SignIn::Token(_) => String::new(),
    }
}

struct Source {
    sign_in: SignIn,
    translate: Translate,
    wiring: Wiring,
    obtained: Cell<u32>,
    /// Who a system-assigned managed identity is (its application and tenant ids), read from
    /// its first token's claims: the connection does not say.
    identified: RefCell<Option<(String, Option<String>)>>,
}

impl Source {
    /// The workspace token, and with a workspace resource id the management token headers.
    async fn obtain_headers(&self) -> Result<Obtained, ApiError> {
        let w = &self.wiring;
        let t = &self.translate;
        let now = w.host.unix_millis() / 1000;
        let mut workspace_id = None;
        let (main, management, resource_id) = match &self.sign_in {
            SignIn::Token(_) => unreachable!("a static token is not a token source"),
            SignIn::Entra {
                app,
                workspace_resource_id,
            } => {
                let main =
                    entra::token(&w.caller, app, entra::DATABRICKS_SCOPE, &w.secrets, t, now)
                        .await?;
                let management = match workspace_resource_id {
                    Some(_) => Some(
                        entra::token(&w.caller, app, entra::MANAGEMENT_SCOPE, &w.secrets, t, now)
                            .await?,
                    ),
                    None => None,
                };
                (main, management, workspace_resource_id)
            }
            SignIn::ManagedIdentity {
                endpoint,
                client_id,
                workspace_resource_id,
            } => {
                let client = client_id.as_deref();
                let main = msi::token(
                    &w.direct_caller,
                    endpoint,
                    client,
                    msi::DATABRICKS_RESOURCE,
                    &w.secrets,
                    t,
                )
                .await?;
                if client.is_none() && self.identified.borrow().is_none() {
                    let claims = jwt::peek(&main.token).unwrap_or_default();
                    *self.identified.borrow_mut() = claims.application_and_tenant();
                }
                let management = match workspace_resource_id {
                    Some(_) => Some(
                        msi::token(
                            &w.direct_caller,
                            endpoint,
                            client,
                            msi::MANAGEMENT_RESOURCE,
                            &w.secrets,
                            t,
                        )
                        .await?,
                    ),
                    None => None,
                };
                (main, management, workspace_resource_id)
            }
            SignIn::Databricks { client_id, proof } => {
                let (main, id) =
                    oauth::token(&w.caller, &w.workspace, client_id, proof, &w.secrets, t).await?;
                workspace_id = id;
                (main, None, &None)
            }
        };
        let mut lifetime = main.lifetime;
        let mut headers: CredentialHeaders =
            vec![("authorization", format!("Bearer {}", main.token))];
        if let Some(id) = workspace_id {
            headers.push((host_metadata::WORKSPACE_ID_HEADER, id));
        }
        if let (Some(management), Some(resource_id)) = (management, resource_id) {
            lifetime = lifetime.min(management.lifetime);
            headers.push(("x-databricks-azure-sp-management-token", management.token));
            headers.push((
                "x-databricks-azure-workspace-resource-id",
                resource_id.clone(),
            ));
        }
        Ok(Obtained { headers, lifetime })
    }

    fn announce(&self, lifetime: Duration) {
        let count = self.obtained.get() + 1;
        self.obtained.set(count);
        let minutes = lifetime.as_secs() / 60;
        let valid = if minutes > 0 {
            format!("{minutes} min")
        } else {
            format!("{} s", lifetime.as_secs())
        };
        if count == 1 {
            let t = &self.translate;
            let identified = self.identified.borrow().clone();
            let from_token = t.client_id.is_none() && identified.is_some();
            let (client, tenant) = match identified.filter(|_| from_token) {
                Some((application, tenant)) => (Some(application), t.tenant.clone().or(tenant)),
                None => (t.client_id.clone(), t.tenant.clone()),
            };
            let mut who = t.method.clone();
            if let Some(client) = &client {
                who.push_str(&format!(": client id {client}"));
            }
            if let Some(tenant) = &tenant {
                who.push_str(&format!(", tenant {tenant}"));
            }
            if from_token {
                who.push_str(" (read from its token)");
            }
            (self.wiring.signed_in)(&format!(
                "Signed in with {who} (token valid {valid}, renewed before it expires)"
            ));
        } else {
            (self.wiring.renewed)(&format!("Renewed the workspace token (valid {valid})"));
        }
    }
}

impl TokenSource for Source {
    fn obtain(&self) -> LocalBoxFuture<'_, Result<Obtained, ApiError>> {
        Box::pin(async move {
            let obtained = self.obtain_headers().await?;
            self.announce(obtained.lifetime);
            Ok(obtained)
        })
    }
}
