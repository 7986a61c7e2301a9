//! The identity parties a pipeline signs in through, played on the emulator's own listener
//! (one base URL for all of them), offline and deterministic:
//! - `devops`: Azure DevOps' `oidctoken` (the job's OIDC id token for a service connection)
//! - `entra`: Microsoft Entra's token endpoint (client secret, certificate assertion, or an
//!   Azure DevOps id token as a federated assertion)
//! - `imds`: the instance metadata service and the App Service style `/msi/token`
//! - `workspace_oauth`: the workspace's own OAuth server (M2M secret, token exchange)
//! - `acceptance`: which of those tokens the workspace API accepts, and the service principal
//!   that is added on first use
//!
//! Beside them: `config` (who exists), `tokens` (what was issued), `jwt`, `cert`, `clock`,
//! `random`. With no party configured none of the routes exist and the workspace accepts only
//! its personal access token.

mod acceptance;
pub(crate) mod cert;
mod clock;
mod config;
mod devops;
mod entra;
mod imds;
pub(crate) mod jwt;
mod random;
#[cfg(test)]
mod tests;
mod tokens;
mod workspace_oauth;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use ring::hmac;
use serde_json::{json, Value};

pub use config::{
    DevOps, Entra, EntraApplication, FederatedCredential, FederationPolicy, Identities,
    ManagedIdentity, OAuthClient, ServiceConnection, WorkspaceAccess, AZURE_DATABRICKS_RESOURCE,
    MANAGEMENT_RESOURCE, TOKEN_EXCHANGE_AUDIENCE,
};

pub(crate) use acceptance::authorize_workspace;
use cert::Certificate;
use clock::Clock;
use tokens::{Grant, Issued, Party, Refusal, TokenStore};
pub(crate) use workspace_oauth::host_metadata;

use super::state::{lock, Shared};

/// What the parties know and remember while the emulator runs.
pub(crate) struct IdentityState {
    pub config: Identities,
    /// (tenant id, client id) → the application's certificate.
    certificates: HashMap<(String, String), Certificate>,
    /// Signs Azure DevOps id tokens and the JWT form of access tokens: random per process, so
    /// nothing signed by another emulator (or by hand) passes.
    key: hmac::Key,
    pub clock: Clock,
    store: Mutex<TokenStore>,
    /// Service principals added on first use (management token + Contributor).
    added_principals: Mutex<BTreeSet<String>>,
}

impl IdentityState {
    /// `config` should have passed [`Identities::validate`]; a certificate that does not parse
    /// is left out (its application then has no certificate credential).
    pub fn new(config: &Identities) -> Self {
        let certificates = config
            .entra
            .iter()
            .flat_map(|entra| &entra.applications)
            .filter_map(|app| {
                let cert = Certificate::from_pem(app.certificate_pem.as_deref()?).ok()?;
                Some(((app.tenant_id.clone(), app.client_id.clone()), cert))
            })
            .collect();
        IdentityState {
            config: config.clone(),
            certificates,
            key: hmac::Key::new(hmac::HMAC_SHA256, &random::bytes::<32>()),
            clock: Clock::default(),
            store: Mutex::new(TokenStore::default()),
            added_principals: Mutex::new(BTreeSet::new()),
        }
    }

    fn certificate(&self, tenant_id: &str, client_id: &str) -> Option<&Certificate> {
        self.certificates
            .get(&(tenant_id.to_string(), client_id.to_string()))
    }

    fn issue(&self, grant: &Grant<'_>) -> String {
        lock(&self.store).issue(&self.key, grant, self.clock.now_ms())
    }

    fn check(&self, token: &str) -> Result<Issued, Refusal> {
        lock(&self.store).check(token, self.clock.now_ms()).cloned()
    }

    pub fn tokens_issued(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.store).issued()
    }

    fn live_tokens(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.store).live(self.clock.now_ms())
    }

    /// Signs an Azure DevOps id token and counts it.
    fn sign_id_token(&self, claims: &Value) -> String {
        let token = jwt::encode_hs256(&self.key, claims);
        lock(&self.store).record(Party::DevOps, &token);
        token
    }

    /// Every token handed out so far (id tokens and access tokens).
    pub fn handed_out(&self) -> Vec<String> {
        lock(&self.store).handed_out()
    }

    /// Whether this emulator signed `token` (an Azure DevOps id token).
    fn signed_here(&self, token: &jwt::Jwt) -> bool {
        jwt::verify_hs256(&self.key, token)
    }

    /// Configured principals and those added since, sorted.
    pub fn principals(&self) -> Vec<String> {
        let configured = self
            .config
            .workspace
            .iter()
            .flat_map(|workspace| workspace.principals.iter().cloned());
        let added = lock(&self.added_principals).clone();
        configured
            .chain(added)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    fn is_principal(&self, client_id: &str) -> bool {
        let configured = self
            .config
            .workspace
            .as_ref()
            .is_some_and(|workspace| workspace.principals.iter().any(|p| p == client_id));
        configured || lock(&self.added_principals).contains(client_id)
    }

    fn add_principal(&self, client_id: &str) {
        lock(&self.added_principals).insert(client_id.to_string());
    }

    pub fn advance_clock(&self, by: Duration) {
        self.clock.advance(by);
    }
}

/// The parties' routes. Counted and open to faults like the API, but not behind the workspace
/// token: they are how a client gets one.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/{organization}/{project}/_apis/distributedtask/hubs/{hub}/plans/{plan}/jobs/{job}/oidctoken",
            post(devops::oidctoken),
        )
        .route("/{tenant}/oauth2/v2.0/token", post(entra::token))
        .route("/metadata/identity/oauth2/token", get(imds::metadata_token))
        .route("/msi/token", get(imds::app_service_token))
        .route(
            "/oidc/.well-known/oauth-authorization-server",
            get(workspace_oauth::discovery),
        )
        .route("/oidc/v1/token", post(workspace_oauth::token))
        .route(
            "/oidc/accounts/{account}/.well-known/oauth-authorization-server",
            get(workspace_oauth::account_discovery),
        )
        .route(
            "/oidc/accounts/{account}/v1/token",
            post(workspace_oauth::account_token),
        )
}

/// The counted name of a path with ids in it, so that every `oidctoken` call (new plan and
/// job ids each time) and every tenant's token endpoint count under one endpoint.
pub(crate) fn endpoint_path(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let reserved = ["api", "emulator", "oidc", "metadata", "msi"];
    if segments
        .first()
        .is_none_or(|first| reserved.contains(first))
    {
        return None;
    }
    match segments.as_slice() {
        [_, "oauth2", "v2.0", "token"] => Some("/{tenant}/oauth2/v2.0/token"),
        [_, _, "_apis", "distributedtask", "hubs", _, "plans", _, "jobs", _, "oidctoken"] => Some(
            "/{organization}/{project}/_apis/distributedtask/hubs/{hub}/plans/{plan}/jobs/{job}/oidctoken",
        ),
        _ => None,
    }
}

/// `GET /emulator/identities`: tokens issued per party (and those still live) and the
/// workspace's principals.
pub(crate) async fn summary(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let identity = &shared.identity;
    let added: Vec<String> = lock(&identity.added_principals).iter().cloned().collect();
    Json(json!({
        "tokens_issued": identity.tokens_issued(),
        "live_tokens": identity.live_tokens(),
        "principals": identity.principals(),
        "added_principals": added,
    }))
}

/// A form body (`application/x-www-form-urlencoded`); the last value wins when one repeats.
fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// Non-empty value of a form or query field.
fn field<'a>(fields: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    fields
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// `http://HOST` of the request, as the client addressed the emulator (discovery documents and
/// assertion audiences use it), or the emulator's own URL without a Host header.
fn request_base(shared: &Shared, headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::HOST)
        .and_then(|host| host.to_str().ok())
        .map(|host| format!("http://{host}"))
        .unwrap_or_else(|| shared.base_url.clone())
}
