//! Text from outside (a notebook's output and errors, a server's messages and links) cannot
//! forge log lines, steer a terminal, or put links, images or HTML into the build summary.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::common::*;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use databricks_azdo::emulator::Emulator;
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::tasks::TaskName;
use serde_json::{json, Value};

/// Notebooks `say<i>`, which print and exit with `texts[i]`, and `shout<i>`, which raise with
/// it (it shows in the error, its first line and the trace), all run as one step.
fn notebooks(texts: &[&str]) -> (Vec<(String, String)>, String) {
    let mut sources = Vec::new();
    let mut paths = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
        let value = format!("v = bytes.fromhex('{hex}').decode('utf-8')");
        let say =
            format!("# Databricks notebook source\n{value}\nprint(v)\ndbutils.notebook.exit(v)\n");
        let shout = format!("# Databricks notebook source\n{value}\nraise ValueError(v)\n");
        sources.push((format!("say{i}"), say));
        sources.push((format!("shout{i}"), shout));
        paths.push(format!("test/say{i}\ntest/shout{i}"));
    }
    (sources, paths.join("\n"))
}

/// A project holding `notebooks`, checked out in the emulator as [`REPO_PATH`].
async fn checked_out(emulator: &Emulator, notebooks: &[(String, String)]) -> Project {
    let sources: Vec<(&str, &str)> = notebooks
        .iter()
        .map(|(name, source)| (name.as_str(), source.as_str()))
        .collect();
    let project = Project::new(&sources);
    let env = with(
        &pipeline_env(emulator, &project),
        &[("repoPath", REPO_PATH)],
    );
    let update = run_task(TaskName::RepoUpdate, env, OutputMode::Agent).await;
    assert_eq!(update.code, 0, "{}", update.stdout);
    project
}

/// Ways to start a line the agent would read as a command or a formatting line, or to steer a
/// terminal. Each forged line starts with `FORGED` right after its `]`.
const FORGERIES: &[&str] = &[
    "ok\r##[error]FORGED by a bare CR",
    "ok\r\n##[section]FORGED by CRLF",
    "ok\n  ##[group]FORGED after spaces",
    "\u{1b}[2K\r##[warning]FORGED behind an erase-line",
    "\u{1b}[31m##[error]FORGED behind a colour\u{1b}[0m",
    "\u{feff}##[error]FORGED behind a BOM",
    "\u{200b}##[command]FORGED behind a zero-width space",
    "x \u{0}##vso[task.complete result=Succeeded]FORGED after NUL",
    "x #\u{ad}#vso[task.setvariable variable=x]FORGED through a soft hyphen",
    "x ##VSO[task.complete result=Succeeded]FORGED in capitals",
    "\u{1b}]0;FORGED terminal title\u{7}",
    "\u{1b}]8;;https://evil.example\u{1b}\\FORGED hyperlink\u{1b}]8;;\u{1b}\\",
    "\u{9b}2J FORGED by a C1 CSI",
    "\u{202e}DEGROF by a bidi override",
    "\u{2028}##[error]FORGED after a line separator",
];

/// Characters Unicode says to ignore, which the agent's culture-aware `IndexOf` looks through.
fn visible(line: &str) -> String {
    line.chars()
        .filter(|c| {
            !matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{206f}' | '\u{feff}')
        })
        .collect()
}

/// What the agent does with our stdout: lines split at LF and CR, a logging command's message
/// unescaped and, for an issue, written to the log with each of its lines a line of its own.
fn agent_lines(stdout: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for line in stdout.split(['\n', '\r']) {
        if let Some(rest) = line.strip_prefix("##vso[task.logissue ") {
            let message = rest.split_once(']').map(|(_, m)| m).unwrap_or_default();
            let message = message
                .replace("%0D", "\r")
                .replace("%0A", "\n")
                .replace("%AZP25", "%");
            lines.extend(message.split(['\n', '\r']).map(str::to_string));
        } else {
            lines.push(line.to_string());
        }
    }
    lines
}

const OUR_COMMANDS: &[&str] = &[
    "task.setsecret",
    "task.setvariable",
    "task.logissue",
    "task.complete",
    "task.setprogress",
    "task.uploadsummary",
    "results.publish",
];

/// No line the agent or a terminal would see is forged, and none carries a control character.
fn assert_no_forgery(label: &str, output: &str) {
    for c in output.chars() {
        assert!(
            c == '\n' || c == '\t' || !c.is_control(),
            "{label}: a control character {c:?} reaches the output:\n{output}"
        );
        assert!(
            !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}'),
            "{label}: {c:?} reaches the output:\n{output}"
        );
    }
    for line in agent_lines(output) {
        let seen = visible(&line);
        let trimmed = seen.trim_start();
        if let Some(rest) = trimmed.strip_prefix("##[") {
            let after = rest.split_once(']').map(|(_, after)| after).unwrap_or("");
            assert!(
                !after.starts_with("FORGED"),
                "{label}: a forged formatting line: {line:?}"
            );
        }
        let lower = seen.to_ascii_lowercase();
        if let Some(at) = lower.find("##vso[") {
            let name = &lower[at + 6..];
            let name = name.split([' ', ']']).next().unwrap_or_default();
            assert!(
                at == 0 && OUR_COMMANDS.contains(&name),
                "{label}: a logging command inside a line: {line:?}"
            );
        }
    }
}

/// Item: log lines cannot be forged. A notebook's output, error and trace, with CR, ANSI
/// escapes, NUL, invisible characters and bidi overrides, in every output mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notebook_text_cannot_forge_log_lines() {
    let emulator = emulator().await;
    let (sources, paths) = notebooks(FORGERIES);
    let project = checked_out(&emulator, &sources).await;
    let env = with(
        &pipeline_env(&emulator, &project),
        &[
            ("repoPath", REPO_PATH),
            ("existingClusterId", CLUSTER),
            ("notebookPaths", &paths),
            ("SYSTEM_DEBUG", "true"),
        ],
    );
    for mode in [OutputMode::Agent, OutputMode::Terminal, OutputMode::Json] {
        let outcome = run_task(TaskName::RunNotebookTest, env.clone(), mode).await;
        assert_eq!(outcome.code, 1, "{}", outcome.stdout);
        let human = if mode == OutputMode::Json {
            &outcome.stderr
        } else {
            &outcome.stdout
        };
        assert_no_forgery(&format!("{mode:?}"), human);
        for text in ["FORGED by a bare CR", "FORGED hyperlink", "DEGROF"] {
            assert!(
                human.contains(text),
                "{mode:?}: the text is still shown: {human}"
            );
        }
        if mode == OutputMode::Json {
            let document: Value = serde_json::from_str(&outcome.stdout).unwrap();
            for (i, forgery) in FORGERIES.iter().enumerate() {
                let output = &document["notebooks"][2 * i]["output"];
                assert_eq!(output, *forgery, "kept as data");
            }
            assert!(
                !outcome.stdout.contains(['\u{9b}', '\u{2028}']),
                "raw C1 or separators in the JSON document"
            );
        }
    }
    emulator.shutdown().await;
}

/// A stand-in workspace: runs/submit, runs/get and runs/get-output answer what the test set,
/// with the task keys the task submitted.
#[derive(Clone)]
struct Fake {
    task_keys: Arc<Mutex<Vec<String>>>,
    run_page_url: String,
    submit_error: Option<String>,
    output: Value,
}

async fn submit(State(fake): State<Fake>, Json(body): Json<Value>) -> impl IntoResponse {
    if let Some(message) = &fake.submit_error {
        let envelope = json!({ "error_code": "INVALID_PARAMETER_VALUE", "message": message });
        return (StatusCode::BAD_REQUEST, Json(envelope));
    }
    let keys = body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_key"].as_str().unwrap().to_string())
        .collect();
    *fake.task_keys.lock().unwrap() = keys;
    (StatusCode::OK, Json(json!({ "run_id": 7 })))
}

async fn runs_get(State(fake): State<Fake>) -> Json<Value> {
    let state = json!({ "life_cycle_state": "TERMINATED", "result_state": "FAILED" });
    let tasks: Vec<Value> = fake
        .task_keys
        .lock()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, key)| {
            json!({ "task_key": key, "run_id": 100 + i, "state": state,
                    "run_page_url": fake.run_page_url })
        })
        .collect();
    Json(json!({ "run_id": 7, "state": state, "tasks": tasks,
                 "run_page_url": fake.run_page_url }))
}

/// Serves the fake made by `make`, which is given the fake's own origin.
async fn fake_workspace(make: impl FnOnce(&str) -> Fake) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = Router::new()
        .route("/api/2.2/jobs/runs/submit", post(submit))
        .route("/api/2.2/jobs/runs/get", get(runs_get))
        .route(
            "/api/2.2/jobs/runs/get-output",
            get(|State(fake): State<Fake>| async move { Json(fake.output.clone()) }),
        )
        .with_state(make(&url));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

fn fake(run_page_url: &str, output: Value) -> Fake {
    Fake {
        task_keys: Arc::default(),
        run_page_url: run_page_url.to_string(),
        submit_error: None,
        output,
    }
}

/// The environment of a notebook test step against `url`, with reports written to `reports`.
fn fake_env(url: &str, reports: &std::path::Path) -> BTreeMap<String, String> {
    [
        ("TF_BUILD", "True"),
        ("INPUT_DATABRICKSHOST", url),
        ("INPUT_DATABRICKSTOKEN", TOKEN),
        ("SECRET_DATABRICKS_TOKEN", TOKEN),
        ("INPUT_NOTEBOOKPATHS", "/Shared/unit"),
        ("INPUT_EXISTINGCLUSTERID", CLUSTER),
        ("SYSTEM_DEBUG", "true"),
        ("AGENT_TEMPDIRECTORY", &reports.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Item: log lines cannot be forged, through the server's messages: an error that refuses
/// the submit is reported (an issue whose every line reaches the log) without forged lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_messages_cannot_forge_log_lines() {
    for forgery in FORGERIES {
        let url = fake_workspace(|_| Fake {
            submit_error: Some(format!("bad request {forgery}")),
            ..fake("", json!({}))
        })
        .await;
        let reports = tempfile::tempdir().unwrap();
        for mode in [OutputMode::Agent, OutputMode::Terminal] {
            let env = fake_env(&url, reports.path());
            let outcome = run_task(TaskName::RunNotebookTest, env, mode).await;
            assert_eq!(outcome.code, 3, "{forgery:?}: {}", outcome.stdout);
            assert_no_forgery(&format!("{forgery:?} {mode:?}"), &outcome.stdout);
        }
    }
}

/// Markdown from outside: as code in the summary, never as links, images, HTML or table cells.
const MARKDOWN: &[&str] = &[
    "[click here](https://evil.example/phish)",
    "![pixel](https://evil.example/p.png)",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "a | b | c",
    "`code` and ``double`` ticks`",
    "<https://evil.example/auto>",
    "**bold** _em_ # heading",
    "\\| an escaped pipe \\",
    "&lt;entity&gt; &amp; &#124;",
    "line one\nline two | [x](y)",
];

/// Everything a GFM renderer makes of the summary that could lead somewhere or run.
fn links_images_and_html(markdown: &str) -> Vec<String> {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    Parser::new_ext(markdown, Options::ENABLE_TABLES)
        .filter_map(|event| match event {
            Event::Start(Tag::Link { dest_url, .. }) => Some(format!("link {dest_url}")),
            Event::Start(Tag::Image { dest_url, .. }) => Some(format!("image {dest_url}")),
            Event::Html(html) | Event::InlineHtml(html) => Some(format!("html {html}")),
            _ => None,
        })
        .collect()
}

fn summary_of(stdout: &str) -> String {
    let path = stdout
        .lines()
        .find_map(|l| l.strip_prefix("##vso[task.uploadsummary]"))
        .expect("a summary is attached");
    std::fs::read_to_string(path).unwrap()
}

/// Item: the build summary is not an injection point. Notebook outputs and errors with links,
/// images, HTML, pipes and backticks are shown as code, whole, in their own cell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notebook_text_is_code_in_the_summary() {
    let emulator = emulator().await;
    let (sources, paths) = notebooks(MARKDOWN);
    let project = checked_out(&emulator, &sources).await;
    let reports = tempfile::tempdir().unwrap();
    let env = with(
        &pipeline_env(&emulator, &project),
        &[
            ("repoPath", REPO_PATH),
            ("existingClusterId", CLUSTER),
            ("notebookPaths", &paths),
            ("AGENT_TEMPDIRECTORY", &reports.path().display().to_string()),
        ],
    );
    let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;
    assert_eq!(outcome.code, 1, "{}", outcome.stdout);
    let markdown = summary_of(&outcome.stdout);
    let origin = emulator.base_url();
    let found = links_images_and_html(&markdown);
    // The run page and each notebook's own page, all into the workspace, and nothing else.
    assert!(
        found.len() == 1 + 2 * MARKDOWN.len()
            && found
                .iter()
                .all(|f| f.starts_with(&format!("link {origin}/"))),
        "only links into the workspace: {found:?}\n{markdown}"
    );
    let rows = summary_table(&markdown);
    assert_eq!(rows.len(), 1 + 2 * MARKDOWN.len(), "{markdown}");
    assert!(
        rows.iter().all(|row| row.len() == 5),
        "{rows:?}\n{markdown}"
    );
    for (i, text) in MARKDOWN.iter().enumerate() {
        let (say, shout) = (&rows[1 + 2 * i], &rows[2 + 2 * i]);
        assert_eq!(say[1], format!("{REPO_PATH}/test/say{i}"), "{markdown}");
        assert_eq!(
            say[4],
            text.replace('\n', " "),
            "{text:?}: the output, whole"
        );
        let first_line = text.lines().next().unwrap();
        let error = format!("failed: ValueError: {first_line}");
        assert_eq!(shout[4], error, "{text:?}: the error, whole");
    }
    emulator.shutdown().await;
}

/// Item: the build summary is not an injection point, through the run page link Databricks
/// gives. A link elsewhere is neither linked in the summary, printed in the log (where the web
/// log makes URLs clickable) nor handed on as `runPageUrl`; a link into the workspace is,
/// written so that Markdown cannot read anything else into it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_links_into_the_workspace_are_shown() {
    let foreign = [
        "https://evil.example/?o=1#job/1/run/7",
        "javascript:alert(document.cookie)",
        "https://127.0.0.1.evil.example/",
        "//evil.example/run/7",
        "data:text/html,<script>alert(1)</script>",
        "https://evil.example/)![pixel](https://evil.example/p.png",
    ];
    for url in foreign {
        let workspace = fake_workspace(|_| fake(url, json!({ "error": "boom" }))).await;
        let reports = tempfile::tempdir().unwrap();
        let env = fake_env(&workspace, reports.path());
        let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;
        assert_eq!(outcome.code, 1, "{url}: {}", outcome.stdout);
        for line in outcome.stdout.lines() {
            assert!(
                !line.contains("https://evil")
                    && !line.contains("//evil")
                    && !line.contains("javascript:")
                    && !line.contains("data:"),
                "{url}: the log shows the link: {line}"
            );
        }
        assert_eq!(
            output_variable(&outcome.stdout, "runPageUrl"),
            Some(""),
            "{url}"
        );
        let markdown = summary_of(&outcome.stdout);
        assert_eq!(
            links_images_and_html(&markdown),
            Vec::<String>::new(),
            "{url}:\n{markdown}"
        );
        let env = fake_env(&workspace, reports.path());
        let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Json).await;
        let document: Value = serde_json::from_str(&outcome.stdout).unwrap();
        assert_eq!(document["runPageUrl"], Value::Null, "{url}: {document}");
        assert_eq!(document["notebooks"][0]["runPageUrl"], Value::Null, "{url}");
        assert!(
            !outcome.stderr.contains("evil.example/"),
            "{}",
            outcome.stderr
        );
    }

    // On the workspace's own origin: linked, and nothing else is read into it.
    for path in [
        "/?o=1#job/1/run/7",
        "/x)![pixel](https://evil.example/p.png",
        "/x>[a](https://evil.example)<",
        "/x\\>`|<img src=x>",
    ] {
        let workspace =
            fake_workspace(|origin| fake(&format!("{origin}{path}"), json!({ "error": "boom" })))
                .await;
        let reports = tempfile::tempdir().unwrap();
        let env = fake_env(&workspace, reports.path());
        let outcome = run_task(TaskName::RunNotebookTest, env, OutputMode::Agent).await;
        assert_eq!(outcome.code, 1, "{path}: {}", outcome.stdout);
        let markdown = summary_of(&outcome.stdout);
        let found = links_images_and_html(&markdown);
        // The run page and the notebook's task page.
        assert_eq!(found.len(), 2, "{path}: {found:?}\n{markdown}");
        assert!(
            found
                .iter()
                .all(|f| f.starts_with(&format!("link {workspace}/"))),
            "{path}: {found:?}"
        );
        let output = output_variable(&outcome.stdout, "runPageUrl").unwrap();
        assert!(output.starts_with(&format!("{workspace}/")), "{output}");
    }
}
