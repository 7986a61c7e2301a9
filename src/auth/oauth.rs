//! Databricks' own OAuth: a Databricks service principal's client id and secret
//! (machine-to-machine), or the job's Azure DevOps id token exchanged under a federation
//! policy (RFC 8693), at the token endpoint the workspace announces: its discovery document is
//! found through the host metadata (`host_metadata`), as current SDKs find it.

use base64::Engine as _;
use serde::Deserialize;

use super::devops::{id_token, IdTokenRequest};
use super::entra::oauth_envelope;
use super::host_metadata::oauth_place;
use super::{send, token_request, Issued, SecretSink, Translate};
use crate::databricks::WorkspaceUrl;
use crate::rest::{ApiError, Body, Caller, Method, Request};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// How a Databricks service principal proves who it is.
#[derive(Clone)]
pub enum OAuthProof {
    Secret(String),
    Federated(IdTokenRequest),
}

#[derive(Deserialize)]
struct Discovery {
    token_endpoint: Option<String>,
}

/// The workspace's token endpoint, from its discovery document, and the workspace id a
/// unified host wants on API calls. The endpoint must be on the workspace itself: a client
/// secret is never sent to a host a discovery answer names.
async fn token_endpoint(
    caller: &Caller,
    workspace: &WorkspaceUrl,
    translate: &Translate,
) -> Result<(String, Option<String>), ApiError> {
    let place = oauth_place(caller, workspace).await;
    let path = url::Url::parse(&place.discovery_url)
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    let call = Request {
        method: Method::Get,
        url: place.discovery_url,
        path,
        headers: Vec::new(),
        body: None,
    };
    let discovery: Discovery = send(caller, &call, oauth_envelope)
        .await
        .map_err(|error| translate.databricks_oauth(error, None))?;
    let endpoint = discovery.token_endpoint.unwrap_or_default();
    if let Err(reason) = workspace.link(&endpoint) {
        return Err(ApiError::SignIn {
            message: format!(
                "the workspace's OAuth discovery document names a token endpoint that cannot be used: {reason}"
            ),
            hint: Some("check that databricksHost is the workspace URL and that no proxy rewrites its answers".into()),
        });
    }
    Ok((endpoint, place.workspace_id))
}

/// A workspace token for the service principal `client_id`, and the workspace id to name on
/// API calls (a unified host's metadata gives one).
pub async fn token(
    caller: &Caller,
    workspace: &WorkspaceUrl,
    client_id: &str,
    proof: &OAuthProof,
    secrets: &SecretSink,
    translate: &Translate,
) -> Result<(Issued, Option<String>), ApiError> {
    let (url, workspace_id) = token_endpoint(caller, workspace, translate).await?;
    let path = url::Url::parse(&url)
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    let mut presented = None;
    let (headers, body) = match proof {
        OAuthProof::Secret(secret) => {
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
            secrets(&basic);
            (
                vec![("authorization", format!("Basic {basic}"))],
                Body::form(&[("grant_type", "client_credentials"), ("scope", "all-apis")]),
            )
        }
        OAuthProof::Federated(request) => {
            let token = id_token(caller, request, secrets, translate).await?;
            let body = Body::form(&[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", &token),
                ("subject_token_type", JWT_TOKEN_TYPE),
                ("client_id", client_id),
                ("scope", "all-apis"),
            ]);
            presented = Some(token);
            (Vec::new(), body)
        }
    };
    let call = Request {
        method: Method::Post,
        url,
        path,
        headers,
        body: Some(body),
    };
    let issued = token_request(
        caller,
        &call,
        "The workspace's token endpoint",
        secrets,
        |error| translate.databricks_oauth(error, presented.as_deref()),
    )
    .await?;
    Ok((issued, workspace_id))
}
