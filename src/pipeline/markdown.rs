//! Markdown for the build summary (`##vso[task.uploadsummary]`). Text from outside (notebook
//! names, outputs, errors) is shown as code, never read as markup: no links, images, raw HTML
//! or emphasis can come from it. The only links are workspace links checked by
//! [`WorkspaceUrl::link`](crate::databricks::WorkspaceUrl::link).

use super::escape::plain_text;
use super::Masked;
use crate::databricks::WorkspaceLink;

/// `text` as an inline code span that fits in a table cell: one line, its pipes escaped (a
/// table splits its cells at unescaped pipes before it reads code spans; GFM and markdown-it
/// then drop the backslash), fenced with more backticks than any run inside it. Empty text
/// gives an empty cell.
pub fn code(text: &Masked) -> String {
    let one_line = plain_text(text.as_str()).replace('\n', " ");
    let text = one_line.trim();
    if text.is_empty() {
        return String::new();
    }
    let fence = "`".repeat(longest_backtick_run(text) + 1);
    // The spaces keep a backtick at either end from joining the fence; one space on each side
    // is dropped by the renderer.
    format!("{fence} {} {fence}", text.replace('|', "\\|"))
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// Text shown as it is: every ASCII punctuation character backslash-escaped, so none of it is
/// read as markup (the `***` of a masked secret included). Line breaks become spaces.
pub fn text(text: &Masked) -> String {
    let mut out = String::with_capacity(text.as_str().len());
    for c in plain_text(text.as_str()).chars() {
        match c {
            '\n' => out.push(' '),
            c if c.is_ascii_punctuation() => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// `[label](link)`, `label` being Markdown we made (see [`text`]). The destination is written between angle
/// brackets with the characters Markdown could read in it percent-encoded.
pub fn link(label: &str, link: &WorkspaceLink) -> String {
    let mut destination = String::with_capacity(link.as_str().len());
    for c in link.as_str().chars() {
        match c {
            '<' | '>' | '\\' | '|' | '`' | ' ' | '(' | ')' | '[' | ']' => {
                destination.push_str(&format!("%{:02X}", c as u32))
            }
            c if c.is_control() => {}
            c => destination.push(c),
        }
    }
    format!("[{label}](<{destination}>)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Secrets;

    fn masked(text: &str) -> Masked {
        Secrets::default().mask(text)
    }

    #[test]
    fn outside_text_is_code() {
        for (text, expected) in [
            ("all good", "` all good `"),
            ("[click](https://evil)", "` [click](https://evil) `"),
            ("![x](https://evil/p.png)", "` ![x](https://evil/p.png) `"),
            (
                "<img src=x onerror=alert(1)>",
                "` <img src=x onerror=alert(1)> `",
            ),
            ("a | b", "` a \\| b `"),
            ("a\\|b", "` a\\\\|b `"),
            ("use `x`", "`` use `x` ``"),
            ("``", "``` `` ```"),
            ("line\nbreak\r\nhere", "` line break here `"),
            ("\u{1b}[31mred\u{1b}[0m", "` red `"),
            ("", ""),
            ("  ", ""),
        ] {
            assert_eq!(code(&masked(text)), expected, "{text:?}");
        }
    }

    #[test]
    fn plain_text_is_escaped() {
        assert_eq!(
            text(&masked("run *** <b>[x](y)")),
            "run \\*\\*\\* \\<b\\>\\[x\\]\\(y\\)"
        );
    }
}
