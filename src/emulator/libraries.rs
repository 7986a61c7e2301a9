//! Libraries of a run: a task's `libraries` (clusters) and the run's `environments`
//! (serverless), validated as Databricks does. Installing is emulated for what can be done
//! offline: a pure-Python wheel (`*-none-any.whl`) in a volume or a workspace folder is put on
//! the notebook's import path, so a test imports the package it tests. Everything else (PyPI
//! packages, requirements files, JARs, Maven, platform wheels, other places) is recorded, with
//! why it was not installed, and listed by `GET /emulator/runs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult};

/// One library as a task was given it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Library {
    /// A wheel, by path (`/Volumes/...`, `/Workspace/...`, `dbfs:/...`, cloud storage).
    Wheel(String),
    /// Anything else, described (`pypi: pandas==2.2`, `jar: ...`, `-r requirements.txt`).
    Other(String),
}

/// What happened to a library when a task run started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Installed {
    pub library: String,
    /// `None`: on the import path; otherwise why not.
    pub not_installed: Option<String>,
}

const LIBRARY_KINDS: [&str; 7] = ["whl", "jar", "egg", "pypi", "requirements", "maven", "cran"];

/// A task's `libraries`.
pub(crate) fn parse_libraries(key: &str, value: Option<Vec<Value>>) -> ApiResult<Vec<Library>> {
    let mut libraries = Vec::new();
    for entry in value.unwrap_or_default() {
        let invalid = || {
            ApiError::invalid(format!(
                "Task {key}: each library must set exactly one of {}.",
                LIBRARY_KINDS.join(", ")
            ))
        };
        let object = entry.as_object().ok_or_else(invalid)?;
        let [(kind, spec)] = object.iter().collect::<Vec<_>>()[..] else {
            return Err(invalid());
        };
        let text = |field: Option<&Value>, what: &str| {
            field
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_string)
                .ok_or_else(|| {
                    ApiError::invalid(format!("Task {key}: library {kind} needs {what}."))
                })
        };
        let library = match kind.as_str() {
            "whl" => Library::Wheel(text(Some(spec), "a path")?),
            "jar" | "egg" | "requirements" => {
                Library::Other(format!("{kind}: {}", text(Some(spec), "a path")?))
            }
            "pypi" => Library::Other(format!("pypi: {}", text(spec.get("package"), "a package")?)),
            "maven" => Library::Other(format!(
                "maven: {}",
                text(spec.get("coordinates"), "coordinates")?
            )),
            "cran" => Library::Other(format!("cran: {}", text(spec.get("package"), "a package")?)),
            _ => return Err(invalid()),
        };
        libraries.push(library);
    }
    Ok(libraries)
}

/// The run's `environments`, by key: each one's dependencies as libraries.
pub(crate) fn parse_environments(
    value: Option<Vec<Value>>,
) -> ApiResult<BTreeMap<String, Vec<Library>>> {
    let mut environments = BTreeMap::new();
    for entry in value.unwrap_or_default() {
        let key = entry
            .get("environment_key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ApiError::invalid("Each environment must have an environment_key."))?;
        let spec = entry
            .get("spec")
            .and_then(Value::as_object)
            .ok_or_else(|| ApiError::invalid(format!("Environment {key} must have a spec.")))?;
        let version = ["environment_version", "client", "base_environment"]
            .iter()
            .any(|field| {
                spec.get(*field)
                    .and_then(Value::as_str)
                    .is_some_and(|v| !v.is_empty())
            });
        if !version {
            return Err(ApiError::invalid(format!(
                "Environment {key}: either environment_version or base_environment must be provided."
            )));
        }
        let list = |field: &str| -> ApiResult<Vec<String>> {
            match spec.get(field) {
                None => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| {
                        item.as_str().map(str::to_string).ok_or_else(|| {
                            ApiError::invalid(format!(
                                "Environment {key}: {field} must be a list of strings."
                            ))
                        })
                    })
                    .collect(),
                Some(_) => Err(ApiError::invalid(format!(
                    "Environment {key}: {field} must be a list of strings."
                ))),
            }
        };
        let mut libraries: Vec<Library> = list("dependencies")?
            .into_iter()
            .map(|dependency| {
                let path = dependency.trim();
                if path.ends_with(".whl") && !path.contains(char::is_whitespace) {
                    Library::Wheel(path.to_string())
                } else {
                    Library::Other(format!("pip: {path}"))
                }
            })
            .collect();
        libraries.extend(
            list("java_dependencies")?
                .into_iter()
                .map(|jar| Library::Other(format!("java: {jar}"))),
        );
        if environments.insert(key.to_string(), libraries).is_some() {
            return Err(ApiError::invalid(format!(
                "Environment key {key} is used by more than one environment."
            )));
        }
    }
    Ok(environments)
}

/// `run_as`: exactly one of `user_name`, `service_principal_name`, `group_name`.
pub(crate) fn parse_run_as(value: Option<&Value>) -> ApiResult<Option<String>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let fields: Vec<(&String, &Value)> = value
        .as_object()
        .map(|o| o.iter().collect())
        .unwrap_or_default();
    match fields[..] {
        [(field, Value::String(who))]
            if ["user_name", "service_principal_name", "group_name"].contains(&field.as_str())
                && !who.is_empty() =>
        {
            Ok(Some(format!("{field}: {who}")))
        }
        _ => Err(ApiError::invalid(
            "run_as must set exactly one of user_name, service_principal_name and group_name.",
        )),
    }
}

/// Installs what can be installed for a task run: returns the import path entries, and every
/// library with its fate. A wheel in a volume that does not exist fails the task, as on
/// Databricks; `Err` is that message.
pub(crate) fn install(
    libraries: &[Library],
    volumes_root: &Path,
    workspace_root: &Path,
) -> Result<(Vec<PathBuf>, Vec<Installed>), String> {
    let mut import_path = Vec::new();
    let mut report = Vec::new();
    for library in libraries {
        let (described, not_installed) = match library {
            Library::Other(text) => (
                text.clone(),
                Some("the emulator installs only pure-Python wheels".to_string()),
            ),
            Library::Wheel(path) => {
                let described = format!("whl: {path}");
                match local_file(path, volumes_root, workspace_root) {
                    None => (
                        described,
                        Some("only wheels in /Volumes/... and /Workspace/... (outside Git folders) are installed by the emulator".into()),
                    ),
                    Some(file) if !file.is_file() => {
                        return Err(format!(
                            "Library installation failed for library due to user error. Error message: file {path} does not exist"
                        ))
                    }
                    Some(_) if !is_pure_python(path) => (
                        described,
                        Some("a platform-specific wheel: only pure-Python wheels (*-none-any.whl) are installed".into()),
                    ),
                    Some(file) => {
                        // A pure-Python wheel is a zip Python can import from as it is.
                        import_path.push(file);
                        (described, None)
                    }
                }
            }
        };
        report.push(Installed {
            library: described,
            not_installed,
        });
    }
    Ok((import_path, report))
}

/// Where a library's path is in the emulator: a volume's file, or a workspace file outside
/// Git folders (those are in their checkouts, which libraries are not read from).
fn local_file(path: &str, volumes_root: &Path, workspace_root: &Path) -> Option<PathBuf> {
    let (root, inside) = match (
        path.strip_prefix("/Volumes/")
            .or_else(|| path.strip_prefix("dbfs:/Volumes/")),
        path.strip_prefix("/Workspace/"),
    ) {
        (Some(inside), _) => (volumes_root, inside),
        (None, Some(inside)) if !inside.starts_with("Repos/") => (workspace_root, inside),
        _ => return None,
    };
    if inside
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return None;
    }
    Some(root.join(inside))
}

fn is_pure_python(path: &str) -> bool {
    path.ends_with("-none-any.whl")
}

pub(crate) fn view(installed: &[Installed]) -> Value {
    Value::Array(
        installed
            .iter()
            .map(|i| {
                let mut entry = Map::new();
                entry.insert("library".into(), Value::String(i.library.clone()));
                entry.insert("installed".into(), Value::Bool(i.not_installed.is_none()));
                if let Some(why) = &i.not_installed {
                    entry.insert("why_not".into(), Value::String(why.clone()));
                }
                Value::Object(entry)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn libraries_and_environments_are_validated() {
        let libraries = parse_libraries(
            "t",
            Some(vec![
                json!({ "whl": "/Volumes/a/b/c/x-1.0-py3-none-any.whl" }),
                json!({ "pypi": { "package": "pandas==2.2" } }),
                json!({ "maven": { "coordinates": "a:b:1" } }),
            ]),
        )
        .unwrap();
        assert_eq!(libraries[1], Library::Other("pypi: pandas==2.2".into()));
        for bad in [
            json!({}),
            json!({ "whl": "" }),
            json!({ "pypi": {} }),
            json!({ "whl": "a", "jar": "b" }),
            json!("x"),
        ] {
            assert!(
                parse_libraries("t", Some(vec![bad.clone()])).is_err(),
                "{bad}"
            );
        }
        let environments = parse_environments(Some(vec![json!({
            "environment_key": "tests",
            "spec": { "environment_version": "4", "dependencies": ["/Volumes/a/b/c/x-1.0-py3-none-any.whl", "-r /Volumes/a/b/c/r.txt"] }
        })]))
        .unwrap();
        assert_eq!(environments["tests"].len(), 2);
        assert!(
            parse_environments(Some(vec![json!({ "environment_key": "e", "spec": {} })])).is_err()
        );
        assert_eq!(
            parse_run_as(Some(&json!({ "user_name": "a@b.c" }))).unwrap(),
            Some("user_name: a@b.c".into())
        );
        assert!(parse_run_as(Some(&json!({ "user_name": "a", "group_name": "g" }))).is_err());
    }

    #[test]
    fn only_pure_python_wheels_in_volumes_and_workspace_folders_are_installed() {
        let root = tempfile::tempdir().unwrap();
        let workspace = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(workspace.path().join("Shared")).unwrap();
        std::fs::write(
            workspace.path().join("Shared/z-1.0-py3-none-any.whl"),
            b"zip",
        )
        .unwrap();
        std::fs::create_dir_all(root.path().join("a/b/c")).unwrap();
        std::fs::write(root.path().join("a/b/c/x-1.0-py3-none-any.whl"), b"zip").unwrap();
        std::fs::write(
            root.path().join("a/b/c/y-1.0-cp311-cp311-linux_x86_64.whl"),
            b"zip",
        )
        .unwrap();
        let (path, report) = install(
            &[
                Library::Wheel("/Volumes/a/b/c/x-1.0-py3-none-any.whl".into()),
                Library::Wheel("/Volumes/a/b/c/y-1.0-cp311-cp311-linux_x86_64.whl".into()),
                Library::Wheel("/Workspace/Shared/z-1.0-py3-none-any.whl".into()),
                Library::Wheel("/Workspace/Repos/ci/p/z-1.0-py3-none-any.whl".into()),
                Library::Wheel("s3://bucket/z-1.0-py3-none-any.whl".into()),
                Library::Other("pypi: pandas".into()),
            ],
            root.path(),
            workspace.path(),
        )
        .unwrap();
        assert_eq!(
            path,
            [
                root.path().join("a/b/c/x-1.0-py3-none-any.whl"),
                workspace.path().join("Shared/z-1.0-py3-none-any.whl")
            ]
        );
        let installed: Vec<bool> = report.iter().map(|r| r.not_installed.is_none()).collect();
        assert_eq!(installed, [true, false, true, false, false, false]);
        let missing = install(
            &[Library::Wheel(
                "/Volumes/a/b/c/gone-1.0-py3-none-any.whl".into(),
            )],
            root.path(),
            workspace.path(),
        );
        assert!(missing.unwrap_err().contains("does not exist"));
    }
}
