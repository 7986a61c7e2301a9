//! Which workspace to talk to, and with which token.

use std::collections::BTreeMap;

use crate::databricks::{ProxySettings, WorkspaceUrl, WORKSPACE_URL_EXAMPLE};
use crate::pipeline::{InputError, Inputs};
use crate::rest::{Credential, StaticToken};

pub const HOST_INPUT: &str = "databricksHost";
pub const TOKEN_INPUT: &str = "databricksToken";
pub const HOST_VARIABLE: &str = "DATABRICKS_HOST";
pub const TOKEN_VARIABLE: &str = "DATABRICKS_TOKEN";
pub const PROXY_URL_VARIABLE: &str = "Agent.ProxyUrl";
pub const PROXY_USERNAME_VARIABLE: &str = "Agent.ProxyUsername";
pub const PROXY_PASSWORD_VARIABLE: &str = "Agent.ProxyPassword";
pub const PROXY_BYPASS_VARIABLE: &str = "Agent.ProxyBypassList";

#[derive(Clone)]
pub struct Connection {
    pub url: WorkspaceUrl,
    pub token: String,
    /// The agent's web proxy, when it has one.
    pub proxy: Option<ProxySettings>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.url)
            .field("token", &"***")
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl Connection {
    /// Where the client takes the `Authorization` value of each request from.
    pub fn credential(&self) -> std::rc::Rc<dyn Credential> {
        std::rc::Rc::new(StaticToken::new(&self.token))
    }

    pub fn from_inputs(inputs: &Inputs) -> Result<Connection, InputError> {
        let host = match inputs.get(HOST_INPUT)? {
            Some(host) => host,
            None => inputs.secret_variable(HOST_VARIABLE).ok_or_else(|| {
                InputError::new(HOST_INPUT, format!("is not set, and there is no {HOST_VARIABLE} variable"))
                    .with_hint(format!(
                        "add {HOST_VARIABLE} (e.g. {WORKSPACE_URL_EXAMPLE}) to a variable group linked to this pipeline, or set the input"
                    ))
            })?,
        };
        let url = WorkspaceUrl::parse(&host).map_err(|e| {
            InputError::new(HOST_INPUT, e.reason).with_hint(format!(
                "expected a workspace URL such as {WORKSPACE_URL_EXAMPLE}"
            ))
        })?;
        let token = match inputs.get(TOKEN_INPUT)? {
            Some(token) => token,
            None => inputs.secret_variable(TOKEN_VARIABLE).ok_or_else(|| {
                InputError::new(TOKEN_INPUT, format!("is not set, and there is no {TOKEN_VARIABLE} variable"))
                    .with_hint(format!(
                        "add {TOKEN_VARIABLE} as a secret variable (a Databricks personal access token) to a variable group linked to this pipeline"
                    ))
            })?,
        };
        // Never echo the value: it is a secret even when it is malformed.
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InputError::new(
                TOKEN_INPUT,
                "contains spaces or line breaks; a token is a single word",
            )
            .with_hint("copy the token again without surrounding text"));
        }
        if !token.is_ascii() {
            return Err(InputError::new(
                TOKEN_INPUT,
                "contains non-ASCII characters, which an HTTP header cannot carry",
            ));
        }
        let proxy = agent_proxy(inputs)?;
        Ok(Connection { url, token, proxy })
    }
}

/// The proxy the agent was configured with (`config.sh --proxyurl ...`), if any: read and
/// checked here, for both runtimes, and handed to the transport as data.
fn agent_proxy(inputs: &Inputs) -> Result<Option<ProxySettings>, InputError> {
    let Some(raw) = inputs
        .variable(PROXY_URL_VARIABLE)
        .filter(|u| !u.trim().is_empty())
    else {
        return Ok(None);
    };
    let url = url::Url::parse(raw.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            // Quoted with its credentials, query values and fragment hidden: they may not be
            // registered secrets.
            let value = crate::text::redact_url(raw.trim());
            InputError::variable(PROXY_URL_VARIABLE, format!("`{value}` is not an http(s) URL"))
                .with_hint("the agent's proxy comes from `config.sh --proxyurl`; reconfigure it as http://host:port")
        })?;
    let bypass = match inputs.variable(PROXY_BYPASS_VARIABLE) {
        None => Vec::new(),
        Some(list) if list.trim().is_empty() => Vec::new(),
        Some(list) => serde_json::from_str::<Vec<String>>(&list).map_err(|_| {
            InputError::variable(
                PROXY_BYPASS_VARIABLE,
                "is not a JSON array of regular expressions",
            )
        })?,
    };
    Ok(Some(ProxySettings::new(
        url,
        inputs.variable(PROXY_USERNAME_VARIABLE),
        inputs.secret_variable(PROXY_PASSWORD_VARIABLE),
        bypass,
    )))
}

/// Every value in the environment that is, or may be, a secret: masked before anything is
/// printed, even when the inputs turn out to be invalid.
pub fn secrets_in(env: &BTreeMap<String, String>) -> Vec<String> {
    let proxy_password = env
        .get("AGENT_PROXYURL")
        .and_then(|u| url::Url::parse(u.trim()).ok())
        .and_then(|u| u.password().map(str::to_string));
    env.iter()
        .filter(|(key, _)| {
            key.starts_with("SECRET_")
                || *key == "INPUT_DATABRICKSTOKEN"
                || *key == TOKEN_VARIABLE
                || *key == "DATABRICKS_CLIENT_SECRET"
                || *key == "AGENT_PROXYPASSWORD"
        })
        .flat_map(|(_, value)| {
            let trimmed = value.trim();
            [value.as_str(), trimmed]
        })
        .filter(|value| !(value.is_empty() || value.starts_with("$(") && value.ends_with(')')))
        .map(str::to_string)
        .chain(proxy_password)
        .collect()
}
