mod cli;
mod settings;

use std::process::ExitCode;
use std::rc::Rc;

use clap::Parser as _;
use databricks_azdo::host::{Host, NativeHost};
use databricks_azdo::pipeline::OutputMode;
use databricks_azdo::tasks::{self, RunOptions, TaskName};

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(70);
        }
    };
    let code = runtime.block_on(run(cli));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Maps every outcome to an exit code, in one place (the codes are listed in the README).
async fn run(cli: Cli) -> i32 {
    let process_env = || std::env::vars().collect();
    let resolved = match cli.command {
        Command::Task { name } => {
            let Some(task) = TaskName::parse(&name) else {
                eprintln!(
                    "error: unknown task `{name}`\nhint: use one of: {}",
                    TaskName::ALL.map(TaskName::as_str).join(", ")
                );
                return 2;
            };
            let host: Rc<dyn Host> = Rc::new(NativeHost::for_process(process_env(), false));
            return tasks::run(task, host, &RunOptions::default()).await;
        }
        #[cfg(feature = "emulator")]
        Command::Emulator(args) => {
            return match databricks_azdo::emulator::serve(args).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    1
                }
            };
        }
        #[cfg(feature = "emulator")]
        Command::Demo(args) => {
            return match databricks_azdo::demo::run(args.fail, args.auth, args.raw).await {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("error: demo: {e:#}");
                    1
                }
            };
        }
        Command::RepoUpdate(args) => {
            settings::repo_update(&args, process_env()).map(|r| (TaskName::RepoUpdate, r))
        }
        Command::RunNotebookTest(args) => settings::run_notebook_test(&args, process_env())
            .map(|r| (TaskName::RunNotebookTest, r)),
    };
    match resolved {
        Ok((task, resolved)) => {
            let live = resolved.mode == OutputMode::Terminal
                && std::io::IsTerminal::is_terminal(&std::io::stderr());
            let host: Rc<dyn Host> = Rc::new(NativeHost::for_process(resolved.env, live));
            let options = RunOptions {
                mode: resolved.mode,
                verbose: resolved.verbose,
                ..RunOptions::default()
            };
            tasks::run(task, host, &options).await
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}
