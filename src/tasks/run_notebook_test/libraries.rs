//! The code under test (`libraries`): wheels, JARs, PyPI packages, requirements files and
//! Maven coordinates, one per line. A wheel or JAR on the agent (the one the pipeline just
//! built, `dist/*.whl`) is uploaded to a Unity Catalog volume or a workspace folder
//! (`libraryUploadPath`) first and removed after the run. On clusters they are the tasks' `libraries`; on serverless compute
//! the run's environment (`environments`, `environment_key`).

use serde_json::{json, Map, Value};

use crate::host::Host;
use crate::pipeline::inputs::input_lines;
use crate::pipeline::InputError;
use crate::tasks::names::input;

use super::requirement;

/// The largest file uploaded from the agent to a volume (the Files API).
const MAX_VOLUME_UPLOAD_BYTES: usize = 256 * 1024 * 1024;
/// The largest file the workspace import API takes.
const MAX_WORKSPACE_UPLOAD_BYTES: usize = 10 * 1024 * 1024;
/// Most files uploaded from the agent in one step.
const MAX_UPLOADS: usize = 50;
/// Most libraries in one step.
const MAX_LIBRARIES: usize = 200;

/// Where Databricks reads a library from: anything else is a file on the agent.
const REMOTE_PREFIXES: [&str; 9] = [
    "/Volumes/",
    "/Workspace/",
    "dbfs:/",
    "s3://",
    "s3a://",
    "abfss://",
    "gs://",
    "wasbs://",
    "adl://",
];

/// The kinds a line may name (`kind: value`), as the Jobs API spells them.
const KINDS: [&str; 5] = ["whl", "jar", "pypi", "requirements", "maven"];

#[derive(Clone, Debug, PartialEq)]
pub enum Library {
    Whl(String),
    Jar(String),
    Pypi(String),
    Requirements(String),
    Maven(String),
    /// A line written as the API's JSON (`{"pypi": {"package": …, "repo": …}}`).
    Api(Map<String, Value>),
}

/// A file on the agent, sent to `target` in a volume before the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Upload {
    pub local: String,
    pub target: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Libraries {
    pub list: Vec<Library>,
    pub uploads: Vec<Upload>,
    /// The folder the uploads go to (removed with them after the run).
    pub upload_folder: Option<UploadFolder>,
}

/// This step's own folder for files from the agent, as Databricks names it in a library.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadFolder {
    /// `/Volumes/<catalog>/<schema>/<volume>/…`, written with the Files API.
    Volume(String),
    /// `/Workspace/…`, written with the workspace import API.
    Workspace(String),
}

impl UploadFolder {
    pub fn path(&self) -> &str {
        match self {
            UploadFolder::Volume(path) | UploadFolder::Workspace(path) => path,
        }
    }

    pub fn max_bytes(&self) -> usize {
        match self {
            UploadFolder::Volume(_) => MAX_VOLUME_UPLOAD_BYTES,
            UploadFolder::Workspace(_) => MAX_WORKSPACE_UPLOAD_BYTES,
        }
    }

    fn join(&self, name: &str) -> UploadFolder {
        let path = format!("{}/{name}", self.path());
        match self {
            UploadFolder::Volume(_) => UploadFolder::Volume(path),
            UploadFolder::Workspace(_) => UploadFolder::Workspace(path),
        }
    }
}

impl Library {
    /// As a task's `libraries` entry.
    pub fn to_api(&self) -> Value {
        match self {
            Library::Whl(path) => json!({ "whl": path }),
            Library::Jar(path) => json!({ "jar": path }),
            Library::Pypi(spec) => json!({ "pypi": { "package": spec } }),
            Library::Requirements(path) => json!({ "requirements": path }),
            Library::Maven(coordinates) => json!({ "maven": { "coordinates": coordinates } }),
            Library::Api(map) => Value::Object(map.clone()),
        }
    }
}

/// Reads `libraries` (and `libraryUploadPath` when a line names a file on the agent, which
/// must exist then). `unique` names this step's folder under the upload path.
pub fn parse(
    text: &str,
    upload_path: Option<&str>,
    unique: &str,
    host: &dyn Host,
) -> Result<Libraries, InputError> {
    const INPUT: &str = input::LIBRARIES;
    // In the order written: a library, or a file on the agent (line number, path).
    let mut items: Vec<Result<Library, (usize, String)>> = Vec::new();
    for (number, line) in input_lines(INPUT, text)? {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: String| InputError::new(INPUT, format!("line {number} (`{line}`) {why}"));
        let library = parse_line(line).map_err(bad)?;
        let local = match &library {
            Library::Whl(path) | Library::Jar(path) if !is_remote(path) => Some(path.clone()),
            Library::Requirements(path) if !is_remote(path) => {
                return Err(bad(
                    "names a file on the agent: a requirements file is read by Databricks, so it must be in a volume or the workspace (/Volumes/..., /Workspace/...)".into(),
                ))
            }
            _ => None,
        };
        match local {
            Some(path) => {
                for file in local_matches(host, &path).map_err(bad)? {
                    items.push(Err((number, file)));
                }
            }
            None => items.push(Ok(library)),
        }
    }
    check_total(items.len())?;
    let local_files = items.iter().filter(|item| item.is_err()).count();
    if local_files == 0 {
        return Ok(Libraries {
            list: items.into_iter().flatten().collect(),
            ..Libraries::default()
        });
    }
    let place = upload_folder(upload_path)?.join(unique);
    let folder = place.path().to_string();
    if local_files > MAX_UPLOADS {
        return Err(InputError::new(
            INPUT,
            format!(
                "names {local_files} files on the agent; at most {MAX_UPLOADS} are uploaded in one step"
            ),
        ));
    }
    let mut libraries = Libraries::default();
    for item in items {
        let (number, local) = match item {
            Ok(library) => {
                libraries.list.push(library);
                continue;
            }
            Err(file) => file,
        };
        let name = file_name(&local).to_string();
        check_size(host, number, &local, &place)?;
        let target = format!("{folder}/{name}");
        if libraries.uploads.iter().any(|u| u.target == target) {
            return Err(InputError::new(
                INPUT,
                format!("line {number}: two files on the agent are named {name}; they would overwrite each other in {folder}"),
            ));
        }
        let library = if name.ends_with(".jar") {
            Library::Jar(target.clone())
        } else {
            Library::Whl(target.clone())
        };
        libraries.list.push(library);
        libraries.uploads.push(Upload { local, target });
    }
    libraries.upload_folder = Some(place);
    Ok(libraries)
}

/// A file on the agent fits where it goes (read again, bounded, when it is sent).
fn check_size(
    host: &dyn Host,
    number: usize,
    local: &str,
    place: &UploadFolder,
) -> Result<(), InputError> {
    let size = host.file_size(local).map_err(|e| {
        InputError::new(
            input::LIBRARIES,
            format!("line {number}: {local} cannot be read: {e}"),
        )
    })?;
    let max = place.max_bytes() as u64;
    if size <= max {
        return Ok(());
    }
    let error = InputError::new(
        input::LIBRARIES,
        format!(
            "line {number}: {local} is {size} bytes; at most {max} are uploaded to {}",
            place.path()
        ),
    );
    Err(match place {
        UploadFolder::Volume(_) => error.with_hint(
            "upload a larger file to the volume in an earlier step and list its /Volumes/... path",
        ),
        UploadFolder::Workspace(_) => error.with_hint(
            "the workspace import API takes files up to 10 MB: set libraryUploadPath to a folder in a Unity Catalog volume",
        ),
    })
}

fn check_total(count: usize) -> Result<(), InputError> {
    if count > MAX_LIBRARIES {
        return Err(InputError::new(
            input::LIBRARIES,
            format!("lists {count} libraries; at most {MAX_LIBRARIES} are installed for one run"),
        ));
    }
    Ok(())
}

fn is_remote(path: &str) -> bool {
    REMOTE_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// One line: `kind: value`, a JSON object in the API's form, or a value whose kind shows.
fn parse_line(line: &str) -> Result<Library, String> {
    if line.starts_with('{') {
        return parse_api_form(line);
    }
    let (kind, value) = match line.split_once(':') {
        Some((kind, value))
            if KINDS.contains(&kind.trim().to_ascii_lowercase().as_str())
                && !value.starts_with("//") =>
        {
            (Some(kind.trim().to_ascii_lowercase()), value.trim())
        }
        _ => (None, line),
    };
    if value.is_empty() {
        return Err("names no library after its kind".into());
    }
    let named = kind.is_some();
    let kind = kind.unwrap_or_else(|| infer_kind(value).to_string());
    match kind.as_str() {
        "whl" if value.ends_with(".whl") => Ok(Library::Whl(value.to_string())),
        "whl" => Err("is not a wheel: its file name must end in .whl".into()),
        "jar" if value.ends_with(".jar") => Ok(Library::Jar(value.to_string())),
        "jar" => Err("is not a JAR: its file name must end in .jar".into()),
        "requirements" => Ok(Library::Requirements(value.to_string())),
        "maven" if is_maven_coordinates(value) => Ok(Library::Maven(value.to_string())),
        "maven" => Err("is not Maven coordinates (group:artifact:version)".into()),
        // A PyPI package, named so or not: it must be a requirement as pip reads it.
        _ => match requirement::check(value) {
            Ok(()) => Ok(Library::Pypi(value.to_string())),
            Err(why) if named => Err(why),
            Err(why) => Err(format!(
                "{why}; a line is a package (pypi: pandas==2.2.2), a wheel or JAR path, requirements: <path>, or maven: group:artifact:version"
            )),
        },
    }
}

fn infer_kind(value: &str) -> &'static str {
    let name = file_name(value);
    if name.ends_with(".whl") {
        "whl"
    } else if name.ends_with(".jar") {
        "jar"
    } else if name.ends_with(".txt") && is_remote(value) {
        "requirements"
    } else if is_maven_coordinates(value) {
        "maven"
    } else {
        "pypi"
    }
}

fn parse_api_form(line: &str) -> Result<Library, String> {
    let map: Map<String, Value> =
        serde_json::from_str(line).map_err(|e| format!("is not a JSON object: {e}"))?;
    let known = ["whl", "jar", "egg", "pypi", "requirements", "maven", "cran"];
    match map.keys().collect::<Vec<_>>().as_slice() {
        [kind] if known.contains(&kind.as_str()) => Ok(Library::Api(map)),
        _ => Err(format!(
            "must have exactly one of {} (a library as the Jobs API writes it)",
            known.join(", ")
        )),
    }
}

fn is_maven_coordinates(value: &str) -> bool {
    let parts: Vec<&str> = value.split(':').collect();
    (3..=4).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        })
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// The files on the agent that `path` names: itself, or what the glob in its file name
/// matches in its folder (sorted). None is an error.
fn local_matches(host: &dyn Host, path: &str) -> Result<Vec<String>, String> {
    let name = file_name(path);
    let folder = &path[..path.len() - name.len()];
    if folder.contains(['*', '?', '[', '{']) {
        return Err(
            "has a wildcard in its folder: only the file name may have one (dist/*.whl)".into(),
        );
    }
    let listed_folder = if folder.is_empty() { "." } else { folder };
    let entries = host.list_dir(listed_folder).map_err(|e| {
        format!("names a file on the agent, but its folder {listed_folder} cannot be read ({e}); with a path in Databricks, write /Volumes/... or /Workspace/...")
    })?;
    let mut matches: Vec<String> = entries
        .iter()
        .filter(|e| e.is_file && glob_match::glob_match(name, &e.name))
        .map(|e| format!("{folder}{}", e.name))
        .collect();
    matches.sort();
    if matches.is_empty() {
        return Err(format!(
            "names a file on the agent, but nothing in {listed_folder} is named {name}: did the build step run before this one?"
        ));
    }
    Ok(matches)
}

/// `libraryUploadPath`: a folder in a Unity Catalog volume, or in the workspace.
fn upload_folder(path: Option<&str>) -> Result<UploadFolder, InputError> {
    const INPUT: &str = input::LIBRARY_UPLOAD_PATH;
    let Some(path) = path else {
        return Err(InputError::new(
            INPUT,
            "is required: `libraries` names a file on the agent, which is uploaded there first",
        )
        .with_hint("set it to a folder in a Unity Catalog volume, e.g. /Volumes/main/ci/artifacts, or in the workspace, e.g. /Workspace/Shared/ci-artifacts"));
    };
    let folder = path.trim_end_matches('/');
    let segments: Vec<&str> = folder.split('/').collect();
    let place = if folder.starts_with("/Volumes/") && segments.len() >= 5 {
        UploadFolder::Volume(folder.to_string())
    } else if folder.starts_with("/Workspace/Repos/") {
        return Err(InputError::new(
            INPUT,
            format!("`{path}` is inside a Git folder, whose files come from Git"),
        )
        .with_hint("use a folder outside Repos, e.g. /Workspace/Shared/ci-artifacts"));
    } else if folder.starts_with("/Workspace/") && segments.len() >= 4 {
        UploadFolder::Workspace(folder.to_string())
    } else {
        return Err(InputError::new(
            INPUT,
            format!("`{path}` is neither a folder in a Unity Catalog volume nor a workspace folder"),
        )
        .with_hint("write /Volumes/<catalog>/<schema>/<volume>[/folder] (the Files API), or /Workspace/<folder>/<folder>[/…] (the workspace import API, files up to 10 MB)"));
    };
    if segments[1..]
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == ".." || s.chars().any(|c| c.is_control()))
    {
        return Err(InputError::new(
            INPUT,
            format!("`{path}` has an empty, `.` or `..` segment"),
        ));
    }
    Ok(place)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_their_kind_or_show_it() {
        let cases = [
            ("pypi: pandas==2.2.2", Library::Pypi("pandas==2.2.2".into())),
            (
                "great-expectations[spark]>=1.0",
                Library::Pypi("great-expectations[spark]>=1.0".into()),
            ),
            (
                "/Volumes/m/c/v/lib-1.0-py3-none-any.whl",
                Library::Whl("/Volumes/m/c/v/lib-1.0-py3-none-any.whl".into()),
            ),
            (
                "jar: dbfs:/FileStore/x.jar",
                Library::Jar("dbfs:/FileStore/x.jar".into()),
            ),
            (
                "/Workspace/Shared/requirements.txt",
                Library::Requirements("/Workspace/Shared/requirements.txt".into()),
            ),
            (
                "requirements: /Volumes/m/c/v/dev.txt",
                Library::Requirements("/Volumes/m/c/v/dev.txt".into()),
            ),
            (
                "com.example:lib:1.0",
                Library::Maven("com.example:lib:1.0".into()),
            ),
            (
                "Maven: org.x:y:2.0:jdk11",
                Library::Maven("org.x:y:2.0:jdk11".into()),
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_line(line).as_ref(), Ok(&expected), "{line}");
        }
        let api =
            parse_line(r#"{"pypi": {"package": "x", "repo": "https://pypi.example"}}"#).unwrap();
        assert_eq!(api.to_api()["pypi"]["repo"], "https://pypi.example");
        for (line, why) in [
            ("whl: /Volumes/m/c/v/x.zip", "must end in .whl"),
            ("maven: a:b", "not Maven coordinates"),
            (r#"{"whl": "a", "jar": "b"}"#, "exactly one of"),
            ("{not json", "not a JSON object"),
            ("pypi: --index-url https://x", "is not a PyPI requirement (PEP 508)"),
            (
                "npm: left-pad@^1.3.0",
                "`:` at character 4 where a version, `;` or the end was expected; a line is a package",
            ),
            ("pandas=2.2", "`=` at character 7"),
            ("pypi:", "names no library"),
        ] {
            let error = parse_line(line).unwrap_err();
            assert!(error.contains(why), "{line}: {error}");
        }
    }

    #[test]
    fn the_upload_folder_is_in_a_volume_or_the_workspace() {
        assert_eq!(
            upload_folder(Some("/Volumes/main/ci/art/")).unwrap(),
            UploadFolder::Volume("/Volumes/main/ci/art".into())
        );
        assert_eq!(
            upload_folder(Some("/Workspace/Shared/libs")).unwrap(),
            UploadFolder::Workspace("/Workspace/Shared/libs".into())
        );
        for path in [
            "/Volumes/main/ci",
            "/Workspace/Shared",
            "/Workspace/Repos/ci/p/libs",
            "/Shared/libs",
            "dbfs:/tmp",
            "/Volumes/main/../x/y",
            "/Workspace/Shared/../x",
        ] {
            assert!(upload_folder(Some(path)).is_err(), "{path}");
        }
        let missing = upload_folder(None).unwrap_err();
        assert!(
            missing.headline().contains("libraryUploadPath"),
            "{}",
            missing.headline()
        );
    }
}
