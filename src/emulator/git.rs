//! The `git` commands behind Repos and `git_source` runs. Only local sources can be reached:
//! the emulator works offline.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

/// Git providers Databricks accepts, in their canonical spelling (one list for the client and
/// the emulator).
pub(crate) use crate::databricks::models::PROVIDERS;

/// The canonical spelling of a provider name given in any case.
pub(crate) fn canonical_provider(provider: &str) -> Option<&'static str> {
    PROVIDERS
        .iter()
        .copied()
        .find(|p| p.eq_ignore_ascii_case(provider.trim()))
}

#[derive(Debug)]
pub(crate) enum GitError {
    /// The URL points at a hosted provider; a real workspace would need the user's Git
    /// credentials for it, and the emulator cannot go online anyway.
    NeedsCredentials,
    /// The branch, tag or commit is not in the repository.
    UnknownRef(String),
    /// Git itself failed; the message is git's.
    Failed(String),
}

/// What to hand to `git clone` for a repository URL, or why it cannot be cloned.
pub(crate) fn clone_source(url: &str) -> Result<&str, GitError> {
    let url = url.trim();
    let remote = ["http://", "https://", "ssh://", "git://", "git@"];
    if remote
        .iter()
        .any(|scheme| url.to_ascii_lowercase().starts_with(scheme))
    {
        return Err(GitError::NeedsCredentials);
    }
    if url.starts_with('-') {
        return Err(GitError::Failed(format!("'{url}' is not a repository URL")));
    }
    Ok(url)
}

/// Clones `source` into `dest`; with `sparse` cone patterns, only the root's files and those
/// folders are checked out.
pub(crate) async fn clone(
    source: &str,
    dest: &Path,
    sparse: Option<&[String]>,
) -> Result<(), GitError> {
    let parent = dest.parent().unwrap_or(dest);
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| GitError::Failed(format!("cannot create {}: {e}", parent.display())))?;
    let mut args = vec!["clone", "--quiet", "--no-hardlinks"];
    if sparse.is_some() {
        args.push("--sparse");
    }
    args.push("--");
    args.push(source);
    git(parent, &args).arg(dest).run().await?;
    match sparse {
        Some(patterns) => set_sparse_patterns(dest, patterns).await,
        None => Ok(()),
    }
}

/// Replaces the cone patterns of a sparse checkout, and updates the working tree to them.
pub(crate) async fn set_sparse_patterns(repo: &Path, patterns: &[String]) -> Result<(), GitError> {
    let mut command = git(repo, &["sparse-checkout", "set", "--cone", "--"]);
    for pattern in patterns {
        command = command.arg(pattern);
    }
    command.run().await.map(drop)
}

/// Fetches every branch and tag, so a checkout sees what was pushed since the clone.
pub(crate) async fn fetch(repo: &Path) -> Result<(), GitError> {
    git(
        repo,
        &["fetch", "--quiet", "--prune", "--force", "--tags", "origin"],
    )
    .run()
    .await
    .map(drop)
}

/// Checks out the remote branch's head, discarding local state (the pull of a Databricks
/// Repo).
pub(crate) async fn checkout_branch(repo: &Path, branch: &str) -> Result<(), GitError> {
    let remote_ref = format!("refs/remotes/origin/{branch}");
    resolve(repo, &remote_ref)
        .await
        .ok_or_else(|| GitError::UnknownRef(branch.to_string()))?;
    git(
        repo,
        &["checkout", "--quiet", "--force", "-B", branch, &remote_ref],
    )
    .run()
    .await
    .map(drop)
}

/// Checks out a tag, leaving HEAD detached.
pub(crate) async fn checkout_tag(repo: &Path, tag: &str) -> Result<(), GitError> {
    let tag_ref = format!("refs/tags/{tag}");
    let commit = resolve(repo, &tag_ref)
        .await
        .ok_or_else(|| GitError::UnknownRef(tag.to_string()))?;
    detach_at(repo, &commit).await
}

/// Checks out a branch (as the remote has it), tag or commit, leaving HEAD detached; returns
/// the commit id.
pub(crate) async fn checkout_detached(repo: &Path, reference: &GitRef) -> Result<String, GitError> {
    let (candidate, name) = match reference {
        GitRef::Branch(branch) => (format!("refs/remotes/origin/{branch}"), branch),
        GitRef::Tag(tag) => (format!("refs/tags/{tag}"), tag),
        GitRef::Commit(commit) => (commit.clone(), commit),
    };
    let commit = resolve(repo, &candidate)
        .await
        .ok_or_else(|| GitError::UnknownRef(name.clone()))?;
    detach_at(repo, &commit).await?;
    Ok(commit)
}

#[derive(Clone, Debug)]
pub(crate) enum GitRef {
    Branch(String),
    Tag(String),
    Commit(String),
}

async fn detach_at(repo: &Path, commit: &str) -> Result<(), GitError> {
    git(
        repo,
        &["checkout", "--quiet", "--force", "--detach", commit],
    )
    .run()
    .await
    .map(drop)
}

/// The branch HEAD is on, `None` when detached.
pub(crate) async fn current_branch(repo: &Path) -> Option<String> {
    git(repo, &["symbolic-ref", "--quiet", "--short", "HEAD"])
        .run()
        .await
        .ok()
}

/// The commit HEAD points at, `None` in an empty repository.
pub(crate) async fn head_commit(repo: &Path) -> Option<String> {
    resolve(repo, "HEAD").await
}

/// The commit a revision names, if it names one.
async fn resolve(repo: &Path, revision: &str) -> Option<String> {
    if revision.starts_with('-') {
        return None;
    }
    let revision = format!("{revision}^{{commit}}");
    git(repo, &["rev-parse", "--verify", "--quiet", &revision])
        .run()
        .await
        .ok()
}

struct Git(Command);

fn git(cwd: &Path, args: &[&str]) -> Git {
    let mut command = Command::new("git");
    command
        .args(["-c", "advice.detachedHead=false"])
        .args(args)
        .current_dir(cwd)
        // Never block on a credential prompt, and keep messages in English for the envelope.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    Git(command)
}

impl Git {
    fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.0.arg(arg);
        self
    }

    /// Runs git and returns its trimmed stdout, or its error message.
    async fn run(mut self) -> Result<String, GitError> {
        let output = self
            .0
            .output()
            .await
            .map_err(|e| GitError::Failed(format!("cannot run git: {e}")))?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).trim().to_string());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = stderr
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(|line| line.strip_prefix("fatal: ").unwrap_or(line))
            .collect::<Vec<_>>()
            .join(" ");
        Err(GitError::Failed(if message.is_empty() {
            format!("git exited with {}", output.status)
        } else {
            message
        }))
    }
}
