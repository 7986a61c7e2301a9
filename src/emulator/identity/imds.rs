//! The machine's managed identity: the instance metadata service of an Azure VM
//! (`GET /metadata/identity/oauth2/token`, header `Metadata: true`) and the App Service / Arc
//! style endpoint (`GET /msi/token`, header `X-IDENTITY-HEADER`). Both answer in IMDS' shape,
//! numbers as strings.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::config::ManagedIdentity;
use super::tokens::{Audience, Grant, Party};
use super::IdentityState;
use crate::emulator::error::{ApiError, Query};
use crate::emulator::server::same_secret;
use crate::emulator::state::Shared;

pub(super) async fn metadata_token(
    State(shared): State<Arc<Shared>>,
    query: Query,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
) -> Response {
    let identity = &shared.identity;
    if !identity.config.any() {
        return ApiError::endpoint_not_found(method.as_str(), uri.path()).into_response();
    }
    // IMDS wants the header so that a request redirected there by someone else fails.
    let metadata = headers.get("metadata").and_then(|v| v.to_str().ok());
    if !metadata.is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return imds_error("bad_request_102", "Required metadata header not specified");
    }
    answer(identity, &query)
}

pub(super) async fn app_service_token(
    State(shared): State<Arc<Shared>>,
    query: Query,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
) -> Response {
    let identity = &shared.identity;
    let expected = identity
        .config
        .managed_identity
        .as_ref()
        .and_then(|mi| mi.identity_header.as_deref());
    let Some(expected) = expected else {
        return ApiError::endpoint_not_found(method.as_str(), uri.path()).into_response();
    };
    let given = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok());
    if !given.is_some_and(|given| same_secret(given, expected)) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({
                "error": "invalid_request",
                "error_description": "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER.",
            })),
        )
            .into_response();
    }
    answer(identity, &query)
}

fn answer(identity: &IdentityState, query: &Query) -> Response {
    let Some(resource) = query.get("resource") else {
        return imds_error(
            "invalid_request",
            "Required audience parameter not specified",
        );
    };
    // A VM without a managed identity, or asked for a user-assigned one (`client_id`) that is
    // not assigned to it, answers "not found".
    let managed: Option<&ManagedIdentity> = identity.config.managed_identity.as_ref();
    let managed = managed.filter(|managed| {
        query
            .get("client_id")
            .is_none_or(|client_id| client_id.eq_ignore_ascii_case(&managed.client_id))
    });
    let Some(managed) = managed else {
        return imds_error("invalid_request", "Identity not found");
    };
    let tenant = managed
        .tenant_id
        .as_deref()
        .unwrap_or("00000000-0000-0000-0000-000000000000");
    let audience = match resource.trim_end_matches('/') {
        super::config::AZURE_DATABRICKS_RESOURCE => Audience::AzureDatabricks,
        "https://management.core.windows.net" | "https://management.azure.com" => {
            Audience::Management
        }
        _ => {
            return imds_error(
                "invalid_resource",
                &format!(
                    "AADSTS500011: The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
                ),
            )
        }
    };
    let lifetime = identity.config.token_lifetime_seconds;
    let now = identity.clock.now_secs();
    let access_token = identity.issue(&Grant {
        party: Party::Imds,
        audience,
        client_id: &managed.client_id,
        issuer: &format!("https://sts.windows.net/{tenant}/"),
        tenant_id: Some(tenant),
        lifetime_secs: lifetime,
    });
    Json(json!({
        "access_token": access_token,
        "client_id": managed.client_id,
        "expires_in": lifetime.to_string(),
        "expires_on": (now + lifetime).to_string(),
        "ext_expires_in": lifetime.to_string(),
        "not_before": now.to_string(),
        "resource": resource,
        "token_type": "Bearer",
    }))
    .into_response()
}

/// IMDS' refusal: 400 with an OAuth style body.
fn imds_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}
