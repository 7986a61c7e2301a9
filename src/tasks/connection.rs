//! Which workspace to talk to, and with which token.

use std::collections::BTreeMap;

use crate::databricks::{ProxySettings, WorkspaceUrl, WORKSPACE_URL_EXAMPLE};
use crate::pipeline::{InputError, Inputs};
use crate::rest::{Credential, StaticToken};
use crate::tasks::names::{input, variable};

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
        let host = match inputs.get(input::DATABRICKS_HOST)? {
            Some(host) => host,
            None => inputs.secret_variable(variable::DATABRICKS_HOST).ok_or_else(|| {
                InputError::new(input::DATABRICKS_HOST, format!("is not set, and there is no {} variable", variable::DATABRICKS_HOST))
                    .with_hint(format!(
                        "add {} (e.g. {WORKSPACE_URL_EXAMPLE}) to a variable group linked to this pipeline, or set the input",
                        variable::DATABRICKS_HOST
                    ))
            })?,
        };
        let url = WorkspaceUrl::parse(&host).map_err(|e| {
            InputError::new(input::DATABRICKS_HOST, e.reason).with_hint(format!(
                "expected a workspace URL such as {WORKSPACE_URL_EXAMPLE}"
            ))
        })?;
        let token = match inputs.get(input::DATABRICKS_TOKEN)? {
            Some(token) => token,
            None => inputs.secret_variable(variable::DATABRICKS_TOKEN).ok_or_else(|| {
                InputError::new(input::DATABRICKS_TOKEN, format!("is not set, and there is no {} variable", variable::DATABRICKS_TOKEN))
                    .with_hint(format!(
                        "add {} as a secret variable (a Databricks personal access token) to a variable group linked to this pipeline",
                        variable::DATABRICKS_TOKEN
                    ))
            })?,
        };
        // Never echo the value: it is a secret even when it is malformed.
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InputError::new(
                input::DATABRICKS_TOKEN,
                "contains spaces or line breaks; a token is a single word",
            )
            .with_hint("copy the token again without surrounding text"));
        }
        if !token.is_ascii() {
            return Err(InputError::new(
                input::DATABRICKS_TOKEN,
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
        .variable(variable::PROXY_URL)
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
            InputError::variable(variable::PROXY_URL, format!("`{value}` is not an http(s) URL"))
                .with_hint("the agent's proxy comes from `config.sh --proxyurl`; reconfigure it as http://host:port")
        })?;
    let bypass = match inputs.variable(variable::PROXY_BYPASS_LIST) {
        None => Vec::new(),
        Some(list) if list.trim().is_empty() => Vec::new(),
        Some(list) => serde_json::from_str::<Vec<String>>(&list).map_err(|_| {
            InputError::variable(
                variable::PROXY_BYPASS_LIST,
                "is not a JSON array of regular expressions",
            )
        })?,
    };
    Ok(Some(ProxySettings::new(
        url,
        inputs.variable(variable::PROXY_USERNAME),
        inputs.secret_variable(variable::PROXY_PASSWORD),
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
                || *key == variable::DATABRICKS_TOKEN
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
