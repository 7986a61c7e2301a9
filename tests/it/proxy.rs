//! The agent's web proxy (`Agent.ProxyUrl`): requests go through it with its credentials, the
//! bypass list sends matching URLs direct, its password is masked like any secret, and a bad
//! proxy URL is an input error before any request.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::common::*;
use databricks_azdo::emulator::Emulator;
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::tasks::TaskName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PROXY_USER: &str = "ci-proxy";
const PROXY_PASSWORD: &str = "pr0xy%;pass]";
/// `ci-proxy:pr0xy%;pass]` in base64.
const PROXY_CREDENTIALS: &str = "Basic Y2ktcHJveHk6cHIweHklO3Bhc3Nd";

/// A forward proxy for plain-HTTP targets: keeps the first bytes (the request head) of every
/// connection it is given, then relays both ways to the host named in the request line.
struct ForwardProxy {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl ForwardProxy {
    async fn start() -> ForwardProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, seen.clone()));
            }
        });
        ForwardProxy {
            url,
            heads,
            accepting,
        }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn relay(mut client: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let mut first = vec![0; 64 * 1024];
    let read = client.read(&mut first).await.unwrap_or(0);
    let head = String::from_utf8_lossy(&first[..read]).into_owned();
    seen.lock().unwrap().push(head.clone());
    // `GET http://127.0.0.1:PORT/api/... HTTP/1.1`: the absolute form a proxy is sent.
    let Some(target) = head
        .split_whitespace()
        .nth(1)
        .and_then(|u| url::Url::parse(u).ok())
    else {
        return;
    };
    let address = format!(
        "{}:{}",
        target.host_str().unwrap_or_default(),
        target.port_or_known_default().unwrap_or(80)
    );
    let Ok(mut upstream) = TcpStream::connect(address).await else {
        return;
    };
    if upstream.write_all(&first[..read]).await.is_err() {
        return;
    }
    // Later requests on the same (kept-alive) connection are recorded too: their request lines.
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let answers = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut upstream_read, &mut client_write).await;
    });
    let mut buffer = vec![0; 64 * 1024];
    while let Ok(n) = client_read.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
        if text
            .split_whitespace()
            .nth(1)
            .is_some_and(|u| u.starts_with("http://"))
        {
            seen.lock().unwrap().push(text);
        }
        if upstream_write.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    answers.abort();
}

fn delete_step_env(
    emulator: &Emulator,
    project: &Project,
    proxy: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let mut settings = vec![
        ("repoPath", REPO_PATH),
        ("mode", "delete"),
        ("SYSTEM_DEBUG", "true"),
        ("AGENT_PROXYUSERNAME", PROXY_USER),
        ("SECRET_AGENT_PROXYPASSWORD", PROXY_PASSWORD),
    ];
    settings.extend_from_slice(proxy);
    with(&pipeline_env(emulator, project), &settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_through_the_agents_proxy_with_its_credentials() {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    let proxy = ForwardProxy::start().await;
    let env = delete_step_env(&emulator, &project, &[("AGENT_PROXYURL", &proxy.url)]);

    let outcome = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    let heads = proxy.heads();
    assert!(!heads.is_empty(), "the proxy saw no request");
    let base = emulator.base_url();
    for head in &heads {
        assert!(
            head.starts_with(&format!("GET {base}/api/2.0/")),
            "not a proxied request: {head}"
        );
        let credentials = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("proxy-authorization")
                .then(|| value.trim())
        });
        assert_eq!(credentials, Some(PROXY_CREDENTIALS), "{head}");
    }
    assert!(total_api_requests(&emulator) >= 1);
    assert!(
        outcome
            .stdout
            .contains(&format!("through the agent's proxy {}/", proxy.url)),
        "{}",
        outcome.stdout
    );
    for line in outcome.stdout.lines().chain(outcome.stderr.lines()) {
        if !line.starts_with("##vso[task.setsecret]") {
            assert!(
                !line.contains(PROXY_PASSWORD),
                "leaks the proxy password: {line}"
            );
        }
    }
    assert!(outcome
        .stdout
        .contains(&format!("##vso[task.setsecret]{}", "pr0xy%AZP25;pass]")));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bypass_list_sends_matching_urls_direct() {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    let proxy = ForwardProxy::start().await;
    let bypass = r#"["example\\.com", "127\\.0\\.0\\.1"]"#;
    let env = delete_step_env(
        &emulator,
        &project,
        &[
            ("AGENT_PROXYURL", &proxy.url),
            ("AGENT_PROXYBYPASSLIST", bypass),
        ],
    );

    let outcome = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    assert_eq!(proxy.heads(), Vec::<String>::new());
    assert!(total_api_requests(&emulator) >= 1);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_refuses_the_credentials_fails_the_step_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let refusing = tokio::spawn(async move {
        let mut heads = Vec::new();
        while let Ok((mut client, _)) = listener.accept().await {
            let mut head = vec![0; 16 * 1024];
            let read = client.read(&mut head).await.unwrap_or(0);
            heads.push(String::from_utf8_lossy(&head[..read]).into_owned());
            let _ = client
                .write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n",
                )
                .await;
            if heads.len() == 1 {
                return heads;
            }
        }
        heads
    });
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    // An https workspace: the proxy is asked for a tunnel, which it refuses.
    let env = delete_step_env(
        &emulator,
        &project,
        &[
            ("AGENT_PROXYURL", &proxy_url),
            (
                "databricksHost",
                "https://adb-1234567890123456.7.azuredatabricks.net",
            ),
        ],
    );

    let outcome = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;

    assert_eq!(outcome.code, 3, "{}", outcome.stdout);
    assert!(
        outcome.stdout.contains("proxy authorization required")
            && outcome
                .stdout
                .contains("check the proxy user name and password"),
        "{}",
        outcome.stdout
    );
    assert!(!outcome.stdout.contains("retrying"), "{}", outcome.stdout);
    let heads = refusing.await.unwrap();
    assert!(
        heads[0].starts_with("CONNECT adb-1234567890123456.7.azuredatabricks.net:443 "),
        "{}",
        heads[0]
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_proxy_setting_is_an_error_before_any_request() {
    let emulator = emulator().await;
    let project = Project::new(&[("unit", PASSING)]);
    for (variable, value, complaint) in [
        (
            "AGENT_PROXYURL",
            "proxy.corp:8080",
            "`proxy.corp:8080` is not an http(s) URL",
        ),
        (
            "AGENT_PROXYBYPASSLIST",
            "github\\.com",
            "is not a JSON array",
        ),
        (
            "AGENT_PROXYURL",
            "ci:s3cret@proxy.corp:8080",
            "`***@proxy.corp:8080` is not an http(s) URL",
        ),
    ] {
        let mut settings = vec![(variable, value)];
        if variable != "AGENT_PROXYURL" {
            settings.push(("AGENT_PROXYURL", "http://proxy.corp:8080"));
        }
        let env = delete_step_env(&emulator, &project, &settings);
        let outcome = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;
        assert_eq!(outcome.code, 2, "{}", outcome.stdout);
        assert!(outcome.stdout.contains(complaint), "{}", outcome.stdout);
        assert!(!outcome.stdout.contains("s3cret"), "{}", outcome.stdout);
    }
    assert_eq!(total_api_requests(&emulator), 0);
    emulator.shutdown().await;
}

/// Token calls take the agent's proxy like every other request; the managed identity
/// endpoint, on the machine itself, never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_calls_go_through_the_proxy_but_the_managed_identity_endpoint_does_not() {
    use databricks_azdo::scenarios::{self, AuthScenario, ScenarioSecrets};
    let secrets = ScenarioSecrets::random();
    for scenario in [
        AuthScenario::AzureFederation,
        AuthScenario::AzureManagedIdentity,
    ] {
        let emulator = emulator_with_identities(scenarios::identities(scenario, &secrets)).await;
        let project = Project::new(&[("unit", PASSING)]);
        let proxy = ForwardProxy::start().await;
        let env = with(
            &scenario_env(&emulator, &project, scenario, &secrets),
            &[
                ("repoPath", REPO_PATH),
                ("mode", "delete"),
                ("AGENT_PROXYURL", &proxy.url),
                ("AGENT_PROXYUSERNAME", PROXY_USER),
                ("SECRET_AGENT_PROXYPASSWORD", PROXY_PASSWORD),
            ],
        );
        let outcome = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;
        assert_eq!(outcome.code, 0, "{scenario:?}: {}", outcome.stdout);
        let base = emulator.base_url();
        let heads = proxy.heads();
        let through = |start: &str| heads.iter().any(|h| h.starts_with(start));
        assert!(through(&format!("GET {base}/api/2.0/")), "{heads:?}");
        if scenario == AuthScenario::AzureFederation {
            assert!(
                through(&format!("POST {base}/{}/", scenarios::ORGANIZATION)),
                "the id token request: {heads:?}"
            );
            assert!(
                through(&format!(
                    "POST {base}/{}/oauth2/v2.0/token",
                    scenarios::TENANT
                )),
                "the Entra request: {heads:?}"
            );
        } else {
            assert!(
                !heads.iter().any(|h| h.contains("/metadata/identity/")),
                "{heads:?}"
            );
            assert_eq!(emulator.tokens_issued().get("imds").copied(), Some(1));
        }
        emulator.shutdown().await;
    }
}
