//! Which workspace to talk to, and with which token.

use std::collections::BTreeMap;

use crate::databricks::{WorkspaceUrl, WORKSPACE_URL_EXAMPLE};
use crate::pipeline::{InputError, Inputs};

pub const HOST_INPUT: &str = "databricksHost";
pub const TOKEN_INPUT: &str = "databricksToken";
pub const HOST_VARIABLE: &str = "DATABRICKS_HOST";
pub const TOKEN_VARIABLE: &str = "DATABRICKS_TOKEN";

#[derive(Clone)]
pub struct Connection {
    pub url: WorkspaceUrl,
    pub token: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.url)
            .field("token", &"***")
            .finish()
    }
}

impl Connection {
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
        Ok(Connection { url, token })
    }
}

/// Every value in the environment that is, or may be, a secret: masked before anything is
/// printed, even when the inputs turn out to be invalid.
pub fn secrets_in(env: &BTreeMap<String, String>) -> Vec<String> {
    env.iter()
        .filter(|(key, _)| {
            key.starts_with("SECRET_")
                || *key == "INPUT_DATABRICKSTOKEN"
                || *key == TOKEN_VARIABLE
                || *key == "DATABRICKS_CLIENT_SECRET"
        })
        .flat_map(|(_, value)| {
            let trimmed = value.trim();
            [value.as_str(), trimmed]
        })
        .filter(|value| !(value.is_empty() || value.starts_with("$(") && value.ends_with(')')))
        .map(str::to_string)
        .collect()
}
