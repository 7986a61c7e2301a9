//! One-time runs: their state, and the drivers that move every task run through
//! PENDING → RUNNING → TERMINATING → TERMINATED on timers and process exits. A parent run's
//! state is derived from its tasks, so the two can never disagree.

use std::collections::{BTreeMap, HashMap};
use std::future::pending;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::watch;
use tokio::time::sleep;

use super::git::{self, GitError, GitRef};
use super::libraries::{self, Installed, Library};
use super::notebook::{self, NotebookJob, NotebookOutcome};
use super::schedule::{Decision, RetryPolicy, RunIf};
use super::state::{lock, Shared};
use super::workspace::{self, USER};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LifeCycle {
    /// Waiting for a free slot: the workspace is at its limit of active runs.
    Queued,
    Pending,
    /// Waiting for the tasks it depends on.
    Blocked,
    /// A failed attempt's successor, waiting for `min_retry_interval_millis`.
    WaitingForRetry,
    Running,
    Terminating,
    Terminated,
    InternalError,
    /// Never run: the workspace was at its limit of active runs, and the run did not ask to
    /// be queued.
    Skipped,
}

impl LifeCycle {
    pub fn as_str(self) -> &'static str {
        match self {
            LifeCycle::Queued => "QUEUED",
            LifeCycle::Pending => "PENDING",
            LifeCycle::Blocked => "BLOCKED",
            LifeCycle::WaitingForRetry => "WAITING_FOR_RETRY",
            LifeCycle::Running => "RUNNING",
            LifeCycle::Terminating => "TERMINATING",
            LifeCycle::Terminated => "TERMINATED",
            LifeCycle::InternalError => "INTERNAL_ERROR",
            LifeCycle::Skipped => "SKIPPED",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            LifeCycle::Terminated | LifeCycle::InternalError | LifeCycle::Skipped
        )
    }

    /// The simpler `status.state` of the 2.1+ API.
    pub fn status_state(self) -> &'static str {
        match self {
            LifeCycle::Queued => "QUEUED",
            LifeCycle::Pending => "PENDING",
            LifeCycle::Blocked => "BLOCKED",
            LifeCycle::WaitingForRetry => "WAITING",
            LifeCycle::Running => "RUNNING",
            LifeCycle::Terminating => "TERMINATING",
            LifeCycle::Terminated | LifeCycle::InternalError | LifeCycle::Skipped => "TERMINATED",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResultState {
    Success,
    Failed,
    TimedOut,
    Canceled,
    /// Not run: a task it depends on failed.
    UpstreamFailed,
    /// Not run: its `run_if` condition was not met.
    Excluded,
}

impl ResultState {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultState::Success => "SUCCESS",
            ResultState::Failed => "FAILED",
            ResultState::TimedOut => "TIMEDOUT",
            ResultState::Canceled => "CANCELED",
            ResultState::UpstreamFailed => "UPSTREAM_FAILED",
            ResultState::Excluded => "EXCLUDED",
        }
    }
}

/// Why a run ended, as `status.termination_details` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Termination {
    Success,
    RunFailed,
    NotebookMissing,
    CheckoutFailed,
    UserCanceled,
    TimedOut,
    Internal,
    /// Skipped at the workspace's limit of active runs.
    RunLimit,
}

impl Termination {
    pub fn code(self) -> &'static str {
        match self {
            Termination::Success => "SUCCESS",
            Termination::RunFailed => "RUN_EXECUTION_ERROR",
            Termination::NotebookMissing => "RESOURCE_NOT_FOUND",
            Termination::CheckoutFailed => "REPOSITORY_CHECKOUT_FAILED",
            Termination::UserCanceled => "USER_CANCELED",
            // Databricks reports a run it stopped itself (e.g. a timeout) as CANCELED.
            Termination::TimedOut => "CANCELED",
            Termination::Internal => "INTERNAL_ERROR",
            Termination::RunLimit => "WORKSPACE_RUN_LIMIT_EXCEEDED",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Termination::Success | Termination::UserCanceled => "SUCCESS",
            Termination::Internal => "INTERNAL_ERROR",
            _ => "CLIENT_ERROR",
        }
    }
}

/// The `state` of a run or task run.
#[derive(Clone, Debug)]
pub(crate) struct RunState {
    pub life_cycle: LifeCycle,
    /// Only once terminal.
    pub result: Option<ResultState>,
    pub message: String,
    pub user_cancelled_or_timedout: bool,
    /// Only once terminal.
    pub termination: Option<Termination>,
}

impl RunState {
    fn active(life_cycle: LifeCycle) -> Self {
        RunState {
            life_cycle,
            result: None,
            message: String::new(),
            user_cancelled_or_timedout: false,
            termination: None,
        }
    }

    /// Never run: the workspace was at its limit, and the run did not ask to be queued.
    fn skipped(limit: usize) -> Self {
        RunState {
            life_cycle: LifeCycle::Skipped,
            result: None,
            message: format!(
                "The run was skipped: the workspace has reached its limit of {limit} active runs. Submit it with queue enabled to queue it instead."
            ),
            user_cancelled_or_timedout: false,
            termination: Some(Termination::RunLimit),
        }
    }

    fn ended(
        life_cycle: LifeCycle,
        result: ResultState,
        message: String,
        termination: Termination,
    ) -> Self {
        RunState {
            life_cycle,
            result: Some(result),
            message,
            user_cancelled_or_timedout: matches!(
                result,
                ResultState::Canceled | ResultState::TimedOut
            ),
            termination: Some(termination),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopReason {
    Cancelled,
    RunTimedOut { after_secs: u64 },
    TaskTimedOut { after_secs: u64 },
}

impl StopReason {
    fn end_state(self) -> RunState {
        let (result, message, termination) = match self {
            StopReason::Cancelled => (
                ResultState::Canceled,
                "Run cancelled.".to_string(),
                Termination::UserCanceled,
            ),
            StopReason::RunTimedOut { after_secs } => (
                ResultState::TimedOut,
                format!("Run timed out after {after_secs} seconds."),
                Termination::TimedOut,
            ),
            StopReason::TaskTimedOut { after_secs } => (
                ResultState::TimedOut,
                format!("Task timed out after {after_secs} seconds."),
                Termination::TimedOut,
            ),
        };
        RunState::ended(LifeCycle::Terminated, result, message, termination)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotebookSource {
    Workspace,
    Git,
}

impl NotebookSource {
    pub fn as_str(self) -> &'static str {
        match self {
            NotebookSource::Workspace => "WORKSPACE",
            NotebookSource::Git => "GIT",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Compute {
    ExistingCluster(String),
    NewCluster(Value),
    Serverless,
}

/// A validated task of a `runs/submit` request.
#[derive(Clone, Debug)]
pub(crate) struct TaskSpec {
    pub task_key: String,
    pub notebook_path: String,
    pub source: NotebookSource,
    pub base_parameters: BTreeMap<String, String>,
    pub compute: Compute,
    pub timeout_seconds: u64,
    pub depends_on: Vec<String>,
    pub run_if: RunIf,
    pub retry: RetryPolicy,
    /// Its own `libraries`, or its serverless environment's dependencies.
    pub libraries: Vec<Library>,
}

#[derive(Clone, Debug)]
pub(crate) struct GitSourceSpec {
    pub url: String,
    pub provider: &'static str,
    pub reference: GitRef,
}

/// A validated `runs/submit` request.
#[derive(Clone, Debug)]
pub(crate) struct RunSpec {
    pub run_name: String,
    pub tasks: Vec<TaskSpec>,
    pub git_source: Option<GitSourceSpec>,
    pub timeout_seconds: u64,
    pub idempotency_token: Option<String>,
    /// Submitted in the Jobs 2.0 single-task form (top-level `notebook_task`).
    pub single_task_form: bool,
    /// `run_as`, as `field: who`.
    pub run_as: Option<String>,
    /// `queue.enabled`: at the workspace's limit of active runs the run waits (QUEUED)
    /// instead of being skipped.
    pub queue: bool,
    pub performance_target: Option<String>,
    pub budget_policy_id: Option<String>,
}

/// One attempt of a task: a retry is a new task run with the same key, listed after the one
/// it follows.
pub(crate) struct TaskRun {
    pub run_id: i64,
    pub attempt_number: u32,
    pub original_attempt_run_id: i64,
    pub spec: TaskSpec,
    pub state: RunState,
    pub start_time: i64,
    pub running_since: Option<i64>,
    pub terminating_since: Option<i64>,
    pub end_time: Option<i64>,
    pub output: Option<NotebookOutcome>,
    /// What became of its libraries when it started.
    pub libraries: Vec<Installed>,
}

impl TaskRun {
    fn attempt(
        run_id: i64,
        attempt_number: u32,
        original_attempt_run_id: i64,
        spec: TaskSpec,
        life_cycle: LifeCycle,
        now: i64,
    ) -> TaskRun {
        TaskRun {
            run_id,
            attempt_number,
            original_attempt_run_id,
            spec,
            state: RunState::active(life_cycle),
            start_time: now,
            running_since: None,
            terminating_since: None,
            end_time: None,
            output: None,
            libraries: Vec::new(),
        }
    }

    /// `(setup, execution, cleanup)` in ms, as far as the task got.
    pub fn durations(&self) -> (i64, i64, i64) {
        let setup_end = self
            .running_since
            .or(self.terminating_since)
            .or(self.end_time);
        let setup = setup_end.map_or(0, |t| t - self.start_time);
        let execution = match (self.running_since, self.terminating_since) {
            (Some(from), Some(to)) => to - from,
            _ => 0,
        };
        let cleanup = match (self.terminating_since, self.end_time) {
            (Some(from), Some(to)) => to - from,
            _ => 0,
        };
        (setup, execution, cleanup)
    }
}

pub(crate) struct RunRecord {
    pub run_id: i64,
    pub job_id: i64,
    pub spec: RunSpec,
    pub start_time: i64,
    pub used_commit: Option<String>,
    /// Every attempt of every task, in the order they were created.
    pub tasks: Vec<TaskRun>,
    /// The most tasks of this run that were RUNNING at once.
    pub peak_running: usize,
    /// `runs/get` reads of this run: of its first page (one a poll), and of the pages after.
    pub first_page_reads: std::sync::atomic::AtomicU64,
    pub later_page_reads: std::sync::atomic::AtomicU64,
    stop: watch::Sender<Option<StopReason>>,
}

impl RunRecord {
    /// The latest attempt of each task, in the order they were submitted.
    pub fn latest_attempts(&self) -> Vec<&TaskRun> {
        self.spec
            .tasks
            .iter()
            .filter_map(|spec| {
                self.tasks
                    .iter()
                    .rev()
                    .find(|t| t.spec.task_key == spec.task_key)
            })
            .collect()
    }

    /// The parent run's state, derived from the latest attempt of each task.
    pub fn state(&self) -> RunState {
        let tasks = self.latest_attempts();
        let all = |f: fn(LifeCycle) -> bool| tasks.iter().all(|t| f(t.state.life_cycle));
        let started = self.tasks.iter().any(|t| t.running_since.is_some());
        if let Some(first) = tasks.first() {
            if all(|l| l == LifeCycle::Skipped) {
                return first.state.clone();
            }
        }
        if !all(LifeCycle::is_terminal) {
            let life_cycle = if all(|l| l == LifeCycle::Queued) {
                LifeCycle::Queued
            } else if all(|l| l == LifeCycle::Terminating || l.is_terminal()) {
                LifeCycle::Terminating
            } else if !started && all(|l| matches!(l, LifeCycle::Pending | LifeCycle::Blocked)) {
                LifeCycle::Pending
            } else {
                LifeCycle::Running
            };
            return RunState::active(life_cycle);
        }
        // A stop that came too late to interrupt any task does not change the outcome.
        let interrupted = tasks.iter().any(|t| t.state.user_cancelled_or_timedout);
        if let (Some(reason), true) = (*self.stop.borrow(), interrupted) {
            return reason.end_state();
        }
        let failed: Vec<&TaskRun> = tasks
            .iter()
            .copied()
            .filter(|t| {
                !matches!(
                    t.state.result,
                    Some(ResultState::Success | ResultState::Excluded)
                )
            })
            .collect();
        let Some(first) = failed.first() else {
            return RunState::ended(
                LifeCycle::Terminated,
                ResultState::Success,
                String::new(),
                Termination::Success,
            );
        };
        let life_cycle = if failed
            .iter()
            .any(|t| t.state.life_cycle == LifeCycle::InternalError)
        {
            LifeCycle::InternalError
        } else {
            LifeCycle::Terminated
        };
        let result = if failed
            .iter()
            .all(|t| t.state.result == Some(ResultState::TimedOut))
        {
            ResultState::TimedOut
        } else {
            ResultState::Failed
        };
        let message = if failed.len() == 1 {
            format!(
                "Task {} failed with message: {}",
                first.spec.task_key, first.state.message
            )
        } else {
            let keys: Vec<&str> = failed.iter().map(|t| t.spec.task_key.as_str()).collect();
            format!(
                "{} of {} tasks failed: {}.",
                failed.len(),
                tasks.len(),
                keys.join(", ")
            )
        };
        let termination = first.state.termination.unwrap_or(Termination::RunFailed);
        RunState::ended(life_cycle, result, message, termination)
    }

    pub fn end_time(&self) -> Option<i64> {
        if self.state().life_cycle.is_terminal() {
            self.tasks
                .iter()
                .filter_map(|t| t.end_time)
                .max()
                .or(Some(self.start_time))
        } else {
            None
        }
    }
}

pub(crate) enum Found<'a> {
    Run(&'a RunRecord),
    Task(&'a RunRecord, &'a TaskRun),
}

pub(crate) struct Runs {
    runs: BTreeMap<i64, RunRecord>,
    /// Task run id → parent run id.
    task_owner: HashMap<i64, i64>,
    idempotency: HashMap<String, i64>,
    next_run_id: i64,
    next_job_id: i64,
}

impl Default for Runs {
    fn default() -> Self {
        Runs {
            runs: BTreeMap::new(),
            task_owner: HashMap::new(),
            idempotency: HashMap::new(),
            // Realistically long ids, still exact as JavaScript numbers.
            next_run_id: 731_000_000_000_001,
            next_job_id: 402_000_000_000_001,
        }
    }
}

impl Runs {
    /// Registers a submitted run; returns its id and whether it is new. A known idempotency
    /// token returns the run it first created instead.
    pub fn create(&mut self, spec: RunSpec) -> (i64, bool) {
        if let Some(existing) = spec
            .idempotency_token
            .as_ref()
            .and_then(|t| self.idempotency.get(t))
        {
            return (*existing, false);
        }
        let run_id = self.take_id();
        let job_id = self.next_job_id;
        self.next_job_id += 1;
        let now = now_ms();
        let tasks = spec
            .tasks
            .iter()
            .map(|task| {
                let id = self.take_id();
                let first = if task.depends_on.is_empty() {
                    LifeCycle::Pending
                } else {
                    LifeCycle::Blocked
                };
                TaskRun::attempt(id, 0, id, task.clone(), first, now)
            })
            .collect::<Vec<_>>();
        for task in &tasks {
            self.task_owner.insert(task.run_id, run_id);
        }
        if let Some(token) = &spec.idempotency_token {
            self.idempotency.insert(token.clone(), run_id);
        }
        let (stop, _) = watch::channel(None);
        let record = RunRecord {
            run_id,
            job_id,
            spec,
            start_time: now,
            used_commit: None,
            tasks,
            peak_running: 0,
            first_page_reads: Default::default(),
            later_page_reads: Default::default(),
            stop,
        };
        self.runs.insert(run_id, record);
        (run_id, true)
    }

    fn take_id(&mut self) -> i64 {
        let id = self.next_run_id;
        self.next_run_id += 1;
        id
    }

    pub fn find(&self, id: i64) -> Option<Found<'_>> {
        if let Some(run) = self.runs.get(&id) {
            return Some(Found::Run(run));
        }
        let run = self.runs.get(self.task_owner.get(&id)?)?;
        let task = run.tasks.iter().find(|t| t.run_id == id)?;
        Some(Found::Task(run, task))
    }

    pub fn all(&self) -> impl Iterator<Item = &RunRecord> {
        self.runs.values()
    }

    /// Asks a run to stop (a cancel, or its timeout). No effect on a run that already ended or
    /// is already stopping; `id` may be a task run's.
    pub fn stop(&self, id: i64, reason: StopReason) {
        let run = match self.find(id) {
            Some(Found::Run(run)) | Some(Found::Task(run, _)) => run,
            None => return,
        };
        if run.state().life_cycle.is_terminal() {
            return;
        }
        run.stop.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(reason);
            }
            first
        });
    }

    fn task_mut(&mut self, run_id: i64, index: usize) -> Option<&mut TaskRun> {
        self.runs.get_mut(&run_id)?.tasks.get_mut(index)
    }

    /// Ends attempt `index` in `state`. When the retry policy asks for another attempt (and
    /// the run is not stopping), it is created in the same step, WAITING_FOR_RETRY, so the
    /// run never looks finished in between; returns its index.
    fn end_attempt(
        &mut self,
        run_id: i64,
        index: usize,
        state: RunState,
        output: Option<NotebookOutcome>,
        may_retry: bool,
    ) -> Option<usize> {
        let next_id = self.next_run_id;
        let run = self.runs.get_mut(&run_id)?;
        let stopping = run.stop.borrow().is_some();
        let task = run.tasks.get_mut(index)?;
        let result = state.result;
        task.state = state;
        task.end_time = Some(now_ms());
        task.output = output;
        let again = may_retry
            && !stopping
            && result.is_some_and(|r| task.spec.retry.retries(task.attempt_number, r));
        if !again {
            return None;
        }
        let next = TaskRun::attempt(
            next_id,
            task.attempt_number + 1,
            task.original_attempt_run_id,
            task.spec.clone(),
            LifeCycle::WaitingForRetry,
            now_ms(),
        );
        run.tasks.push(next);
        let next_index = run.tasks.len() - 1;
        self.next_run_id += 1;
        self.task_owner.insert(next_id, run_id);
        Some(next_index)
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

// ----- drivers -----

/// Starts driving a newly created run in the background.
pub(crate) fn launch(shared: &Arc<Shared>, run_id: i64) {
    let driver = drive_run(shared.clone(), run_id);
    shared.spawn(driver);
}

async fn drive_run(shared: Arc<Shared>, run_id: i64) {
    let Some((mut stop, timeout_seconds, task_count, git_source, queue)) = ({
        let runs = lock(&shared.runs);
        runs.runs.get(&run_id).map(|run| {
            (
                run.stop.subscribe(),
                run.spec.timeout_seconds,
                run.tasks.len(),
                run.spec.git_source.clone(),
                run.spec.queue,
            )
        })
    }) else {
        return;
    };
    // Held until the run is over: one of the workspace's active runs.
    let Some(_slot) = take_run_slot(&shared, run_id, task_count, queue, &mut stop).await else {
        return;
    };
    let run_dir = shared.root.join("runs").join(run_id.to_string());

    let mut body = pin!(run_tasks(
        &shared, run_id, task_count, git_source, stop, &run_dir
    ));
    if timeout_seconds > 0 {
        tokio::select! {
            () = &mut body => {}
            () = sleep(Duration::from_secs(timeout_seconds)) => {
                lock(&shared.runs).stop(run_id, StopReason::RunTimedOut { after_secs: timeout_seconds });
                body.await;
            }
        }
    } else {
        body.await;
    }
    // Outputs were read into the run record; the scratch files and checkout can go.
    let _ = tokio::fs::remove_dir_all(&run_dir).await;
}

/// A slot among the workspace's active runs (`max_active_runs`), or `None` when the run ended
/// without one: skipped at the limit without `queue.enabled`, or stopped while it queued.
async fn take_run_slot(
    shared: &Arc<Shared>,
    run_id: i64,
    task_count: usize,
    queue: bool,
    stop: &mut watch::Receiver<Option<StopReason>>,
) -> Option<Option<tokio::sync::OwnedSemaphorePermit>> {
    let Some((slots, limit)) = shared.run_slots.clone() else {
        return Some(None);
    };
    if let Ok(slot) = slots.clone().try_acquire_owned() {
        return Some(Some(slot));
    }
    let set_all = |state: &dyn Fn() -> RunState| {
        for index in 0..task_count {
            update_task(shared, run_id, index, |task| task.state = state());
        }
    };
    if !queue {
        set_all(&|| RunState::skipped(limit));
        return None;
    }
    set_all(&|| RunState::active(LifeCycle::Queued));
    tokio::select! {
        slot = slots.acquire_owned() => {
            for index in 0..task_count {
                update_task(shared, run_id, index, |task| {
                    task.state = RunState::active(if task.spec.depends_on.is_empty() {
                        LifeCycle::Pending
                    } else {
                        LifeCycle::Blocked
                    });
                });
            }
            Some(slot.ok())
        }
        reason = stopped(stop) => {
            for index in 0..task_count {
                end_attempt(shared, run_id, index, reason.end_state(), None, false);
            }
            None
        }
    }
}

async fn run_tasks(
    shared: &Arc<Shared>,
    run_id: i64,
    task_count: usize,
    git_source: Option<GitSourceSpec>,
    mut stop: watch::Receiver<Option<StopReason>>,
    run_dir: &Path,
) {
    // Every task runs from the same checkout, taken once before any task starts.
    let mut checkout = None;
    if let Some(source) = git_source {
        let target = run_dir.join("git");
        let checked_out = tokio::select! {
            result = check_out_git_source(&source, &target) => Some(result),
            _ = stopped(&mut stop) => None,
        };
        match checked_out {
            Some(Ok(commit)) => {
                if let Some(run) = lock(&shared.runs).runs.get_mut(&run_id) {
                    run.used_commit = Some(commit);
                }
                checkout = Some(target);
            }
            Some(Err(message)) => {
                let message = format!("Failed to checkout Git repository: {message}");
                for index in 0..task_count {
                    let state = RunState::ended(
                        LifeCycle::InternalError,
                        ResultState::Failed,
                        message.clone(),
                        Termination::CheckoutFailed,
                    );
                    end_attempt(shared, run_id, index, state, None, false);
                }
                return;
            }
            // Stopped while cloning: the tasks see the stop at once and wind down.
            None => {}
        }
    }
    // Counts the tasks that are over for good (no retry to come): dependents wait on it.
    let (settled, _) = watch::channel(0u64);
    let drivers = (0..task_count).map(|index| {
        drive_task(
            shared,
            run_id,
            index,
            stop.clone(),
            checkout.as_deref(),
            &settled,
        )
    });
    futures::future::join_all(drivers).await;
}

/// One task from its first attempt to its last: waits for the tasks it depends on, then runs
/// attempts until one needs no retry.
async fn drive_task(
    shared: &Arc<Shared>,
    run_id: i64,
    first: usize,
    mut stop: watch::Receiver<Option<StopReason>>,
    git_checkout: Option<&Path>,
    settled: &watch::Sender<u64>,
) {
    if wait_for_upstream(shared, run_id, first, &mut stop, settled).await {
        let mut attempt = first;
        while let Some(next) =
            drive_attempt(shared, run_id, attempt, stop.clone(), git_checkout).await
        {
            let interval = lock(&shared.runs)
                .task_mut(run_id, next)
                .map_or(Duration::ZERO, |t| t.spec.retry.min_interval);
            tokio::select! {
                () = sleep(interval) => {}
                reason = stopped(&mut stop) => {
                    wind_down(shared, run_id, next, Ended::Stopped(reason)).await;
                    break;
                }
            }
            update_task(shared, run_id, next, |task| {
                task.state = RunState::active(LifeCycle::Pending);
            });
            attempt = next;
        }
    }
    settled.send_modify(|count| *count += 1);
}

/// BLOCKED until every task `first` depends on is over for good, then decides with its
/// `run_if` whether it runs. Returns whether it does; if not, it has ended.
async fn wait_for_upstream(
    shared: &Arc<Shared>,
    run_id: i64,
    first: usize,
    stop: &mut watch::Receiver<Option<StopReason>>,
    settled: &watch::Sender<u64>,
) -> bool {
    let Some((upstream, run_if)) = lock(&shared.runs)
        .task_mut(run_id, first)
        .map(|t| (t.spec.depends_on.clone(), t.spec.run_if))
    else {
        return false;
    };
    if upstream.is_empty() {
        return true;
    }
    let mut changes = settled.subscribe();
    let results = loop {
        if let Some(results) = upstream_results(shared, run_id, &upstream) {
            break results;
        }
        tokio::select! {
            _ = changes.changed() => {}
            reason = stopped(stop) => {
                wind_down(shared, run_id, first, Ended::Stopped(reason)).await;
                return false;
            }
        }
    };
    match run_if.decide(&results) {
        Decision::Run => {
            update_task(shared, run_id, first, |task| {
                task.state = RunState::active(LifeCycle::Pending);
            });
            true
        }
        Decision::Skip(result) => {
            let (message, termination) = if result == ResultState::UpstreamFailed {
                ("Upstream task failed.", Termination::RunFailed)
            } else {
                (
                    "The task's run_if condition was not met.",
                    Termination::Success,
                )
            };
            let state = RunState::ended(
                LifeCycle::Terminated,
                result,
                message.to_string(),
                termination,
            );
            end_attempt(shared, run_id, first, state, None, false);
            false
        }
    }
}

/// The final results of the tasks `keys`, once every one of them is over for good.
fn upstream_results(shared: &Shared, run_id: i64, keys: &[String]) -> Option<Vec<ResultState>> {
    let runs = lock(&shared.runs);
    let run = runs.runs.get(&run_id)?;
    keys.iter()
        .map(|key| {
            let latest = run.tasks.iter().rev().find(|t| &t.spec.task_key == key)?;
            latest
                .state
                .life_cycle
                .is_terminal()
                .then(|| latest.state.result.unwrap_or(ResultState::Failed))
        })
        .collect()
}

async fn check_out_git_source(source: &GitSourceSpec, target: &Path) -> Result<String, String> {
    let describe = |e: GitError| {
        match e {
        GitError::NeedsCredentials => {
            "Missing Git provider credentials. Go to User Settings > Git integration to add your personal access token.".to_string()
        }
        GitError::UnknownRef(name) => format!("Reference '{name}' does not exist in the repository {}.", source.url),
        GitError::Failed(message) => message,
    }
    };
    let origin = git::clone_source(&source.url).map_err(describe)?;
    git::clone(origin, target, None).await.map_err(describe)?;
    git::checkout_detached(target, &source.reference)
        .await
        .map_err(describe)
}

/// How the RUNNING phase of a task ended.
enum Ended {
    Exited(NotebookOutcome),
    Stopped(StopReason),
}

/// One attempt, PENDING to its end; returns the index of the attempt that follows it, if any.
async fn drive_attempt(
    shared: &Arc<Shared>,
    run_id: i64,
    index: usize,
    mut stop: watch::Receiver<Option<StopReason>>,
    git_checkout: Option<&Path>,
) -> Option<usize> {
    let (task_run_id, spec) = lock(&shared.runs)
        .task_mut(run_id, index)
        .map(|task| (task.run_id, task.spec.clone()))?;

    tokio::select! {
        () = sleep(shared.pending) => {}
        reason = stopped(&mut stop) => return wind_down(shared, run_id, index, Ended::Stopped(reason)).await,
    }

    // The attempt could not start: INTERNAL_ERROR, which a retry may follow.
    let could_not_start = |message: String, termination| {
        let state = RunState::ended(
            LifeCycle::InternalError,
            ResultState::Failed,
            message,
            termination,
        );
        end_attempt(shared, run_id, index, state, None, true)
    };
    let notebook = match locate_notebook(shared, &spec, git_checkout).await {
        Ok(notebook) => notebook,
        Err(message) => return could_not_start(message, Termination::NotebookMissing),
    };
    let (library_path, installed) = match libraries::install(
        &spec.libraries,
        &shared.volumes_root(),
        &shared.workspace_files_root(),
    ) {
        Ok(installed) => installed,
        Err(message) => return could_not_start(message, Termination::Internal),
    };
    update_task(shared, run_id, index, |task| task.libraries = installed);
    let work_dir = shared
        .root
        .join("runs")
        .join(run_id.to_string())
        .join(task_run_id.to_string());
    // A notebook's `/Workspace/Repos/...` paths are the repos' checkouts, as they are now.
    let repo_checkouts: Vec<(String, PathBuf)> = lock(&shared.workspace)
        .repos
        .values()
        .map(|repo| (repo.path.clone(), repo.checkout.clone()))
        .collect();
    // RUNNING before the process exists, so nothing the notebook does can predate it.
    mark_running(shared, run_id, index);
    let started = notebook::start(NotebookJob {
        python: &shared.python,
        runner: &shared.runner_script,
        notebook: &notebook.file,
        sys_path: notebook_sys_path(&notebook)
            .into_iter()
            .chain(library_path)
            .collect(),
        base_parameters: &spec.base_parameters,
        work_dir: &work_dir,
        volumes: &shared.volumes_root(),
        workspace_files: &shared.workspace_files_root(),
        repo_checkouts,
    })
    .await;
    let mut process = match started {
        Ok(process) => process,
        Err(e) => {
            let message = format!(
                "Could not start the Python interpreter '{}': {e}",
                shared.python
            );
            return could_not_start(message, Termination::Internal);
        }
    };

    let task_timeout = async {
        match spec.timeout_seconds {
            0 => pending().await,
            secs => sleep(Duration::from_secs(secs)).await,
        }
    };
    let ended = tokio::select! {
        status = process.wait() => Ended::Exited(process.outcome(status).await),
        reason = stopped(&mut stop) => Ended::Stopped(reason),
        () = task_timeout => Ended::Stopped(StopReason::TaskTimedOut { after_secs: spec.timeout_seconds }),
    };
    if matches!(ended, Ended::Stopped(_)) {
        process.kill().await;
    }
    wind_down(shared, run_id, index, ended).await
}

fn mark_running(shared: &Shared, run_id: i64, index: usize) {
    let mut runs = lock(&shared.runs);
    let Some(run) = runs.runs.get_mut(&run_id) else {
        return;
    };
    if let Some(task) = run.tasks.get_mut(index) {
        task.state = RunState::active(LifeCycle::Running);
        task.running_since = Some(now_ms());
    }
    let running = run
        .tasks
        .iter()
        .filter(|t| t.state.life_cycle == LifeCycle::Running)
        .count();
    run.peak_running = run.peak_running.max(running);
}

/// TERMINATING for a while, then the final state; returns the retry's index, if one follows.
async fn wind_down(shared: &Shared, run_id: i64, index: usize, ended: Ended) -> Option<usize> {
    update_task(shared, run_id, index, |task| {
        task.state = RunState::active(LifeCycle::Terminating);
        task.terminating_since = Some(now_ms());
    });
    sleep(shared.terminating).await;
    let (state, output) = match ended {
        Ended::Exited(outcome) if outcome.succeeded() => (
            RunState::ended(
                LifeCycle::Terminated,
                ResultState::Success,
                String::new(),
                Termination::Success,
            ),
            Some(outcome),
        ),
        Ended::Exited(outcome) => (
            RunState::ended(
                LifeCycle::Terminated,
                ResultState::Failed,
                "Workload failed, see run output for details".to_string(),
                Termination::RunFailed,
            ),
            Some(outcome),
        ),
        Ended::Stopped(reason) => (reason.end_state(), None),
    };
    end_attempt(shared, run_id, index, state, output, true)
}

fn end_attempt(
    shared: &Shared,
    run_id: i64,
    index: usize,
    state: RunState,
    output: Option<NotebookOutcome>,
    may_retry: bool,
) -> Option<usize> {
    lock(&shared.runs).end_attempt(run_id, index, state, output, may_retry)
}

fn update_task(shared: &Shared, run_id: i64, index: usize, change: impl FnOnce(&mut TaskRun)) {
    if let Some(task) = lock(&shared.runs).task_mut(run_id, index) {
        change(task);
    }
}

/// Resolves once the run is asked to stop; never if the run is gone.
async fn stopped(stop: &mut watch::Receiver<Option<StopReason>>) -> StopReason {
    let reason = stop.wait_for(Option::is_some).await.map(|reason| *reason);
    match reason {
        Ok(reason) => reason.expect("waited for Some"),
        Err(_) => pending().await,
    }
}

struct Notebook {
    file: PathBuf,
    /// The repo checkout or git_source clone the notebook comes from.
    root: PathBuf,
}

fn notebook_sys_path(notebook: &Notebook) -> Vec<PathBuf> {
    let dir = notebook.file.parent().map(Path::to_path_buf);
    dir.into_iter().chain([notebook.root.clone()]).collect()
}

async fn locate_notebook(
    shared: &Shared,
    spec: &TaskSpec,
    git_checkout: Option<&Path>,
) -> Result<Notebook, String> {
    let path = &spec.notebook_path;
    let unreachable = || {
        format!(
            "Unable to access the notebook \"{path}\". Either it does not exist, or the identity used to run this job, {USER}, lacks the required permissions."
        )
    };
    match (spec.source, git_checkout) {
        (NotebookSource::Workspace, _) => {
            let location = workspace::find_notebook(shared, path)
                .await
                .ok_or_else(unreachable)?;
            Ok(Notebook {
                file: location.file,
                root: location.repo_root,
            })
        }
        (NotebookSource::Git, Some(checkout)) => {
            let relative = path.trim_start_matches('/');
            let candidates = [
                checkout.join(format!("{relative}.py")),
                checkout.join(relative),
            ];
            for file in candidates {
                let is_python = file.extension().is_some_and(|ext| ext == "py");
                if is_python && tokio::fs::metadata(&file).await.is_ok_and(|m| m.is_file()) {
                    return Ok(Notebook {
                        file,
                        root: checkout.to_path_buf(),
                    });
                }
            }
            Err(unreachable())
        }
        (NotebookSource::Git, None) => Err(unreachable()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(keys: &[&str]) -> RunSpec {
        RunSpec {
            run_name: "test".into(),
            tasks: keys
                .iter()
                .map(|key| TaskSpec {
                    task_key: key.to_string(),
                    notebook_path: "/x".into(),
                    source: NotebookSource::Workspace,
                    base_parameters: BTreeMap::new(),
                    compute: Compute::Serverless,
                    timeout_seconds: 0,
                    depends_on: Vec::new(),
                    run_if: RunIf::default(),
                    retry: RetryPolicy::default(),
                    libraries: Vec::new(),
                })
                .collect(),
            git_source: None,
            queue: false,
            performance_target: None,
            budget_policy_id: None,
            timeout_seconds: 0,
            idempotency_token: Some("token".into()),
            single_task_form: false,
            run_as: None,
        }
    }

    #[test]
    fn idempotency_token_returns_the_first_run() {
        let mut runs = Runs::default();
        let (first, created) = runs.create(spec(&["a"]));
        assert!(created);
        assert_eq!(runs.create(spec(&["a"])), (first, false));
        assert_eq!(runs.all().count(), 1);
    }

    #[test]
    fn parent_state_follows_the_tasks() {
        let mut runs = Runs::default();
        let (id, _) = runs.create(spec(&["a", "b"]));
        let state = |runs: &Runs| match runs.find(id) {
            Some(Found::Run(run)) => run.state(),
            _ => unreachable!(),
        };
        assert_eq!(state(&runs).life_cycle, LifeCycle::Pending);
        runs.task_mut(id, 0).unwrap().state = RunState::active(LifeCycle::Running);
        assert_eq!(state(&runs).life_cycle, LifeCycle::Running);
        let done = |result| {
            RunState::ended(
                LifeCycle::Terminated,
                result,
                String::new(),
                Termination::Success,
            )
        };
        runs.task_mut(id, 0).unwrap().state = done(ResultState::Success);
        runs.task_mut(id, 1).unwrap().state = RunState::active(LifeCycle::Terminating);
        assert_eq!(state(&runs).life_cycle, LifeCycle::Terminating);
        runs.task_mut(id, 1).unwrap().state = done(ResultState::Failed);
        let end = state(&runs);
        assert_eq!(
            (end.life_cycle, end.result),
            (LifeCycle::Terminated, Some(ResultState::Failed))
        );
        assert!(end.message.starts_with("Task b failed"), "{}", end.message);
    }
}
