//! `notebookPaths` lines that are globs (`tests/**/test_*`, `!tests/slow/**` to leave some
//! out), resolved into notebooks: from the agent's checkout of the commit being built with
//! `source: git` (what runs is exactly what matched), from the workspace list API under the
//! Repo with `source: workspace`. Listing is bounded in entries and depth, matching is pure.

use std::collections::BTreeSet;

use crate::databricks::models::ObjectType;
use crate::databricks::{ApiError, Client};
use crate::host::Host;
use crate::pipeline::InputError;
use crate::tasks::names::input;

/// Most folder entries looked at while resolving globs.
pub const MAX_LISTED: usize = 20_000;
/// Deepest folder looked into, below a glob's fixed part.
const MAX_DEPTH: usize = 32;

/// A glob line of `notebookPaths`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    /// Its line number in the input, and the line as written, for messages.
    pub line: usize,
    pub written: String,
    /// Absolute (workspace) or relative to the repository root (git), like notebook paths.
    pub pattern: String,
    /// `!pattern`: notebooks it matches are left out.
    pub exclude: bool,
}

/// One `notebookPaths` line, in order: a notebook, or a glob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Path(String),
    Glob(Glob),
}

/// Whether a line is a glob rather than one notebook's path.
pub fn is_glob(line: &str) -> bool {
    line.starts_with('!') || line.contains(['*', '?', '[', '{'])
}

impl Glob {
    /// The folder under which it can match: its segments before the first with a wildcard.
    pub fn base(&self) -> String {
        let segments: Vec<&str> = self.pattern.split('/').collect();
        let fixed = segments.iter().take_while(|s| !is_glob(s)).count();
        // A pattern without a wildcard names one notebook: list its folder.
        let fixed = if fixed == segments.len() {
            fixed - 1
        } else {
            fixed
        };
        let base = segments[..fixed].join("/");
        if self.pattern.starts_with('/') && base.is_empty() {
            "/".to_string()
        } else {
            base
        }
    }

    fn matches(&self, path: &str) -> bool {
        glob_match::glob_match(&self.pattern, path)
    }
}

/// The notebooks `entries` select among `candidates` (every notebook under the globs' bases),
/// in the order the lines were written, each once; glob matches sorted. An including glob that
/// selects nothing is an error naming its line.
pub fn select(entries: &[Entry], candidates: &BTreeSet<String>) -> Result<Vec<String>, InputError> {
    let excludes: Vec<&Glob> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Glob(g) if g.exclude => Some(g),
            _ => None,
        })
        .collect();
    let excluded = |path: &str| excludes.iter().any(|g| g.matches(path));
    let mut selected: Vec<String> = Vec::new();
    let push = |path: &str, selected: &mut Vec<String>| {
        if !selected.iter().any(|p| p == path) {
            selected.push(path.to_string());
        }
    };
    for entry in entries {
        match entry {
            Entry::Path(path) => push(path, &mut selected),
            Entry::Glob(glob) if glob.exclude => {}
            Entry::Glob(glob) => {
                let matched: Vec<&String> = candidates.iter().filter(|c| glob.matches(c)).collect();
                let kept: Vec<&&String> = matched.iter().filter(|c| !excluded(c)).collect();
                if kept.is_empty() {
                    let why = if matched.is_empty() {
                        format!("matches no notebook under {}", shown_base(glob))
                    } else {
                        format!(
                            "matches {} notebooks, all left out by the `!` lines",
                            matched.len()
                        )
                    };
                    return Err(InputError::new(
                        input::NOTEBOOK_PATHS,
                        format!("line {} (`{}`) {why}", glob.line, glob.written),
                    )
                    .with_hint("check the pattern: `*` stays within a folder, `**` crosses folders (tests/**/test_*); notebooks are matched without their file extension"));
                }
                for path in kept {
                    push(path, &mut selected);
                }
            }
        }
    }
    Ok(selected)
}

fn shown_base(glob: &Glob) -> String {
    match glob.base() {
        base if base.is_empty() => "the repository root".to_string(),
        base => base,
    }
}

/// The globs among `entries`.
pub fn globs(entries: &[Entry]) -> impl Iterator<Item = &Glob> {
    entries.iter().filter_map(|e| match e {
        Entry::Glob(g) => Some(g),
        Entry::Path(_) => None,
    })
}

/// What starts a Databricks notebook in source format, by file extension.
const NOTEBOOK_HEADERS: [(&str, &str); 4] = [
    (".py", "# Databricks notebook source"),
    (".r", "# Databricks notebook source"),
    (".sql", "-- Databricks notebook source"),
    (".scala", "// Databricks notebook source"),
];

/// Notebooks under the globs' bases in the agent's checkout at `root`, relative to it and
/// without their extension (as `source: git` addresses them).
pub fn list_checkout(
    host: &dyn Host,
    root: &str,
    entries: &[Entry],
) -> Result<BTreeSet<String>, InputError> {
    list_checkout_within(host, root, entries, MAX_LISTED)
}

fn list_checkout_within(
    host: &dyn Host,
    root: &str,
    entries: &[Entry],
    max_listed: usize,
) -> Result<BTreeSet<String>, InputError> {
    let mut found = BTreeSet::new();
    let mut listed = 0usize;
    let including: Vec<&Glob> = globs(entries).filter(|g| !g.exclude).collect();
    // A file is read (for its notebook header) only when its name could be selected.
    let may_match = |relative: &str| {
        let lower = relative.to_ascii_lowercase();
        NOTEBOOK_HEADERS
            .iter()
            .map(|(ext, _)| *ext)
            .chain([".ipynb"])
            .filter(|ext| lower.ends_with(ext))
            .map(|ext| &relative[..relative.len() - ext.len()])
            .any(|stem| including.iter().any(|g| g.matches(stem)))
    };
    let bases: BTreeSet<String> = globs(entries).map(|g| g.base()).collect();
    for base in bases {
        // The base must be a folder of the checkout itself: a symbolic link (out of it or
        // not) is not followed, at the base as inside the tree.
        if !is_real_folder(host, root, &base) {
            continue;
        }
        let mut pending = vec![(base, 0usize)];
        while let Some((folder, depth)) = pending.pop() {
            let dir = if folder.is_empty() {
                root.to_string()
            } else {
                format!("{root}/{folder}")
            };
            let Ok(children) = host.list_dir(&dir) else {
                continue; // a base that does not exist matches nothing
            };
            for child in children {
                listed += 1;
                if listed > max_listed {
                    return Err(too_many(root, max_listed));
                }
                let relative = if folder.is_empty() {
                    child.name.clone()
                } else {
                    format!("{folder}/{}", child.name)
                };
                if child.is_dir && !child.name.starts_with('.') && depth < MAX_DEPTH {
                    pending.push((relative, depth + 1));
                } else if child.is_file && may_match(&relative) {
                    if let Some(path) =
                        checkout_notebook(host, &format!("{root}/{relative}"), &relative)
                    {
                        found.insert(path);
                    }
                }
            }
        }
    }
    Ok(found)
}

/// Whether `relative` (under `root`) is a folder reached through folders only: each segment
/// is listed by its parent as a folder, which a symbolic link never is.
fn is_real_folder(host: &dyn Host, root: &str, relative: &str) -> bool {
    let mut parent = root.to_string();
    for segment in relative.split('/').filter(|s| !s.is_empty()) {
        let Ok(children) = host.list_dir(&parent) else {
            return false;
        };
        if !children.iter().any(|c| c.name == segment && c.is_dir) {
            return false;
        }
        parent = format!("{parent}/{segment}");
    }
    true
}

fn too_many(under: &str, max_listed: usize) -> InputError {
    InputError::new(
        input::NOTEBOOK_PATHS,
        format!("its globs look at more than {max_listed} files and folders under {under}"),
    )
    .with_hint("start each glob with the folder that holds the tests (tests/**/test_*) rather than with **")
}

/// `relative` without its extension, if the file is a notebook in source format (or .ipynb).
fn checkout_notebook(host: &dyn Host, file: &str, relative: &str) -> Option<String> {
    let lower = relative.to_ascii_lowercase();
    if let Some(stem) = lower.strip_suffix(".ipynb") {
        return Some(relative[..stem.len()].to_string());
    }
    let (extension, header) = NOTEBOOK_HEADERS
        .iter()
        .find(|(ext, _)| lower.ends_with(ext))?;
    // The header is the first line: a notebook larger than the bound is not read.
    let text = host
        .read_file(file, crate::host::MAX_INPUT_FILE_BYTES)
        .ok()?;
    let first = text.trim_start_matches('\u{feff}').lines().next()?.trim();
    (first == *header).then(|| relative[..relative.len() - extension.len()].to_string())
}

/// Notebooks under the globs' bases in the workspace (the Repo's folders), by the workspace
/// list API, breadth first and bounded.
pub async fn list_workspace(
    client: &Client,
    entries: &[Entry],
) -> Result<BTreeSet<String>, DiscoveryError> {
    let mut found = BTreeSet::new();
    let mut listed = 0usize;
    let bases: BTreeSet<String> = globs(entries).map(|g| g.base()).collect();
    for base in bases {
        let mut pending = std::collections::VecDeque::from([(base, 0usize)]);
        while let Some((folder, depth)) = pending.pop_front() {
            let objects = match client.list_objects(&folder).await {
                Ok(objects) => objects,
                // A base that does not exist matches nothing.
                Err(e) if e.status() == Some(404) => continue,
                Err(e) => return Err(DiscoveryError::Api(e)),
            };
            for object in objects {
                listed += 1;
                if listed > MAX_LISTED {
                    return Err(DiscoveryError::Input(too_many(&folder, MAX_LISTED)));
                }
                let Some(path) = object.path else { continue };
                let path = spelled_like(&folder, path);
                // A listed path is what a notebook would be submitted as: it must be a plain
                // child of the folder listed, as a typed one must be a plain path.
                if let Some(problem) = not_a_child(&folder, &path) {
                    return Err(DiscoveryError::Api(ApiError::Decode {
                        request: crate::databricks::error::RequestLabel {
                            method: "GET",
                            path: "/api/2.0/workspace/list".into(),
                        },
                        message: format!(
                            "HTTP 200, but it lists `{}` in {folder}, which {problem}",
                            crate::text::shorten(&path.escape_debug().to_string(), 300)
                        ),
                    }));
                }
                match object.object_type {
                    Some(ObjectType::Notebook) => {
                        found.insert(path);
                    }
                    Some(ObjectType::Directory | ObjectType::Repo) if depth < MAX_DEPTH => {
                        pending.push_back((path, depth + 1));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(found)
}

/// Why `path` is not a plain child of the folder `listed_in`, if it is not: elsewhere, with
/// an empty, `.` or `..` segment, or with control characters (a CR/LF would split a line).
fn not_a_child(listed_in: &str, path: &str) -> Option<&'static str> {
    let parent = listed_in.trim_end_matches('/');
    let Some(name) = path
        .strip_prefix(parent)
        .and_then(|rest| rest.strip_prefix('/'))
    else {
        return Some("is not inside that folder");
    };
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Some("is not a name in that folder (an empty, `.`, `..` or nested segment)");
    }
    if name.chars().any(char::is_control) {
        return Some("has control characters in its name");
    }
    None
}

/// `path` as `listed_in` spells it: the list API answers `/Users/...` for a folder asked for as
/// `/Workspace/Users/...` (the two name the same object), and the globs were written with the
/// user's spelling.
fn spelled_like(listed_in: &str, path: String) -> String {
    let with_prefix = |p: &str| p == "/Workspace" || p.starts_with("/Workspace/");
    if with_prefix(listed_in) && !with_prefix(&path) {
        format!("/Workspace{path}")
    } else {
        path
    }
}

/// Why workspace globs could not be resolved.
#[derive(Debug)]
pub enum DiscoveryError {
    Input(InputError),
    Api(ApiError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(line: usize, pattern: &str) -> Entry {
        let (exclude, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        Entry::Glob(Glob {
            line,
            written: pattern.to_string(),
            pattern: pattern.to_string(),
            exclude,
        })
    }

    fn candidates(paths: &[&str]) -> BTreeSet<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn listed_paths_must_be_plain_children_of_the_folder() {
        assert_eq!(
            not_a_child("/Repos/ci/p/tests", "/Repos/ci/p/tests/test_a"),
            None
        );
        assert_eq!(
            not_a_child("/Repos/ci/p/tests/", "/Repos/ci/p/tests/test_a"),
            None
        );
        for bad in [
            "/Repos/ci/p/tests/../../../Shared/evil",
            "/Repos/ci/p/tests/./x",
            "/Repos/ci/p/tests//x",
            "/Repos/ci/p/tests/a\r\nb",
            "/Repos/ci/p/tests/..",
            "/Repos/ci/p/tests/",
            "/Shared/elsewhere",
            "/Repos/ci/p/testsx",
            "/Repos/ci/p/tests/a/b",
        ] {
            assert!(not_a_child("/Repos/ci/p/tests", bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn listed_paths_keep_the_spelling_of_the_folder_listed() {
        assert_eq!(
            spelled_like("/Workspace/Users/u/p/tests", "/Users/u/p/tests/t".into()),
            "/Workspace/Users/u/p/tests/t"
        );
        assert_eq!(
            spelled_like("/Workspace/Users/u/p", "/Workspace/Users/u/p/t".into()),
            "/Workspace/Users/u/p/t"
        );
        assert_eq!(
            spelled_like("/Users/u/p", "/Users/u/p/t".into()),
            "/Users/u/p/t"
        );
    }

    #[test]
    fn globs_select_notebooks_in_order_once_and_leave_out_exclusions() {
        let all = candidates(&[
            "tests/test_b",
            "tests/test_a",
            "tests/slow/test_big",
            "tests/helpers",
            "other/test_x",
        ]);
        let entries = [
            Entry::Path("smoke".into()),
            glob(2, "tests/**/test_*"),
            glob(3, "!tests/slow/**"),
            Entry::Path("tests/test_a".into()),
        ];
        assert_eq!(
            select(&entries, &all).unwrap(),
            ["smoke", "tests/test_a", "tests/test_b"]
        );
    }

    #[test]
    fn a_glob_that_selects_nothing_names_its_line() {
        let all = candidates(&["tests/slow/test_big"]);
        let none = select(&[glob(4, "spec/**/test_*")], &all)
            .unwrap_err()
            .to_string();
        assert!(
            none.contains("line 4 (`spec/**/test_*`) matches no notebook under spec"),
            "{none}"
        );
        let excluded = select(&[glob(1, "tests/**"), glob(2, "!tests/slow/**")], &all)
            .unwrap_err()
            .to_string();
        assert!(
            excluded.contains("matches 1 notebooks, all left out"),
            "{excluded}"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_checkout_is_listed_within_bounds_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        std::fs::create_dir_all(root.join("tests/deep")).unwrap();
        let notebook = "# Databricks notebook source\nprint(1)\n";
        std::fs::write(root.join("tests/test_a.py"), notebook).unwrap();
        std::fs::write(root.join("tests/deep/test_b.py"), notebook).unwrap();
        std::fs::write(root.join("tests/test_module.py"), "import os\n").unwrap();
        std::fs::write(root.join("tests/test_c.ipynb"), "{}").unwrap();
        // A link out of the checkout is not followed.
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/test_x.py"), notebook).unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside"), root.join("tests/link")).unwrap();
        let host = crate::rest::scripted::test_host();
        let root = root.display().to_string();
        let entries = [glob(1, "tests/**/test_*")];
        let found = list_checkout(&*host, &root, &entries).unwrap();
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            ["tests/deep/test_b", "tests/test_a", "tests/test_c"]
        );
        let bounded = list_checkout_within(&*host, &root, &entries, 3)
            .unwrap_err()
            .to_string();
        assert!(
            bounded.contains("more than 3 files and folders"),
            "{bounded}"
        );
    }

    #[test]
    fn a_glob_lists_only_below_its_fixed_part() {
        let base = |p: &str| match glob(1, p) {
            Entry::Glob(g) => g.base(),
            _ => unreachable!(),
        };
        assert_eq!(base("tests/**/test_*"), "tests");
        assert_eq!(base("tests/unit/test_*"), "tests/unit");
        assert_eq!(base("**/test_*"), "");
        assert_eq!(base("/Repos/ci/p/tests/*"), "/Repos/ci/p/tests");
        assert_eq!(base("/*/x"), "/");
        assert!(
            is_glob("tests/*") && is_glob("!x") && is_glob("a/{b,c}") && !is_glob("tests/unit")
        );
    }
}
