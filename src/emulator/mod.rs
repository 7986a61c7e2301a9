//! Local Databricks workspace emulator (native only).
//!
//! An HTTP server on loopback that answers the subset of the Databricks REST API the tasks use,
//! with the real wire shapes: workspace objects, Repos backed by real `git` clones, one-time
//! notebook runs executed by `python3`, and seeded fault injection. The demo, the integration
//! tests and the benchmarks run against it instead of a real workspace.
//!
//! Map of this module:
//! - `server`: routes, authentication, request counters, control routes (`/emulator/*`)
//! - `conn`: connections that a fault can break on purpose
//! - `faults`: fault rules (`FaultRule` syntax) and the injecting middleware
//! - `files`: the Files API for `/Volumes/...`, which notebooks write into as local folders
//! - `error`: the `{error_code, message}` envelope and request extractors that use it
//! - `workspace`: the folder tree, how paths resolve into repo checkouts, and the export of
//!   workspace files (which notebooks write through `/Workspace/...`)
//! - `repos`, `git`: the Repos API and the `git` commands behind it
//! - `jobs`: the Jobs API (`runs/submit`, `runs/get`, ...) and its JSON views
//! - `runs`: run state and the state machine that drives each run (every attempt of a task)
//! - `schedule`: `depends_on`/`run_if` and the retry policy
//! - `libraries`: task libraries and serverless environments; pure-Python wheels in volumes
//!   are put on the notebook's import path
//! - `notebook`: running one source-format notebook under Python
//! - `identity`: the parties a pipeline signs in through (Azure DevOps id tokens, Microsoft
//!   Entra, the instance metadata service, the workspace's OAuth server), on the same listener

mod conn;
mod error;
mod faults;
mod files;
mod git;
pub mod identity;
mod jobs;
mod libraries;
mod notebook;
mod repos;
mod runs;
mod schedule;
mod server;
mod state;
mod workspace;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use faults::{Fault, FaultRule, FaultRuleError, Rewrite};
pub use identity::{
    DevOps, EntraApplication, Identities, ManagedIdentity, ServiceConnection, WorkspaceAccess,
};
pub use workspace::GitFolderObjects;

/// A self-signed RSA-2048 test certificate with its private key in one PEM (certificate, then
/// PKCS#8 key), as Azure DevOps stores `servicePrincipalCertificate`; valid 100 years. A test
/// key, not a secret: it is published with the source and trusted only by tests and examples.
pub const TEST_CERTIFICATE_PEM: &str = include_str!("identity/test-certificate.pem");
/// An unrelated test certificate and key (the "signed by another key" cases). Not a secret.
pub const OTHER_TEST_CERTIFICATE_PEM: &str = include_str!("identity/other-test-certificate.pem");

use state::Shared;

/// How long `shutdown` lets in-flight requests finish before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Settings of one emulator instance.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// The only personal access token the emulator accepts.
    pub token: String,
    /// The one cluster that exists for `existing_cluster_id`.
    pub known_cluster_id: String,
    /// Time a task run spends in PENDING before its notebook starts.
    pub pending: Duration,
    /// Time a task run spends in TERMINATING after its notebook ends.
    pub terminating: Duration,
    /// Seed of the random numbers behind fault probabilities.
    pub seed: u64,
    pub faults: Vec<FaultRule>,
    /// Python interpreter that runs notebooks.
    pub python: String,
    /// The identity parties it also plays (none by default: only `token` is accepted).
    pub identities: Identities,
    /// How get-status shows Git folders: `DIRECTORY`, as workspaces with the Git CLI do (the
    /// default), or `REPO`, as older ones do.
    pub git_folders: GitFolderObjects,
    /// The workspace's limit of active runs: a run submitted beyond it waits QUEUED when it
    /// asked for `queue: {enabled: true}`, and is SKIPPED otherwise. `None`: no limit.
    pub max_active_runs: Option<usize>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            token: String::new(),
            known_cluster_id: "0101-000000-emulator".to_string(),
            pending: Duration::from_millis(300),
            terminating: Duration::from_millis(200),
            seed: 1,
            faults: Vec::new(),
            python: "python3".to_string(),
            identities: Identities::default(),
            git_folders: GitFolderObjects::default(),
            max_active_runs: None,
        }
    }
}

// Written by hand so that logging a configuration never prints the token.
impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("token", &"<redacted>")
            .field("known_cluster_id", &self.known_cluster_id)
            .field("pending", &self.pending)
            .field("terminating", &self.terminating)
            .field("seed", &self.seed)
            .field("faults", &self.faults)
            .field("python", &self.python)
            .field("identities", &self.identities)
            .field("git_folders", &self.git_folders)
            .field("max_active_runs", &self.max_active_runs)
            .finish()
    }
}

/// A running emulator. Stop it with [`Emulator::shutdown`]; dropping it stops it too, less
/// gracefully.
pub struct Emulator {
    base_url: String,
    /// The address the listener is bound to (a wildcard address stays a wildcard here).
    bound: SocketAddr,
    shared: Arc<Shared>,
    stop_server: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    /// Clones, checkouts and notebook scratch files; removed when the emulator stops.
    root: Option<tempfile::TempDir>,
}

impl Emulator {
    /// Starts serving on `listen` (`127.0.0.1:0` lets the OS pick the port).
    pub async fn start(config: EmulatorConfig, listen: SocketAddr) -> anyhow::Result<Emulator> {
        config
            .identities
            .validate()
            .context("invalid identities configuration")?;
        let root = tempfile::Builder::new()
            .prefix("databricks-emulator-")
            .tempdir()
            .context("cannot create the emulator's temporary directory")?;
        let runner = notebook::install_runner(root.path())
            .await
            .context("cannot write the notebook runner script")?;

        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let bound = listener.local_addr()?;
        let mut local = bound;
        if local.ip().is_unspecified() {
            // A wildcard address is fine to listen on but not to connect to.
            local.set_ip(match local {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let base_url = format!("http://{local}");

        let shared = Arc::new(Shared::new(
            &config,
            base_url.clone(),
            root.path().to_path_buf(),
            runner,
        ));
        let app = server::router(shared.clone())
            .into_make_service_with_connect_info::<conn::ConnectionHandle>();
        let (stop_server, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = axum::serve(conn::Listener::new(listener), app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });

        Ok(Emulator {
            base_url,
            bound,
            shared,
            stop_server: Some(stop_server),
            server: Some(server),
            root: Some(root),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Where it listens: `0.0.0.0:PORT` means every interface, unlike [`Emulator::base_url`].
    pub fn bound_address(&self) -> SocketAddr {
        self.bound
    }

    /// `"METHOD /path"` → number of API requests received, faulted ones included.
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.shared.request_counts()
    }

    /// "METHOD /path" → the most requests it was answering at once.
    pub fn max_in_flight(&self) -> BTreeMap<String, u64> {
        self.shared.max_in_flight()
    }

    /// Party (`devops`, `entra`, `imds`, `workspace_oauth`) → tokens it issued (id tokens for
    /// `devops`, access tokens for the others).
    pub fn tokens_issued(&self) -> BTreeMap<String, u64> {
        self.shared
            .identity
            .tokens_issued()
            .into_iter()
            .map(|(party, n)| (party.to_string(), n))
            .collect()
    }

    /// Every token the identity parties handed out (id tokens and access tokens): what a test
    /// hunts for in a task's output.
    pub fn tokens_handed_out(&self) -> Vec<String> {
        self.shared.identity.handed_out()
    }

    /// Application ids that are workspace users now: the configured ones and those added on
    /// first use (management token + Contributor), sorted.
    pub fn workspace_principals(&self) -> Vec<String> {
        self.shared.identity.principals()
    }

    /// Moves the identity parties' clock forward: tokens expire, assertions age, without
    /// waiting. (Runs and everything else keep real time.)
    pub fn advance_identity_clock(&self, by: Duration) {
        self.shared.identity.advance_clock(by);
    }

    /// Replaces the fault rules; their `times` budgets start afresh.
    pub fn set_faults(&self, faults: Vec<FaultRule>) {
        self.shared.set_faults(faults);
    }

    /// Stops the server, kills running notebooks and removes the temporary files.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        if let Some(mut server) = self.server.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
                .await
                .is_err()
            {
                server.abort();
                let _ = server.await;
            }
        }
        self.shared.stop_background().await;
        if let Some(root) = self.root.take() {
            let _ = tokio::task::spawn_blocking(move || root.close()).await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        // Aborting the run drivers drops their child processes, which kills them.
        self.shared.abort_background();
        // `root` removes the temporary directory as it drops.
    }
}

/// `databricks-azdo emulator`: serve a local workspace until interrupted.
#[derive(Clone, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on; port 0 lets the OS pick one. Anything but loopback lets other
    /// machines run code here (notebooks run as local processes): a warning says so.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Token clients must send as `Authorization: Bearer <token>` [default: $DATABRICKS_TOKEN]
    #[arg(long)]
    pub token: Option<String>,
    /// Id of the one existing cluster.
    #[arg(long, default_value = "0101-000000-emulator")]
    pub cluster_id: String,
    /// Milliseconds a task run stays PENDING.
    #[arg(long, default_value_t = 300)]
    pub pending_ms: u64,
    /// Milliseconds a task run stays TERMINATING.
    #[arg(long, default_value_t = 200)]
    pub terminating_ms: u64,
    /// Seed for fault probabilities.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Inject a fault, e.g. `POST /api/2.1/jobs/runs/submit=503*2` or `*=429:1@0.1`
    /// (ENDPOINT=FAULT[*TIMES][@PROBABILITY]; FAULT is STATUS[:RETRY_AFTER_SECS],
    /// drop-before, drop-after or delay:MS). Repeatable; the first rule that fires wins.
    #[arg(long = "fault", value_name = "RULE")]
    pub faults: Vec<FaultRule>,
    /// Python interpreter that runs notebooks.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Also play Azure DevOps, Microsoft Entra, the instance metadata service and the
    /// workspace's OAuth server, with the organizations, applications and principals in this
    /// JSON file (format: README, "Identity parties"; example: examples/emulator-identities.json).
    #[arg(long, value_name = "FILE")]
    pub identities: Option<std::path::PathBuf>,
    /// Show Git folders in get-status and list as `REPO` objects with their Git state, as
    /// workspaces did before the Git CLI. By default they are `DIRECTORY` objects, as now.
    #[arg(long)]
    pub legacy_git_folders: bool,
    /// The workspace's limit of active runs: beyond it a run queues (QUEUED, when submitted
    /// with queueing enabled) or is skipped. [default: no limit]
    #[arg(long, value_name = "N")]
    pub max_active_runs: Option<usize>,
}

impl std::fmt::Debug for EmulatorArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorArgs")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("cluster_id", &self.cluster_id)
            .field("pending_ms", &self.pending_ms)
            .field("terminating_ms", &self.terminating_ms)
            .field("seed", &self.seed)
            .field("faults", &self.faults)
            .field("python", &self.python)
            .field("identities", &self.identities)
            .field("legacy_git_folders", &self.legacy_git_folders)
            .field("max_active_runs", &self.max_active_runs)
            .finish()
    }
}

impl EmulatorArgs {
    fn config(&self) -> anyhow::Result<EmulatorConfig> {
        let token = match &self.token {
            Some(token) => token.clone(),
            None => std::env::var("DATABRICKS_TOKEN").map_err(|_| {
                anyhow::anyhow!("a token is required: pass --token or set DATABRICKS_TOKEN")
            })?,
        };
        anyhow::ensure!(!token.trim().is_empty(), "the token must not be empty");
        anyhow::ensure!(
            self.max_active_runs != Some(0),
            "--max-active-runs must be at least 1: a workspace with no room for a run would queue every run for ever"
        );
        let identities = match &self.identities {
            Some(path) => Identities::from_file(path)?,
            None => Identities::default(),
        };
        Ok(EmulatorConfig {
            token,
            known_cluster_id: self.cluster_id.clone(),
            pending: Duration::from_millis(self.pending_ms),
            terminating: Duration::from_millis(self.terminating_ms),
            seed: self.seed,
            faults: self.faults.clone(),
            python: self.python.clone(),
            identities,
            git_folders: if self.legacy_git_folders {
                GitFolderObjects::Repo
            } else {
                GitFolderObjects::Directory
            },
            max_active_runs: self.max_active_runs,
        })
    }
}

/// Starts the emulator, prints its base URL as the first line of stdout, and serves until
/// SIGINT or SIGTERM.
pub async fn serve(args: EmulatorArgs) -> anyhow::Result<()> {
    let emulator = Emulator::start(args.config()?, args.listen).await?;
    {
        // Scripts read this line to learn the port, so it must not wait in a buffer.
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", emulator.base_url())?;
        stdout.flush()?;
    }
    if let Some(warning) = exposure_warning(emulator.bound_address()) {
        eprintln!("{warning}");
    }
    let signal = wait_for_termination().await;
    emulator.shutdown().await;
    signal
}

/// What to tell the user when the emulator can be reached from other machines: it runs every
/// submitted notebook as a local Python process, so reaching it (with the token) means running
/// code on this machine.
pub fn exposure_warning(bound: SocketAddr) -> Option<String> {
    if bound.ip().is_loopback() {
        return None;
    }
    let reach = if bound.ip().is_unspecified() {
        "every network interface of this machine"
    } else {
        "a network interface of this machine"
    };
    Some(format!(
        "warning: listening on {bound} ({reach}), not only on loopback: anyone who can reach it \
         and has the token runs code on this machine, because notebooks run as local Python \
         processes. Use --listen 127.0.0.1:0 unless other machines must connect."
    ))
}

async fn wait_for_termination() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
