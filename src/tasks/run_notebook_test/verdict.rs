//! The verdict on a finished run, computed from what Databricks reported and nothing else:
//! each submitted notebook paired with its task, whether it passed and why not, and whether
//! the step passes. No I/O and no printing: the renderers (`report/`) show it.

use crate::databricks::models::{LifeCycleState, ResultState, Run, RunOutput, RunState, RunTask};
use crate::pipeline::Secrets;

use super::settings::Notebook;
use super::test_report::{read_exit_value, Counts, Reported};

/// `TERMINATED SUCCESS`, `RUNNING`, or `UNKNOWN` when Databricks gave no life cycle state.
pub fn describe_state(state: &RunState) -> String {
    let mut text = state
        .life_cycle_state
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_else(|| "UNKNOWN".into());
    if let Some(result) = &state.result_state {
        text = format!("{text} {result}");
    }
    text
}

#[derive(Debug)]
pub struct NotebookResult {
    pub path: String,
    pub task: RunTask,
    pub output: Option<RunOutput>,
    /// Why Databricks' answer gives no trustworthy result for this entry (a submitted notebook
    /// missing or listed twice, a task nobody submitted); it then fails whatever its state.
    pub unverified: Option<String>,
    /// Why its output could not be read (the request failed, or the task run's id is the
    /// run's own): a notebook whose result we could not read whole does not pass.
    pub unread: Option<String>,
    /// The test report the notebook handed back as its exit value, if any.
    pub tests: Reported,
    /// Earlier attempts (`retries`), oldest first; `task` is the last one.
    pub retried: Vec<RunTask>,
    /// Why the attempt before the last failed, from its output.
    pub retried_error: Option<String>,
}

impl NotebookResult {
    /// Keeps the task's output, and reads the test report in its exit value.
    pub fn attach_output(&mut self, output: RunOutput) {
        let notebook_output = output.notebook_output.as_ref();
        let truncated = notebook_output.and_then(|o| o.truncated) == Some(true);
        self.tests = match notebook_output.and_then(|o| o.result.as_deref()) {
            Some(value) => read_exit_value(value, truncated),
            None => Reported::Nothing,
        };
        self.output = Some(output);
    }

    /// The notebook ran to its end (whatever its test cases say). A SUCCESS whose life cycle
    /// is not TERMINATED (SKIPPED, INTERNAL_ERROR, still RUNNING, none) contradicts itself.
    pub fn ran(&self) -> bool {
        let state = &self.task.state;
        self.unverified.is_none()
            && state.result_state == Some(ResultState::Success)
            && state.life_cycle_state == Some(LifeCycleState::Terminated)
    }

    /// What of its result could not be read whole: its output, or the test report it handed
    /// back (cut, too large, malformed, missing). Such a notebook does not pass.
    pub fn unreadable(&self) -> Option<&str> {
        match &self.tests {
            Reported::Unreadable(why) => Some(why),
            _ => self.unread.as_deref(),
        }
    }

    /// It ran, and everything it handed back was read: its test cases decide the rest.
    pub fn ran_and_read(&self) -> bool {
        self.ran() && self.unreadable().is_none()
    }

    /// Its test cases by outcome, when it handed back a report.
    pub fn case_counts(&self) -> Option<Counts> {
        match &self.tests {
            Reported::Report(report) => Some(report.counts()),
            _ => None,
        }
    }

    /// The notebook ran, what it handed back was read whole, and none of its cases failed.
    pub fn succeeded(&self) -> bool {
        self.ran_and_read() && self.case_counts().is_none_or(|c| c.failed == 0)
    }

    /// Attempts made in all (1 without retries).
    pub fn attempts(&self) -> usize {
        self.retried.len() + 1
    }

    /// It passed, but not on its first attempt.
    pub fn flaky(&self) -> bool {
        self.succeeded() && !self.retried.is_empty()
    }

    /// For a flaky notebook, how it passed: `passed on attempt 2 (flaky); attempt 1 failed: …`.
    pub fn flaky_note(&self, secrets: &Secrets) -> Option<String> {
        if !self.flaky() {
            return None;
        }
        Some(format!(
            "passed on attempt {} (flaky); {}",
            self.attempts(),
            self.retry_reason(secrets)?
        ))
    }

    /// What went wrong in the attempt before the last, in one line (masked, shortened).
    fn retry_reason(&self, secrets: &Secrets) -> Option<String> {
        let attempt = self.retried.last()?;
        let why = self
            .retried_error
            .as_deref()
            .or(attempt.state.state_message.as_deref())
            .filter(|m| !m.is_empty())
            .map(|m| secrets.mask(m).first_line().shorten(300).to_string())
            .unwrap_or_else(|| describe_state(&attempt.state));
        Some(format!("attempt {} failed: {why}", self.retried.len()))
    }

    /// The notebook as test cases, as the Tests tab counts them: its report's cases, or itself
    /// as one case when it has no report or did not run to its end.
    pub fn tests_tab_counts(&self) -> Counts {
        match self.case_counts() {
            Some(counts) if self.ran_and_read() => counts,
            _ if self.ran_and_read() => Counts {
                passed: 1,
                ..Counts::default()
            },
            _ if self.task.state.life_cycle_state == Some(LifeCycleState::Skipped) => Counts {
                skipped: 1,
                ..Counts::default()
            },
            _ => Counts {
                failed: 1,
                ..Counts::default()
            },
        }
    }

    pub fn duration_ms(&self) -> Option<i64> {
        let t = &self.task;
        t.run_duration
            .or_else(|| Some(t.setup_duration? + t.execution_duration? + t.cleanup_duration?))
            .or_else(|| Some(t.end_time? - t.start_time?))
            .filter(|d| *d > 0)
    }

    pub fn exit_value(&self) -> Option<&str> {
        self.output
            .as_ref()?
            .notebook_output
            .as_ref()?
            .result
            .as_deref()
    }

    /// Why it did not succeed, in words a user acts on. The server's words are masked before
    /// their first line is taken and shortened, so no part of a secret survives the cut.
    pub fn failure_reason(&self, secrets: &Secrets) -> String {
        if let Some(why) = &self.unverified {
            return why.clone();
        }
        if let Some(why) = self.unreadable().filter(|_| self.ran()) {
            return format!(
                "ended SUCCESS, but does not pass: what it handed back could not be read whole ({why})"
            );
        }
        let reason = self.last_attempt_reason(secrets);
        match self.attempts() {
            1 => reason,
            n => format!("{reason} (attempt {n} of {n})"),
        }
    }

    fn last_attempt_reason(&self, secrets: &Secrets) -> String {
        if self.ran() {
            if let Some(counts) = self.case_counts().filter(|c| c.failed > 0) {
                let total = counts.passed + counts.failed + counts.skipped;
                return format!(
                    "reported failed test cases: {} of {total} failed",
                    counts.failed
                );
            }
        }
        let state = &self.task.state;
        let message = state.state_message.as_deref().filter(|m| !m.is_empty());
        let error = self
            .output
            .as_ref()
            .and_then(|o| o.error.as_deref())
            .filter(|e| !e.is_empty());
        let detail = error
            .or(message)
            .map(|d| format!(": {}", secrets.mask(d).first_line().shorten(300)))
            .unwrap_or_default();
        match (&state.life_cycle_state, &state.result_state) {
            (_, Some(ResultState::TimedOut)) => {
                format!("timed out (the run's timeout_seconds passed){detail}")
            }
            (_, Some(ResultState::Canceled)) => format!("was cancelled{detail}"),
            (Some(lifecycle), Some(ResultState::Success))
                if *lifecycle != LifeCycleState::Terminated =>
            {
                format!(
                    "has no trustworthy result: Databricks says SUCCESS while its life cycle is {lifecycle}{detail}"
                )
            }
            (None, Some(ResultState::Success)) => format!(
                "has no trustworthy result: Databricks says SUCCESS without a life cycle state{detail}"
            ),
            (Some(LifeCycleState::Skipped), _) => format!("was skipped{detail}"),
            (Some(LifeCycleState::InternalError), Some(ResultState::Failed)) if error.is_some() => {
                format!("failed{detail}")
            }
            (Some(LifeCycleState::InternalError), _) => {
                format!("could not run (INTERNAL_ERROR){detail}")
            }
            (_, Some(ResultState::Failed)) => format!("failed{detail}"),
            (_, Some(ResultState::UpstreamFailed | ResultState::UpstreamCanceled)) => {
                format!("did not run because another task failed{detail}")
            }
            (lifecycle, None) => format!(
                "has no result: Databricks reported no result_state (life cycle {}){detail}",
                lifecycle.as_ref().map_or("unknown", |l| l.as_str())
            ),
            (lifecycle, result) => format!(
                "ended in state {}{detail}",
                describe_state(&RunState {
                    life_cycle_state: lifecycle.clone(),
                    result_state: result.clone(),
                    ..Default::default()
                })
            ),
        }
    }
}

/// Pairs each submitted notebook with its task in the run, by task key. Every submitted
/// notebook gets exactly one entry, in the order the user listed them: one whose task is
/// missing or listed twice is unverified, and so is each task the step did not submit
/// (appended after them). An answer that does not match the submission never passes.
///
/// With retries, a task is listed once per attempt (`attempt_number` 0, 1, ...): the last
/// attempt is the result, and every earlier one must have failed. More attempts than
/// `attempts_allowed`, two with the same number, or a gap is not an answer to trust.
pub fn match_tasks(
    run: &Run,
    notebooks: &[Notebook],
    attempts_allowed: u32,
) -> Vec<NotebookResult> {
    let run_id = run
        .run_id
        .map_or_else(|| "the run".to_string(), |id| format!("run {id}"));
    let mut results: Vec<NotebookResult> = notebooks
        .iter()
        .map(|notebook| {
            let key = notebook.task_key.as_str();
            let mut attempts: Vec<&RunTask> = run
                .tasks
                .iter()
                .filter(|t| t.task_key.as_deref() == Some(key))
                .collect();
            attempts.sort_by_key(|t| t.attempt_number.unwrap_or(0));
            let numbered_in_order = attempts
                .iter()
                .enumerate()
                .all(|(n, t)| t.attempt_number.unwrap_or(0) == n as i64);
            let distrust = |why: String| Some(format!("has no trustworthy result: {run_id} {why}"));
            let unverified = match attempts.len() {
                0 => Some(format!(
                    "has no result: {run_id} does not list its task ({key}) although it was submitted"
                )),
                1 => None,
                n if !numbered_in_order => {
                    distrust(format!("lists its task ({key}) {n} times"))
                }
                n if n > attempts_allowed as usize => distrust(format!(
                    "lists {n} attempts of its task ({key}), but at most {attempts_allowed} were allowed"
                )),
                _ if attempts[..attempts.len() - 1]
                    .iter()
                    .any(|t| !failed_for_good(t)) =>
                {
                    distrust(format!(
                        "lists a retry of its task ({key}) after an attempt that did not fail"
                    ))
                }
                _ => None,
            };
            let (task, retried) = match attempts.split_last() {
                Some((last, earlier)) => (
                    (*last).clone(),
                    earlier.iter().map(|t| (*t).clone()).collect(),
                ),
                None => (
                    RunTask {
                        task_key: Some(key.to_string()),
                        ..RunTask::default()
                    },
                    Vec::new(),
                ),
            };
            NotebookResult {
                path: notebook.path.clone(),
                task,
                output: None,
                unverified,
                unread: None,
                tests: Reported::Nothing,
                retried,
                retried_error: None,
            }
        })
        .collect();
    let submitted = |task: &&RunTask| {
        notebooks
            .iter()
            .any(|n| task.task_key.as_deref() == Some(n.task_key.as_str()))
    };
    for task in run.tasks.iter().filter(|t| !submitted(t)) {
        let key = task
            .task_key
            .as_deref()
            .map_or_else(|| "no task key".to_string(), |k| format!("task key {k}"));
        results.push(NotebookResult {
            // Named apart from the submitted notebooks: it may report one of their paths.
            path: format!("{} (unexpected task)", stranger_name(task)),
            task: task.clone(),
            output: None,
            unverified: Some(format!(
                "was not submitted by this step ({key}): {run_id} does not match what was submitted"
            )),
            unread: None,
            tests: Reported::Nothing,
            retried: Vec::new(),
            retried_error: None,
        });
    }
    results
}

/// An attempt that is over and did not succeed: one that may be followed by a retry.
fn failed_for_good(task: &RunTask) -> bool {
    let state = &task.state;
    state
        .life_cycle_state
        .as_ref()
        .is_some_and(LifeCycleState::is_terminal)
        && matches!(
            state.result_state,
            Some(ResultState::Failed | ResultState::TimedOut) | None
        )
}

/// What a task the step did not submit says it ran, or its key.
fn stranger_name(task: &RunTask) -> String {
    let reported = task.notebook_task.as_ref();
    match (
        reported.and_then(|t| t.notebook_path.as_deref()),
        &task.task_key,
    ) {
        (Some(path), _) => path.to_string(),
        (None, Some(key)) => format!("task {key}"),
        (None, None) => "a task without a key".to_string(),
    }
}

/// Whether the step passes, in the words the log and the JSON document use.
#[derive(Debug)]
pub struct Verdict {
    /// The run's result state, or its whole state when it has none.
    pub run_result: String,
    /// `Ok(summary line)` when the step passes; otherwise `Err(the step's failure message)`.
    pub outcome: Result<String, String>,
    /// It passes, but with something to look at (failed test cases that do not fail the step).
    pub issues: bool,
    /// Test cases over all notebooks, as the Tests tab counts them.
    pub tests: Counts,
    /// Whether failed test cases fail the step (`failOnFailedTests`).
    pub failed_cases_fail: bool,
}

/// Judges a finished run from its notebooks' results (from [`match_tasks`]). With
/// `fail_on_failed_tests`, a notebook that ran but reported failed cases fails the step.
pub fn judge(
    run_id: i64,
    run: &Run,
    results: &[NotebookResult],
    fail_on_failed_tests: bool,
) -> Verdict {
    let run_result = run
        .state
        .result_state
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_else(|| describe_state(&run.state));
    let total = results.len();
    let passes = |r: &NotebookResult| {
        if fail_on_failed_tests {
            r.succeeded()
        } else {
            r.ran_and_read()
        }
    };
    let failed = results.iter().filter(|r| !passes(r)).count();
    let mut tests = Counts::default();
    results.iter().for_each(|r| tests.add(r.tests_tab_counts()));
    let reported = results.iter().any(|r| r.case_counts().is_some());
    let with_failed_cases = results
        .iter()
        .filter(|r| r.ran_and_read() && !r.succeeded())
        .count();
    let flaky = results.iter().filter(|r| r.flaky()).count();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut cases = if reported {
        format!("; test cases: {}", tests.describe())
    } else {
        String::new()
    };
    if flaky > 0 {
        cases.push_str(&format!("; {flaky} passed only on a retry (flaky)"));
    }
    let outcome =
        if failed == 0 && total > 0 && run.state.result_state == Some(ResultState::Success) {
            Ok(format!(
                "{total} of {total} notebook{} passed{cases}{}",
                plural(total),
                if with_failed_cases > 0 {
                    " (failOnFailedTests is false)"
                } else {
                    ""
                }
            ))
        } else if total == 0 {
            Err(format!(
                "run {run_id} ended {run_result}: {}",
                run.state.state_message.as_deref().unwrap_or("no task ran")
            ))
        } else if failed == 0 {
            Err(format!(
                "every notebook passed, but run {run_id} did not succeed ({run_result}): {}",
                run.state
                    .state_message
                    .as_deref()
                    .filter(|m| !m.is_empty())
                    .unwrap_or("Databricks gave no reason")
            ))
        } else {
            let unverified = results.iter().filter(|r| r.unverified.is_some()).count();
            Err(format!(
                "{failed} of {total} notebook{} did not pass (run {run_id}: {run_result}){}{cases}",
                plural(total),
                match unverified {
                    0 => String::new(),
                    n => format!("; {n} without a trustworthy result from Databricks"),
                }
            ))
        };
    Verdict {
        failed_cases_fail: fail_on_failed_tests,
        issues: outcome.is_ok() && (with_failed_cases > 0 || flaky > 0),
        run_result,
        outcome,
        tests,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn notebooks(keys: &[&str]) -> Vec<Notebook> {
        keys.iter()
            .map(|k| Notebook {
                path: format!("/n/{k}"),
                task_key: k.to_string(),
            })
            .collect()
    }

    /// A run whose tasks have these keys (`-` = no key), all SUCCESS.
    fn run(keys: &[&str]) -> Run {
        let tasks: Vec<serde_json::Value> = keys
            .iter()
            .map(|k| {
                let mut task = json!({ "state": { "life_cycle_state": "TERMINATED", "result_state": "SUCCESS" } });
                if *k != "-" {
                    task["task_key"] = json!(k);
                }
                task
            })
            .collect();
        serde_json::from_value(json!({ "run_id": 9, "tasks": tasks })).unwrap()
    }

    #[test]
    fn every_submitted_notebook_gets_one_entry_and_strangers_fail() {
        #[rustfmt::skip]
        let cases: &[(&[&str], &[&str], &[&str])] = &[
            // submitted, listed by runs/get, entries (path: passes or why not)
            (&["a", "b"], &["b", "a"], &["/n/a: pass", "/n/b: pass"]),
            (&["a", "b"], &["a"], &["/n/a: pass", "/n/b: does not list its task (b)"]),
            (&["a"], &[], &["/n/a: does not list its task (a)"]),
            (&["a", "b"], &["a", "b", "b"], &["/n/a: pass", "/n/b: lists its task (b) 2 times"]),
            (&["a"], &["a", "x"], &["/n/a: pass", "task x (unexpected task): was not submitted by this step (task key x)"]),
            (&["a"], &["-"], &["/n/a: does not list its task (a)", "a task without a key (unexpected task): was not submitted by this step (no task key)"]),
        ];
        for (submitted, listed, expected) in cases {
            let entries: Vec<String> = match_tasks(&run(listed), &notebooks(submitted), 1)
                .iter()
                .map(|r| match (&r.unverified, r.succeeded()) {
                    (None, true) => format!("{}: pass", r.path),
                    (Some(why), false) => format!("{}: {why}", r.path),
                    other => panic!("{}: {other:?}", r.path),
                })
                .collect();
            assert_eq!(entries.len(), expected.len(), "{listed:?}: {entries:?}");
            for (entry, expected) in entries.iter().zip(*expected) {
                let (path, why) = expected.split_once(": ").unwrap();
                assert!(
                    entry.starts_with(&format!("{path}: ")) && entry.contains(why),
                    "{listed:?}: {entry} is not {expected}"
                );
            }
        }
    }

    /// The attempts of task `a`: (attempt_number, result_state).
    fn attempts(list: &[(Option<i64>, &str)]) -> Run {
        let tasks: Vec<serde_json::Value> = list
            .iter()
            .map(|(n, result)| {
                json!({ "task_key": "a", "attempt_number": n,
                        "state": { "life_cycle_state": "TERMINATED", "result_state": result } })
            })
            .collect();
        serde_json::from_value(json!({ "run_id": 9, "tasks": tasks })).unwrap()
    }

    #[test]
    fn retries_are_trusted_only_in_order_within_the_limit_and_after_failures() {
        let judge = |list: &[(Option<i64>, &str)], allowed: u32| {
            let results = match_tasks(&attempts(list), &notebooks(&["a"]), allowed);
            assert_eq!(results.len(), 1);
            let r = &results[0];
            (r.unverified.clone(), r.succeeded(), r.flaky(), r.attempts())
        };
        let flaky = judge(&[(Some(1), "SUCCESS"), (Some(0), "FAILED")], 3);
        assert_eq!(flaky, (None, true, true, 2));
        let exhausted = judge(&[(None, "FAILED"), (Some(1), "FAILED")], 2);
        assert_eq!(exhausted, (None, false, false, 2));
        for (list, allowed, why) in [
            (
                &[(Some(0), "FAILED"), (Some(0), "SUCCESS")][..],
                3,
                "lists its task (a) 2 times",
            ),
            (
                &[(Some(0), "FAILED"), (Some(2), "SUCCESS")][..],
                3,
                "lists its task (a) 2 times",
            ),
            (
                &[(Some(0), "FAILED"), (Some(1), "SUCCESS")][..],
                1,
                "at most 1 were allowed",
            ),
            (
                &[(Some(0), "SUCCESS"), (Some(1), "SUCCESS")][..],
                3,
                "after an attempt that did not fail",
            ),
            (
                &[(Some(0), "CANCELED"), (Some(1), "SUCCESS")][..],
                3,
                "after an attempt that did not fail",
            ),
        ] {
            let (unverified, succeeded, _, _) = judge(list, allowed);
            let unverified = unverified.unwrap_or_default();
            assert!(unverified.contains(why), "{list:?}: {unverified}");
            assert!(!succeeded, "{list:?}");
        }
    }

    #[test]
    fn a_flaky_notebook_says_why_its_earlier_attempt_failed_and_the_step_has_issues() {
        let run = attempts(&[(Some(0), "FAILED"), (Some(1), "SUCCESS")]);
        let mut results = match_tasks(&run, &notebooks(&["a"]), 2);
        results[0].retried_error = Some("ConnectionError: token dapi-secret refused\nmore".into());
        let secrets = Secrets::default();
        secrets.add("dapi-secret");
        assert_eq!(
            results[0].flaky_note(&secrets).unwrap(),
            "passed on attempt 2 (flaky); attempt 1 failed: ConnectionError: token *** refused"
        );
        let mut finished = run.clone();
        finished.state.result_state = Some(ResultState::Success);
        let verdict = judge(9, &finished, &results, true);
        assert!(verdict.issues);
        assert!(
            verdict
                .outcome
                .as_ref()
                .unwrap()
                .ends_with("1 passed only on a retry (flaky)"),
            "{:?}",
            verdict.outcome
        );
    }

    #[test]
    fn a_task_without_a_result_state_does_not_pass() {
        let run: Run = serde_json::from_value(
            json!({ "run_id": 9, "tasks": [{ "task_key": "a", "state": { "life_cycle_state": "TERMINATED" } }] }),
        )
        .unwrap();
        let results = match_tasks(&run, &notebooks(&["a"]), 1);
        assert!(!results[0].succeeded());
        let reason = results[0].failure_reason(&Secrets::default());
        assert!(
            reason.contains("no result_state (life cycle TERMINATED)"),
            "{reason}"
        );
    }

    fn one_task(state: serde_json::Value) -> NotebookResult {
        let run: Run = serde_json::from_value(
            json!({ "run_id": 9, "tasks": [{ "task_key": "a", "run_id": 10, "state": state }] }),
        )
        .unwrap();
        match_tasks(&run, &notebooks(&["a"]), 1).remove(0)
    }

    #[test]
    fn a_success_whose_life_cycle_says_otherwise_does_not_pass() {
        for (life_cycle, said) in [
            (json!("SKIPPED"), "SUCCESS while its life cycle is SKIPPED"),
            (
                json!("INTERNAL_ERROR"),
                "SUCCESS while its life cycle is INTERNAL_ERROR",
            ),
            (json!("RUNNING"), "SUCCESS while its life cycle is RUNNING"),
            (json!(null), "SUCCESS without a life cycle state"),
        ] {
            let result =
                one_task(json!({ "life_cycle_state": life_cycle, "result_state": "SUCCESS" }));
            assert!(!result.ran() && !result.succeeded(), "{life_cycle}");
            let reason = result.failure_reason(&Secrets::default());
            assert!(reason.contains(said), "{life_cycle}: {reason}");
            let verdict = judge(9, &Run::default(), &[result], true);
            assert!(verdict.outcome.is_err(), "{life_cycle}");
        }
    }

    #[test]
    fn a_result_not_read_whole_does_not_pass_even_without_failing_on_cases() {
        let success = json!({ "life_cycle_state": "TERMINATED", "result_state": "SUCCESS" });
        let mut run: Run = Run::default();
        run.state.result_state = Some(ResultState::Success);
        // The output could not be fetched.
        let mut unread = one_task(success.clone());
        unread.unread = Some("its output could not be read (HTTP 403)".into());
        // The report it handed back could not be read.
        let mut cut = one_task(success.clone());
        cut.tests = Reported::Unreadable("its test report was cut by Databricks".into());
        for result in [unread, cut] {
            assert!(result.ran() && !result.succeeded());
            assert_eq!(result.tests_tab_counts().failed, 1);
            let reason = result.failure_reason(&Secrets::default());
            assert!(
                reason.starts_with("ended SUCCESS, but does not pass: what it handed back could not be read whole (its "),
                "{reason}"
            );
            for fail_on_failed_tests in [true, false] {
                let verdict = judge(9, &run, std::slice::from_ref(&result), fail_on_failed_tests);
                assert!(
                    verdict.outcome.is_err(),
                    "{fail_on_failed_tests}: {:?}",
                    verdict.outcome
                );
                assert_eq!(verdict.tests.failed, 1);
            }
        }
        // Read whole, it passes.
        let whole = one_task(success);
        assert!(whole.succeeded());
        assert!(judge(9, &run, &[whole], true).outcome.is_ok());
    }
}
