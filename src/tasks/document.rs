//! The `--output json` document: one envelope for every task (`task`, `ok`, `exitCode`, and
//! `error` when it failed) around the task's own details.

use serde::Serialize;

use super::{Failure, Report, TaskName};

#[derive(Serialize)]
struct Document<'a> {
    task: &'static str,
    ok: bool,
    #[serde(rename = "exitCode")]
    exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDocument<'a>>,
    #[serde(flatten)]
    details: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

#[derive(Serialize)]
struct ErrorDocument<'a> {
    kind: &'static str,
    message: &'a str,
    hints: &'a [String],
}

/// The document of a task that ended with `outcome`.
pub fn document(task: TaskName, outcome: &Result<Report, Failure>) -> serde_json::Value {
    let document = match outcome {
        Ok(report) => Document {
            task: task.as_str(),
            ok: true,
            exit_code: 0,
            error: None,
            details: report.details.as_object(),
        },
        Err(failure) => Document {
            task: task.as_str(),
            ok: false,
            exit_code: failure.kind.exit_code(),
            error: Some(ErrorDocument {
                kind: failure.kind.as_str(),
                message: &failure.message,
                hints: &failure.hints,
            }),
            details: failure.details.as_ref().and_then(|d| d.as_object()),
        },
    };
    serde_json::to_value(document).expect("the document serializes")
}
