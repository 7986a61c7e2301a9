//! The Azure Pipelines agent contract: inputs and variables in, logging commands out.

pub mod escape;
pub mod inputs;
pub mod log;
pub mod markdown;
pub mod secrets;

pub use inputs::{InputError, Inputs};
pub use log::{Log, OutputMode, TaskResult};
pub use secrets::{Masked, Secrets};
