//! How Forgejo's commit statuses and Actions runs become afk's CI signals.
//!
//! Mappings (decided here, once):
//!
//! | Forgejo commit status | signal | why |
//! |---|---|---|
//! | `pending` | Pending | |
//! | `success` | Success | |
//! | `error`, `failure` | Failure | |
//! | `warning` | Failure | fail closed: Woodpecker reports a *declined* pipeline as `warning`, so nothing was tested |
//! | `skipped` | Success | Forgejo ranks `skipped` above `success` when combining statuses: a skipped context never holds a commit back |
//! | anything else | Pending | never green on a value afk does not know; the CI timeout escalates it to a person |
//!
//! | Forgejo Actions run | signal |
//! |---|---|
//! | `waiting`, `running`, `blocked`, `unknown` | Pending |
//! | `success`, `skipped` | Success |
//! | `failure`, `cancelled` | Failure |
//! | anything else | Pending (as above) |
//!
//! A commit with no statuses or no runs yields no signals (not a Pending one): whether "no CI
//! report yet" means wait is the core's decision.

use std::collections::BTreeMap;

use afk_core::evidence::{CiSignal, SignalState};

use super::wire::{WireRun, WireStatus};

pub(super) fn status_state(status: &str) -> SignalState {
    match status {
        "success" | "skipped" => SignalState::Success,
        "error" | "failure" | "warning" => SignalState::Failure,
        "pending" => SignalState::Pending,
        other => {
            tracing::warn!(
                remote = "forgejo",
                status = other,
                "unknown commit status; treating it as pending"
            );
            SignalState::Pending
        }
    }
}

pub(super) fn run_state(status: &str) -> SignalState {
    match status {
        "success" | "skipped" => SignalState::Success,
        "failure" | "cancelled" => SignalState::Failure,
        "waiting" | "running" | "blocked" | "unknown" => SignalState::Pending,
        other => {
            tracing::warn!(
                remote = "forgejo",
                status = other,
                "unknown Actions run status; treating it as pending"
            );
            SignalState::Pending
        }
    }
}

/// One signal per status context, the latest (highest id) winning, in context order.
pub(super) fn status_signals(statuses: Vec<WireStatus>) -> Vec<CiSignal> {
    let mut latest: BTreeMap<String, WireStatus> = BTreeMap::new();
    for s in statuses {
        match latest.get(&s.context) {
            Some(prev) if prev.id > s.id => {}
            _ => {
                latest.insert(s.context.clone(), s);
            }
        }
    }
    latest
        .into_values()
        .map(|s| CiSignal {
            state: status_state(&s.status),
            name: s.context,
            url: s.target_url.filter(|u| !u.is_empty()),
        })
        .collect()
}

/// One signal per workflow for the commit, its latest run (highest id) winning.
pub(super) fn run_signals(runs: Vec<WireRun>, sha: &str) -> Vec<CiSignal> {
    let mut latest: BTreeMap<String, WireRun> = BTreeMap::new();
    for r in runs {
        // The server filters by head_sha; a server that ignored the filter must not mix in
        // other commits' runs.
        if !r.commit_sha.is_empty() && !r.commit_sha.eq_ignore_ascii_case(sha) {
            continue;
        }
        let name = if r.workflow_id.is_empty() {
            r.title.clone()
        } else {
            r.workflow_id.clone()
        };
        match latest.get(&name) {
            Some(prev) if prev.id > r.id => {}
            _ => {
                latest.insert(name, r);
            }
        }
    }
    latest
        .into_iter()
        .map(|(name, r)| CiSignal {
            state: run_state(&r.status),
            name,
            url: r.html_url.filter(|u| !u.is_empty()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_values_map_fail_closed() {
        assert_eq!(status_state("warning"), SignalState::Failure);
        assert_eq!(status_state("error"), SignalState::Failure);
        assert_eq!(status_state("skipped"), SignalState::Success);
        assert_eq!(status_state("mystery"), SignalState::Pending);
        assert_eq!(run_state("blocked"), SignalState::Pending);
        assert_eq!(run_state("cancelled"), SignalState::Failure);
        assert_eq!(run_state("mystery"), SignalState::Pending);
    }
}
