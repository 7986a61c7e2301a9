//! Repos (Git folders), `/api/2.0/repos`: each repo is a real clone of a local repository,
//! which `PATCH` fetches and moves to a branch head or a tag.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult, JsonBody, Query};
use super::git::{self, GitError, PROVIDERS};
use super::state::{lock, Shared};
use super::workspace::{normalize, parent, USER};

const PAGE_SIZE: usize = 20;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/2.0/repos", get(list).post(create))
        .route(
            "/api/2.0/repos/{id}",
            get(get_one).patch(update).delete(delete),
        )
}

pub(crate) struct Repo {
    pub id: i64,
    pub path: String,
    pub url: String,
    pub provider: &'static str,
    pub checkout: PathBuf,
    pub branch: Option<String>,
    pub head_commit_id: Option<String>,
    /// Cone patterns of a repo created with sparse checkout; `None` for a full checkout.
    pub sparse_patterns: Option<Vec<String>>,
    /// Serialises git commands on this checkout.
    pub git_lock: Arc<tokio::sync::Mutex<()>>,
}

impl Repo {
    pub(crate) fn info(&self) -> Value {
        let mut info = Map::new();
        info.insert("id".into(), json!(self.id));
        info.insert("path".into(), json!(self.path));
        info.insert("url".into(), json!(self.url));
        info.insert("provider".into(), json!(self.provider));
        // A detached HEAD (a tag) has no branch, and Databricks leaves the field out.
        if let Some(branch) = &self.branch {
            info.insert("branch".into(), json!(branch));
        }
        if let Some(head) = &self.head_commit_id {
            info.insert("head_commit_id".into(), json!(head));
        }
        if let Some(patterns) = &self.sparse_patterns {
            info.insert("sparse_checkout".into(), json!({ "patterns": patterns }));
        }
        Value::Object(info)
    }
}

pub(crate) fn missing_credentials() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "PERMISSION_DENIED",
        "Missing Git provider credentials. Go to User Settings > Git integration to add your personal access token.",
    )
}

pub(crate) fn provider_from(provider: Option<&str>) -> ApiResult<&'static str> {
    let valid = PROVIDERS.join(", ");
    match provider.map(str::trim).filter(|p| !p.is_empty()) {
        None => Err(ApiError::invalid(format!(
            "Git provider is required. Valid values are: {valid}."
        ))),
        Some(given) => git::canonical_provider(given).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid Git provider '{given}'. Valid values are: {valid}."
            ))
        }),
    }
}

fn repo_not_found(id: impl std::fmt::Display) -> ApiError {
    ApiError::not_found(format!("Repo {id} does not exist."))
}

fn parse_id(raw: &str) -> ApiResult<i64> {
    raw.parse().map_err(|_| repo_not_found(raw))
}

#[derive(Deserialize)]
struct CreateRequest {
    url: Option<String>,
    provider: Option<String>,
    path: Option<String>,
    sparse_checkout: Option<SparseCheckout>,
}

#[derive(Deserialize)]
struct SparseCheckout {
    #[serde(default)]
    patterns: Vec<String>,
}

/// Most patterns one Git folder takes (Databricks states no number; ours keeps a hostile
/// request from running git with a million arguments).
const MAX_SPARSE_PATTERNS: usize = 1_000;

/// Cone patterns: folders relative to the repository root, without wildcards. An empty list
/// is refused, as it would check out nothing but the root's files.
fn check_sparse_patterns(sparse: SparseCheckout) -> ApiResult<Vec<String>> {
    if sparse.patterns.is_empty() {
        return Err(ApiError::invalid(
            "Sparse checkout patterns must not be empty.",
        ));
    }
    if sparse.patterns.len() > MAX_SPARSE_PATTERNS {
        return Err(ApiError::invalid(format!(
            "At most {MAX_SPARSE_PATTERNS} sparse checkout patterns are allowed."
        )));
    }
    sparse
        .patterns
        .into_iter()
        .map(|pattern| {
            let folder = pattern.trim().trim_end_matches('/');
            let bad = folder.is_empty()
                || folder.starts_with(['/', '!', '-'])
                || folder.contains(['*', '?', '[', '\\', '\n'])
                || folder.split('/').any(|s| s.is_empty() || s == "." || s == "..");
            if bad {
                Err(ApiError::invalid(format!(
                    "Invalid sparse checkout pattern '{pattern}': cone patterns are folder paths relative to the repository root, without wildcards."
                )))
            } else {
                Ok(folder.to_string())
            }
        })
        .collect()
}

async fn create(
    State(shared): State<Arc<Shared>>,
    JsonBody(request): JsonBody<CreateRequest>,
) -> ApiResult<Json<Value>> {
    let url = request
        .url
        .map(|url| url.trim().to_string())
        .filter(|url| !url.is_empty())
        .ok_or_else(|| {
            ApiError::invalid("Git repository URL missing. Please provide a valid URL.")
        })?;
    let provider = provider_from(request.provider.as_deref())?;
    let path = match &request.path {
        Some(path) => normalize(path)?,
        None => format!("/Repos/{USER}/{}", repo_name(&url)),
    };
    check_repos_depth(&path)?;
    let sparse_patterns = request
        .sparse_checkout
        .map(check_sparse_patterns)
        .transpose()?;
    let id = {
        let mut workspace = lock(&shared.workspace);
        check_path_free(&workspace, &path)?;
        workspace.new_repo_id()
    };
    let source = clone_source(&url)?;

    let checkout = shared.root.join("repos").join(id.to_string());
    if let Err(e) = git::clone(&source, &checkout, sparse_patterns.as_deref()).await {
        let _ = tokio::fs::remove_dir_all(&checkout).await;
        return Err(match e {
            GitError::NeedsCredentials => missing_credentials(),
            GitError::UnknownRef(message) | GitError::Failed(message) => ApiError::invalid(message),
        });
    }
    let repo = Repo {
        id,
        path: path.clone(),
        url,
        provider,
        branch: git::current_branch(&checkout).await,
        head_commit_id: git::head_commit(&checkout).await,
        sparse_patterns,
        checkout: checkout.clone(),
        git_lock: Arc::default(),
    };

    // The clone took a while: someone may have taken the path meanwhile.
    let info = repo.info();
    let registered = {
        let mut workspace = lock(&shared.workspace);
        check_path_free(&workspace, &path).map(|()| workspace.repos.insert(id, repo))
    };
    if let Err(e) = registered {
        let _ = tokio::fs::remove_dir_all(&checkout).await;
        return Err(e);
    }
    Ok(Json(info))
}

/// Under `/Repos` a Git folder is exactly `/Repos/<folder>/<name>`; elsewhere it may be at
/// any depth inside an existing folder.
fn check_repos_depth(path: &str) -> ApiResult<()> {
    match path.strip_prefix("/Repos") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            if rest.split('/').filter(|s| !s.is_empty()).count() == 2 {
                Ok(())
            } else {
                Err(ApiError::invalid(format!(
                    "Invalid repo path {path}: under /Repos a Git folder must be at /Repos/<folder>/<repo-name>."
                )))
            }
        }
        _ => Ok(()),
    }
}

fn check_path_free(workspace: &super::workspace::Workspace, path: &str) -> ApiResult<()> {
    if workspace.is_taken(path) {
        return Err(ApiError::already_exists(format!(
            "Repo {path} already exists. Please choose a different path."
        )));
    }
    let parent = parent(path).ok_or_else(|| ApiError::invalid("A repo cannot be created at /."))?;
    if !workspace.is_directory(parent) {
        return Err(ApiError::not_found(format!(
            "Parent directory {parent} does not exist."
        )));
    }
    Ok(())
}

/// What `git clone` gets for a repo URL. Relative paths are relative to the emulator's working
/// directory, not to wherever git happens to run.
pub(crate) fn clone_source(url: &str) -> ApiResult<String> {
    let source = git::clone_source(url).map_err(|e| match e {
        GitError::NeedsCredentials => missing_credentials(),
        GitError::UnknownRef(message) | GitError::Failed(message) => ApiError::invalid(message),
    })?;
    if source.contains("://") || std::path::Path::new(source).is_absolute() {
        return Ok(source.to_string());
    }
    let cwd = std::env::current_dir()
        .map_err(|e| ApiError::internal(format!("cannot resolve {source}: {e}")))?;
    Ok(cwd.join(source).to_string_lossy().into_owned())
}

/// The folder name Databricks derives from a URL: its last segment without `.git`.
fn repo_name(url: &str) -> String {
    let last = url
        .trim_end_matches('/')
        .rsplit(['/', '\\', ':'])
        .next()
        .unwrap_or("repo");
    let name = last.strip_suffix(".git").unwrap_or(last);
    if name.is_empty() {
        "repo".to_string()
    } else {
        name.to_string()
    }
}

async fn get_one(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let workspace = lock(&shared.workspace);
    let repo = workspace.repos.get(&id).ok_or_else(|| repo_not_found(id))?;
    Ok(Json(repo.info()))
}

async fn list(State(shared): State<Arc<Shared>>, query: Query) -> ApiResult<Json<Value>> {
    let prefix = query.get("path_prefix").unwrap_or("");
    let after = query.get("next_page_token").map(decode_token).transpose()?;
    let workspace = lock(&shared.workspace);
    let mut repos: Vec<&Repo> = workspace
        .repos
        .values()
        .filter(|repo| repo.path.starts_with(prefix))
        .filter(|repo| after.as_ref().is_none_or(|after| repo.path > *after))
        .collect();
    repos.sort_by(|a, b| a.path.cmp(&b.path));

    let mut answer = Map::new();
    if repos.len() > PAGE_SIZE {
        answer.insert(
            "next_page_token".into(),
            json!(encode_token(&repos[PAGE_SIZE - 1].path)),
        );
        repos.truncate(PAGE_SIZE);
    }
    if !repos.is_empty() {
        answer.insert(
            "repos".into(),
            repos.iter().map(|repo| repo.info()).collect(),
        );
    }
    Ok(Json(Value::Object(answer)))
}

/// Page tokens are opaque to clients: the hex of the last path returned.
fn encode_token(path: &str) -> String {
    path.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(token: &str) -> ApiResult<String> {
    let invalid = || ApiError::invalid(format!("Invalid page token: {token}"));
    if token.len() % 2 != 0 {
        return Err(invalid());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| invalid())?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

#[derive(Deserialize)]
struct UpdateRequest {
    branch: Option<String>,
    tag: Option<String>,
    sparse_checkout: Option<SparseCheckout>,
}

async fn update(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<UpdateRequest>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let nonblank = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
    let sparse_patterns = request
        .sparse_checkout
        .map(check_sparse_patterns)
        .transpose()?;
    let reference = match (nonblank(request.branch), nonblank(request.tag)) {
        (Some(branch), None) => Some(("Branch", branch)),
        (None, Some(tag)) => Some(("Tag", tag)),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "Only one of branch or tag can be specified, not both.",
            ))
        }
        (None, None) if sparse_patterns.is_some() => None,
        (None, None) => return Err(ApiError::invalid("Either branch or tag must be specified.")),
    };
    let (checkout, git_lock) = {
        let workspace = lock(&shared.workspace);
        let repo = workspace.repos.get(&id).ok_or_else(|| repo_not_found(id))?;
        if sparse_patterns.is_some() && repo.sparse_patterns.is_none() {
            return Err(ApiError::invalid(format!(
                "Repo {id} was created without sparse checkout; sparse checkout can only be set when a repo is created."
            )));
        }
        (repo.checkout.clone(), repo.git_lock.clone())
    };

    let _checkout_in_use = git_lock.lock().await;
    let kind = reference.as_ref().map_or("Reference", |(kind, _)| *kind);
    let explain = |e: GitError| {
        match e {
        GitError::UnknownRef(name) => ApiError::invalid(format!(
            "{kind} '{name}' does not exist in the remote repository. Please check the {} name and try again.",
            kind.to_lowercase()
        )),
        GitError::NeedsCredentials => missing_credentials(),
        GitError::Failed(message) => {
            ApiError::invalid(format!("Error updating the repo: {message}"))
        }
    }
    };
    if let Some(patterns) = &sparse_patterns {
        git::set_sparse_patterns(&checkout, patterns)
            .await
            .map_err(explain)?;
    }
    if let Some((kind, name)) = &reference {
        git::fetch(&checkout).await.map_err(explain)?;
        match *kind {
            "Branch" => git::checkout_branch(&checkout, name).await,
            _ => git::checkout_tag(&checkout, name).await,
        }
        .map_err(explain)?;
    }
    let current_branch = git::current_branch(&checkout).await;
    let head = git::head_commit(&checkout).await;

    let mut workspace = lock(&shared.workspace);
    let repo = workspace
        .repos
        .get_mut(&id)
        .ok_or_else(|| repo_not_found(id))?;
    repo.branch = current_branch;
    repo.head_commit_id = head;
    if sparse_patterns.is_some() {
        repo.sparse_patterns = sparse_patterns;
    }
    Ok(Json(repo.info()))
}

async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let repo = lock(&shared.workspace)
        .repos
        .remove(&id)
        .ok_or_else(|| repo_not_found(id))?;
    let _checkout_in_use = repo.git_lock.lock().await;
    let _ = tokio::fs::remove_dir_all(&repo.checkout).await;
    Ok(Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_repos_after_their_url() {
        assert_eq!(repo_name("https://github.com/org/project.git"), "project");
        assert_eq!(repo_name("file:///tmp/src/project/"), "project");
        assert_eq!(repo_name("/tmp/x/demo"), "demo");
    }

    #[test]
    fn page_tokens_round_trip() {
        let token = encode_token("/Repos/a b/ü");
        assert_eq!(decode_token(&token).unwrap(), "/Repos/a b/ü");
        assert!(decode_token("zz").is_err());
    }

    #[test]
    fn providers_are_case_insensitive() {
        assert_eq!(provider_from(Some("GITHUB")).unwrap(), "gitHub");
        assert_eq!(
            provider_from(Some("azuredevopsservices")).unwrap(),
            "azureDevOpsServices"
        );
        assert!(provider_from(Some("svn"))
            .unwrap_err()
            .message
            .contains("gitLab"));
        assert!(provider_from(None).is_err());
    }
}
