//! The raw HTTP side of a running emulator: REST calls and control routes as JSON, for the
//! tests of the emulator itself and of what a workspace answers.

use std::time::Instant;

use databricks_azdo::emulator::{Emulator, EmulatorConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{ms, CLUSTER, DEADLINE};

/// An emulator with an HTTP client that sends its token, and a scratch folder.
pub struct Workspace {
    pub emulator: Emulator,
    pub http: reqwest::Client,
    pub base: String,
    /// The token the emulator accepts, sent with every request.
    pub token: String,
    pub scratch: tempfile::TempDir,
}

impl Workspace {
    /// Starts an emulator that accepts `token`, with short PENDING and TERMINATING phases.
    pub async fn start(token: &str) -> Workspace {
        let config = EmulatorConfig {
            token: token.into(),
            pending: ms(20),
            terminating: ms(10),
            ..EmulatorConfig::default()
        };
        let emulator = Emulator::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let base = emulator.base_url();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Workspace {
            emulator,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            base,
            token: token.to_string(),
            scratch: tempfile::tempdir().unwrap(),
        }
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(method, path, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {answer}");
        answer
    }

    pub async fn mkdirs(&self, path: &str) -> Value {
        let body = json!({ "path": path });
        self.ok(Method::POST, "/api/2.0/workspace/mkdirs", Some(body))
            .await
    }

    pub async fn submit(&self, body: Value) -> i64 {
        let answer = self
            .ok(Method::POST, "/api/2.1/jobs/runs/submit", Some(body))
            .await;
        answer["run_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no run_id: {answer}"))
    }

    pub async fn run(&self, run_id: i64) -> Value {
        self.ok(
            Method::GET,
            &format!("/api/2.1/jobs/runs/get?run_id={run_id}"),
            None,
        )
        .await
    }

    /// Polls `runs/get` until the run is terminal; returns it and the life cycle states seen.
    pub async fn wait_terminal(&self, run_id: i64) -> (Value, Vec<String>) {
        let deadline = Instant::now() + DEADLINE;
        let mut seen: Vec<String> = Vec::new();
        loop {
            let run = self.run(run_id).await;
            let state = run["state"]["life_cycle_state"]
                .as_str()
                .unwrap()
                .to_string();
            if seen.last() != Some(&state) {
                seen.push(state.clone());
            }
            if ["TERMINATED", "INTERNAL_ERROR", "SKIPPED"].contains(&state.as_str()) {
                return (run, seen);
            }
            assert!(
                Instant::now() < deadline,
                "run {run_id} is still {state}: {run}"
            );
            tokio::time::sleep(ms(10)).await;
        }
    }

    pub async fn output(&self, run_id: i64) -> Value {
        self.ok(
            Method::GET,
            &format!("/api/2.1/jobs/runs/get-output?run_id={run_id}"),
            None,
        )
        .await
    }

    pub async fn control(&self, method: Method, path: &str) -> Value {
        let response = self.request(method, path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

pub fn notebook_task(key: &str, path: &str) -> Value {
    json!({ "task_key": key, "existing_cluster_id": CLUSTER, "notebook_task": { "notebook_path": path } })
}

pub fn single_run(task: Value) -> Value {
    json!({ "run_name": "emulator test", "tasks": [task] })
}

pub fn error_code(body: &Value) -> &str {
    body["error_code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error_code: {body}"))
}

pub fn message(body: &Value) -> &str {
    body["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {body}"))
}
