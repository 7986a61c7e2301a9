//! Typed errors of a REST call, whatever the API. They name the request (method and path) and
//! never carry a credential: it travels only in the `Authorization` header, which no error
//! formats.

use std::fmt;
use std::time::Duration;

pub use crate::host::http::TransportKind;

/// Which request failed, for messages: `GET /api/2.2/jobs/runs/get`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLabel {
    pub method: &'static str,
    pub path: String,
}

impl fmt::Display for RequestLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an error status.
    #[error("{request} failed: {}: {message}", status_and_code(*status, error_code))]
    Http {
        request: RequestLabel,
        status: u16,
        error_code: Option<String>,
        message: String,
        retry_after: Option<Duration>,
    },
    /// No answer: unknown host, connection refused or reset, timeout, broken body.
    #[error("{request} failed: {message}")]
    Transport {
        request: RequestLabel,
        message: String,
        kind: TransportKind,
    },
    /// A success status with a body we could not read.
    #[error("{request} returned an unreadable answer: {message}")]
    Decode {
        request: RequestLabel,
        message: String,
    },
    /// The step's time limit (`timeoutMinutes`) came before an answer; `last` is the failure
    /// that was about to be retried, if any.
    #[error("{request}: the step's time limit was reached{}", last.as_ref().map(|l| format!(" (last attempt: {})", l.message())).unwrap_or_default())]
    OutOfTime {
        request: RequestLabel,
        last: Option<Box<ApiError>>,
    },
    /// Signing in failed: an identity provider refused, or could not be asked. The message
    /// is written for the user (the provider's code translated) and names what to fix.
    #[error("{message}")]
    SignIn {
        message: String,
        hint: Option<String>,
    },
    /// A failure with what to check, given by the part that knows more than the status (the
    /// credential, when the workspace refuses it).
    #[error("{error}")]
    Hinted { error: Box<ApiError>, hint: String },
    /// The retry budget ran out; `last` is the final failure.
    #[error("{last} (gave up after {attempts} attempts over {}s)", elapsed.as_secs())]
    GaveUp {
        attempts: u32,
        elapsed: Duration,
        last: Box<ApiError>,
    },
}

/// `HTTP 400 INVALID_PARAMETER_VALUE`; a code that only repeats the status (Databricks
/// answers a bad token with `"error_code": "403"`) is left out.
pub(crate) fn status_and_code(status: u16, code: &Option<String>) -> String {
    match code.as_deref() {
        Some(code) if code != status.to_string() => format!("HTTP {status} {code}"),
        _ => format!("HTTP {status}"),
    }
}

impl ApiError {
    /// The innermost failure (unwrapping `GaveUp`).
    pub fn root(&self) -> &ApiError {
        match self {
            ApiError::GaveUp { last, .. } => last.root(),
            ApiError::Hinted { error, .. } => error.root(),
            other => other,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self.root() {
            ApiError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn error_code(&self) -> Option<&str> {
        match self.root() {
            ApiError::Http { error_code, .. } => error_code.as_deref(),
            _ => None,
        }
    }

    pub fn message(&self) -> &str {
        match self.root() {
            ApiError::Http { message, .. }
            | ApiError::Transport { message, .. }
            | ApiError::Decode { message, .. }
            | ApiError::SignIn { message, .. } => message,
            ApiError::OutOfTime { .. } => "the step's time limit was reached",
            ApiError::GaveUp { .. } | ApiError::Hinted { .. } => {
                unreachable!("root() unwraps GaveUp and Hinted")
            }
        }
    }
}
