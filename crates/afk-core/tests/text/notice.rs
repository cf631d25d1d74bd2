//! Doorbell notices: priority per verdict, the links, the facts that matter, and the size bound.

use afk_core::config::{Config, ModelSelection, T3Config};
use afk_core::notice::{MAX_MESSAGE_BYTES, notice, t3_outage_notice};
use afk_core::record::{PhaseState, RunRecord, Verdict};

use afk_core::model::RunId;

use crate::fixtures::{ISSUE_URL, RecordBuilder, THREAD_URL, at, check, repo};

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

fn t3_config() -> Config {
    let mut config = Config::default_closed();
    config.t3 = Some(T3Config {
        base_url: "http://t3-afk.t3-afk.svc:3773".to_owned(),
        token_file: "/var/run/secrets/afk/t3-token".into(),
        web_url: "https://t3.example.org".to_owned(),
        model: ModelSelection {
            instance_id: "claudeAgent".to_owned(),
            model: "claude-sonnet-4-6".to_owned(),
        },
        runtime_mode: "full-access".to_owned(),
    });
    config
}

#[test]
fn the_t3_outage_page_names_t3_the_length_the_runs_and_what_to_check() {
    let a = RecordBuilder::claimed().dispatched().build();
    let mut b = RecordBuilder::claimed().build();
    b.issue = 7;
    b.run = RunId::new(repo(), 7, 1);
    let n = t3_outage_notice(
        &t3_config(),
        at(10),
        at(45),
        &[&a, &b],
        "t3: GET /api/orchestration/shell: HTTP 503",
    );
    insta::assert_snapshot!("notice_t3_unreachable", n.message);
    assert_eq!(n.title, "afk: T3 unreachable for 35m");
    assert_eq!(n.priority, 4);
    assert_eq!(n.tags, ["warning", "t3-unreachable"]);
    assert!(!n.message.contains("t3-token"), "no secret path or token");
}

#[test]
fn a_page_for_a_large_fleet_stays_bounded() {
    let runs: Vec<RunRecord> = (0..500)
        .map(|i| {
            let mut r = RecordBuilder::claimed().build();
            r.issue = i;
            r
        })
        .collect();
    let refs: Vec<&RunRecord> = runs.iter().collect();
    let n = t3_outage_notice(&t3_config(), at(0), at(60), &refs, &"x".repeat(10_000));
    assert!(n.message.len() <= MAX_MESSAGE_BYTES, "{}", n.message.len());
    assert!(n.message.contains("and 480 more"), "{}", n.message);
}
