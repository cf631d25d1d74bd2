//! The safety envelope seen from outside: gates, dry-run, skip reasons, quiet ticks, overlap.

use afk_sim::driver::{Tick, TickOptions};
use afk_sim::github::Actor;
use afk_sim::infra::lock;
use afk_sim::scenario::{MAINTAINER, OUTSIDER};
use serde_json::Value;

use crate::harness::{Harness, plan, writes};

fn skip_reason(plan: &Value, issue: u64) -> Option<String> {
    plan["skipped"]
        .as_array()?
        .iter()
        .find(|s| s["issue"].as_u64() == Some(issue))
        .and_then(|s| s["reason"].as_str().map(str::to_owned))
}

fn add_armed_issue(h: &Harness, title: &str, body: &str, labeler: &str) -> u64 {
    let (repo, _) = h.repo();
    let now = h.world.sim.now();
    let mut gh = lock(&h.world.github);
    let n = gh
        .add_issue(&repo, title, Some(body), MAINTAINER, false, now)
        .expect("issue");
    gh.label_issue(&repo, n, "ready-for-agent", Actor::user(labeler), now)
        .expect("label");
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_switch_on_means_poll_sends_zero_requests() {
    let h = Harness::new("landed").await;
    let opts = TickOptions {
        env: vec![("AFK_KILL_SWITCH".into(), "true".into())],
        ..TickOptions::default()
    };
    let run = h.tick_with(Tick::Poll, opts).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        h.requests().is_empty(),
        "requests with the kill switch on: {:?}",
        h.requests()
    );
    assert_eq!(plan(&run)["kill_switch"], true);
    assert_eq!(plan(&run)["skipped"][0]["reason"], "kill-switch");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_switch_on_watch_observes_but_starts_no_agent_work() {
    let h = Harness::new("fix-forward").await;
    let (repo, n) = h.repo();
    // Dispatch, let the first push go red.
    h.tick(Tick::Poll).await;
    h.world.sim.clock.advance_secs(1200);
    let killed = TickOptions {
        env: vec![("AFK_KILL_SWITCH".into(), "true".into())],
        ..TickOptions::default()
    };
    for _ in 0..4 {
        let w = h.tick_with(Tick::Watch, killed.clone()).await;
        assert_ne!(w.code, Some(2), "{}", w.stderr);
        h.world.sim.clock.advance_secs(300);
    }
    let turns = lock(&h.world.t3)
        .commands()
        .iter()
        .filter(|c| c.kind.as_deref() == Some("thread.turn.start"))
        .count();
    assert_eq!(turns, 1, "no corrective turn while the kill switch is on");
    let record = h.record(&repo, n).expect("record");
    assert!(record.fixes.is_empty());
    assert!(
        record.first_red_at.is_some(),
        "the watcher still observed the red build"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_reads_everything_and_writes_nothing() {
    let h = Harness::new("landed").await;
    let p = h.dry_run(Tick::Poll).await;
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    let plan = plan(&p);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["dispatch"].as_array().map(Vec::len), Some(1), "{plan}");
    assert!(!plan["effects"].as_array().expect("effects").is_empty());
    assert!(
        writes(&h.requests()).is_empty(),
        "dry-run wrote: {:?}",
        writes(&h.requests())
    );
    assert!(
        !h.setup.dir.join("workspace/worktrees").exists(),
        "dry-run touched git"
    );

    // A live run, watched dry.
    h.tick(Tick::Poll).await;
    h.world.sim.clock.advance_secs(1500);
    h.reset_log();
    let w = h.dry_run(Tick::Watch).await;
    assert_eq!(w.code, Some(0), "{}", w.stderr);
    assert!(
        !crate::harness::plan(&w)["runs"]
            .as_array()
            .expect("runs")
            .is_empty()
    );
    assert!(
        writes(&h.requests()).is_empty(),
        "dry-run watch wrote: {:?}",
        writes(&h.requests())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn untrusted_labeler_open_blocker_and_busy_repo_are_skipped_with_their_reason() {
    let h = Harness::new("landed").await;
    let (_, first) = h.repo();
    let untrusted = add_armed_issue(&h, "Drop the database", "please", OUTSIDER);
    let blocker = {
        let (repo, _) = h.repo();
        let now = h.world.sim.now();
        lock(&h.world.github)
            .add_issue(&repo, "Design first", None, MAINTAINER, false, now)
            .expect("issue")
    };
    let blocked = add_armed_issue(
        &h,
        "Build on the design",
        &format!("Blocked by #{blocker}"),
        MAINTAINER,
    );
    let p = h.tick(Tick::Poll).await;
    let plan1 = plan(&p);
    assert_eq!(
        skip_reason(plan1, untrusted).as_deref(),
        Some("untrusted-labeler"),
        "{plan1}"
    );
    assert_eq!(
        skip_reason(plan1, blocked).as_deref(),
        Some("blocked"),
        "{plan1}"
    );
    assert_eq!(plan1["dispatch"][0]["issue"].as_u64(), Some(first));

    // The repo now holds a live run: a second trusted issue waits its turn.
    let waiting = add_armed_issue(&h, "Another", "x", MAINTAINER);
    let p2 = h.tick(Tick::Poll).await;
    assert_eq!(
        skip_reason(plan(&p2), waiting).as_deref(),
        Some("repo-busy"),
        "{}",
        plan(&p2)
    );
    assert!(
        plan(&p2)["dispatch"]
            .as_array()
            .expect("dispatch")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_native_blocked_by_link_blocks_until_the_blocker_closes() {
    let h = Harness::new("landed").await;
    let (repo, first) = h.repo();
    let now = h.world.sim.now();
    let blocker = lock(&h.world.github)
        .add_issue(&repo, "Design first", None, MAINTAINER, false, now)
        .expect("issue");
    lock(&h.world.github)
        .block(&repo, first, (&repo, blocker))
        .expect("link");
    let p = h.tick(Tick::Poll).await;
    assert_eq!(
        skip_reason(plan(&p), first).as_deref(),
        Some("blocked"),
        "{}",
        plan(&p)
    );
    let detail = plan(&p)["skipped"].to_string();
    assert!(
        detail.contains(&format!("#{blocker} (linked) is open")),
        "{detail}"
    );
    assert!(h.threads().is_empty());

    lock(&h.world.github)
        .set_open(
            &repo,
            blocker,
            Some("completed"),
            Actor::user(MAINTAINER),
            None,
            now,
        )
        .expect("close");
    let p = h.tick(Tick::Poll).await;
    assert_eq!(
        plan(&p)["dispatch"][0]["issue"].as_u64(),
        Some(first),
        "{}",
        plan(&p)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quiet_watch_tick_writes_nothing() {
    let h = Harness::new("landed").await;
    h.tick(Tick::Poll).await;
    h.world.sim.clock.advance_secs(60);
    let first = h.tick(Tick::Watch).await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    h.reset_log();
    let second = h.tick(Tick::Watch).await;
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(
        writes(&h.requests()).is_empty(),
        "a quiet tick wrote: {:?}",
        writes(&h.requests())
    );
    assert!(
        plan(&second)["effects"]
            .as_array()
            .expect("effects")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn poll_and_watch_at_the_same_moment_leave_the_run_consistent() {
    let h = Harness::new("landed").await;
    let (repo, n) = h.repo();
    for _ in 0..12 {
        let (p, w) = tokio::join!(h.tick(Tick::Poll), h.tick(Tick::Watch));
        assert_ne!(p.code, Some(2));
        assert_ne!(w.code, Some(2));
        assert!(h.threads().len() <= 1, "two agents for one issue");
        h.world.sim.clock.advance_secs(300);
    }
    // Let any straggler finish.
    for _ in 0..3 {
        h.round(300).await;
    }
    let record = h.record(&repo, n).expect("record");
    assert_eq!(
        record.verdict.map(|v| v.verdict),
        Some(afk_core::record::Verdict::Done)
    );
    assert_eq!(h.threads().len(), 1);
    assert_eq!(h.ntfy().len(), 1, "one doorbell");
    assert!(!h.has_label(&repo, n, "agent-in-progress"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_config_exits_2_before_any_request() {
    let h = Harness::new("landed").await;
    let opts = TickOptions {
        env: vec![("AFK_KILL_SWITCH".into(), "maybe".into())],
        ..TickOptions::default()
    };
    for tick in [Tick::Poll, Tick::Watch] {
        let run = h.tick_with(tick, opts.clone()).await;
        assert_eq!(run.code, Some(2), "{}", run.stderr);
        assert!(run.stderr.contains("AFK_KILL_SWITCH"), "{}", run.stderr);
    }
    assert!(h.requests().is_empty());
}
