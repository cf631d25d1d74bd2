//! The fleet view (`afk-watch --report`): phases, ages, links, verdict ordering and bounds.

use afk_core::record::{PhaseState, Verdict};
use afk_core::report::{FleetReport, RecentBound, live_run, phase, recent_verdict};

use crate::fixtures::{ISSUE_URL, RecordBuilder, at, check, repo};

const WEB: &str = "https://t3.example.test/threads";

#[test]
fn phases_follow_the_record() {
    assert_eq!(phase(&RecordBuilder::claimed().build()), "claimed");
    assert_eq!(
        phase(&RecordBuilder::claimed().dispatched().build()),
        "agent"
    );
    let pushed = RecordBuilder::claimed().dispatched().pushed("a1");
    assert_eq!(phase(&pushed.build()), "ci");
    let red = RecordBuilder::claimed()
        .dispatched()
        .pushed("a1")
        .ci(PhaseState::Red, vec![check("test", None)]);
    assert_eq!(phase(&red.build()), "fixing");
    let green = RecordBuilder::claimed()
        .dispatched()
        .pushed("a1")
        .ci(PhaseState::Green, vec![]);
    assert_eq!(phase(&green.build()), "deploy");
    let asked = RecordBuilder::claimed()
        .dispatched()
        .question("user-input", "Which port?");
    assert_eq!(phase(&asked.build()), "asked");
    let done = RecordBuilder::claimed()
        .dispatched()
        .verdict(Verdict::Done, "deployed", 90);
    assert_eq!(phase(&done.build()), "finishing");
}

#[test]
fn a_live_run_shows_age_spend_and_links() {
    let r = RecordBuilder::claimed()
        .dispatched()
        .pushed("a1b2")
        .spend(1.25)
        .build();
    let row = live_run(&repo(), 42, ISSUE_URL, Some(&r), WEB, at(95));
    assert_eq!(row.phase, "ci");
    assert_eq!(row.age_secs, 95 * 60);
    assert_eq!(row.age, "1h35m");
    assert_eq!(row.thread_url, format!("{WEB}/{}", r.thread_id));
    assert!(row.push_url.ends_with("/commit/a1b2"));
    let text =
        FleetReport::new(at(95), vec![row], vec![], vec![], RecentBound::default()).render_text();
    assert!(text.contains("octo/shop#42  ci"), "{text}");
    assert!(text.contains("$1.25"), "{text}");
    assert!(text.contains("recent verdicts (0):\n  none"), "{text}");
}

#[test]
fn a_lock_without_a_record_is_unknown() {
    let row = live_run(&repo(), 7, "https://x/7", None, WEB, at(0));
    assert_eq!(row.phase, "unknown");
    assert!(row.thread_url.is_empty());
}

#[test]
fn verdicts_are_newest_first_and_bounded() {
    let bound = RecentBound {
        verdicts: 2,
        ..RecentBound::default()
    };
    let v = |minute: i64, verdict: Verdict| {
        let mut r = RecordBuilder::claimed()
            .dispatched()
            .verdict(verdict, "because", minute)
            .build();
        r.issue = u64::try_from(minute).expect("minute");
        recent_verdict(&r, ISSUE_URL).expect("has a verdict")
    };
    let no_verdict = RecordBuilder::claimed().build();
    assert!(recent_verdict(&no_verdict, ISSUE_URL).is_none());
    let report = FleetReport::new(
        at(100),
        vec![],
        vec![
            v(10, Verdict::Done),
            v(30, Verdict::Frozen),
            v(20, Verdict::NeedsHuman),
        ],
        vec![],
        bound,
    );
    let got: Vec<(&str, u64)> = report
        .recent
        .iter()
        .map(|r| (r.verdict.as_str(), r.issue))
        .collect();
    assert_eq!(got, vec![("frozen", 30), ("needs-human", 20)]);
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("JSON");
    assert_eq!(json["recent"][0]["verdict"], "frozen");
    assert!(
        json["recent_bound"]
            .as_str()
            .is_some_and(|b| b.contains("2 newest"))
    );
}
