//! The status comment: what people see in each state, and how the record comes back out.

use afk_core::comment::{
    CommentFacts, RecordError, RecordLookup, RenderContext, all_records, latest_record, parse,
    render,
};
use afk_core::model::Login;
use afk_core::record::{Channel, PhaseState, RunRecord, Verdict};

use crate::fixtures::{RecordBuilder, THREAD_URL, check};

fn ctx() -> RenderContext {
    RenderContext {
        thread_url: THREAD_URL.to_owned(),
    }
}

fn red_with_fixes() -> RunRecord {
    RecordBuilder::claimed()
        .dispatched()
        .pushed("9f1c2e4b7a0d")
        .ci(
            PhaseState::Red,
            vec![
                check("build", Some("https://ci.example.test/b/1")),
                check("unit tests", Some("https://ci.example.test/b/2")),
            ],
        )
        .fix("1a2b3c4d5e6f", &["unit tests"], 50)
        .fix("9f1c2e4b7a0d", &["build", "unit tests"], 70)
        .spend(7.456)
        .build()
}

fn states() -> Vec<(&'static str, RunRecord)> {
    vec![
        ("claimed", RecordBuilder::claimed().build()),
        (
            "claimed_dispatch_failing",
            RecordBuilder::claimed()
                .dispatch_failed(2, "T3 answered 503 to thread.create")
                .build(),
        ),
        (
            "dispatched",
            RecordBuilder::claimed().dispatched().spend(0.5).build(),
        ),
        (
            "pushed_ci_pending",
            RecordBuilder::claimed()
                .dispatched()
                .pushed("9f1c2e4b7a0d")
                .ci(PhaseState::Pending, vec![check("build", None)])
                .spend(3.2)
                .build(),
        ),
        (
            "t3_unreachable_paged",
            RecordBuilder::claimed()
                .dispatched()
                .pushed("9f1c2e4b7a0d")
                .ci(PhaseState::Green, vec![check("build", None)])
                .t3_unreachable(40, &[Channel::Ntfy, Channel::Slack])
                .build(),
        ),
        ("red_with_fix_attempts", red_with_fixes()),
        (
            "deploying",
            RecordBuilder::claimed()
                .dispatched()
                .pushed("9f1c2e4b7a0d")
                .ci(PhaseState::Green, vec![check("build", None)])
                .deploy(PhaseState::Pending, "app/app: 1 of 3 replicas updated")
                .build(),
        ),
        (
            "done",
            RecordBuilder::claimed()
                .dispatched()
                .pushed("9f1c2e4b7a0d")
                .ci(
                    PhaseState::Green,
                    vec![check("build", Some("https://ci.example.test/b/3"))],
                )
                .deploy(PhaseState::Green, "app/app rolled out 9f1c2e4")
                .spend(12.3456)
                .verdict(Verdict::Done, "pushed, CI green, rolled out", 95)
                .delivered(&[Channel::Ntfy, Channel::Slack], &[], 0)
                .build(),
        ),
        (
            "done_without_deploy_target",
            RecordBuilder::claimed()
                .dispatched()
                .pushed("9f1c2e4b7a0d")
                .ci(PhaseState::Green, vec![])
                .deploy(PhaseState::Skipped, "")
                .verdict(Verdict::Done, "pushed and CI green; no deploy target", 61)
                .delivered(&[Channel::Ntfy], &[], 0)
                .build(),
        ),
        (
            "frozen",
            RecordBuilder::claimed()
                .dispatched()
                .pushed("9f1c2e4b7a0d")
                .ci(
                    PhaseState::Red,
                    vec![check("e2e", Some("https://ci.example.test/b/9"))],
                )
                .fix("9f1c2e4b7a0d", &["e2e"], 50)
                .fix("77aa88bb99cc", &["e2e"], 65)
                .spend(31.0)
                .verdict(
                    Verdict::Frozen,
                    "still red after 2 fix-forward attempts with the same failing checks",
                    110,
                )
                .delivered(&[Channel::Slack], &[Channel::Ntfy], 3)
                .build(),
        ),
        (
            "needs_human_with_question",
            RecordBuilder::claimed()
                .dispatched()
                .question(
                    "user-input",
                    "Should the discount apply to shipping too?\n- yes\n- no\n\n1. or ask @product",
                )
                .spend(1.75)
                .verdict(
                    Verdict::NeedsHuman,
                    "the agent asked a question; unattended runs must not ask",
                    33,
                )
                .build(),
        ),
    ]
}

#[test]
fn rendered_states_match_snapshots() {
    for (name, record) in states() {
        insta::assert_snapshot!(format!("comment_{name}"), render(&record, &ctx()));
    }
}

#[test]
fn every_state_parses_back_to_its_record_and_rerenders_identically() {
    for (name, record) in states() {
        let body = render(&record, &ctx());
        let back = parse(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(back, record, "{name}");
        assert_eq!(
            render(&back, &ctx()),
            body,
            "{name}: a quiet tick must not change the text"
        );
    }
}

fn line<'a>(body: &'a str, phase: &str) -> &'a str {
    body.lines()
        .find(|l| l.starts_with("- [") && l[6..].starts_with(phase))
        .unwrap_or_else(|| panic!("no line for {phase} in\n{body}"))
}

#[test]
fn checklist_marks_done_current_and_later_phases() {
    let body = render(&RecordBuilder::claimed().build(), &ctx());
    assert!(line(&body, "worktree").starts_with("- [~]"));
    assert!(line(&body, "pushed").starts_with("- [ ]"));

    let body = render(&RecordBuilder::claimed().dispatched().build(), &ctx());
    assert!(line(&body, "worktree").starts_with("- [x]"));
    assert!(line(&body, "tests red").starts_with("- [~]"));
    assert!(line(&body, "tests green").starts_with("- [~]"));
    assert!(line(&body, "tests red").contains("cannot observe"));
    assert!(line(&body, "CI").starts_with("- [ ]"));

    let body = render(&red_with_fixes(), &ctx());
    assert!(line(&body, "pushed").starts_with("- [x]"));
    assert!(
        line(&body, "pushed")
            .contains("[`9f1c2e4`](https://github.com/octo/shop/commit/9f1c2e4b7a0d)")
    );
    assert!(line(&body, "CI").starts_with("- [~]"));
    assert!(line(&body, "CI").contains("[unit tests](https://ci.example.test/b/2)"));
    assert!(body.contains("2 corrective turn(s)"));
    assert!(body.contains("**Spend:** $7.46"));
    assert!(body.contains("**Started:** 2025-03-01 09:00 UTC"));
}

#[test]
fn finished_runs_show_duration_verdict_and_where_they_stopped() {
    let (_, frozen) = states()
        .into_iter()
        .find(|(n, _)| *n == "frozen")
        .expect("frozen");
    let body = render(&frozen, &ctx());
    assert!(body.contains("**Duration:** 1h50m"));
    assert!(body.contains("**Verdict: frozen** — still red after 2 fix-forward attempts"));
    assert!(line(&body, "CI").contains("stopped here"));
    assert!(line(&body, "done").starts_with("- [ ]"));
    assert!(!body.contains("[~]"), "a finished run has no current phase");
    assert!(body.contains("sent via Slack; pending via ntfy; 3 failed delivery attempt(s)"));

    let skipped = states()
        .into_iter()
        .find(|(n, _)| *n == "done_without_deploy_target")
        .expect("state")
        .1;
    let body = render(&skipped, &ctx());
    assert!(line(&body, "deployed").starts_with("- [x]"));
    assert!(line(&body, "deployed").contains("skipped"));
    assert!(line(&body, "done").starts_with("- [x]"));
}

#[test]
fn hostile_text_cannot_break_out_mention_or_forge_a_record() {
    let forged = "<!-- afk-run-record v1 {\"v\":1} -->";
    let record = RecordBuilder::claimed()
        .dispatched()
        .pushed("abc")
        .ci(
            PhaseState::Red,
            vec![check(
                "x](https://evil.example) `code` <img src=x> @octocat",
                Some("javascript:alert(1)"),
            )],
        )
        .question(
            "user-input",
            &format!("hi @team --> {forged} </details>\n# heading"),
        )
        .verdict(Verdict::NeedsHuman, &format!("reason {forged} @here"), 20)
        .build();
    let body = render(&record, &ctx());
    let visible = &body[..body.find("<!-- afk-run-record").expect("block")];
    assert!(
        !visible.contains('<'),
        "no HTML from outside text:\n{visible}"
    );
    assert!(
        visible
            .lines()
            .all(|l| !l.trim_start_matches('>').contains('>')),
        "'>' only as a quote marker:\n{visible}"
    );
    assert!(
        !visible.contains("@octocat") && !visible.contains("@team") && !visible.contains("@here")
    );
    assert!(!visible.contains("javascript:"));
    assert!(visible.contains("x\\](https://evil.example)"));
    assert_eq!(
        visible.matches("](https://evil.example)").count(),
        visible.matches("\\](https://evil.example)").count(),
        "every ']' from outside is escaped"
    );
    assert!(!visible.contains("\n# heading"));
    assert_eq!(body.matches("<!-- afk-run-record").count(), 1);
    assert_eq!(parse(&body).expect("parses"), record);
}

#[test]
fn long_outside_text_is_bounded() {
    let many: Vec<_> = (0..50)
        .map(|i| check(&format!("check-{i}"), None))
        .collect();
    let record = RecordBuilder::claimed()
        .dispatched()
        .pushed("abc123")
        .ci(PhaseState::Red, many)
        .verdict(Verdict::NeedsHuman, &"very long reason ".repeat(1000), 20)
        .build();
    let body = render(&record, &ctx());
    let visible = &body[..body.find("<!-- afk-run-record").expect("block")];
    assert!(visible.contains("and 40 more"));
    assert!(!visible.contains("check-10,"));
    assert!(
        visible.len() < 4000,
        "visible part is {} bytes",
        visible.len()
    );
}

fn bot() -> Login {
    Login::new("afk-bot")
}

fn comment(id: u64, author: &str, body: String) -> CommentFacts {
    CommentFacts {
        id,
        author: Login::new(author),
        body,
    }
}

#[test]
fn parse_refuses_missing_duplicate_unknown_and_corrupt_blocks() {
    let record = red_with_fixes();
    let body = render(&record, &ctx());
    assert_eq!(parse("just a comment"), Err(RecordError::Missing));
    assert!(matches!(
        parse(&format!("{body}\n{body}")),
        Err(RecordError::Corrupt(_))
    ));
    assert_eq!(
        parse(&body.replace("afk-run-record v1 ", "afk-run-record v2 ")),
        Err(RecordError::UnknownVersion(2))
    );
    assert_eq!(
        parse(&body.replace("{\"v\":1,", "{\"v\":7,")),
        Err(RecordError::UnknownVersion(7))
    );
    assert!(matches!(
        parse(&body.replace("\"status\":", "\"status\"")),
        Err(RecordError::Corrupt(_))
    ));
    assert!(matches!(
        parse(&body.replace(" -->", "")),
        Err(RecordError::Corrupt(_))
    ));
    assert!(matches!(
        parse("<!-- afk-run-record vx {} -->"),
        Err(RecordError::Corrupt(_))
    ));
}

#[test]
fn latest_record_trusts_only_the_bot_and_takes_its_newest() {
    let old = RecordBuilder::claimed().build();
    let new = RecordBuilder::claimed().dispatched().build();
    let mut forged = RecordBuilder::claimed()
        .dispatched()
        .pushed("deadbeef")
        .build();
    forged.spend_usd = 0.01;
    let comments = vec![
        comment(1, "afk-bot", render(&old, &ctx())),
        comment(2, "alice", "LGTM".to_owned()),
        comment(3, "AFK-Bot", render(&new, &ctx())),
        comment(4, "afk-bot", "Released the orphan lock.".to_owned()),
        comment(5, "mallory", render(&forged, &ctx())),
    ];
    match latest_record(&comments, &bot()) {
        RecordLookup::Found {
            comment_id, record, ..
        } => {
            assert_eq!(comment_id, 3);
            assert_eq!(*record, new);
        }
        other => panic!("expected the bot's newest record, got {other:?}"),
    }
    let records = all_records(&comments, &bot());
    assert_eq!(
        records.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![1, 3]
    );

    let only_forged = vec![comment(5, "mallory", render(&forged, &ctx()))];
    assert_eq!(latest_record(&only_forged, &bot()), RecordLookup::None);
    assert_eq!(latest_record(&[], &bot()), RecordLookup::None);
}

#[test]
fn a_corrupt_newest_bot_record_goes_to_a_human_not_to_an_older_record() {
    let good = render(&RecordBuilder::claimed().build(), &ctx());
    let corrupt = good.replace("\"issue\":42", "\"issue\":\"forty-two\"");
    let comments = vec![comment(1, "afk-bot", good), comment(2, "afk-bot", corrupt)];
    match latest_record(&comments, &bot()) {
        RecordLookup::Corrupt { comment_id, error } => {
            assert_eq!(comment_id, 2);
            assert!(matches!(error, RecordError::Corrupt(_)));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let two_blocks = vec![comment(
        9,
        "afk-bot",
        format!(
            "{}{}",
            render(&RecordBuilder::claimed().build(), &ctx()),
            render(&red_with_fixes(), &ctx())
        ),
    )];
    assert!(matches!(
        latest_record(&two_blocks, &bot()),
        RecordLookup::Corrupt { comment_id: 9, .. }
    ));
}

/// Everything that comes from outside at its largest: a huge question, error and reason, a
/// matrix build with thousands of failing checks, the most fix-forward attempts the config
/// allows, and text that costs the most once escaped (`<` and astral characters).
fn oversized() -> RunRecord {
    let heavy = |n: usize| "<🦀>".repeat(n);
    let failing: Vec<_> = (0..3000)
        .map(|i| {
            check(
                &format!("matrix {i} {}", heavy(20)),
                Some(&format!(
                    "https://ci.example.test/b/{i}/{}",
                    "x".repeat(300)
                )),
            )
        })
        .collect();
    let names: Vec<String> = (0..500)
        .map(|i| format!("check {i} {}", heavy(10)))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut b = RecordBuilder::claimed()
        .dispatch_failed(2, &heavy(30_000))
        .dispatched()
        .pushed("9f1c2e4b7a0d")
        .ci(PhaseState::Red, failing)
        .deploy(PhaseState::Red, &heavy(30_000))
        .question("user-input", &heavy(100_000));
    for minute in 0..100 {
        b = b.fix("9f1c2e4b7a0d", &names, 50 + minute);
    }
    b.verdict(Verdict::Frozen, &heavy(30_000), 300).build()
}

#[test]
fn an_oversized_record_is_compacted_to_fit_one_comment() {
    let record = oversized();
    let body = render(&record, &ctx());
    let chars = body.chars().count();
    assert!(
        chars <= afk_core::comment::COMMENT_MAX_CHARS,
        "{chars} characters"
    );
    assert!(chars < 65_536, "GitHub refuses {chars} characters");
    let back = parse(&body).expect("the compacted record parses");
    // What the machine decides on is exact.
    assert_eq!(back.run, record.run);
    assert_eq!(back.status, record.status);
    assert_eq!(back.push, record.push);
    assert_eq!(back.fixes.len(), 100);
    assert_eq!(back.fixes[99].sha, record.fixes[99].sha);
    assert_eq!(back.fixes[99].at, record.fixes[99].at);
    let (v, w) = (
        back.verdict.expect("verdict"),
        record.verdict.clone().expect("verdict"),
    );
    assert_eq!(
        (v.verdict, v.at, v.notify_pending),
        (w.verdict, w.at, w.notify_pending)
    );
    // What only the comment shows is cut, and says so.
    assert!(back.question.expect("question").text.ends_with('…'));
    // The same record renders the same bytes: a quiet tick still writes nothing.
    assert_eq!(render(&record, &ctx()), body);
}

#[test]
fn a_large_but_fitting_record_is_kept_whole() {
    let failing: Vec<_> = (0..200)
        .map(|i| {
            check(
                &format!("matrix job {i}"),
                Some(&format!("https://ci.example.test/b/{i}")),
            )
        })
        .collect();
    let record = RecordBuilder::claimed()
        .dispatched()
        .pushed("9f1c2e4b7a0d")
        .ci(PhaseState::Red, failing)
        .question("user-input", &"Which way? ".repeat(1000))
        .build();
    let body = render(&record, &ctx());
    assert!(body.chars().count() <= afk_core::comment::COMMENT_MAX_CHARS);
    assert_eq!(parse(&body).expect("parses"), record);
}

#[test]
fn a_record_written_before_text_fingerprints_still_parses() {
    let mut record = RecordBuilder::claimed().build();
    record.text_sha256 = Some(afk_core::vetting::text_sha256("t", "b"));
    let body = render(&record, &ctx());
    assert_eq!(afk_core::comment::parse(&body).expect("record"), record);
    assert!(body.contains("text_sha256"), "{body}");

    record.text_sha256 = None;
    let old = render(&record, &ctx());
    assert!(
        !old.contains("text_sha256"),
        "an absent field is not written"
    );
    assert_eq!(afk_core::comment::parse(&old).expect("old record"), record);
}
