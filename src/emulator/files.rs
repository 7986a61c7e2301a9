//! The Files API for Unity Catalog volumes: `GET`/`HEAD`/`PUT`/`DELETE
//! /api/2.0/fs/files/Volumes/...` and `PUT`/`DELETE /api/2.0/fs/directories/Volumes/...`.
//! A notebook's `/Volumes/...` paths are the same folder (the notebook runner maps them), so
//! a report a notebook writes can be downloaded, and a wheel uploaded can be installed.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::Router;

use super::error::{ApiError, Query};
use super::state::Shared;

/// The largest file served or taken (reports and test wheels are far smaller).
const MAX_FILE_BYTES: usize = 512 * 1024 * 1024;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/api/2.0/fs/files/{*path}",
            put(upload).get(download).head(metadata).delete(delete_file),
        )
        .route(
            "/api/2.0/fs/directories/{*path}",
            put(create_directory).delete(delete_directory),
        )
        .layer(DefaultBodyLimit::max(MAX_FILE_BYTES))
}

/// Where `/{path}` is in the emulator's volumes folder; a path outside the volumes, or one
/// that climbs out of them, is refused.
fn locate(shared: &Shared, path: &str) -> Result<PathBuf, ApiError> {
    let shown = format!("/{path}");
    let inside = path.strip_prefix("Volumes/").ok_or_else(|| {
        ApiError::invalid(format!(
            "{shown} is not a Unity Catalog volume path (/Volumes/<catalog>/<schema>/<volume>/...)"
        ))
    })?;
    let parts: Vec<&str> = inside.trim_end_matches('/').split('/').collect();
    if parts
        .iter()
        .any(|part| part.is_empty() || *part == ".." || *part == ".")
    {
        return Err(ApiError::not_found(format!(
            "The path {shown} does not exist"
        )));
    }
    // Files live inside a volume: /Volumes/<catalog>/<schema>/<volume>/<name>.
    if parts.len() < 4 {
        return Err(ApiError::invalid(format!(
            "{shown} is not inside a volume (/Volumes/<catalog>/<schema>/<volume>/...)"
        )));
    }
    Ok(shared.volumes_root().join(parts.join("/")))
}

fn missing(path: &str) -> Response {
    ApiError::not_found(format!("The file /{path} does not exist")).into_response()
}

async fn download(State(shared): State<Arc<Shared>>, Path(path): Path<String>) -> Response {
    let file = match locate(&shared, &path) {
        Ok(file) => file,
        Err(e) => return e.into_response(),
    };
    match tokio::fs::metadata(&file).await {
        Ok(meta) if meta.is_file() && meta.len() <= MAX_FILE_BYTES as u64 => {}
        Ok(meta) if meta.is_file() => {
            return ApiError::invalid(format!("/{path} is larger than the emulator serves"))
                .into_response()
        }
        _ => return missing(&path),
    }
    match tokio::fs::read(&file).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(_) => missing(&path),
    }
}

async fn metadata(State(shared): State<Arc<Shared>>, Path(path): Path<String>) -> Response {
    let file = match locate(&shared, &path) {
        Ok(file) => file,
        Err(e) => return e.status.into_response(),
    };
    match tokio::fs::metadata(&file).await {
        Ok(meta) if meta.is_file() => (
            [
                (header::CONTENT_LENGTH, meta.len().to_string()),
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            ],
            (),
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn upload(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<String>,
    query: Query,
    body: Bytes,
) -> Response {
    let file = match locate(&shared, &path) {
        Ok(file) => file,
        Err(e) => return e.into_response(),
    };
    let overwrite = query.get("overwrite") == Some("true");
    if tokio::fs::metadata(&file).await.is_ok_and(|m| m.is_dir()) {
        return ApiError::already_exists(format!("/{path} is a directory")).into_response();
    }
    if !overwrite && tokio::fs::metadata(&file).await.is_ok() {
        return ApiError::already_exists(format!(
            "The file /{path} already exists; set overwrite=true to replace it"
        ))
        .into_response();
    }
    // Parent folders are created as needed, as Databricks does.
    if let Some(parent) = file.parent() {
        if let Err(e) = tokio::fs::create_dir_all(parent).await {
            return ApiError::internal(format!("creating the folders of /{path}: {e}"))
                .into_response();
        }
    }
    match tokio::fs::write(&file, &body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => ApiError::internal(format!("writing /{path}: {e}")).into_response(),
    }
}

async fn delete_file(State(shared): State<Arc<Shared>>, Path(path): Path<String>) -> Response {
    let file = match locate(&shared, &path) {
        Ok(file) => file,
        Err(e) => return e.into_response(),
    };
    match tokio::fs::metadata(&file).await {
        Ok(meta) if meta.is_file() => match tokio::fs::remove_file(&file).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => ApiError::internal(format!("removing /{path}: {e}")).into_response(),
        },
        _ => missing(&path),
    }
}

async fn create_directory(State(shared): State<Arc<Shared>>, Path(path): Path<String>) -> Response {
    let folder = match locate(&shared, &path) {
        Ok(folder) => folder,
        Err(e) => return e.into_response(),
    };
    match tokio::fs::create_dir_all(&folder).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => ApiError::already_exists(format!("/{path} exists and is a file")).into_response(),
    }
}

async fn delete_directory(State(shared): State<Arc<Shared>>, Path(path): Path<String>) -> Response {
    let folder = match locate(&shared, &path) {
        Ok(folder) => folder,
        Err(e) => return e.into_response(),
    };
    if !tokio::fs::metadata(&folder).await.is_ok_and(|m| m.is_dir()) {
        return ApiError::not_found(format!("The directory /{path} does not exist"))
            .into_response();
    }
    // Only an empty folder is removed.
    match tokio::fs::remove_dir(&folder).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => ApiError::new(
            StatusCode::CONFLICT,
            "DIRECTORY_NOT_EMPTY",
            format!("The directory /{path} is not empty"),
        )
        .into_response(),
    }
}
