//! Strange answers from the server: a clear error or a tolerated value, never a panic, never a
//! hang, never the token sent elsewhere.

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use databricks_azdo::databricks::{ApiError, Client, RetryPolicy, WorkspaceUrl};
use databricks_azdo::host::{Host, NativeHost};
use databricks_azdo::rest::StaticToken;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

fn client(url: &str) -> Client {
    let sink = || Arc::new(Mutex::new(std::io::sink()));
    let host: Rc<dyn Host> = Rc::new(NativeHost::new(Default::default(), sink(), sink()));
    let policy = RetryPolicy {
        budget: Duration::from_millis(800),
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_millis(100),
        request_timeout: Duration::from_millis(300),
    };
    Client::new(
        WorkspaceUrl::parse(url).unwrap(),
        std::rc::Rc::new(StaticToken::new(TOKEN)),
        "test".into(),
        policy,
        host,
    )
}

/// Serves `body` with `status` on runs/get, and returns what `get_run` made of it.
async fn get_run_answering(
    status: StatusCode,
    content_type: &'static str,
    body: &'static str,
) -> Result<databricks_azdo::databricks::models::Run, ApiError> {
    let router = Router::new().route(
        "/api/2.2/jobs/runs/get",
        get(move || async move { (status, [(header::CONTENT_TYPE, content_type)], body) }),
    );
    client(&serve(router).await).get_run(1, 100).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_success_answers_are_clear_errors() {
    for body in [
        "hello",
        "{\"run_id\": 1, \"state\": {",
        "[1, 2]",
        "{\"state\": {\"life_cycle_state\": 5}}",
        "<html>ok</html>",
    ] {
        let error = get_run_answering(StatusCode::OK, "application/json", body)
            .await
            .unwrap_err();
        assert!(
            matches!(error, ApiError::Decode { .. }),
            "{body}: {error:?}"
        );
        assert!(
            error
                .to_string()
                .starts_with("GET /api/2.2/jobs/runs/get returned an unreadable answer"),
            "{error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_values_and_missing_fields_are_tolerated() {
    let run = get_run_answering(
        StatusCode::OK,
        "application/json",
        r#"{"run_id": 1, "state": {"life_cycle_state": "WARP_SPEED", "result_state": "MAYBE"}, "tasks": [{}], "extra": {"x": [null]}}"#,
    )
    .await
    .unwrap();
    assert_eq!(run.life_cycle().unwrap().as_str(), "WARP_SPEED");
    assert!(!run.is_terminal());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_say_nothing_are_errors_not_an_empty_run() {
    let cases: [(&str, &str, &str); 8] = [
        ("application/json", "", "empty body"),
        ("application/json", " \r\n", "empty body"),
        (
            "text/html",
            "<html><head><title>Sign in</title></head></html>",
            "HTML page (\"Sign in\")",
        ),
        ("application/json", "{}", "no `state.life_cycle_state`"),
        (
            "application/json",
            r#"{"run_id": 2, "state": {"life_cycle_state": "RUNNING"}}"#,
            "describes run 2, not run 1",
        ),
        (
            "application/json",
            r#"{"state": {}}"#,
            "no `state.life_cycle_state`",
        ),
        // `status` in a form the watcher cannot act on says nothing either.
        (
            "application/json",
            r#"{"status": {"state": "HIBERNATING"}}"#,
            "no `state.life_cycle_state` (nor `status.state`)",
        ),
        (
            "application/json",
            r#"{"status": {}}"#,
            "no `state.life_cycle_state` (nor `status.state`)",
        ),
    ];
    for (content_type, body, expected) in cases {
        let error = get_run_answering(StatusCode::OK, content_type, body)
            .await
            .unwrap_err();
        assert!(
            matches!(error, ApiError::Decode { .. }),
            "{body:?}: {error:?}"
        );
        assert!(error.to_string().contains(expected), "{body:?}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_error_pages_become_one_line_messages() {
    let error = get_run_answering(
        StatusCode::BAD_GATEWAY,
        "text/html",
        "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>",
    )
    .await
    .unwrap_err();
    assert_eq!(error.status(), Some(502));
    assert!(
        matches!(error, ApiError::GaveUp { .. }),
        "5xx is retried until the budget ends"
    );
    assert!(
        error.to_string().contains("HTTP 502: 502 Bad Gateway"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_bodies_are_refused() {
    let router = Router::new().route(
        "/api/2.2/jobs/runs/get",
        get(|| async { (StatusCode::OK, vec![b' '; 17 * 1024 * 1024]) }),
    );
    let error = client(&serve(router).await)
        .get_run(1, 100)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("larger than 16 MB"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_slow_bodies_time_out() {
    let router = Router::new().route(
        "/api/2.2/jobs/runs/get",
        get(|| async {
            let chunks = futures::stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Some((Ok::<_, std::io::Error>(b"{".to_vec()), ()))
            });
            Response::new(Body::from_stream(chunks))
        }),
    );
    let error = tokio::time::timeout(
        Duration::from_secs(10),
        client(&serve(router).await).get_run(1, 100),
    )
    .await
    .expect("the client gives up by itself")
    .unwrap_err();
    assert!(matches!(error, ApiError::GaveUp { .. }), "{error:?}");
    assert!(
        error.to_string().contains("no complete answer within 0.3s"),
        "{error}"
    );
}

/// A body that never ends, in the shapes a server can send one, is cut while it streams:
/// the server counts what it could write before the client hung up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_bodies_are_cut_while_they_stream() {
    for status in [StatusCode::OK, StatusCode::INTERNAL_SERVER_ERROR] {
        let sent = Arc::new(AtomicUsize::new(0));
        let counter = sent.clone();
        let router = Router::new().route(
            "/api/2.2/jobs/runs/get",
            get(move || {
                let counter = counter.clone();
                async move {
                    let chunks = futures::stream::repeat_with(move || {
                        counter.fetch_add(64 * 1024, Ordering::SeqCst);
                        Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])
                    });
                    (status, Body::from_stream(chunks)).into_response()
                }
            }),
        );
        let error = tokio::time::timeout(
            Duration::from_secs(20),
            client(&serve(router).await).get_run(1, 100),
        )
        .await
        .expect("the client stops reading by itself")
        .unwrap_err();
        assert!(error.to_string().contains("larger than 16 MB"), "{error}");
        let sent = sent.load(Ordering::SeqCst);
        assert!(sent < 64 << 20, "{status}: {sent} bytes were produced");
    }
    // No Content-Length and no chunking: the body ends when the connection does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                let _ = socket.read(&mut head).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n")
                    .await;
                let chunk = vec![b' '; 64 * 1024];
                while socket.write_all(&chunk).await.is_ok() {
                    counter.fetch_add(chunk.len(), Ordering::SeqCst);
                }
            });
        }
    });
    let error = client(&url).get_run(1, 100).await.unwrap_err();
    assert!(error.to_string().contains("larger than 16 MB"), "{error}");
    assert!(written.load(Ordering::SeqCst) < 64 << 20);
}

/// The step's deadline bounds retries: a request that keeps failing stops at the deadline,
/// not at the end of the retry budget, and so does one that never answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_step_deadline_bounds_every_retry() {
    let busy = Router::new().route(
        "/api/2.2/jobs/runs/get",
        get(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                "",
            )
        }),
    );
    let silent = Router::new().route(
        "/api/2.2/jobs/runs/get",
        get(futures::future::pending::<&'static str>),
    );
    for router in [busy, silent] {
        let sink = || Arc::new(Mutex::new(std::io::sink()));
        let host: Rc<dyn Host> = Rc::new(NativeHost::new(Default::default(), sink(), sink()));
        let client = Client::new(
            WorkspaceUrl::parse(&serve(router).await).unwrap(),
            std::rc::Rc::new(StaticToken::new(TOKEN)),
            "test".into(),
            RetryPolicy::default(),
            host.clone(),
        );
        client.set_deadline(Some(host.elapsed() + Duration::from_millis(700)));
        let started = std::time::Instant::now();
        let error = client.get_run(1, 100).await.unwrap_err();
        assert!(matches!(error, ApiError::OutOfTime { .. }), "{error:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed_and_the_token_stays_home() {
    let elsewhere_hits = Arc::new(AtomicUsize::new(0));
    let hits = elsewhere_hits.clone();
    let elsewhere = serve(Router::new().fallback(move |headers: HeaderMap| {
        let hits = hits.clone();
        async move {
            assert!(headers.get(header::AUTHORIZATION).is_none());
            hits.fetch_add(1, Ordering::SeqCst);
            "{}"
        }
    }))
    .await;
    let target = format!("{elsewhere}/api/2.2/jobs/runs/get?run_id=1");
    let router = Router::new().route(
        "/api/2.2/jobs/runs/get",
        get(move || {
            let target = target.clone();
            async move { (StatusCode::FOUND, [(header::LOCATION, target)], "").into_response() }
        }),
    );
    let error = client(&serve(router).await)
        .get_run(1, 100)
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(302), "{error}");
    assert!(
        error.to_string().contains("redirect to http://"),
        "the error names the Location: {error}"
    );
    assert_eq!(
        elsewhere_hits.load(Ordering::SeqCst),
        0,
        "the redirect was not followed"
    );
}

/// What an unreadable answer quotes (an HTML title, its first characters) is shortened only
/// after the token is hidden: a cut through the token would leave its first part readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_from_unreadable_answers_never_show_part_of_the_token() {
    let padding = "x".repeat(90);
    let title: &'static str = Box::leak(
        format!("<html><head><title>{padding}{TOKEN}</title></head></html>").into_boxed_str(),
    );
    let text: &'static str = Box::leak(format!("{}{TOKEN}", &padding[..50]).into_boxed_str());
    for (content_type, body) in [("text/html", title), ("text/plain", text)] {
        let error = get_run_answering(StatusCode::OK, content_type, body)
            .await
            .unwrap_err()
            .to_string();
        assert!(!error.contains("dapi-t"), "{error}");
        assert!(error.contains("***"), "{error}");
    }
}

/// Pages of `runs/get` that would never end, or come round again, or hold nothing: an error
/// naming what is wrong, after a bounded number of requests, never a loop or a pile of tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_tasks_are_read_within_bounds() {
    let task = |n: usize| {
        serde_json::json!({ "run_id": 100 + n, "task_key": format!("t{n}"),
                            "state": { "life_cycle_state": "RUNNING" } })
    };
    /// The next page token after request `n`.
    type NextToken = fn(usize) -> Option<String>;
    let cases: [(&str, NextToken, usize, &str); 4] = [
        (
            "the same token again",
            |_| Some("again".into()),
            1,
            "came back a second time",
        ),
        (
            "a new token each time",
            |n| Some(format!("p{n}")),
            1,
            "more than 150 tasks",
        ),
        (
            "pages without tasks",
            |n| Some(format!("p{n}")),
            0,
            "a page without tasks names a next page",
        ),
        (
            "a token too long for a URL",
            |_| Some("t".repeat(5000)),
            1,
            "a page token of 5000 bytes",
        ),
    ];
    for (case, next, per_page, said) in cases {
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        let router = Router::new().route(
            "/api/2.2/jobs/runs/get",
            get(move || {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                let tasks: Vec<serde_json::Value> =
                    (0..per_page).map(|i| task(n * 10 + i)).collect();
                async move {
                    axum::Json(serde_json::json!({
                        "run_id": 1,
                        "state": { "life_cycle_state": "RUNNING" },
                        "tasks": tasks,
                        "next_page_token": next(n),
                    }))
                }
            }),
        );
        let error = client(&serve(router).await)
            .get_run(1, 150)
            .await
            .expect_err(case);
        assert!(error.to_string().contains(said), "{case}: {error}");
        assert!(
            requests.load(Ordering::SeqCst) <= 152,
            "{case}: {} requests",
            requests.load(Ordering::SeqCst)
        );
    }
}

/// A notebook step signing in with `scenario`, every party (and the workspace) at `url`.
fn signing_in_at(
    url: &str,
    scenario: databricks_azdo::scenarios::AuthScenario,
    secrets: &databricks_azdo::scenarios::ScenarioSecrets,
) -> std::collections::BTreeMap<String, String> {
    let mut env = databricks_azdo::scenarios::agent_env(scenario, url, secrets);
    env.extend(
        [
            ("TF_BUILD", "True"),
            ("INPUT_DATABRICKSHOST", url),
            ("INPUT_NOTEBOOKPATHS", "/Shared/tests/unit"),
            ("INPUT_EXISTINGCLUSTERID", CLUSTER),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    env
}

/// An identity provider (or something posing as one) that hands out a token too short to be
/// real: it is refused before it is registered as a secret, which would mask that text in
/// every later line of the job. For an Entra access token and an Azure DevOps id token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_too_short_to_be_real_are_refused_before_they_are_masked() {
    use axum::routing::post;
    use databricks_azdo::pipeline::OutputMode;
    use databricks_azdo::scenarios::{AuthScenario, ScenarioSecrets};
    use databricks_azdo::tasks::TaskName;
    for (scenario, tiny) in [
        (AuthScenario::AzureSecret, "e"),
        (AuthScenario::DatabricksFederation, "o"),
        (AuthScenario::AzureFederation, "ab"),
    ] {
        let router = Router::new()
            .route(
                "/{tenant}/oauth2/v2.0/token",
                post(move || async move {
                    axum::Json(serde_json::json!({ "access_token": tiny, "expires_in": 3600, "token_type": "Bearer" }))
                }),
            )
            .route(
                "/{org}/{project}/_apis/distributedtask/hubs/{hub}/plans/{plan}/jobs/{job}/oidctoken",
                post(move || async move { axum::Json(serde_json::json!({ "oidcToken": tiny })) }),
            )
            // The workspace's OAuth discovery, for Databricks federation to reach the id token.
            .route(
                "/oidc/.well-known/oauth-authorization-server",
                get(|headers: HeaderMap| async move {
                    let host = headers[header::HOST].to_str().unwrap().to_string();
                    axum::Json(serde_json::json!({ "token_endpoint": format!("http://{host}/oidc/v1/token") }))
                }),
            );
        let url = serve(router).await;
        let env = signing_in_at(&url, scenario, &ScenarioSecrets::random());
        let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;
        assert_eq!(outcome.code, 3, "{scenario:?}: {}", outcome.stdout);
        assert!(
            outcome.stdout.contains(&format!(
                "has {} characters, too few for a real token (at least 16)",
                tiny.len()
            )),
            "{scenario:?}: {}",
            outcome.stdout
        );
        assert!(
            !outcome
                .stdout
                .contains(&format!("##vso[task.setsecret]{tiny}\n")),
            "{scenario:?}: the tiny token was registered: {}",
            outcome.stdout
        );
    }
}

/// Paths the list API answers are what notebooks would be submitted as: one that is not a
/// plain child of the folder listed (climbing, `.`, `//`, CR/LF, elsewhere) stops the step
/// before anything is submitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_paths_outside_the_glob_base_are_never_submitted() {
    use databricks_azdo::pipeline::OutputMode;
    use databricks_azdo::tasks::TaskName;
    for listed in [
        "/Repos/ci/p/tests/../../../Shared/evil",
        "/Repos/ci/p/tests/./test_x",
        "/Repos/ci/p/tests//test_x",
        "/Repos/ci/p/tests/test_a\r\n##vso[task.complete result=Succeeded]",
        "/Shared/elsewhere/test_x",
    ] {
        let submits = Arc::new(AtomicUsize::new(0));
        let counted = submits.clone();
        let router = Router::new()
            .route(
                "/api/2.0/workspace/list",
                get(move || async move {
                    axum::Json(serde_json::json!({ "objects": [
                        { "object_type": "NOTEBOOK", "path": "/Repos/ci/p/tests/test_ok", "object_id": 1 },
                        { "object_type": "NOTEBOOK", "path": listed, "object_id": 2 },
                    ] }))
                }),
            )
            .route(
                "/api/2.2/jobs/runs/submit",
                axum::routing::post(move || async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    (StatusCode::SERVICE_UNAVAILABLE, "no")
                }),
            );
        let url = serve(router).await;
        let env: std::collections::BTreeMap<String, String> = [
            ("TF_BUILD", "True"),
            ("INPUT_DATABRICKSHOST", url.as_str()),
            ("INPUT_DATABRICKSTOKEN", TOKEN),
            ("INPUT_REPOPATH", "/Repos/ci/p"),
            ("INPUT_NOTEBOOKPATHS", "tests/test_*"),
            ("INPUT_EXISTINGCLUSTERID", CLUSTER),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;
        assert_eq!(outcome.code, 3, "{listed:?}: {}", outcome.stdout);
        assert!(
            outcome.stdout.contains(
                "GET /api/2.0/workspace/list returned an unreadable answer: HTTP 200, but it lists"
            ),
            "{listed:?}: {}",
            outcome.stdout
        );
        assert_eq!(
            submits.load(Ordering::SeqCst),
            0,
            "{listed:?}: nothing was submitted"
        );
        assert!(
            !outcome
                .stdout
                .lines()
                .any(|l| l.starts_with("##vso[task.complete result=Succeeded]")),
            "{listed:?}"
        );
    }
}

/// An identity provider that echoes the client secret back in its refusal, encoded as it
/// arrived or otherwise: no spelling of it reaches the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_echoed_back_encoded_is_masked_in_every_spelling() {
    use axum::routing::post;
    use base64::Engine as _;
    use databricks_azdo::pipeline::OutputMode;
    use databricks_azdo::scenarios::{AuthScenario, ScenarioSecrets};
    use databricks_azdo::tasks::TaskName;
    let secrets = ScenarioSecrets::random();
    let secret = secrets.client_secret.clone();
    assert!(
        secret.contains('~'),
        "the scenario's secret has a `~`: {secret}"
    );
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let spellings = [
        form.clone(),
        form.replace("%7E", "~"),
        form.to_lowercase(),
        base64::engine::general_purpose::STANDARD.encode(&secret),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&secret),
    ];
    for echoed in spellings {
        let said = format!("AADSTS7000215: Invalid client secret provided: '{echoed}'.");
        let router = Router::new().route(
            "/{tenant}/oauth2/v2.0/token",
            post(move || {
                let said = said.clone();
                async move {
                    (
                        StatusCode::UNAUTHORIZED,
                        axum::Json(serde_json::json!({ "error": "invalid_client", "error_description": said, "error_codes": [7000215] })),
                    )
                }
            }),
        );
        let url = serve(router).await;
        let env = signing_in_at(&url, AuthScenario::AzureSecret, &secrets);
        for mode in [OutputMode::Agent, OutputMode::Terminal, OutputMode::Json] {
            let outcome = run_task(TaskName::RunNotebookTest, env.clone(), mode).await;
            assert_eq!(outcome.code, 3, "{echoed}: {}", outcome.stdout);
            let printed = format!("{}\n{}", outcome.stdout, outcome.stderr);
            let leaked = printed
                .lines()
                .filter(|l| !l.starts_with("##vso[task.setsecret]"))
                .any(|l| l.contains(&echoed) || l.contains(&secret));
            assert!(!leaked, "{echoed} ({mode:?}) is printed: {printed}");
            assert!(printed.contains("client secret"), "{mode:?}: {printed}");
        }
    }
}
