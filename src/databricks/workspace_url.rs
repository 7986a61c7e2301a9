//! Turns what users paste as "the workspace host" into a base URL.

use std::fmt;

use url::Url;

use crate::text::redact_url;

/// The base URL of a Databricks workspace: scheme, host and port, nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceUrl(Url);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct WorkspaceUrlError {
    pub reason: String,
}

pub const WORKSPACE_URL_EXAMPLE: &str = "https://adb-1234567890123456.7.azuredatabricks.net";

impl WorkspaceUrl {
    /// Accepts `adb-123.4.azuredatabricks.net`, `https://…`, trailing slashes and the `/?o=123`
    /// suffix the browser shows. `http://` only for loopback (the local emulator): a token must
    /// never cross a network in clear text. Errors quote the value with its credentials, query
    /// values and fragment hidden: nothing masks them, and they may hold a token.
    pub fn parse(raw: &str) -> Result<WorkspaceUrl, WorkspaceUrlError> {
        let fail = |reason: String| Err(WorkspaceUrlError { reason });
        let input = raw.trim();
        if input.is_empty() {
            return fail("it is empty".into());
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return fail("it contains spaces or control characters".into());
        }
        let raw = redact_url(input);
        let with_scheme = if input.contains("://") {
            input.to_string()
        } else {
            format!("https://{input}")
        };
        let url = match crate::text::parse_url(&with_scheme) {
            Ok(url) => url,
            Err(e) => return fail(format!("`{raw}` is not a URL: {e}")),
        };
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            return fail(format!("`{raw}` has no host name"));
        };
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(host) => {}
            "http" => {
                return fail(format!(
                    "`{raw}` uses http://; Databricks workspaces are served over https:// (http is accepted only for a local emulator on 127.0.0.1 or localhost)"
                ))
            }
            other => return fail(format!("`{raw}` uses the unsupported scheme `{other}://`")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return fail(format!(
                "`{raw}` contains credentials; pass the token separately"
            ));
        }
        let path = url.path().trim_end_matches('/');
        if !path.is_empty() {
            return fail(format!(
                "`{raw}` has a path (`{path}`); give only the workspace host"
            ));
        }
        let query_ok = url.query().is_none_or(|q| {
            q.split('&')
                .all(|pair| pair.is_empty() || pair.starts_with("o="))
        });
        if !query_ok {
            return fail(format!(
                "`{raw}` has an unexpected query string (only ?o=<workspace id> is accepted)"
            ));
        }
        let mut base = url.clone();
        base.set_query(None);
        base.set_fragment(None);
        base.set_path("/");
        Ok(WorkspaceUrl(base))
    }

    /// `https://host[:port]` without a trailing slash.
    pub fn origin(&self) -> String {
        self.0.as_str().trim_end_matches('/').to_string()
    }

    pub fn join(&self, path_and_query: &str) -> String {
        format!("{}{}", self.origin(), path_and_query)
    }

    /// `raw` (a link Databricks gave, such as a run page) if it may be shown as a link: an
    /// https URL (http only on loopback, as for the workspace itself) on this workspace's
    /// scheme, host and port, without credentials. Anything else could send whoever clicks it
    /// elsewhere; the error says why, without repeating the link.
    pub fn link(&self, raw: &str) -> Result<WorkspaceLink, String> {
        let url = crate::text::parse_url(raw.trim()).map_err(|_| "it is not a URL".to_string())?;
        let host = url.host_str().unwrap_or_default();
        if url.scheme() != self.0.scheme() || host != self.0.host_str().unwrap_or_default() {
            let shown = if host.is_empty() { url.scheme() } else { host };
            return Err(format!("it points to {shown}, not to the workspace"));
        }
        if url.port_or_known_default() != self.0.port_or_known_default() {
            return Err("it points to another port than the workspace's".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("it carries credentials".into());
        }
        Ok(WorkspaceLink(url.to_string()))
    }
}

/// A link into the workspace, checked by [`WorkspaceUrl::link`]: fit to be shown as a link or
/// handed on to later steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceLink(String);

impl WorkspaceLink {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkspaceLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for WorkspaceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin())
    }
}

pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_forms_users_paste() {
        for raw in [
            "adb-123.4.azuredatabricks.net",
            "https://adb-123.4.azuredatabricks.net",
            "https://adb-123.4.azuredatabricks.net/",
            "https://adb-123.4.azuredatabricks.net//",
            "https://adb-123.4.azuredatabricks.net/?o=123",
            "adb-123.4.azuredatabricks.net/?o=123#",
            "  https://ADB-123.4.azuredatabricks.net  ",
        ] {
            let url = WorkspaceUrl::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(
                url.origin(),
                "https://adb-123.4.azuredatabricks.net",
                "{raw}"
            );
        }
        assert_eq!(
            WorkspaceUrl::parse("http://127.0.0.1:8080")
                .unwrap()
                .join("/api/2.0/repos"),
            "http://127.0.0.1:8080/api/2.0/repos"
        );
        assert!(WorkspaceUrl::parse("http://localhost:1").is_ok());
        assert!(WorkspaceUrl::parse("http://[::1]:1").is_ok());
    }

    #[test]
    fn refuses_everything_else_with_a_reason() {
        for (raw, needle) in [
            ("", "empty"),
            ("http://adb-1.2.azuredatabricks.net", "https://"),
            ("ftp://x.net", "unsupported scheme"),
            ("https://x.net/api/2.0", "has a path"),
            ("https://user:pw@x.net", "credentials"),
            ("https://x.net/?foo=1", "query"),
            ("adb 1", "spaces"),
            ("https://", "not a URL"),
        ] {
            let err = WorkspaceUrl::parse(raw).expect_err(raw);
            assert!(err.reason.contains(needle), "{raw}: {}", err.reason);
        }
    }

    #[test]
    fn refusals_never_repeat_credentials() {
        for raw in [
            "https://user:S3CRET@x.net",
            "https://S3CRET@x.net",
            "https://:S3CRET@x.net/",
            "https://x.net/?token=S3CRET",
            "https://x.net/?o=1&S3CRET",
            "http://u:S3CRET@remote.example",
            "ftp://u:S3CRET@x.net",
            "https://u:S3CRET@x.net/api/2.0",
            "https://u:S3CRET@",
            "https://u:S3CRET@x.net:99999",
            "https://u:S3CRET@hóst.net",
            "u:S3CRET@x.net/path",
            "https://u:S3#CRET@x.net",
        ] {
            let err = WorkspaceUrl::parse(raw).expect_err(raw);
            assert!(!err.reason.contains("S3"), "{raw}: {}", err.reason);
            assert!(!err.reason.contains("CRET"), "{raw}: {}", err.reason);
        }
    }

    #[test]
    fn a_fragment_is_dropped_never_kept() {
        let url = WorkspaceUrl::parse("https://x.net/#S3CRET").unwrap();
        assert_eq!(url.to_string(), "https://x.net");
    }

    #[test]
    fn links_only_into_the_workspace() {
        let workspace = WorkspaceUrl::parse("https://adb-1.2.azuredatabricks.net").unwrap();
        let ok = "https://adb-1.2.azuredatabricks.net/?o=1#job/2/run/3";
        assert_eq!(workspace.link(ok).unwrap().as_str(), ok);
        assert!(workspace
            .link("HTTPS://ADB-1.2.azuredatabricks.net:443/#x")
            .is_ok());
        for (raw, why) in [
            ("https://evil.example/#job/1", "points to evil.example"),
            (
                "https://adb-1.2.azuredatabricks.net.evil.example/",
                "points to",
            ),
            ("http://adb-1.2.azuredatabricks.net/", "points to"),
            ("javascript:alert(1)", "points to javascript"),
            ("https://adb-1.2.azuredatabricks.net:8443/", "port"),
            ("https://u:p@adb-1.2.azuredatabricks.net/", "credentials"),
            ("//evil.example/x", "not a URL"),
            ("", "not a URL"),
        ] {
            let error = workspace.link(raw).expect_err(raw);
            assert!(error.contains(why), "{raw}: {error}");
        }
        let local = WorkspaceUrl::parse("http://127.0.0.1:8080").unwrap();
        assert!(local.link("http://127.0.0.1:8080/?o=1#job/1").is_ok());
        assert!(local.link("http://127.0.0.1:8081/").is_err());
        assert!(local.link("http://localhost:8080/").is_err());
    }
}
