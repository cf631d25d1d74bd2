//! The command line shared by `afk-poll` and `afk-watch` (INTERFACES §1), and the exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use afk_core::plan::TickKind;
use clap::{Parser, ValueEnum};

use crate::env;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, Parser)]
#[command(version, about, long_about = None)]
pub struct Args {
    /// The TOML config (required unless every needed value comes from the environment).
    #[arg(long, env = env::CONFIG, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Read everything, decide, print the plan, write nothing anywhere.
    #[arg(long)]
    pub dry_run: bool,
    /// The plan/report on stdout.
    #[arg(long, env = env::OUTPUT, value_enum, default_value = "text")]
    pub output: Output,
    /// Logs on stderr.
    #[arg(long, env = env::LOG_FORMAT, value_enum, default_value = "json")]
    pub log_format: LogFormat,
    /// More log detail (repeatable); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors in the logs; RUST_LOG overrides.
    #[arg(short, long)]
    pub quiet: bool,
    /// Requests in flight at once (1 = one request at a time).
    #[arg(long, env = env::CONCURRENCY, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Preflight: validate the config, read every secret file, reach every configured remote
    /// with reads only, print what works and what to fix; exit 0 all good, 1 a check failed,
    /// 2 config error. Writes nothing, ever.
    #[arg(long, conflicts_with = "dry_run")]
    pub check: bool,
    /// afk-watch only: print the fleet view (live runs with phase, age, spend and links; the
    /// most recent verdicts) and exit. Reads only.
    #[arg(long, conflicts_with_all = ["dry_run", "check"])]
    pub report: bool,
}

/// How a tick ended (SPEC §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: the tick completed.
    Completed,
    /// 1: the tick completed, but some repo or run failed (the others went on).
    PartialFailure,
    /// 2: configuration or usage error; nothing was done.
    ConfigError,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> ExitCode {
        match o {
            Outcome::Completed => ExitCode::SUCCESS,
            Outcome::PartialFailure => ExitCode::from(1),
            Outcome::ConfigError => ExitCode::from(2),
        }
    }
}

/// The whole program of both binaries.
pub fn main(tick: TickKind) -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            // clap prints help/version to stdout and usage errors to stderr.
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let verbosity = if args.quiet {
        -1
    } else {
        i8::try_from(args.verbose).unwrap_or(i8::MAX)
    };
    crate::logging::init(args.log_format, verbosity);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(1);
        }
    };
    if args.check {
        return runtime.block_on(crate::check::run(tick, &args)).into();
    }
    if args.report {
        return runtime.block_on(crate::report::run(tick, &args)).into();
    }
    runtime.block_on(crate::run(tick, &args)).into()
}
