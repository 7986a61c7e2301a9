//! Small text helpers shared by the client and the log. Durations are formatted with integer
//! arithmetic: float formatting would add its machinery to the wasm core for a few labels.

use std::time::Duration;

/// Cuts `text` to at most `max` characters, marking the cut.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((index, _)) => format!("{}…", &text[..index]),
        None => text.to_string(),
    }
}

/// Seconds with one decimal, rounded down: `12.3`.
pub fn seconds(duration: Duration) -> String {
    let tenths = duration.as_millis() / 100;
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// `[  12.3s]`: elapsed time at the start of a log line, aligned.
pub fn elapsed_label(duration: Duration) -> String {
    format!("[{:>6}s]", seconds(duration))
}

/// Parses a URL from outside. Host names must be ASCII: the core is built without Unicode
/// tables (see `idna_adapter` in Cargo.toml), so an internationalized host is refused here with
/// a clear reason rather than half-handled deeper down.
pub fn parse_url(raw: &str) -> Result<url::Url, String> {
    if !raw.is_ascii() {
        return Err(
            "it contains non-ASCII characters (write an international host name in its xn-- form)"
                .into(),
        );
    }
    url::Url::parse(raw).map_err(|e| e.to_string())
}

/// `raw` as a URL with the parts that may hold a secret hidden: the user name and password,
/// the values of the query and the fragment (`https://***@host/path?token=***#***`). Works on
/// text that is not a valid URL too, so an error about a malformed URL can still show which
/// one it means without repeating its credentials.
pub fn redact_url(raw: &str) -> String {
    let (scheme, rest) = match raw.find("://") {
        Some(at) => raw.split_at(at + 3),
        None => ("", raw),
    };
    // Credentials end at the last `@` before the path. A careless `#` or `?` in a password
    // does not end them here, so nothing of the password shows.
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let (credentials, rest) = match authority.rfind('@') {
        Some(at) => ("***", &rest[at..]),
        None => ("", rest),
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let mut out = format!("{scheme}{credentials}{rest}");
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) => format!("{key}=***"),
                None if pair.is_empty() => String::new(),
                None => "***".to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        if !fragment.is_empty() {
            out.push_str("***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_durations_without_floats() {
        assert_eq!(seconds(Duration::from_millis(0)), "0.0");
        assert_eq!(seconds(Duration::from_millis(1250)), "1.2");
        assert_eq!(seconds(Duration::from_secs(3725)), "3725.0");
        assert_eq!(elapsed_label(Duration::from_millis(3200)), "[   3.2s]");
    }

    #[test]
    fn urls_must_be_ascii() {
        assert!(parse_url("https://github.com/o/r").is_ok());
        assert!(parse_url("https://Aꬁ.example")
            .unwrap_err()
            .contains("non-ASCII"));
        assert!(parse_url("not a url").is_err());
    }

    #[test]
    fn redacts_what_may_be_secret_in_a_url() {
        for (raw, expected) in [
            ("https://user:pw@host.net/p", "https://***@host.net/p"),
            ("https://tok@host.net", "https://***@host.net"),
            ("https://a@b@host.net/x@y", "https://***@host.net/x@y"),
            ("user:pw@host.net", "***@host.net"),
            (
                "https://host.net/?token=abc&o=1",
                "https://host.net/?token=***&o=***",
            ),
            ("https://host.net/?abc", "https://host.net/?***"),
            ("https://host.net/#abc", "https://host.net/#***"),
            ("https://host.net/?#", "https://host.net/?#"),
            ("ftp://u:p@h?x=1#f", "ftp://***@h?x=***#***"),
            ("https://user:pa#ss@host.net/", "https://***@host.net/"),
            ("https://user:pa?ss@host.net", "https://***@host.net"),
            ("https://host.net/a/b", "https://host.net/a/b"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url(raw), expected, "{raw}");
        }
    }

    #[test]
    fn shortens_on_character_boundaries() {
        assert_eq!(shorten("héllo", 3), "hél…");
        assert_eq!(shorten("hi", 3), "hi");
    }
}
