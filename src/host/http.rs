//! The one place a request leaves the process. Everything above it (retries, the Databricks
//! error envelope, credentials) is written once; below it, each runtime sends the request its
//! own way: reqwest natively, Node's `http`/`https` under the agent (`task/http.js`).
//!
//! Both sides keep the same promises, so the core can rely on them:
//! - the whole attempt, body included, ends by `timeout`, however slowly the answer trickles;
//! - the body is counted while it streams and the read stops past `max_body` bytes, with or
//!   without a `Content-Length`;
//! - redirects are returned as they are, never followed;
//! - a failure comes back as a [`TransportKind`], decided from the runtime's typed error
//!   (error codes, error types), never from the wording of a message.

use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use futures::future::LocalBoxFuture;

#[derive(Clone, Debug)]
pub struct HttpRequest {
    pub method: &'static str,
    /// Absolute URL, query included.
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Vec<u8>>,
    /// For the whole attempt: connecting, sending, headers and the complete body.
    pub timeout: Duration,
    /// The most body bytes read; more is [`TransportKind::TooLarge`].
    pub max_body: usize,
}

#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why no (complete) answer came, as far as it matters for retrying and for the hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// The host name does not exist: a typo, not a passing fault.
    UnknownHost,
    /// The agent's proxy did not accept its credentials for a tunnel.
    ProxyAuthentication,
    /// The server's certificate is not trusted (unknown issuer, expired, wrong name): it will
    /// not heal by waiting.
    Certificate,
    /// The attempt did not finish within its timeout.
    TimedOut,
    /// The answer was larger than the request allowed.
    TooLarge,
    /// Refused, reset, a temporary DNS failure, a broken body: worth another try.
    Other,
}

impl TransportKind {
    /// The names `task/http.js` uses for the kinds (the contract between the two runtimes).
    pub fn from_name(name: &str) -> TransportKind {
        match name {
            "unknown-host" => TransportKind::UnknownHost,
            "proxy-authentication" => TransportKind::ProxyAuthentication,
            "certificate" => TransportKind::Certificate,
            "timed-out" => TransportKind::TimedOut,
            "too-large" => TransportKind::TooLarge,
            _ => TransportKind::Other,
        }
    }

    /// Whether waiting and trying again can help.
    pub fn may_heal(self) -> bool {
        matches!(self, TransportKind::TimedOut | TransportKind::Other)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportError {
    pub kind: TransportKind,
    pub message: String,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type HttpResult = Result<HttpResponse, TransportError>;

/// Sends one request. Dropping the returned future abandons the request (its connection is
/// closed): that is how cancellation and deadlines reach the network.
pub trait HttpTransport {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<'static, HttpResult>;
}

pub type Transport = Rc<dyn HttpTransport>;

/// The limits every body read is held to, as one message for both runtimes.
pub fn too_large(max_body: usize) -> TransportError {
    TransportError {
        kind: TransportKind::TooLarge,
        message: format!("the answer is larger than {} MB", max_body >> 20),
    }
}

pub fn timed_out(timeout: Duration) -> TransportError {
    TransportError {
        kind: TransportKind::TimedOut,
        message: format!(
            "no complete answer within {}s",
            crate::text::seconds(timeout)
        ),
    }
}
