//! The wasm module's exports, called by each task folder's `index.js`.

use std::collections::BTreeMap;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use crate::host::{Host, WasmHost};
use crate::tasks::{self, RunOptions, TaskName};

/// Runs a task (`DatabricksRepoUpdate` or `DatabricksRunNotebookTest`) with `env` (the step's
/// `process.env`) and `io` (see [`WasmHost::new`]). Resolves to the process exit code.
#[wasm_bindgen(js_name = runTask)]
pub async fn run_task(task: String, env_object: JsValue, io: JsValue) -> i32 {
    // Inserted one by one: collecting would sort first, and sorting costs wasm size.
    let mut env = BTreeMap::new();
    for entry in js_sys::Object::entries(&js_sys::Object::from(env_object)).iter() {
        let pair = js_sys::Array::from(&entry);
        if let (Some(key), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
            env.insert(key, value);
        }
    }
    let host = match WasmHost::new(env, &io) {
        Ok(host) => host,
        Err(problem) => {
            wasm_bindgen::throw_str(&format!("databricks-azdo: {problem}"));
        }
    };
    let Some(task) = TaskName::parse(&task) else {
        host.write_line(&format!(
            "##vso[task.logissue type=error]unknown task `{task}`"
        ));
        return 2;
    };
    tasks::run(task, Rc::new(host), &RunOptions::default()).await
}

/// The core's version, for smoke tests and diagnostics.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
