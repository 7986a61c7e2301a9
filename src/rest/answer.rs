//! Reading an answer: a success body is the JSON document the endpoint promises, or a clear
//! error naming what came instead (nothing, a sign-in page, plain text); a redirect is refused.

use serde::de::DeserializeOwned;

use crate::text::shorten;

/// A redirect is an error: the APIs we call do not redirect, and following one would send
/// the request (and trust the answer) somewhere else. Where it pointed says what is wrong.
pub(crate) fn redirect_message(location: Option<String>) -> String {
    match location {
        Some(location) => format!(
            "the answer is a redirect to {}, which is not followed",
            shorten(&location, 200)
        ),
        None => "the answer is a redirect (without a Location), which is not followed".into(),
    }
}

/// Reads a success answer. Every endpoint we call answers with a JSON object, so an empty
/// body, an HTML page or anything else is named for what it is, not parsed into an empty
/// (and therefore "still running") value.
/// `hide` masks what is quoted from an answer that cannot be read, before it is shortened; the
/// answer itself is parsed as it came (masking would change its values).
pub(crate) fn decode_answer<T: DeserializeOwned>(
    body: &[u8],
    status: u16,
    content_type: Option<&str>,
    hide: &dyn Fn(&str) -> String,
) -> Result<T, String> {
    // Only the parse itself is generic: the rest is written once, not once per answer type
    // (that alone was a tenth of the wasm core).
    let text = String::from_utf8_lossy(body);
    let json = json_text(&text, status, content_type, hide)?;
    let parsed = match json {
        Some(json) => serde_json::from_str(json),
        // Fine where no answer is expected (a cancel, a delete): those read into a JSON value.
        None => serde_json::from_str("null"),
    };
    parsed.map_err(|e| unreadable(json.unwrap_or_default(), status, &e, hide))
}

/// The answer's text when it may be JSON; `Ok(None)` when it is empty.
fn json_text<'t>(
    text: &'t str,
    status: u16,
    content_type: Option<&str>,
    hide: &dyn Fn(&str) -> String,
) -> Result<Option<&'t str>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if let Some(title) = html_page_title(trimmed, content_type) {
        let title = if title.is_empty() {
            String::new()
        } else {
            format!(" (\"{}\")", shorten(&hide(&title), 100))
        };
        return Err(format!(
            "HTTP {status} with an HTML page{title}, not JSON: a sign-in page of a proxy or of single sign-on, or databricksHost is not a Databricks workspace URL"
        ));
    }
    Ok(Some(trimmed))
}

fn unreadable(
    trimmed: &str,
    status: u16,
    error: &serde_json::Error,
    hide: &dyn Fn(&str) -> String,
) -> String {
    if trimmed.is_empty() {
        return format!(
            "HTTP {status} with an empty body, where a JSON document was expected: something between the agent and Databricks (a proxy, a gateway) answered instead of the workspace"
        );
    }
    let what = if trimmed.starts_with('{') {
        "a JSON document that is not what this endpoint answers"
    } else {
        "not JSON"
    };
    format!(
        "HTTP {status} with {what} ({error}); it starts with `{}`",
        shorten(&hide(trimmed).replace(['\r', '\n'], " "), 60)
    )
}

/// The title of an HTML page (empty when it has none), or `None` when `body` is not one.
pub(crate) fn html_page_title(body: &str, content_type: Option<&str>) -> Option<String> {
    let declared = content_type.is_some_and(|t| t.to_ascii_lowercase().contains("text/html"));
    (declared || looks_like_html(body))
        .then(|| collapse_whitespace(&html_title(body).unwrap_or_default()))
}

pub(crate) fn looks_like_html(body: &str) -> bool {
    let head = body
        .trim_start()
        .get(..15.min(body.trim_start().len()))
        .unwrap_or("");
    let head = head.to_ascii_lowercase();
    head.starts_with("<!doctype")
        || head.starts_with("<html")
        || head.starts_with("<head")
        || head.starts_with("<body")
}

pub(crate) fn html_title(body: &str) -> Option<String> {
    let lower = body.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = start + lower[start..].find("</title>")?;
    Some(body.get(start..end)?.trim().to_string())
}

pub(crate) fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn status_text(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unexpected status",
    }
}
