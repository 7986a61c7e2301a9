//! Escaping for the agent's logging commands, and making text from outside harmless in the log.
//!
//! How the agent reads our output (microsoft/azure-pipelines-agent): stdout is read with .NET's
//! `StreamReader.ReadLine`, which ends a line at LF, CR or CRLF, so a bare CR starts a new line
//! as surely as LF. Each line is searched for `##vso[` anywhere in it, with a culture-aware
//! `IndexOf` that skips characters ICU treats as ignorable (soft hyphen, zero-width joiners,
//! ...). The message of a `task.logissue` is unescaped and written to the log after `##[error]`
//! or `##[warning]`, line breaks included, so each of its lines is a line of the log too. The
//! web log shows a line starting with `##[error]`, `##[section]`, `##[group]`, ... as that kind
//! of line, and interprets ANSI escape sequences.

/// Escapes a property value of `##vso[area.action key=value;...]`.
pub fn escape_property(value: &str) -> String {
    escape(value, true)
}

/// Escapes the message part of a logging command (after the `]`).
pub fn escape_message(value: &str) -> String {
    escape(value, false)
}

fn escape(value: &str, property: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '%' => out.push_str("%AZP25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            ']' if property => out.push_str("%5D"),
            ';' if property => out.push_str("%3B"),
            c => out.push(c),
        }
    }
    out
}

/// What the agent reads back from a property value or a message (both halves are decoded the
/// same way): the inverse of [`escape_property`] and [`escape_message`]. `%AZP25` goes last, so
/// an escaped `%` never decodes twice.
pub fn unescape(value: &str) -> String {
    let mut out = value.to_string();
    for (escaped, symbol) in [("%3B", ";"), ("%0D", "\r"), ("%0A", "\n"), ("%5D", "]")] {
        if out.contains(escaped) {
            out = out.replace(escaped, symbol);
        }
    }
    out.replace("%AZP25", "%")
}

/// Shown instead of a character that has no business in a log line.
const REPLACEMENT: char = '\u{FFFD}';

/// The lines of `text` as the agent would split them (at LF, CR and CRLF), each made
/// [`plain`] and [`neutralize`]d: whatever the text, every line we print is one line of text
/// that cannot issue a command, pose as a log formatting line or steer a terminal.
pub fn log_lines(text: &str) -> Vec<String> {
    split_lines(text)
        .into_iter()
        .map(|line| neutralize(&plain(line)))
        .collect()
}

/// Splits at LF, CR and CRLF (`str::lines` keeps a bare CR inside a line). A final line break
/// does not start another line.
pub fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(['\r', '\n']) {
        lines.push(&rest[..at]);
        let skip = if rest[at..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[at + skip..];
    }
    if !rest.is_empty() {
        lines.push(rest);
    }
    lines
}

/// Text of several lines made [`plain`] line by line, joined with LF: for files we write
/// (the JUnit file, the summary), where ANSI colour codes from a trace would show as junk.
pub fn plain_text(text: &str) -> String {
    let lines: Vec<String> = split_lines(text).into_iter().map(plain).collect();
    lines.join("\n")
}

/// One line without control characters: ANSI escape sequences (colours, cursor moves, terminal
/// titles, hyperlinks) are dropped whole; any other control character, and the bidirectional
/// overrides that make text display in another order than it reads, show as `�`.
pub fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' && skip_escape_sequence(&mut chars) {
            continue;
        }
        out.push(if c != '\t' && is_unsafe(c) {
            REPLACEMENT
        } else {
            c
        });
    }
    out
}

/// `text` without its ANSI escape sequences (CSI, OSC), everything else as it is. Masking
/// runs on this: a secret split by a colour code would otherwise be masked in neither piece,
/// and come back whole when a renderer drops the code.
pub fn without_escape_sequences(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\x1b') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' && skip_escape_sequence(&mut chars) {
            continue;
        }
        out.push(c);
    }
    std::borrow::Cow::Owned(out)
}

/// After an ESC: consumes a whole CSI (`ESC [ params final`) or OSC (`ESC ] ... BEL` or
/// `ESC ] ... ESC \`) sequence and returns true; anything else is left alone.
fn skip_escape_sequence(chars: &mut std::str::Chars<'_>) -> bool {
    let mut probe = chars.clone();
    let complete = match probe.next() {
        Some('[') => {
            let mut c = probe.next();
            while matches!(c, Some('\x30'..='\x3f')) {
                c = probe.next();
            }
            while matches!(c, Some('\x20'..='\x2f')) {
                c = probe.next();
            }
            matches!(c, Some('\x40'..='\x7e'))
        }
        Some(']') => loop {
            match probe.next() {
                Some('\x07') => break true,
                Some('\x1b') if probe.clone().next() == Some('\\') => {
                    probe.next();
                    break true;
                }
                Some(_) => {}
                None => break false,
            }
        },
        _ => false,
    };
    if complete {
        *chars = probe;
    }
    complete
}

/// Control characters (C0, DEL, C1), line and paragraph separators, and bidirectional
/// formatting characters.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{061C}' | '\u{200E}' | '\u{200F}'
        )
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// Unicode's Default_Ignorable_Code_Point: invisible, and skipped by the agent's culture-aware
/// search for `##vso[` (and by JavaScript's `trim`, for U+FEFF). Kept in text (some scripts and
/// emoji need them) but looked through when defusing commands.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Makes one line unable to issue a logging command (see [`neutralize_commands`]) or to pose
/// as a log formatting line: `##[error]`, `##[section]`, ... at its start, after spaces or
/// invisible characters, becomes `**[`.
pub fn neutralize(line: &str) -> String {
    let line = neutralize_commands(line);
    let mut chars: Vec<char> = line.chars().collect();
    let first_visible = chars
        .iter()
        .position(|&c| !(c.is_whitespace() || is_invisible(c)))
        .unwrap_or(chars.len());
    match find_pattern(&chars[first_visible..], "##[") {
        Some(hashes) => {
            hashes.iter().for_each(|&i| chars[first_visible + i] = '*');
            chars.into_iter().collect()
        }
        None => line,
    }
}

/// `##vso[` anywhere, in any case, even with invisible characters between its letters,
/// becomes `**vso[`, the way the agent itself defuses commands in output it must not obey.
pub fn neutralize_commands(text: &str) -> String {
    if !text.contains('#') {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    for start in 0..chars.len() {
        if chars[start] == '#' {
            if let Some(hashes) = find_pattern(&chars[start..], "##vso[") {
                hashes.iter().for_each(|&i| chars[start + i] = '*');
            }
        }
    }
    chars.into_iter().collect()
}

/// Whether `chars` starts with `pattern` (ASCII letters in any case), looking through
/// invisible characters; returns the positions of the pattern's `#`s.
fn find_pattern(chars: &[char], pattern: &str) -> Option<Vec<usize>> {
    let mut wanted = pattern.chars().peekable();
    let mut hashes = Vec::new();
    for (i, &c) in chars.iter().enumerate() {
        let Some(&w) = wanted.peek() else { break };
        if c.eq_ignore_ascii_case(&w) {
            if c == '#' {
                hashes.push(i);
            }
            wanted.next();
        } else if i == 0 || !is_invisible(c) {
            return None;
        }
    }
    wanted.peek().is_none().then_some(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_properties_and_messages() {
        assert_eq!(escape_property("a;b]c%d\r\ne"), "a%3Bb%5Dc%AZP25d%0D%0Ae");
        assert_eq!(escape_message("a;b]c%d\r\ne"), "a;b]c%AZP25d%0D%0Ae");
    }

    #[test]
    fn unescapes_what_the_agent_decodes() {
        assert_eq!(unescape("a%3Bb%5Dc%AZP25d%0D%0Ae"), "a;b]c%d\r\ne");
        assert_eq!(unescape("%AZP253B %AZP25AZP25 %3b"), "%3B %AZP25 %3b");
        assert_eq!(unescape("a;b]c"), "a;b]c");
    }

    proptest::proptest! {
        #[test]
        fn unescape_reverses_both_escapes(text in "(%|AZP25|3B|5D|0A|0D|;|]|\\r|\\n|[a-z])*") {
            proptest::prop_assert_eq!(unescape(&escape_property(&text)), text.clone());
            proptest::prop_assert_eq!(unescape(&escape_message(&text)), text);
        }
    }

    #[test]
    fn untrusted_text_cannot_issue_commands() {
        for (line, expected) in [
            (
                "##vso[task.complete result=Succeeded]",
                "**vso[task.complete result=Succeeded]",
            ),
            ("x ##vso[a] ##vso[b]", "x **vso[a] **vso[b]"),
            ("x ##VSO[a]", "x **VSO[a]"),
            ("x #\u{AD}#v\u{200D}so[a]", "x *\u{AD}*v\u{200D}so[a]"),
            ("  ##[error]fake", "  **[error]fake"),
            ("\u{FEFF}##[section]fake", "\u{FEFF}**[section]fake"),
            (
                "\u{200B} #\u{2060}#[group]fake",
                "\u{200B} *\u{2060}*[group]fake",
            ),
            ("plain ##[x]", "plain ##[x]"),
            ("# not #vso[", "# not #vso["),
        ] {
            assert_eq!(neutralize(line), expected, "{line:?}");
        }
    }

    #[test]
    fn splits_where_the_agent_does() {
        assert_eq!(
            split_lines("a\rb\r\nc\nd\n\ne\r\n"),
            ["a", "b", "c", "d", "", "e"]
        );
        assert!(split_lines("").is_empty());
        assert_eq!(split_lines("\n"), [""]);
        assert_eq!(split_lines("a\r"), ["a"]);
    }

    #[test]
    fn control_characters_and_escape_sequences_do_not_reach_the_log() {
        for (line, expected) in [
            ("\x1b[31mred\x1b[0m", "red"),
            ("\x1b[2K\x1b[1Aover", "over"),
            ("\x1b]0;title\x07x", "x"),
            ("\x1b]8;;https://evil\x1b\\link\x1b]8;;\x1b\\", "link"),
            ("\x1bcreset", "\u{FFFD}creset"),
            ("a\x1b[", "a\u{FFFD}["),
            ("nul\0bell\x07del\x7f\u{9b}31m", "nul�bell�del��31m"),
            ("tab\tkept", "tab\tkept"),
            ("\u{202E}txet", "\u{FFFD}txet"),
            ("line\u{2028}sep", "line\u{FFFD}sep"),
        ] {
            assert_eq!(plain(line), expected, "{line:?}");
        }
    }

    #[test]
    fn every_line_start_is_neutralized() {
        assert_eq!(
            log_lines("ok\r##[error]forged\n\x1b[0m##[section]x\r\n##vso[task.complete]"),
            [
                "ok",
                "**[error]forged",
                "**[section]x",
                "**vso[task.complete]"
            ]
        );
    }
}
