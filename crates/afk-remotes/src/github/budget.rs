//! The primary rate-limit budget as GitHub reports it, per resource, for the tick's budget
//! guard (the decision is `afk_core::budget`).
//!
//! Wire facts (GitHub REST docs, "Rate limits for the REST API" → "Checking the status of your
//! rate limit"): every answer carries `x-ratelimit-limit`, `x-ratelimit-remaining`,
//! `x-ratelimit-reset` (UTC epoch seconds) and `x-ratelimit-resource` (`core` for REST,
//! `graphql` for GraphQL, which has its own budget). `GET /rate_limit` ("Get rate limit status
//! for the authenticated user") answers every resource under `resources` and "does not count
//! against your REST API rate limit"; GitHub Enterprise Server with rate limiting disabled
//! answers it 404 and sends no headers, so nothing is recorded and the guard stays inactive.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use afk_core::budget::RateBudget;
use serde::Deserialize;

use super::GitHub;
use crate::error::Result;
use crate::http::Response;

/// The newest budget seen per resource (shared by the client's clones).
#[derive(Debug, Clone, Default)]
pub(super) struct BudgetLog(Arc<Mutex<BTreeMap<String, RateBudget>>>);

impl BudgetLog {
    /// Records the budget an answer reports, if it reports one.
    pub fn note(&self, resp: &Response) {
        let num = |h: &str| resp.header(h).and_then(|v| v.trim().parse::<u64>().ok());
        let (Some(limit), Some(remaining), Some(reset)) = (
            num("x-ratelimit-limit"),
            num("x-ratelimit-remaining"),
            num("x-ratelimit-reset"),
        ) else {
            return;
        };
        let resource = resp
            .header("x-ratelimit-resource")
            .map_or("core", str::trim)
            .to_owned();
        self.record(resource, limit, remaining, reset);
    }

    /// Keeps the newest window per resource; within one window the lowest `remaining` (answers
    /// to concurrent requests arrive in any order, and a budget only falls within a window).
    fn record(&self, resource: String, limit: u64, remaining: u64, reset: u64) {
        let Some(reset) = i64::try_from(reset)
            .ok()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        else {
            return;
        };
        let seen = RateBudget {
            resource: resource.clone(),
            limit,
            remaining,
            reset,
        };
        let mut log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match log.get(&resource) {
            Some(old) if old.reset > reset => {}
            Some(old) if old.reset == reset && old.remaining <= remaining => {}
            _ => {
                log.insert(resource, seen);
            }
        }
    }

    pub fn all(&self) -> Vec<RateBudget> {
        let log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        log.values().cloned().collect()
    }
}

#[derive(Deserialize)]
struct WireRateLimit {
    resources: BTreeMap<String, WireResource>,
}

#[derive(Deserialize)]
struct WireResource {
    limit: u64,
    remaining: u64,
    reset: u64,
}

/// The resources afk spends: REST and GraphQL.
const USED: [&str; 2] = ["core", "graphql"];

impl GitHub {
    /// The newest primary budget seen per resource this tick (empty before any answer, or when
    /// the server reports none).
    pub fn rate_budgets(&self) -> Vec<RateBudget> {
        self.http.budgets.all()
    }

    /// Reads `GET /rate_limit` (free) and records the `core` and `graphql` budgets. A server
    /// without rate limiting (404) records nothing.
    pub async fn read_rate_limit(&self) -> Result<()> {
        let answer = self.http.get("/rate_limit", &[200, 404]).await?;
        if answer.status == 404 {
            return Ok(());
        }
        let wire: WireRateLimit = answer.json()?;
        for (name, r) in wire.resources {
            if USED.contains(&name.as_str()) {
                self.http
                    .budgets
                    .record(name, r.limit, r.remaining, r.reset);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> u64 {
        1_700_000_000 + secs
    }

    #[test]
    fn the_newest_window_and_its_lowest_remaining_are_kept() {
        let log = BudgetLog::default();
        log.record("core".into(), 5000, 4000, at(3600));
        // An answer to an earlier request arriving late: a budget only falls within a window.
        log.record("core".into(), 5000, 4100, at(3600));
        log.record("graphql".into(), 5000, 4990, at(3000));
        let seen = log.all();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].resource, "core");
        assert_eq!(seen[0].remaining, 4000);
        // A stale window is ignored; a new window replaces the old one.
        log.record("core".into(), 5000, 10, at(100));
        assert_eq!(log.all()[0].remaining, 4000);
        log.record("core".into(), 5000, 4999, at(7200));
        assert_eq!(log.all()[0].remaining, 4999);
    }
}
