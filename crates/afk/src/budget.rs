//! The rate-limit budget guard at the edge: reads what the tracker client saw, lets the core
//! decide whether the reserve is reached, and says so in the plan and the logs.

use afk_core::config::Config;
use afk_core::model::Timestamp;
use afk_core::plan::{Plan, SkipEntry, SkipReason};

use crate::remotes::Remotes;

/// Puts the latest budget in the plan; when the reserve is reached, adds the skip entry that
/// names the gate (once) with what the tick stops doing, logs it at WARN and returns true.
pub fn reserve_reached(
    config: &Config,
    remotes: &Remotes,
    now: Timestamp,
    plan: &mut Plan,
    stops: &str,
) -> bool {
    record(config, remotes, now, plan);
    let Some(status) = plan.rate_limit.as_ref().filter(|s| s.reserve_reached) else {
        return false;
    };
    let detail = format!(
        "{}: the reserve is kept for everything else that uses the token; {stops}",
        status.describe()
    );
    tracing::warn!(
        tick = plan.tick.as_str(),
        resource = %status.resource,
        remaining = status.remaining,
        limit = status.limit,
        reserve = status.reserve,
        reset = %status.reset.to_rfc3339(),
        "rate-limit reserve reached: {stops}"
    );
    if !plan
        .skipped
        .iter()
        .any(|s| s.reason == SkipReason::RateLimitReserve)
    {
        plan.skipped.push(SkipEntry {
            repo: None,
            issue: None,
            reason: SkipReason::RateLimitReserve,
            detail,
        });
    }
    true
}

/// Puts the latest budget the tracker client saw in the plan (none on Forgejo).
pub fn record(config: &Config, remotes: &Remotes, now: Timestamp, plan: &mut Plan) {
    let seen = remotes.tracker.rate_budgets();
    let status = afk_core::budget::status(&seen, config.limits.rate_limit_reserve_percent, now);
    if status.is_some() {
        plan.rate_limit = status;
    }
}

/// Whether the reserve is reached, from what the tracker client saw so far (no plan entry).
pub fn at_reserve(config: &Config, remotes: &Remotes, now: Timestamp) -> bool {
    afk_core::budget::reserve_reached(
        &remotes.tracker.rate_budgets(),
        config.limits.rate_limit_reserve_percent,
        now,
    )
}
