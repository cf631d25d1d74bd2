//! Properties of the status comment over arbitrary records: the record always comes back out
//! unchanged, re-rendering is stable, and no one but the bot can supply a record.

use afk_core::comment::{CommentFacts, RecordLookup, RenderContext, latest_record, parse, render};
use afk_core::evidence::Check;
use afk_core::model::{Login, RunId, Timestamp};
use afk_core::record::{
    Channel, CheckSummary, FixAttempt, PhaseState, PushRecord, Question, RECORD_VERSION, RunRecord,
    RunStatus, TurnSpend, Verdict, VerdictRecord,
};
use proptest::prelude::*;

/// Strings that try hard to break the comment: HTML comment markers, a forged block, quotes,
/// backslashes, newlines, bidi and zero-width characters, emoji, mentions — or anything at all.
fn nasty() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "-->",
        "<!--",
        "<!-- afk-run-record v1 {\"v\":1} -->",
        "--!>",
        "\"",
        "\\",
        "\\u003c",
        "\n",
        "\r\n",
        "\t",
        "\0",
        "é",
        "🦀",
        "\u{202E}",
        "\u{200B}",
        "\u{2028}",
        "\u{E0041}",
        "`",
        "@alice",
        "&amp;",
        "<script>",
        "]()",
        " ",
        "x",
    ]);
    prop_oneof![
        any::<String>(),
        prop::collection::vec(pieces, 0..12).prop_map(|v| v.concat()),
    ]
}

fn time() -> impl Strategy<Value = Timestamp> {
    (0i64..4_102_444_800, 0u32..1_000_000_000).prop_map(|(s, n)| {
        chrono::DateTime::from_timestamp(s, n).unwrap_or(chrono::DateTime::UNIX_EPOCH)
    })
}

fn run_id() -> impl Strategy<Value = RunId> {
    (
        prop::sample::select(vec!["o/r", "my-org/svc.api", "A_b/c-d", "x/.github"]),
        1u64..1_000_000,
        1u32..100,
    )
        .prop_map(|(repo, issue, n)| {
            RunId::new(repo.parse().unwrap_or_else(|_| unreachable!()), issue, n)
        })
}

fn checks() -> impl Strategy<Value = Vec<Check>> {
    prop::collection::vec(
        (nasty(), prop::option::of(nasty())).prop_map(|(name, url)| Check { name, url }),
        0..4,
    )
}

fn summary() -> impl Strategy<Value = Option<CheckSummary>> {
    prop::option::of(
        (
            prop::sample::select(vec![
                PhaseState::Pending,
                PhaseState::Green,
                PhaseState::Red,
                PhaseState::Skipped,
            ]),
            checks(),
            nasty(),
        )
            .prop_map(|(state, checks, detail)| CheckSummary {
                state,
                checks,
                detail,
            }),
    )
}

fn channels() -> impl Strategy<Value = Vec<Channel>> {
    prop::collection::vec(
        prop::sample::select(vec![Channel::Ntfy, Channel::Slack]),
        0..3,
    )
}

fn verdict() -> impl Strategy<Value = Option<VerdictRecord>> {
    prop::option::of(
        (
            prop::sample::select(vec![
                Verdict::Done,
                Verdict::NeedsHuman,
                Verdict::Frozen,
                Verdict::Released,
            ]),
            nasty(),
            time(),
            channels(),
            channels(),
            any::<u32>(),
            channels(),
        )
            .prop_map(
                |(
                    verdict,
                    reason,
                    at,
                    notify_pending,
                    notified,
                    notify_failures,
                    notify_given_up,
                )| VerdictRecord {
                    verdict,
                    reason,
                    at,
                    notify_pending,
                    notified,
                    notify_failures,
                    notify_given_up,
                },
            ),
    )
}

fn spend() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        0.0f64..1000.0,
        prop::num::f64::POSITIVE | prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL,
    ]
}

prop_compose! {
    fn record()(
        run in run_id(),
        status in prop::sample::select(vec![RunStatus::Claimed, RunStatus::Dispatched, RunStatus::Finished]),
        times in (time(), time(), prop::option::of(time()), prop::option::of(time()), prop::option::of(time()), prop::option::of(time())),
        strings in (nasty(), nasty(), nasty(), nasty(), prop::option::of(nasty())),
        dispatch_attempts in any::<u32>(),
        push in prop::option::of((nasty(), nasty(), time())),
        ci in summary(),
        deploy in summary(),
        fixes in prop::collection::vec((nasty(), prop::collection::vec(nasty(), 0..3), time()), 0..3),
        spend_usd in spend(),
        question in prop::option::of((nasty(), nasty())),
        verdict in verdict(),
        turn_before in prop::option::of(nasty()),
        idle_unpushed_since in prop::option::of(time()),
        text_sha256 in prop::option::of("[0-9a-f]{64}"),
    ) -> RunRecord {
        let (claimed_at, dispatch_started_at, dispatched_at, last_turn_at, thread_missing_since, first_red_at) = times;
        let (branch, worktree, project_id, thread_id, dispatch_error) = strings;
        RunRecord {
            v: RECORD_VERSION,
            repo: run.repo().clone(),
            issue: run.issue(),
            run,
            status,
            claimed_at,
            branch,
            worktree,
            project_id,
            thread_id,
            text_sha256,
            dispatch_attempts,
            dispatch_error,
            dispatch_started_at,
            dispatched_at,
            last_turn_at,
            turn_before,
            thread_missing_since,
            idle_unpushed_since,
            t3_unreachable_since: None,
            t3_outage_paged: Vec::new(),
            push: push.map(|(sha, url, seen_at)| PushRecord { sha, url, seen_at }),
            ci,
            deploy,
            first_red_at,
            fixes: fixes.into_iter().map(|(sha, failing, at)| FixAttempt { sha, failing, at }).collect(),
            spend_usd,
            // A per-turn estimate when there is a spend (the amount is what the comment shows).
            spend_turns: if spend_usd.is_finite() && spend_usd > 0.0 {
                vec![TurnSpend { turn: "turn-1".to_owned(), usd: spend_usd, requests: 7 }]
            } else {
                Vec::new()
            },
            question: question.map(|(kind, text)| Question { kind, text }),
            verdict,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parse_of_render_is_the_record(record in record(), thread_url in nasty()) {
        let ctx = RenderContext { thread_url };
        let body = render(&record, &ctx);
        let back = parse(&body).map_err(|e| TestCaseError::fail(format!("{e}\n{body}")))?;
        prop_assert_eq!(&back, &record);
        // The next tick reads the record back and renders the very same text.
        prop_assert_eq!(render(&back, &ctx), body.clone());
        prop_assert_eq!(body.matches("<!--").count(), 1);
        prop_assert_eq!(body.matches("-->").count(), 1);
    }

    #[test]
    fn another_authors_block_is_never_returned(record in record(), author in "[a-z]{1,8}") {
        prop_assume!(!author.eq_ignore_ascii_case("afk-bot"));
        let comments = vec![CommentFacts {
            id: 1,
            author: Login::new(author),
            body: render(&record, &RenderContext::default()),
        }];
        prop_assert_eq!(latest_record(&comments, &Login::new("afk-bot")), RecordLookup::None);
    }
}
