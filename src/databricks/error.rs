//! What Databricks says when a call fails: its error envelope, and hints for the failures
//! people hit most. The error type itself is the REST layer's (`rest::error`).

use crate::rest::answer::{collapse_whitespace, html_title, looks_like_html, status_text};
pub use crate::rest::error::{ApiError, RequestLabel, TransportKind};
use crate::text::shorten;

const PROXY_CREDENTIALS_HINT: &str = "the agent's proxy did not accept its credentials: check the proxy user name and password the agent was configured with (config.sh --proxyusername, --proxypassword)";

const CERTIFICATE_HINT: &str = "the agent does not trust the workspace's TLS certificate. If your network inspects TLS with a company certificate authority, give the agent its CA certificate (PEM): for the Node handler set NODE_EXTRA_CA_CERTS=/path/ca.pem in the agent's environment (.env file of the agent); the native binary trusts the operating system's store, or SSL_CERT_FILE / SSL_CERT_DIR. Otherwise check that databricksHost is the workspace's own URL";

impl ApiError {
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
            || matches!(
                self.error_code(),
                Some("RESOURCE_DOES_NOT_EXIST" | "NOT_FOUND")
            )
    }

    /// What the user can do about it, for the failures people hit most.
    pub fn hint(&self) -> Option<String> {
        match self {
            ApiError::Hinted { hint, .. } => return Some(hint.clone()),
            ApiError::SignIn { hint, .. } => return hint.clone(),
            _ => {}
        }
        let message = self.message();
        let lower = message.to_ascii_lowercase();
        let transport = match self.root() {
            ApiError::Transport { kind, .. } => Some(*kind),
            _ => None,
        };
        let hint = if lower.contains("git provider credentials") {
            "the identity behind the token has no working Git credentials for this provider: add a Git personal access token for it in Databricks (User Settings > Linked accounts), or give the service principal Git credentials"
        } else if lower.contains("cluster") && lower.contains("does not exist") {
            "check existingClusterId: copy `cluster_id` from the cluster's page in Databricks (Compute > your cluster > JSON), and make sure the token's identity may attach to it"
        } else if lower.contains("parent directory") && lower.contains("does not exist") {
            "create the parent folder first, or use mode createOrUpdate, which creates it"
        } else {
            match self.status() {
                Some(401) => "the workspace did not accept the credentials: check that the token variable (DATABRICKS_TOKEN) is set and not expired",
                Some(403) if lower.contains("token") => "the token was rejected: it may be expired, revoked or from another workspace; create a new one and update the variable group",
                Some(403) => "the token is valid but lacks permission for this operation: grant its user or service principal access to the path, repo or cluster",
                Some(429) => "the workspace kept rate-limiting requests until the retry budget ran out; spread out concurrent pipelines or re-run",
                Some(500..=599) => "the workspace kept failing until the retry budget ran out; check the Databricks status page, then re-run",
                Some(407) => PROXY_CREDENTIALS_HINT,
                Some(300..=399) => "the workspace API never redirects: databricksHost may point at a sign-in page, a proxy or an old address; use the workspace URL from the browser's address bar (e.g. https://adb-1234567890123456.7.azuredatabricks.net)",
                None if transport == Some(TransportKind::Certificate) => CERTIFICATE_HINT,
                None if transport == Some(TransportKind::ProxyAuthentication) => PROXY_CREDENTIALS_HINT,
                None if transport == Some(TransportKind::UnknownHost) => "the host name does not exist: check databricksHost (or the DATABRICKS_HOST variable; a workspace URL looks like https://adb-1234567890123456.7.azuredatabricks.net) and, if the agent has a proxy, its proxy URL",
                None if transport.is_some() => "the workspace could not be reached: check the host name and the agent's network or proxy",
                _ => return None,
            }
        };
        Some(hint.to_string())
    }
}

/// Reads an error body in any of the forms Databricks and the proxies in front of it use:
/// `{"error_code", "message"}`, `{"error": "..."}`, plain text, or an HTML page.
pub fn parse_error_body(status: u16, body: &str) -> (Option<String>, String) {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error_code: Option<serde_json::Value>,
        message: Option<String>,
        error: Option<serde_json::Value>,
    }
    if let Ok(envelope) = serde_json::from_str::<Envelope>(body) {
        let code = envelope.error_code.map(|c| match c {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        });
        let message = envelope
            .message
            .or_else(|| {
                envelope.error.map(|e| match e {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
            })
            .filter(|m| !m.trim().is_empty());
        if code.is_some() || message.is_some() {
            return (
                code,
                message.unwrap_or_else(|| status_text(status).to_string()),
            );
        }
    }
    let text = if looks_like_html(body) {
        html_title(body).unwrap_or_default()
    } else {
        body.trim().to_string()
    };
    let text = shorten(&collapse_whitespace(&text), 300);
    if text.is_empty() {
        (None, status_text(status).to_string())
    } else {
        (None, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_envelope_form() {
        assert_eq!(
            parse_error_body(
                404,
                r#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Repo 1 does not exist."}"#
            ),
            (
                Some("RESOURCE_DOES_NOT_EXIST".into()),
                "Repo 1 does not exist.".into()
            )
        );
        assert_eq!(
            parse_error_body(400, r#"{"error":"bad thing"}"#),
            (None, "bad thing".into())
        );
        assert_eq!(
            parse_error_body(
                403,
                r#"{"error_code":403,"message":"Invalid access token."}"#
            ),
            (Some("403".into()), "Invalid access token.".into())
        );
        assert_eq!(
            parse_error_body(
                502,
                "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
            ),
            (None, "502 Bad Gateway".into())
        );
        assert_eq!(
            parse_error_body(503, "upstream\n connect error"),
            (None, "upstream connect error".into())
        );
        assert_eq!(
            parse_error_body(500, ""),
            (None, "Internal Server Error".into())
        );
        assert_eq!(parse_error_body(500, "{}"), (None, "{}".into()));
        assert_eq!(
            parse_error_body(500, "<!DOCTYPE html><p>x"),
            (None, "Internal Server Error".into())
        );
        let long = "x".repeat(1000);
        assert_eq!(parse_error_body(500, &long).1.chars().count(), 301);
    }

    #[test]
    fn transport_failures_get_hints_by_kind() {
        let error = |kind| ApiError::Transport {
            request: RequestLabel {
                method: "GET",
                path: "/api/2.0/workspace/get-status".into(),
            },
            message: "m".into(),
            kind,
        };
        let hint = |kind| error(kind).hint().unwrap();
        assert!(hint(TransportKind::UnknownHost).contains("databricksHost"));
        assert!(hint(TransportKind::Certificate).contains("NODE_EXTRA_CA_CERTS"));
        assert!(hint(TransportKind::Certificate).contains("SSL_CERT_FILE"));
        assert!(hint(TransportKind::ProxyAuthentication).contains("--proxypassword"));
        assert!(hint(TransportKind::Other).contains("could not be reached"));
    }

    #[test]
    fn the_status_and_the_code_are_shown_once_each() {
        let http = |status, code: Option<&str>| ApiError::Http {
            request: RequestLabel {
                method: "POST",
                path: "/api/2.2/jobs/runs/submit".into(),
            },
            status,
            error_code: code.map(String::from),
            message: "Something.".into(),
            retry_after: None,
        };
        assert_eq!(
            http(403, Some("403")).to_string(),
            "POST /api/2.2/jobs/runs/submit failed: HTTP 403: Something."
        );
        assert_eq!(
            http(400, Some("INVALID_PARAMETER_VALUE")).to_string(),
            "POST /api/2.2/jobs/runs/submit failed: HTTP 400 INVALID_PARAMETER_VALUE: Something."
        );
        assert_eq!(
            http(502, None).to_string(),
            "POST /api/2.2/jobs/runs/submit failed: HTTP 502: Something."
        );
    }

    #[test]
    fn hints_for_the_usual_failures() {
        let http = |status, code: &str, message: &str| ApiError::Http {
            request: RequestLabel {
                method: "GET",
                path: "/api/x".into(),
            },
            status,
            error_code: Some(code.into()),
            message: message.into(),
            retry_after: None,
        };
        assert!(http(403, "403", "Invalid access token.")
            .hint()
            .unwrap()
            .contains("token was rejected"));
        assert!(http(401, "UNAUTHENTICATED", "no")
            .hint()
            .unwrap()
            .contains("DATABRICKS_TOKEN"));
        assert!(http(
            403,
            "PERMISSION_DENIED",
            "Missing Git provider credentials. Go to ..."
        )
        .hint()
        .unwrap()
        .contains("Git"));
        assert!(http(
            400,
            "INVALID_PARAMETER_VALUE",
            "Cluster 1-2-3 does not exist"
        )
        .hint()
        .unwrap()
        .contains("existingClusterId"));
        assert!(http(404, "RESOURCE_DOES_NOT_EXIST", "Path doesn't exist")
            .hint()
            .is_none());
    }
}
