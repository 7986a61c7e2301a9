//! Host metadata: what a Databricks host says about itself at `/.well-known/databricks-config`
//! (`oidc_endpoint`, `account_id`, `workspace_id`, `host_type`). Current SDKs read it first to
//! find the OAuth discovery document: on a unified host that document is account-rooted
//! (`…/oidc/accounts/{account_id}`), and API calls name the workspace with
//! `X-Databricks-Workspace-Id`. A host without it (or with an answer we cannot use) falls back
//! to the classic `/oidc/.well-known/oauth-authorization-server`.

use serde::Deserialize;

use super::send;
use crate::databricks::WorkspaceUrl;
use crate::rest::{ApiError, Caller, Method, Request};

pub const METADATA_PATH: &str = "/.well-known/databricks-config";
pub const CLASSIC_DISCOVERY_PATH: &str = "/oidc/.well-known/oauth-authorization-server";
/// The header a unified host reads the workspace from.
pub const WORKSPACE_ID_HEADER: &str = "x-databricks-workspace-id";

#[derive(Deserialize)]
struct Answer {
    oidc_endpoint: Option<String>,
    account_id: Option<String>,
    workspace_id: Option<serde_json::Value>,
}

/// Where to find the host's OAuth server, and the workspace id for API calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthPlace {
    /// On the workspace's own origin, always.
    pub discovery_url: String,
    pub workspace_id: Option<String>,
    /// Why the host metadata was not used, for a debug line (`None`: it was).
    pub fallback: Option<String>,
}

/// Reads the host metadata; never fails: anything unusable falls back to the classic
/// discovery path, with the reason.
pub async fn oauth_place(caller: &Caller, workspace: &WorkspaceUrl) -> OAuthPlace {
    let call = Request {
        method: Method::Get,
        url: workspace.join(METADATA_PATH),
        path: METADATA_PATH.to_string(),
        headers: Vec::new(),
        body: None,
    };
    let answer: Result<Answer, ApiError> = send(caller, &call, super::entra::oauth_envelope).await;
    match answer {
        Ok(answer) => place_from(workspace, answer),
        Err(e) => classic(workspace, format!("{METADATA_PATH} could not be read: {e}")),
    }
}

fn classic(workspace: &WorkspaceUrl, why: String) -> OAuthPlace {
    OAuthPlace {
        discovery_url: workspace.join(CLASSIC_DISCOVERY_PATH),
        workspace_id: None,
        fallback: Some(why),
    }
}

fn place_from(workspace: &WorkspaceUrl, answer: Answer) -> OAuthPlace {
    let Some(endpoint) = answer.oidc_endpoint.filter(|e| !e.trim().is_empty()) else {
        return classic(workspace, format!("{METADATA_PATH} names no oidc_endpoint"));
    };
    let endpoint = if endpoint.contains("{account_id}") {
        match answer.account_id.as_deref().filter(|id| is_plain_id(id)) {
            Some(account) => endpoint.replace("{account_id}", account),
            None => {
                return classic(
                    workspace,
                    format!("{METADATA_PATH} names an account-rooted oidc_endpoint without a usable account_id"),
                )
            }
        }
    } else {
        endpoint
    };
    let discovery_url = format!(
        "{}/.well-known/oauth-authorization-server",
        endpoint.trim_end_matches('/')
    );
    // A client secret or an id token is never sent to a host the answer names.
    if let Err(reason) = workspace.link(&discovery_url) {
        return classic(
            workspace,
            format!(
                "{METADATA_PATH} names an OAuth server that is not this workspace's ({reason})"
            ),
        );
    }
    let workspace_id = match answer.workspace_id {
        Some(serde_json::Value::String(id)) if is_plain_id(&id) => Some(id),
        Some(serde_json::Value::Number(id)) if id.is_u64() => Some(id.to_string()),
        _ => None,
    };
    OAuthPlace {
        discovery_url,
        workspace_id,
        fallback: None,
    }
}

/// Account and workspace ids: letters, digits and `-`, short; anything else is not sent on.
fn is_plain_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(answer: serde_json::Value) -> OAuthPlace {
        let workspace = WorkspaceUrl::parse("https://adb-1.azuredatabricks.net").unwrap();
        place_from(&workspace, serde_json::from_value(answer).unwrap())
    }

    #[test]
    fn a_workspace_host_and_a_unified_host() {
        let classic = place(serde_json::json!({
            "oidc_endpoint": "https://adb-1.azuredatabricks.net/oidc", "workspace_id": "123"
        }));
        assert_eq!(
            classic.discovery_url,
            "https://adb-1.azuredatabricks.net/oidc/.well-known/oauth-authorization-server"
        );
        assert_eq!(classic.workspace_id.as_deref(), Some("123"));
        assert_eq!(classic.fallback, None);

        let unified = place(serde_json::json!({
            "oidc_endpoint": "https://adb-1.azuredatabricks.net/oidc/accounts/{account_id}/",
            "account_id": "a-1", "workspace_id": 456, "host_type": "unified"
        }));
        assert_eq!(
            unified.discovery_url,
            "https://adb-1.azuredatabricks.net/oidc/accounts/a-1/.well-known/oauth-authorization-server"
        );
        assert_eq!(unified.workspace_id.as_deref(), Some("456"));
    }

    #[test]
    fn unusable_answers_fall_back_to_the_classic_path() {
        let classic =
            "https://adb-1.azuredatabricks.net/oidc/.well-known/oauth-authorization-server";
        for answer in [
            serde_json::json!({}),
            serde_json::json!({ "oidc_endpoint": "" }),
            serde_json::json!({ "oidc_endpoint": "https://elsewhere.example/oidc" }),
            serde_json::json!({ "oidc_endpoint": "https://adb-1.azuredatabricks.net/oidc/accounts/{account_id}" }),
            serde_json::json!({ "oidc_endpoint": "https://adb-1.azuredatabricks.net/oidc/accounts/{account_id}",
                                "account_id": "../../x" }),
        ] {
            let place = place(answer.clone());
            assert_eq!(place.discovery_url, classic, "{answer}");
            assert!(place.fallback.is_some(), "{answer}");
        }
        let odd_id = place(serde_json::json!({
            "oidc_endpoint": "https://adb-1.azuredatabricks.net/oidc", "workspace_id": "1\r\nX-Evil: 1"
        }));
        assert_eq!(odd_id.workspace_id, None);
    }
}
