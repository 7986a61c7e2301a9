//! The agent's stream as the Azure Pipelines web log shows it, for a person at a terminal (the
//! demo): logging commands interpreted, never printed; issues marked; groups and sections as
//! headings. What the web page shows beside the log (the Tests tab, the summary, attachments,
//! the variables a step set) is listed when the step ends; a published JUnit file as a table,
//! read when it is published.
//!
//! Text reaches the stream masked and neutralized by [`Log`](crate::pipeline::Log). Values are
//! unescaped here, then masked and neutralized again: nothing rendered can issue a command,
//! steer the terminal or show a secret the stream announced.

use std::collections::BTreeSet;
use std::path::Path;

use anstyle::{AnsiColor, Style};

use crate::host::read_small_file;
use crate::pipeline::escape::{log_lines, plain, unescape};
use crate::pipeline::secrets::MASK;
use crate::pipeline::Secrets;

/// Largest JUnit file read for the table.
const MAX_JUNIT_BYTES: usize = 16 * 1024 * 1024;
const MAX_JUNIT_NODES: u32 = 1_000_000;
/// Cases shown in a table; the counts cover them all.
const MAX_TABLE_ROWS: usize = 200;
const MAX_CELL_CHARS: usize = 100;
/// A variable's value is cut here (`--raw` shows it whole).
const MAX_VALUE_CHARS: usize = 200;

const INDENT: &str = "  ";

pub struct Renderer {
    color: bool,
    debug: bool,
    secrets: Secrets,
    in_group: bool,
    outputs: Vec<(String, String)>,
    variables: Vec<(String, String)>,
    named: BTreeSet<String>,
    beside_the_log: Vec<String>,
}

impl Renderer {
    /// `color`: ANSI styles on the marks; `debug`: show `##[debug]` lines.
    pub fn new(color: bool, debug: bool) -> Renderer {
        Renderer {
            color,
            debug,
            secrets: Secrets::default(),
            in_group: false,
            outputs: Vec::new(),
            variables: Vec::new(),
            named: BTreeSet::new(),
            beside_the_log: Vec::new(),
        }
    }

    /// Coloured when stdout is a terminal that takes colours and `NO_COLOR` is unset
    /// (`CLICOLOR_FORCE` forces colours).
    pub fn for_stdout(debug: bool) -> Renderer {
        let choice = anstream::AutoStream::choice(&std::io::stdout());
        Renderer::new(choice != anstream::ColorChoice::Never, debug)
    }

    /// The lines one line of the agent's stream shows as (often none).
    pub fn line(&mut self, raw: &str) -> Vec<String> {
        if let Some((kind, text)) = formatting(raw) {
            match kind.to_ascii_lowercase().as_str() {
                "group" => {
                    self.in_group = true;
                    let title = self.clean(text).join(" ");
                    return vec![self.paint(bold(), &format!("▾ {title}"))];
                }
                "endgroup" => {
                    self.in_group = false;
                    return Vec::new();
                }
                _ => {}
            }
        }
        let lines = self.render(raw);
        if self.in_group {
            lines.into_iter().map(|l| format!("{INDENT}{l}")).collect()
        } else {
            lines
        }
    }

    /// The end of a step: what it published beside the log, the variables it set (once each),
    /// and no group left open.
    pub fn finish_step(&mut self) -> Vec<String> {
        self.in_group = false;
        let mut lines = std::mem::take(&mut self.beside_the_log);
        for (title, list) in [
            ("output variables:", std::mem::take(&mut self.outputs)),
            ("variables:", std::mem::take(&mut self.variables)),
        ] {
            if !list.is_empty() {
                lines.push(self.paint(bold(), title));
                lines.extend(list.iter().map(|(n, v)| format!("{INDENT}{n} = {v}")));
            }
        }
        lines
    }

    fn render(&mut self, raw: &str) -> Vec<String> {
        if let Some(rest) = raw.strip_prefix("##vso[") {
            return match parse_command(rest) {
                Some(command) => self.command(raw, &command),
                None => self.as_is(raw),
            };
        }
        let Some((kind, text)) = formatting(raw) else {
            let lines = self.clean(raw);
            return if lines.is_empty() {
                vec![String::new()]
            } else {
                lines
            };
        };
        match kind.to_ascii_lowercase().as_str() {
            "section" => {
                let title = self.clean(text).join(" ");
                vec![self.paint(
                    bold().fg_color(Some(AnsiColor::Cyan.into())),
                    &format!("==> {title}"),
                )]
            }
            "error" => self.labelled("error:", red(), text),
            "warning" => self.labelled("warning:", yellow(), text),
            "debug" if self.debug => self.labelled("debug:", dim(), text),
            "debug" => Vec::new(),
            "command" => self
                .clean(text)
                .iter()
                .map(|l| self.paint(Style::new().fg_color(Some(AnsiColor::Blue.into())), l))
                .collect(),
            _ => self.as_is(raw),
        }
    }

    fn command(&mut self, raw: &str, command: &Command) -> Vec<String> {
        match command.name.to_ascii_lowercase().as_str() {
            "task.setsecret" => {
                self.secrets.add(&unescape(command.message));
                Vec::new()
            }
            "task.setvariable" => self.set_variable(raw, command),
            "task.logissue" => match command.property("type").as_deref() {
                Some("error") => self.issue("error:", red(), command),
                Some("warning") => self.issue("warning:", yellow(), command),
                _ => self.as_is(raw),
            },
            "task.complete" => self.complete(command),
            "task.setprogress" => Vec::new(),
            "task.uploadsummary" => {
                let path = self.clean_one(&unescape(command.message));
                self.once(format!("summary: {path}"));
                Vec::new()
            }
            "task.addattachment" => {
                let path = self.clean_one(&unescape(command.message));
                let kind = self.clean_one(&command.property("type").unwrap_or_default());
                let name = self.clean_one(&command.property("name").unwrap_or_default());
                self.once(format!("attachment: {name} ({kind}): {path}"));
                Vec::new()
            }
            "results.publish" => match self.publish(command) {
                Some(lines) => {
                    self.beside_the_log.extend(lines);
                    Vec::new()
                }
                None => self.as_is(raw),
            },
            _ => self.as_is(raw),
        }
    }

    fn set_variable(&mut self, raw: &str, command: &Command) -> Vec<String> {
        let Some(name) = command.property("variable") else {
            return self.as_is(raw);
        };
        let flag = |key| {
            command
                .property(key)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        };
        let value = unescape(command.message);
        let value = if flag("issecret") {
            self.secrets.add(&value);
            MASK.to_string()
        } else {
            crate::text::shorten(&self.clean(&value).join(" "), MAX_VALUE_CHARS)
        };
        let name = self.clean_one(&name);
        let list = if flag("isoutput") {
            &mut self.outputs
        } else {
            &mut self.variables
        };
        match list.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = value,
            None => list.push((name, value)),
        }
        Vec::new()
    }

    fn issue(&self, label: &str, style: Style, command: &Command) -> Vec<String> {
        let mut lines = self.labelled(label, style, &unescape(command.message));
        let place: Vec<String> = ["sourcepath", "linenumber", "columnnumber"]
            .iter()
            .map_while(|key| command.property(key))
            .map(|value| self.clean_one(&value))
            .collect();
        let code = command.property("code").map(|c| self.clean_one(&c));
        if let Some(first) = lines.first_mut() {
            if !place.is_empty() {
                first.push_str(&format!(" (at {})", place.join(":")));
            }
            if let Some(code) = code {
                first.push_str(&format!(" [{code}]"));
            }
        }
        lines
    }

    fn complete(&self, command: &Command) -> Vec<String> {
        let result = self.clean_one(
            &command
                .property("result")
                .unwrap_or_else(|| "Succeeded".into()),
        );
        let style = match result.to_ascii_lowercase().as_str() {
            "succeeded" => green(),
            "failed" => red(),
            _ => yellow(),
        };
        let mark = self.paint(style, &format!("result: {result}"));
        match self.clean_one(&unescape(command.message)) {
            message if message.is_empty() => vec![mark],
            message => vec![format!("{mark} — {message}")],
        }
    }

    /// The Tests tab: each JUnit file's cases as a table (other formats named). `None` when no
    /// file is named.
    fn publish(&self, command: &Command) -> Option<Vec<String>> {
        let files = command.property("resultFiles")?;
        let kind = command.property("type").unwrap_or_default();
        let title = self.clean_one(&command.property("runTitle").unwrap_or_default());
        let mut lines = Vec::new();
        for file in files.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let shown = self.clean_one(file);
            if !kind.eq_ignore_ascii_case("junit") {
                let kind = self.clean_one(&kind);
                lines.push(format!("test results ({kind}): {shown}"));
                continue;
            }
            match read_junit(Path::new(file)) {
                Ok(cases) => lines.extend(self.table(&title, &cases)),
                Err(why) => lines.extend(self.labelled(
                    "warning:",
                    yellow(),
                    &format!("the test results in {shown} cannot be shown: {why}"),
                )),
            }
        }
        Some(lines)
    }

    fn table(&self, title: &str, cases: &[Case]) -> Vec<String> {
        let count = |o: Outcome| cases.iter().filter(|c| c.outcome == o).count();
        let counts: Vec<String> = [
            Outcome::Passed,
            Outcome::Failed,
            Outcome::Error,
            Outcome::Skipped,
        ]
        .into_iter()
        .filter(|&o| count(o) > 0)
        .map(|o| format!("{} {}", count(o), o.label()))
        .collect();
        let counts = if counts.is_empty() {
            "no test cases".to_string()
        } else {
            counts.join(", ")
        };
        let heading = match title {
            "" => format!("Tests tab: {counts}"),
            title => format!("Tests tab: {title}: {counts}"),
        };
        let mut lines = vec![self.paint(bold(), &heading)];
        let rows: Vec<[String; 4]> = cases
            .iter()
            .take(MAX_TABLE_ROWS)
            .map(|case| {
                [
                    self.cell(&case.suite),
                    self.cell(&case.label()),
                    case.outcome.label().to_string(),
                    case.seconds.map(|s| format!("{s:.1}s")).unwrap_or_default(),
                ]
            })
            .collect();
        let header = ["notebook", "case", "outcome", "duration"].map(String::from);
        let width = |column: usize| {
            std::iter::once(&header)
                .chain(&rows)
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths = [width(0), width(1), width(2)];
        let pad = |text: &str, width: usize| {
            format!("{text}{}", " ".repeat(width - text.chars().count()))
        };
        let line = |row: &[String; 4], outcome: String| {
            format!(
                "{INDENT}{}  {}  {outcome}  {}",
                pad(&row[0], widths[0]),
                pad(&row[1], widths[1]),
                row[3]
            )
            .trim_end()
            .to_string()
        };
        lines.push(self.paint(dim(), &line(&header, pad(&header[2], widths[2]))));
        for (row, case) in rows.iter().zip(cases) {
            let outcome = self.paint(case.outcome.style(), &pad(&row[2], widths[2]));
            lines.push(line(row, outcome));
        }
        if cases.len() > MAX_TABLE_ROWS {
            lines.push(format!(
                "{INDENT}… and {} more (the file has them all)",
                cases.len() - MAX_TABLE_ROWS
            ));
        }
        lines
    }

    /// A line this renderer does not interpret, shown as it came (made plain).
    fn as_is(&self, raw: &str) -> Vec<String> {
        vec![self.paint(dim(), &plain(self.secrets.mask(raw).as_str()))]
    }

    /// `label` before the first line of `text`, the others indented.
    fn labelled(&self, label: &str, style: Style, text: &str) -> Vec<String> {
        let label = self.paint(style, label);
        let lines = self.clean(text);
        if lines.is_empty() {
            return vec![label];
        }
        lines
            .iter()
            .enumerate()
            .map(|(i, line)| match i {
                0 => format!("{label} {line}"),
                _ => format!("{INDENT}{line}"),
            })
            .collect()
    }

    fn once(&mut self, line: String) {
        if self.named.insert(line.clone()) {
            self.beside_the_log.push(line);
        }
    }

    /// Outside text as it may be printed: masked, split into plain lines that cannot issue a
    /// command or pose as a formatting line.
    fn clean(&self, text: &str) -> Vec<String> {
        log_lines(self.secrets.mask(text).as_str())
    }

    fn clean_one(&self, text: &str) -> String {
        self.clean(text).join(" ")
    }

    fn cell(&self, text: &str) -> String {
        crate::text::shorten(&self.clean_one(text), MAX_CELL_CHARS)
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_string()
        }
    }
}

fn bold() -> Style {
    Style::new().bold()
}

fn dim() -> Style {
    Style::new().dimmed()
}

fn red() -> Style {
    Style::new().bold().fg_color(Some(AnsiColor::Red.into()))
}

fn yellow() -> Style {
    Style::new().bold().fg_color(Some(AnsiColor::Yellow.into()))
}

fn green() -> Style {
    Style::new().bold().fg_color(Some(AnsiColor::Green.into()))
}

/// `##[kind]text`: a log formatting line.
fn formatting(raw: &str) -> Option<(&str, &str)> {
    let rest = raw.strip_prefix("##[")?;
    let (kind, text) = rest.split_once(']')?;
    let word = !kind.is_empty()
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    word.then_some((kind, text))
}

/// `area.action key=value;key=value]message`, read as the agent reads it: the first `]` ends
/// the properties, a property without `=` is skipped.
struct Command<'a> {
    name: &'a str,
    properties: Vec<(&'a str, &'a str)>,
    message: &'a str,
}

impl Command<'_> {
    /// A property's value, unescaped (names are case-insensitive; the last one wins).
    fn property(&self, key: &str) -> Option<String> {
        self.properties
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| unescape(v))
    }
}

fn parse_command(rest: &str) -> Option<Command<'_>> {
    let (head, message) = rest.split_once(']')?;
    let (name, properties) = head.split_once(' ').unwrap_or((head, ""));
    let (area, action) = name.split_once('.')?;
    if area.is_empty() || action.is_empty() || action.contains('.') {
        return None;
    }
    let properties = properties
        .split(';')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim(), v))
        .filter(|(k, _)| !k.is_empty())
        .collect();
    Some(Command {
        name,
        properties,
        message,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    Error,
    Skipped,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Error => "error",
            Outcome::Skipped => "skipped",
        }
    }

    fn style(self) -> Style {
        match self {
            Outcome::Passed => green(),
            Outcome::Failed | Outcome::Error => red(),
            Outcome::Skipped => yellow(),
        }
    }
}

/// One `<testcase>`, its texts as the file holds them (cleaned when shown).
#[derive(Debug)]
struct Case {
    suite: String,
    class: String,
    name: String,
    outcome: Outcome,
    seconds: Option<f64>,
}

impl Case {
    /// The case without what the notebook column already says: `Class.test`, or
    /// `(the notebook)` for a notebook that is its own single case.
    fn label(&self) -> String {
        if self.name == self.suite {
            return "(the notebook)".to_string();
        }
        let class = self
            .class
            .strip_prefix(&self.suite)
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(&self.class);
        if class.is_empty() || class == self.suite {
            self.name.clone()
        } else {
            format!("{class}.{}", self.name)
        }
    }
}

/// The cases of a JUnit file: a bounded read, no DTD (so no entity expansion), a node limit.
fn read_junit(path: &Path) -> Result<Vec<Case>, String> {
    let text = read_small_file(path, MAX_JUNIT_BYTES).map_err(|e| e.to_string())?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_JUNIT_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    let document = roxmltree::Document::parse_with_options(&text, options)
        .map_err(|e| format!("it is not well-formed XML ({e})"))?;
    let cases = document
        .root_element()
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|node| {
            let has = |tag| node.children().any(|c| c.has_tag_name(tag));
            let outcome = if has("failure") {
                Outcome::Failed
            } else if has("error") {
                Outcome::Error
            } else if has("skipped") {
                Outcome::Skipped
            } else {
                Outcome::Passed
            };
            let suite = node
                .ancestors()
                .find(|a| a.has_tag_name("testsuite"))
                .and_then(|s| s.attribute("name"));
            let text = |value: Option<&str>| value.unwrap_or_default().trim().to_string();
            Case {
                suite: text(suite),
                class: text(node.attribute("classname")),
                name: text(node.attribute("name")),
                outcome,
                seconds: node
                    .attribute("time")
                    .and_then(|t| t.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0),
            }
        })
        .collect();
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(lines: &[&str]) -> Vec<String> {
        let mut renderer = Renderer::new(false, false);
        let mut out: Vec<String> = lines.iter().flat_map(|l| renderer.line(l)).collect();
        out.extend(renderer.finish_step());
        out
    }

    #[test]
    fn plain_lines_pass_through_and_commands_are_not_printed() {
        assert_eq!(
            render(&[
                "Created repo /Repos/ci/x",
                "",
                "##vso[task.setprogress value=50]half",
                "##vso[task.setsecret]s3cr3t",
            ]),
            ["Created repo /Repos/ci/x", ""]
        );
    }

    #[test]
    fn issues_are_marked_and_their_messages_unescaped() {
        assert_eq!(
            render(&[
                "##vso[task.logissue type=error]50%AZP25 failed%0A  at line 2",
                "##vso[task.logissue type=warning;sourcepath=a%3Bb.py;linenumber=3;code=W1]slow",
                "##[error]plain error",
                "##[warning]plain warning",
            ]),
            [
                "error: 50% failed",
                "    at line 2",
                "warning: slow (at a;b.py:3) [W1]",
                "error: plain error",
                "warning: plain warning",
            ]
        );
    }

    #[test]
    fn colours_only_when_asked() {
        let mut renderer = Renderer::new(true, false);
        let line = renderer
            .line("##vso[task.logissue type=error]boom")
            .join("");
        assert!(
            line.starts_with('\x1b') && line.ends_with("boom"),
            "{line:?}"
        );
        assert_eq!(render(&["##[error]boom"]), ["error: boom"]);
    }

    #[test]
    fn sections_groups_and_debug_lines() {
        assert_eq!(
            render(&[
                "##[section]Results",
                "##[group]trace",
                "Traceback",
                "##[error]inside",
                "##[endgroup]",
                "after",
                "##[debug]hidden",
                "##[command]git pull",
            ]),
            [
                "==> Results",
                "▾ trace",
                "  Traceback",
                "  error: inside",
                "after",
                "git pull"
            ]
        );
        let mut debugging = Renderer::new(false, true);
        assert_eq!(debugging.line("##[debug]shown"), ["debug: shown"]);
    }

    #[test]
    fn variables_are_listed_once_when_the_step_ends() {
        assert_eq!(
            render(&[
                "##vso[task.setvariable variable=runId;isoutput=true;issecret=false]7",
                "##vso[task.setvariable variable=note;isoutput=true]a%3Bb%5Dc%0Ad",
                "##vso[task.setvariable variable=runId;isoutput=true]8",
                "##vso[task.setvariable variable=plain]x",
                "##vso[task.setvariable variable=key;issecret=true]hunter2",
                "then hunter2 is masked",
            ]),
            [
                "then *** is masked",
                "output variables:",
                "  runId = 8",
                "  note = a;b]c d",
                "variables:",
                "  plain = x",
                "  key = ***",
            ]
        );
    }

    #[test]
    fn a_secret_announced_by_the_stream_is_never_shown() {
        assert_eq!(
            render(&[
                "##vso[task.setsecret]tok%3Ben",
                "tok;en in a line",
                "##vso[task.logissue type=error]bad tok;en",
                "##vso[task.setvariable variable=url;isoutput=true]https://x/?t=tok;en",
                "##vso[build.addbuildtag]tok;en",
            ]),
            [
                "*** in a line",
                "error: bad ***",
                "##vso[build.addbuildtag]***",
                "output variables:",
                "  url = https://x/?t=***",
            ]
        );
    }

    #[test]
    fn the_step_result_is_shown() {
        assert_eq!(
            render(&[
                "##vso[task.complete result=Failed]1 of 2 failed",
                "##vso[task.complete result=Succeeded]",
            ]),
            ["result: Failed — 1 of 2 failed", "result: Succeeded"]
        );
    }

    #[test]
    fn summaries_and_attachments_are_named_once() {
        assert_eq!(
            render(&[
                "##vso[task.uploadsummary]/tmp/a%AZP25.md",
                "##vso[task.uploadsummary]/tmp/a%AZP25.md",
                "##vso[task.addattachment type=Distributedtask.Core.Summary;name=run]/tmp/r.md",
                "##vso[task.addattachment type=Distributedtask.Core.Summary;name=run]/tmp/r.md",
            ]),
            [
                "summary: /tmp/a%.md",
                "attachment: run (Distributedtask.Core.Summary): /tmp/r.md",
            ]
        );
    }

    #[test]
    fn escaped_text_stays_escaped() {
        assert_eq!(
            render(&[
                "notebook said **vso[task.complete result=Failed]",
                "**[error]forged",
                "##vso[task.logissue type=error]quoted %0A##vso[task.setsecret]x%0A##[section]y",
                "##vso[task.setvariable variable=out;isoutput=true]%0A##vso[task.complete]",
                "\x1b]0;title\x07\x1b[31mred",
            ]),
            [
                "notebook said **vso[task.complete result=Failed]",
                "**[error]forged",
                "error: quoted ",
                "  **vso[task.setsecret]x",
                "  **[section]y",
                "red",
                "output variables:",
                "  out =  **vso[task.complete]",
            ]
        );
    }

    #[test]
    fn unknown_and_malformed_lines_are_shown_as_they_came() {
        let lines = [
            "##vso[build.addbuildtag]nightly",
            "##vso[task.logissue type=info]fyi",
            "##vso[task.setvariable]no name",
            "##vso[nodot]x",
            "##vso[task.complete result=Failed",
            "##[made-up]x",
            "##[unknown]x",
        ];
        assert_eq!(render(&lines), lines);
    }

    fn publish(path: &Path) -> String {
        format!(
            "##vso[results.publish type=JUnit;mergeResults=false;runTitle=Databricks notebooks (run 7);resultFiles={}]",
            crate::pipeline::escape::escape_property(&path.display().to_string())
        )
    }

    #[test]
    fn a_published_junit_file_is_shown_as_a_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r;1.xml");
        std::fs::write(
            &path,
            r###"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="Databricks notebooks (run 7)">
  <testsuite name="/Repos/ci/p/test/unit" tests="1">
    <testcase classname="databricks" name="/Repos/ci/p/test/unit" time="0.74"/>
  </testsuite>
  <testsuite name="/Repos/ci/p/test/cases" tests="3">
    <testcase classname="/Repos/ci/p/test/cases.Income" name="test_high" time="1.26"/>
    <testcase classname="/Repos/ci/p/test/cases.Income" name="test_low" time="0.5">
      <failure message="x">##vso[task.complete result=Succeeded]</failure>
    </testcase>
    <testcase classname="/Repos/ci/p/test/cases.Income" name="##vso[x]&#10;next"><skipped/></testcase>
  </testsuite>
</testsuites>"###,
        )
        .unwrap();
        assert_eq!(
            render(&[&publish(&path)]),
            [
                "Tests tab: Databricks notebooks (run 7): 2 passed, 1 failed, 1 skipped",
                "  notebook                case                  outcome  duration",
                "  /Repos/ci/p/test/unit   (the notebook)        passed   0.7s",
                "  /Repos/ci/p/test/cases  Income.test_high      passed   1.3s",
                "  /Repos/ci/p/test/cases  Income.test_low       failed   0.5s",
                "  /Repos/ci/p/test/cases  Income.**vso[x] next  skipped",
            ]
        );
    }

    #[test]
    fn a_junit_file_that_cannot_be_read_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.xml");
        let lines = render(&[&publish(&missing)]);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with(&format!(
                "warning: the test results in {} cannot be shown: ",
                missing.display()
            )),
            "{lines:?}"
        );
        let dtd = dir.path().join("dtd.xml");
        std::fs::write(&dtd, "<!DOCTYPE x [<!ENTITY a \"b\">]><testsuites/>").unwrap();
        let lines = render(&[&publish(&dtd)]);
        assert!(lines[0].contains("is not well-formed XML"), "{lines:?}");
        let other = "##vso[results.publish type=NUnit;resultFiles=/tmp/a.xml,/tmp/b.xml]";
        assert_eq!(
            render(&[other]),
            [
                "test results (NUnit): /tmp/a.xml",
                "test results (NUnit): /tmp/b.xml"
            ]
        );
    }

    #[tokio::test]
    async fn what_the_log_prints_renders_without_secrets_or_commands() {
        use std::sync::{Arc, Mutex};

        let raw = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = raw.clone();
        let out: Arc<Mutex<dyn std::io::Write + Send>> = Arc::new(Mutex::new(std::io::sink()));
        let host = crate::host::NativeHost::new(Default::default(), out.clone(), out)
            .with_line_sink(Box::new(move |line| {
                sink.lock().unwrap().push(line.to_string())
            }));
        let log = crate::pipeline::Log::new(
            std::rc::Rc::new(host),
            crate::pipeline::OutputMode::Agent,
            true,
        );
        log.add_secret("t0k%;en");
        log.untrusted("notebook: ##vso[task.setvariable variable=x]t0k%;en\r##[error]forged");
        log.error("failed: t0k%;en ##vso[task.complete result=Succeeded]");
        log.debug("debug ##[section]x");
        log.set_output("note", "a;b]t0k%;en%0A");
        let raw = raw.lock().unwrap().clone();
        assert!(raw.iter().any(|l| l.starts_with("##vso[task.setsecret]")));
        let rendered = render(&raw.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(
            rendered,
            [
                "notebook: **vso[task.setvariable variable=x]***",
                "**[error]forged",
                "error: failed: *** **vso[task.complete result=Succeeded]",
                "output variables:",
                "  note = a;b]***%0A",
            ]
        );
    }
}
