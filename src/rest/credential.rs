//! The credential slot: where the `Authorization` value of each attempt comes from. A personal
//! access token never changes; a token obtained from an identity provider expires and is
//! fetched again, and a 401 is answered by one refresh and one retry (`databricks::Client`).

use futures::future::{ready, LocalBoxFuture};

use super::error::ApiError;

pub trait Credential {
    /// The `Authorization` header value for the next attempt (fetched or renewed if needed).
    fn authorization(&self) -> LocalBoxFuture<'_, Result<String, ApiError>>;

    /// The server refused the last value: obtain a new one. `Ok(false)` when there is nothing
    /// new to get (a personal access token), so the refusal stands.
    fn refresh(&self) -> LocalBoxFuture<'_, Result<bool, ApiError>> {
        Box::pin(ready(Ok(false)))
    }
}

/// A personal access token (or any token given as it is).
pub struct StaticToken {
    authorization: String,
}

impl StaticToken {
    pub fn new(token: &str) -> StaticToken {
        StaticToken {
            authorization: format!("Bearer {token}"),
        }
    }
}

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticToken(***)")
    }
}

impl Credential for StaticToken {
    fn authorization(&self) -> LocalBoxFuture<'_, Result<String, ApiError>> {
        Box::pin(ready(Ok(self.authorization.clone())))
    }
}
