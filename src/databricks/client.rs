//! The HTTP side of the REST client: authentication, one request, and the retry loop.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{html_page_title, parse_error_body, status_and_code, ApiError, RequestLabel};
use super::retry::{is_retryable, parse_retry_after, RetryPolicy};
use super::workspace_url::WorkspaceUrl;
use crate::host::http::{HttpRequest, Transport, TransportKind};
use crate::host::proxy::ProxySettings;
use crate::host::Host;
use crate::text::{seconds, shorten};

/// Largest answer body we read; a run's notebook output is at most 5 MB.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Something worth telling the user while it happens (e.g. a retry).
pub type Notice = Rc<dyn Fn(&str)>;

/// The HTTP methods the endpoints use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
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

pub struct Client {
    transport: Transport,
    base: WorkspaceUrl,
    token: String,
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

/// Masks every secret the step knows in a text (the log's masker).
pub type Masker = Rc<dyn Fn(&str) -> String>;

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Deliberately without the token.
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// `databricks-azdo/<version>`, plus `cicd/azure-devops` inside a pipeline, as the SDKs do.
pub fn user_agent(in_pipeline: bool) -> String {
    let mut agent = format!("databricks-azdo/{}", env!("CARGO_PKG_VERSION"));
    if in_pipeline {
        agent.push_str(" cicd/azure-devops");
    }
    agent
}

impl Client {
    pub fn new(
        base: WorkspaceUrl,
        token: String,
        user_agent: String,
        policy: RetryPolicy,
        host: Rc<dyn Host>,
    ) -> Client {
        let seed = host.unix_millis();
        Client {
            transport: host.transport(None),
            base,
            token,
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

    /// Sends every request through the agent's proxy.
    pub fn with_proxy(mut self, proxy: &ProxySettings) -> Client {
        self.transport = self.host.transport(Some(proxy));
        self
    }

    /// Bounds every request from now on, retries included, by `deadline` on the host's clock
    /// (`None`: no bound beyond the retry budget). A request that would pass it fails with
    /// [`ApiError::OutOfTime`].
    pub fn set_deadline(&self, deadline: Option<Duration>) {
        self.deadline.set(deadline);
    }

    /// Masks server texts with `masker` before they are shortened into errors and notices.
    pub fn with_masker(mut self, masker: Masker) -> Client {
        self.masker = Some(masker);
        self
    }

    pub fn with_notice(mut self, notice: Notice) -> Client {
        self.notice = Some(notice);
        self
    }

    /// Told about every attempt (method, path, status, time): for debug logs.
    pub fn with_trace(mut self, trace: Notice) -> Client {
        self.trace = Some(trace);
        self
    }

    pub fn base(&self) -> &WorkspaceUrl {
        &self.base
    }

    pub fn host(&self) -> &dyn Host {
        &*self.host
    }

    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ApiError> {
        self.call(Method::Get, path, query, None::<&()>).await
    }

    pub(crate) async fn send<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.call(method, path, &[], Some(body)).await
    }

    async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let body = body.map(|b| serde_json::to_vec(b).expect("request bodies serialize"));
        self.retrying(
            &method,
            path,
            || self.attempt(method, path, query, body.clone()),
            || async { None },
        )
        .await
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retry budget runs out.
    /// Before each retry, `reconcile` may find that the failed attempt took effect after all
    /// (its answer was lost) and supply the result instead of sending again.
    pub(crate) async fn retrying<T, A, AF, R, RF>(
        &self,
        method: &Method,
        path: &str,
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
                    request: RequestLabel {
                        method: method.as_str(),
                        path: path.to_string(),
                    },
                    last: Some(Box::new(error)),
                });
            }
            if let Some(notice) = &self.notice {
                notice(&format!(
                    "{method} {path}: {}; retrying in {}s (attempt {})",
                    shorten(&retry_reason(&error), 200),
                    seconds(delay),
                    attempts + 1
                ));
            }
            self.host.sleep(delay).await;
            if let Some(value) = reconcile().await {
                return Ok(value);
            }
        }
    }

    pub(crate) async fn attempt<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<T, ApiError> {
        let started = self.host.elapsed();
        let label = format!("{method} {path}");
        let result = self.attempt_untraced(method, path, query, body).await;
        if let Some(trace) = &self.trace {
            let ms = self.host.elapsed().saturating_sub(started).as_millis();
            let outcome = match &result {
                Ok(_) => "ok".to_string(),
                Err(ApiError::Http { status, .. }) => format!("HTTP {status}"),
                Err(e) => e.message().to_string(),
            };
            trace(&format!("{label}: {outcome} in {ms} ms"));
        }
        result
    }

    async fn attempt_untraced<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<T, ApiError> {
        let request = RequestLabel {
            method: method.as_str(),
            path: path.to_string(),
        };
        let Some(timeout) = self.attempt_timeout() else {
            return Err(self.out_of_time(request));
        };
        let mut url = self.base.join(path);
        if !query.is_empty() {
            url.push('?');
            url.push_str(
                &url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query)
                    .finish(),
            );
        }
        let mut headers = vec![
            ("authorization", format!("Bearer {}", self.token)),
            ("user-agent", self.user_agent.clone()),
            ("accept", "application/json".to_string()),
        ];
        if body.is_some() {
            headers.push(("content-type", "application/json".to_string()));
        }
        let sent = self.transport.send(HttpRequest {
            method: method.as_str(),
            url,
            headers,
            body,
            timeout,
            max_body: MAX_BODY_BYTES,
        });
        let response = match sent.await {
            Ok(response) => response,
            Err(e) if e.kind == TransportKind::TooLarge => {
                return Err(ApiError::Decode {
                    request,
                    message: e.message,
                })
            }
            Err(e) => {
                return Err(ApiError::Transport {
                    request,
                    kind: e.kind,
                    message: self.hide_secrets(&e.message),
                })
            }
        };
        let status = response.status;
        let text = || self.hide_secrets(&String::from_utf8_lossy(&response.body));
        if (300..400).contains(&status) {
            return Err(ApiError::Http {
                request,
                status,
                error_code: None,
                message: redirect_message(
                    response.header("location").map(|l| self.hide_secrets(l)),
                ),
                retry_after: None,
            });
        }
        if !(200..300).contains(&status) {
            let (error_code, message) = parse_error_body(status, &text());
            return Err(ApiError::Http {
                request,
                status,
                error_code,
                message,
                retry_after: response.header("retry-after").and_then(parse_retry_after),
            });
        }
        decode_answer(
            &response.body,
            status,
            response.header("content-type"),
            |t| self.hide_secrets(t),
        )
        .map_err(|message| ApiError::Decode { request, message })
    }

    /// How long the next attempt may take: the per-request timeout, cut to what is left
    /// before the step's deadline; `None` once the deadline has passed.
    fn attempt_timeout(&self) -> Option<Duration> {
        let timeout = self.policy.request_timeout;
        match self.deadline.get() {
            None => Some(timeout),
            Some(deadline) => {
                let left = deadline.saturating_sub(self.host.elapsed());
                (!left.is_zero()).then(|| timeout.min(left))
            }
        }
    }

    fn out_of_time(&self, request: RequestLabel) -> ApiError {
        ApiError::OutOfTime {
            request,
            last: None,
        }
    }

    /// The token and every registered secret, wherever a server repeats them (an error page,
    /// a redirect), are hidden before the text is shortened for a message: a cut would leave
    /// part of one readable, where masking the printed line could no longer find it.
    fn hide_secrets(&self, text: &str) -> String {
        let text = if self.token.is_empty() || !text.contains(&self.token) {
            text.to_string()
        } else {
            text.replace(&self.token, "***")
        };
        match &self.masker {
            Some(mask) => mask(&text),
            None => text,
        }
    }
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

/// A redirect is an error: the workspace API does not redirect, and following one would send
/// the request (and trust the answer) somewhere else. Where it pointed says what is wrong.
fn redirect_message(location: Option<String>) -> String {
    match location {
        Some(location) => format!(
            "the answer is a redirect to {}, which is not followed",
            shorten(&location, 200)
        ),
        None => "the answer is a redirect (without a Location), which is not followed".into(),
    }
}

/// Reads a success answer. Every endpoint we call answers with a JSON object, so an empty
/// body, an HTML page or anything else is named for what it is, not parsed into an empty
/// (and therefore "still running") value.
/// `hide` masks what is quoted from an answer that cannot be read, before it is shortened; the
/// answer itself is parsed as it came (masking would change its values).
fn decode_answer<T: DeserializeOwned>(
    body: &[u8],
    status: u16,
    content_type: Option<&str>,
    hide: impl Fn(&str) -> String,
) -> Result<T, String> {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        // Fine where no answer is expected (a cancel, a delete): those read into a JSON value.
        if let Ok(nothing) = serde_json::from_str::<T>("null") {
            return Ok(nothing);
        }
        return Err(format!(
            "HTTP {status} with an empty body, where a JSON document was expected: something between the agent and Databricks (a proxy, a gateway) answered instead of the workspace"
        ));
    }
    if let Some(title) = html_page_title(trimmed, content_type) {
        let title = if title.is_empty() {
            String::new()
        } else {
            format!(" (\"{}\")", shorten(&hide(&title), 100))
        };
        return Err(format!(
            "HTTP {status} with an HTML page{title}, not JSON: a sign-in page of a proxy or of single sign-on, or databricksHost is not a Databricks workspace URL"
        ));
    }
    serde_json::from_str(trimmed).map_err(|e| {
        let what = if trimmed.starts_with('{') {
            "a JSON document that is not what this endpoint answers"
        } else {
            "not JSON"
        };
        format!(
            "HTTP {status} with {what} ({e}); it starts with `{}`",
            shorten(&hide(trimmed).replace(['\r', '\n'], " "), 60)
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_agent_names_us_and_the_pipeline() {
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            super::user_agent(false),
            format!("databricks-azdo/{version}")
        );
        assert_eq!(
            super::user_agent(true),
            format!("databricks-azdo/{version} cicd/azure-devops")
        );
    }
}
