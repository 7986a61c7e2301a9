//! Fault injection: rules that make chosen API requests fail the way real networks and real
//! workspaces fail, reproducibly (probabilities come from a seeded generator).
//!
//! Rule syntax (the `--fault` flag, `PUT /emulator/faults`, `FaultRule::from_str`):
//!
//! ```text
//! ENDPOINT=FAULT[*TIMES][@PROBABILITY]
//!
//! ENDPOINT     *                     any API request
//!              METHOD /path          exact path, query string ignored ("POST /api/2.0/repos")
//!              METHOD /prefix*       any path starting with /prefix ("PATCH /api/2.0/repos/*")
//! FAULT        STATUS                answer with this status and the real error body (429, 503...)
//!              STATUS:SECS           same, with a `Retry-After: SECS` header
//!              drop-before           break the connection without handling the request
//!              drop-after            handle the request (side effects happen), lose the answer
//!              delay:MS              wait MS milliseconds, then answer normally
//!              rewrite:HOW           answer normally, with the JSON answer changed; on a run
//!                                    (`runs/get`) HOW acts on its last task: drop-task,
//!                                    rename-task (a key nobody submitted), duplicate-task,
//!                                    no-task-key, no-result (no task has a result_state);
//!                                    not-json answers an HTML page with status 200 instead
//! *TIMES       only the first TIMES requests the rule fires on (default: all of them)
//! @PROBABILITY fire on this fraction of matching requests, 0..1 (default 1)
//! ```
//!
//! Examples: `POST /api/2.1/jobs/runs/submit=503*2`, `*=429:1*3`,
//! `GET /api/2.1/jobs/runs/get=drop-after*1`, `*=delay:2000`, `*=503@0.3`.
//! Rules are tried in order; the first one that fires decides.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::conn::ConnectionHandle;
use super::error::ApiError;
use super::state::Shared;

/// When and how to break matching requests.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    /// `"POST /api/2.1/jobs/runs/submit"`, `"PATCH /api/2.0/repos/*"` (prefix) or `"*"`.
    pub endpoint: String,
    pub fault: Fault,
    /// Fire on the first N matching requests only; `None` fires on every one.
    pub times: Option<u32>,
    /// Chance of firing on a matching request, from 0 to 1.
    pub probability: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer with this status and the body Databricks (or its proxy) sends with it.
    Status {
        status: u16,
        retry_after_secs: Option<u64>,
    },
    /// Close the connection without processing the request.
    DropBefore,
    /// Process the request (its side effects happen), then lose the answer.
    DropAfter,
    /// Wait, then answer normally.
    Delay(Duration),
    /// Answer normally, then change the answer (what a broken or hostile server might say).
    Rewrite(Rewrite),
}

/// Changes to a successful answer. Those that name a task act on the last task of a run's
/// `tasks`, so a run of two notebooks keeps one intact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rewrite {
    DropTask,
    RenameTask,
    DuplicateTask,
    NoTaskKey,
    NoResult,
    NotJson,
}

impl Rewrite {
    const ALL: [(Rewrite, &'static str); 6] = [
        (Rewrite::DropTask, "drop-task"),
        (Rewrite::RenameTask, "rename-task"),
        (Rewrite::DuplicateTask, "duplicate-task"),
        (Rewrite::NoTaskKey, "no-task-key"),
        (Rewrite::NoResult, "no-result"),
        (Rewrite::NotJson, "not-json"),
    ];

    fn name(self) -> &'static str {
        Rewrite::ALL
            .iter()
            .find(|(r, _)| *r == self)
            .map_or("?", |(_, name)| name)
    }

    fn parse(name: &str) -> Option<Rewrite> {
        Rewrite::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(r, _)| *r)
    }

    /// Applies the change to a JSON answer; answers without tasks are left alone.
    fn apply(self, answer: &mut serde_json::Value) {
        let Some(tasks) = answer.get_mut("tasks").and_then(|t| t.as_array_mut()) else {
            return;
        };
        let Some(last) = tasks.last().cloned() else {
            return;
        };
        let index = tasks.len() - 1;
        match self {
            Rewrite::DropTask => {
                tasks.pop();
            }
            Rewrite::RenameTask => tasks[index]["task_key"] = "not_submitted".into(),
            Rewrite::DuplicateTask => tasks.push(last),
            Rewrite::NoTaskKey => {
                if let Some(task) = tasks[index].as_object_mut() {
                    task.remove("task_key");
                }
            }
            // Without a result in either form: `state.result_state`, nor the termination
            // details of `status` (from which a result can be told as well).
            Rewrite::NoResult => {
                for task in tasks.iter_mut() {
                    if let Some(state) = task.get_mut("state").and_then(|s| s.as_object_mut()) {
                        state.remove("result_state");
                    }
                    if let Some(status) = task.get_mut("status").and_then(|s| s.as_object_mut()) {
                        status.remove("termination_details");
                    }
                }
            }
            Rewrite::NotJson => {}
        }
    }
}

#[derive(Clone, Debug, thiserror::Error)]
#[error("invalid fault rule '{rule}': {reason} (expected ENDPOINT=FAULT[*TIMES][@PROBABILITY], e.g. 'POST /api/2.1/jobs/runs/submit=503*2')")]
pub struct FaultRuleError {
    rule: String,
    reason: String,
}

impl FaultRule {
    pub fn new(endpoint: impl Into<String>, fault: Fault) -> Self {
        FaultRule {
            endpoint: endpoint.into(),
            fault,
            times: None,
            probability: 1.0,
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        if self.endpoint == "*" {
            return true;
        }
        let Some((rule_method, rule_path)) = self.endpoint.split_once(' ') else {
            return false;
        };
        if !rule_method.eq_ignore_ascii_case(method) {
            return false;
        }
        match rule_path.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == rule_path,
        }
    }
}

impl FromStr for FaultRule {
    type Err = FaultRuleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |reason: &str| FaultRuleError {
            rule: text.to_string(),
            reason: reason.into(),
        };
        let (endpoint, spec) = text.rsplit_once('=').ok_or_else(|| error("missing '='"))?;
        let endpoint = parse_endpoint(endpoint.trim()).map_err(|reason| error(&reason))?;

        // The fault comes first; `*TIMES` and `@PROBABILITY` follow in either order.
        let spec = spec.trim();
        let fault_end = spec.find(['*', '@']).unwrap_or(spec.len());
        let fault = parse_fault(&spec[..fault_end]).map_err(|reason| error(&reason))?;
        let mut rule = FaultRule::new(endpoint, fault);
        let mut rest = &spec[fault_end..];
        while let Some(marker) = rest.chars().next() {
            let value_end = rest[1..].find(['*', '@']).map_or(rest.len(), |i| i + 1);
            let value = &rest[1..value_end];
            match marker {
                '*' => {
                    let times: u32 = value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| error("TIMES must be a whole number above 0"))?;
                    rule.times = Some(times);
                }
                _ => {
                    rule.probability = value
                        .parse()
                        .ok()
                        .filter(|p: &f64| (0.0..=1.0).contains(p))
                        .ok_or_else(|| error("PROBABILITY must be a number from 0 to 1"))?;
                }
            }
            rest = &rest[value_end..];
        }
        Ok(rule)
    }
}

fn parse_endpoint(endpoint: &str) -> Result<String, String> {
    if endpoint == "*" {
        return Ok(endpoint.to_string());
    }
    let (method, path) = endpoint
        .split_once(' ')
        .ok_or("ENDPOINT must be '*' or 'METHOD /path'")?;
    let path = path.trim();
    if method.is_empty() || !method.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(format!("'{method}' is not an HTTP method"));
    }
    if !path.starts_with('/') || path.contains(char::is_whitespace) || path.contains('?') {
        return Err(format!("'{path}' is not a request path"));
    }
    Ok(format!("{} {path}", method.to_ascii_uppercase()))
}

fn parse_fault(text: &str) -> Result<Fault, String> {
    match text {
        "drop-before" | "drop" => return Ok(Fault::DropBefore),
        "drop-after" => return Ok(Fault::DropAfter),
        _ => {}
    }
    if let Some(how) = text.strip_prefix("rewrite:") {
        let names: Vec<&str> = Rewrite::ALL.iter().map(|(_, n)| *n).collect();
        return Rewrite::parse(how)
            .map(Fault::Rewrite)
            .ok_or_else(|| format!("rewrite:HOW needs one of {}", names.join(", ")));
    }
    if let Some(ms) = text.strip_prefix("delay:") {
        let ms: u64 = ms
            .parse()
            .map_err(|_| "delay:MS needs milliseconds".to_string())?;
        return Ok(Fault::Delay(Duration::from_millis(ms)));
    }
    let (status, retry_after) = match text.split_once(':') {
        Some((status, secs)) => (status, Some(secs)),
        None => (text, None),
    };
    let status: u16 = status
        .parse()
        .ok()
        .filter(|s| (400..=599).contains(s))
        .ok_or_else(|| {
            format!("unknown fault '{text}' (use a 4xx/5xx status, drop-before, drop-after or delay:MS)")
        })?;
    let retry_after_secs = retry_after
        .map(|secs| {
            secs.parse::<u64>()
                .map_err(|_| format!("'{secs}' is not a number of seconds"))
        })
        .transpose()?;
    Ok(Fault::Status {
        status,
        retry_after_secs,
    })
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=", self.endpoint)?;
        match &self.fault {
            Fault::Status {
                status,
                retry_after_secs: None,
            } => write!(f, "{status}")?,
            Fault::Status {
                status,
                retry_after_secs: Some(secs),
            } => write!(f, "{status}:{secs}")?,
            Fault::DropBefore => f.write_str("drop-before")?,
            Fault::DropAfter => f.write_str("drop-after")?,
            Fault::Delay(delay) => write!(f, "delay:{}", delay.as_millis())?,
            Fault::Rewrite(how) => write!(f, "rewrite:{}", how.name())?,
        }
        if let Some(times) = self.times {
            write!(f, "*{times}")?;
        }
        if self.probability < 1.0 {
            write!(f, "@{}", self.probability)?;
        }
        Ok(())
    }
}

/// The live rules with what is left of their budgets.
pub(crate) struct FaultInjector {
    rules: Vec<(FaultRule, Option<u32>)>,
    rng: fastrand::Rng,
}

impl FaultInjector {
    pub fn new(seed: u64, rules: Vec<FaultRule>) -> Self {
        let mut injector = FaultInjector {
            rules: Vec::new(),
            rng: fastrand::Rng::with_seed(seed),
        };
        injector.set(rules);
        injector
    }

    pub fn set(&mut self, rules: Vec<FaultRule>) {
        self.rules = rules
            .into_iter()
            .map(|rule| (rule.clone(), rule.times))
            .collect();
    }

    /// The fault to apply to this request, if a rule fires.
    pub fn pick(&mut self, method: &str, path: &str) -> Option<Fault> {
        for (rule, remaining) in &mut self.rules {
            if *remaining == Some(0) || !rule.matches(method, path) {
                continue;
            }
            // Certain rules leave the generator alone, so adding one does not reshuffle the
            // outcomes of the probabilistic ones.
            if rule.probability < 1.0 && self.rng.f64() >= rule.probability {
                continue;
            }
            if let Some(n) = remaining {
                *n -= 1;
            }
            return Some(rule.fault.clone());
        }
        None
    }
}

/// Middleware over `/api/*`: applies the first rule that fires.
pub(crate) async fn inject(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    // The counted path (identity routes count under a template), so rules name it the same.
    let path = match request.extensions().get::<super::server::EndpointPath>() {
        Some(counted) => counted.0.clone(),
        None => request.uri().path().to_string(),
    };
    let fault = shared.pick_fault(request.method().as_str(), &path);
    let Some(fault) = fault else {
        return next.run(request).await;
    };
    let connection = request
        .extensions()
        .get::<ConnectInfo<ConnectionHandle>>()
        .cloned();
    match fault {
        Fault::Status {
            status,
            retry_after_secs,
        } => status_response(status, retry_after_secs),
        Fault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Fault::DropBefore => {
            drop(request);
            lost_response(connection)
        }
        Fault::DropAfter => {
            let response = next.run(request).await;
            drop(response);
            lost_response(connection)
        }
        Fault::Rewrite(how) => rewritten(next.run(request).await, how).await,
    }
}

/// A successful JSON answer with `how` applied; any other answer as it was.
async fn rewritten(response: Response, how: Rewrite) -> Response {
    if how == Rewrite::NotJson {
        // What an SSO proxy or a wrong host answers: a sign-in page, with 200.
        let mut page = Response::new(Body::from(
            "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Sign in to continue</body></html>\n",
        ));
        page.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        return page;
    }
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::internal("could not read the answer to rewrite").into_response();
    };
    let Ok(mut answer) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    how.apply(&mut answer);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(answer.to_string()))
}

/// A response that never reaches the client: its connection is broken first.
fn lost_response(connection: Option<ConnectInfo<ConnectionHandle>>) -> Response {
    match connection {
        Some(ConnectInfo(connection)) => connection.kill(),
        // Only reachable when the router is served without our listener; an answer the
        // client can recognise beats a silent success.
        None => {
            return ApiError::internal("connection drop requested but not possible").into_response()
        }
    }
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// What Databricks, or the proxy in front of it, answers with this status.
fn status_response(status: u16, retry_after_secs: Option<u64>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match status {
        502 | 504 => {
            let reason = code.canonical_reason().unwrap_or("Error");
            let html = format!(
                "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
            );
            let mut response = Response::new(Body::from(html));
            *response.status_mut() = code;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        }
        _ => {
            let (error_code, message) = envelope_for(status);
            ApiError::new(code, error_code, message).into_response()
        }
    };
    if let Some(secs) = retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn envelope_for(status: u16) -> (&'static str, &'static str) {
    match status {
        429 => (
            "REQUEST_LIMIT_EXCEEDED",
            "Too many requests. Please wait a moment and try again.",
        ),
        503 => (
            "TEMPORARILY_UNAVAILABLE",
            "The service at this endpoint is temporarily unavailable. Please try again later.",
        ),
        500 => ("INTERNAL_ERROR", "Internal error. Please try again later."),
        400 => ("INVALID_PARAMETER_VALUE", "Invalid request."),
        401 => (
            "UNAUTHENTICATED",
            "Credential was not sent or was of an unsupported type for this API.",
        ),
        403 => ("PERMISSION_DENIED", "Permission denied."),
        404 => (
            "RESOURCE_DOES_NOT_EXIST",
            "The requested resource does not exist.",
        ),
        409 => (
            "RESOURCE_CONFLICT",
            "The request conflicts with the current state of the resource.",
        ),
        s if s < 500 => ("BAD_REQUEST", "The request could not be processed."),
        _ => (
            "INTERNAL_ERROR",
            "The server encountered an error. Please try again later.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> FaultRule {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_the_documented_examples() {
        assert_eq!(
            rule("POST /api/2.1/jobs/runs/submit=503*2"),
            FaultRule {
                endpoint: "POST /api/2.1/jobs/runs/submit".into(),
                fault: Fault::Status {
                    status: 503,
                    retry_after_secs: None
                },
                times: Some(2),
                probability: 1.0,
            }
        );
        assert_eq!(
            rule("*=429:1*3"),
            FaultRule {
                endpoint: "*".into(),
                fault: Fault::Status {
                    status: 429,
                    retry_after_secs: Some(1)
                },
                times: Some(3),
                probability: 1.0,
            }
        );
        assert_eq!(
            rule("GET /api/2.1/jobs/runs/get=drop-after*1").fault,
            Fault::DropAfter
        );
        assert_eq!(rule("*=drop-before").fault, Fault::DropBefore);
        assert_eq!(
            rule("*=delay:2000").fault,
            Fault::Delay(Duration::from_millis(2000))
        );
        let probable = rule("get /api/2.0/repos/*=503@0.3*4");
        assert_eq!(probable.endpoint, "GET /api/2.0/repos/*");
        assert_eq!(probable.probability, 0.3);
        assert_eq!(probable.times, Some(4));
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "POST /api/2.0/repos=503*2",
            "*=429:1*3@0.5",
            "*=delay:20",
            "*=drop-after",
            "GET /api/2.1/jobs/runs/get=rewrite:drop-task*2",
            "*=rewrite:no-result",
            "*=rewrite:not-json*1",
        ] {
            assert_eq!(rule(text).to_string(), text);
        }
    }

    #[test]
    fn rejects_nonsense() {
        for text in [
            "503",
            "*=",
            "*=200",
            "*=teapot",
            "POST=503",
            "POST api=503",
            "*=503*0",
            "*=503@2",
            "*=rewrite:",
            "*=rewrite:everything",
        ] {
            assert!(
                text.parse::<FaultRule>().is_err(),
                "{text} should not parse"
            );
        }
    }

    #[test]
    fn times_and_order_decide() {
        let mut injector = FaultInjector::new(1, vec![rule("POST /api/x=503*1"), rule("*=500")]);
        assert_eq!(
            injector.pick("POST", "/api/x"),
            Some(Fault::Status {
                status: 503,
                retry_after_secs: None
            })
        );
        assert_eq!(
            injector.pick("POST", "/api/x"),
            Some(Fault::Status {
                status: 500,
                retry_after_secs: None
            })
        );
        let mut prefix = FaultInjector::new(1, vec![rule("PATCH /api/2.0/repos/*=drop-after")]);
        assert_eq!(
            prefix.pick("PATCH", "/api/2.0/repos/12"),
            Some(Fault::DropAfter)
        );
        assert_eq!(prefix.pick("GET", "/api/2.0/repos/12"), None);
    }

    #[test]
    fn rewrites_act_on_the_last_task() {
        let run = || {
            serde_json::json!({ "run_id": 1, "tasks": [
                { "task_key": "a", "state": { "result_state": "SUCCESS" } },
                { "task_key": "b", "state": { "result_state": "SUCCESS" } },
            ]})
        };
        let keys = |how: Rewrite| {
            let mut answer = run();
            how.apply(&mut answer);
            answer["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    let key = t["task_key"].as_str().unwrap_or("-").to_string();
                    let result = t["state"]["result_state"].as_str().unwrap_or("none");
                    format!("{key}:{result}")
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(Rewrite::DropTask), ["a:SUCCESS"]);
        assert_eq!(
            keys(Rewrite::RenameTask),
            ["a:SUCCESS", "not_submitted:SUCCESS"]
        );
        assert_eq!(
            keys(Rewrite::DuplicateTask),
            ["a:SUCCESS", "b:SUCCESS", "b:SUCCESS"]
        );
        assert_eq!(keys(Rewrite::NoTaskKey), ["a:SUCCESS", "-:SUCCESS"]);
        assert_eq!(keys(Rewrite::NoResult), ["a:none", "b:none"]);
        let mut other = serde_json::json!({ "run_id": 1 });
        Rewrite::DropTask.apply(&mut other);
        assert_eq!(other, serde_json::json!({ "run_id": 1 }));
    }

    #[test]
    fn probabilities_are_reproducible() {
        let outcomes = |seed| {
            let mut injector = FaultInjector::new(seed, vec![rule("*=503@0.5")]);
            (0..64)
                .map(|_| injector.pick("GET", "/api/x").is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(outcomes(7), outcomes(7));
        let fired = outcomes(7).into_iter().filter(|f| *f).count();
        assert!((10..54).contains(&fired), "{fired} of 64 fired");
    }
}
