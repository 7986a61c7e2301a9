//! The credential slot: where the credential headers of each attempt come from. A personal
//! access token never changes; a token obtained from an identity provider expires and is
//! fetched again (`auth/`), and a 401 is answered by one refresh and one retry
//! (`databricks::Client`).

use futures::future::{ready, LocalBoxFuture};

use super::error::ApiError;

/// Headers that prove who is calling: `authorization` first, then any the identity needs
/// besides (Azure's management token headers). Every value is a secret.
pub type CredentialHeaders = Vec<(&'static str, String)>;

pub trait Credential {
    /// The credential headers for the next attempt (fetched or renewed if needed).
    fn headers(&self) -> LocalBoxFuture<'_, Result<CredentialHeaders, ApiError>>;

    /// The server refused `refused` (headers this credential gave): obtain new ones, unless
    /// that already happened since. `Ok(false)` when there is nothing new to get (a personal
    /// access token), so the refusal stands.
    fn refresh<'a>(
        &'a self,
        _refused: &'a CredentialHeaders,
    ) -> LocalBoxFuture<'a, Result<bool, ApiError>> {
        Box::pin(ready(Ok(false)))
    }

    /// What to tell the user when the workspace refuses this credential (401, or a 403 about
    /// the token or the identity): where it comes from and what to check.
    fn refused_hint(&self) -> Option<String> {
        None
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
    fn headers(&self) -> LocalBoxFuture<'_, Result<CredentialHeaders, ApiError>> {
        Box::pin(ready(Ok(vec![(
            "authorization",
            self.authorization.clone(),
        )])))
    }
}
