//! The agent's web proxy (`config.sh --proxyurl`), as the agent hands it to tasks: the
//! variables `Agent.ProxyUrl`, `Agent.ProxyUsername`, `Agent.ProxyPassword` (secret) and
//! `Agent.ProxyBypassList` (a JSON array of regular expressions; a URL that matches one goes
//! direct). The native transport applies it (`native_http.rs`); under Node, `task/http.js`
//! reads the same variables and applies them itself.

use url::Url;

#[derive(Clone)]
pub struct ProxySettings {
    pub url: Url,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Patterns matched against the whole request URL, as the agent's own tasks do.
    pub bypass: Vec<String>,
}

impl std::fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxySettings")
            .field("url", &self.url.as_str())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("bypass", &self.bypass)
            .finish()
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl ProxySettings {
    /// The proxy for reqwest; patterns that are not valid regular expressions are skipped,
    /// as the agent skips them.
    pub fn to_reqwest(&self) -> reqwest::Proxy {
        let bypass: Vec<regex::Regex> = self
            .bypass
            .iter()
            .filter_map(|pattern| {
                regex::RegexBuilder::new(pattern)
                    .case_insensitive(true)
                    .build()
                    .ok()
            })
            .collect();
        let target = self.url.clone();
        let proxy = reqwest::Proxy::custom(move |url| {
            if bypass.iter().any(|pattern| pattern.is_match(url.as_str())) {
                None
            } else {
                Some(target.clone())
            }
        });
        match &self.username {
            Some(username) => {
                proxy.basic_auth(username, self.password.as_deref().unwrap_or_default())
            }
            None => proxy,
        }
    }
}
