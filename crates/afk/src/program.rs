//! The whole program of both binaries: parse the flags, start logging and the async runtime,
//! then run the tick, `--check` or `--report`.

use std::process::ExitCode;

use afk_core::plan::TickKind;

use crate::{check, cli, logging, report};

/// The whole program of both binaries.
pub fn main(tick: TickKind) -> ExitCode {
    let args = match cli::parse(tick) {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            match cli::usage_error_line(&e) {
                Some(line) => eprintln!("{line}"),
                // clap prints help/version to stdout and usage errors to stderr.
                None => drop(e.print()),
            }
            return ExitCode::from(code);
        }
    };
    let verbosity = if args.quiet {
        -1
    } else {
        i8::try_from(args.verbose).unwrap_or(i8::MAX)
    };
    logging::init(args.log_format, verbosity);
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
        return runtime.block_on(check::run(tick, &args)).into();
    }
    if args.report {
        return runtime.block_on(report::run(tick, &args)).into();
    }
    runtime.block_on(crate::run(tick, &args)).into()
}
