//! Microsoft Entra's token endpoint (`POST /{tenant}/oauth2/v2.0/token`, client credentials):
//! a client secret, a certificate assertion, or an Azure DevOps id token as a federated
//! assertion buys a token for Azure Databricks or for Azure Resource Manager. Refusals carry
//! Entra's codes, statuses and wording.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::cert::x5t_as_hex;
use super::clock::{entra_instant, entra_timestamp};
use super::config::EntraApplication;
use super::jwt::Jwt;
use super::tokens::{Audience, Grant, Party};
use super::{field, form, random, request_base, IdentityState};
use crate::emulator::error::ApiError;
use crate::emulator::server::same_secret;
use crate::emulator::state::Shared;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How far in the future an assertion's `nbf` may be (clients' clocks drift).
const CLOCK_SKEW_SECS: u64 = 300;

/// An Entra refusal: HTTP status, OAuth `error`, AADSTS code and message.
pub(super) struct Refusal {
    status: StatusCode,
    error: &'static str,
    code: u32,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, error: &'static str, code: u32, message: String) -> Self {
        Refusal {
            status,
            error,
            code,
            message,
        }
    }

    /// `invalid_client`, 401: the client's credential is wrong.
    fn client(code: u32, message: String) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", code, message)
    }

    fn missing(parameter: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{parameter}'."),
        )
    }

    /// Entra's body: the message with trace, correlation and time appended, and the same
    /// pieces as fields.
    fn into_response(self, now_secs: u64, correlation_id: &str) -> Response {
        let trace_id = random::guid();
        let timestamp = entra_timestamp(now_secs);
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}",
                self.code, self.message
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        (self.status, Json(body)).into_response()
    }
}

pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let identity = &shared.identity;
    if identity.config.entra.is_none() {
        return ApiError::endpoint_not_found(method.as_str(), uri.path()).into_response();
    }
    // Entra echoes the client's `client-request-id` as the correlation id.
    let correlation_id = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(random::guid);
    let request = TokenRequest {
        identity,
        tenant: &tenant,
        fields: form(&body),
        endpoint: format!("{}{}", request_base(&shared, &headers), uri.path()),
    };
    match request.grant() {
        Ok((audience, client_id)) => {
            let lifetime = identity.config.token_lifetime_seconds;
            let access_token = identity.issue(&Grant {
                party: Party::Entra,
                audience,
                client_id: &client_id,
                issuer: &format!("https://sts.windows.net/{tenant}/"),
                tenant_id: Some(&tenant),
                lifetime_secs: lifetime,
            });
            Json(json!({
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": access_token,
            }))
            .into_response()
        }
        Err(refusal) => refusal.into_response(identity.clock.now_secs(), &correlation_id),
    }
}

struct TokenRequest<'a> {
    identity: &'a IdentityState,
    tenant: &'a str,
    fields: HashMap<String, String>,
    /// The token endpoint's URL as this request reached it (a certificate assertion's `aud`).
    endpoint: String,
}

impl TokenRequest<'_> {
    /// What to issue (audience, client id), or why not.
    fn grant(&self) -> Result<(Audience, String), Refusal> {
        let applications = &self
            .identity
            .config
            .entra
            .as_ref()
            .expect("checked")
            .applications;
        if !applications.iter().any(|app| app.tenant_id == self.tenant) {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalid_tenant",
                90002,
                format!(
                    "Tenant '{}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.",
                    self.tenant
                ),
            ));
        }
        let grant_type = self
            .field("grant_type")
            .ok_or_else(|| Refusal::missing("grant_type"))?;
        if grant_type != "client_credentials" {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{grant_type}'."),
            ));
        }
        let client_id = self
            .field("client_id")
            .ok_or_else(|| Refusal::missing("client_id"))?;
        let app = applications
            .iter()
            .find(|app| app.tenant_id == self.tenant && app.client_id == client_id)
            .ok_or_else(|| {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "unauthorized_client",
                    700016,
                    format!(
                        "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                        self.tenant
                    ),
                )
            })?;
        let audience = self.audience()?;
        if let Some(secret) = self.field("client_secret") {
            self.check_secret(app, secret)?;
        } else if let Some(assertion) = self.field("client_assertion") {
            self.check_assertion(app, assertion)?;
        } else {
            return Err(Refusal::client(
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.".into(),
            ));
        }
        Ok((audience, app.client_id.clone()))
    }

    fn field(&self, name: &str) -> Option<&str> {
        field(&self.fields, name)
    }

    /// `scope` names one resource's `/.default`: Azure Databricks or Azure Resource Manager.
    fn audience(&self) -> Result<Audience, Refusal> {
        let scope = self
            .field("scope")
            .ok_or_else(|| Refusal::missing("scope"))?;
        match scope {
            "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default" => Ok(Audience::AzureDatabricks),
            "https://management.core.windows.net//.default"
            | "https://management.core.windows.net/.default"
            | "https://management.azure.com//.default"
            | "https://management.azure.com/.default" => Ok(Audience::Management),
            _ => Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                70011,
                format!(
                    "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
                ),
            )),
        }
    }

    fn check_secret(&self, app: &EntraApplication, secret: &str) -> Result<(), Refusal> {
        let matches = app
            .client_secret
            .as_deref()
            .is_some_and(|expected| same_secret(secret, expected));
        if !matches {
            return Err(Refusal::client(
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    app.client_id
                ),
            ));
        }
        if app.secret_expired {
            return Err(Refusal::client(
                7000222,
                format!(
                    "The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.",
                    app.client_id
                ),
            ));
        }
        Ok(())
    }

    fn check_assertion(&self, app: &EntraApplication, assertion: &str) -> Result<(), Refusal> {
        if self.field("client_assertion_type") != Some(JWT_BEARER) {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                90014,
                "The required field 'client_assertion_type' is missing from the credential. Ensure that you have all the necessary parameters for the login request.".into(),
            ));
        }
        let jwt = Jwt::parse(assertion).ok_or_else(|| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                "JWT token is invalid or malformed.".into(),
            )
        })?;
        // The client signs its own assertion (iss = sub = its id); anything else is a token of
        // another issuer presented for federation.
        let own = jwt.claim_str("iss") == Some(app.client_id.as_str())
            && jwt.claim_str("sub") == Some(app.client_id.as_str());
        if own {
            self.check_certificate_assertion(app, &jwt)
        } else {
            self.check_federated_assertion(app, &jwt)
        }
    }

    /// An Azure DevOps id token, trusted through one of the app's federated credentials.
    fn check_federated_assertion(&self, app: &EntraApplication, jwt: &Jwt) -> Result<(), Refusal> {
        let issuer = jwt.claim_str("iss").unwrap_or_default();
        let subject = jwt.claim_str("sub").unwrap_or_default();
        let audiences = jwt.audiences();
        let credentials = &app.federated_credentials;
        if !credentials.iter().any(|c| c.issuer == issuer) {
            return Err(Refusal::client(
                700211,
                format!("No matching federated identity record found for presented assertion issuer '{issuer}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"),
            ));
        }
        if !credentials
            .iter()
            .any(|c| c.issuer == issuer && c.subject == subject)
        {
            return Err(Refusal::client(
                700213,
                format!("No matching federated identity record found for presented assertion subject '{subject}'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"),
            ));
        }
        if !credentials.iter().any(|c| {
            c.issuer == issuer && c.subject == subject && audiences.contains(&c.audience.as_str())
        }) {
            return Err(Refusal::client(
                700212,
                format!("No matching federated identity record found for presented assertion audience '{}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation", audiences.join(", ")),
            ));
        }
        if !self.identity.signed_here(jwt) {
            return Err(Refusal::client(
                700027,
                "Client assertion failed signature validation.".into(),
            ));
        }
        self.check_time_range(jwt)
    }

    /// An assertion the client signed with its certificate's key.
    fn check_certificate_assertion(
        &self,
        app: &EntraApplication,
        jwt: &Jwt,
    ) -> Result<(), Refusal> {
        let cert = self.identity.certificate(self.tenant, &app.client_id);
        let sha1 = jwt.header_str("x5t");
        let sha256 = jwt.header_str("x5t#S256");
        let presented = sha1.map(x5t_as_hex).or_else(|| sha256.map(str::to_string));
        let Some(presented) = presented else {
            return Err(Refusal::client(
                50027,
                "Invalid JWT token. No certificate thumbprint specified in token header.".into(),
            ));
        };
        let registered = cert.filter(|cert| {
            sha1 == Some(cert.x5t.as_str()) || sha256 == Some(cert.x5t_s256.as_str())
        });
        let Some(cert) = registered else {
            return Err(Refusal::client(
                700027,
                format!(
                    "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{presented}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments if you are not using a global endpoint.]",
                    app.client_id
                ),
            ));
        };
        if jwt.header_str("alg") != Some("RS256")
            || !cert.verifies_rs256(jwt.signing_input.as_bytes(), &jwt.signature)
        {
            return Err(Refusal::client(
                700027,
                format!(
                    "Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '{presented}']"
                ),
            ));
        }
        if !jwt.audiences().iter().any(|aud| self.is_this_endpoint(aud)) {
            return Err(Refusal::client(
                50012,
                "Client assertion audience claim does not match Realm issuer.".into(),
            ));
        }
        self.check_time_range(jwt)
    }

    /// Whether `aud` names this token endpoint: as requested, or at Entra's public host.
    fn is_this_endpoint(&self, aud: &str) -> bool {
        let aud = aud.trim_end_matches('/');
        let public = format!(
            "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
            self.tenant
        );
        aud == self.endpoint || aud == public
    }

    fn check_time_range(&self, jwt: &Jwt) -> Result<(), Refusal> {
        let now_ms = self.identity.clock.now_ms();
        let now = now_ms / 1000;
        let exp = jwt.claim_secs("exp").unwrap_or(0);
        let nbf = jwt.claim_secs("nbf").unwrap_or(0);
        if now >= exp || nbf > now + CLOCK_SKEW_SECS {
            return Err(Refusal::client(
                700024,
                format!(
                    "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
                    entra_instant(now_ms),
                    entra_instant(nbf * 1000),
                    entra_instant(exp * 1000)
                ),
            ));
        }
        Ok(())
    }
}
