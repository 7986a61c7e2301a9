//! The workspace tree (`/api/2.0/workspace/*`): plain folders live in memory, repos are real
//! git checkouts on disk, and a path below a repo resolves into its checkout. Notebooks are
//! `.py` files starting with the Databricks source header, addressed without the extension.
//! `workspace/export` serves files: from repo checkouts, and outside repos from the folder
//! where notebooks' `/Workspace/...` paths are (`Shared::workspace_files_root`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use super::error::{ApiError, ApiResult, JsonBody, Query};
use super::repos::Repo;
use super::state::{lock, Shared};

/// The workspace's id: the `?o=` of run page links, `workspace_id` of the host metadata.
pub(crate) const WORKSPACE_ID: u64 = 1_234_567_890;

/// The emulated user; runs and default repo paths use this identity.
pub(crate) const USER: &str = "emulator@example.com";

pub(crate) const NOTEBOOK_HEADER: &str = "# Databricks notebook source";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/2.0/workspace/get-status", get(get_status))
        .route("/api/2.0/workspace/list", get(list))
        .route("/api/2.0/workspace/mkdirs", post(mkdirs))
        .route("/api/2.0/workspace/export", get(export))
        .route(
            "/api/2.0/workspace/import",
            post(import).layer(DefaultBodyLimit::max(MAX_IMPORT_BODY_BYTES)),
        )
        .route("/api/2.0/workspace/delete", post(delete))
}

pub(crate) struct Workspace {
    /// How get-status and list show a Git folder.
    git_folders: GitFolderObjects,
    /// Folder path → object id.
    dirs: BTreeMap<String, i64>,
    pub repos: BTreeMap<i64, Repo>,
    next_object_id: i64,
    next_repo_id: i64,
}

/// How the workspace API shows a Git folder. Workspaces with the Git CLI (rolled out
/// mid-2026) show every Git folder as a plain `DIRECTORY` whose `git_info` holds only `id` and
/// `path`; the repos API by object id is then the only way to tell it from a folder. Older
/// workspaces show `REPO` with the repo's Git state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GitFolderObjects {
    #[default]
    Directory,
    Repo,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct ObjectInfo {
    object_type: &'static str,
    path: String,
    object_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'static str>,
    /// Only with `return_git_info=true`, for a Git folder and the paths inside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    git_info: Option<Value>,
}

impl ObjectInfo {
    fn directory(path: String, object_id: i64) -> Self {
        ObjectInfo {
            object_type: "DIRECTORY",
            path,
            object_id,
            language: None,
            git_info: None,
        }
    }

    fn repo(repo: &Repo, shown_as: GitFolderObjects) -> Self {
        ObjectInfo {
            object_type: match shown_as {
                GitFolderObjects::Directory => "DIRECTORY",
                GitFolderObjects::Repo => "REPO",
            },
            path: repo.path.clone(),
            object_id: repo.id,
            language: None,
            git_info: None,
        }
    }

    fn is_directory(&self) -> bool {
        matches!(self.object_type, "DIRECTORY" | "REPO")
    }
}

/// Where a workspace path leads.
enum Located {
    Object(ObjectInfo),
    Repo {
        info: ObjectInfo,
        checkout: PathBuf,
    },
    /// Somewhere inside a repo; only the file system knows what is there.
    InCheckout {
        path: String,
        file: PathBuf,
    },
    Missing,
}

impl Workspace {
    pub fn new(git_folders: GitFolderObjects) -> Self {
        let mut workspace = Workspace {
            git_folders,
            dirs: BTreeMap::new(),
            repos: BTreeMap::new(),
            next_object_id: 1_000_000_000_000_001,
            next_repo_id: 1_234_567_890_123,
        };
        for dir in ["/", "/Repos", "/Users", "/Shared"] {
            workspace.add_dir(dir);
        }
        for dir in [format!("/Repos/{USER}"), format!("/Users/{USER}")] {
            workspace.add_dir(&dir);
        }
        workspace
    }

    fn add_dir(&mut self, path: &str) {
        let id = self.next_object_id;
        self.next_object_id += 1;
        self.dirs.insert(path.to_string(), id);
    }

    pub fn new_repo_id(&mut self) -> i64 {
        // Not consecutive, so a test cannot pass by guessing ids.
        self.next_repo_id += 7_919;
        self.next_repo_id
    }

    pub fn is_directory(&self, path: &str) -> bool {
        self.dirs.contains_key(path)
    }

    /// Forgets the folder `path` and every folder below it; whether there was one.
    fn remove_dirs(&mut self, path: &str) -> bool {
        let below = format!("{path}/");
        let before = self.dirs.len();
        self.dirs
            .retain(|dir, _| dir != path && !dir.starts_with(&below));
        self.dirs.len() != before
    }

    /// Whether anything (folder, repo, or a path inside a repo) is at `path`.
    pub fn is_taken(&self, path: &str) -> bool {
        self.is_directory(path) || self.repo_containing(path).is_some()
    }

    /// The repo at `path` or above it.
    pub fn repo_containing(&self, path: &str) -> Option<&Repo> {
        self.repos.values().find(|repo| {
            path == repo.path
                || path
                    .strip_prefix(repo.path.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }

    /// `git_info` of get-status for a path in a Git folder: the folder's id and path, and
    /// (shown as `REPO` only) its Git state. A Git CLI folder keeps that state out of the
    /// workspace object, so clients must ask the repos API.
    fn git_info(&self, path: &str) -> Option<Value> {
        let repo = self.repo_containing(path)?;
        Some(match self.git_folders {
            GitFolderObjects::Directory => json!({ "id": repo.id, "path": repo.path }),
            GitFolderObjects::Repo => repo.info(),
        })
    }

    fn locate(&self, path: &str) -> Located {
        if let Some(id) = self.dirs.get(path) {
            return Located::Object(ObjectInfo::directory(path.to_string(), *id));
        }
        let Some(repo) = self.repo_containing(path) else {
            return Located::Missing;
        };
        if path == repo.path {
            return Located::Repo {
                info: ObjectInfo::repo(repo, self.git_folders),
                checkout: repo.checkout.clone(),
            };
        }
        let relative = &path[repo.path.len() + 1..];
        if relative.split('/').next() == Some(".git") {
            return Located::Missing;
        }
        Located::InCheckout {
            path: path.to_string(),
            file: repo.checkout.join(relative),
        }
    }

    /// Folders and repos directly inside the folder `path`.
    fn children(&self, path: &str) -> Vec<ObjectInfo> {
        let is_child = |candidate: &str| parent(candidate) == Some(path) && candidate != "/";
        let dirs = self
            .dirs
            .iter()
            .filter(|(candidate, _)| is_child(candidate))
            .map(|(candidate, id)| ObjectInfo::directory(candidate.clone(), *id));
        let repos = self
            .repos
            .values()
            .filter(|repo| is_child(&repo.path))
            .map(|repo| ObjectInfo::repo(repo, self.git_folders));
        let mut children: Vec<ObjectInfo> = dirs.chain(repos).collect();
        children.sort_by(|a, b| a.path.cmp(&b.path));
        children
    }

    /// Creates `path` and its missing parents.
    fn mkdirs(&mut self, path: &str) -> ApiResult<()> {
        let prefixes: Vec<String> = ancestors_and_self(path);
        for prefix in &prefixes {
            if self.is_directory(prefix) {
                continue;
            }
            if let Some(repo) = self.repo_containing(prefix) {
                return Err(if repo.path == *prefix {
                    ApiError::already_exists(format!(
                        "Cannot create directory {path}: {prefix} is a repo, not a directory."
                    ))
                } else {
                    ApiError::invalid(format!(
                        "Cannot create directory {path}: creating folders inside the Git folder {} is not supported by the emulator.",
                        repo.path
                    ))
                });
            }
        }
        for prefix in prefixes {
            if !self.is_directory(&prefix) {
                self.add_dir(&prefix);
            }
        }
        Ok(())
    }
}

/// Checks and canonicalises a workspace path: absolute, no `.`/`..`, no trailing slash, and
/// without the `/Workspace` prefix (`/Workspace/Users/u` and `/Users/u` are one folder).
pub(crate) fn normalize(raw: &str) -> ApiResult<String> {
    if !raw.starts_with('/') {
        return Err(ApiError::invalid(format!(
            "Path ({raw}) is not absolute. Paths must begin with '/'."
        )));
    }
    let parts: Vec<&str> = raw.split('/').filter(|part| !part.is_empty()).collect();
    if parts.iter().any(|part| *part == "." || *part == "..") {
        return Err(ApiError::invalid(format!(
            "Path ({raw}) must not contain '.' or '..'."
        )));
    }
    let parts = match parts.split_first() {
        Some((&"Workspace", rest)) => rest,
        _ => &parts[..],
    };
    Ok(format!("/{}", parts.join("/")))
}

pub(crate) fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        _ if path == "/" => None,
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// `/a/b/c` → `/a`, `/a/b`, `/a/b/c`.
fn ancestors_and_self(path: &str) -> Vec<String> {
    let mut prefixes = Vec::new();
    let mut current = String::new();
    for part in path.split('/').filter(|part| !part.is_empty()) {
        current.push('/');
        current.push_str(part);
        prefixes.push(current.clone());
    }
    prefixes
}

/// Where a notebook of the workspace lives on disk.
pub(crate) struct NotebookLocation {
    pub file: PathBuf,
    /// The checkout the notebook belongs to; Databricks puts it on `sys.path`.
    pub repo_root: PathBuf,
}

/// Resolves a workspace notebook path (`<repo path>/test/unit`) to its source file.
pub(crate) async fn find_notebook(shared: &Shared, path: &str) -> Option<NotebookLocation> {
    let path = normalize(path).ok()?;
    let (file, repo_root) = {
        let workspace = lock(&shared.workspace);
        let repo_root = workspace.repo_containing(&path)?.checkout.clone();
        match workspace.locate(&path) {
            Located::InCheckout { file, .. } => (file, repo_root),
            _ => return None,
        }
    };
    let file = with_py_extension(&file);
    is_notebook(&file)
        .await
        .then_some(NotebookLocation { file, repo_root })
}

fn with_py_extension(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".py");
    PathBuf::from(name)
}

/// Whether `file` is a source-format notebook (starts with the Databricks header).
pub(crate) async fn is_notebook(file: &Path) -> bool {
    let Ok(mut handle) = tokio::fs::File::open(file).await else {
        return false;
    };
    let mut start = vec![0u8; NOTEBOOK_HEADER.len() + 3];
    let mut filled = 0;
    while filled < start.len() {
        match handle.read(&mut start[filled..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    let start = &start[..filled];
    let start = start
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(start);
    start.starts_with(NOTEBOOK_HEADER.as_bytes())
}

/// Ids of objects inside checkouts: stable for a path, like the ids of real objects.
fn object_id_for(path: &str) -> i64 {
    let hash = path.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    // 53 bits stay exact in JavaScript clients.
    (hash & ((1 << 53) - 1)) as i64
}

/// What is at `path` inside a checkout, seen as the workspace shows it.
async fn describe_in_checkout(path: &str, file: &Path) -> Option<ObjectInfo> {
    let info = |object_type, language| ObjectInfo {
        object_type,
        path: path.to_string(),
        object_id: object_id_for(path),
        language,
        git_info: None,
    };
    if let Ok(metadata) = tokio::fs::metadata(file).await {
        if metadata.is_dir() {
            return Some(info("DIRECTORY", None));
        }
        // A notebook's file name is not a workspace path of its own.
        let is_hidden_notebook =
            file.extension().is_some_and(|ext| ext == "py") && is_notebook(file).await;
        return (!is_hidden_notebook).then(|| info("FILE", None));
    }
    is_notebook(&with_py_extension(file))
        .await
        .then(|| info("NOTEBOOK", Some("PYTHON")))
}

async fn list_checkout_dir(path: &str, dir: &Path) -> ApiResult<Vec<ObjectInfo>> {
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| ApiError::internal(format!("Cannot list {path}: {e}")))?;
    let base = path.trim_end_matches('/');
    let mut objects = Vec::new();
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == ".git" {
            continue;
        }
        let is_dir = entry.file_type().await.is_ok_and(|kind| kind.is_dir());
        let (object_type, child, language) = match name.strip_suffix(".py") {
            _ if is_dir => ("DIRECTORY", name.as_str(), None),
            Some(stem) if is_notebook(&entry.path()).await => ("NOTEBOOK", stem, Some("PYTHON")),
            _ => ("FILE", name.as_str(), None),
        };
        let child_path = format!("{base}/{child}");
        objects.push(ObjectInfo {
            object_type,
            object_id: object_id_for(&child_path),
            path: child_path,
            language,
            git_info: None,
        });
    }
    objects.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(objects)
}

/// What is at `path`, and the folder on disk behind it when it is a repo or a folder inside one.
async fn status_of(shared: &Shared, path: &str) -> ApiResult<(ObjectInfo, Option<PathBuf>)> {
    let located = lock(&shared.workspace).locate(path);
    let missing = || ApiError::not_found(format!("Path ({path}) doesn't exist."));
    match located {
        Located::Object(info) => Ok((info, None)),
        Located::Repo { info, checkout } => Ok((info, Some(checkout))),
        Located::InCheckout { path, file } => {
            let info = describe_in_checkout(&path, &file)
                .await
                .ok_or_else(missing)?;
            let dir = info.is_directory().then_some(file);
            Ok((info, dir))
        }
        Located::Missing => Err(missing()),
    }
}

async fn get_status(
    State(shared): State<Arc<Shared>>,
    query: Query,
) -> ApiResult<Json<ObjectInfo>> {
    let path = normalize(query.required("path")?)?;
    let (mut info, _) = status_of(&shared, &path).await?;
    if query.get("return_git_info") == Some("true") {
        info.git_info = lock(&shared.workspace).git_info(&path);
    }
    Ok(Json(info))
}

async fn list(State(shared): State<Arc<Shared>>, query: Query) -> ApiResult<Json<Value>> {
    let path = normalize(query.required("path")?)?;
    let (info, on_disk) = status_of(&shared, &path).await?;
    let objects = match (info.object_type, on_disk) {
        ("DIRECTORY", None) => lock(&shared.workspace).children(&path),
        (_, Some(dir)) => list_checkout_dir(&path, &dir).await?,
        // Listing a notebook or file lists just that object, as Databricks does.
        _ => vec![info],
    };
    // Databricks leaves the field out rather than sending an empty array.
    Ok(Json(if objects.is_empty() {
        json!({})
    } else {
        json!({ "objects": objects })
    }))
}

#[derive(Deserialize)]
struct MkdirsRequest {
    path: Option<String>,
}

async fn mkdirs(
    State(shared): State<Arc<Shared>>,
    JsonBody(request): JsonBody<MkdirsRequest>,
) -> ApiResult<Json<Value>> {
    let path = request
        .path
        .filter(|path| !path.is_empty())
        .ok_or_else(|| ApiError::invalid("Missing required field: path"))?;
    let path = normalize(&path)?;
    lock(&shared.workspace).mkdirs(&path)?;
    Ok(Json(json!({})))
}

/// Databricks refuses to export anything larger (`MAX_NOTEBOOK_SIZE_EXCEEDED`), and to import it.
const MAX_EXPORT_BYTES: u64 = 10 * 1024 * 1024;
/// An import's JSON body: the file base64-encoded, and the rest.
const MAX_IMPORT_BODY_BYTES: usize = 15 * 1024 * 1024;

#[derive(Deserialize)]
struct ImportRequest {
    path: Option<String>,
    content: Option<String>,
    format: Option<String>,
    #[serde(default)]
    overwrite: bool,
}

/// `POST /api/2.0/workspace/import` of a file (`format` AUTO or RAW) outside Repos: written
/// where notebooks see `/Workspace/...`. Its folder must exist.
async fn import(
    State(shared): State<Arc<Shared>>,
    JsonBody(request): JsonBody<ImportRequest>,
) -> ApiResult<Json<Value>> {
    let normalized = normalize(request.path.as_deref().unwrap_or_default())?;
    let path = without_workspace_prefix(&normalized).to_string();
    match request.format.as_deref().unwrap_or("SOURCE") {
        "AUTO" | "RAW" => {}
        other => {
            return Err(ApiError::invalid(format!(
                "The emulator imports files only (format AUTO or RAW), not {other}"
            )))
        }
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(request.content.unwrap_or_default())
        .map_err(|e| ApiError::malformed(format!("content is not base64: {e}")))?;
    if bytes.len() as u64 > MAX_EXPORT_BYTES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MAX_NOTEBOOK_SIZE_EXCEEDED",
            format!("File ({path}) exceeds the maximum import size of {MAX_EXPORT_BYTES} bytes."),
        ));
    }
    let folder = parent(&path).unwrap_or("/").to_string();
    let file = shared
        .workspace_files_root()
        .join(path.trim_start_matches('/'));
    {
        let workspace = lock(&shared.workspace);
        if workspace.repo_containing(&path).is_some() {
            return Err(ApiError::invalid(format!(
                "Cannot import {path}: the emulator imports files outside Git folders only"
            )));
        }
        if workspace.is_directory(&path) {
            return Err(ApiError::already_exists(format!(
                "Path ({path}) already exists and is a directory."
            )));
        }
        let on_disk = file.parent().is_some_and(Path::is_dir);
        if !workspace.is_directory(&folder) && !on_disk {
            return Err(ApiError::not_found(format!(
                "The parent folder ({folder}) does not exist."
            )));
        }
    }
    if !request.overwrite && tokio::fs::metadata(&file).await.is_ok() {
        return Err(ApiError::already_exists(format!(
            "Path ({path}) already exists."
        )));
    }
    if let Some(dir) = file.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| ApiError::internal(format!("Cannot create {folder}: {e}")))?;
    }
    tokio::fs::write(&file, bytes)
        .await
        .map_err(|e| ApiError::internal(format!("Cannot write {path}: {e}")))?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct DeleteRequest {
    path: Option<String>,
    #[serde(default)]
    recursive: bool,
}

/// `POST /api/2.0/workspace/delete` of a file or folder outside Repos; a folder with anything
/// in it only with `recursive`.
async fn delete(
    State(shared): State<Arc<Shared>>,
    JsonBody(request): JsonBody<DeleteRequest>,
) -> ApiResult<Json<Value>> {
    let normalized = normalize(request.path.as_deref().unwrap_or_default())?;
    let path = without_workspace_prefix(&normalized).to_string();
    if path == "/" || lock(&shared.workspace).repo_containing(&path).is_some() {
        return Err(ApiError::invalid(format!(
            "Cannot delete {path} here: the root and Git folders are not deleted with the workspace API in the emulator"
        )));
    }
    let on_disk = shared
        .workspace_files_root()
        .join(path.trim_start_matches('/'));
    let not_empty = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "DIRECTORY_NOT_EMPTY",
            format!("Folder ({path}) is not empty; set recursive to delete it with its contents."),
        )
    };
    let has_subfolders = lock(&shared.workspace)
        .dirs
        .keys()
        .any(|dir| dir.starts_with(&format!("{path}/")));
    if has_subfolders && !request.recursive {
        return Err(not_empty());
    }
    let removed_on_disk = match tokio::fs::symlink_metadata(&on_disk).await {
        Ok(meta) if meta.is_dir() && request.recursive => {
            tokio::fs::remove_dir_all(&on_disk).await.is_ok()
        }
        Ok(meta) if meta.is_dir() => {
            tokio::fs::remove_dir(&on_disk)
                .await
                .map_err(|_| not_empty())?;
            true
        }
        Ok(_) => tokio::fs::remove_file(&on_disk).await.is_ok(),
        Err(_) => false,
    };
    let removed_folder = lock(&shared.workspace).remove_dirs(&path);
    if removed_on_disk || removed_folder {
        Ok(Json(json!({})))
    } else {
        Err(ApiError::not_found(format!("Path ({path}) doesn't exist.")))
    }
}

/// `/Workspace/Shared/x` → `/Shared/x`: the prefix a notebook sees its workspace files under.
fn without_workspace_prefix(path: &str) -> &str {
    match path.strip_prefix("/Workspace") {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// A file to export: where it is, the folder it must stay inside (a symbolic link may not
/// lead out of it), and its file type.
struct ExportedFile {
    file: PathBuf,
    confined_to: PathBuf,
    file_type: Option<String>,
}

/// The file behind the workspace path `path` (already normalized, without `/Workspace`).
async fn file_to_export(shared: &Shared, path: &str) -> ApiResult<ExportedFile> {
    let missing = || ApiError::not_found(format!("Path ({path}) doesn't exist."));
    let directory = || {
        ApiError::invalid(format!(
            "Path ({path}) is a directory: the emulator exports files and notebooks only (Databricks sends a DBC archive)"
        ))
    };
    let (located, checkout) = {
        let workspace = lock(&shared.workspace);
        let checkout = workspace.repo_containing(path).map(|r| r.checkout.clone());
        (workspace.locate(path), checkout)
    };
    let extension = |file: &Path| {
        file.extension()
            .map(|ext| ext.to_string_lossy().into_owned())
    };
    match (located, checkout) {
        (Located::Object(_) | Located::Repo { .. }, _) => Err(directory()),
        (Located::InCheckout { path, file }, Some(checkout)) => {
            match describe_in_checkout(&path, &file).await {
                Some(info) if info.object_type == "NOTEBOOK" => Ok(ExportedFile {
                    file: with_py_extension(&file),
                    confined_to: checkout,
                    file_type: Some("py".to_string()),
                }),
                Some(info) if info.is_directory() => Err(directory()),
                Some(_) => Ok(ExportedFile {
                    file_type: extension(&file),
                    file,
                    confined_to: checkout,
                }),
                None => Err(missing()),
            }
        }
        // Inside a repo but not in its checkout (its `.git`).
        (_, Some(_)) => Err(missing()),
        (_, None) => {
            let root = shared.workspace_files_root();
            let file = root.join(path.trim_start_matches('/'));
            match tokio::fs::metadata(&file).await {
                Ok(meta) if meta.is_dir() => Err(directory()),
                Ok(_) => Ok(ExportedFile {
                    file_type: extension(&file),
                    file,
                    confined_to: root,
                }),
                Err(_) => Err(missing()),
            }
        }
    }
}

/// Reads at most `MAX_EXPORT_BYTES` of a file that stays inside its folder.
async fn read_for_export(path: &str, exported: &ExportedFile) -> ApiResult<Vec<u8>> {
    let missing = || ApiError::not_found(format!("Path ({path}) doesn't exist."));
    let (Ok(file), Ok(folder)) = (
        tokio::fs::canonicalize(&exported.file).await,
        tokio::fs::canonicalize(&exported.confined_to).await,
    ) else {
        return Err(missing());
    };
    if !file.starts_with(&folder) {
        return Err(missing());
    }
    let too_large = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "MAX_NOTEBOOK_SIZE_EXCEEDED",
            format!("File ({path}) exceeds the maximum export size of {MAX_EXPORT_BYTES} bytes."),
        )
    };
    let handle = tokio::fs::File::open(&file).await.map_err(|_| missing())?;
    if handle
        .metadata()
        .await
        .is_ok_and(|m| m.len() > MAX_EXPORT_BYTES)
    {
        return Err(too_large());
    }
    // Bounded even if the file grows while it is read.
    let mut bytes = Vec::new();
    handle
        .take(MAX_EXPORT_BYTES + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| ApiError::internal(format!("Cannot read {path}: {e}")))?;
    if bytes.len() as u64 > MAX_EXPORT_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// `GET /api/2.0/workspace/export?path=&format=SOURCE|AUTO[&direct_download=true]`: a file's
/// (or a notebook's source) bytes, base64-encoded in `{content, file_type}`, or as they are
/// with `direct_download`.
async fn export(State(shared): State<Arc<Shared>>, query: Query) -> ApiResult<Response> {
    let normalized = normalize(query.required("path")?)?;
    let path = without_workspace_prefix(&normalized);
    match query.get("format").unwrap_or("SOURCE") {
        "SOURCE" | "AUTO" => {}
        "HTML" | "JUPYTER" | "DBC" | "R_MARKDOWN" | "RAW" => {
            return Err(ApiError::invalid(
                "The emulator exports only in the SOURCE and AUTO formats",
            ))
        }
        other => {
            return Err(ApiError::invalid(format!(
                "Invalid value for format: '{other}' (SOURCE, HTML, JUPYTER, DBC, R_MARKDOWN, AUTO or RAW)"
            )))
        }
    }
    let exported = file_to_export(&shared, path).await?;
    let bytes = read_for_export(path, &exported).await?;
    if query.get("direct_download") == Some("true") {
        return Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response());
    }
    let mut answer = json!({ "content": base64::engine::general_purpose::STANDARD.encode(bytes) });
    if let Some(file_type) = exported.file_type {
        answer["file_type"] = json!(file_type);
    }
    Ok(Json(answer).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize("/Repos//a/b/").unwrap(), "/Repos/a/b");
        assert_eq!(normalize("/").unwrap(), "/");
        assert!(normalize("Repos/a").is_err());
        assert!(normalize("/Repos/../etc").is_err());
        assert_eq!(normalize("/Workspace/Users/u/x").unwrap(), "/Users/u/x");
        assert_eq!(normalize("/Workspace").unwrap(), "/");
        assert_eq!(normalize("/WorkspaceX/y").unwrap(), "/WorkspaceX/y");
    }

    #[test]
    fn the_workspace_prefix_is_dropped() {
        assert_eq!(without_workspace_prefix("/Workspace/Shared/x"), "/Shared/x");
        assert_eq!(without_workspace_prefix("/Workspace"), "/");
        assert_eq!(without_workspace_prefix("/Shared/x"), "/Shared/x");
        assert_eq!(without_workspace_prefix("/WorkspaceX/y"), "/WorkspaceX/y");
    }

    #[test]
    fn parents() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("/Repos"), Some("/"));
        assert_eq!(parent("/Repos/a/b"), Some("/Repos/a"));
    }

    #[test]
    fn mkdirs_creates_parents_and_lists_them() {
        let mut workspace = Workspace::new(GitFolderObjects::default());
        workspace.mkdirs("/Shared/a/b").unwrap();
        assert!(workspace.is_directory("/Shared/a"));
        let children: Vec<String> = workspace
            .children("/Shared")
            .into_iter()
            .map(|o| o.path)
            .collect();
        assert_eq!(children, ["/Shared/a"]);
        let top: Vec<String> = workspace
            .children("/")
            .into_iter()
            .map(|o| o.path)
            .collect();
        assert_eq!(top, ["/Repos", "/Shared", "/Users"]);
    }
}
