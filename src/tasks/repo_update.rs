//! DatabricksRepoUpdate: point a Databricks Repo (Git folder) at the branch or tag being built.

use super::connection::{Connection, AUTH_METHOD};
use super::git_ref::{self, check_commit, check_ref_name};
use super::{Failure, FailureKind, Report};
use crate::databricks::models::{ObjectType, RepoAtPath, RepoInfo};
use crate::databricks::{Client, RepoRef};
use crate::host::Host;
use crate::pipeline::inputs::{input_lines, PickList};
use crate::pipeline::{InputError, Inputs, Log};
use crate::tasks::names::{input, output, variable};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    CreateOrUpdate,
    Update,
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepoTarget {
    Path(String),
    Id(i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnMismatch {
    Warn,
    Fail,
    Ignore,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub connection: Connection,
    pub mode: Mode,
    pub target: RepoTarget,
    /// Clone URL and provider; needed only to create the repo.
    pub clone: Option<(String, String)>,
    pub reference: Option<RepoRef>,
    pub expected_commit: Option<String>,
    pub on_mismatch: OnMismatch,
    /// Cone patterns: the folders a sparse checkout holds; `None` for everything.
    pub sparse_checkout: Option<Vec<String>>,
    /// Inputs that were set but have no effect with the others, said before any request.
    pub warnings: Vec<String>,
}

/// The task's own inputs; besides them, both tasks read [`connection::INPUTS`](crate::tasks::connection::INPUTS).
pub const INPUTS: &[&str] = &[
    input::MODE,
    input::REPO_PATH,
    input::REPO_ID,
    input::REPO_URL,
    input::GIT_PROVIDER,
    input::BRANCH,
    input::TAG,
    input::EXPECTED_COMMIT,
    input::ON_COMMIT_MISMATCH,
    input::SPARSE_CHECKOUT,
];

pub const MODE: PickList = PickList {
    input: input::MODE,
    options: &["createOrUpdate", "update", "delete"],
    default: "createOrUpdate",
};
pub const ON_COMMIT_MISMATCH: PickList = PickList {
    input: input::ON_COMMIT_MISMATCH,
    options: &["warn", "fail", "ignore"],
    default: "warn",
};
pub const PICK_LISTS: &[PickList] = &[AUTH_METHOD, MODE, ON_COMMIT_MISMATCH];
pub const OUTPUTS: &[&str] = &[
    output::REPO_ID,
    output::REPO_PATH,
    output::BRANCH,
    output::HEAD_COMMIT_ID,
];

/// Checks the path of a Git folder: `/Repos/<folder>/<name>` under `/Repos` (the only depth
/// Databricks takes there), or a folder anywhere else, such as `/Workspace/Users/<user>/<name>`
/// or `/Workspace/Shared/<name>` (`/Workspace` may be left out).
pub fn check_workspace_path(input: &str, path: &str) -> Result<String, InputError> {
    let bad = |why: &str| Err(InputError::new(input, format!("`{path}` {why}")));
    if !path.starts_with('/') {
        return bad("is not an absolute workspace path (e.g. /Repos/ci/my-project)");
    }
    let trimmed = path.trim_end_matches('/');
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    if segments
        .iter()
        .any(|segment| segment.is_empty() || *segment == "." || *segment == "..")
    {
        return bad("has an empty, `.` or `..` segment");
    }
    let below_workspace = match segments.split_first() {
        Some((&"Workspace", rest)) => rest,
        _ => &segments[..],
    };
    match below_workspace {
        ["Repos", ..] if below_workspace.len() != 3 => {
            bad("is not a Git folder path: under /Repos a Git folder is /Repos/<folder>/<name>, e.g. /Repos/ci/my-project")
        }
        [] | [_] => bad(
            "is too short: a Git folder lives in a folder, e.g. /Repos/ci/my-project or /Workspace/Shared/my-project",
        ),
        _ => Ok(trimmed.to_string()),
    }
}

/// Most sparse checkout patterns a step sends.
const MAX_SPARSE_PATTERNS: usize = 1_000;

/// `sparseCheckout`: one cone pattern a line, a folder relative to the repository root (its
/// files and everything below it are checked out, besides the root's own files).
fn sparse_patterns(inputs: &Inputs) -> Result<Option<Vec<String>>, InputError> {
    const INPUT: &str = input::SPARSE_CHECKOUT;
    let Some(text) = inputs.text(INPUT)? else {
        return Ok(None);
    };
    let mut patterns: Vec<String> = Vec::new();
    for (number, line) in input_lines(INPUT, &text)? {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| {
            Err(InputError::new(INPUT, format!("line {number} (`{line}`) {why}"))
                .with_hint("list folders relative to the repository root, one per line, e.g. notebooks/tests"))
        };
        let folder = line.trim_end_matches('/');
        if folder.starts_with('/') {
            return bad("is absolute: cone patterns are relative to the repository root");
        }
        if folder.starts_with('!') || folder.contains(['*', '?', '[', '\\']) {
            return bad("is not a cone pattern: sparse checkout in cone mode takes folder names, without `!` or wildcards");
        }
        if folder.is_empty()
            || folder
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return bad("has an empty, `.` or `..` segment");
        }
        if !patterns.iter().any(|p| p == folder) {
            patterns.push(folder.to_string());
        }
    }
    if patterns.is_empty() {
        return Ok(None);
    }
    if patterns.len() > MAX_SPARSE_PATTERNS {
        return Err(InputError::new(
            INPUT,
            format!(
                "lists {} folders; at most {MAX_SPARSE_PATTERNS} are allowed",
                patterns.len()
            ),
        ));
    }
    Ok(Some(patterns))
}

/// Inputs that `mode` leaves unused. The classic editor hides them (visibleRule) but keeps
/// their values, so they are warnings, not errors. `repoUrl` defaults to the build's own
/// repository, so only another URL counts as set; `gitProvider` only names the kind of host,
/// and templates often set it for every step.
fn ignored_by_mode(inputs: &Inputs, mode: Mode) -> Vec<String> {
    let build_repository = inputs.variable(variable::BUILD_REPOSITORY_URI);
    let (mode_name, unused): (&str, &[(&str, Option<&str>)]) = match mode {
        Mode::CreateOrUpdate => return Vec::new(),
        Mode::Update => ("update", &[(input::REPO_URL, build_repository.as_deref())]),
        Mode::Delete => (
            "delete",
            &[
                (input::REPO_URL, build_repository.as_deref()),
                (input::BRANCH, None),
                (input::TAG, None),
                (input::EXPECTED_COMMIT, None),
                (input::ON_COMMIT_MISMATCH, Some(ON_COMMIT_MISMATCH.default)),
                (input::SPARSE_CHECKOUT, None),
            ],
        ),
    };
    unused
        .iter()
        .filter(|(input, default)| inputs.is_set(input, *default))
        .map(|(input, _)| {
            let why = match *input {
                input::REPO_URL => "it is only used to create the repo (mode `createOrUpdate`)",
                _ => "a deleted repo has nothing to check out",
            };
            format!("input `{input}` is ignored with `mode: {mode_name}`: {why}")
        })
        .collect()
}

impl Settings {
    pub fn from_inputs(inputs: &Inputs, host: &dyn Host) -> Result<Settings, InputError> {
        let connection = Connection::from_inputs(inputs, host)?;
        let mode = match inputs.pick_list(&MODE)? {
            "update" => Mode::Update,
            "delete" => Mode::Delete,
            _ => Mode::CreateOrUpdate,
        };
        let path = inputs
            .get(input::REPO_PATH)?
            .map(|p| check_workspace_path(input::REPO_PATH, &p))
            .transpose()?;
        let id = inputs
            .get(input::REPO_ID)?
            .map(|id| {
                id.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
                    InputError::new(
                        input::REPO_ID,
                        format!("`{id}` is not a repo id (a positive whole number)"),
                    )
                })
            })
            .transpose()?;
        let target = match (path, id) {
            (Some(_), Some(_)) => {
                return Err(
                    InputError::new(input::REPO_ID, "cannot be combined with repoPath")
                        .with_hint("set one of them"),
                )
            }
            (Some(path), None) => RepoTarget::Path(path),
            (None, Some(_)) if mode == Mode::CreateOrUpdate => {
                return Err(
                    InputError::new(input::REPO_ID, "cannot be used to create a repo")
                        .with_hint("set repoPath instead, or use mode `update`"),
                )
            }
            (None, Some(id)) => RepoTarget::Id(id),
            (None, None) => {
                return Err(InputError::new(
                    input::REPO_PATH,
                    "is required (or repoId, for modes update and delete)",
                )
                .with_hint("e.g. /Repos/ci/my-project"))
            }
        };
        let mut warnings = ignored_by_mode(inputs, mode);
        if mode == Mode::Delete {
            return Ok(Settings {
                connection,
                mode,
                target,
                clone: None,
                reference: None,
                expected_commit: None,
                on_mismatch: OnMismatch::Ignore,
                sparse_checkout: None,
                warnings,
            });
        }
        let clone = if mode == Mode::CreateOrUpdate {
            let url = git_ref::repository_url(inputs, input::REPO_URL)?;
            let provider = git_ref::provider(inputs, input::GIT_PROVIDER, &url)?;
            Some((url, provider))
        } else {
            None
        };
        let branch = inputs.get(input::BRANCH)?;
        let tag = inputs.get(input::TAG)?;
        let (reference, from_build) = match (branch, tag) {
            (Some(_), Some(_)) => {
                return Err(
                    InputError::new(input::TAG, "cannot be combined with branch")
                        .with_hint("set one of them"),
                )
            }
            (Some(branch), None) => (Some(RepoRef::Branch(branch)), false),
            (None, Some(tag)) => (Some(RepoRef::Tag(tag)), false),
            (None, None) => (git_ref::ref_from_build(inputs), true),
        };
        match &reference {
            Some(RepoRef::Branch(name)) => check_ref_name(input::BRANCH, name)?,
            Some(RepoRef::Tag(name)) => check_ref_name(input::TAG, name)?,
            None => {
                return Err(InputError::new(
                    input::BRANCH,
                    "is not set, and the build's branch is not known",
                )
                .with_hint("set branch or tag"))
            }
        }
        let on_mismatch = match inputs.pick_list(&ON_COMMIT_MISMATCH)? {
            "fail" => OnMismatch::Fail,
            "ignore" => OnMismatch::Ignore,
            _ => OnMismatch::Warn,
        };
        // The build's commit only says something about the build's own branch.
        let expected_commit = match inputs.get(input::EXPECTED_COMMIT)? {
            Some(commit) => Some(check_commit(input::EXPECTED_COMMIT, &commit)?),
            None if from_build => git_ref::commit_from_build(inputs)
                .and_then(|c| check_commit(input::EXPECTED_COMMIT, &c).ok()),
            None => None,
        };
        if expected_commit.is_none() && on_mismatch == OnMismatch::Fail {
            warnings.push(format!(
                "input `onCommitMismatch` is ignored: there is no commit to compare the head with ({})",
                if from_build {
                    "the build's commit is not known"
                } else {
                    "set expectedCommit; the build's commit is only used when branch and tag are not set"
                }
            ));
        }
        Ok(Settings {
            connection,
            mode,
            target,
            clone,
            reference,
            expected_commit,
            on_mismatch,
            sparse_checkout: sparse_patterns(inputs)?,
            warnings,
        })
    }
}

pub async fn run(settings: &Settings, client: &Client, log: &Log) -> Result<Report, Failure> {
    log.info(&format!("Databricks workspace: {}", client.base()));
    match settings.mode {
        Mode::Delete => delete(settings, client, log).await,
        Mode::Update | Mode::CreateOrUpdate => update(settings, client, log).await,
    }
}

async fn find(target: &RepoTarget, client: &Client) -> Result<Option<RepoInfo>, Failure> {
    match target {
        RepoTarget::Path(path) => match client
            .find_repo_by_path(path)
            .await
            .map_err(|e| Failure::api(&format!("looking up {path}"), e))?
        {
            RepoAtPath::Nothing => Ok(None),
            RepoAtPath::GitFolder(repo) => Ok(Some(repo)),
            RepoAtPath::Other(object_type) => Err(not_a_git_folder(path, object_type)),
        },
        RepoTarget::Id(id) => match client.get_repo(*id).await {
            Ok(repo) => Ok(Some(repo)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(Failure::api(&format!("reading repo {id}"), e)),
        },
    }
}

/// Something else is at the path: it is left as it is, whatever the mode.
fn not_a_git_folder(path: &str, object_type: Option<ObjectType>) -> Failure {
    let what = match object_type {
        Some(ObjectType::Directory | ObjectType::Repo) => {
            "a folder, not a Git folder (the repos API does not know it)".to_string()
        }
        Some(other) => format!("a {}, not a Git folder", other.to_string().to_lowercase()),
        None => "a workspace object that is not a Git folder".to_string(),
    };
    Failure::new(
        FailureKind::Input,
        format!("input `repoPath`: {path} is {what}; nothing was changed"),
    )
    .hint("choose a path where nothing exists yet, or the path of an existing Git folder")
}

fn describe(target: &RepoTarget) -> String {
    match target {
        RepoTarget::Path(path) => path.clone(),
        RepoTarget::Id(id) => format!("repo {id}"),
    }
}

/// The `--output json` document's part after a delete.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Deleted<'a> {
    mode: &'static str,
    deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    repo_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repo_path: Option<&'a str>,
}

/// The `--output json` document's part after a create or update.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Updated<'a> {
    repo_id: i64,
    repo_path: &'a str,
    branch: Option<&'a str>,
    head_commit_id: &'a str,
    commit_matches: Option<bool>,
}

fn details(part: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(part).expect("the document serializes")
}

async fn delete(settings: &Settings, client: &Client, log: &Log) -> Result<Report, Failure> {
    let target = describe(&settings.target);
    let Some(repo) = find(&settings.target, client).await? else {
        log.warning(&format!("{target} does not exist; nothing to delete"));
        return Ok(Report {
            summary: format!("{target} did not exist"),
            issues: true,
            details: details(&Deleted {
                mode: "delete",
                deleted: false,
                repo_id: None,
                repo_path: None,
            }),
        });
    };
    match client.delete_repo(repo.id).await {
        Ok(()) => {}
        // Deleted meanwhile (or by a retried request whose answer was lost): the goal is met.
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(Failure::api(&format!("deleting {target}"), e)),
    }
    let path = repo.path.clone().unwrap_or(target);
    log.info(&format!("Deleted repo {path} (id {})", repo.id));
    Ok(Report {
        summary: format!("Deleted {path}"),
        issues: false,
        details: details(&Deleted {
            mode: "delete",
            deleted: true,
            repo_id: Some(repo.id),
            repo_path: Some(&path),
        }),
    })
}

async fn update(settings: &Settings, client: &Client, log: &Log) -> Result<Report, Failure> {
    let target = describe(&settings.target);
    let existing = find(&settings.target, client).await?;
    let repo = match (existing, &settings.clone, &settings.target) {
        (Some(repo), clone, _) => {
            log.info(&format!(
                "Found repo {} (id {})",
                repo.path.as_deref().unwrap_or(&target),
                repo.id
            ));
            if let (Some((url, _)), Some(current)) = (clone, &repo.url) {
                if !same_repository(url, current) {
                    // The workspace's URL may carry credentials someone put there.
                    let current = crate::text::redact_url(current);
                    log.warning(&format!(
                        "{target} is a clone of {current}, not of {url}; it is updated as it is"
                    ));
                }
            }
            repo
        }
        (None, Some((url, provider)), RepoTarget::Path(path)) => {
            create(
                client,
                log,
                url,
                provider,
                path,
                settings.sparse_checkout.as_deref(),
            )
            .await?
        }
        (None, _, _) => {
            return Err(
                Failure::new(FailureKind::Api, format!("{target} does not exist"))
                    .hint("use mode `createOrUpdate` to create it, or check repoPath / repoId"),
            )
        }
    };
    let reference = settings
        .reference
        .as_ref()
        .expect("validated: update modes have a reference");
    let sparse = sparse_update(settings, &repo, &target, log)?;
    log.info(&format!("Checking out {reference} and pulling"));
    let repo = client
        .update_repo(repo.id, reference, sparse)
        .await
        .map_err(|e| {
            let failure = Failure::api(&format!("checking out {reference} in {target}"), e.clone());
            if e.status() == Some(400) || e.is_not_found() {
                failure.hint(format!(
                    "check that the {reference} exists in the remote repository and was pushed"
                ))
            } else {
                failure
            }
        })?;
    let path = repo.path.clone().unwrap_or(target);
    let head = repo.head_commit_id.clone().unwrap_or_default();
    let at = match (&repo.branch, reference) {
        (Some(branch), _) => format!("branch {branch}"),
        (None, RepoRef::Tag(tag)) => format!("tag {tag}"),
        (None, other) => other.to_string(),
    };
    log.info(&format!(
        "Repo {path} is at {at}, commit {}",
        if head.is_empty() { "(unknown)" } else { &head }
    ));

    let mut issues = false;
    let commit_matches = settings
        .expected_commit
        .as_deref()
        .map(|expected| same_commit(&head, expected));
    if let (Some(expected), Some(false)) = (&settings.expected_commit, commit_matches) {
        let message = format!(
                "the repo's head commit {head} is not the commit this pipeline built ({expected}): the {reference} may have moved since the build started; the Repos API can only check out the latest commit of a branch"
            );
        match settings.on_mismatch {
                OnMismatch::Fail => {
                    return Err(Failure::new(FailureKind::Tests, message)
                        .hint("re-run the pipeline, or set onCommitMismatch to warn; source `git` in DatabricksRunNotebookTest runs the exact commit"))
                }
                OnMismatch::Warn => {
                    log.warning(&message);
                    issues = true;
                }
                OnMismatch::Ignore => log.debug(&message),
            }
    }

    let branch = repo.branch.clone().unwrap_or_default();
    log.set_output(output::REPO_ID, &repo.id.to_string());
    log.set_output(output::REPO_PATH, &path);
    log.set_output(output::BRANCH, &branch);
    log.set_output(output::HEAD_COMMIT_ID, &head);
    Ok(Report {
        summary: format!("{path} at {at} ({})", short(&head)),
        issues,
        details: details(&Updated {
            repo_id: repo.id,
            repo_path: &path,
            branch: repo.branch.as_deref(),
            head_commit_id: &head,
            commit_matches,
        }),
    })
}

/// The cone patterns to send with the checkout of an existing Git folder. Only a folder
/// created with sparse checkout can change its patterns; one created without it cannot be made
/// sparse, and that is said before anything is changed.
fn sparse_update<'s>(
    settings: &'s Settings,
    repo: &RepoInfo,
    target: &str,
    log: &Log,
) -> Result<Option<&'s [String]>, Failure> {
    let current = repo.sparse_checkout.as_ref().map(|s| &s.patterns);
    match (settings.sparse_checkout.as_deref(), current) {
        (Some(_), None) => Err(Failure::new(
            FailureKind::Input,
            format!("input `sparseCheckout`: {target} was created without sparse checkout, and Databricks cannot make an existing Git folder sparse; nothing was changed"),
        )
        .hint("delete the Git folder (a step with `mode: delete`) and run this step again to create it sparse, or remove sparseCheckout")),
        (Some(patterns), Some(current)) => {
            if patterns != current.as_slice() {
                log.info(&format!("Sparse checkout: {}", patterns.join(", ")));
            }
            Ok(Some(patterns))
        }
        (None, Some(current)) => {
            log.info(&format!(
                "The Git folder keeps its sparse checkout ({}): sparseCheckout is not set",
                current.join(", ")
            ));
            Ok(None)
        }
        (None, None) => Ok(None),
    }
}

async fn create(
    client: &Client,
    log: &Log,
    url: &str,
    provider: &str,
    path: &str,
    sparse: Option<&[String]>,
) -> Result<RepoInfo, Failure> {
    log.info(&format!(
        "Repo {path} does not exist; creating it from {url} ({provider})"
    ));
    if let Some(patterns) = sparse {
        log.info(&format!("Sparse checkout: {}", patterns.join(", ")));
    }
    let parent = path
        .rsplit_once('/')
        .map(|(parent, _)| parent)
        .unwrap_or("/");
    let parent_exists = client
        .find_object(parent)
        .await
        .map_err(|e| Failure::api(&format!("looking up {parent}"), e))?
        .is_some();
    if !parent_exists {
        client
            .mkdirs(parent)
            .await
            .map_err(|e| Failure::api(&format!("creating folder {parent}"), e))?;
        log.info(&format!("Created folder {parent}"));
    }
    let repo = client
        .create_repo(url, provider, path, sparse)
        .await
        .map_err(|e| Failure::api(&format!("creating repo {path}"), e))?;
    log.info(&format!("Created repo {path} (id {})", repo.id));
    Ok(repo)
}

/// Whether two commit ids (either possibly abbreviated) name the same commit. An unknown
/// head cannot be judged and counts as matching.
fn same_commit(head: &str, expected: &str) -> bool {
    head.is_empty() || head.starts_with(expected) || expected.starts_with(head)
}

fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

/// Whether two clone URLs name the same repository (ignoring `.git`, user names and case of
/// the host).
fn same_repository(a: &str, b: &str) -> bool {
    fn normalize(url: &str) -> String {
        let url = url.trim().trim_end_matches('/').trim_end_matches(".git");
        match crate::text::parse_url(url) {
            Ok(mut parsed) if parsed.has_host() => {
                let _ = parsed.set_username("");
                let _ = parsed.set_password(None);
                parsed.to_string().trim_end_matches('/').to_string()
            }
            _ => url.trim_start_matches("file://").to_string(),
        }
    }
    normalize(a) == normalize(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_paths_are_checked() {
        assert_eq!(
            check_workspace_path("repoPath", "/Repos/ci/proj/").unwrap(),
            "/Repos/ci/proj"
        );
        for good in [
            "/Workspace/Users/me@example.com/proj",
            "/Users/me@example.com/proj",
            "/Workspace/Shared/proj",
            "/Shared/proj",
            "/Shared/team/ci/proj",
            "/Workspace/Repos/ci/proj",
        ] {
            assert_eq!(check_workspace_path("repoPath", good).unwrap(), good);
        }
        for bad in [
            "Repos/ci/x",
            "/Repos",
            "/Repos//x",
            "/Repos/../x",
            "/x",
            "/Repos/ci",
            "/Repos/ci/proj/sub",
            "/Workspace/Repos/ci",
            "/Workspace/Shared",
            "/Workspace",
        ] {
            assert!(check_workspace_path("repoPath", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn same_repository_ignores_cosmetics() {
        assert!(same_repository(
            "https://org@dev.azure.com/org/p/_git/r",
            "https://dev.azure.com/org/p/_git/r"
        ));
        assert!(same_repository(
            "https://github.com/o/r.git",
            "https://github.com/o/r"
        ));
        assert!(!same_repository(
            "https://github.com/o/r",
            "https://github.com/o/s"
        ));
        assert!(same_repository("/tmp/x", "file:///tmp/x"));
    }
}
