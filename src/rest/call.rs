//! One call to a JSON API, whatever the API: attempts through the transport, each held to the
//! per-request timeout and the step's deadline, and the retry loop around them. What differs
//! between APIs (where the credential comes from, how errors are written) is handed in.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::answer::{decode_answer, redirect_message};
use super::error::{status_and_code, ApiError, RequestLabel};
use super::retry::{is_retryable, parse_retry_after, RetryPolicy};
use crate::host::http::{HttpRequest, Transport, TransportKind};
use crate::host::proxy::ProxySettings;
use crate::host::Host;
use crate::text::{seconds, shorten};

/// Largest answer body we read; a run's notebook output is at most 5 MB.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Something worth telling the user while it happens (e.g. a retry).
pub type Notice = Rc<dyn Fn(&str)>;

/// Masks every secret the step knows in a text (the log's masker).
pub type Masker = Rc<dyn Fn(&str) -> String>;

/// How an API writes its errors: the error code and message of an error answer, from its
/// status and body.
pub type Envelope = fn(u16, &str) -> (Option<String>, String);

/// The HTTP methods the endpoints use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request as the caller builds it; `path` names it in messages.
#[derive(Clone)]
pub struct Request {
    pub method: Method,
    /// Absolute, query included.
    pub url: String,
    pub path: String,
    /// Besides `user-agent`, `accept` and `content-type`, which every call sends. The values
    /// of [`SECRET_HEADERS`] are credentials: hidden wherever a server repeats them.
    pub headers: Vec<(&'static str, String)>,
    /// JSON, or a form that may hold a client secret or an assertion.
    pub body: Option<Body>,
}

// By hand: header values and bodies may be credentials, and never reach a debug line.
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(name, _)| *name).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &headers)
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

/// A request body and its media type.
#[derive(Clone)]
pub struct Body {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

impl Body {
    pub fn json(bytes: Vec<u8>) -> Body {
        Body {
            content_type: "application/json",
            bytes,
        }
    }

    /// A file's bytes, as the Files API takes an upload.
    pub fn file(bytes: Vec<u8>) -> Body {
        Body {
            content_type: "application/octet-stream",
            bytes,
        }
    }

    /// An `application/x-www-form-urlencoded` body (what OAuth token endpoints take).
    pub fn form(pairs: &[(&str, &str)]) -> Body {
        let text = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        Body {
            content_type: "application/x-www-form-urlencoded",
            bytes: text.into_bytes(),
        }
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Body({}, {} bytes)", self.content_type, self.bytes.len())
    }
}

/// Headers whose values are credentials: hidden wherever a server repeats them.
pub const SECRET_HEADERS: [&str; 3] = [
    "authorization",
    "x-databricks-azure-sp-management-token",
    "x-identity-header",
];

impl Request {
    pub fn label(&self) -> RequestLabel {
        RequestLabel {
            method: self.method.as_str(),
            path: self.path.clone(),
        }
    }
}

/// A success answer, not yet read.
pub struct Answer {
    request: RequestLabel,
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
    /// The credential sent, hidden wherever the answer is quoted.
    credentials: Vec<String>,
}

/// Sends requests for one step: the transport (and the agent's proxy), the retry policy, the
/// step's deadline, and where notices, traces and masking go.
pub struct Caller {
    transport: Transport,
    user_agent: String,
    policy: RetryPolicy,
    host: Rc<dyn Host>,
    jitter: RefCell<fastrand::Rng>,
    /// On the host's clock: no attempt starts or runs past it (the step's time limit).
    deadline: Cell<Option<Duration>>,
    notice: Option<Notice>,
    trace: Option<Notice>,
    masker: Option<Masker>,
}

impl Answer {
    /// The body as it came, for answers that are files rather than JSON.
    pub fn into_bytes(self) -> Vec<u8> {
        self.body
    }
}

impl Caller {
    pub fn new(user_agent: String, policy: RetryPolicy, host: Rc<dyn Host>) -> Caller {
        let seed = host.unix_millis();
        Caller {
            transport: host.transport(None),
            user_agent,
            policy,
            host,
            jitter: RefCell::new(fastrand::Rng::with_seed(seed)),
            deadline: Cell::new(None),
            notice: None,
            trace: None,
            masker: None,
        }
    }

    pub fn host(&self) -> &dyn Host {
        &*self.host
    }

    /// Sends every request through the agent's proxy.
    pub fn set_proxy(&mut self, proxy: &ProxySettings) {
        self.transport = self.host.transport(Some(proxy));
    }

    /// Sends every request through `transport` (tests stand in for the network this way).
    pub fn set_transport(&mut self, transport: Transport) {
        self.transport = transport;
    }

    pub fn set_deadline(&self, deadline: Option<Duration>) {
        self.deadline.set(deadline);
    }

    pub fn set_masker(&mut self, masker: Masker) {
        self.masker = Some(masker);
    }

    pub fn set_notice(&mut self, notice: Notice) {
        self.notice = Some(notice);
    }

    pub fn set_trace(&mut self, trace: Notice) {
        self.trace = Some(trace);
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retry budget or the step's
    /// deadline runs out. Before each retry, `reconcile` may find that the failed attempt took
    /// effect after all (its answer was lost) and supply the result instead of sending again.
    pub async fn retrying<T, A, AF, R, RF>(
        &self,
        request: &RequestLabel,
        mut attempt: A,
        mut reconcile: R,
    ) -> Result<T, ApiError>
    where
        A: FnMut() -> AF,
        AF: Future<Output = Result<T, ApiError>>,
        R: FnMut() -> RF,
        RF: Future<Output = Option<T>>,
    {
        let started = self.host.elapsed();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let error = match attempt().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let delay = self.backoff(request, attempts, error, started)?;
            self.host.sleep(delay).await;
            if let Some(value) = reconcile().await {
                return Ok(value);
            }
        }
    }

    /// After failed attempt number `attempts`: how long to wait before the next one, or the
    /// error to give up with (not worth retrying, budget spent, deadline reached).
    fn backoff(
        &self,
        request: &RequestLabel,
        attempts: u32,
        error: ApiError,
        started: Duration,
    ) -> Result<Duration, ApiError> {
        if !is_retryable(&error) {
            return Err(error);
        }
        let elapsed = self.host.elapsed().saturating_sub(started);
        let jitter = self.jitter.borrow_mut().f64();
        let Some(delay) = self.policy.delay_after(attempts, &error, elapsed, jitter) else {
            return Err(ApiError::GaveUp {
                attempts,
                elapsed,
                last: Box::new(error),
            });
        };
        let now = self.host.elapsed();
        if self.deadline.get().is_some_and(|d| now + delay >= d) {
            return Err(ApiError::OutOfTime {
                request: request.clone(),
                last: Some(Box::new(error)),
            });
        }
        if let Some(notice) = &self.notice {
            notice(&format!(
                "{request}: {}; retrying in {}s (attempt {})",
                shorten(&retry_reason(&error), 200),
                seconds(delay),
                attempts + 1
            ));
        }
        Ok(delay)
    }

    /// One attempt, without retries: the answer read as `T`, or the error `envelope` reads.
    pub async fn attempt<T: DeserializeOwned>(
        &self,
        request: Request,
        envelope: Envelope,
    ) -> Result<T, ApiError> {
        let started = self.host.elapsed();
        let label = request.label();
        let exchanged = self.exchange(request, envelope).await;
        self.read_traced(&label, started, exchanged)
    }

    /// Ends an attempt that started at `started`: reads its answer as `T`, and tells the trace
    /// how it went (a decode error included).
    pub fn read_traced<T: DeserializeOwned>(
        &self,
        request: &RequestLabel,
        started: Duration,
        exchanged: Result<Answer, ApiError>,
    ) -> Result<T, ApiError> {
        let result = exchanged.and_then(|answer| self.read(answer));
        self.traced(request, started, result.as_ref().err());
        result
    }

    /// Reads a success answer as `T`: the only part of an attempt written per answer type.
    fn read<T: DeserializeOwned>(&self, answer: Answer) -> Result<T, ApiError> {
        let hide = |text: &str| self.hide_secrets(text, &answer.credentials);
        decode_answer(
            &answer.body,
            answer.status,
            answer.content_type.as_deref(),
            &hide,
        )
        .map_err(|message| ApiError::Decode {
            request: answer.request,
            message,
        })
    }

    /// Tells the trace (debug lines) how an attempt went.
    pub fn traced(&self, request: &RequestLabel, started: Duration, error: Option<&ApiError>) {
        let Some(trace) = &self.trace else { return };
        let ms = self.host.elapsed().saturating_sub(started).as_millis();
        let outcome = match error {
            None => "ok".to_string(),
            Some(ApiError::Http { status, .. }) => format!("HTTP {status}"),
            Some(e) => e.message().to_string(),
        };
        trace(&format!("{request}: {outcome} in {ms} ms"));
    }

    /// Sends one request and returns a success answer unread, or the error: no answer, a
    /// redirect, or an error status read with `envelope`.
    pub async fn exchange(&self, request: Request, envelope: Envelope) -> Result<Answer, ApiError> {
        let label = request.label();
        let body_bytes = request.body.as_ref().map_or(0, |b| b.bytes.len());
        let Some(timeout) = self.attempt_timeout(body_bytes) else {
            return Err(ApiError::OutOfTime {
                request: label,
                last: None,
            });
        };
        let credentials: Vec<String> = request
            .headers
            .iter()
            .filter(|(name, _)| {
                SECRET_HEADERS
                    .iter()
                    .any(|secret| name.eq_ignore_ascii_case(secret))
            })
            .flat_map(|(_, value)| {
                let scheme_free = value.split_once(' ').map(|(_, v)| v.to_string());
                std::iter::once(value.clone()).chain(scheme_free)
            })
            .filter(|value| !value.is_empty())
            .collect();
        let hide = |text: &str| self.hide_secrets(text, &credentials);
        let mut headers = request.headers;
        headers.push(("user-agent", self.user_agent.clone()));
        headers.push(("accept", "application/json".to_string()));
        if let Some(body) = &request.body {
            headers.push(("content-type", body.content_type.to_string()));
        }
        let sent = self.transport.send(HttpRequest {
            method: request.method.as_str(),
            url: request.url,
            headers,
            body: request.body.map(|body| body.bytes),
            timeout,
            max_body: MAX_BODY_BYTES,
        });
        let response = match sent.await {
            Ok(response) => response,
            Err(e) if e.kind == TransportKind::TooLarge => {
                return Err(ApiError::Decode {
                    request: label,
                    message: e.message,
                })
            }
            Err(e) => {
                return Err(ApiError::Transport {
                    request: label,
                    kind: e.kind,
                    message: hide(&e.message),
                })
            }
        };
        let status = response.status;
        if (300..400).contains(&status) {
            return Err(ApiError::Http {
                request: label,
                status,
                error_code: None,
                message: redirect_message(response.header("location").map(hide)),
                retry_after: None,
            });
        }
        if !(200..300).contains(&status) {
            let (error_code, message) =
                envelope(status, &hide(&String::from_utf8_lossy(&response.body)));
            return Err(ApiError::Http {
                request: label,
                status,
                error_code,
                message,
                retry_after: response.header("retry-after").and_then(parse_retry_after),
            });
        }
        Ok(Answer {
            request: label,
            status,
            content_type: response.header("content-type").map(str::to_string),
            body: response.body,
            credentials,
        })
    }

    /// How long the next attempt may take: the per-request timeout (plus the time to send a
    /// large body at a slow pace), cut to what is left before the step's deadline; `None`
    /// once the deadline has passed.
    fn attempt_timeout(&self, body_bytes: usize) -> Option<Duration> {
        let timeout = self.policy.request_timeout + sending_time(body_bytes);
        match self.deadline.get() {
            None => Some(timeout),
            Some(deadline) => {
                let left = deadline.saturating_sub(self.host.elapsed());
                (!left.is_zero()).then(|| timeout.min(left))
            }
        }
    }

    /// The credential sent and every registered secret, wherever a server repeats them (an
    /// error page, a redirect), are hidden before the text is shortened for a message: a cut
    /// would leave part of one readable, where masking the printed line could no longer find it.
    fn hide_secrets(&self, text: &str, credentials: &[String]) -> String {
        let mut text = text.to_string();
        for credential in credentials {
            if text.contains(credential.as_str()) {
                text = text.replace(credential.as_str(), "***");
            }
        }
        match &self.masker {
            Some(mask) => mask(&text),
            None => text,
        }
    }
}

/// The slowest pace an upload is allowed: 256 KiB/s.
const SLOWEST_UPLOAD_BYTES_PER_SECOND: u64 = 256 * 1024;

/// Time to send `bytes` at the slowest pace allowed (nothing for ordinary requests).
fn sending_time(bytes: usize) -> Duration {
    Duration::from_secs(bytes as u64 / SLOWEST_UPLOAD_BYTES_PER_SECOND)
}

fn retry_reason(error: &ApiError) -> String {
    match error {
        ApiError::Http {
            status,
            error_code,
            message,
            ..
        } => format!("{}: {message}", status_and_code(*status, error_code)),
        other => other.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Caller, Method, Request};
    use crate::rest::scripted::{fast_retries, test_host, Scripted};
    use crate::rest::ApiError;

    /// How Microsoft Entra writes its errors, for instance.
    fn oauth_envelope(_status: u16, body: &str) -> (Option<String>, String) {
        let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let text = |name: &str| value[name].as_str().map(str::to_string);
        (text("error"), text("error_description").unwrap_or_default())
    }

    #[tokio::test]
    async fn another_api_gets_the_same_retries_and_its_own_error_envelope() {
        let (transport, seen) = Scripted::new(&[503, 400], |status, _| match status {
            200 => r#"{"access_token":"x"}"#.into(),
            _ => format!(
                r#"{{"error":"invalid_client","error_description":"AADSTS7000215 ({status})"}}"#
            ),
        });
        let mut caller = Caller::new("test".into(), fast_retries(), test_host());
        caller.set_transport(transport);
        let request = Request {
            method: Method::Post,
            url: "https://login.example/tenant/oauth2/v2.0/token".into(),
            path: "/tenant/oauth2/v2.0/token".into(),
            headers: Vec::new(),
            body: None,
        };
        let result: Result<serde_json::Value, ApiError> = caller
            .retrying(
                &request.label(),
                || caller.attempt(request.clone(), oauth_envelope),
                || async { None },
            )
            .await;
        let error = result.unwrap_err();
        // The 503 was retried; the 400 is final, read with the envelope handed in.
        assert_eq!(seen.borrow().len(), 2);
        assert_eq!(error.status(), Some(400));
        assert_eq!(error.error_code(), Some("invalid_client"));
        assert_eq!(error.message(), "AADSTS7000215 (400)");
    }

    #[test]
    fn a_request_never_shows_its_credentials_or_body_in_debug() {
        let request = Request {
            method: Method::Post,
            url: "https://login.example/t/oauth2/v2.0/token?x=secret-in-query".into(),
            path: "/t/oauth2/v2.0/token".into(),
            headers: vec![("authorization", "Bearer secret-token".into())],
            body: Some(super::Body::form(&[("client_secret", "secret-value")])),
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(
            shown.contains("authorization") && shown.contains("x-www-form-urlencoded"),
            "{shown}"
        );
    }
}
