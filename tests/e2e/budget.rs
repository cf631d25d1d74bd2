//! The rate-limit budget guard and lazy vetting, end to end: a poll at the reserve reads and
//! dispatches nothing and says why; a watch at the reserve reads no run, and one that crosses
//! it while reading a run still lands that run; a busy repo costs no deep read.

use afk_core::record::Verdict;
use afk_sim::driver::Tick;
use afk_sim::github::Actor;
use afk_sim::infra::{Remote, lock};
use afk_sim::scenario::MAINTAINER;

use crate::harness::{Harness, plan, sane, skip_reason, writes};

/// Sets the simulated GitHub budget: `remaining` of 5000 in the current window.
fn set_remaining(h: &Harness, remaining: u64) {
    let now = h.world.sim.now();
    let mut st = lock(&h.world.github);
    st.rate.refresh(now);
    st.rate.limit = 5000;
    st.rate.remaining = remaining;
}

fn remaining(h: &Harness) -> u64 {
    lock(&h.world.github).rate.remaining
}

/// The default reserve: 20 % of 5000.
const RESERVE: u64 = 1000;

fn github_requests(h: &Harness) -> Vec<String> {
    h.requests()
        .iter()
        .filter(|r| r.remote == Remote::Github)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poll_at_the_reserve_dispatches_nothing_and_says_why() {
    let h = Harness::new("landed").await;
    let (_, n) = h.repo();
    set_remaining(&h, RESERVE);
    h.reset_log();
    let p = h.tick(Tick::Poll).await;
    sane(&p);
    assert_eq!(
        p.code,
        Some(0),
        "the reserve is a gate, not a failure: {}",
        p.stderr
    );
    let first = plan(&p);
    assert!(
        first["dispatch"].as_array().expect("dispatch").is_empty(),
        "{first}"
    );
    let gate = first["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .find(|s| s["reason"] == "rate-limit-reserve")
        .unwrap_or_else(|| panic!("no rate-limit-reserve entry: {first}"));
    let detail = gate["detail"].as_str().expect("detail");
    assert!(detail.contains("1000 of 5000 left"), "{detail}");
    assert!(detail.contains("dispatches nothing"), "{detail}");
    assert_eq!(first["rate_limit"]["remaining"], 1000, "{first}");
    assert_eq!(first["rate_limit"]["limit"], 5000);
    assert_eq!(first["rate_limit"]["reserve_reached"], true);
    assert!(first["rate_limit"]["reset"].is_string());
    assert!(
        p.stderr.contains("rate-limit reserve reached"),
        "logged at WARN: {}",
        p.stderr
    );
    assert_eq!(
        github_requests(&h),
        vec!["GET /rate_limit".to_owned()],
        "only the free budget read"
    );
    assert_eq!(remaining(&h), RESERVE, "nothing was spent");
    assert!(!h.has_label(&h.repo().0, n, "agent-in-progress"));

    // Above the reserve the same issue goes.
    set_remaining(&h, 4000);
    let p = h.tick(Tick::Poll).await;
    assert_eq!(
        crate::harness::dispatched(plan(&p)),
        vec![n],
        "{}",
        plan(&p)
    );
    assert_eq!(plan(&p)["rate_limit"]["reserve_reached"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_at_the_reserve_reads_no_run_and_writes_nothing() {
    let h = Harness::new("landed").await;
    let (repo, n) = h.repo();
    let p = h.tick(Tick::Poll).await;
    assert_eq!(crate::harness::dispatched(plan(&p)), vec![n]);
    set_remaining(&h, 900);
    h.reset_log();
    let w = h.tick(Tick::Watch).await;
    sane(&w);
    assert_eq!(w.code, Some(0), "{}", w.stderr);
    assert_eq!(
        skip_reason_any(plan(&w)),
        Some("rate-limit-reserve".into()),
        "{}",
        plan(&w)
    );
    assert!(plan(&w)["runs"].as_array().expect("runs").is_empty());
    assert_eq!(github_requests(&h), vec!["GET /rate_limit".to_owned()]);
    assert!(
        writes(&h.requests()).is_empty(),
        "{:?}",
        writes(&h.requests())
    );
    assert!(
        h.has_label(&repo, n, "agent-in-progress"),
        "the run stays live"
    );
}

fn skip_reason_any(plan: &serde_json::Value) -> Option<String> {
    plan["skipped"]
        .as_array()?
        .iter()
        .find(|s| s["issue"].is_null())
        .and_then(|s| s["reason"].as_str())
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_that_reaches_the_reserve_while_reading_a_run_still_lands_it() {
    let h = Harness::new("landed").await;
    let (repo, n) = h.repo();
    let mut landed = false;
    for _ in 0..20 {
        set_remaining(&h, 4000);
        let p = h.tick(Tick::Poll).await;
        sane(&p);
        // One request above the reserve after the listing: the run is read, and its reads
        // cross the reserve.
        set_remaining(&h, RESERVE + 2);
        // Without its conditional-request cache every read of the watch costs: it must cross.
        let cache = h.setup.dir.join("workspace").join("afk-cache");
        if cache.exists() {
            std::fs::remove_dir_all(&cache).expect("removes the cache");
        }
        let w = h.tick(Tick::Watch).await;
        sane(&w);
        assert!(
            remaining(&h) < RESERVE + 1,
            "the watch read the run past the reserve"
        );
        assert_eq!(
            plan(&w)["rate_limit"]["reserve_reached"],
            true,
            "{}",
            plan(&w)
        );
        assert_eq!(
            plan(&w)["runs"].as_array().map(Vec::len),
            Some(1),
            "{}",
            plan(&w)
        );
        h.world.sim.clock.advance_secs(300);
        if let Some(r) = h.record(&repo, n)
            && r.verdict.is_some()
        {
            landed = true;
            break;
        }
    }
    assert!(landed, "no verdict: {:?}", h.record(&repo, n));
    let record = h.record(&repo, n).expect("record");
    assert_eq!(record.verdict.map(|v| v.verdict), Some(Verdict::Done));
    assert!(
        !h.has_label(&repo, n, "agent-in-progress"),
        "the lock is released"
    );
    assert!(!h.issue_open(&repo, n));
    assert_eq!(h.ntfy().len(), 1, "the doorbell rang");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_repo_costs_no_deep_read_but_a_dry_run_explains_every_issue() {
    let h = Harness::new("landed").await;
    let (repo, n) = h.repo();
    let p = h.tick(Tick::Poll).await;
    assert_eq!(crate::harness::dispatched(plan(&p)), vec![n]);
    let waiting = {
        let now = h.world.sim.now();
        let mut gh = lock(&h.world.github);
        let w = gh
            .add_issue(&repo, "Another", Some("x"), MAINTAINER, false, now)
            .expect("issue");
        gh.label_issue(&repo, w, "ready-for-agent", Actor::user(MAINTAINER), now)
            .expect("label");
        w
    };
    h.reset_log();
    let p = h.tick(Tick::Poll).await;
    sane(&p);
    assert_eq!(skip_reason(plan(&p), waiting).as_deref(), Some("repo-busy"));
    let deep = |h: &Harness| {
        github_requests(h)
            .into_iter()
            .filter(|r| {
                r.contains("/events") || r.contains("/permission") || r.contains("/graphql")
            })
            .collect::<Vec<_>>()
    };
    assert!(deep(&h).is_empty(), "{:?}", deep(&h));

    h.reset_log();
    let d = h.dry_run(Tick::Poll).await;
    sane(&d);
    assert!(!deep(&h).is_empty(), "a dry run reads every issue");
    let detail = plan(&d)["skipped"].to_string();
    assert!(
        detail.contains(&format!("{repo} has a live run")),
        "{detail}"
    );
}
