//! Doorbell notices: priority per verdict, the links, the facts that matter, and the size bound.

use afk_core::notice::{MAX_MESSAGE_BYTES, notice};
use afk_core::record::{PhaseState, RunRecord, Verdict};

use crate::fixtures::{ISSUE_URL, RecordBuilder, THREAD_URL, check};

fn frozen() -> RunRecord {
    RecordBuilder::claimed()
        .dispatched()
        .pushed("9f1c2e4b7a0d")
        .ci(
            PhaseState::Red,
            vec![
                check("e2e", Some("https://ci.example.test/b/9")),
                check("lint", None),
            ],
        )
        .fix("9f1c2e4b7a0d", &["e2e"], 50)
        .spend(31.0)
        .verdict(
            Verdict::Frozen,
            "still red after 5 fix-forward attempts",
            110,
        )
        .build()
}

#[test]
fn priorities_and_tags_follow_the_verdict() {
    let record = frozen();
    for (verdict, priority, emoji) in [
        (Verdict::Done, 2, "white_check_mark"),
        (Verdict::NeedsHuman, 4, "raising_hand"),
        (Verdict::Frozen, 5, "rotating_light"),
    ] {
        let n = notice(&record, verdict, "why", ISSUE_URL, THREAD_URL);
        assert_eq!(n.priority, priority, "{verdict:?}");
        assert_eq!(n.tags, vec![emoji.to_owned(), "octo/shop".to_owned()]);
        assert_eq!(n.title, format!("octo/shop#42 {}", verdict.as_str()));
        assert_eq!(n.click, ISSUE_URL);
        assert_eq!(n.thread_url, THREAD_URL);
    }
}

#[test]
fn frozen_notice_names_commit_failing_checks_and_links() {
    let n = notice(
        &frozen(),
        Verdict::Frozen,
        "still red after 5 fix-forward attempts",
        ISSUE_URL,
        THREAD_URL,
    );
    insta::assert_snapshot!("notice_frozen", n.message);
    for needle in [
        "**frozen**: still red after 5 fix-forward attempts",
        "run `octo__shop-42-1`",
        "[`9f1c2e4`](https://github.com/octo/shop/commit/9f1c2e4b7a0d)",
        "failing: e2e, lint",
        &format!("[Issue]({ISSUE_URL})"),
        &format!("[T3 thread]({THREAD_URL})"),
    ] {
        assert!(
            n.message.contains(needle),
            "missing {needle:?} in\n{}",
            n.message
        );
    }
}

#[test]
fn done_notice_is_short_and_omits_failures() {
    let record = RecordBuilder::claimed()
        .dispatched()
        .pushed("9f1c2e4b7a0d")
        .ci(PhaseState::Green, vec![])
        .fix("1111111", &["old failure"], 50)
        .verdict(Verdict::Done, "landed", 80)
        .build();
    let n = notice(&record, Verdict::Done, "landed", ISSUE_URL, THREAD_URL);
    assert!(n.message.starts_with("**done**: landed"));
    assert!(n.message.contains("1h20m"));
    assert!(!n.message.contains("old failure"));
}

#[test]
fn needs_human_notice_carries_the_question_escaped() {
    let record = RecordBuilder::claimed()
        .dispatched()
        .question("user-input", "Ping @channel <!channel> which DB?")
        .verdict(Verdict::NeedsHuman, "the agent asked", 20)
        .build();
    let n = notice(
        &record,
        Verdict::NeedsHuman,
        "the agent asked <b>",
        ISSUE_URL,
        THREAD_URL,
    );
    assert!(n.message.contains("which DB?"));
    assert!(!n.message.contains("@channel") && !n.message.contains('<'));
}

#[test]
fn a_huge_reason_and_many_checks_still_fit_ntfy() {
    let many: Vec<_> = (0..200)
        .map(|i| check(&format!("{}{i}", "&".repeat(90)), None))
        .collect();
    let record = RecordBuilder::claimed()
        .dispatched()
        .pushed("9f1c2e4b7a0d")
        .ci(PhaseState::Red, many)
        .question("user-input", &"🦀&".repeat(5000))
        .build();
    let reason = "<&>".repeat(100_000);
    let n = notice(&record, Verdict::Frozen, &reason, ISSUE_URL, THREAD_URL);
    assert!(
        n.message.len() <= MAX_MESSAGE_BYTES,
        "{} bytes",
        n.message.len()
    );
    assert!(n.message.len() < 4096);
    assert!(n.message.contains(&format!("[T3 thread]({THREAD_URL})")));
    assert!(n.message.contains("and 195 more"));
}
