//! Turns what users paste as "the workspace host" into a base URL.

use std::fmt;

use url::Url;

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
    /// never cross a network in clear text.
    pub fn parse(raw: &str) -> Result<WorkspaceUrl, WorkspaceUrlError> {
        let fail = |reason: String| Err(WorkspaceUrlError { reason });
        let raw = raw.trim();
        if raw.is_empty() {
            return fail("it is empty".into());
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return fail("it contains spaces or control characters".into());
        }
        let with_scheme = if raw.contains("://") {
            raw.to_string()
        } else {
            format!("https://{raw}")
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
            return fail(format!("`{raw}` has an unexpected query string"));
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
}

impl fmt::Display for WorkspaceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin())
    }
}

fn is_loopback(host: &str) -> bool {
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
}
