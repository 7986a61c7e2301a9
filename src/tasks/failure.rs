//! How a task fails: a kind (which decides the exit code), a message and hints.

use crate::databricks::ApiError;
use crate::pipeline::{InputError, Log};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// A notebook failed, timed out on the server, was cancelled or skipped.
    Tests,
    /// Bad input, caught before any request.
    Input,
    /// Databricks refused a request, or could not be reached.
    Api,
    /// The client-side deadline (`timeoutMinutes`) passed; the run was cancelled.
    Timeout,
    /// The pipeline was cancelled (SIGINT/SIGTERM); the run was cancelled.
    Canceled,
}

impl FailureKind {
    /// The exit codes documented in the README.
    pub fn exit_code(self) -> i32 {
        match self {
            FailureKind::Tests => 1,
            FailureKind::Input => 2,
            FailureKind::Api => 3,
            FailureKind::Timeout => 4,
            FailureKind::Canceled => 130,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Tests => "tests",
            FailureKind::Input => "input",
            FailureKind::Api => "api",
            FailureKind::Timeout => "timeout",
            FailureKind::Canceled => "canceled",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
    pub hints: Vec<String>,
    /// Extra fields for the JSON document (e.g. the run's results).
    pub details: Option<serde_json::Value>,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
            hints: Vec::new(),
            details: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hints.push(hint.into());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Failure {
        self.details = Some(details);
        self
    }

    /// A failed request, with what we were doing when it failed.
    pub fn api(doing: &str, error: ApiError) -> Failure {
        let mut failure = Failure::new(FailureKind::Api, format!("{doing}: {error}"));
        if let Some(hint) = error.hint() {
            failure = failure.hint(hint);
        }
        failure
    }

    pub fn report(&self, log: &Log) {
        let mut text = self.message.clone();
        for hint in &self.hints {
            text.push_str("\nhint: ");
            text.push_str(hint);
        }
        log.error(&text);
    }
}

impl From<InputError> for Failure {
    fn from(error: InputError) -> Failure {
        let mut failure = Failure::new(FailureKind::Input, error.headline());
        if let Some(hint) = error.hint {
            failure = failure.hint(hint);
        }
        failure
    }
}
