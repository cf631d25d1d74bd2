//! The command line shared by `afk-poll` and `afk-watch`, their help, and the exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use afk_core::plan::TickKind;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

use crate::env;

/// `--version`: the package version and the commit the binary was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("AFK_COMMIT"),
    ")"
);

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
#[command(version = VERSION)]
pub struct Args {
    /// The TOML config. Required, unless --inert or AFK_KILL_SWITCH says how to run without one.
    #[arg(long, env = env::CONFIG, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Run without a config file on purpose: the closed defaults (kill switch on, no repo
    /// enrolled), so the tick does nothing. Not allowed together with --config.
    #[arg(long, env = env::INERT)]
    pub inert: bool,
    /// Read everything, decide, print the plan, write nothing anywhere.
    #[arg(long, env = env::DRY_RUN)]
    pub dry_run: bool,
    /// The plan/report on stdout (json: one line, one object).
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
    #[arg(long)]
    pub check: bool,
    /// afk-watch only: print the fleet view (live runs with phase, age, spend and links; the
    /// most recent verdicts) and exit. Reads only.
    #[arg(long, conflicts_with = "check")]
    pub report: bool,
}

/// How a tick ended.
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

/// What each binary does, for `--help`.
fn about(tick: TickKind) -> (&'static str, &'static str) {
    match tick {
        TickKind::Poll => (
            "One poll tick: dispatch ready issues of enrolled repos to a coding agent in T3",
            "One poll tick, then exit (run it from a CronJob). Lists the open issues labelled \
             ready-for-agent in every enrolled repo, skips those that are not eligible (each skip \
             with its reason), claims the best one per repo within the capacity limits, and \
             dispatches it to a coding agent in T3 Code. Prints the plan on stdout.",
        ),
        TickKind::Watch => (
            "One watch tick: drive every live afk run one step toward its verdict",
            "One watch tick, then exit (run it from a CronJob). Reads every live run (the issues \
             labelled agent-in-progress in enrolled repos) and drives each one step: agent turn, \
             tests, push, CI, rollout, then the verdict (done, needs-human or frozen). Prints \
             the plan on stdout.",
        ),
    }
}

/// The part of `--help` both binaries share: the gates, the exit codes and the environment.
const AFTER_LONG_HELP: &str = "\
Two gates, both closed by default, must be open before any agent work starts:
  kill switch  `kill_switch` in the config, overridden by AFK_KILL_SWITCH=true|false (on by default)
  allowlist    `allowlist` in the config, overridden by AFK_ALLOWLIST=owner/a,owner/b (empty by default)
The plan names a closed gate as a skip (`kill-switch`, or `not-allowlisted` without a repo).

A config file is required. To run without one, say so: --inert (AFK_INERT=true) for the closed
defaults, or set AFK_KILL_SWITCH explicitly.

Exit codes:
  0  the tick completed (the plan says what was done and what was skipped, and why)
  1  the tick completed, but some repo or run failed (the plan's errors say which)
  2  configuration or usage error: nothing was done

Environment:
  AFK_CONFIG       the config file (--config)
  AFK_INERT        true: run without a config file, inert (--inert)
  AFK_DRY_RUN      true: decide and print the plan, write nothing (--dry-run)
  AFK_OUTPUT       text | json: the plan on stdout (--output)
  AFK_LOG_FORMAT   json | text: the logs on stderr (--log-format)
  AFK_KILL_SWITCH  true | false: overrides `kill_switch`
  AFK_ALLOWLIST    owner/a,owner/b: overrides `allowlist` (empty: no repo)
  AFK_CONCURRENCY  requests in flight at once (--concurrency)
  AFK_NOW          pins the tick's clock; honoured only with AFK_SIMULATION=1, outside
                   Kubernetes (anywhere else it is refused: exit 2)
  AFK_SIMULATION   1: this process runs against the simulators (never on the CronJobs)
  RUST_LOG         log filter, overrides -v/-q

stdout carries only the plan; logs go to stderr. In a cluster, set AFK_OUTPUT=json and
AFK_LOG_FORMAT=json: every line the pod prints is then one JSON object.";

/// The command line of one binary, with its own name and help.
pub fn command(tick: TickKind) -> clap::Command {
    let (about, long_about) = about(tick);
    let name = match tick {
        TickKind::Poll => "afk-poll",
        TickKind::Watch => "afk-watch",
    };
    Args::command()
        .name(name)
        .bin_name(name)
        .about(about)
        .long_about(long_about)
        .after_long_help(AFTER_LONG_HELP)
}

/// Parses the command line of `tick`'s binary.
pub fn parse(tick: TickKind) -> Result<Args, clap::Error> {
    let mut cmd = command(tick);
    let matches = cmd.try_get_matches_from_mut(std::env::args_os())?;
    let args = Args::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
    // Checked on the value, not with clap's `conflicts_with`: `AFK_DRY_RUN=false` in the
    // environment (as the CronJobs set it) counts as present there and would refuse `--check`.
    if args.dry_run && (args.check || args.report) {
        return Err(cmd.error(
            clap::error::ErrorKind::ArgumentConflict,
            "--check and --report only read; they do not take --dry-run (or AFK_DRY_RUN=true)",
        ));
    }
    Ok(args)
}

/// A usage error as one JSON log line, when the environment asks for JSON logs (as the
/// CronJobs do), so every line a pod prints stays JSON.
pub fn usage_error_line(e: &clap::Error) -> Option<String> {
    let json_logs = std::env::var(env::LOG_FORMAT).is_ok_and(|v| v.trim() == "json");
    if !json_logs || !e.use_stderr() {
        return None;
    }
    let text = e.render().to_string();
    let message = text.lines().next().unwrap_or("usage error").trim();
    let message = message.strip_prefix("error: ").unwrap_or(message);
    Some(
        serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": "ERROR",
            "message": "usage error: nothing was done",
            "error": message,
        })
        .to_string(),
    )
}
