//! The HTTP side of the REST client: authentication, one request, and the retry loop.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{parse_error_body, status_and_code, ApiError, RequestLabel, TransportKind};
use super::proxy::ProxySettings;
use super::retry::{is_retryable, parse_retry_after, RetryPolicy};
use super::workspace_url::WorkspaceUrl;
use crate::host::Host;
use crate::text::{seconds, shorten};

/// Largest answer body we read; a run's notebook output is at most 5 MB.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Something worth telling the user while it happens (e.g. a retry).
pub type Notice = Rc<dyn Fn(&str)>;

pub struct Client {
    http: reqwest::Client,
    base: WorkspaceUrl,
    token: String,
    user_agent: String,
    policy: RetryPolicy,
    host: Rc<dyn Host>,
    jitter: RefCell<fastrand::Rng>,
    notice: Option<Notice>,
    trace: Option<Notice>,
}

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
            http: http_client(None),
            base,
            token,
            user_agent,
            policy,
            host,
            jitter: RefCell::new(fastrand::Rng::with_seed(seed)),
            notice: None,
            trace: None,
        }
    }

    /// Sends every request through the agent's proxy (native only: see `proxy.rs`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_proxy(mut self, proxy: &ProxySettings) -> Client {
        self.http = http_client(Some(proxy));
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
        self.call(Method::GET, path, query, None::<&()>).await
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
            || self.attempt(method.clone(), path, query, body.clone()),
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
            method: method_name(&method),
            path: path.to_string(),
        };
        let mut builder = self
            .http
            .request(method, self.base.join(path))
            .bearer_auth(&self.token)
            .header(reqwest::header::USER_AGENT, &self.user_agent)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.policy.request_timeout);
        if !query.is_empty() {
            builder = builder.query(query);
        }
        if let Some(body) = body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let transport = |e: reqwest::Error, request: &RequestLabel| {
            let message = describe_transport_error(&e);
            ApiError::Transport {
                request: request.clone(),
                kind: TransportKind::of(&message),
                message,
            }
        };
        let response = builder.send().await.map_err(|e| transport(e, &request))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let too_large = |request: RequestLabel| ApiError::Decode {
            request,
            message: format!("the answer is larger than {} MB", MAX_BODY_BYTES >> 20),
        };
        if response
            .content_length()
            .is_some_and(|len| len as usize > MAX_BODY_BYTES)
        {
            return Err(too_large(request));
        }
        let bytes = response.bytes().await.map_err(|e| transport(e, &request))?;
        if bytes.len() > MAX_BODY_BYTES {
            return Err(too_large(request));
        }
        if !(200..300).contains(&status) {
            let (error_code, message) = parse_error_body(status, &String::from_utf8_lossy(&bytes));
            return Err(ApiError::Http {
                request,
                status,
                error_code,
                message,
                retry_after,
            });
        }
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes).map_err(|e| ApiError::Decode {
            request,
            message: format!("{e} (HTTP {status})"),
        })
    }
}

/// Redirects are not followed: the workspace API does not redirect, and following one would
/// send the token to wherever it points. A 3xx becomes a clear error instead.
/// A proxy given here replaces the `HTTPS_PROXY`/`NO_PROXY` variables reqwest reads otherwise.
#[cfg(not(target_arch = "wasm32"))]
fn http_client(proxy: Option<&ProxySettings>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(proxy) = proxy {
        builder = builder.proxy(proxy.to_reqwest());
    }
    builder.build().unwrap_or_default()
}

/// In Node, `fetch` handles redirects itself (and drops the Authorization header when one
/// leaves the origin).
#[cfg(target_arch = "wasm32")]
fn http_client(_no_proxy_in_node: Option<&ProxySettings>) -> reqwest::Client {
    reqwest::Client::new()
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        _ => "REQUEST",
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
        ApiError::Transport { message, .. } | ApiError::Decode { message, .. } => message.clone(),
        ApiError::GaveUp { last, .. } => retry_reason(last),
    }
}

/// reqwest's Display stops at the outermost layer ("error sending request"); the cause chain
/// says what actually happened (refused, reset, timed out). URLs carry no secrets here.
/// The causes behind a failed request, without reqwest's own "error sending request for url
/// (...)" (the request is named already) and, on wasm, without the `JsValue("...")` wrapper
/// around what `task/index.js` made of Node's fetch error.
fn describe_transport_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "the request timed out".to_string();
    }
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        let text = text
            .strip_prefix("JsValue(\"")
            .and_then(|t| t.strip_suffix("\")"))
            .map(str::to_string)
            .unwrap_or(text);
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        parts.push(error.to_string());
    }
    parts.join(": ")
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
