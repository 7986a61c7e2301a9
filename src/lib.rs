//! databricks-azdo: check out a branch into a Databricks Repo and run notebook tests on
//! Databricks, from Azure Pipelines (wasm, through the agent's Node handler) or a terminal
//! (native binary). See the README's architecture section for the map.

pub mod databricks;
pub mod host;
pub mod pipeline;
pub mod rest;
pub mod tasks;
pub mod text;

#[cfg(not(target_arch = "wasm32"))]
pub mod demo;
#[cfg(not(target_arch = "wasm32"))]
pub mod emulator;
#[cfg(target_arch = "wasm32")]
pub mod wasm;
