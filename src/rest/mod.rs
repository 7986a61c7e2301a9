//! Calling a JSON API over HTTP, whatever the API: one attempt (limits, the step's deadline,
//! redirects refused, the error answer read by the API's own envelope, credentials hidden from
//! what a server repeats), the retry policy around it, and the credential slot. The Databricks
//! client (`databricks/`) is built on it, and so are token endpoints of other services.

pub mod answer;
mod call;
pub mod credential;
pub mod error;
pub mod retry;

pub use call::{
    Answer, Body, Caller, Envelope, Masker, Method, Notice, Request, MAX_BODY_BYTES, SECRET_HEADERS,
};
pub use credential::{Credential, CredentialHeaders, StaticToken};
pub use error::{ApiError, RequestLabel};
pub use retry::RetryPolicy;

#[cfg(test)]
pub(crate) mod scripted;
