//! afk: the two ticks (gather → decide → apply) behind the `afk-poll` and `afk-watch` binaries.
//!
//! Decisions are made by afk-core; this crate gathers facts from the remotes, hands them to the
//! core, applies the resulting effects in order (or only prints them with `--dry-run`), and
//! prints the plan.

pub mod apply;
pub mod cli;
pub mod env;
pub mod logging;
pub mod output;
pub mod poll;
pub mod remotes;
pub mod watch;

use afk_core::config::Config;
use afk_core::model::Timestamp;
use afk_core::plan::{Plan, SkipEntry, SkipReason, TickKind};

use crate::cli::{Args, Outcome};

/// Why a tick could not start: always a configuration or usage problem (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot read the config file {path}: {source}")]
    ReadConfig {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no config file: pass --config PATH (or set {config}). To run without one on purpose, \
         inert (kill switch on, no repo enrolled), pass --inert (or {inert}=true), or set \
         {kill_switch} explicitly",
        config = env::CONFIG,
        inert = env::INERT,
        kill_switch = env::KILL_SWITCH
    )]
    NoConfig,
    #[error(
        "--inert ({inert}) runs without a config file, but a config file was also given \
         ({config}): drop one of the two",
        inert = env::INERT,
        config = env::CONFIG
    )]
    InertWithConfig,
    #[error("invalid configuration: {0}")]
    Config(#[from] afk_core::config::ConfigError),
    #[error("{var} must be an RFC 3339 time, got {value:?}")]
    Now { var: &'static str, value: String },
}

/// Reads the config file and the environment, validated.
///
/// A config file is required: without one every default is closed, and a missing file must not
/// pass for a kill switch turned on by choice. Running without one is allowed only when the
/// person says so: `--inert` (`AFK_INERT=true`), or `AFK_KILL_SWITCH` set explicitly (every
/// value needed then comes from the environment).
pub fn load_config(args: &Args) -> Result<Config, SetupError> {
    let text = match (&args.config, args.inert) {
        (Some(_), true) => return Err(SetupError::InertWithConfig),
        (Some(path), false) => {
            Some(
                std::fs::read_to_string(path).map_err(|source| SetupError::ReadConfig {
                    path: path.display().to_string(),
                    source,
                })?,
            )
        }
        (None, true) => None,
        (None, false) if std::env::var_os(env::KILL_SWITCH).is_some() => None,
        (None, false) => return Err(SetupError::NoConfig),
    };
    let env = |k: &str| std::env::var(k).ok();
    Ok(afk_core::config::parse(text.as_deref(), &env)?)
}

/// The tick's `now`: the real clock, or `AFK_NOW` when pinned for simulation.
pub fn now() -> Result<Timestamp, SetupError> {
    match std::env::var(env::NOW) {
        Ok(v) => chrono::DateTime::parse_from_rfc3339(v.trim())
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|_| SetupError::Now {
                var: env::NOW,
                value: v,
            }),
        Err(_) => Ok(chrono::Utc::now()),
    }
}

/// The skip entry naming the closed allowlist gate (no repo: it is about every repo).
fn empty_allowlist() -> SkipEntry {
    SkipEntry {
        repo: None,
        issue: None,
        reason: SkipReason::NotAllowlisted,
        detail: format!(
            "the allowlist is empty: no repo is enrolled, so nothing is read or dispatched \
             (add owner/name entries to `allowlist` in the config, or set {})",
            env::ALLOWLIST
        ),
    }
}

/// A tick that could not start: the error in the logs (and, for people reading text logs, as
/// a plain line too), nothing done, exit 2.
fn setup_failed(args: &Args, e: &dyn std::fmt::Display) -> Outcome {
    tracing::error!(error = %e, "nothing was done");
    if args.log_format == cli::LogFormat::Text {
        eprintln!("afk: {e}");
    }
    Outcome::ConfigError
}

/// Runs one tick and prints its plan.
pub async fn run(tick: TickKind, args: &Args) -> Outcome {
    let setup = load_config(args).and_then(|c| now().map(|n| (c, n)));
    let (config, now) = match setup {
        Ok(v) => v,
        Err(e) => return setup_failed(args, &e),
    };
    let mut plan = Plan::new(tick, args.dry_run, config.kill_switch);
    plan.warnings = config.warnings();
    for warning in &plan.warnings {
        tracing::warn!(tick = tick.as_str(), warning = %warning, "configuration warning");
    }
    if tick == TickKind::Poll && config.kill_switch {
        // The kill switch stops the poll before any network I/O; the tick still succeeds.
        plan.skipped.push(SkipEntry {
            repo: None,
            issue: None,
            reason: SkipReason::KillSwitch,
            detail: format!(
                "the kill switch is on: nothing is dispatched (set kill_switch = false or {}=false to arm)",
                env::KILL_SWITCH
            ),
        });
        if config.allowlist.is_empty() {
            plan.skipped.push(empty_allowlist());
        }
        tracing::info!(tick = tick.as_str(), "kill switch on: no I/O");
        output::print(&plan, args.output);
        return Outcome::Completed;
    }
    if config.allowlist.is_empty() {
        // Nothing enrolled: nothing to read. Named in the plan, so the closed gate is seen.
        plan.skipped.push(empty_allowlist());
        tracing::info!(
            tick = tick.as_str(),
            "the allowlist is empty: no repo is enrolled"
        );
        output::print(&plan, args.output);
        return Outcome::Completed;
    }
    let deadline = std::time::Instant::now() + config.limits.tick_deadline;
    let remotes = match remotes::Remotes::build(&config, tick, deadline).await {
        Ok(r) => r,
        Err(e) => return setup_failed(args, &e),
    };
    let concurrency = usize::from(args.concurrency);
    let work = async {
        match tick {
            TickKind::Poll => poll::tick(&config, &remotes, now, &mut plan, concurrency).await,
            TickKind::Watch => watch::tick(&config, &remotes, now, &mut plan, concurrency).await,
        }
    };
    if tokio::time::timeout(config.limits.tick_deadline, work)
        .await
        .is_err()
    {
        plan.errors.push(afk_core::plan::ErrorEntry {
            repo: None,
            issue: None,
            run: None,
            error: format!(
                "the tick deadline ({}) passed; unfinished work resumes next tick",
                afk_core::model::format_duration(config.limits.tick_deadline)
            ),
        });
    }
    for e in &plan.errors {
        tracing::error!(
            repo = e.repo.as_ref().map(tracing::field::display),
            issue = e.issue,
            run = e.run.as_ref().map(tracing::field::display),
            error = %e.error,
            "failed"
        );
    }
    output::print(&plan, args.output);
    if plan.errors.is_empty() {
        Outcome::Completed
    } else {
        Outcome::PartialFailure
    }
}
