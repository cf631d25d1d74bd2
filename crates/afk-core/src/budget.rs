//! The rate-limit budget guard: whether the tracker token's primary rate-limit budget, as the
//! tick last saw it, has reached the reserve kept for everything else that uses the token.
//!
//! GitHub reports the budget on every API answer (`x-ratelimit-limit`, `-remaining`, `-reset`,
//! `-resource`; the REST endpoints count against `core`, GraphQL against `graphql`) and on
//! `GET /rate_limit`. Forgejo reports none, so the guard is inactive there. The tick records what
//! it saw; this module only decides.

use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

/// One resource's primary budget as an answer reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateBudget {
    /// `core` (REST), `graphql`, …
    pub resource: String,
    pub limit: u64,
    pub remaining: u64,
    /// When the window resets and `remaining` returns to `limit`.
    pub reset: Timestamp,
}

impl RateBudget {
    /// The smallest `remaining` that is still above the reserve: `limit × percent / 100`,
    /// rounded up, so a reserve of 20 % of 5000 is 1000 requests.
    pub fn reserve(&self, percent: u32) -> u64 {
        let wanted = u128::from(self.limit) * u128::from(percent.min(100));
        u64::try_from(wanted.div_ceil(100)).unwrap_or(u64::MAX)
    }

    /// Whether `remaining` is at or below the reserve.
    pub fn at_reserve(&self, percent: u32) -> bool {
        self.remaining <= self.reserve(percent)
    }
}

/// What the plan shows about the budget: the tightest resource, and whether it is at the
/// reserve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetStatus {
    pub resource: String,
    pub limit: u64,
    pub remaining: u64,
    pub reset: Timestamp,
    /// `remaining` at or below this stops the tick's gathering.
    pub reserve: u64,
    pub reserve_reached: bool,
}

impl BudgetStatus {
    /// One line for the logs and the plan: which resource, how much is left, when it resets.
    pub fn describe(&self) -> String {
        format!(
            "GitHub rate limit `{}`: {} of {} left, reserve {} (limits.rate_limit_reserve_percent), \
             resets at {}",
            self.resource,
            self.remaining,
            self.limit,
            self.reserve,
            self.reset.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    }
}

/// The budget the tick must respect: among the resources seen, the one at its reserve (the
/// lowest share left first), else the one with the lowest share left. A window that has
/// already reset by `now` is full again and ignored. `None` when nothing was seen (Forgejo, or
/// no answer yet): the guard is inactive.
pub fn status(
    budgets: &[RateBudget],
    reserve_percent: u32,
    now: Timestamp,
) -> Option<BudgetStatus> {
    budgets
        .iter()
        .filter(|b| b.reset > now && b.limit > 0)
        .min_by(|a, b| {
            // remaining/limit compared without division.
            (u128::from(a.remaining) * u128::from(b.limit))
                .cmp(&(u128::from(b.remaining) * u128::from(a.limit)))
                .then_with(|| a.resource.cmp(&b.resource))
        })
        .map(|b| BudgetStatus {
            resource: b.resource.clone(),
            limit: b.limit,
            remaining: b.remaining,
            reset: b.reset,
            reserve: b.reserve(reserve_percent),
            reserve_reached: budgets
                .iter()
                .filter(|x| x.reset > now && x.limit > 0)
                .any(|x| x.at_reserve(reserve_percent)),
        })
}

/// Whether the tick must stop gathering: some resource afk uses is at its reserve.
pub fn reserve_reached(budgets: &[RateBudget], reserve_percent: u32, now: Timestamp) -> bool {
    status(budgets, reserve_percent, now).is_some_and(|s| s.reserve_reached)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("time")
    }

    fn budget(resource: &str, limit: u64, remaining: u64) -> RateBudget {
        RateBudget {
            resource: resource.to_owned(),
            limit,
            remaining,
            reset: at(3600),
        }
    }

    #[test]
    fn the_reserve_is_a_share_of_the_limit_rounded_up() {
        assert_eq!(budget("core", 5000, 0).reserve(20), 1000);
        assert_eq!(budget("core", 5001, 0).reserve(20), 1001);
        assert_eq!(budget("core", 5000, 0).reserve(0), 0);
        assert!(budget("core", 5000, 1000).at_reserve(20));
        assert!(!budget("core", 5000, 1001).at_reserve(20));
        // A reserve of 0 % still stops at an empty budget.
        assert!(budget("core", 5000, 0).at_reserve(0));
        assert!(!budget("core", 5000, 1).at_reserve(0));
    }

    #[test]
    fn the_tightest_resource_is_reported_and_any_at_reserve_stops() {
        let seen = [budget("core", 5000, 4000), budget("graphql", 5000, 900)];
        let s = status(&seen, 20, at(0)).expect("seen");
        assert_eq!(s.resource, "graphql");
        assert!(s.reserve_reached);
        assert!(reserve_reached(&seen, 20, at(0)));
        let s = status(&seen, 10, at(0)).expect("seen");
        assert_eq!((s.resource.as_str(), s.reserve), ("graphql", 500));
        assert!(!s.reserve_reached);
        // Shares, not counts: 100 of 200 is tighter than 3000 of 5000.
        let seen = [budget("core", 5000, 3000), budget("graphql", 200, 100)];
        assert_eq!(
            status(&seen, 20, at(0)).map(|s| s.resource),
            Some("graphql".into())
        );
    }

    #[test]
    fn nothing_seen_or_a_reset_window_leaves_the_guard_inactive() {
        assert_eq!(status(&[], 20, at(0)), None);
        assert!(!reserve_reached(&[], 20, at(0)));
        let spent = budget("core", 5000, 0);
        assert!(reserve_reached(std::slice::from_ref(&spent), 20, at(0)));
        assert!(
            !reserve_reached(&[spent], 20, at(3600)),
            "the window has reset"
        );
    }
}
