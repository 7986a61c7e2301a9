//! Everything a running emulator knows, shared by the handlers and the run drivers.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::task::JoinSet;

use super::faults::{Fault, FaultInjector, FaultRule};
use super::identity::IdentityState;
use super::runs::Runs;
use super::workspace::Workspace;
use super::EmulatorConfig;

pub(crate) struct Shared {
    pub token: String,
    pub known_cluster_id: String,
    pub pending: Duration,
    pub terminating: Duration,
    pub python: String,
    pub base_url: String,
    /// The emulator's private temporary directory (owned by `Emulator`).
    pub root: PathBuf,
    pub runner_script: PathBuf,
    pub workspace: Mutex<Workspace>,
    pub runs: Mutex<Runs>,
    /// The identity parties: their configuration, keys, clock and issued tokens.
    pub identity: IdentityState,
    faults: Mutex<FaultInjector>,
    counts: Mutex<BTreeMap<String, u64>>,
    /// Per endpoint: requests being answered now, and the most at once since the last reset.
    in_flight: Mutex<BTreeMap<String, (u64, u64)>>,
    /// Wall-clock time of the first request since the last reset (milliseconds since the
    /// epoch): benchmarks measure start-up with it.
    first_request_at: Mutex<Option<u64>>,
    /// Run drivers. `None` once the emulator has stopped: late work is refused.
    background: Mutex<Option<JoinSet<()>>>,
    /// Signs the page tokens of `runs/get`, so that a token the emulator did not issue is
    /// refused as Databricks refuses one.
    page_key: ring::hmac::Key,
    /// The workspace's limit of active runs (`max_active_runs`): a slot per run, and the limit.
    pub run_slots: Option<(Arc<tokio::sync::Semaphore>, usize)>,
}

/// Locks a mutex, ignoring poisoning: the state stays usable after a panicking handler, and
/// every critical section leaves it consistent before anything can panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// The opaque token of the page of run `run_id`'s tasks that starts at `offset`.
    pub fn page_token(&self, run_id: i64, offset: usize) -> String {
        let payload = format!("{run_id}:{offset}");
        let tag = ring::hmac::sign(&self.page_key, payload.as_bytes());
        let hex: String = tag.as_ref()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            format!("{payload}:{hex}"),
        )
    }

    /// The offset a page token of run `run_id` stands for; `None` for one not issued for it.
    pub fn page_offset(&self, run_id: i64, token: &str) -> Option<usize> {
        let decoded =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, token)
                .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let mut parts = text.split(':');
        let (run, offset) = (parts.next()?, parts.next()?.parse::<usize>().ok()?);
        (run == run_id.to_string() && self.page_token(run_id, offset) == token).then_some(offset)
    }

    /// The folder that plays Unity Catalog volumes: `/Volumes/<catalog>/…` in a notebook and
    /// in the Files API is `<root>/volumes/<catalog>/…` here.
    pub fn volumes_root(&self) -> PathBuf {
        self.root.join("volumes")
    }

    /// The folder that plays the workspace's files outside repos: `/Workspace/Shared/x.xml` in
    /// a notebook, and `/Shared/x.xml` in the workspace export API, is
    /// `<root>/workspace-files/Shared/x.xml` here.
    pub fn workspace_files_root(&self) -> PathBuf {
        self.root.join("workspace-files")
    }

    pub fn new(
        config: &EmulatorConfig,
        base_url: String,
        root: PathBuf,
        runner_script: PathBuf,
    ) -> Self {
        Shared {
            token: config.token.clone(),
            known_cluster_id: config.known_cluster_id.clone(),
            pending: config.pending,
            terminating: config.terminating,
            python: config.python.clone(),
            base_url,
            root,
            runner_script,
            workspace: Mutex::new(Workspace::new(config.git_folders)),
            runs: Mutex::new(Runs::default()),
            identity: IdentityState::new(&config.identities),
            faults: Mutex::new(FaultInjector::new(config.seed, config.faults.clone())),
            counts: Mutex::new(BTreeMap::new()),
            in_flight: Mutex::new(BTreeMap::new()),
            first_request_at: Mutex::new(None),
            background: Mutex::new(Some(JoinSet::new())),
            page_key: ring::hmac::Key::generate(
                ring::hmac::HMAC_SHA256,
                &ring::rand::SystemRandom::new(),
            )
            .expect("the system's random numbers"),
            run_slots: config
                .max_active_runs
                .map(|limit| (Arc::new(tokio::sync::Semaphore::new(limit)), limit)),
        }
    }

    /// Counts a request and tracks it as in flight until the returned guard is dropped.
    pub fn count_request(self: &Arc<Self>, method: &str, path: &str) -> InFlight {
        let endpoint = format!("{method} {path}");
        lock(&self.first_request_at).get_or_insert_with(|| super::runs::now_ms() as u64);
        *lock(&self.counts).entry(endpoint.clone()).or_default() += 1;
        let mut in_flight = lock(&self.in_flight);
        let (now, max) = in_flight.entry(endpoint.clone()).or_default();
        *now += 1;
        *max = (*max).max(*now);
        InFlight {
            shared: self.clone(),
            endpoint,
        }
    }

    /// The most requests each endpoint was answering at once.
    pub fn max_in_flight(&self) -> BTreeMap<String, u64> {
        lock(&self.in_flight)
            .iter()
            .map(|(endpoint, (_, max))| (endpoint.clone(), *max))
            .collect()
    }

    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        lock(&self.counts).clone()
    }

    pub fn first_request_at(&self) -> Option<u64> {
        *lock(&self.first_request_at)
    }

    pub fn reset_request_counts(&self) {
        lock(&self.counts).clear();
        *lock(&self.first_request_at) = None;
        for (now, max) in lock(&self.in_flight).values_mut() {
            *max = *now;
        }
    }

    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        lock(&self.faults).set(rules);
    }

    pub fn pick_fault(&self, method: &str, path: &str) -> Option<Fault> {
        lock(&self.faults).pick(method, path)
    }

    /// Runs `work` in the background until it ends or the emulator stops.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        if let Some(tasks) = lock(&self.background).as_mut() {
            while tasks.try_join_next().is_some() {}
            tasks.spawn(work);
        }
    }

    /// Aborts the background work and waits until it is gone (child processes die with it).
    pub async fn stop_background(&self) {
        let tasks = lock(&self.background).take();
        if let Some(mut tasks) = tasks {
            tasks.shutdown().await;
        }
    }

    pub fn abort_background(&self) {
        if let Some(mut tasks) = lock(&self.background).take() {
            tasks.abort_all();
        }
    }
}

/// A request being answered; dropping it (answer sent, or connection gone) ends it.
pub(crate) struct InFlight {
    shared: Arc<Shared>,
    endpoint: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some((now, _)) = lock(&self.shared.in_flight).get_mut(&self.endpoint) {
            *now = now.saturating_sub(1);
        }
    }
}
