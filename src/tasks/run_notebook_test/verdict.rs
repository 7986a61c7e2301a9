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
    /// The test report the notebook handed back as its exit value, if any.
    pub tests: Reported,
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

    /// The notebook ran to its end (whatever its test cases say).
    pub fn ran(&self) -> bool {
        self.unverified.is_none() && self.task.state.result_state == Some(ResultState::Success)
    }

    /// Its test cases by outcome, when it handed back a report.
    pub fn case_counts(&self) -> Option<Counts> {
        match &self.tests {
            Reported::Report(report) => Some(report.counts()),
            _ => None,
        }
    }

    /// The notebook ran, and none of the cases it reported failed.
    pub fn succeeded(&self) -> bool {
        self.ran() && self.case_counts().is_none_or(|c| c.failed == 0)
    }

    /// The notebook as test cases, as the Tests tab counts them: its report's cases, or itself
    /// as one case when it has no report or did not run to its end.
    pub fn tests_tab_counts(&self) -> Counts {
        match self.case_counts() {
            Some(counts) if self.ran() => counts,
            _ if self.ran() => Counts {
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
pub fn match_tasks(run: &Run, notebooks: &[Notebook]) -> Vec<NotebookResult> {
    let run_id = run
        .run_id
        .map_or_else(|| "the run".to_string(), |id| format!("run {id}"));
    let mut results: Vec<NotebookResult> = notebooks
        .iter()
        .map(|notebook| {
            let key = notebook.task_key.as_str();
            let mut tasks = run
                .tasks
                .iter()
                .filter(|t| t.task_key.as_deref() == Some(key));
            let (task, unverified) = match (tasks.next(), tasks.count()) {
                (Some(task), 0) => (task.clone(), None),
                (Some(task), others) => (
                    task.clone(),
                    Some(format!(
                        "has no trustworthy result: {run_id} lists its task ({key}) {} times",
                        others + 1
                    )),
                ),
                (None, _) => (
                    RunTask {
                        task_key: Some(key.to_string()),
                        ..RunTask::default()
                    },
                    Some(format!(
                        "has no result: {run_id} does not list its task ({key}) although it was submitted"
                    )),
                ),
            };
            NotebookResult {
                path: notebook.path.clone(),
                task,
                output: None,
                unverified,
                tests: Reported::Nothing,
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
            tests: Reported::Nothing,
        });
    }
    results
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
            r.ran()
        }
    };
    let failed = results.iter().filter(|r| !passes(r)).count();
    let mut tests = Counts::default();
    results.iter().for_each(|r| tests.add(r.tests_tab_counts()));
    let reported = results.iter().any(|r| r.case_counts().is_some());
    let with_failed_cases = results.iter().filter(|r| r.ran() && !r.succeeded()).count();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let cases = if reported {
        format!("; test cases: {}", tests.describe())
    } else {
        String::new()
    };
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
        issues: outcome.is_ok() && with_failed_cases > 0,
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
                let mut task = json!({ "state": { "result_state": "SUCCESS" } });
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
            let entries: Vec<String> = match_tasks(&run(listed), &notebooks(submitted))
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

    #[test]
    fn a_task_without_a_result_state_does_not_pass() {
        let run: Run = serde_json::from_value(
            json!({ "run_id": 9, "tasks": [{ "task_key": "a", "state": { "life_cycle_state": "TERMINATED" } }] }),
        )
        .unwrap();
        let results = match_tasks(&run, &notebooks(&["a"]));
        assert!(!results[0].succeeded());
        let reason = results[0].failure_reason(&Secrets::default());
        assert!(
            reason.contains("no result_state (life cycle TERMINATED)"),
            "{reason}"
        );
    }
}
