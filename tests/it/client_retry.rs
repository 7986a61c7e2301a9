//! The client's retry strategy against the emulator's injected faults: what it retries, what
//! it tells the user while it does, and when it gives up.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use crate::common::*;
use std::time::Duration;

use databricks_azdo::databricks::{Client, RetryPolicy, WorkspaceUrl};
use databricks_azdo::host::{Host, NativeHost};
use databricks_azdo::rest::StaticToken;

fn client(
    emulator: &databricks_azdo::emulator::Emulator,
    policy: RetryPolicy,
    notices: Rc<RefCell<Vec<String>>>,
) -> Client {
    let host: Rc<dyn Host> = Rc::new(NativeHost::new(
        Default::default(),
        Arc::new(Mutex::new(std::io::sink())),
        Arc::new(Mutex::new(std::io::sink())),
    ));
    Client::new(
        WorkspaceUrl::parse(&emulator.base_url()).unwrap(),
        std::rc::Rc::new(StaticToken::new(TOKEN)),
        "databricks-azdo-test".into(),
        policy,
        host,
    )
    .with_notice(Rc::new(move |text| {
        notices
            .borrow_mut()
            .push(redact(text, None).trim_end().to_string())
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_rate_limits_and_server_errors_then_succeeds() {
    let emulator = emulator_with(faults(&[
        "GET /api/2.0/workspace/get-status=429:1*1",
        "GET /api/2.0/workspace/get-status=503*1",
        "GET /api/2.0/workspace/get-status=502*1",
        "GET /api/2.0/workspace/get-status=drop-before*1",
    ]))
    .await;
    let notices = Rc::new(RefCell::new(Vec::new()));
    let client = client(&emulator, fast_retries(), notices.clone());

    let found = client.find_object("/Repos").await.unwrap();

    assert!(found.is_some());
    assert_eq!(count(&emulator, "GET /api/2.0/workspace/get-status"), 5);
    insta::assert_snapshot!(notices.borrow().join("\n"), @r"
    GET /api/2.0/workspace/get-status: HTTP 429 REQUEST_LIMIT_EXCEEDED: Too many requests. Please wait a moment and try again.; retrying in [DELAY] (attempt 2)
    GET /api/2.0/workspace/get-status: HTTP 503 TEMPORARILY_UNAVAILABLE: The service at this endpoint is temporarily unavailable. Please try again later.; retrying in [DELAY] (attempt 3)
    GET /api/2.0/workspace/get-status: HTTP 502: 502 Bad Gateway; retrying in [DELAY] (attempt 4)
    GET /api/2.0/workspace/get-status: client error (SendRequest): connection closed before message completed; retrying in [DELAY] (attempt 5)
    ");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_not_retried_and_keep_the_server_message() {
    let emulator = emulator().await;
    let notices = Rc::new(RefCell::new(Vec::new()));
    let client = client(&emulator, fast_retries(), notices.clone());

    let error = client.get_repo(42).await.unwrap_err();

    assert_eq!(count(&emulator, "GET /api/2.0/repos/42"), 1);
    assert!(notices.borrow().is_empty());
    assert_eq!(error.status(), Some(404));
    assert!(error.is_not_found());
    insta::assert_snapshot!(error.to_string(), @"GET /api/2.0/repos/42 failed: HTTP 404 RESOURCE_DOES_NOT_EXIST: Repo 42 does not exist.");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_when_the_budget_is_spent() {
    let emulator = emulator_with(faults(&["GET /api/2.2/jobs/runs/get=503"])).await;
    let notices = Rc::new(RefCell::new(Vec::new()));
    let budget = RetryPolicy {
        budget: Duration::from_millis(600),
        ..fast_retries()
    };
    let client = client(&emulator, budget, notices.clone());

    let error = client.get_run(1, 100).await.unwrap_err();

    let attempts = count(&emulator, "GET /api/2.2/jobs/runs/get");
    assert!(attempts > 3, "{attempts} attempts");
    assert_eq!(
        notices.borrow().len() as u64,
        attempts - 1,
        "every retry is announced"
    );
    let message = error.to_string();
    assert!(
        message.starts_with("GET /api/2.2/jobs/runs/get failed: HTTP 503"),
        "{message}"
    );
    assert!(
        message.contains(&format!("gave up after {attempts} attempts")),
        "{message}"
    );
    assert!(
        error.hint().unwrap().contains("kept failing"),
        "{:?}",
        error.hint()
    );
    emulator.shutdown().await;
}
