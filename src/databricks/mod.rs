//! REST client for the parts of the Databricks API the tasks use: workspace, repos, jobs.

mod client;
mod endpoints;
pub mod error;
pub mod models;
pub mod workspace_url;

pub use crate::host::proxy::ProxySettings;
pub use crate::rest::RetryPolicy;
pub use crate::rest::{retry, Method, Notice};
pub use client::{user_agent, Client};
pub use endpoints::{RepoRef, TASKS_PER_PAGE};
pub use error::ApiError;
pub use workspace_url::{WorkspaceLink, WorkspaceUrl, WorkspaceUrlError, WORKSPACE_URL_EXAMPLE};
