//! The HTTP surface: API routes behind counting, fault injection and authentication, plus
//! the `/emulator/*` control routes tests and scripts use (same token, not counted, no
//! faults: they change what the workspace does, so they are no less sensitive).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult, JsonBody};
use super::faults::{self, FaultRule};
use super::jobs::{self, ApiVersion};
use super::state::Shared;
use super::{files, identity, repos, workspace};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut api = Router::new()
        .merge(workspace::routes())
        .merge(repos::routes())
        .merge(files::routes());
    for version in [ApiVersion::V2_0, ApiVersion::V2_1, ApiVersion::V2_2] {
        api = api.merge(jobs::routes(version));
    }
    // Layers run outside-in in the reverse order of these calls: count, then faults, then
    // authentication, so faulted and unauthenticated requests are counted too.
    let api = api
        .route("/api/{*rest}", any(endpoint_not_found))
        .method_not_allowed_fallback(endpoint_not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), authenticate))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            faults::inject,
        ))
        .layer(middleware::from_fn_with_state(shared.clone(), count));

    // The identity parties (only when configured: otherwise those paths stay unknown, as
    // before). Counted and faulted like the API, not authenticated: they hand out the tokens.
    let parties = if shared.identity.config.any() {
        identity::routes()
            .layer(middleware::from_fn_with_state(
                shared.clone(),
                faults::inject,
            ))
            .layer(middleware::from_fn_with_state(shared.clone(), count))
    } else {
        Router::new()
    };

    // What the host says about itself, as every workspace does: no token needed.
    let metadata = Router::new()
        .route(
            "/.well-known/databricks-config",
            get(identity::host_metadata),
        )
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            faults::inject,
        ))
        .layer(middleware::from_fn_with_state(shared.clone(), count));

    let control = Router::new()
        .route("/requests", get(request_counts))
        .route("/requests/reset", post(reset_request_counts))
        .route("/faults", put(set_faults))
        .route("/runs", get(runs))
        .route("/identities", get(identity::summary))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            authenticate_control,
        ));

    Router::new()
        .merge(api)
        .merge(parties)
        .merge(metadata)
        .nest("/emulator", control)
        .route("/", get(home))
        .fallback(endpoint_not_found)
        .with_state(shared)
}

async fn endpoint_not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::endpoint_not_found(method.as_str(), uri.path())
}

/// The path a request is counted (and matched by fault rules) under: its own, or a template
/// for the identity routes whose paths carry ids (`/{tenant}/oauth2/v2.0/token`).
#[derive(Clone)]
pub(crate) struct EndpointPath(pub String);

async fn count(State(shared): State<Arc<Shared>>, mut request: Request, next: Next) -> Response {
    let path = identity::endpoint_path(request.uri().path())
        .map(str::to_string)
        .unwrap_or_else(|| request.uri().path().to_string());
    let _in_flight = shared.count_request(request.method().as_str(), &path);
    request.extensions_mut().insert(EndpointPath(path));
    next.run(request).await
}

/// The bearer token of a request, if it has one.
fn bearer(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

fn no_credential() -> Response {
    ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "Credential was not sent or was of an unsupported type for this API.",
    )
    .into_response()
}

/// The control routes (`/emulator/*`) change what the workspace does and show its tokens:
/// only the emulator's own token opens them, never one an identity party handed out (the
/// instance metadata route gives one to anyone who asks).
async fn authenticate_control(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    match bearer(&request) {
        Some(token) if same_secret(token, &shared.token) => next.run(request).await,
        Some(_) => ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "The emulator's control routes take only the emulator's own token.",
        )
        .into_response(),
        None => no_credential(),
    }
}

async fn authenticate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let credential = bearer(&request);
    match credential {
        None => no_credential(),
        Some(token) if same_secret(token, &shared.token) => next.run(request).await,
        // Otherwise a token one of the identity parties issued (none without identities:
        // then every other token is refused as before).
        Some(token) => {
            match identity::authorize_workspace(&shared.identity, token, request.headers()) {
                Ok(()) => next.run(request).await,
                Err(refusal) => refusal.into_response(),
            }
        }
    }
}

/// Compares without an early exit, so response times do not leak how much of a guessed token
/// was right.
pub(crate) fn same_secret(given: &str, expected: &str) -> bool {
    let (given, expected) = (given.as_bytes(), expected.as_bytes());
    let differences = given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    given.len() == expected.len() && differences == 0
}

async fn request_counts(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let counts = shared.request_counts();
    let total: u64 = counts.values().sum();
    Json(json!({
        "total": total,
        "by_endpoint": counts,
        "max_in_flight": shared.max_in_flight(),
        "first_request_at_ms": shared.first_request_at(),
    }))
}

async fn reset_request_counts(State(shared): State<Arc<Shared>>) -> Json<Value> {
    shared.reset_request_counts();
    Json(json!({}))
}

/// `PUT /emulator/faults` with a JSON array of rules in the `--fault` syntax.
async fn set_faults(
    State(shared): State<Arc<Shared>>,
    JsonBody(rules): JsonBody<Vec<String>>,
) -> ApiResult<Json<Value>> {
    let rules = rules
        .iter()
        .map(|rule| rule.parse::<FaultRule>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let active: Vec<String> = rules.iter().map(ToString::to_string).collect();
    shared.set_faults(rules);
    Ok(Json(json!({ "faults": active })))
}

async fn runs(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(jobs::summaries(&shared))
}

/// Run page links point at the workspace root; say what is there instead of a bare 404.
async fn home() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Local Databricks workspace emulator (databricks-azdo).\n\
         The REST API is under /api; GET /emulator/runs lists the runs (both need the token).\n",
    )
}
