//! Everything the tasks print goes through [`Log`], which shapes it for where it runs: the
//! agent's logging commands in a pipeline, readable lines in a terminal, or nothing but a final
//! JSON document for scripts. Every text takes one path: masked first (raw, before anything
//! transforms it), then split into the lines the agent will see, each made plain and unable to
//! issue commands, then escaped for the logging command that carries it.

use std::rc::Rc;

use super::escape::{escape_message, escape_property, log_lines};
use super::secrets::{Masked, Secrets};
use crate::host::Host;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputMode {
    /// Inside Azure Pipelines: `##vso[...]` commands and `##[group]` lines.
    Agent,
    /// A person at a terminal: plain lines and a live status line.
    Terminal,
    /// A script: human lines go to stderr, stdout gets one JSON document at the end.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskResult {
    Succeeded,
    SucceededWithIssues,
    Failed,
    Canceled,
}

impl TaskResult {
    fn as_str(self) -> &'static str {
        match self {
            TaskResult::Succeeded => "Succeeded",
            TaskResult::SucceededWithIssues => "SucceededWithIssues",
            TaskResult::Failed => "Failed",
            TaskResult::Canceled => "Canceled",
        }
    }
}

pub use super::secrets::MASK;

pub struct Log {
    host: Rc<dyn Host>,
    mode: OutputMode,
    debug: bool,
    secrets: Secrets,
}

impl Log {
    pub fn new(host: Rc<dyn Host>, mode: OutputMode, debug: bool) -> Log {
        Log {
            host,
            mode,
            debug,
            secrets: Secrets::default(),
        }
    }

    pub fn mode(&self) -> OutputMode {
        self.mode
    }

    pub fn debug_enabled(&self) -> bool {
        self.debug
    }

    /// Registers a secret: masked in everything printed from now on, and announced to the
    /// agent so it masks it too. Call before printing anything else.
    pub fn add_secret(&self, secret: &str) {
        if self.secrets.add(secret) && self.mode == OutputMode::Agent {
            self.host
                .write_line(&format!("##vso[task.setsecret]{}", escape_message(secret)));
        }
    }

    /// The registered secrets, for code that masks without printing (the verdict's reasons).
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// `text` with every registered secret masked: what renderers of files (JUnit, summary)
    /// take, so they escape masked values and never mask their own markup.
    pub fn mask(&self, text: &str) -> Masked {
        self.secrets.mask(text)
    }

    /// The lines of `text` as they may be printed: masked, then split where the agent splits
    /// lines (LF, CR, CRLF), each plain (no control characters or escape sequences) and unable
    /// to issue a logging command or pose as a formatting line.
    fn lines(&self, text: &str) -> Vec<String> {
        log_lines(self.mask(text).as_str())
    }

    /// The message of a logging command: its lines made safe as in [`Log::lines`], since the
    /// agent writes each line of an issue's message to the log as a line of its own.
    fn message(&self, text: &str) -> String {
        escape_message(&self.lines(text).join("\n"))
    }

    fn emit(&self, line: &str) {
        match self.mode {
            OutputMode::Json => self.host.write_err_line(line),
            _ => self.host.write_line(line),
        }
    }

    /// One of our own lines (may span several lines).
    pub fn info(&self, text: &str) {
        for line in self.lines(text) {
            self.emit(&line);
        }
    }

    /// Text from outside (notebook output, traces, server messages): masked, and unable to
    /// issue logging commands. The same path as [`Log::info`]: our own lines quote outside
    /// text too, so every line is treated as if it came from outside.
    pub fn untrusted(&self, text: &str) {
        self.info(text);
    }

    pub fn section(&self, title: &str) {
        let title = self.lines(title).join(" ");
        match self.mode {
            OutputMode::Agent => self.emit(&format!("##[section]{title}")),
            _ => self.emit(&format!("==> {title}")),
        }
    }

    pub fn group(&self, title: &str) {
        let title = self.lines(title).join(" ");
        match self.mode {
            OutputMode::Agent => self.emit(&format!("##[group]{title}")),
            _ => self.emit(&format!("--- {title}")),
        }
    }

    pub fn end_group(&self) {
        if self.mode == OutputMode::Agent {
            self.emit("##[endgroup]");
        }
    }

    pub fn warning(&self, text: &str) {
        match self.mode {
            OutputMode::Agent => self.emit(&format!(
                "##vso[task.logissue type=warning]{}",
                self.message(text)
            )),
            _ => self.prefixed("warning: ", text),
        }
    }

    pub fn error(&self, text: &str) {
        match self.mode {
            OutputMode::Agent => self.emit(&format!(
                "##vso[task.logissue type=error]{}",
                self.message(text)
            )),
            _ => self.prefixed("error: ", text),
        }
    }

    fn prefixed(&self, prefix: &str, text: &str) {
        for (i, line) in self.lines(text).iter().enumerate() {
            let lead = if i == 0 { prefix } else { "  " };
            self.emit(&format!("{lead}{line}"));
        }
    }

    /// Shown only in debug mode (`SYSTEM_DEBUG=true`, or `--verbose`).
    pub fn debug(&self, text: &str) {
        if !self.debug {
            return;
        }
        for line in self.lines(text) {
            match self.mode {
                OutputMode::Agent => self.emit(&format!("##[debug]{line}")),
                _ => self.emit(&format!("debug: {line}")),
            }
        }
    }

    /// An output variable for later steps (`<step>.<name>`).
    pub fn set_output(&self, name: &str, value: &str) {
        self.output(name, &self.mask(value));
    }

    /// An output variable holding JSON: each string in it is masked before it is serialized,
    /// so a secret is masked however JSON spells it and the value stays valid JSON.
    pub fn set_output_json(&self, name: &str, value: &serde_json::Value) {
        self.output(name, &self.secrets.json_text(value, false));
    }

    /// The value is handed on as it is, but for its secrets and control characters; it cannot
    /// issue a command either, nor start a line that would (the agent's debug log may show
    /// it).
    fn output(&self, name: &str, value: &Masked) {
        if self.mode == OutputMode::Agent {
            let value = log_lines(value.as_str()).join("\n");
            self.emit(&format!(
                "##vso[task.setvariable variable={};isoutput=true;issecret=false]{}",
                escape_property(name),
                escape_message(&value)
            ));
        } else {
            self.debug(&format!("output {name} = {value}"));
        }
    }

    pub fn progress(&self, percent: u8, text: &str) {
        if self.mode == OutputMode::Agent {
            self.emit(&format!(
                "##vso[task.setprogress value={}]{}",
                percent.min(100),
                self.message(text)
            ));
        }
    }

    /// Publishes a JUnit file to the pipeline's Tests tab.
    pub fn publish_junit(&self, path: &str, title: &str) {
        if self.mode == OutputMode::Agent {
            self.emit(&format!(
                "##vso[results.publish type=JUnit;mergeResults=false;publishRunAttachments=true;runTitle={};resultFiles={}]",
                escape_property(&self.lines(title).join(" ")),
                escape_property(path)
            ));
        }
    }

    /// Attaches a Markdown file to the build summary (the Extensions tab).
    pub fn upload_summary(&self, path: &str) {
        if self.mode == OutputMode::Agent {
            self.emit(&format!(
                "##vso[task.uploadsummary]{}",
                escape_message(path)
            ));
        }
    }

    /// The live status line of a terminal; ignored elsewhere.
    pub fn status(&self, text: Option<&str>) {
        if self.mode == OutputMode::Terminal {
            let text = text.map(|t| self.lines(t).join(" "));
            self.host.status(text.as_deref());
        }
    }

    pub fn complete(&self, result: TaskResult, message: &str) {
        self.status(None);
        if self.mode == OutputMode::Agent {
            self.emit(&format!(
                "##vso[task.complete result={}]{}",
                result.as_str(),
                self.message(message)
            ));
        }
    }

    /// The final JSON document of `--output json` (stdout). Every string in it is masked
    /// before it is serialized, so the document is valid whatever the secrets.
    pub fn json_document(&self, document: &serde_json::Value) {
        if self.mode == OutputMode::Json {
            let text = self.secrets.json_text(document, true);
            for line in text.as_str().lines() {
                self.host.write_line(line);
            }
        }
    }
}
