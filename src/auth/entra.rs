//! Microsoft Entra: an access token for Azure Databricks (or Azure Resource Manager) for an
//! application, proven by a client secret, a certificate, or the job's id token.

use std::rc::Rc;

use serde::Deserialize;

use super::certificate::SigningCertificate;
use super::devops::{id_token, IdTokenRequest};
use super::{token_request, Issued, SecretSink, Translate};
use crate::rest::{ApiError, Body, Caller, Method, Request};

/// The Azure Databricks resource, the same in every Azure cloud.
pub const DATABRICKS_SCOPE: &str = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default";
/// Azure Resource Manager, for the management token that lets Databricks add a service
/// principal to the workspace on first use.
pub const MANAGEMENT_SCOPE: &str = "https://management.core.windows.net//.default";
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com/";

/// An application (service principal) registered in a Microsoft Entra tenant.
#[derive(Clone)]
pub struct EntraApp {
    /// `https://login.microsoftonline.com/` or a sovereign cloud's, ending with `/`.
    pub authority: String,
    pub tenant: String,
    pub client_id: String,
    pub proof: Proof,
}

/// How the application proves who it is.
#[derive(Clone)]
pub enum Proof {
    Secret(String),
    Certificate(Rc<dyn SigningCertificate>),
    /// The job's id token from Azure DevOps (workload identity federation).
    Federated(IdTokenRequest),
}

impl Proof {
    pub fn describe(&self) -> &'static str {
        match self {
            Proof::Secret(_) => "client secret",
            Proof::Certificate(_) => "certificate",
            Proof::Federated(_) => "workload identity federation",
        }
    }
}

impl EntraApp {
    pub fn token_url(&self) -> String {
        format!("{}{}/oauth2/v2.0/token", self.authority, self.tenant)
    }
}

#[derive(Deserialize)]
pub(super) struct TokenAnswer {
    access_token: Option<String>,
    /// A number from Entra and Databricks, a string from the instance metadata service.
    expires_in: Option<serde_json::Value>,
}

impl TokenAnswer {
    /// The token and its lifetime, or what was missing.
    pub(super) fn issued(self, party: &str) -> Result<Issued, ApiError> {
        let token = self
            .access_token
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| ApiError::SignIn {
                message: format!("{party} answered without an access token"),
                hint: None,
            })?;
        super::check_token_shape(party, "an access token", &token)?;
        // Whole seconds (a fraction, which no issuer sends, is refused rather than parsed as a
        // float: the float parser would cost the wasm core a few KB).
        let seconds = match &self.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
            _ => None,
        }
        .filter(|s| *s > 0)
        .ok_or_else(|| ApiError::SignIn {
            message: format!("{party} answered without a usable `expires_in`"),
            hint: None,
        })?;
        Ok(Issued {
            token,
            lifetime: std::time::Duration::from_secs(seconds.min(86_400)),
        })
    }
}

/// The OAuth error shape Entra and Databricks use: `{"error", "error_description"}`.
pub(super) fn oauth_envelope(status: u16, body: &str) -> (Option<String>, String) {
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let code = value["error"].as_str().map(str::to_string);
    let message = value["error_description"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| crate::text::shorten(body.trim(), 300));
    let message = if message.trim().is_empty() {
        format!("HTTP {status}")
    } else {
        message
    };
    (code, message)
}

/// A token for `scope`; a federated proof asks Azure DevOps for a new id token first.
pub async fn token(
    caller: &Caller,
    app: &EntraApp,
    scope: &str,
    secrets: &SecretSink,
    translate: &Translate,
    now_unix: u64,
) -> Result<Issued, ApiError> {
    let url = app.token_url();
    let mut presented = None;
    let (proof_name, proof_value, assertion_type) = match &app.proof {
        Proof::Secret(secret) => ("client_secret", secret.clone(), None),
        Proof::Certificate(certificate) => {
            let assertion = certificate.client_assertion(&app.client_id, &url, now_unix)?;
            secrets(&assertion);
            ("client_assertion", assertion, Some(JWT_BEARER))
        }
        Proof::Federated(request) => {
            let token = id_token(caller, request, secrets, translate).await?;
            presented = Some(token.clone());
            ("client_assertion", token, Some(JWT_BEARER))
        }
    };
    let mut form = vec![
        ("client_id", app.client_id.as_str()),
        ("grant_type", "client_credentials"),
        ("scope", scope),
        (proof_name, proof_value.as_str()),
    ];
    if let Some(kind) = assertion_type {
        form.push(("client_assertion_type", kind));
    }
    let call = Request {
        method: Method::Post,
        path: format!("/{}/oauth2/v2.0/token", app.tenant),
        url,
        headers: Vec::new(),
        body: Some(Body::form(&form)),
    };
    token_request(caller, &call, "Microsoft Entra", secrets, |error| {
        translate.entra(error, presented.as_deref())
    })
    .await
}

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[cfg(test)]
mod tests {
    use super::TokenAnswer;

    fn answer(json: &str) -> Result<std::time::Duration, String> {
        let answer: TokenAnswer = serde_json::from_str(json).unwrap();
        answer
            .issued("Entra")
            .map(|i| i.lifetime)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_token_answer_must_hold_a_usable_token_and_lifetime() {
        assert_eq!(
            answer(r#"{"access_token":"a.b.c-0123456789abcdef","expires_in":3599}"#)
                .unwrap()
                .as_secs(),
            3599
        );
        // The instance metadata service writes numbers as strings.
        assert_eq!(
            answer(r#"{"access_token":"t-0123456789abcdef","expires_in":"3599"}"#)
                .unwrap()
                .as_secs(),
            3599
        );
        assert_eq!(
            answer(r#"{"access_token":"t-0123456789abcdef","expires_in":10000000}"#)
                .unwrap()
                .as_secs(),
            86_400
        );
        assert!(answer(r#"{"expires_in":3599}"#)
            .unwrap_err()
            .contains("without an access token"));
        assert!(answer(r#"{"access_token":"t-0123456789abcdef"}"#)
            .unwrap_err()
            .contains("expires_in"));
        assert!(answer(r#"{"access_token":"t-0123456789abcdef","expires_in":0}"#).is_err());
        assert!(answer(r#"{"access_token":"t-0123456789abcdef","expires_in":-5}"#).is_err());
        for hostile in [
            "a b",
            "a\nb",
            "a\r\n##vso[task.complete result=Succeeded]",
            "tök",
        ] {
            let json = serde_json::json!({"access_token": hostile, "expires_in": 60}).to_string();
            assert!(
                answer(&json).unwrap_err().contains("single word"),
                "{hostile:?}"
            );
        }
        // Too short to be a real token: refused before it is registered as a secret.
        assert!(answer(r#"{"access_token":"t","expires_in":3599}"#)
            .unwrap_err()
            .contains("1 characters, too few for a real token"));
    }
}
