//! task.json, vss-extension.json and the core must agree: one source of truth, no drift.

use std::collections::BTreeSet;

use databricks_azdo::pipeline::inputs::PickList;
use databricks_azdo::tasks::{connection, repo_update, run_notebook_test, TaskName};
use serde_json::Value;

struct Core {
    /// The task's own inputs and the sign-in inputs both tasks share.
    inputs: Vec<&'static str>,
    pick_lists: &'static [PickList],
    outputs: &'static [&'static str],
}

fn core(task: TaskName) -> Core {
    match task {
        TaskName::RepoUpdate => Core {
            inputs: [connection::INPUTS, repo_update::INPUTS].concat(),
            pick_lists: repo_update::PICK_LISTS,
            outputs: repo_update::OUTPUTS,
        },
        TaskName::RunNotebookTest => Core {
            inputs: [connection::INPUTS, run_notebook_test::INPUTS].concat(),
            pick_lists: run_notebook_test::PICK_LISTS,
            outputs: run_notebook_test::OUTPUTS,
        },
    }
}

fn read_json(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn manifest(task: TaskName) -> Value {
    read_json(&format!("task/{}/task.json", task.as_str()))
}

fn input<'a>(manifest: &'a Value, name: &str) -> &'a Value {
    manifest["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no input {name}"))
}

#[test]
fn inputs_are_the_ones_the_core_reads() {
    for task in TaskName::ALL {
        let manifest = manifest(task);
        let declared: BTreeSet<&str> = manifest["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect();
        let read: BTreeSet<&str> = core(task).inputs.iter().copied().collect();
        assert_eq!(declared, read, "{}", task.as_str());
    }
}

#[test]
fn pick_lists_and_defaults_match_the_core() {
    for task in TaskName::ALL {
        let manifest = manifest(task);
        for list in core(task).pick_lists {
            let declared = input(&manifest, list.input);
            assert_eq!(declared["type"], "pickList", "{}", list.input);
            let options: BTreeSet<&str> = declared["options"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let accepted: BTreeSet<&str> = list.options.iter().copied().collect();
            assert_eq!(options, accepted, "{}", list.input);
            assert_eq!(declared["defaultValue"], list.default, "{}", list.input);
        }
    }
    let providers = input(&manifest(TaskName::RepoUpdate), "gitProvider")["options"]
        .as_object()
        .unwrap()
        .clone();
    let providers: BTreeSet<&str> = providers
        .keys()
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .collect();
    let known: BTreeSet<&str> = databricks_azdo::databricks::models::PROVIDERS
        .iter()
        .copied()
        .collect();
    assert_eq!(providers, known);
    let timeout = input(&manifest(TaskName::RunNotebookTest), "timeoutMinutes")["defaultValue"]
        .as_str()
        .unwrap()
        .parse::<f64>()
        .unwrap();
    assert_eq!(timeout, run_notebook_test::DEFAULT_TIMEOUT_MINUTES);
    for task in TaskName::ALL {
        let manifest = manifest(task);
        assert_eq!(
            input(&manifest, "databricksHost")["defaultValue"],
            "$(DATABRICKS_HOST)"
        );
        assert_eq!(
            input(&manifest, "databricksToken")["defaultValue"],
            "$(DATABRICKS_TOKEN)"
        );
    }
}

#[test]
fn outputs_are_declared() {
    for task in TaskName::ALL {
        let manifest = manifest(task);
        let declared: Vec<&str> = manifest["outputVariables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        assert_eq!(declared, core(task).outputs, "{}", task.as_str());
    }
}

/// `major.minor.patch` of an agent version, comparable.
fn agent_version(text: &str) -> (u32, u32, u32) {
    let parts: Vec<u32> = text.split('.').map(|p| p.parse().unwrap()).collect();
    assert_eq!(parts.len(), 3, "agent version {text}");
    (parts[0], parts[1], parts[2])
}

/// The first agent release with this execution handler (README: "Azure DevOps Services and Server").
fn agent_version_with_handler(handler: &str) -> (u32, u32, u32) {
    match handler {
        // The patch release 2.206.1 brought the handler (azure-pipelines-agent pull request 3899).
        "Node16" => (2, 206, 1),
        "Node20_1" => (3, 232, 1),
        "Node24" => (4, 265, 1),
        other => panic!("an execution handler this test does not know: {other}"),
    }
}

#[test]
fn manifests_are_complete_and_consistent() {
    let version: Vec<u64> = env!("CARGO_PKG_VERSION")
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    let extension = read_json("vss-extension.json");
    assert_eq!(
        extension["version"],
        env!("CARGO_PKG_VERSION"),
        "the extension version follows the crate"
    );
    let mut ids = BTreeSet::new();
    // What the first task declares about runtimes; the other must declare the same.
    let mut runtimes: Option<(Value, Value)> = None;
    for task in TaskName::ALL {
        let manifest = manifest(task);
        let name = task.as_str();
        assert_eq!(manifest["name"], name);
        assert!(
            ids.insert(manifest["id"].as_str().unwrap().to_string()),
            "task ids are unique"
        );
        let v = &manifest["version"];
        assert_eq!(
            [&v["Major"], &v["Minor"], &v["Patch"]]
                .map(|n| n.as_u64().unwrap())
                .to_vec(),
            version,
            "{name}: the task version follows the crate"
        );
        assert!(
            manifest["friendlyName"].as_str().unwrap().len() <= 40,
            "{name}: friendlyName ≤ 40 chars"
        );
        assert!(!manifest["instanceNameFormat"].as_str().unwrap().is_empty());
        let execution = manifest["execution"].as_object().unwrap();
        let handlers: Vec<&str> = execution.keys().map(String::as_str).collect();
        assert_eq!(handlers, ["Node16", "Node20_1", "Node24"], "{name}");
        for handler in execution.values() {
            assert_eq!(handler["target"], "index.js");
        }
        // The agent runs a task only from minimumAgentVersion on: the version of the first
        // agent that knows the oldest handler declared (an older agent would find none).
        let needed = handlers
            .iter()
            .map(|&h| agent_version_with_handler(h))
            .min()
            .unwrap();
        assert_eq!(
            agent_version(manifest["minimumAgentVersion"].as_str().unwrap()),
            needed,
            "{name}: minimumAgentVersion is what its oldest handler needs"
        );
        let declared = (
            manifest["execution"].clone(),
            manifest["minimumAgentVersion"].clone(),
        );
        let first = runtimes.get_or_insert_with(|| declared.clone());
        assert_eq!(
            *first, declared,
            "{name}: both tasks declare the same handlers and minimumAgentVersion"
        );
        let groups: BTreeSet<&str> = manifest["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        let names: BTreeSet<&str> = manifest["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect();
        for input in manifest["inputs"].as_array().unwrap() {
            let input_name = input["name"].as_str().unwrap();
            assert!(
                !input["label"].as_str().unwrap_or_default().is_empty(),
                "{name}.{input_name}: label"
            );
            assert!(
                !input["helpMarkDown"]
                    .as_str()
                    .unwrap_or_default()
                    .is_empty(),
                "{name}.{input_name}: help"
            );
            assert!(
                groups.contains(input["groupName"].as_str().unwrap()),
                "{name}.{input_name}: group"
            );
            // A service connection input names a type Azure DevOps has (AzureRM) or one this
            // extension contributes, with the name the core expects.
            if let Some(kind) = input["type"]
                .as_str()
                .and_then(|t| t.strip_prefix("connectedService:"))
            {
                let known = kind == "AzureRM"
                    || extension["contributions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|c| {
                            c["type"] == "ms.vss-endpoint.service-endpoint-type"
                                && c["properties"]["name"] == kind
                        });
                assert!(known, "{name}.{input_name}: no endpoint type `{kind}`");
                if kind != "AzureRM" {
                    assert_eq!(
                        kind,
                        databricks_azdo::tasks::connection::DATABRICKS_ENDPOINT_TYPE
                    );
                }
            }
            if let Some(rule) = input["visibleRule"].as_str() {
                let referenced = rule.split([' ', '=', '!', '<', '>']).next().unwrap();
                assert!(
                    names.contains(referenced),
                    "{name}.{input_name}: visibleRule names {referenced}"
                );
            }
        }
        assert!(
            std::path::Path::new(&format!("task/{name}/icon.png")).exists(),
            "{name}: icon"
        );
        let contributed = extension["contributions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["properties"]["name"] == format!("task/{name}"));
        assert!(contributed, "{name} is contributed by the extension");
        let shipped = extension["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == format!("task/{name}"));
        assert!(shipped, "{name} is packaged");
    }
}
