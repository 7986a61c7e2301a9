//! Git facts derived from the pipeline: which branch or tag it builds, which commit, and which
//! Databricks Git provider a repository URL belongs to.

use crate::databricks::models::PROVIDERS;
use crate::databricks::RepoRef;
use crate::pipeline::{InputError, Inputs};
use crate::tasks::names::variable;

/// The provider of a well-known Git host, or `None` for self-hosted and local URLs.
pub fn provider_from_url(url: &str) -> Option<&'static str> {
    let host = crate::text::parse_url(url)
        .ok()?
        .host_str()?
        .to_ascii_lowercase();
    let provider = if host == "github.com" || host.ends_with(".github.com") {
        "gitHub"
    } else if host == "dev.azure.com"
        || host.ends_with(".visualstudio.com")
        || host == "ssh.dev.azure.com"
    {
        "azureDevOpsServices"
    } else if host == "gitlab.com" {
        "gitLab"
    } else if host == "bitbucket.org" {
        "bitbucketCloud"
    } else if host.starts_with("git-codecommit.") && host.ends_with(".amazonaws.com") {
        "awsCodeCommit"
    } else {
        return None;
    };
    Some(provider)
}

/// Reads the `gitProvider` input, or derives the provider from `url`.
pub fn provider(inputs: &Inputs, input: &str, url: &str) -> Result<String, InputError> {
    match inputs.get(input)? {
        Some(value) => PROVIDERS
            .iter()
            .find(|p| p.eq_ignore_ascii_case(&value))
            .map(|p| p.to_string())
            .ok_or_else(|| {
                let error = InputError::new(
                    input,
                    format!("`{value}` is not one of: {}", PROVIDERS.join(", ")),
                );
                match crate::pipeline::inputs::closest(&value, PROVIDERS) {
                    Some(close) => error.with_hint(format!("did you mean `{close}`?")),
                    None => error,
                }
            }),
        None => provider_from_url(url).map(str::to_string).ok_or_else(|| {
            let url = crate::text::redact_url(url);
            InputError::new(input, format!("cannot be derived from the URL `{url}`"))
                .with_hint(format!("set {input} to one of: {}", PROVIDERS.join(", ")))
        }),
    }
}

/// The repository URL to clone: the input, else the pipeline's own repository. Azure Repos
/// URLs carry the organization as a user name (`https://org@dev.azure.com/...`), which
/// Databricks does not want. Errors quote the URL with its credentials, query values and
/// fragment hidden: a token pasted into a clone URL is not a registered secret.
pub fn repository_url(inputs: &Inputs, input: &str) -> Result<String, InputError> {
    let raw = match inputs.get(input)? {
        Some(url) => url,
        None => inputs
            .variable(variable::BUILD_REPOSITORY_URI)
            .ok_or_else(|| {
                InputError::new(
                    input,
                    "is not set, and Build.Repository.Uri is not available",
                )
                .with_hint("set it to the HTTPS clone URL of the repository")
            })?,
    };
    let shown = crate::text::redact_url(&raw);
    if raw.contains(char::is_whitespace) {
        return Err(InputError::new(input, format!("`{shown}` contains spaces")));
    }
    if raw.starts_with('/') || raw.starts_with("file://") {
        return Ok(raw); // a local repository, for the workspace emulator
    }
    let mut url = crate::text::parse_url(&raw).map_err(|e| {
        InputError::new(input, format!("`{shown}` is not a URL: {e}"))
            .with_hint("use the HTTPS clone URL, e.g. https://github.com/org/repo.git")
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(InputError::new(input, format!("`{shown}` is not an HTTPS URL"))
            .with_hint("Databricks Repos clone over HTTPS: use the HTTPS clone URL, e.g. https://github.com/org/repo.git"));
    }
    if url.password().is_some() {
        return Err(InputError::new(
            input,
            "contains a password; Databricks uses its own Git credentials",
        )
        .with_hint(
            "remove the credentials from the URL and set up Git credentials in Databricks",
        ));
    }
    // A clone URL has neither; a token passed as `?token=` would be sent on and printed.
    if url.query().is_some() || url.fragment().is_some() {
        return Err(InputError::new(
            input,
            format!("`{shown}` has a query string or fragment, which a clone URL does not"),
        )
        .with_hint("use the plain HTTPS clone URL, and set up Git credentials in Databricks"));
    }
    let _ = url.set_username("");
    Ok(url.to_string())
}

/// Short branch names from full refs: `refs/heads/x` → branch `x`, `refs/tags/v1` → tag `v1`.
pub fn ref_from_build(inputs: &Inputs) -> Option<RepoRef> {
    let is_pr = inputs
        .variable(variable::BUILD_REASON)
        .is_some_and(|r| r.eq_ignore_ascii_case("PullRequest"));
    let full = if is_pr {
        inputs.variable(variable::PULL_REQUEST_SOURCE_BRANCH)
    } else {
        None
    }
    .or_else(|| inputs.variable(variable::BUILD_SOURCE_BRANCH))?;
    if let Some(branch) = full.strip_prefix("refs/heads/") {
        Some(RepoRef::Branch(branch.to_string()))
    } else if let Some(tag) = full.strip_prefix("refs/tags/") {
        Some(RepoRef::Tag(tag.to_string()))
    } else if full.starts_with("refs/") {
        None // refs/pull/N/merge without the PR variables: nothing Databricks can check out
    } else {
        Some(RepoRef::Branch(full))
    }
}

/// The commit this pipeline built: for pull requests the source branch's head, otherwise
/// `Build.SourceVersion`.
pub fn commit_from_build(inputs: &Inputs) -> Option<String> {
    let is_pr = inputs
        .variable(variable::BUILD_REASON)
        .is_some_and(|r| r.eq_ignore_ascii_case("PullRequest"));
    if is_pr {
        if let Some(commit) = inputs.variable(variable::PULL_REQUEST_SOURCE_COMMIT_ID) {
            return Some(commit);
        }
    }
    inputs.variable(variable::BUILD_SOURCE_VERSION)
}

/// Checks a branch or tag name against git's rules for ref names (the parts users trip on).
pub fn check_ref_name(input: &str, name: &str) -> Result<(), InputError> {
    let bad = |why: &str| {
        Err(InputError::new(
            input,
            format!("`{name}` is not a valid Git ref name: {why}"),
        ))
    };
    if name.starts_with("refs/") {
        return Err(InputError::new(
            input,
            format!("`{name}` is a full ref; give the short name"),
        )
        .with_hint(format!(
            "use `{}`",
            name.trim_start_matches("refs/heads/")
                .trim_start_matches("refs/tags/")
        )));
    }
    if name.starts_with('-') || name.starts_with('/') || name.ends_with('/') || name.ends_with('.')
    {
        return bad("it must not start with `-` or `/`, nor end with `/` or `.`");
    }
    if name.contains("..") || name.contains("//") || name.contains("@{") || name.ends_with(".lock")
    {
        return bad("it must not contain `..`, `//` or `@{`, nor end with `.lock`");
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(*c))
    {
        return bad(&format!("it must not contain {c:?}"));
    }
    Ok(())
}

/// A commit id: 7 to 64 hexadecimal digits (SHA-1 or SHA-256, possibly abbreviated).
pub fn check_commit(input: &str, commit: &str) -> Result<String, InputError> {
    let commit = commit.to_ascii_lowercase();
    if (7..=64).contains(&commit.len()) && commit.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(commit)
    } else {
        Err(InputError::new(
            input,
            format!("`{commit}` is not a commit id (7 to 64 hexadecimal digits)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn derives_providers_from_well_known_hosts() {
        assert_eq!(
            provider_from_url("https://github.com/o/r.git"),
            Some("gitHub")
        );
        assert_eq!(
            provider_from_url("https://org@dev.azure.com/org/p/_git/r"),
            Some("azureDevOpsServices")
        );
        assert_eq!(
            provider_from_url("https://org.visualstudio.com/p/_git/r"),
            Some("azureDevOpsServices")
        );
        assert_eq!(provider_from_url("https://gitlab.com/o/r"), Some("gitLab"));
        assert_eq!(
            provider_from_url("https://bitbucket.org/o/r"),
            Some("bitbucketCloud")
        );
        assert_eq!(
            provider_from_url("https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/r"),
            Some("awsCodeCommit")
        );
        assert_eq!(provider_from_url("https://git.example.com/r"), None);
        assert_eq!(provider_from_url("/tmp/repo"), None);
    }

    #[test]
    fn branch_and_commit_follow_the_build_and_pull_requests() {
        let env: BTreeMap<String, String> = [
            ("BUILD_SOURCEBRANCH", "refs/pull/7/merge"),
            ("BUILD_REASON", "PullRequest"),
            ("SYSTEM_PULLREQUEST_SOURCEBRANCH", "refs/heads/feature/x"),
            ("SYSTEM_PULLREQUEST_SOURCECOMMITID", "abcdef1"),
            ("BUILD_SOURCEVERSION", "1234567"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let inputs = Inputs::new(&env);
        assert_eq!(
            ref_from_build(&inputs),
            Some(RepoRef::Branch("feature/x".into()))
        );
        assert_eq!(commit_from_build(&inputs).as_deref(), Some("abcdef1"));

        let env: BTreeMap<String, String> = [("BUILD_SOURCEBRANCH", "refs/tags/v1.2")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            ref_from_build(&Inputs::new(&env)),
            Some(RepoRef::Tag("v1.2".into()))
        );
    }

    #[test]
    fn ref_names_follow_git_rules() {
        assert!(check_ref_name("branch", "feature/x-1.2").is_ok());
        for bad in [
            "-x",
            "a..b",
            "a b",
            "a~1",
            "x.lock",
            "refs/heads/main",
            "a//b",
            "a\u{7}",
        ] {
            assert!(check_ref_name("branch", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn strips_the_azure_devops_user_name() {
        let env: BTreeMap<String, String> = [(
            "BUILD_REPOSITORY_URI",
            "https://org@dev.azure.com/org/p/_git/r",
        )]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            repository_url(&Inputs::new(&env), "repoUrl").unwrap(),
            "https://dev.azure.com/org/p/_git/r"
        );
    }
}
