//! The endpoints the tasks use, one method each. Paths and bodies follow
//! `shared/reference/databricks-rest.md`.

use base64::Engine as _;
use serde_json::json;

use super::client::Client;
use super::error::{ApiError, RequestLabel};
use super::models::*;
use crate::rest::{Body, Method};

const REPOS: &str = "/api/2.0/repos";
/// Jobs API 2.2: the same shapes as 2.1, and `runs/get` pages the tasks of large runs.
const JOBS: &str = "/api/2.2/jobs";

/// Tasks in one page of a Jobs 2.2 answer.
pub const TASKS_PER_PAGE: usize = 100;

/// The longest page token sent back: it goes into a URL, and Databricks' are far shorter.
const MAX_PAGE_TOKEN_BYTES: usize = 4096;

impl Client {
    // ----- workspace -----

    pub async fn get_status(&self, path: &str) -> Result<ObjectInfo, ApiError> {
        self.get("/api/2.0/workspace/get-status", &[("path", path)])
            .await
    }

    /// `None` when nothing exists at `path`.
    pub async fn find_object(&self, path: &str) -> Result<Option<ObjectInfo>, ApiError> {
        match self.get_status(path).await {
            Ok(info) => Ok(Some(info)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn mkdirs(&self, path: &str) -> Result<(), ApiError> {
        let _: serde_json::Value = self
            .send(
                Method::Post,
                "/api/2.0/workspace/mkdirs",
                &json!({ "path": path }),
            )
            .await?;
        Ok(())
    }

    pub async fn list_objects(&self, path: &str) -> Result<Vec<ObjectInfo>, ApiError> {
        let list: ObjectList = self
            .get("/api/2.0/workspace/list", &[("path", path)])
            .await?;
        Ok(list.objects)
    }

    // ----- repos -----

    /// Creates a repo. The request is not idempotent, so when an attempt fails in a way that
    /// may have taken effect (lost answer, 5xx), the path is looked up before trying again:
    /// a repo is never created twice.
    /// With `sparse` cone patterns, only those folders (and the root's files) are checked out.
    pub async fn create_repo(
        &self,
        url: &str,
        provider: &str,
        path: &str,
        sparse: Option<&[String]>,
    ) -> Result<RepoInfo, ApiError> {
        let mut body = json!({ "url": url, "provider": provider, "path": path });
        if let Some(patterns) = sparse {
            body["sparse_checkout"] = json!({ "patterns": patterns });
        }
        let body = serde_json::to_vec(&body).expect("JSON values serialize");
        let request = self.request(Method::Post, REPOS, &[], Some(Body::json(body)));
        self.retrying(
            &request,
            || self.attempt(request.clone()),
            || async {
                match self.find_repo_by_path(path).await {
                    Ok(RepoAtPath::GitFolder(repo)) => Some(repo),
                    _ => None,
                }
            },
        )
        .await
    }

    pub async fn get_repo(&self, id: i64) -> Result<RepoInfo, ApiError> {
        self.get(&format!("{REPOS}/{id}"), &[]).await
    }

    /// Resolves a path to the Git folder there: get-status, then the repos API by object id.
    /// The object type does not decide: workspaces with the Git CLI show Git folders as
    /// `DIRECTORY`, so a folder is a Git folder exactly when the repos API knows its id
    /// (`shared/reference/databricks-rest.md`, "What changed on the platform").
    pub async fn find_repo_by_path(&self, path: &str) -> Result<RepoAtPath, ApiError> {
        let Some(object) = self.find_object(path).await? else {
            return Ok(RepoAtPath::Nothing);
        };
        let may_be_git_folder = matches!(
            object.object_type,
            Some(ObjectType::Repo | ObjectType::Directory)
        );
        let id = match (may_be_git_folder, object.object_id) {
            (false, _) => return Ok(RepoAtPath::Other(object.object_type)),
            (true, Some(id)) => id,
            (true, None) => {
                return Err(ApiError::Decode {
                    request: RequestLabel {
                        method: "GET",
                        path: "/api/2.0/workspace/get-status".into(),
                    },
                    message: format!(
                    "HTTP 200 without the `object_id` of {path}, so its Git folder cannot be read"
                ),
                })
            }
        };
        match self.get_repo(id).await {
            Ok(repo) => Ok(RepoAtPath::GitFolder(repo)),
            // A `REPO` the repos API no longer knows was deleted between the two requests.
            Err(e) if e.is_not_found() && object.object_type == Some(ObjectType::Repo) => {
                Ok(RepoAtPath::Nothing)
            }
            Err(e) if e.is_not_found() => Ok(RepoAtPath::Other(object.object_type)),
            Err(e) => Err(e),
        }
    }

    /// Checks out `reference` (a branch or a tag) and pulls; with `sparse`, also replaces the
    /// cone patterns of a Git folder created with sparse checkout.
    pub async fn update_repo(
        &self,
        id: i64,
        reference: &RepoRef,
        sparse: Option<&[String]>,
    ) -> Result<RepoInfo, ApiError> {
        let mut body = match reference {
            RepoRef::Branch(branch) => json!({ "branch": branch }),
            RepoRef::Tag(tag) => json!({ "tag": tag }),
        };
        if let Some(patterns) = sparse {
            body["sparse_checkout"] = json!({ "patterns": patterns });
        }
        self.send(Method::Patch, &format!("{REPOS}/{id}"), &body)
            .await
    }

    pub async fn delete_repo(&self, id: i64) -> Result<(), ApiError> {
        let _: serde_json::Value = self
            .send(Method::Delete, &format!("{REPOS}/{id}"), &json!({}))
            .await?;
        Ok(())
    }

    // ----- jobs -----

    /// Submits a one-time run. Safe to retry: callers set an idempotency token, so a retried
    /// submit returns the first run instead of starting another.
    pub async fn submit_run(&self, run: &SubmitRun) -> Result<i64, ApiError> {
        let response: SubmitResponse = self
            .send(Method::Post, &format!("{JOBS}/runs/submit"), run)
            .await?;
        Ok(response.run_id)
    }

    /// The run with every task, its pages followed (`next_page_token`, then `page_token`), and
    /// `status` folded into `state`. `most_tasks` bounds what is read as a whole: a run that
    /// lists more tasks, or pages that go on without tasks or come round again, is an error
    /// rather than a request loop or a pile in memory.
    pub async fn get_run(&self, run_id: i64, most_tasks: usize) -> Result<Run, ApiError> {
        let mut run = self.get_run_page(run_id, None).await?;
        let mut seen = std::collections::HashSet::new();
        while let Some(token) = run.next_page_token.take().filter(|t| !t.is_empty()) {
            let broken = |problem: String| ApiError::Decode {
                request: RequestLabel {
                    method: "GET",
                    path: format!("{JOBS}/runs/get"),
                },
                message: format!(
                    "HTTP 200, but the pages of run {run_id} cannot be read whole: {problem}"
                ),
            };
            if token.len() > MAX_PAGE_TOKEN_BYTES {
                return Err(broken(format!(
                    "a page token of {} bytes, longer than the {MAX_PAGE_TOKEN_BYTES} sent back",
                    token.len()
                )));
            }
            if !seen.insert(token.clone()) {
                return Err(broken("a page token came back a second time".into()));
            }
            let page = self.get_run_page(run_id, Some(&token)).await?;
            if page.tasks.is_empty() && page.next_page_token.is_some() {
                return Err(broken("a page without tasks names a next page".into()));
            }
            run.tasks.extend(page.tasks);
            if run.tasks.len() > most_tasks {
                return Err(broken(format!(
                    "it lists more than {most_tasks} tasks, more than this step submitted"
                )));
            }
            run.next_page_token = page.next_page_token;
        }
        run.reconcile_status();
        Ok(run)
    }

    /// The run's own state, from the first page (its tasks may be incomplete): enough to see
    /// whether a cancelled run has stopped.
    pub async fn get_run_state(&self, run_id: i64) -> Result<Run, ApiError> {
        let mut run = self.get_run_page(run_id, None).await?;
        run.reconcile_status();
        Ok(run)
    }

    /// One page of `runs/get`. An answer without a life cycle state, or about another run, is
    /// an error: reading it as "not finished yet" would wait for nothing until the time limit.
    async fn get_run_page(&self, run_id: i64, page_token: Option<&str>) -> Result<Run, ApiError> {
        let path = format!("{JOBS}/runs/get");
        let id = run_id.to_string();
        let mut query = vec![("run_id", id.as_str())];
        if let Some(token) = page_token {
            query.push(("page_token", token));
        }
        let run: Run = self.get(&path, &query).await?;
        // An unknown `status.state` says nothing the watcher could act on.
        let has_life_cycle = run.state.life_cycle_state.is_some()
            || run
                .status
                .as_ref()
                .and_then(|s| s.state.as_ref())
                .is_some_and(|s| !matches!(s, StatusState::Other(_)));
        let problem = match run.run_id {
            Some(other) if other != run_id => {
                Some(format!("it describes run {other}, not run {run_id}"))
            }
            _ if !has_life_cycle => Some(
                "it has no `state.life_cycle_state` (nor `status.state`), so the run's progress is unknown".to_string(),
            ),
            _ => None,
        };
        match problem {
            Some(problem) => Err(ApiError::Decode {
                request: RequestLabel {
                    method: "GET",
                    path,
                },
                message: format!("HTTP 200 with a JSON document that is not a run: {problem}"),
            }),
            None => Ok(run),
        }
    }

    /// Output of one task run (not of a multi-task parent run).
    pub async fn get_run_output(&self, task_run_id: i64) -> Result<RunOutput, ApiError> {
        self.get(
            &format!("{JOBS}/runs/get-output"),
            &[("run_id", &task_run_id.to_string())],
        )
        .await
    }

    /// A file in a Unity Catalog volume (`/Volumes/...`), through the Files API.
    pub async fn download_volume_file(&self, path: &str) -> Result<Vec<u8>, ApiError> {
        self.call_raw(Method::Get, &files_api("files", path), &[], None)
            .await
    }

    /// A workspace file (or a notebook's source), through the workspace export API. `path` is
    /// a workspace path (`/Users/...`, `/Shared/...`, `/Repos/...`). The API refuses objects
    /// over 10 MB (`MAX_NOTEBOOK_SIZE_EXCEEDED`), and the REST layer caps answers at 16 MB,
    /// which 10 MB in base64 fits.
    pub async fn export_workspace_file(&self, path: &str) -> Result<Vec<u8>, ApiError> {
        const EXPORT: &str = "/api/2.0/workspace/export";
        let exported: ExportedObject = self
            .get(EXPORT, &[("path", path), ("format", "SOURCE")])
            .await?;
        let unreadable = |message: String| ApiError::Decode {
            request: RequestLabel {
                method: "GET",
                path: EXPORT.to_string(),
            },
            message,
        };
        let content = exported
            .content
            .ok_or_else(|| unreadable("the answer has no `content`".to_string()))?;
        base64::engine::general_purpose::STANDARD
            .decode(content.trim())
            .map_err(|e| unreadable(format!("its `content` is not base64: {e}")))
    }

    /// Writes a workspace file (`/Shared/...`, `/Users/...`; its folder must exist), replacing
    /// one that is there: sending it again is harmless, so it is retried. The API takes at most
    /// 10 MB.
    pub async fn import_workspace_file(&self, path: &str, bytes: &[u8]) -> Result<(), ApiError> {
        let content = base64::engine::general_purpose::STANDARD.encode(bytes);
        let _: serde_json::Value = self
            .send(
                Method::Post,
                "/api/2.0/workspace/import",
                &json!({ "path": path, "format": "AUTO", "content": content, "overwrite": true }),
            )
            .await?;
        Ok(())
    }

    /// Removes a workspace folder with what is in it; one already gone counts as removed.
    pub async fn delete_workspace_folder(&self, path: &str) -> Result<(), ApiError> {
        let deleted: Result<serde_json::Value, ApiError> = self
            .send(
                Method::Post,
                "/api/2.0/workspace/delete",
                &json!({ "path": path, "recursive": true }),
            )
            .await;
        match deleted {
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Writes a file into a Unity Catalog volume (its folders are created as needed),
    /// replacing one that is there: sending it again is harmless, so it is retried.
    pub async fn upload_volume_file(&self, path: &str, bytes: Vec<u8>) -> Result<(), ApiError> {
        self.call_raw(
            Method::Put,
            &files_api("files", path),
            &[("overwrite", "true")],
            Some(Body::file(bytes)),
        )
        .await
        .map(drop)
    }

    /// Removes a file, or an empty folder, from a Unity Catalog volume; one already gone
    /// (a retried delete whose first answer was lost) counts as removed.
    pub async fn delete_volume_entry(&self, path: &str, folder: bool) -> Result<(), ApiError> {
        let kind = if folder { "directories" } else { "files" };
        match self
            .call_raw(Method::Delete, &files_api(kind, path), &[], None)
            .await
        {
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other.map(drop),
        }
    }

    pub async fn cancel_run(&self, run_id: i64) -> Result<(), ApiError> {
        let _: serde_json::Value = self
            .send(
                Method::Post,
                &format!("{JOBS}/runs/cancel"),
                &json!({ "run_id": run_id }),
            )
            .await?;
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepoRef {
    Branch(String),
    Tag(String),
}

impl std::fmt::Display for RepoRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RepoRef::Branch(b) => write!(f, "branch {b}"),
            RepoRef::Tag(t) => write!(f, "tag {t}"),
        }
    }
}

/// The Files API path of `path` (`/Volumes/...`): each segment percent-encoded, RFC 3986's
/// unreserved characters left as they are.
fn files_api(kind: &str, path: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let encoded: String = path
        .split('/')
        .filter(|part| !part.is_empty())
        .map(|part| format!("/{}", percent_encoding::utf8_percent_encode(part, SEGMENT)))
        .collect();
    format!("/api/2.0/fs/{kind}{encoded}")
}
