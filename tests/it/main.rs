//! The Rust integration tests, as one test binary (`cargo test --test it`): tokio, axum and
//! reqwest are linked once, not once per file. One module per concern; the shared harness
//! (the in-process emulator, Git projects, tasks run with captured output, the raw HTTP client
//! of the emulator) is `common`. Insta snapshots are in `snapshots/`, named `it__<module>__…`;
//! proptest keeps the failing cases of `fuzz` in `tests/proptest-regressions/fuzz.txt`.

mod common;

mod cancellation;
mod cli;
mod client_retry;
mod emulator;
mod flaky_and_parallel;
mod fuzz;
mod git_folders;
mod hostile_server;
mod hostile_text;
mod invalid_inputs;
mod jobs_2_2;
mod libraries;
mod notebook_globs;
mod proxy;
mod repo_update;
mod run_notebook_test;
mod scale;
mod secrets;
mod sign_in;
mod task_manifests;
mod test_reports;
mod verdicts;
