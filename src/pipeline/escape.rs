//! Escaping for the agent's logging commands, and neutralising untrusted text.

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

/// Makes text from outside (notebook output, error traces, server messages) unable to issue
/// logging commands or log formatting lines, the way the agent itself defuses them.
pub fn neutralize(line: &str) -> String {
    let line = line.replace("##vso[", "**vso[");
    let trimmed = line.trim_start();
    match trimmed.strip_prefix("##[") {
        Some(rest) => format!("{}**[{rest}", &line[..line.len() - trimmed.len()]),
        None => line,
    }
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
    fn untrusted_text_cannot_issue_commands() {
        assert_eq!(
            neutralize("##vso[task.complete result=Succeeded]"),
            "**vso[task.complete result=Succeeded]"
        );
        assert_eq!(neutralize("x ##vso[a] ##vso[b]"), "x **vso[a] **vso[b]");
        assert_eq!(neutralize("  ##[error]fake"), "  **[error]fake");
        assert_eq!(neutralize("plain ##[x]"), "plain ##[x]");
    }
}
