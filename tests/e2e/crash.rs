//! The crash sweep: for a full landed lifecycle (on GitHub, and on Forgejo with Woodpecker CI)
//! and a full frozen lifecycle, and for every k, make the k-th remote request fail (a 500, a
//! connection dropped after the remote applied it) or kill the tick right after it; then keep
//! running ticks until nothing changes. Whatever k, no issue gets two agents, no lock outlives
//! a watch tick without a live run, every run reaches its verdict, and no doorbell rings twice
//! once afk has recorded it as delivered.

use std::collections::{BTreeMap, BTreeSet};

use afk_core::record::Verdict;
use afk_sim::driver::{Tick, TickOptions};
use afk_sim::infra::{FaultAction, FaultRule, Remote, RequestRecord};
use futures::StreamExt;

use crate::harness::{Harness, writes};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    ServerError,
    DropAfter,
    Kill,
}

const ROUNDS: usize = 40;

/// Requests of one clean lifecycle, to know how many fault points there are.
async fn clean_request_count(scenario: &str) -> usize {
    let h = Harness::new(scenario).await;
    h.run_to_verdict(ROUNDS).await;
    h.requests().len()
}

/// Runs one lifecycle with a fault at request `k` (0-based); returns the violations found.
async fn one(scenario: &str, expected: Verdict, fault: Fault, k: u64) -> (Vec<String>, bool) {
    let h = Harness::new(scenario).await;
    let (repo, n) = h.repo();
    let action = match fault {
        Fault::ServerError => FaultAction::Status {
            status: 500,
            body: None,
            headers: BTreeMap::new(),
        },
        Fault::DropAfter => FaultAction::DropAfter,
        Fault::Kill => FaultAction::Hold,
    };
    h.fault(FaultRule {
        remote: None,
        method: None,
        path: None,
        skip: k,
        times: if fault == Fault::Kill { None } else { Some(1) },
        action,
        seen: 0,
    });
    let mut violations = Vec::new();
    let mut quiet_rounds = 0;
    let kill_opts = TickOptions {
        kill_when_held: Some(h.world.sim.clone()),
        ..TickOptions::default()
    };
    let mut fault_request: Option<(Remote, String)> = None;
    for round in 0..ROUNDS {
        let before = h.requests().len();
        for tick in [Tick::Poll, Tick::Watch] {
            let mark = h.world.sim.log_len();
            let run = h.tick_with(tick, kill_opts.clone()).await;
            if run.code.is_none() || h.world.sim.held_since(mark) {
                // The tick died right after request k: the rest of the story runs clean.
                h.world.sim.clear_faults();
            }
            if run.code == Some(2) {
                violations.push(format!("{} exited 2: {}", tick.name(), run.stderr));
            }
            if tick == Tick::Watch && run.code.is_some() {
                // After a completed watch tick, a lock always has afk's record behind it.
                if h.has_label(&repo, n, "agent-in-progress") && h.record(&repo, n).is_none() {
                    violations.push(format!(
                        "round {round}: lock without a run record after a watch tick"
                    ));
                }
            }
            if h.threads().len() > 1 {
                violations.push(format!(
                    "round {round}: {} threads for one issue",
                    h.threads().len()
                ));
            }
        }
        if fault_request.is_none()
            && let Some(r) = h.requests().iter().find(|r| r.fault.is_some())
        {
            fault_request = Some((r.remote, format!("{} {}", r.method, r.path)));
        }
        let finished = h.record(&repo, n).is_some_and(|r| r.verdict.is_some())
            && !h.has_label(&repo, n, "agent-in-progress");
        let wrote = writes(&h.requests()[before..]).len();
        if finished && wrote == 0 {
            quiet_rounds += 1;
            if quiet_rounds >= 2 {
                break;
            }
        } else {
            quiet_rounds = 0;
        }
        h.world.sim.clock.advance_secs(300);
    }
    let verdict = h
        .record(&repo, n)
        .and_then(|r| r.verdict.map(|v| v.verdict));
    if verdict != Some(expected) {
        violations.push(format!("verdict {verdict:?}, expected {expected:?}"));
    }
    if h.has_label(&repo, n, "agent-in-progress") {
        violations.push("the lock survived".into());
    }
    // A doorbell may repeat only inside the at-least-once window: the fault hit after the
    // channel accepted the message and before afk recorded that in the status comment, so
    // the success was never recorded. Any other repeat is a violation.
    let window = unrecorded_deliveries(&h.requests(), fault);
    let mut repeated = false;
    for (remote, count) in [
        (Remote::Ntfy, h.ntfy().len()),
        (Remote::Slack, h.slack().len()),
    ] {
        repeated |= count > 1;
        if count == 0 || (count > 1 && !window.contains(&remote)) {
            violations.push(format!(
                "{remote:?} rang {count} times (fault at {fault_request:?})"
            ));
        }
    }
    let violations = violations
        .into_iter()
        .map(|v| format!("{scenario} {fault:?} k={k}: {v}"))
        .collect();
    (violations, repeated)
}

/// Channels whose successful delivery was not yet recorded when the fault hit: after the last
/// status-comment edit before the faulted request, a delivery succeeded (or, for a dropped
/// answer, the faulted request was the delivery itself).
fn unrecorded_deliveries(log: &[RequestRecord], fault: Fault) -> BTreeSet<Remote> {
    let Some(at) = log.iter().position(|r| r.fault.is_some()) else {
        return BTreeSet::new();
    };
    let is_delivery = |r: &RequestRecord| matches!(r.remote, Remote::Ntfy | Remote::Slack);
    let mut window = BTreeSet::new();
    if fault == Fault::DropAfter && is_delivery(&log[at]) {
        window.insert(log[at].remote);
    }
    if fault == Fault::Kill {
        for r in log[..at].iter().rev() {
            let comment_edit = matches!(r.remote, Remote::Github | Remote::Forgejo)
                && r.method == "PATCH"
                && r.path.contains("/issues/comments/");
            if comment_edit {
                break;
            }
            if is_delivery(r) && r.status == 200 {
                window.insert(r.remote);
            }
        }
    }
    window
}

/// Every fault point of one lifecycle: (points tried, violations, repeats inside the window).
/// Lifecycles run two at a time: each is mostly process start-up and loopback waits.
async fn sweep(scenario: &str, expected: Verdict) -> (usize, Vec<String>, usize) {
    let total = clean_request_count(scenario).await as u64;
    let points: Vec<(Fault, u64)> = [Fault::ServerError, Fault::DropAfter, Fault::Kill]
        .into_iter()
        .flat_map(|f| (0..total).map(move |k| (f, k)))
        .collect();
    let tried = points.len();
    let results: Vec<(Vec<String>, bool)> = futures::stream::iter(points)
        .map(|(fault, k)| one(scenario, expected, fault, k))
        .buffer_unordered(2)
        .collect()
        .await;
    let mut violations = Vec::new();
    let mut repeats = 0;
    for (v, repeated) in results {
        repeats += usize::from(repeated && v.is_empty());
        violations.extend(v);
    }
    violations.sort();
    (tried, violations, repeats)
}

/// Sweeps one lifecycle, reports its figures and fails on any violation.
async fn check_sweep(name: &str, scenario: &str, expected: Verdict) {
    let (tried, violations, repeats) = sweep(scenario, expected).await;
    eprintln!(
        "crash sweep {name}: {tried} fault points, {} violations, {repeats} doorbell repeats inside the at-least-once window",
        violations.len()
    );
    assert!(
        violations.is_empty(),
        "{tried} fault points, violations:\n{}",
        violations.join("\n")
    );
    assert!(tried > 30, "the sweep covered only {tried} points");
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_sweep_landed() {
    check_sweep("landed", "landed", Verdict::Done).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "slow (about 500 fault lifecycles): .ci/run runs it on its own, after the suite"]
async fn crash_sweep_frozen() {
    check_sweep("frozen", "frozen", Verdict::Frozen).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_sweep_landed_on_forgejo() {
    check_sweep("landed on forgejo", "forgejo", Verdict::Done).await;
}
