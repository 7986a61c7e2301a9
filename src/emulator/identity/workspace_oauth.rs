//! The workspace's own OAuth server: discovery, machine-to-machine client credentials with a
//! Databricks service principal's secret, and RFC 8693 token exchange of an Azure DevOps id
//! token under a federation policy.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::json;

use super::config::WorkspaceAccess;
use super::jwt::Jwt;
use super::tokens::{Audience, Grant, Party};
use super::{field, form, request_base, IdentityState};
use crate::emulator::error::ApiError;
use crate::emulator::server::same_secret;
use crate::emulator::state::Shared;
use crate::emulator::workspace::WORKSPACE_ID;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// `GET /.well-known/databricks-config`, as workspaces answer it (without authentication):
/// where the OAuth server is, and the workspace's id. A unified host names an account-rooted
/// OAuth server with the `{account_id}` placeholder.
pub(crate) async fn host_metadata(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Json<serde_json::Value> {
    let base = request_base(&shared, &headers);
    let workspace_id = WORKSPACE_ID.to_string();
    Json(match unified_account(&shared) {
        Some(account) => json!({
            "oidc_endpoint": format!("{base}/oidc/accounts/{{account_id}}"),
            "account_id": account,
            "workspace_id": workspace_id,
            "cloud": "AZURE",
            "host_type": "unified",
        }),
        None => json!({
            "oidc_endpoint": format!("{base}/oidc"),
            "workspace_id": workspace_id,
            "cloud": "AZURE",
            "host_type": "workspace",
        }),
    })
}

/// The account of a unified host, when the workspace is served as one.
pub(crate) fn unified_account(shared: &Shared) -> Option<String> {
    let workspace = shared.identity.config.workspace.as_ref()?;
    Some(workspace.unified_host.as_ref()?.account_id.clone())
}

/// Where the OAuth server answers: `/oidc` on a workspace host, `/oidc/accounts/<id>` on a
/// unified host (and nowhere else on either).
fn oauth_root(shared: &Shared, account_in_path: Option<&str>) -> Option<String> {
    match (unified_account(shared), account_in_path) {
        (None, None) => Some("/oidc".into()),
        (Some(account), Some(asked)) if account == asked => {
            Some(format!("/oidc/accounts/{account}"))
        }
        _ => None,
    }
}

pub(super) async fn discovery(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
) -> Response {
    discovery_at(&shared, &headers, None, &method, &uri)
}

pub(super) async fn account_discovery(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
) -> Response {
    discovery_at(&shared, &headers, Some(&account), &method, &uri)
}

fn discovery_at(
    shared: &Shared,
    headers: &HeaderMap,
    account: Option<&str>,
    method: &Method,
    uri: &Uri,
) -> Response {
    let root = oauth_root(shared, account).filter(|_| shared.identity.config.workspace.is_some());
    let Some(root) = root else {
        return ApiError::endpoint_not_found(method.as_str(), uri.path()).into_response();
    };
    let base = format!("{}{root}", request_base(shared, headers));
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/v1/authorize"),
        "token_endpoint": format!("{base}/v1/token"),
        "jwks_uri": format!("{base}/jwks.json"),
        "grant_types_supported": [
            "client_credentials",
            "authorization_code",
            "refresh_token",
            TOKEN_EXCHANGE,
        ],
        "response_types_supported": ["code", "id_token"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "scopes_supported": ["all-apis", "email", "offline_access", "openid", "profile", "sql"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
    }))
    .into_response()
}

/// An OAuth refusal, `{"error", "error_description"}`.
struct Refusal(StatusCode, &'static str, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let Refusal(status, error, description) = self;
        (
            status,
            Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    }
}

fn invalid_request(description: String) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, "invalid_request", description)
}

pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    token_at(&shared, &headers, None, &method, &uri, &body)
}

pub(super) async fn account_token(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    token_at(&shared, &headers, Some(&account), &method, &uri, &body)
}

fn token_at(
    shared: &Shared,
    headers: &HeaderMap,
    account: Option<&str>,
    method: &Method,
    uri: &Uri,
    body: &Bytes,
) -> Response {
    let identity = &shared.identity;
    let (Some(workspace), Some(root)) = (&identity.config.workspace, oauth_root(shared, account))
    else {
        return ApiError::endpoint_not_found(method.as_str(), uri.path()).into_response();
    };
    let fields = form(body);
    let granted = match field(&fields, "grant_type") {
        Some("client_credentials") => client_credentials(workspace, &fields, headers),
        Some(TOKEN_EXCHANGE) => token_exchange(identity, workspace, &fields),
        Some(other) => Err(Refusal(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("Unsupported grant type '{other}'."),
        )),
        None => Err(invalid_request(
            "Missing required parameter: grant_type".into(),
        )),
    };
    let client_id = match granted.and_then(|client_id| check_scope(&fields).map(|()| client_id)) {
        Ok(client_id) => client_id,
        Err(refusal) => return refusal.into_response(),
    };
    let lifetime = identity.config.token_lifetime_seconds;
    let issuer = format!("{}{root}", request_base(shared, headers));
    let access_token = identity.issue(&Grant {
        party: Party::WorkspaceOAuth,
        audience: Audience::Workspace,
        client_id: &client_id,
        issuer: &issuer,
        tenant_id: None,
        lifetime_secs: lifetime,
    });
    Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": "all-apis",
    }))
    .into_response()
}

/// The tasks ask for `all-apis`, the one scope that reaches the REST API.
fn check_scope(fields: &HashMap<String, String>) -> Result<(), Refusal> {
    let scope = field(fields, "scope").unwrap_or_default();
    if scope.split_whitespace().any(|s| s == "all-apis") {
        Ok(())
    } else {
        Err(Refusal(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            format!("The requested scope '{scope}' is invalid: ask for 'all-apis'."),
        ))
    }
}

/// Machine-to-machine: the service principal's OAuth secret, as HTTP Basic or in the form.
fn client_credentials(
    workspace: &WorkspaceAccess,
    fields: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<String, Refusal> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, encoded)| STANDARD.decode(encoded.trim()).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(id, secret)| (id.to_string(), secret.to_string()))
        });
    let (client_id, secret) = match basic {
        Some(pair) => pair,
        None => (
            field(fields, "client_id").unwrap_or_default().to_string(),
            field(fields, "client_secret")
                .unwrap_or_default()
                .to_string(),
        ),
    };
    let known = workspace
        .oauth_clients
        .iter()
        .any(|c| c.client_id == client_id && same_secret(&secret, &c.client_secret));
    if known {
        Ok(client_id)
    } else {
        Err(Refusal(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed".into(),
        ))
    }
}

/// Token federation: an Azure DevOps id token for a service principal whose federation
/// policy names its issuer, audience and subject.
fn token_exchange(
    identity: &IdentityState,
    workspace: &WorkspaceAccess,
    fields: &HashMap<String, String>,
) -> Result<String, Refusal> {
    if field(fields, "subject_token_type") != Some(JWT_TOKEN_TYPE) {
        return Err(invalid_request(format!(
            "subject_token_type must be '{JWT_TOKEN_TYPE}'."
        )));
    }
    let subject_token = field(fields, "subject_token")
        .ok_or_else(|| invalid_request("Missing required parameter: subject_token".into()))?;
    let client_id = field(fields, "client_id").ok_or_else(|| {
        invalid_request(
            "Missing required parameter: client_id (the service principal's application id)".into(),
        )
    })?;
    let jwt = Jwt::parse(subject_token)
        .ok_or_else(|| invalid_request("The subject token is not a JWT.".into()))?;
    let issuer = jwt.claim_str("iss").unwrap_or_default();
    let subject = jwt.claim_str("sub").unwrap_or_default();
    let audiences = jwt.audiences();
    let matched = workspace.federation_policies.iter().any(|p| {
        p.client_id == client_id
            && p.issuer == issuer
            && p.subject == subject
            && audiences.contains(&p.audience.as_str())
    });
    if !matched {
        return Err(invalid_request(format!(
            "Token exchange failed: no federation policy of service principal '{client_id}' matches issuer '{issuer}', subject '{subject}' and audience '{}'.",
            audiences.join(", ")
        )));
    }
    if !identity.signed_here(&jwt) {
        return Err(invalid_request(
            "Token exchange failed: the subject token's signature is not valid.".into(),
        ));
    }
    let now = identity.clock.now_secs();
    if jwt.claim_secs("exp").is_none_or(|exp| now >= exp) {
        return Err(invalid_request(
            "Token exchange failed: the subject token has expired.".into(),
        ));
    }
    Ok(client_id.to_string())
}
