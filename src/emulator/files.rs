//! The Files API for Unity Catalog volumes (`GET /api/2.0/fs/files/Volumes/...`): the raw bytes
//! of a file a notebook wrote under `/Volumes/...`, which the notebook runner maps to the
//! emulator's `volumes` folder.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::error::ApiError;
use super::state::Shared;

/// The largest file served (reports are far smaller; a bigger one is refused, not streamed).
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/api/2.0/fs/files/{*path}", get(download))
}

async fn download(State(shared): State<Arc<Shared>>, Path(path): Path<String>) -> Response {
    let shown = format!("/{path}");
    let Some(inside) = path.strip_prefix("Volumes/") else {
        return ApiError::invalid(format!(
            "{shown} is not a Unity Catalog volume path (/Volumes/<catalog>/<schema>/<volume>/...)"
        ))
        .into_response();
    };
    // A path that climbs out of the volumes folder does not exist.
    if inside
        .split('/')
        .any(|part| part == ".." || part == "." || part.is_empty())
    {
        return ApiError::not_found(format!("The file {shown} does not exist")).into_response();
    }
    let file = shared.volumes_root().join(inside);
    match tokio::fs::metadata(&file).await {
        Ok(meta) if meta.is_file() && meta.len() <= MAX_FILE_BYTES => {}
        Ok(meta) if meta.is_file() => {
            return ApiError::invalid(format!("{shown} is larger than the emulator serves"))
                .into_response()
        }
        _ => {
            return ApiError::not_found(format!("The file {shown} does not exist")).into_response()
        }
    }
    match tokio::fs::read(&file).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(_) => ApiError::not_found(format!("The file {shown} does not exist")).into_response(),
    }
}
