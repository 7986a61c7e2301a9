//! What an identity provider's refusal means for the user: its code translated, the input to
//! fix named, and, for federation, the exact issuer and subject the pipeline presented.

use super::jwt;
use super::msi::MsiEndpoint;
use crate::rest::ApiError;
use crate::text::shorten;

/// Who is signing in, for messages: the input that holds the identity and what it is.
#[derive(Clone, Debug)]
pub struct Translate {
    /// The input to fix (`azureSubscription`, `databricksConnection`, `clientId`, ...).
    pub input: &'static str,
    /// How it signs in, e.g. "Azure service connection (workload identity federation)".
    pub method: String,
    pub client_id: Option<String>,
    pub tenant: Option<String>,
}

/// The Entra error number in a description (`AADSTS700213: ...`).
fn aadsts(message: &str) -> Option<u32> {
    let start = message.find("AADSTS")? + "AADSTS".len();
    let digits: String = message[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The provider's own words, first line only (Entra appends trace and correlation ids).
fn said(error: &ApiError) -> String {
    let message = error.message().lines().next().unwrap_or_default().trim();
    shorten(message, 300)
}

/// The issuer and subject of the id token the pipeline presented (not secrets: what the
/// user pastes into a federated credential), each bounded.
fn presented(token: Option<&str>) -> String {
    let claims = token.and_then(jwt::peek).unwrap_or_default();
    let claim = |value: &Option<String>| shorten(value.as_deref().unwrap_or("?"), 300);
    format!(
        "issuer `{}`, subject `{}`",
        claim(&claims.iss),
        claim(&claims.sub)
    )
}

impl Translate {
    fn app(&self) -> String {
        match (&self.client_id, &self.tenant) {
            (Some(client), Some(tenant)) => format!("application {client} (tenant {tenant})"),
            (Some(client), None) => format!("application {client}"),
            _ => "the identity".to_string(),
        }
    }

    fn sign_in(&self, message: String, hint: Option<String>) -> ApiError {
        ApiError::SignIn {
            message: format!("signing in with {} failed: {message}", self.method),
            hint,
        }
    }

    /// The request to Azure DevOps for the job's id token failed.
    pub fn devops(&self, error: ApiError) -> ApiError {
        let input = self.input;
        match error.status() {
            Some(401) => self.sign_in(
                format!("Azure DevOps refused the job's access token when asked for the pipeline's id token ({})", said(&error)),
                Some("the job access token (System.AccessToken) was refused; re-run the job, and check that the pipeline's job authorization scope allows it".into()),
            ),
            Some(400 | 403 | 404) => self.sign_in(
                format!("Azure DevOps would not issue an id token for the service connection in `{input}`: {}", said(&error)),
                Some(format!("authorize the service connection for this pipeline (Project settings > Service connections > the connection > Security > Pipeline permissions), or approve the permission request on the run's page; check that `{input}` names the connection")),
            ),
            _ => self.sign_in(
                format!("asking Azure DevOps for the pipeline's id token failed: {error}"),
                None,
            ),
        }
    }

    /// Azure DevOps answered without an id token, saying `reason` (a service connection this
    /// job may not use is answered that way, with a success status).
    pub fn devops_refused(&self, reason: &str) -> ApiError {
        let input = self.input;
        self.sign_in(
            format!("Azure DevOps gave no id token for the service connection in `{input}`: {reason}"),
            Some(format!("authorize the service connection for this pipeline (Project settings > Service connections > the connection > Security > Pipeline permissions), or approve the permission request on the run's page; check that `{input}` names the connection")),
        )
    }

    /// Microsoft Entra refused to issue a token; `presented` is the id token sent, if any.
    pub fn entra(&self, error: ApiError, presented_token: Option<&str>) -> ApiError {
        let input = self.input;
        let app = self.app();
        let Some(code) = aadsts(error.message()) else {
            return match error.status() {
                Some(_) => self.sign_in(
                    format!("Microsoft Entra refused to sign in {app}: {}", said(&error)),
                    None,
                ),
                None => self.sign_in(format!("Microsoft Entra could not be reached: {error}"), Some(
                    "check the agent's network and proxy, and the service connection's environment (its Entra authority URL)".into(),
                )),
            };
        };
        let (what, hint) = match code {
            700213 | 70021 | 700211 | 700212 => (
                format!("no federated credential of {app} matches the token the pipeline presented ({})", presented(presented_token)),
                format!("in Microsoft Entra, open the app registration > Certificates & secrets > Federated credentials, and add one with exactly this issuer and subject and the audience api://AzureADTokenExchange (or let Azure DevOps create the service connection in `{input}` automatically)"),
            ),
            7000215 => (
                format!("the client secret of {app} is not valid"),
                format!("create a new client secret for the app registration and paste its value (not its id) into the service connection in `{input}`"),
            ),
            7000222 => (
                format!("the client secret of {app} has expired"),
                format!("create a new client secret for the app registration and update the service connection in `{input}`; or convert the connection to workload identity federation, which has no secret to expire"),
            ),
            700016 => (
                format!("{app} was not found in the tenant"),
                format!("check the service principal (client) id and the tenant id of the service connection in `{input}`; the application may have been deleted"),
            ),
            90002 => (
                format!("the tenant of {app} does not exist"),
                format!("check the tenant id of the service connection in `{input}`"),
            ),
            700027 | 700023 => (
                format!("the certificate of {app} is not one the app registration knows, or its signature was refused"),
                format!("upload the certificate (public part) to the app registration > Certificates & secrets, or update the service connection in `{input}` with the registered one"),
            ),
            700024 => (
                format!("the assertion presented for {app} is outside its valid time range"),
                "check the agent machine's clock; the job's id token lives about ten minutes".to_string(),
            ),
            _ => (
                format!("Microsoft Entra refused to sign in {app}"),
                format!("check the service connection in `{input}`"),
            ),
        };
        self.sign_in(
            format!(
                "{what} (AADSTS{code}: {})",
                said(&error).trim_start_matches(&format!("AADSTS{code}: "))
            ),
            Some(hint),
        )
    }

    /// The workspace's OAuth endpoint refused; `presented` is the id token sent, if any.
    pub fn databricks_oauth(&self, error: ApiError, presented_token: Option<&str>) -> ApiError {
        let input = self.input;
        let client = self.client_id.clone().unwrap_or_default();
        let code = error.error_code().unwrap_or_default().to_string();
        let Some(status) = error.status() else {
            return self.sign_in(
                format!("the workspace's OAuth endpoint could not be reached: {error}"),
                None,
            );
        };
        match (presented_token, status) {
            (Some(token), 400..=403) => self.sign_in(
                format!("the workspace refused to exchange the pipeline's id token for service principal {client} ({}): {}", presented(Some(token)), said(&error)),
                Some(format!("add a federation policy to the Databricks service principal {client} (account console > User management > Service principals > Credentials & secrets > Create policy) with exactly this issuer and subject and the audience api://AzureADTokenExchange; check that `{input}` is its application id")),
            ),
            (None, 400..=403) if code == "invalid_client" || status == 401 => self.sign_in(
                format!("the workspace refused the OAuth client {client}: {}", said(&error)),
                Some(format!("check the client id and OAuth secret of the Databricks service principal in `{input}`; secrets expire, create a new one in the account console if needed")),
            ),
            (_, 404) => self.sign_in(
                format!("the workspace has no OAuth endpoint ({})", said(&error)),
                Some("check databricksHost: OAuth needs the workspace URL itself".into()),
            ),
            _ => self.sign_in(format!("the workspace's OAuth endpoint refused: {}", said(&error)), None),
        }
    }

    /// The managed identity endpoint failed.
    pub fn msi(&self, error: ApiError, endpoint: &MsiEndpoint) -> ApiError {
        let place = endpoint.describe();
        match error.status() {
            None => self.sign_in(
                format!("{place} did not answer: {}", said(&error)),
                Some("a managed identity works only on an Azure machine with one assigned (a self-hosted agent on an Azure VM or scale set); elsewhere, use a service principal or workload identity federation".into()),
            ),
            Some(_) => self.sign_in(
                format!("{place} refused to issue a token: {}", said(&error)),
                Some("assign a managed identity to the agent's machine (system- or user-assigned), and for a user-assigned one give its client id".into()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::aadsts;

    #[test]
    fn the_entra_code_is_read_from_the_description() {
        assert_eq!(
            aadsts("AADSTS700213: No matching federated identity"),
            Some(700213)
        );
        assert_eq!(
            aadsts("x AADSTS7000215: Invalid client secret"),
            Some(7000215)
        );
        assert_eq!(aadsts("no code"), None);
    }
}
