//! The command line: parsing only. [`crate::settings`] turns what was parsed into the task
//! inputs the core reads.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
#[cfg(feature = "emulator")]
use databricks_azdo::emulator::EmulatorArgs;

/// The first example of `--help`, in a build that has the demo (feature `emulator`).
#[cfg(feature = "emulator")]
macro_rules! demo_example {
    () => {
        "databricks-azdo demo\n  "
    };
}
#[cfg(not(feature = "emulator"))]
macro_rules! demo_example {
    () => {
        ""
    };
}

#[derive(Parser, Debug)]
#[command(
    name = "databricks-azdo",
    version,
    about = "Check out a branch into a Databricks Repo and run notebook tests on Databricks",
    long_about = "Check out a branch into a Databricks Repo and run notebook tests on Databricks.\n\n\
        The same core runs the Azure Pipelines tasks DatabricksRepoUpdate@1 and \
        DatabricksRunNotebookTest@1. The workspace comes from --host or DATABRICKS_HOST, the \
        token from DATABRICKS_TOKEN or --token-file (never from a flag value).\n\n\
        Signing in without a personal access token reads the Databricks unified-auth \
        environment variables (DATABRICKS_AUTH_TYPE picks one; otherwise the first complete \
        set wins):\n  \
        oauth-m2m            DATABRICKS_CLIENT_ID, DATABRICKS_CLIENT_SECRET\n  \
        azure-client-secret  ARM_CLIENT_ID, ARM_TENANT_ID, ARM_CLIENT_SECRET\n  \
        azure-msi            ARM_USE_MSI=true (ARM_CLIENT_ID for a user-assigned identity)\n  \
        azure-devops-oidc    DATABRICKS_CLIENT_ID, in a pipeline step with SYSTEM_ACCESSTOKEN\n\
        Also: ARM_ENVIRONMENT (public, usgovernment, china) or AZURE_AUTHORITY_HOST for the Entra \
        authority, DATABRICKS_AZURE_RESOURCE_ID to add an Entra service principal to the \
        workspace on first use, IDENTITY_ENDPOINT/IDENTITY_HEADER and \
        AZURE_POD_IDENTITY_AUTHORITY_HOST for the managed identity endpoint.",
    after_help = concat!(
        "Examples:\n  ",
        demo_example!(),
        "export DATABRICKS_HOST=https://adb-123.4.azuredatabricks.net DATABRICKS_TOKEN=dapi...\n  \
        databricks-azdo repo-update --repo-path /Repos/ci/proj \\\n      \
        --repo-url https://github.com/org/proj --branch main\n  \
        databricks-azdo run-notebook-test --repo-path /Repos/ci/proj \\\n      \
        --notebook test/unit --cluster-id 0923-164208-abcd123\n  \
        databricks-azdo task DatabricksRunNotebookTest    # agent mode: reads INPUT_*"
    )
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create or update a Databricks Repo at a branch or tag (or delete it).
    #[command(after_help = "Examples:\n  \
        databricks-azdo repo-update --repo-path /Repos/ci/proj \\\n      \
        --repo-url https://github.com/org/proj --branch main\n  \
        databricks-azdo repo-update --repo-path /Repos/ci/proj --mode delete")]
    RepoUpdate(Box<RepoUpdateArgs>),
    /// Run notebooks as one Databricks run, wait, and report each notebook's result.
    #[command(after_help = "Examples:\n  \
        databricks-azdo run-notebook-test --repo-path /Repos/ci/proj --notebook test/unit --notebook test/integration \\\n      \
        --cluster-id 0923-164208-abcd123 --param env=ci\n  \
        databricks-azdo run-notebook-test --notebook /Shared/smoke --cluster-mode serverless --output json")]
    RunNotebookTest(Box<RunNotebookTestArgs>),
    /// Agent mode: run a pipeline task with inputs from INPUT_* variables, as the Node entry does.
    #[command(after_help = "Example:\n  \
        INPUT_REPOPATH=/Repos/ci/proj INPUT_BRANCH=main databricks-azdo task DatabricksRepoUpdate")]
    Task {
        /// DatabricksRepoUpdate or DatabricksRunNotebookTest (a `@1` suffix is accepted).
        name: String,
    },
    /// Serve the local Databricks workspace emulator (prints its URL first).
    #[cfg(feature = "emulator")]
    #[command(after_help = "Example:\n  \
        databricks-azdo emulator --listen 127.0.0.1:0 --token local-token \\\n      \
        --fault 'POST /api/2.2/jobs/runs/submit=503*2'")]
    Emulator(EmulatorArgs),
    /// Run the whole flow offline against the emulator: repo update, notebook run, cleanup.
    #[cfg(feature = "emulator")]
    Demo(DemoArgs),
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Workspace URL, e.g. https://adb-123.4.azuredatabricks.net [default: $DATABRICKS_HOST]
    #[arg(long, value_name = "URL")]
    pub host: Option<String>,
    /// Read the token from this file instead of $DATABRICKS_TOKEN.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// What to print: readable text, or one JSON document for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Show debug lines.
    #[arg(long, short)]
    pub verbose: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct RepoUpdateArgs {
    #[command(flatten)]
    pub common: Common,
    /// createOrUpdate, update (must exist) or delete.
    #[arg(long)]
    pub mode: Option<String>,
    /// Workspace path of the repo, e.g. /Repos/ci/my-project.
    #[arg(long)]
    pub repo_path: Option<String>,
    /// Id of an existing repo (modes update and delete).
    #[arg(long)]
    pub repo_id: Option<String>,
    /// HTTPS clone URL (needed to create the repo).
    #[arg(long)]
    pub repo_url: Option<String>,
    /// gitHub, azureDevOpsServices, gitLab, ... [default: derived from the URL]
    #[arg(long)]
    pub git_provider: Option<String>,
    /// Branch to check out and pull.
    #[arg(long)]
    pub branch: Option<String>,
    /// Tag to check out (detached), instead of a branch.
    #[arg(long)]
    pub tag: Option<String>,
    /// Commit the repo head should be at after the update.
    #[arg(long)]
    pub expected_commit: Option<String>,
    /// warn, fail or ignore.
    #[arg(long)]
    pub on_commit_mismatch: Option<String>,
    /// Check out only this folder (a cone pattern, relative to the repository root) besides
    /// the root's files; repeatable. Only when the Git folder is created.
    #[arg(long = "sparse-checkout", value_name = "FOLDER")]
    pub sparse_checkout: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RunNotebookTestArgs {
    #[command(flatten)]
    pub common: Common,
    /// Notebook to run (repeatable); relative paths are resolved against --repo-path.
    #[arg(long = "notebook", value_name = "PATH", required = true)]
    pub notebooks: Vec<String>,
    /// The Repo the notebooks live in, e.g. /Repos/ci/my-project.
    #[arg(long)]
    pub repo_path: Option<String>,
    /// workspace, or git (runs --commit of --repo-url directly, no Repo needed).
    #[arg(long)]
    pub source: Option<String>,
    /// HTTPS clone URL, for --source git.
    #[arg(long)]
    pub repo_url: Option<String>,
    /// gitHub, azureDevOpsServices, gitLab, ... [default: derived from the URL]
    #[arg(long)]
    pub git_provider: Option<String>,
    /// The commit to run with --source git.
    #[arg(long)]
    pub commit: Option<String>,
    /// existing, new or serverless.
    #[arg(long)]
    pub cluster_mode: Option<String>,
    /// Existing cluster id (implies --cluster-mode existing).
    #[arg(long, alias = "existing-cluster-id")]
    pub cluster_id: Option<String>,
    /// new_cluster JSON, inline or a file path (implies --cluster-mode new).
    #[arg(long, value_name = "JSON|PATH")]
    pub new_cluster: Option<String>,
    /// Notebook parameter key=value (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// 0 = no timeout [default: 60]
    #[arg(long)]
    pub timeout_minutes: Option<String>,
    /// Name of the run in Databricks.
    #[arg(long)]
    pub run_name: Option<String>,
    /// Run a failed notebook again up to N times (0 to 10) [default: 0]
    #[arg(long, value_name = "N")]
    pub retries: Option<String>,
    /// Least seconds between attempts [default: 30]
    #[arg(long, value_name = "SECONDS")]
    pub retry_interval_seconds: Option<String>,
    /// At most N notebooks at once; 0 = all together [default: 0]
    #[arg(long, value_name = "N")]
    pub max_parallel: Option<String>,
    /// true or false: whether failed test cases a notebook reports fail the command [default: true]
    #[arg(long, value_name = "BOOL")]
    pub fail_on_failed_tests: Option<String>,
    /// A library to install (repeatable): a wheel or JAR path (local files are uploaded to
    /// --library-upload-path), pypi:SPEC, requirements:PATH, maven:COORDINATES
    #[arg(long = "library", value_name = "LIBRARY")]
    pub libraries: Vec<String>,
    /// Volume folder local wheels and JARs are uploaded to (/Volumes/<catalog>/<schema>/<volume>/...)
    #[arg(long, value_name = "PATH")]
    pub library_upload_path: Option<String>,
    /// Serverless environment version for --library [default: 4]
    #[arg(long, value_name = "VERSION")]
    pub environment_version: Option<String>,
    /// Cluster policy id of the new job cluster
    #[arg(long, value_name = "ID")]
    pub cluster_policy_id: Option<String>,
    /// Run as this user (e-mail) or service principal (application id)
    #[arg(long, value_name = "WHO")]
    pub run_as: Option<String>,
    /// Serverless: STANDARD or PERFORMANCE_OPTIMIZED [default: Databricks' choice]
    #[arg(long, value_name = "TARGET")]
    pub performance_target: Option<String>,
    /// Budget policy the run's cost is attributed to
    #[arg(long, value_name = "ID")]
    pub budget_policy_id: Option<String>,
}

#[cfg(feature = "emulator")]
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Add a notebook that fails, to see how a failure looks (exits non-zero).
    #[arg(long)]
    pub fail: bool,
    /// How the pipeline signs in; the emulator plays Azure DevOps, Microsoft Entra, the
    /// instance metadata service and the workspace's OAuth server.
    #[arg(long, value_enum, default_value = "pat")]
    pub auth: databricks_azdo::scenarios::AuthScenario,
    /// Print the agent's stream as it is (`##vso[...]` logging commands and all) instead of
    /// the log as the Azure Pipelines web page shows it.
    #[arg(long)]
    pub raw: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_input_name_works_for_the_cluster_id() {
        let cli = Cli::try_parse_from([
            "databricks-azdo",
            "run-notebook-test",
            "--notebook",
            "/Repos/ci/p/test/unit",
            "--existing-cluster-id",
            "0923-164208-abcd123",
        ])
        .unwrap();
        let Command::RunNotebookTest(args) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(args.cluster_id.as_deref(), Some("0923-164208-abcd123"));
    }

    /// The agents' binary (built without the feature `emulator`) has every other command, and
    /// its help does not mention the emulator or the demo.
    #[test]
    fn the_emulator_and_the_demo_are_offered_only_with_the_emulator() {
        use clap::CommandFactory as _;
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        for name in ["repo-update", "run-notebook-test", "task"] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
        let help = Cli::command().render_long_help().to_string();
        let with = cfg!(feature = "emulator");
        for word in ["emulator", "demo"] {
            assert_eq!(names.iter().any(|n| n == word), with, "{word} in {names:?}");
            assert_eq!(help.contains(word), with, "{word} in:\n{help}");
        }
    }
}
