//! Everything the tasks print goes through [`Log`], which shapes it for where it runs: the
//! agent's logging commands in a pipeline, readable lines in a terminal, or nothing but a final
//! JSON document for scripts. It masks every registered secret in every line.

use std::cell::RefCell;
use std::rc::Rc;

use super::escape::{escape_message, escape_property, neutralize};
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

pub const MASK: &str = "***";

pub struct Log {
    host: Rc<dyn Host>,
    mode: OutputMode,
    debug: bool,
    secrets: RefCell<Vec<String>>,
}

impl Log {
    pub fn new(host: Rc<dyn Host>, mode: OutputMode, debug: bool) -> Log {
        Log {
            host,
            mode,
            debug,
            secrets: RefCell::new(Vec::new()),
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
        if secret.is_empty() || self.secrets.borrow().iter().any(|s| s == secret) {
            return;
        }
        if self.mode == OutputMode::Agent {
            self.host
                .write_line(&format!("##vso[task.setsecret]{}", escape_message(secret)));
        }
        // Longest first, so a secret containing another is masked whole.
        let mut secrets = self.secrets.borrow_mut();
        let at = secrets.partition_point(|s| s.len() >= secret.len());
        secrets.insert(at, secret.to_string());
    }

    /// Masked, and unable to issue a logging command anywhere in the text (the agent finds
    /// `##vso[` anywhere in a line, even inside another command's message).
    fn clean(&self, text: &str) -> String {
        self.mask(text).replace("##vso[", "**vso[")
    }

    pub fn mask(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in self.secrets.borrow().iter() {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), MASK);
            }
        }
        text
    }

    fn emit(&self, line: &str) {
        match self.mode {
            OutputMode::Json => self.host.write_err_line(line),
            _ => self.host.write_line(line),
        }
    }

    /// One of our own lines (may span several lines).
    pub fn info(&self, text: &str) {
        for line in self.mask(text).lines() {
            self.emit(&neutralize(line));
        }
    }

    /// Text from outside (notebook output, traces, server messages): masked, and unable to
    /// issue logging commands.
    pub fn untrusted(&self, text: &str) {
        self.info(text);
    }

    pub fn section(&self, title: &str) {
        let title = neutralize(&self.clean(title));
        match self.mode {
            OutputMode::Agent => self.emit(&format!("##[section]{title}")),
            _ => self.emit(&format!("==> {title}")),
        }
    }

    pub fn group(&self, title: &str) {
        let title = neutralize(&self.clean(title));
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
        let text = self.clean(text);
        match self.mode {
            OutputMode::Agent => self.emit(&format!(
                "##vso[task.logissue type=warning]{}",
                escape_message(&text)
            )),
            _ => self.prefixed("warning: ", &text),
        }
    }

    pub fn error(&self, text: &str) {
        let text = self.clean(text);
        match self.mode {
            OutputMode::Agent => self.emit(&format!(
                "##vso[task.logissue type=error]{}",
                escape_message(&text)
            )),
            _ => self.prefixed("error: ", &text),
        }
    }

    fn prefixed(&self, prefix: &str, text: &str) {
        for (i, line) in text.lines().enumerate() {
            let lead = if i == 0 { prefix } else { "  " };
            self.emit(&neutralize(&format!("{lead}{line}")));
        }
    }

    /// Shown only in debug mode (`SYSTEM_DEBUG=true`, or `--verbose`).
    pub fn debug(&self, text: &str) {
        if !self.debug {
            return;
        }
        for line in self.mask(text).lines() {
            let line = neutralize(line);
            match self.mode {
                OutputMode::Agent => self.emit(&format!("##[debug]{line}")),
                _ => self.emit(&format!("debug: {line}")),
            }
        }
    }

    /// An output variable for later steps (`<step>.<name>`).
    pub fn set_output(&self, name: &str, value: &str) {
        if self.mode == OutputMode::Agent {
            self.emit(&format!(
                "##vso[task.setvariable variable={};isoutput=true;issecret=false]{}",
                escape_property(name),
                escape_message(&self.clean(value))
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
                escape_message(&self.clean(text))
            ));
        }
    }

    /// Publishes a JUnit file to the pipeline's Tests tab.
    pub fn publish_junit(&self, path: &str, title: &str) {
        if self.mode == OutputMode::Agent {
            self.emit(&format!(
                "##vso[results.publish type=JUnit;mergeResults=false;publishRunAttachments=true;runTitle={};resultFiles={}]",
                escape_property(&self.clean(title)),
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
            self.host.status(text.map(|t| self.mask(t)).as_deref());
        }
    }

    pub fn complete(&self, result: TaskResult, message: &str) {
        self.status(None);
        if self.mode == OutputMode::Agent {
            self.emit(&format!(
                "##vso[task.complete result={}]{}",
                result.as_str(),
                escape_message(&self.clean(message))
            ));
        }
    }

    /// The final JSON document of `--output json` (stdout, masked).
    pub fn json_document(&self, document: &serde_json::Value) {
        if self.mode == OutputMode::Json {
            let text = serde_json::to_string_pretty(document).expect("JSON values serialize");
            for line in self.mask(&text).lines() {
                self.host.write_line(line);
            }
        }
    }
}
