//! Property tests ("fuzzing") of what parses text from outside: server answers, logging-command
//! escaping, user input. The suite runs the default 256 cases per property;
//! `scripts/fuzz.sh [cases]` runs many more.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use databricks_azdo::databricks::error::parse_error_body;
use databricks_azdo::databricks::models::{Run, RunOutput};
use databricks_azdo::databricks::WorkspaceUrl;
use databricks_azdo::host::{Host, NativeHost};
use databricks_azdo::pipeline::escape::{escape_message, escape_property};
use databricks_azdo::pipeline::{Log, OutputMode};
use databricks_azdo::tasks::run_notebook_test::{parse_cluster_spec, parse_parameters};
use proptest::prelude::*;
use serde_json::Value;

/// Any JSON value, nested a few levels, with the keys and values Databricks uses mixed in.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[A-Z_]{0,20}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("state".to_string()),
            Just("life_cycle_state".to_string()),
            Just("result_state".to_string()),
            Just("tasks".to_string()),
            Just("run_id".to_string()),
            Just("notebook_output".to_string()),
            Just("result".to_string()),
            "[a-z_]{1,12}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The agent's own unescaping (azure-pipelines-task-lib's `unescape`).
fn agent_unescape(s: &str) -> String {
    s.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%5D", "]")
        .replace("%3B", ";")
        .replace("%AZP25", "%")
}

fn capture_log() -> (Log, Arc<Mutex<Vec<u8>>>) {
    let out = Arc::new(Mutex::new(Vec::new()));
    let host: Rc<dyn Host> = Rc::new(NativeHost::new(
        BTreeMap::new(),
        out.clone(),
        Arc::new(Mutex::new(std::io::sink())),
    ));
    (Log::new(host, OutputMode::Agent, true), out)
}

proptest! {
    #[test]
    fn error_bodies_always_give_a_message(status in 100u16..600, body in any::<String>()) {
        let (_, message) = parse_error_body(status, &body);
        prop_assert!(!message.is_empty());
    }

    #[test]
    fn run_answers_never_panic(value in json()) {
        let text = value.to_string();
        let _ = serde_json::from_str::<Run>(&text);
        let _ = serde_json::from_str::<RunOutput>(&text);
        let _ = serde_json::from_value::<Run>(value);
    }

    #[test]
    fn truncated_answers_never_panic(value in json(), cut in any::<prop::sample::Index>()) {
        let text = value.to_string();
        let at = cut.index(text.len() + 1);
        if let Some(prefix) = text.get(..at) {
            let _ = serde_json::from_str::<Run>(prefix);
        }
    }

    #[test]
    fn property_escaping_round_trips_through_the_agent(value in any::<String>()) {
        let escaped = escape_property(&value);
        prop_assert!(!escaped.contains([';', ']', '\r', '\n']));
        prop_assert_eq!(agent_unescape(&escaped), value);
    }

    #[test]
    fn message_escaping_round_trips_through_the_agent(value in any::<String>()) {
        let escaped = escape_message(&value);
        prop_assert!(!escaped.contains(['\r', '\n']));
        prop_assert_eq!(agent_unescape(&escaped), value);
    }

    #[test]
    fn nothing_printed_can_issue_a_second_command(text in "(##vso\\[|##\\[|[a-z ;\\]%\r\n])*") {
        let (log, out) = capture_log();
        log.info(&text);
        log.untrusted(&text);
        log.warning(&text);
        log.error(&text);
        log.debug(&text);
        log.set_output("x", &text);
        log.complete(databricks_azdo::pipeline::TaskResult::Failed, &text);
        let printed = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        for line in printed.lines() {
            prop_assert!(line.matches("##vso[").count() <= 1, "{}", line);
            let ours = ["##vso[task.logissue", "##vso[task.setvariable", "##vso[task.complete", "##[debug]"];
            if line.starts_with("##") {
                prop_assert!(ours.iter().any(|p| line.starts_with(p)), "{}", line);
            }
        }
    }

    /// What the agent sees: lines split at CR as well as LF, an issue's message unescaped and
    /// written line by line, `##vso[` found through invisible characters.
    #[test]
    fn no_line_the_agent_sees_is_forged(
        text in "(##vso\\[|##VsO\\[|##\\[|#|\u{ad}|\u{feff}|\u{200b}|\u{1b}\\[31m|\u{1b}\\]0;|\u{7}|\u{1b}|\u{0}|\u{9b}|\u{202e}|[a-z \\]%\r\n\t])*"
    ) {
        let (log, out) = capture_log();
        log.info(&text);
        log.warning(&text);
        log.error(&text);
        log.debug(&text);
        log.section(&text);
        log.group(&text);
        log.set_output("x", &text);
        log.complete(databricks_azdo::pipeline::TaskResult::Failed, &text);
        let printed = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        prop_assert!(!printed.chars().any(|c| c != '\n' && c != '\t' && c.is_control()), "{:?}", printed);
        let ours = ["##vso[task.", "##[debug]", "##[section]", "##[group]"];
        for line in printed.split('\n') {
            prop_assert!(!(line.starts_with("##[") || line.starts_with("##vso[")) || ours.iter().any(|p| line.starts_with(p)), "{:?}", line);
            let (head, message) = match line.split_once(']') {
                Some((head, message)) if line.starts_with("##vso[") => (head, agent_unescape(message)),
                _ => ("", line.to_string()),
            };
            for (i, part) in message.split(['\r', '\n']).enumerate() {
                let seen: String = part.chars().filter(|c| !matches!(c, '\u{ad}' | '\u{200b}' | '\u{feff}')).collect();
                prop_assert!(!seen.to_ascii_lowercase().contains("##vso["), "{:?} in {:?}", part, line);
                let ours = !head.is_empty() || line.starts_with("##[");
                let starts_a_line = i > 0 || !ours;
                prop_assert!(!(starts_a_line && seen.trim_start().starts_with("##[")), "{:?} in {:?}", part, line);
            }
        }
    }

    #[test]
    fn user_input_parsers_never_panic(text in any::<String>()) {
        let _ = WorkspaceUrl::parse(&text);
        let _ = parse_parameters(&text);
        let _ = parse_cluster_spec(&text);
    }

    #[test]
    fn json_shaped_input_never_panics(value in json()) {
        let _ = parse_parameters(&value.to_string());
        let _ = parse_cluster_spec(&value.to_string());
    }
}
