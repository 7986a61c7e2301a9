//! The agent's web proxy (`config.sh --proxyurl`), read once from the agent's variables
//! (`tasks::connection`) and handed to the transport as data. Which requests it carries and
//! with which credentials is decided here, for both runtimes; the transports only carry out
//! the mechanics (reqwest natively, `task/http.js` under Node).

use base64::Engine as _;
use url::Url;

#[derive(Clone)]
pub struct ProxySettings {
    /// Without credentials: those are in `authorization`.
    url: Url,
    username: Option<String>,
    /// The `Proxy-Authorization` value, made once from the credentials.
    authorization: Option<String>,
    /// The agent's bypass list as written, for the debug log.
    patterns: Vec<String>,
    /// The patterns that compile; like the agent, the others are skipped.
    bypass: Vec<Pattern>,
}

/// A bypass pattern, compiled by the runtime's own engine: JavaScript's under Node (the
/// agent's Node tasks match the list that way too, and the wasm core stays small), regex-lite
/// natively. Patterns are matched case-insensitively, as the agent does.
#[cfg(not(target_arch = "wasm32"))]
type Pattern = regex_lite::Regex;
#[cfg(target_arch = "wasm32")]
type Pattern = js_sys::RegExp;

#[cfg(not(target_arch = "wasm32"))]
fn compile(pattern: &str) -> Option<Pattern> {
    regex_lite::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .build()
        .ok()
}

#[cfg(target_arch = "wasm32")]
fn compile(pattern: &str) -> Option<Pattern> {
    use wasm_bindgen::JsCast;
    // `new RegExp` throws on a bad pattern: constructed through Reflect, which catches it.
    let constructor: js_sys::Function = js_sys::RegExp::new("", "").constructor().unchecked_into();
    let arguments = js_sys::Array::of2(&pattern.into(), &"i".into());
    js_sys::Reflect::construct(&constructor, &arguments)
        .ok()?
        .dyn_into()
        .ok()
}

#[cfg(not(target_arch = "wasm32"))]
fn matches(pattern: &Pattern, text: &str) -> bool {
    pattern.is_match(text)
}

#[cfg(target_arch = "wasm32")]
fn matches(pattern: &Pattern, text: &str) -> bool {
    pattern.test(text)
}

impl std::fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxySettings")
            .field("url", &self.url.as_str())
            .field("username", &self.username)
            .field("authorization", &self.authorization.as_ref().map(|_| "***"))
            .field("bypass", &self.patterns)
            .finish()
    }
}

/// Where one request goes when it goes through the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyRoute {
    /// Host name (IPv6 without brackets), port and whether the proxy itself speaks TLS.
    pub host: String,
    pub port: u16,
    pub secure: bool,
    /// The `Proxy-Authorization` value, when the agent has proxy credentials.
    pub authorization: Option<String>,
}

impl ProxySettings {
    /// `url` is an http(s) URL; credentials written into it are used unless `username` is
    /// given. `bypass` holds regular expressions matched, case-insensitively, against the
    /// whole request URL, as the agent's own tasks match them.
    pub fn new(
        mut url: Url,
        username: Option<String>,
        password: Option<String>,
        bypass: Vec<String>,
    ) -> ProxySettings {
        let decoded = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8_lossy()
                .into_owned()
        };
        let embedded_username = Some(url.username()).filter(|u| !u.is_empty()).map(decoded);
        let embedded_password = url.password().map(decoded);
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let compiled = bypass.iter().filter_map(|p| compile(p)).collect();
        let username = username.filter(|u| !u.is_empty()).or(embedded_username);
        let password = password.or(embedded_password);
        ProxySettings {
            authorization: username
                .as_deref()
                .map(|user| basic(user, password.as_deref())),
            url,
            username,
            patterns: bypass,
            bypass: compiled,
        }
    }

    /// The proxy's URL, without credentials.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The route for a request to `target`, or `None` when it is on the bypass list.
    pub fn route(&self, target: &str) -> Option<ProxyRoute> {
        if self.bypass.iter().any(|pattern| matches(pattern, target)) {
            return None;
        }
        let secure = self.url.scheme() == "https";
        Some(ProxyRoute {
            host: self
                .url
                .host_str()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: self
                .url
                .port_or_known_default()
                .unwrap_or(if secure { 443 } else { 80 }),
            secure,
            authorization: self.authorization.clone(),
        })
    }

    /// The `Proxy-Authorization` value, when the agent has proxy credentials.
    pub fn authorization(&self) -> Option<&str> {
        self.authorization.as_deref()
    }
}

/// `Basic <user:password>`, as RFC 7617 writes it.
fn basic(username: &str, password: Option<&str>) -> String {
    let pair = format!("{username}:{}", password.unwrap_or_default());
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str, username: Option<&str>, password: Option<&str>) -> ProxySettings {
        ProxySettings::new(
            Url::parse(url).unwrap(),
            username.map(str::to_string),
            password.map(str::to_string),
            vec![
                r"\.internal\b".into(),
                "(unclosed".into(),
                "EXAMPLE\\.com".into(),
            ],
        )
    }

    #[test]
    fn routes_through_the_proxy_unless_a_bypass_pattern_matches() {
        let proxy = settings("http://proxy.corp:8080", None, None);
        let route = proxy
            .route("https://adb-1.azuredatabricks.net/api")
            .unwrap();
        assert_eq!(
            route,
            ProxyRoute {
                host: "proxy.corp".into(),
                port: 8080,
                secure: false,
                authorization: None
            }
        );
        assert_eq!(proxy.route("https://db.internal/api/2.0"), None);
        // Case-insensitive, like the agent; an invalid pattern is skipped, not fatal.
        assert_eq!(proxy.route("https://example.com/x"), None);
    }

    #[test]
    fn credentials_come_from_the_variables_or_the_url() {
        let from_variables = settings("https://proxy.corp", Some("ci"), Some("pr0xy%;pass]"));
        let route = from_variables.route("https://h/").unwrap();
        assert_eq!((route.port, route.secure), (443, true));
        assert_eq!(
            route.authorization.as_deref(),
            Some("Basic Y2k6cHIweHklO3Bhc3Nd")
        );
        let embedded = settings("http://ci:pr0xy%25%3Bpass%5D@proxy.corp:3128", None, None);
        assert_eq!(embedded.url().as_str(), "http://proxy.corp:3128/");
        assert_eq!(
            embedded.route("https://h/").unwrap().authorization,
            route.authorization
        );
        let ipv6 = settings("http://[::1]:3128", None, None);
        assert_eq!(ipv6.route("https://h/").unwrap().host, "::1");
    }
}
