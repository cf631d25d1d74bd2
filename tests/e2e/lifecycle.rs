//! Every scenario reaches its verdict, with the right labels, comment, issue state and doorbell.

use afk_core::record::Verdict;

use crate::harness::{Harness, assert_no_secret, plan};

#[tokio::test(flavor = "multi_thread")]
async fn landed_closes_the_issue_releases_the_lock_and_rings_low() {
    let h = Harness::new("landed").await;
    let (repo, n) = h.repo();
    let record = h.run_to_verdict(20).await;
    let v = record.verdict.expect("verdict");
    assert_eq!(v.verdict, Verdict::Done, "{}", v.reason);
    assert!(!h.issue_open(&repo, n), "a landed issue is closed");
    assert!(
        h.labels(&repo, n).is_empty(),
        "no labels left: {:?}",
        h.labels(&repo, n)
    );
    let ntfy = h.ntfy();
    assert_eq!(ntfy.len(), 1, "{ntfy:?}");
    assert_eq!(ntfy[0].priority, 2);
    assert!(
        ntfy[0].click.contains(&format!("/issues/{n}")),
        "{}",
        ntfy[0].click
    );
    assert_eq!(h.slack().len(), 1);
    assert_eq!(h.threads().len(), 1, "exactly one agent");
    let ws = h
        .setup
        .dir
        .join("workspace/worktrees/acme__shop")
        .join(record.run.to_string());
    assert!(!ws.exists(), "a done run's worktree is removed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forgejo_repo_with_woodpecker_ci_lands_the_same_way() {
    use afk_sim::infra::Remote;
    let h = Harness::new("forgejo").await;
    let (repo, n) = h.repo();
    let record = h.run_to_verdict(20).await;
    let v = record.verdict.expect("verdict");
    assert_eq!(v.verdict, Verdict::Done, "{}", v.reason);
    assert!(v.reason.contains("rolled out"), "{}", v.reason);
    assert!(!h.issue_open(&repo, n), "a landed issue is closed");
    assert!(h.labels(&repo, n).is_empty(), "{:?}", h.labels(&repo, n));
    assert_eq!(
        h.comments(&repo, n).len(),
        1,
        "one status comment, edited in place"
    );
    assert_eq!(h.ntfy().len(), 1);
    assert_eq!(h.threads().len(), 1, "exactly one agent");
    let log = h.requests();
    let seen = |remote| log.iter().any(|r| r.remote == remote);
    assert!(seen(Remote::Forgejo) && seen(Remote::Woodpecker));
    assert!(!seen(Remote::Github), "nothing was asked of GitHub");
    let ci_reads: Vec<_> = log
        .iter()
        .filter(|r| r.remote == Remote::Woodpecker)
        .map(|r| r.status)
        .collect();
    assert!(ci_reads.iter().all(|s| *s == 200), "{ci_reads:?}");
    h.assert_no_secret_anywhere();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_question_goes_to_a_human_who_sees_it_in_the_comment() {
    let h = Harness::new("needs-human").await;
    let (repo, n) = h.repo();
    let record = h.run_to_verdict(20).await;
    let v = record.verdict.as_ref().expect("verdict");
    assert_eq!(v.verdict, Verdict::NeedsHuman);
    assert!(h.issue_open(&repo, n));
    assert_eq!(h.labels(&repo, n), vec!["ready-for-human".to_owned()]);
    let body = &h.comments(&repo, n)[0].body;
    assert!(
        body.contains("Should /healthz check the database too?"),
        "{body}"
    );
    assert_eq!(h.ntfy()[0].priority, 4);
    let ws = h
        .setup
        .dir
        .join("workspace/worktrees/acme__shop")
        .join(record.run.to_string());
    assert!(ws.exists(), "an escalated run keeps its worktree");
}

#[tokio::test(flavor = "multi_thread")]
async fn red_ci_is_fixed_forward_in_the_same_thread_then_lands() {
    let h = Harness::new("fix-forward").await;
    let record = h.run_to_verdict(30).await;
    assert_eq!(
        record.verdict.as_ref().map(|v| v.verdict),
        Some(Verdict::Done)
    );
    assert_eq!(record.fixes.len(), 1, "one corrective turn");
    assert_eq!(h.threads().len(), 1, "the fix went to the same thread");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_that_closed_the_issue_then_stayed_red_is_frozen_and_reopened() {
    let h = Harness::new("frozen").await;
    let (repo, n) = h.repo();
    let record = h.run_to_verdict(40).await;
    let v = record.verdict.as_ref().expect("verdict");
    assert_eq!(v.verdict, Verdict::Frozen, "{}", v.reason);
    assert!(h.issue_open(&repo, n), "the auto-closed issue is reopened");
    assert_eq!(h.labels(&repo, n), vec!["ready-for-human".to_owned()]);
    assert_eq!(h.ntfy()[0].priority, 5, "frozen is the hard page");
    let ws = h
        .setup
        .dir
        .join("workspace/worktrees/acme__shop")
        .join(record.run.to_string());
    assert!(ws.exists(), "a frozen run keeps its worktree for forensics");
    assert!(!record.fixes.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_ever_appears_in_output_or_comments() {
    let h = Harness::new("landed").await;
    let (repo, n) = h.repo();
    for _ in 0..10 {
        let (p, w) = h.round(300).await;
        assert_no_secret(&p);
        assert_no_secret(&w);
        plan(&p);
    }
    for c in h.comments(&repo, n) {
        for s in crate::harness::SECRETS {
            assert!(!c.body.contains(s), "a comment holds a secret");
        }
    }
    for m in h.ntfy() {
        for s in crate::harness::SECRETS {
            assert!(!m.message.contains(s) && !m.title.contains(s));
        }
    }
    // T3 commands carry prompts: no secret there either.
    for r in h.requests() {
        for s in crate::harness::SECRETS {
            assert!(
                !r.body.contains(s),
                "{} {} body holds a secret",
                r.method,
                r.path
            );
        }
    }
}

/// Rewrites the scenario's config with a per-run budget.
fn set_budget(h: &Harness, usd: f64) {
    let text = std::fs::read_to_string(&h.setup.config_path).expect("config");
    let text = text.replacen(
        "[limits]\n",
        &format!("[limits]\nmax_budget_usd = {usd:.2}\n"),
        1,
    );
    std::fs::write(&h.setup.config_path, text).expect("config written");
}

#[tokio::test(flavor = "multi_thread")]
async fn many_small_requests_cross_the_budget_and_stop_the_run_before_a_push() {
    use afk_sim::infra::lock;
    use afk_sim::t3::{ScriptedTurn, TokenCounts};
    use serde_json::Value;
    let h = Harness::new("landed").await;
    let (repo, n) = h.repo();
    set_budget(&h, 5.0);
    // 400 requests over the 600 s turn, each 20k input (15k cached) and 800 output: $0.0315
    // a request, $12.60 for the turn. T3 reports each request on its own; the last snapshot
    // alone prices at 8 cents, which is all a running-total reading would ever have seen.
    let thread = format!("afk-{}-{n}-1", repo.replace('/', "__"));
    lock(&h.world.t3).script_next_turn(
        &thread,
        ScriptedTurn {
            duration_secs: Some(600),
            tokens: Some(TokenCounts {
                input: 8_000_000,
                cached_input: 6_000_000,
                output: 320_000,
            }),
            requests: Some(400),
            ..ScriptedTurn::default()
        },
    );
    let record = h.run_to_verdict(10).await;
    let v = record.verdict.clone().expect("verdict");
    assert_eq!(v.verdict, Verdict::NeedsHuman, "{}", v.reason);
    assert!(v.reason.contains("budget"), "{}", v.reason);
    assert!(record.push.is_none(), "stopped before any push");
    assert!(
        record.spend_usd >= 5.0 && record.spend_usd < 12.6,
        "{}",
        record.spend_usd
    );
    let requests: u64 = record.spend_turns.iter().map(|t| t.requests).sum();
    assert!((150..400).contains(&requests), "{requests}");
    assert_eq!(
        h.t3_commands("thread.turn.interrupt").len(),
        1,
        "the agent is stopped"
    );
    let spend = format!(
        "≈ ${:.2}, estimated from {requests} requests",
        record.spend_usd
    );
    let comments = h.comments(&repo, n);
    assert!(
        comments.iter().any(|c| c.body.contains(&spend)),
        "{spend} not in the comment"
    );
    let ntfy = h.ntfy();
    assert_eq!(ntfy.len(), 1, "{ntfy:?}");
    assert!(ntfy[0].message.contains(&spend), "{}", ntfy[0].message);
    assert!(
        h.slack().iter().any(|p| p.text.contains(&spend)
            || Value::Array(p.blocks.clone()).to_string().contains(&spend)),
        "{spend} not in the Slack doorbell"
    );
}

/// Newer T3 (0.0.34 here) with its auto-archive janitor set to archive threads quiet for a
/// minute: a thread afk still watches can leave `/shell` and 404 on detail.
fn auto_archiving_t3(h: &Harness) {
    use afk_sim::infra::lock;
    let mut t3 = lock(&h.world.t3);
    t3.set_version(afk_sim::t3::T3Version::V0_0_34);
    t3.auto_archive_after_secs = Some(60);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_whose_thread_t3_archived_still_lands() {
    let h = Harness::new("landed").await;
    let (repo, n) = h.repo();
    auto_archiving_t3(&h);
    let thread = format!("afk-{}-{n}-1", repo.replace('/', "__"));
    // Dispatch, and let the agent finish its turn (it pushes as it completes).
    h.round(300).await;
    h.round(300).await;
    h.round(0).await;
    // afk's CronJob is late (suspended, or the cluster busy): T3 archives the settled thread.
    h.world.sim.clock.advance_secs(1_500);
    let record = h.run_to_verdict(10).await;
    assert!(
        archived(&h, &thread),
        "the thread was archived while afk watched it"
    );
    let v = record.verdict.expect("verdict");
    assert_eq!(v.verdict, Verdict::Done, "{}", v.reason);
    assert!(
        record.thread_missing_since.is_none(),
        "never seen as missing"
    );
    assert!(!h.issue_open(&repo, n));
}

fn archived(h: &Harness, thread: &str) -> bool {
    afk_sim::infra::lock(&h.world.t3).is_archived(thread)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_run_whose_thread_t3_archived_is_not_paged_as_thread_lost() {
    use afk_sim::infra::lock;
    use afk_sim::t3::{ScriptedTurn, TurnOutcome};
    let h = Harness::new("landed").await;
    let (repo, n) = h.repo();
    auto_archiving_t3(&h);
    let thread = format!("afk-{}-{n}-1", repo.replace('/', "__"));
    lock(&h.world.t3).script_next_turn(
        &thread,
        ScriptedTurn {
            outcome: TurnOutcome::Error {
                message: "provider crashed: out of credits".into(),
            },
            duration_secs: Some(120),
            ..ScriptedTurn::default()
        },
    );
    h.round(300).await;
    // The turn failed at 125 s; T3 archives the quiet thread before afk's next tick.
    h.world.sim.clock.advance_secs(900);
    let record = h.run_to_verdict(10).await;
    assert!(archived(&h, &thread), "archived");
    let v = record.verdict.expect("verdict");
    assert_eq!(v.verdict, Verdict::NeedsHuman, "{}", v.reason);
    assert!(!v.reason.contains("lost"), "{}", v.reason);
    assert!(v.reason.contains("out of credits"), "{}", v.reason);
    let ntfy = h.ntfy();
    assert_eq!(ntfy.len(), 1, "{ntfy:?}");
    assert!(!ntfy[0].message.contains("lost"), "{}", ntfy[0].message);
}
