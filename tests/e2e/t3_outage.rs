//! A T3 outage under a live run: every watch tick still reads the tracker and CI, reports the
//! run as waiting on T3 and exits 1 naming T3; past `limits.t3_outage_page_after` (30m) the
//! outage is paged exactly once on ntfy and on Slack; when T3 answers again the run reaches its
//! verdict as usual.

use std::collections::BTreeMap;

use afk_core::record::{Channel, Verdict};
use afk_sim::driver::Tick;
use afk_sim::infra::{FaultAction, FaultRule, Remote};

use crate::harness::{Harness, assert_no_secret, dispatched, plan, writes};

const LOCK: &str = "agent-in-progress";
const PAGE_TITLE: &str = "afk: T3 unreachable";

fn t3_down() -> FaultRule {
    FaultRule {
        remote: Some(Remote::T3),
        method: None,
        path: None,
        skip: 0,
        times: None,
        action: FaultAction::Status {
            status: 503,
            body: Some("upstream connect error".to_owned()),
            headers: BTreeMap::new(),
        },
        seen: 0,
    }
}

fn pages(h: &Harness) -> (usize, usize) {
    let ntfy = h
        .ntfy()
        .iter()
        .filter(|m| m.title.starts_with(PAGE_TITLE))
        .count();
    let slack = h
        .slack()
        .iter()
        .filter(|p| p.text.contains("T3 unreachable"))
        .count();
    (ntfy, slack)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_t3_is_reported_every_tick_paged_once_and_the_run_lands_after() {
    let h = Harness::new("landed").await;
    let (repo, n) = h.repo();
    let p = h.tick(Tick::Poll).await;
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    assert_eq!(dispatched(plan(&p)), vec![n]);
    let w = h.tick(Tick::Watch).await;
    assert_eq!(w.code, Some(0), "{}", w.stderr);

    h.fault(t3_down());
    // Ticks every 5 minutes; the first one to fail sees the outage at minute 0.
    for tick in 0..9 {
        h.world.sim.clock.advance_secs(300);
        let minute = tick * 5;
        if minute == 30 {
            // The dry run shows the page it would send, and sends nothing.
            let dry = h.dry_run(Tick::Watch).await;
            assert_eq!(dry.code, Some(1), "{}", dry.stderr);
            let effects = plan(&dry)["effects"].as_array().expect("effects").clone();
            let page: Vec<_> = effects
                .iter()
                .filter(|e| {
                    e["kind"] == "notify"
                        && e["notice"]["title"]
                            .as_str()
                            .is_some_and(|t| t.starts_with(PAGE_TITLE))
                })
                .collect();
            assert_eq!(page.len(), 2, "ntfy and Slack: {effects:?}");
            assert_eq!(pages(&h), (0, 0), "a dry run pages nothing");
        }
        h.reset_log();
        let w = h.tick(Tick::Watch).await;
        assert_no_secret(&w);
        assert_eq!(w.code, Some(1), "minute {minute}: {}", w.stderr);
        let plan = plan(&w);
        let runs = plan["runs"].as_array().expect("runs");
        assert_eq!(runs.len(), 1, "the live run is still reported: {plan}");
        assert_eq!(runs[0]["decision"], "wait", "{plan}");
        let reason = runs[0]["reason"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with("waiting on T3: unreachable since") && reason.contains("503"),
            "minute {minute}: {reason}"
        );
        let errors = plan["errors"].to_string();
        assert!(errors.contains("T3 unreachable at http://"), "{errors}");
        assert!(w.stderr.contains("T3 unreachable"), "{}", w.stderr);
        let log = h.requests();
        assert!(
            log.iter().any(|r| r.remote == Remote::Github),
            "the tracker is still read"
        );
        assert!(
            !writes(&log).iter().any(|r| r.remote == Remote::T3),
            "nothing is sent to T3"
        );
        let expected = if minute >= 30 { (1, 1) } else { (0, 0) };
        assert_eq!(pages(&h), expected, "minute {minute}");
        assert!(h.has_label(&repo, n, LOCK), "the lock is kept");
    }
    let record = h.record(&repo, n).expect("record");
    assert!(record.verdict.is_none(), "no verdict while T3 is silent");
    assert!(record.t3_unreachable_since.is_some());
    assert_eq!(record.t3_outage_paged, [Channel::Ntfy, Channel::Slack]);
    let body = &h.comments(&repo, n)[0].body;
    assert!(
        body.contains("**T3:** unreachable since") && body.contains("(paged via ntfy, Slack)"),
        "{body}"
    );
    let page = h
        .ntfy()
        .into_iter()
        .find(|m| m.title.starts_with(PAGE_TITLE))
        .expect("the page");
    assert_eq!(page.priority, 4);
    assert!(page.tags.iter().any(|t| t == "t3-unreachable"), "{page:?}");
    assert!(
        page.message.contains(&format!("{repo}#{n}")),
        "{}",
        page.message
    );

    h.world.sim.clear_faults();
    let record = h.run_to_verdict(20).await;
    let v = record.verdict.as_ref().expect("verdict");
    assert_eq!(v.verdict, Verdict::Done, "{}", v.reason);
    assert_eq!(
        record.t3_unreachable_since, None,
        "the outage marks are cleared"
    );
    assert!(record.t3_outage_paged.is_empty());
    assert!(!h.has_label(&repo, n, LOCK));
    assert_eq!(pages(&h), (1, 1), "still one page per channel");
    assert_eq!(h.ntfy().len(), 2, "the page and the verdict");
    assert_eq!(h.threads().len(), 1, "exactly one agent");
}
