//! afk: the two ticks (gather → decide → apply) behind the `afk-poll` and `afk-watch` binaries.
//!
//! Decisions are made by afk-core; this crate gathers facts from the remotes, hands them to the
//! core, applies the resulting effects in order (or only prints them with `--dry-run`), and
//! prints the plan.

pub mod apply;
pub mod budget;
pub mod check;
pub mod cli;
pub mod dispatch;
pub mod env;
pub mod fleet;
pub mod housekeeping;
pub mod logging;
pub mod metrics;
pub mod output;
pub mod poll;
pub mod program;
pub mod remotes;
pub mod report;
pub mod tick;
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
    #[error(
        "{var} pins the clock, which is honoured only against the simulators, and {why}; unset {var} (nothing was done)"
    )]
    NowRefused { var: &'static str, why: String },
    #[error("limits.tick_deadline is too large for this system's clock")]
    Deadline,
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

/// The tick's clock: the real one, or `AFK_NOW` when pinned for simulation (see [`env::NOW`]
/// for the opt-in). `pinned` is true when `AFK_NOW` was honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub now: Timestamp,
    pub pinned: bool,
}

/// Reads the tick's clock from the process environment.
pub fn now() -> Result<Clock, SetupError> {
    now_from(&|k: &str| std::env::var(k).ok(), chrono::Utc::now())
}

/// The clock from `env`, with `real` as the wall clock: `AFK_NOW` is honoured only with
/// `AFK_SIMULATION=1` and outside Kubernetes; anywhere else it is refused.
pub fn now_from(
    env: &dyn Fn(&str) -> Option<String>,
    real: Timestamp,
) -> Result<Clock, SetupError> {
    let Some(value) = env(env::NOW) else {
        return Ok(Clock {
            now: real,
            pinned: false,
        });
    };
    let simulation = env(env::SIMULATION).is_some_and(|v| v.trim() == "1");
    let in_cluster = env(env::KUBERNETES_SERVICE_HOST).is_some();
    if !simulation || in_cluster {
        let why = if in_cluster {
            format!(
                "this process runs in Kubernetes ({} is set)",
                env::KUBERNETES_SERVICE_HOST
            )
        } else {
            format!("{}=1 is not set", env::SIMULATION)
        };
        return Err(SetupError::NowRefused { var: env::NOW, why });
    }
    let now = chrono::DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| SetupError::Now {
            var: env::NOW,
            value: value.chars().take(64).collect(),
        })?;
    Ok(Clock { now, pinned: true })
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

/// Pushes the tick's metrics when `[metrics]` is configured (never for a dry run).
async fn push_metrics(
    config: &Config,
    args: &Args,
    plan: &Plan,
    started: std::time::Instant,
    now: Timestamp,
    tracker: Option<&afk_remotes::tracker::Tracker>,
) {
    let Some(m) = &config.metrics else {
        return;
    };
    if args.dry_run {
        return;
    }
    let (github_requests, github_not_modified) = match tracker {
        Some(afk_remotes::tracker::Tracker::GitHub(g)) => {
            (Some(g.requests_made()), Some(g.requests_not_modified()))
        }
        _ => (None, None),
    };
    let graphql = match tracker {
        Some(afk_remotes::tracker::Tracker::GitHub(g)) => Some(g.graphql_cost()),
        _ => None,
    };
    let stats = metrics::TickStats {
        duration: started.elapsed(),
        finished_at: now.timestamp(),
        github_requests,
        github_not_modified,
        github_graphql_points: graphql.as_ref().map(|c| c.points),
        github_graphql_queries: graphql.as_ref().map(|c| c.queries),
        github_graphql_remaining: graphql.and_then(|c| c.remaining),
    };
    metrics::push(m, plan, &stats).await;
}

/// Runs one tick and prints its plan.
pub async fn run(tick: TickKind, args: &Args) -> Outcome {
    let started = std::time::Instant::now();
    let setup = load_config(args).and_then(|c| now().map(|n| (c, n)));
    let (config, clock) = match setup {
        Ok(v) => v,
        Err(e) => return setup_failed(args, &e),
    };
    let now = clock.now;
    let mut plan = Plan::new(tick, args.dry_run, config.kill_switch);
    if clock.pinned {
        tracing::warn!(
            now = %now.to_rfc3339(),
            "the clock is pinned by {} under {}=1: simulation only, never in production",
            env::NOW,
            env::SIMULATION
        );
        plan.pinned_now = Some(now);
    }
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
        // Still pushed: a deployment that enrols nothing yet must not look like one whose
        // ticks stopped running.
        push_metrics(&config, args, &plan, started, now, None).await;
        output::print(&plan, args.output);
        return Outcome::Completed;
    }
    let Some(deadline) = std::time::Instant::now().checked_add(config.limits.tick_deadline) else {
        return setup_failed(args, &SetupError::Deadline);
    };
    let remotes = match remotes::Remotes::build(&config, tick, deadline).await {
        Ok(r) => r.with_persistent_cache(&config, tick),
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
        plan.errors.push(crate::tick::error(
            None,
            None,
            format!(
                "the tick deadline ({}) passed; unfinished work resumes next tick",
                afk_core::model::format_duration(config.limits.tick_deadline)
            ),
        ));
    }
    budget::record(&config, &remotes, now, &mut plan);
    if !args.dry_run {
        // A dry run reads the cache but writes nothing anywhere, this file included.
        remotes.save_persistent_cache();
    }
    push_metrics(&config, args, &plan, started, now, Some(&remotes.tracker)).await;
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
