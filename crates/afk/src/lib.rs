//! afk: the two ticks (gather → decide → apply) behind the `afk-poll` and `afk-watch` binaries.
//!
//! Decisions are made by afk-core; this crate gathers facts from the remotes, hands them to the
//! core, applies the resulting effects in order (or only prints them with `--dry-run`), and
//! prints the plan.

pub mod apply;
pub mod check;
pub mod cli;
pub mod env;
pub mod logging;
pub mod metrics;
pub mod output;
pub mod poll;
pub mod remotes;
pub mod report;
pub mod watch;

use afk_core::config::Config;
use afk_core::model::Timestamp;
use afk_core::plan::{Plan, TickKind};

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
    #[error("invalid configuration: {0}")]
    Config(#[from] afk_core::config::ConfigError),
    #[error("{var} must be an RFC 3339 time, got {value:?}")]
    Now { var: &'static str, value: String },
}

/// Reads the config file (if any) and the environment, validated.
pub fn load_config(args: &Args) -> Result<Config, SetupError> {
    let text = match &args.config {
        Some(path) => {
            Some(
                std::fs::read_to_string(path).map_err(|source| SetupError::ReadConfig {
                    path: path.display().to_string(),
                    source,
                })?,
            )
        }
        None => None,
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

/// Runs one tick and prints its plan.
pub async fn run(tick: TickKind, args: &Args) -> Outcome {
    let started = std::time::Instant::now();
    let setup = load_config(args).and_then(|c| now().map(|n| (c, n)));
    let (config, now) = match setup {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "nothing was done");
            eprintln!("afk: {e}");
            return Outcome::ConfigError;
        }
    };
    let mut plan = Plan::new(tick, args.dry_run, config.kill_switch);
    if tick == TickKind::Poll && config.kill_switch {
        // SPEC §2.2: zero network I/O, exit 0.
        plan.skipped.push(afk_core::plan::SkipEntry {
            repo: None,
            issue: None,
            reason: afk_core::plan::SkipReason::KillSwitch,
            detail: "the kill switch is on: nothing is dispatched (set kill_switch = false or AFK_KILL_SWITCH=false to arm)".into(),
        });
        tracing::info!(tick = "poll", "kill switch on: no I/O");
        output::print(&plan, args.output);
        return Outcome::Completed;
    }
    if config.allowlist.is_empty() {
        // Nothing enrolled: nothing to read.
        tracing::info!(tick = ?tick, "no repo is enrolled");
        output::print(&plan, args.output);
        return Outcome::Completed;
    }
    let deadline = std::time::Instant::now() + config.limits.tick_deadline;
    let remotes = match remotes::Remotes::build(&config, tick, deadline).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "nothing was done");
            eprintln!("afk: {e}");
            return Outcome::ConfigError;
        }
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
    if let Some(m) = &config.metrics
        && !args.dry_run
    {
        let (github_requests, github_not_modified) = match &remotes.tracker {
            afk_remotes::tracker::Tracker::GitHub(g) => {
                (Some(g.requests_made()), Some(g.requests_not_modified()))
            }
            afk_remotes::tracker::Tracker::Forgejo(_) => (None, None),
        };
        let stats = metrics::TickStats {
            duration: started.elapsed(),
            finished_at: now.timestamp(),
            github_requests,
            github_not_modified,
        };
        metrics::push(m, &plan, &stats).await;
    }
    for e in &plan.errors {
        tracing::error!(repo = ?e.repo.as_ref().map(ToString::to_string), issue = ?e.issue, run = ?e.run.as_ref().map(ToString::to_string), error = %e.error, "failed");
    }
    output::print(&plan, args.output);
    if plan.errors.is_empty() {
        Outcome::Completed
    } else {
        Outcome::PartialFailure
    }
}
