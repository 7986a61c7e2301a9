//! The secrets to keep out of everything we print or write, and [`Masked`]: text they have
//! already been taken out of.
//!
//! Masking works on raw values, before anything transforms them: escaping (`&` → `&amp;`, `"` →
//! `\"`, `%` → `%AZP25`) would change how a secret is spelled, shortening could cut one in two,
//! and masking a whole document would also hit its markup (a secret `name` would turn
//! `<testcase name=` into `<testcase ***=`). So renderers (the JUnit file, the summary) take
//! [`Masked`] values only, and the [`Log`](super::Log) masks every value of a JSON document
//! before serializing it.

use std::cell::RefCell;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// `text` with every one of `secrets` (longest first) replaced by [`MASK`], and the start of
/// one cut where the text was shortened.
fn mask_with(mut text: String, secrets: &[String]) -> String {
    for secret in secrets {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), MASK);
        }
    }
    if text.contains(CUT) {
        text = mask_cut_prefixes(&text, secrets);
    }
    text
}

/// The spellings of `secret` that differ from it when it is percent-encoded (upper and lower
/// case hex, `~` kept or encoded), form-encoded, base64-encoded (standard and URL-safe, with
/// and without padding) or escaped for a JSON string.
fn encoded_forms(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    let percent = |upper: bool, tilde: bool| {
        let mut out = String::with_capacity(secret.len() * 3);
        for byte in secret.bytes() {
            let keep = byte.is_ascii_alphanumeric()
                || matches!(byte, b'-' | b'.' | b'_')
                || (byte == b'~' && !tilde);
            if keep {
                out.push(byte as char);
            } else if upper {
                out.push_str(&format!("%{byte:02X}"));
            } else {
                out.push_str(&format!("%{byte:02x}"));
            }
        }
        out
    };
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let json = serde_json::to_string(secret).unwrap_or_default();
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let mut forms = vec![
        percent(true, false),
        percent(true, true),
        percent(false, false),
        percent(false, true),
        form,
        json[1..json.len().saturating_sub(1).max(1)].to_string(),
    ];
    forms.extend(engines.iter().map(|engine| engine.encode(secret)));
    forms.retain(|form| form != secret);
    forms
}

/// Marks where [`Masked::shorten`] (and `text::shorten`) cut a text.
const CUT: char = '…';

/// The registered secrets, longest first so that a secret containing another is masked whole.
#[derive(Debug, Default)]
pub struct Secrets {
    list: RefCell<Vec<String>>,
}

impl Secrets {
    /// Registers `secret`, and the forms we could encode it in ourselves (percent-encoded,
    /// form-encoded, base64, JSON-escaped): a server that echoes a secret back in one of them
    /// must not get it printed. Returns false when it is empty or already known.
    pub fn add(&self, secret: &str) -> bool {
        if secret.is_empty() || self.list.borrow().iter().any(|s| s == secret) {
            return false;
        }
        for form in std::iter::once(secret.to_string()).chain(encoded_forms(secret)) {
            let mut list = self.list.borrow_mut();
            if form.is_empty() || list.contains(&form) {
                continue;
            }
            let at = list.partition_point(|s| s.len() >= form.len());
            list.insert(at, form);
        }
        true
    }

    /// `text` with every secret replaced by [`MASK`]. Also masks the start of a secret that
    /// ends right where a text was shortened (`…`): text shortened before it reaches us (a
    /// server's message in an API error) would otherwise show a secret's first part.
    ///
    /// A secret split by ANSI escape sequences (`hun\x1b[31mter2`) would come back whole when
    /// a renderer drops them: when the text without its sequences still holds a secret, that
    /// text is masked and returned instead; otherwise the sequences are kept (data stays data).
    pub fn mask(&self, text: &str) -> Masked {
        let list = self.list.borrow();
        let masked = mask_with(text.to_string(), &list);
        let stripped = super::escape::without_escape_sequences(&masked);
        if let std::borrow::Cow::Owned(stripped) = stripped {
            if list.iter().any(|secret| stripped.contains(secret.as_str())) {
                return Masked(mask_with(stripped, &list));
            }
        }
        Masked(masked)
    }

    /// `value` with every string value in it masked; keys (the document's own names: a key
    /// made of outside text is masked by whoever builds the object), numbers, booleans and the
    /// structure stay as they are, so the document stays valid and readable whatever the
    /// secret.
    pub fn mask_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.mask(s).0),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.mask_json(v)).collect()),
            Value::Object(map) => {
                // Inserted one by one: collecting would sort, and sorting costs the wasm core
                // a few KB.
                let mut masked = serde_json::Map::new();
                for (key, value) in map {
                    masked.insert(key.clone(), self.mask_json(value));
                }
                Value::Object(masked)
            }
            other => other.clone(),
        }
    }
}

/// Adds `value` under `key`, masked; two keys that differ only in their secrets would mask to
/// the same key, and the second would silently replace the first: repeats are numbered.
pub fn insert_masked(
    map: &mut serde_json::Map<String, serde_json::Value>,
    key: Masked,
    value: serde_json::Value,
) {
    let key = key.0;
    let key = if map.contains_key(&key) {
        (2..)
            .map(|n| format!("{key} ({n})"))
            .find(|k| !map.contains_key(k))
            .expect("an unused key exists")
    } else {
        key
    };
    map.insert(key, value);
}

impl Secrets {
    /// `value` serialized (pretty or compact) with every string in it masked first: valid
    /// JSON whatever the secrets, so it is [`Masked`] as a whole and never masked again.
    pub fn json_text(&self, value: &serde_json::Value, pretty: bool) -> Masked {
        let masked = self.mask_json(value);
        let text = if pretty {
            serde_json::to_string_pretty(&masked)
        } else {
            serde_json::to_string(&masked)
        };
        Masked(escape_json_controls(&text.expect("JSON values serialize")))
    }
}

/// Replaces, before each `…`, the longest start of a secret that the text ends with there.
fn mask_cut_prefixes(text: &str, secrets: &[String]) -> String {
    let pieces: Vec<&str> = text.split(CUT).collect();
    let mut out = String::with_capacity(text.len());
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            out.push(CUT);
        }
        let before_a_cut = i + 1 < pieces.len();
        let cut_prefix = before_a_cut
            .then(|| longest_secret_start_ending(piece, secrets))
            .flatten();
        match cut_prefix {
            Some(len) => {
                out.push_str(&piece[..piece.len() - len]);
                out.push_str(MASK);
            }
            None => out.push_str(piece),
        }
    }
    out
}

/// The length of the longest proper start of a secret that `piece` ends with.
fn longest_secret_start_ending(piece: &str, secrets: &[String]) -> Option<usize> {
    let mut longest = None;
    for secret in secrets {
        for (end, _) in secret.char_indices().skip(1) {
            if piece.ends_with(&secret[..end]) && longest < Some(end) {
                longest = Some(end);
            }
        }
    }
    longest
}

/// Text in which every registered secret has been masked. Only [`Secrets::mask`] makes one, so
/// a renderer that takes `Masked` cannot be handed raw text by mistake.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Masked(String);

impl Masked {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// At most `max` characters: cutting masked text cannot show part of a secret.
    pub fn shorten(&self, max: usize) -> Masked {
        Masked(crate::text::shorten(&self.0, max))
    }

    /// The first line (of a message that may span several).
    pub fn first_line(&self) -> Masked {
        let lines = super::escape::split_lines(&self.0);
        Masked(lines.first().copied().unwrap_or_default().to_string())
    }
}

impl std::fmt::Display for Masked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// serde_json leaves C1 control characters and the line and paragraph separators raw in
/// strings; written as `\uXXXX` they cannot steer the terminal the document is shown in.
/// Only strings can hold them, and there the escape means the same character.
fn escape_json_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(list: &[&str]) -> Secrets {
        let secrets = Secrets::default();
        for s in list {
            secrets.add(s);
        }
        secrets
    }

    #[test]
    fn the_forms_a_secret_is_encoded_in_are_masked_too() {
        let secret = "sp~n secret/+=\"&ü";
        let secrets = secrets(&[secret]);
        use base64::Engine as _;
        let echoed = [
            "sp~n%20secret%2F%2B%3D%22%26%C3%BC".to_string(),
            "sp%7En%20secret%2F%2B%3D%22%26%C3%BC".to_string(),
            "sp%7en%20secret%2f%2b%3d%22%26%c3%bc".to_string(),
            "sp%7En+secret%2F%2B%3D%22%26%C3%BC".to_string(),
            r#"sp~n secret/+=\"&ü"#.to_string(),
            base64::engine::general_purpose::STANDARD.encode(secret),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
        ];
        for form in echoed {
            let text = format!("invalid_client: the secret '{form}' is wrong");
            assert_eq!(
                secrets.mask(&text).as_str(),
                "invalid_client: the secret '***' is wrong",
                "{form}"
            );
        }
    }

    #[test]
    fn a_secret_split_by_an_escape_sequence_is_masked_whole() {
        let secrets = secrets(&["hunter2-secret"]);
        for text in [
            "token hunter\x1b[31m2-secret",
            "token hun\x1b[0mter2-sec\x1b[1;32mret",
            "token hunter2\x1b]8;;https://x\x07-secret",
        ] {
            assert_eq!(secrets.mask(text).as_str(), "token ***", "{text:?}");
        }
        // Other text keeps its line breaks, characters and escape sequences.
        assert_eq!(secrets.mask("a\r\nb\tc").as_str(), "a\r\nb\tc");
        assert_eq!(
            secrets.mask("\x1b[31mred\x1b[0m").as_str(),
            "\x1b[31mred\x1b[0m"
        );
    }

    #[test]
    fn masks_longest_first() {
        let s = secrets(&["abc", "abcdef"]);
        assert_eq!(s.mask("x abcdef abc").as_str(), "x *** ***");
    }

    #[test]
    fn masks_the_start_of_a_secret_cut_by_shortening() {
        let s = secrets(&["s3cr3t-value"]);
        assert_eq!(s.mask("token s3cr3…").as_str(), "token ***…");
        assert_eq!(s.mask("a s… b s3cr3t-v…").as_str(), "a ***… b ***…");
        // Only right before a cut: the same letters elsewhere are text.
        assert_eq!(s.mask("s3cr3 and more").as_str(), "s3cr3 and more");
        assert_eq!(s.mask("…s3cr3").as_str(), "…s3cr3");
    }

    #[test]
    fn shortening_masked_text_shows_no_part_of_a_secret() {
        let s = secrets(&["0123456789"]);
        let text = format!("{}0123456789", "x".repeat(5));
        assert_eq!(s.mask(&text).shorten(6).as_str(), "xxxxx*…");
        assert_eq!(
            crate::text::shorten(&text, 8),
            "xxxxx012…",
            "what masking after would miss"
        );
    }

    #[test]
    fn json_masks_values_never_structure() {
        let s = secrets(&["name", "1", "\""]);
        let doc = serde_json::json!({
            "name": "a \" name", "runId": 1, "ok": true, "list": ["1", 12],
        });
        let text = s.json_text(&doc, true);
        let back: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
        assert_eq!(back["name"], "a *** ***");
        assert_eq!(back["runId"], 1, "numbers are not secrets' text");
        assert_eq!(back["list"], serde_json::json!(["***", 12]));
    }

    #[test]
    fn keys_that_mask_alike_are_all_kept() {
        let s = secrets(&["one", "two"]);
        let mut map = serde_json::Map::new();
        insert_masked(&mut map, s.mask("a/one"), 1.into());
        insert_masked(&mut map, s.mask("a/two"), 2.into());
        assert_eq!(map["a/***"], 1);
        assert_eq!(map["a/*** (2)"], 2);
    }
}
