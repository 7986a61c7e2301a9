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
    fn shortens_on_character_boundaries() {
        assert_eq!(shorten("héllo", 3), "hél…");
        assert_eq!(shorten("hi", 3), "hi");
    }
}
