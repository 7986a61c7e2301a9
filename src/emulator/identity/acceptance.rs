//! Which issued tokens the workspace API accepts (besides the personal access token): a live
//! Azure Databricks token of a workspace principal (Entra, instance metadata), or a token of
//! the workspace's own OAuth server. A service principal that is not yet a workspace user is
//! added on first use when the request proves it is Contributor on the workspace resource.

use axum::http::{HeaderMap, StatusCode};

use super::tokens::{Audience, Refusal};
use super::IdentityState;
use crate::emulator::error::ApiError;
use crate::emulator::workspace::WORKSPACE_ID;

const RESOURCE_ID_HEADER: &str = "x-databricks-azure-workspace-resource-id";
const MANAGEMENT_TOKEN_HEADER: &str = "x-databricks-azure-sp-management-token";

/// Whether `token` (not the personal access token) may call the workspace API.
pub(crate) fn authorize_workspace(
    identity: &IdentityState,
    token: &str,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let issued = identity.check(token).map_err(|refusal| match refusal {
        Refusal::Unknown => invalid_token(),
        Refusal::Expired => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Token is expired",
        ),
        Refusal::ExpiringWithin { seconds } => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            format!("Token is expiring within {seconds} seconds. (token expired)"),
        ),
    })?;
    match issued.audience {
        // On a unified host a token of its OAuth server is good for any of the account's
        // workspaces: the request must say which.
        Audience::Workspace if !names_this_workspace(identity, headers) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            format!("This is a unified host: name the workspace with the {WORKSPACE_ID_HEADER} header ({WORKSPACE_ID})."),
        )),
        // Databricks service principals are workspace identities already.
        Audience::Workspace => Ok(()),
        // A token for Azure Resource Manager is not a workspace token, whoever holds it.
        Audience::Management => Err(invalid_token()),
        Audience::AzureDatabricks if identity.is_principal(&issued.client_id) => Ok(()),
        Audience::AzureDatabricks if proves_contributor(identity, &issued.client_id, headers) => {
            identity.add_principal(&issued.client_id);
            Ok(())
        }
        // What Azure Databricks answers a service principal that is not in the workspace.
        Audience::AzureDatabricks => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "403",
            "User not authorized.",
        )),
    }
}

const WORKSPACE_ID_HEADER: &str = "x-databricks-workspace-id";

/// Whether the request names this workspace, where a unified host needs it to.
fn names_this_workspace(identity: &IdentityState, headers: &HeaderMap) -> bool {
    let unified = identity
        .config
        .workspace
        .as_ref()
        .is_some_and(|w| w.unified_host.is_some());
    !unified
        || headers
            .get(WORKSPACE_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|id| id.trim() == WORKSPACE_ID.to_string())
}

fn invalid_token() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "403", "Invalid access token.")
}

/// The request names this workspace's resource id and carries a live management token of the
/// same application, which has Contributor on that resource.
fn proves_contributor(identity: &IdentityState, client_id: &str, headers: &HeaderMap) -> bool {
    let Some(workspace) = &identity.config.workspace else {
        return false;
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let resource_matches = workspace
        .resource_id
        .as_deref()
        .zip(header(RESOURCE_ID_HEADER))
        // Azure resource ids compare without regard to case.
        .is_some_and(|(expected, given)| expected.eq_ignore_ascii_case(given.trim()));
    let management_token_matches = header(MANAGEMENT_TOKEN_HEADER)
        .and_then(|token| identity.check(token.trim()).ok())
        .is_some_and(|issued| {
            issued.audience == Audience::Management && issued.client_id == client_id
        });
    resource_matches
        && management_token_matches
        && workspace.contributors.iter().any(|c| c == client_id)
}
