//! databricks-azdo: check out a branch into a Databricks Repo and run notebook tests on
//! Databricks, from Azure Pipelines (wasm, through the agent's Node handler) or a terminal
//! (native binary). See the README's architecture section for the map.

pub mod auth;
pub mod databricks;
pub mod host;
pub mod pipeline;
pub mod rest;
pub mod tasks;
pub mod text;

// The local workspace and the offline demo: development, tests and benchmarks only (feature
// `emulator`, on by default). The binary for agents and the wasm core are built without them.
#[cfg(all(feature = "emulator", not(target_arch = "wasm32")))]
pub mod demo;
#[cfg(all(feature = "emulator", not(target_arch = "wasm32")))]
pub mod emulator;
#[cfg(all(feature = "emulator", not(target_arch = "wasm32")))]
pub mod scenarios;
#[cfg(all(feature = "emulator", not(target_arch = "wasm32")))]
pub mod terminal_log;
#[cfg(target_arch = "wasm32")]
pub mod wasm;
