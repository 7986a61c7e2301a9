//! Azure DevOps' `oidctoken`: a job trades its access token for a short-lived OIDC id token
//! naming a service connection (or the pipeline), which Entra or the workspace then exchange.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::config::TOKEN_EXCHANGE_AUDIENCE;
use super::random;
use crate::emulator::error::{ApiError, Query};
use crate::emulator::server::same_secret;
use crate::emulator::state::Shared;

/// Stage and job as Azure DevOps names them in a pipeline with neither declared.
const STAGE_AND_JOB: &str = "__default.Job.__default";

pub(super) async fn oidctoken(
    State(shared): State<Arc<Shared>>,
    Path((organization, project, _hub, _plan, _job)): Path<(
        String,
        String,
        String,
        String,
        String,
    )>,
    query: Query,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
) -> Response {
    let identity = &shared.identity;
    let Some(devops) = &identity.config.devops else {
        return ApiError::endpoint_not_found(method.as_str(), uri.path()).into_response();
    };
    // An unknown organization or project is a bare 404, as Azure DevOps answers.
    if !organization.eq_ignore_ascii_case(&devops.organization)
        || !(project.eq_ignore_ascii_case(&devops.project_id)
            || project.eq_ignore_ascii_case(&devops.project))
    {
        return StatusCode::NOT_FOUND.into_response();
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if !bearer.is_some_and(|token| same_secret(token, &devops.job_access_token)) {
        // 401 without a body (a wrong job token gets no more than that).
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
        )
            .into_response();
    }
    if let Some(refusal) = api_version_refusal(query.get("api-version")) {
        return refusal;
    }

    let (issuer, subject) = match query.get("serviceConnectionId") {
        None => (devops.issuer(), devops.pipeline_subject()),
        Some(id) => {
            let connection = devops
                .service_connections
                .iter()
                .find(|c| c.authorized && c.id.eq_ignore_ascii_case(id));
            match connection.and_then(|c| devops.federation_pair(&c.id)) {
                Some(pair) => pair,
                // Azure DevOps answers 200 with a wrapped string and no `oidcToken` when the
                // job does not reference the connection (or it does not exist): clients must
                // look for the token, not only at the status.
                None => {
                    let value = format!(
                        "There is no explicit reference to service connection {id} from current stage {STAGE_AND_JOB}."
                    );
                    return Json(json!({"count": value.chars().count(), "value": value}))
                        .into_response();
                }
            }
        }
    };
    let now = identity.clock.now_secs();
    let claims = json!({
        "jti": random::guid(),
        "sub": subject,
        "aud": TOKEN_EXCHANGE_AUDIENCE,
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + identity.config.id_token_lifetime_seconds,
    });
    Json(json!({ "oidcToken": identity.sign_id_token(&claims) })).into_response()
}

/// `oidctoken` is a preview API: `api-version=7.1-preview.1` (any `-preview` version); the
/// refusal for anything else.
fn api_version_refusal(version: Option<&str>) -> Option<Response> {
    match version {
        Some(version) if version.contains("-preview") => None,
        None => Some(devops_error(
            StatusCode::BAD_REQUEST,
            "No api-version was supplied for the \"POST\" request. The version must be supplied either as part of the Accept header (e.g. \"application/json; api-version=1.0\") or as a query parameter (e.g. '?api-version=1.0').",
            "Microsoft.VisualStudio.Services.WebApi.VssVersionNotSpecifiedException, Microsoft.VisualStudio.Services.WebApi",
            "VssVersionNotSpecifiedException",
        )),
        Some(version) => Some(devops_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "The requested version \"{version}\" of the resource is under preview. The -preview flag must be supplied in the api-version for such requests. For example: \"{version}-preview\""
            ),
            "Microsoft.VisualStudio.Services.WebApi.VssInvalidPreviewVersionException, Microsoft.VisualStudio.Services.WebApi",
            "VssInvalidPreviewVersionException",
        )),
    }
}

/// Azure DevOps' error envelope.
fn devops_error(status: StatusCode, message: &str, type_name: &str, type_key: &str) -> Response {
    let body: Value = json!({
        "$id": "1",
        "innerException": null,
        "message": message,
        "typeName": type_name,
        "typeKey": type_key,
        "errorCode": 0,
        "eventId": 3000,
    });
    (status, Json(body)).into_response()
}
