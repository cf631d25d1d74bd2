//! Wire facts of the real forges that the simulators once glossed over, end to end: Forgejo's
//! per-page timeline count, Forgejo silently dropping unknown label names, a GitHub server
//! whose GraphQL schema has no issue dependencies, and GitHub's GraphQL priced in points.

use afk_core::record::Verdict;
use afk_sim::driver::Tick;
use afk_sim::forgejo::{self as fj, NewIssue};
use afk_sim::github::Actor;
use afk_sim::infra::lock;
use afk_sim::scenario::{MAINTAINER, OUTSIDER};

use crate::harness::{Harness, dispatched, plan, skip_reason};

const READY: &str = "ready-for-agent";
const LOCK: &str = "agent-in-progress";
const HUMAN: &str = "ready-for-human";

/// Sixty comments: the timeline runs past Forgejo's first page of fifty.
fn chatter(h: &Harness, repo: &str, n: u64) {
    for k in 0..60 {
        fj::add_comment(&h.world, repo, n, OUTSIDER, &format!("+1 ({k})")).expect("comment");
    }
}

fn repo_labels(h: &Harness, repo: &str) -> Vec<String> {
    lock(&h.world.forgejo)
        .repo(repo)
        .map(|r| r.labels.iter().map(|l| l.name.clone()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn forgejo_the_labelling_on_a_later_timeline_page_is_the_one_that_counts() {
    let h = Harness::new("forgejo").await;
    let (repo, armed_then_taken_over) = h.repo();
    // The maintainer armed it (page one); an outsider re-applied the label after a long
    // discussion (page two). Reading only page one would trust the maintainer's stale label.
    h.world.sim.clock.advance_secs(60);
    chatter(&h, &repo, armed_then_taken_over);
    fj::unlabel_issue(&h.world, &repo, armed_then_taken_over, READY, OUTSIDER).expect("unlabel");
    fj::label_issue(&h.world, &repo, armed_then_taken_over, READY, OUTSIDER).expect("relabel");
    // The reverse: an outsider's label first, the maintainer's re-arming on page two.
    let rearmed = fj::add_issue(
        &h.world,
        &repo,
        NewIssue {
            title: "Rearmed after a long thread".into(),
            body: "x".into(),
            author: OUTSIDER.into(),
            labels: vec![READY.into()],
            pull_request: false,
        },
    )
    .expect("issue");
    chatter(&h, &repo, rearmed);
    h.world.sim.clock.advance_secs(60);
    fj::unlabel_issue(&h.world, &repo, rearmed, READY, MAINTAINER).expect("unlabel");
    fj::label_issue(&h.world, &repo, rearmed, READY, MAINTAINER).expect("relabel");

    let p = h.tick(Tick::Poll).await;
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    assert_eq!(
        skip_reason(plan(&p), armed_then_taken_over).as_deref(),
        Some("untrusted-labeler"),
        "{}",
        plan(&p)
    );
    assert_eq!(dispatched(plan(&p)), vec![rearmed], "{}", plan(&p));
    assert!(!h.has_label(&repo, armed_then_taken_over, LOCK));
    assert!(h.has_label(&repo, rearmed, LOCK));
}

#[tokio::test(flavor = "multi_thread")]
async fn forgejo_the_lock_and_the_human_label_exist_though_the_repo_never_had_them() {
    let h = Harness::new("forgejo-needs-human").await;
    let (repo, n) = h.repo();
    let before = repo_labels(&h, &repo);
    assert!(
        !before.iter().any(|l| l == LOCK || l == HUMAN),
        "{before:?}"
    );
    let p = h.tick(Tick::Poll).await;
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    assert_eq!(dispatched(plan(&p)), vec![n]);
    assert!(
        h.has_label(&repo, n, LOCK),
        "the lock really is on the issue"
    );
    let after = repo_labels(&h, &repo);
    for l in [READY, LOCK, HUMAN] {
        assert!(
            after.iter().any(|x| x == l),
            "{l} created up front: {after:?}"
        );
    }
    let record = h.run_to_verdict(20).await;
    assert_eq!(record.verdict.map(|v| v.verdict), Some(Verdict::NeedsHuman));
    assert!(h.has_label(&repo, n, HUMAN), "{:?}", h.labels(&repo, n));
}

#[tokio::test(flavor = "multi_thread")]
async fn github_without_blocked_by_in_its_schema_still_dispatches_and_honours_body_blockers() {
    let h = Harness::new("landed").await;
    let (repo, n) = h.repo();
    let now = h.world.sim.now();
    let blocked = {
        let mut gh = lock(&h.world.github);
        gh.graphql_without_blocked_by = true;
        let design = gh
            .add_issue(&repo, "Design first", None, MAINTAINER, false, now)
            .expect("issue");
        let blocked = gh
            .add_issue(
                &repo,
                "Build on the design",
                Some(&format!("Blocked by #{design}")),
                MAINTAINER,
                false,
                now,
            )
            .expect("issue");
        gh.label_issue(&repo, blocked, READY, Actor::user(MAINTAINER), now)
            .expect("label");
        blocked
    };
    let p = h.tick(Tick::Poll).await;
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    assert_eq!(dispatched(plan(&p)), vec![n], "{}", plan(&p));
    assert_eq!(
        skip_reason(plan(&p), blocked).as_deref(),
        Some("blocked"),
        "{}",
        plan(&p)
    );
    assert_eq!(
        p.stderr.matches("has no issue dependencies").count(),
        1,
        "warned once: {}",
        p.stderr
    );
    assert!(h.has_label(&repo, n, LOCK));
}

#[tokio::test(flavor = "multi_thread")]
async fn github_the_vetted_issues_of_a_repo_share_one_graphql_query_and_one_point() {
    let h = Harness::new("landed").await;
    let (repo, n) = h.repo();
    let now = h.world.sim.now();
    let blocked = {
        let mut gh = lock(&h.world.github);
        let mut ready = Vec::new();
        for title in ["Second task", "Third task", "Blocked task"] {
            let k = gh
                .add_issue(&repo, title, None, MAINTAINER, false, now)
                .expect("issue");
            gh.label_issue(&repo, k, READY, Actor::user(MAINTAINER), now)
                .expect("label");
            ready.push(k);
        }
        let design = gh
            .add_issue(&repo, "Design first", None, MAINTAINER, false, now)
            .expect("issue");
        gh.block(&repo, ready[2], (&repo, design)).expect("block");
        ready[2]
    };
    h.reset_log();
    let before = afk_sim::github::rate_used(&h.world);
    let p = h.tick(Tick::Poll).await;
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    assert_eq!(dispatched(plan(&p)), vec![n], "{}", plan(&p));
    assert_eq!(
        skip_reason(plan(&p), blocked).as_deref(),
        Some("blocked"),
        "{}",
        plan(&p)
    );
    let queries = h
        .requests()
        .into_iter()
        .filter(|r| r.path == "/graphql")
        .count();
    assert_eq!(queries, 1, "four vetted issues, one query");
    let after = afk_sim::github::rate_used(&h.world);
    assert_eq!(after.1 - before.1, 1, "one GraphQL point for the repo");
}
