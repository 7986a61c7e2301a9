//! Managed identity: the token of the Azure machine the agent runs on, from its instance
//! metadata service, or from the endpoint Azure App Service and Arc hosts announce in
//! `IDENTITY_ENDPOINT`/`IDENTITY_HEADER`. Never through a proxy: the endpoint is local.

use super::{token_request, Issued, SecretSink, Translate};
use crate::rest::{ApiError, Caller, Method, Request};

/// The instance metadata service of every Azure VM.
pub const IMDS_HOST: &str = "http://169.254.169.254";
pub const DATABRICKS_RESOURCE: &str = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d";
pub const MANAGEMENT_RESOURCE: &str = "https://management.core.windows.net/";

#[derive(Clone)]
pub enum MsiEndpoint {
    /// `{host}/metadata/identity/oauth2/token` with `Metadata: true`; `host` is
    /// `AZURE_POD_IDENTITY_AUTHORITY_HOST` when set.
    Imds { host: String },
    /// `IDENTITY_ENDPOINT` with the `X-IDENTITY-HEADER` secret.
    Identity { url: String, header: String },
}

impl std::fmt::Debug for MsiEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MsiEndpoint::Imds { host } => write!(f, "Imds({host})"),
            MsiEndpoint::Identity { url, .. } => write!(f, "Identity({url}, ***)"),
        }
    }
}

impl MsiEndpoint {
    /// Where this machine's managed identity answers, following the Azure Identity SDKs'
    /// environment variables.
    pub fn from_env(
        identity_endpoint: Option<String>,
        identity_header: Option<String>,
        pod_identity_host: Option<String>,
    ) -> MsiEndpoint {
        match (identity_endpoint, identity_header) {
            (Some(url), Some(header)) => MsiEndpoint::Identity { url, header },
            _ => MsiEndpoint::Imds {
                host: pod_identity_host
                    .map(|h| h.trim_end_matches('/').to_string())
                    .unwrap_or_else(|| IMDS_HOST.to_string()),
            },
        }
    }

    pub fn describe(&self) -> String {
        match self {
            MsiEndpoint::Imds { host } => format!("the instance metadata service at {host}"),
            MsiEndpoint::Identity { url, .. } => format!("the identity endpoint {url}"),
        }
    }

    fn request(&self, resource: &str, client_id: Option<&str>) -> Request {
        let (base, version, headers) = match self {
            MsiEndpoint::Imds { host } => (
                format!("{host}/metadata/identity/oauth2/token"),
                "2018-02-01",
                vec![("metadata", "true".to_string())],
            ),
            MsiEndpoint::Identity { url, header } => (
                url.clone(),
                "2019-08-01",
                vec![("x-identity-header", header.clone())],
            ),
        };
        let mut url = url::Url::parse(&base).unwrap_or_else(|_| {
            url::Url::parse("http://invalid.invalid/").expect("a constant URL parses")
        });
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("api-version", version);
            query.append_pair("resource", resource);
            if let Some(id) = client_id {
                query.append_pair("client_id", id);
            }
        }
        Request {
            method: Method::Get,
            path: url.path().to_string(),
            url: url.to_string(),
            headers,
            body: None,
        }
    }
}

/// A token for `resource` for the machine's identity (`client_id` picks a user-assigned one).
pub async fn token(
    caller: &Caller,
    endpoint: &MsiEndpoint,
    client_id: Option<&str>,
    resource: &str,
    secrets: &SecretSink,
    translate: &Translate,
) -> Result<Issued, ApiError> {
    let call = endpoint.request(resource, client_id);
    token_request(
        caller,
        &call,
        "The managed identity endpoint",
        secrets,
        |error| translate.msi(error, endpoint),
    )
    .await
}
