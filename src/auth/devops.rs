//! Azure DevOps: the job's OpenID Connect id token, which Microsoft Entra and Databricks accept
//! in place of a secret (workload identity federation). Each exchange asks for a new one: they
//! live about ten minutes.

use serde::Deserialize;

use super::{send, SecretSink, Translate};
use crate::rest::{ApiError, Body, Caller, Method, Request};

/// How to ask Azure DevOps for the job's id token.
#[derive(Clone)]
pub struct IdTokenRequest {
    /// The plan's `oidctoken` endpoint, query included.
    pub url: String,
    /// The job's access token (`System.AccessToken`).
    pub access_token: String,
}

impl std::fmt::Debug for IdTokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenRequest")
            .field("url", &self.url)
            .field("access_token", &"***")
            .finish()
    }
}

impl IdTokenRequest {
    /// The `oidctoken` endpoint of this job: from `System.OidcRequestUri` when the agent sets
    /// it, else from the collection, project, hub, plan and job ids.
    pub fn endpoint(
        oidc_request_uri: Option<&str>,
        ids: Option<JobIds<'_>>,
        service_connection: Option<&str>,
    ) -> Option<String> {
        let base = match (oidc_request_uri, ids) {
            (Some(uri), _) => uri.to_string(),
            (None, Some(ids)) => format!(
                "{}/{}/_apis/distributedtask/hubs/{}/plans/{}/jobs/{}/oidctoken",
                ids.collection_uri.trim_end_matches('/'),
                ids.project_id,
                ids.hub,
                ids.plan_id,
                ids.job_id
            ),
            (None, None) => return None,
        };
        let mut url = url::Url::parse(&base).ok()?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(id) = service_connection {
                query.append_pair("serviceConnectionId", id);
            }
            query.append_pair("api-version", "7.1-preview.1");
        }
        Some(url.to_string())
    }
}

/// The ids that name the running job, from the agent's variables.
#[derive(Clone, Copy, Debug)]
pub struct JobIds<'a> {
    pub collection_uri: &'a str,
    pub project_id: &'a str,
    pub hub: &'a str,
    pub plan_id: &'a str,
    pub job_id: &'a str,
}

#[derive(Deserialize)]
struct IdTokenAnswer {
    #[serde(rename = "oidcToken")]
    oidc_token: Option<String>,
    /// Where Azure DevOps says why it gave no token (a connection the job may not use is
    /// answered with 200 and a sentence here).
    #[serde(default)]
    value: Option<serde_json::Value>,
}

/// How Azure DevOps writes its errors: `{"message", "typeKey"}`.
fn envelope(status: u16, body: &str) -> (Option<String>, String) {
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let code = value["typeKey"].as_str().map(str::to_string);
    let message = value["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| crate::text::shorten(body.trim(), 300));
    let message = if message.is_empty() {
        format!("HTTP {status}")
    } else {
        message
    };
    (code, message)
}

/// Asks for a new id token and registers it as a secret before anything can print it.
pub async fn id_token(
    caller: &Caller,
    request: &IdTokenRequest,
    secrets: &SecretSink,
    translate: &Translate,
) -> Result<String, ApiError> {
    let path = url::Url::parse(&request.url)
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    let call = Request {
        method: Method::Post,
        url: request.url.clone(),
        path,
        headers: vec![("authorization", format!("Bearer {}", request.access_token))],
        body: Some(Body::json(b"{}".to_vec())),
    };
    let answer: IdTokenAnswer = send(caller, &call, envelope)
        .await
        .map_err(|error| translate.devops(error))?;
    let reason = match &answer.value {
        Some(serde_json::Value::String(text)) => crate::text::shorten(text.trim(), 300),
        _ => "`oidcToken` is missing".to_string(),
    };
    let token = answer
        .oidc_token
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| translate.devops_refused(&reason))?;
    super::check_token_shape("Azure DevOps", "an id token", &token)?;
    secrets(&token);
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::{IdTokenRequest, JobIds};

    #[test]
    fn the_endpoint_is_the_jobs_oidctoken_route_with_the_connection() {
        let ids = JobIds {
            collection_uri: "https://dev.azure.com/contoso/",
            project_id: "p1",
            hub: "build",
            plan_id: "plan",
            job_id: "job",
        };
        assert_eq!(
            IdTokenRequest::endpoint(None, Some(ids), Some("c-1")).unwrap(),
            "https://dev.azure.com/contoso/p1/_apis/distributedtask/hubs/build/plans/plan/jobs/job/oidctoken?serviceConnectionId=c-1&api-version=7.1-preview.1"
        );
        assert_eq!(
            IdTokenRequest::endpoint(
                Some("https://x.example/o/p/_apis/oidctoken"),
                Some(ids),
                None
            )
            .unwrap(),
            "https://x.example/o/p/_apis/oidctoken?api-version=7.1-preview.1"
        );
        assert_eq!(IdTokenRequest::endpoint(None, None, None), None);
    }
}
