//! When a task of a run may start and whether it runs again: `depends_on` with `run_if`, and
//! the retry policy (`max_retries`, `min_retry_interval_millis`, `retry_on_timeout`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::runs::ResultState;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum RunIf {
    #[default]
    AllSuccess,
    AllDone,
    NoneFailed,
    AtLeastOneSuccess,
    AllFailed,
    AtLeastOneFailed,
}

const RUN_IF: [(RunIf, &str); 6] = [
    (RunIf::AllSuccess, "ALL_SUCCESS"),
    (RunIf::AllDone, "ALL_DONE"),
    (RunIf::NoneFailed, "NONE_FAILED"),
    (RunIf::AtLeastOneSuccess, "AT_LEAST_ONE_SUCCESS"),
    (RunIf::AllFailed, "ALL_FAILED"),
    (RunIf::AtLeastOneFailed, "AT_LEAST_ONE_FAILED"),
];

/// What a task whose dependencies have settled does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Run,
    /// Ends without running, with this result (`UPSTREAM_FAILED` or `EXCLUDED`).
    Skip(ResultState),
}

impl RunIf {
    pub fn parse(key: &str, value: Option<&str>) -> ApiResult<RunIf> {
        let Some(value) = value else {
            return Ok(RunIf::default());
        };
        RUN_IF
            .iter()
            .find(|(_, name)| *name == value)
            .map(|(run_if, _)| *run_if)
            .ok_or_else(|| {
                let names: Vec<&str> = RUN_IF.iter().map(|(_, name)| *name).collect();
                ApiError::invalid(format!(
                    "Invalid run_if '{value}' in task {key}: expected one of {}.",
                    names.join(", ")
                ))
            })
    }

    pub fn as_str(self) -> &'static str {
        RUN_IF
            .iter()
            .find(|(run_if, _)| *run_if == self)
            .map_or("ALL_SUCCESS", |(_, name)| name)
    }

    /// Decides from the final results of the dependencies.
    pub fn decide(self, upstream: &[ResultState]) -> Decision {
        let failed = |r: &ResultState| {
            matches!(
                r,
                ResultState::Failed
                    | ResultState::TimedOut
                    | ResultState::Canceled
                    | ResultState::UpstreamFailed
            )
        };
        let succeeded = |r: &ResultState| *r == ResultState::Success;
        let any_failed = upstream.iter().any(failed);
        let unmet = if any_failed {
            ResultState::UpstreamFailed
        } else {
            ResultState::Excluded
        };
        let runs = match self {
            RunIf::AllDone => true,
            RunIf::AllSuccess => upstream.iter().all(succeeded),
            RunIf::NoneFailed => !any_failed,
            RunIf::AtLeastOneSuccess => upstream.iter().any(succeeded),
            RunIf::AllFailed => upstream.iter().all(failed),
            RunIf::AtLeastOneFailed => any_failed,
        };
        match (runs, self) {
            (true, _) => Decision::Run,
            // A condition on failures that is not met excludes the task: nothing failed for it.
            (false, RunIf::AllFailed | RunIf::AtLeastOneFailed) => {
                Decision::Skip(ResultState::Excluded)
            }
            (false, _) => Decision::Skip(unmet),
        }
    }
}

/// Reads `depends_on`: a list of `{"task_key": ...}`.
pub(crate) fn parse_depends_on(key: &str, value: Option<Vec<Value>>) -> ApiResult<Vec<String>> {
    let mut keys = Vec::new();
    for entry in value.unwrap_or_default() {
        let upstream = entry
            .get("task_key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "Task {key}: each depends_on entry must be an object with a task_key."
                ))
            })?;
        if entry.get("outcome").is_some() {
            return Err(ApiError::invalid(format!(
                "Task {key}: depends_on.outcome is only allowed for dependencies on condition tasks."
            )));
        }
        if !keys.iter().any(|k| k == upstream) {
            keys.push(upstream.to_string());
        }
    }
    Ok(keys)
}

/// Every dependency names a task of the run, and no task depends on itself, even indirectly.
pub(crate) fn check_dependencies<'a>(
    tasks: impl Iterator<Item = (&'a str, &'a [String])>,
) -> ApiResult<()> {
    let graph: BTreeMap<&str, &[String]> = tasks.collect();
    for (key, upstream) in &graph {
        if let Some(missing) = upstream.iter().find(|u| !graph.contains_key(u.as_str())) {
            return Err(ApiError::invalid(format!(
                "Task {key} depends on {missing}, which is not a task of this run."
            )));
        }
    }
    // Kahn's algorithm: whatever cannot be ordered is part of a cycle.
    let mut done: BTreeSet<&str> = BTreeSet::new();
    loop {
        let ready: Vec<&str> = graph
            .iter()
            .filter(|(key, upstream)| {
                !done.contains(*key) && upstream.iter().all(|u| done.contains(u.as_str()))
            })
            .map(|(key, _)| *key)
            .collect();
        if ready.is_empty() {
            break;
        }
        done.extend(ready);
    }
    match graph.keys().find(|key| !done.contains(*key)) {
        None => Ok(()),
        Some(key) => Err(ApiError::invalid(format!(
            "The tasks of this run have a circular dependency (task {key} is part of it)."
        ))),
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// `-1` retries without end; `0` never.
    pub max_retries: i64,
    pub min_interval: Duration,
    pub on_timeout: bool,
}

impl RetryPolicy {
    pub fn parse(
        key: &str,
        max_retries: Option<i64>,
        min_interval_millis: Option<i64>,
        on_timeout: Option<bool>,
    ) -> ApiResult<RetryPolicy> {
        let max_retries = max_retries.unwrap_or(0);
        if max_retries < -1 {
            return Err(ApiError::invalid(format!(
                "Invalid max_retries {max_retries} in task {key}: it must be -1 (retry indefinitely) or more."
            )));
        }
        let millis = min_interval_millis.unwrap_or(0);
        let millis = u64::try_from(millis).map_err(|_| {
            ApiError::invalid(format!(
                "Invalid min_retry_interval_millis {millis} in task {key}: it must not be negative."
            ))
        })?;
        Ok(RetryPolicy {
            max_retries,
            min_interval: Duration::from_millis(millis),
            on_timeout: on_timeout.unwrap_or(false),
        })
    }

    /// Whether attempt `attempt` (0 first) ending in `result` is followed by another.
    pub fn retries(&self, attempt: u32, result: ResultState) -> bool {
        let left = self.max_retries < 0 || i64::from(attempt) < self.max_retries;
        let retryable = match result {
            ResultState::Failed => true,
            ResultState::TimedOut => self.on_timeout,
            _ => false,
        };
        left && retryable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_if_decides_from_the_upstream_results() {
        use ResultState::*;
        let ok = [Success, Success];
        let mixed = [Success, Failed];
        let failed = [Failed, TimedOut];
        assert_eq!(RunIf::AllSuccess.decide(&ok), Decision::Run);
        assert_eq!(
            RunIf::AllSuccess.decide(&mixed),
            Decision::Skip(UpstreamFailed)
        );
        assert_eq!(
            RunIf::AllSuccess.decide(&[Excluded]),
            Decision::Skip(Excluded)
        );
        assert_eq!(RunIf::AllDone.decide(&failed), Decision::Run);
        assert_eq!(
            RunIf::NoneFailed.decide(&[Success, Excluded]),
            Decision::Run
        );
        assert_eq!(
            RunIf::NoneFailed.decide(&mixed),
            Decision::Skip(UpstreamFailed)
        );
        assert_eq!(RunIf::AtLeastOneSuccess.decide(&mixed), Decision::Run);
        assert_eq!(RunIf::AllFailed.decide(&failed), Decision::Run);
        assert_eq!(RunIf::AllFailed.decide(&mixed), Decision::Skip(Excluded));
        assert_eq!(
            RunIf::AtLeastOneFailed.decide(&ok),
            Decision::Skip(Excluded)
        );
        assert!(RunIf::parse("t", Some("SOMETIMES"))
            .unwrap_err()
            .message
            .contains("ALL_DONE"));
    }

    #[test]
    fn dependencies_must_exist_and_not_loop() {
        let keys = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (a, b, c) = (keys(&[]), keys(&["a"]), keys(&["b"]));
        assert!(
            check_dependencies([("a", &a[..]), ("b", &b[..]), ("c", &c[..])].into_iter()).is_ok()
        );
        let missing = keys(&["z"]);
        assert!(check_dependencies([("a", &missing[..])].into_iter())
            .unwrap_err()
            .message
            .contains("depends on z"));
        let (x, y) = (keys(&["y"]), keys(&["x"]));
        assert!(
            check_dependencies([("x", &x[..]), ("y", &y[..])].into_iter())
                .unwrap_err()
                .message
                .contains("circular")
        );
        let own = keys(&["s"]);
        assert!(check_dependencies([("s", &own[..])].into_iter()).is_err());
    }

    #[test]
    fn retries_follow_the_policy() {
        let policy = RetryPolicy::parse("t", Some(2), Some(10), None).unwrap();
        assert!(policy.retries(0, ResultState::Failed));
        assert!(policy.retries(1, ResultState::Failed));
        assert!(!policy.retries(2, ResultState::Failed));
        assert!(!policy.retries(0, ResultState::TimedOut));
        assert!(!policy.retries(0, ResultState::Canceled));
        let forever = RetryPolicy::parse("t", Some(-1), None, Some(true)).unwrap();
        assert!(forever.retries(500, ResultState::TimedOut));
        assert!(RetryPolicy::parse("t", Some(-2), None, None).is_err());
        assert!(RetryPolicy::parse("t", None, Some(-1), None).is_err());
    }
}
