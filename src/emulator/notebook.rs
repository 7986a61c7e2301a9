//! Running one source-format notebook: a small Python runner (`notebook_runner.py`, embedded)
//! executes the cells with a `dbutils` shim and reports the exit value or the exception.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use serde::Deserialize;
use serde_json::json;
use tokio::process::{Child, Command};

const RUNNER: &str = include_str!("notebook_runner.py");

/// `dbutils.notebook.exit` values are cut to this size, as on Databricks.
const MAX_RESULT_BYTES: usize = 5 * 1024 * 1024;

/// Writes the runner script into the emulator's directory; returns its path.
pub(crate) async fn install_runner(root: &Path) -> io::Result<PathBuf> {
    let path = root.join("notebook_runner.py");
    tokio::fs::write(&path, RUNNER).await?;
    Ok(path)
}

pub(crate) struct NotebookJob<'a> {
    pub python: &'a str,
    pub runner: &'a Path,
    pub notebook: &'a Path,
    /// Prepended to `sys.path`, so notebooks import modules next to them as on Databricks.
    pub sys_path: Vec<PathBuf>,
    pub base_parameters: &'a BTreeMap<String, String>,
    /// Scratch directory for this task run: input, result and captured output.
    pub work_dir: &'a Path,
    /// Where the notebook's `/Volumes/...` paths really are (a folder of the emulator).
    pub volumes: &'a Path,
    /// Where its `/Workspace/...` paths really are (a folder of the emulator), except those
    /// inside a repo: `repo_checkouts` (workspace path, checkout), as the run started.
    pub workspace_files: &'a Path,
    pub repo_checkouts: Vec<(String, PathBuf)>,
}

/// The notebook's paths that are local folders of the emulator: (prefix, folder), longest
/// prefix first so that a repo's checkout wins over the workspace's folder.
fn local_folders(job: &NotebookJob<'_>) -> Vec<(String, PathBuf)> {
    let mut folders = vec![
        ("/Volumes/".to_string(), job.volumes.to_path_buf()),
        ("dbfs:/Volumes/".to_string(), job.volumes.to_path_buf()),
        ("/Workspace/".to_string(), job.workspace_files.to_path_buf()),
    ];
    folders.extend(
        job.repo_checkouts
            .iter()
            .map(|(path, checkout)| (format!("/Workspace{path}/"), checkout.clone())),
    );
    folders.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
    folders
}

/// How a notebook ended. `error` is set exactly when it failed.
#[derive(Clone, Debug, Default)]
pub(crate) struct NotebookOutcome {
    pub result: Option<String>,
    pub truncated: bool,
    pub error: Option<String>,
    pub error_trace: Option<String>,
}

impl NotebookOutcome {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

pub(crate) struct NotebookProcess {
    child: Child,
    result_path: PathBuf,
    stderr_path: PathBuf,
}

pub(crate) async fn start(job: NotebookJob<'_>) -> io::Result<NotebookProcess> {
    for dir in [job.work_dir, job.volumes, job.workspace_files] {
        tokio::fs::create_dir_all(dir).await?;
    }
    let input_path = job.work_dir.join("input.json");
    let result_path = job.work_dir.join("result.json");
    let stderr_path = job.work_dir.join("stderr.txt");
    let input = json!({
        "notebook": job.notebook,
        "base_parameters": job.base_parameters,
        "sys_path": job.sys_path,
        "local_folders": local_folders(&job),
    });
    tokio::fs::write(&input_path, input.to_string()).await?;

    // Captured to files rather than pipes: nobody reads them while the notebook runs, and a
    // full pipe would block a chatty notebook.
    let stdout = std::fs::File::create(job.work_dir.join("stdout.txt"))?;
    let stderr = std::fs::File::create(&stderr_path)?;
    let cwd = job.notebook.parent().unwrap_or(job.work_dir);
    let child = Command::new(job.python)
        .arg(job.runner)
        .arg(&input_path)
        .arg(&result_path)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        // Notebooks are user code: they get no credentials of ours.
        .env_remove("DATABRICKS_TOKEN")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONIOENCODING", "utf-8")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .kill_on_drop(true)
        .spawn()?;
    Ok(NotebookProcess {
        child,
        result_path,
        stderr_path,
    })
}

#[derive(Deserialize)]
struct RunnerResult {
    result: Option<String>,
    error: Option<String>,
    error_trace: Option<String>,
}

impl NotebookProcess {
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Kills the notebook and reaps it, so no process outlives its run.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Reads what the runner reported once the process has exited.
    pub async fn outcome(&self, status: io::Result<ExitStatus>) -> NotebookOutcome {
        let reported = tokio::fs::read(&self.result_path)
            .await
            .ok()
            .and_then(|bytes| serde_json::from_slice::<RunnerResult>(&bytes).ok());
        match reported {
            Some(RunnerResult {
                result,
                error: None,
                ..
            }) => {
                let (result, truncated) = match result {
                    Some(result) => {
                        let (result, truncated) = truncate(result);
                        (Some(result), truncated)
                    }
                    None => (None, false),
                };
                NotebookOutcome {
                    result,
                    truncated,
                    error: None,
                    error_trace: None,
                }
            }
            Some(RunnerResult {
                error, error_trace, ..
            }) => NotebookOutcome {
                error,
                error_trace,
                ..NotebookOutcome::default()
            },
            // The interpreter died before the runner could answer (crash, kill, bad python).
            None => {
                let stderr = tokio::fs::read(&self.stderr_path).await.unwrap_or_default();
                let stderr = String::from_utf8_lossy(&stderr).trim().to_string();
                let how = match status {
                    Ok(status) => format!("exited with {status}"),
                    Err(e) => format!("could not be waited for: {e}"),
                };
                NotebookOutcome {
                    error: Some(format!("The Python process running the notebook {how}")),
                    error_trace: (!stderr.is_empty()).then_some(stderr),
                    ..NotebookOutcome::default()
                }
            }
        }
    }
}

fn truncate(mut result: String) -> (String, bool) {
    if result.len() <= MAX_RESULT_BYTES {
        return (result, false);
    }
    let mut end = MAX_RESULT_BYTES;
    while !result.is_char_boundary(end) {
        end -= 1;
    }
    result.truncate(end);
    (result, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repos_checkout_wins_over_the_workspace_folder() {
        let parameters = BTreeMap::new();
        let job = NotebookJob {
            python: "python3",
            runner: Path::new("/r.py"),
            notebook: Path::new("/n.py"),
            sys_path: Vec::new(),
            base_parameters: &parameters,
            work_dir: Path::new("/work"),
            volumes: Path::new("/emulator/volumes"),
            workspace_files: Path::new("/emulator/workspace-files"),
            repo_checkouts: vec![("/Repos/ci/proj".into(), PathBuf::from("/checkouts/1"))],
        };
        let prefixes: Vec<String> = local_folders(&job).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            prefixes,
            [
                "/Workspace/Repos/ci/proj/",
                "dbfs:/Volumes/",
                "/Workspace/",
                "/Volumes/"
            ]
        );
    }

    #[test]
    fn truncates_on_a_char_boundary() {
        let long = "é".repeat(MAX_RESULT_BYTES);
        let (cut, truncated) = truncate(long);
        assert!(truncated);
        assert!(cut.len() <= MAX_RESULT_BYTES);
        assert_eq!(truncate("ok".into()), ("ok".into(), false));
    }
}
