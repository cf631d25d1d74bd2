//! The GitHub client against the strict GitHub simulator: every operation, pagination,
//! conditional requests, retries and rate limits, plus the simulator's own strictness.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use afk_core::config::CiProvider;
use afk_core::evidence::CloseReason;
use afk_core::facts::Permission;
use afk_core::model::{Login, RepoName};
use afk_remotes::error::ErrorKind;
use afk_remotes::github::{EtagCache, GitHub};
use afk_remotes::http::{RetryPolicy, SecretFile};
use afk_remotes::tracker::{IssueState, SignalState};
use afk_sim::github::{Actor, Role, State, push_commit};
use afk_sim::infra::{Clock, FaultAction, FaultRule, Remote, Sim, lock};
use afk_sim::server::{Running, start};
use afk_sim::world::World;
use tempfile::NamedTempFile;

const TOKEN: &str = "ghp-sim-token-0123456789";
const BOT: &str = "afk-bot";

struct Env {
    running: Running,
    token: NamedTempFile,
    gh: GitHub,
    repo: RepoName,
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
        deadline: None,
        default_rate_limit_wait: Duration::from_secs(1),
        max_body_bytes: afk_remotes::http::DEFAULT_MAX_BODY_BYTES,
    }
}

impl Env {
    async fn new() -> Env {
        // The clock starts at the real time so rate-limit resets are meaningful to the client.
        let world = World::new(Sim::new(Clock::starting_at(chrono::Utc::now())));
        {
            let mut st = lock(&world.github);
            st.add_token(TOKEN, BOT);
            st.add_repo("acme/app", "main", false).expect("repo");
            st.set_collaborator("acme/app", BOT, Role::Write)
                .expect("collaborator");
        }
        let running = start(world).await.expect("simulator");
        let mut token = NamedTempFile::new().expect("tempfile");
        writeln!(token, "{TOKEN}").expect("write token");
        let gh = GitHub::new(
            running.url(Remote::Github),
            SecretFile::new(token.path()),
            policy(),
        )
        .expect("client");
        Env {
            running,
            token,
            gh,
            repo: "acme/app".parse().expect("repo name"),
        }
    }

    fn world(&self) -> &Arc<World> {
        &self.running.world
    }

    fn with<T>(&self, f: impl FnOnce(&mut State, chrono::DateTime<chrono::Utc>) -> T) -> T {
        let now = self.world().sim.now();
        f(&mut lock(&self.world().github), now)
    }

    fn client(&self, policy: RetryPolicy) -> GitHub {
        GitHub::new(
            self.running.url(Remote::Github),
            SecretFile::new(self.token.path()),
            policy,
        )
        .expect("client")
    }

    fn issue(&self, title: &str) -> u64 {
        self.with(|st, now| {
            st.add_issue("acme/app", title, Some("body"), "carol", false, now)
                .expect("issue")
        })
    }

    /// Requests the simulated GitHub saw whose path contains `part`.
    fn seen(&self, part: &str) -> Vec<afk_sim::infra::RequestRecord> {
        self.world()
            .sim
            .requests()
            .into_iter()
            .filter(|r| r.remote == Remote::Github && r.path.contains(part))
            .collect()
    }

    fn remaining(&self) -> u64 {
        lock(&self.world().github).rate.remaining
    }

    fn fault(&self, method: &str, path: &str, times: u64, action: FaultAction) {
        self.world().sim.add_fault(FaultRule {
            remote: Some(Remote::Github),
            method: Some(method.into()),
            path: Some(path.into()),
            skip: 0,
            times: Some(times),
            action,
            seen: 0,
        });
    }
}

fn status(code: u16) -> FaultAction {
    FaultAction::Status {
        status: code,
        body: None,
        headers: BTreeMap::new(),
    }
}

#[tokio::test]
async fn list_issues_follows_links_across_pages_and_flags_pull_requests() {
    let env = Env::new().await;
    env.with(|st, now| {
        for i in 0..250 {
            let n = st
                .add_issue("acme/app", &format!("task {i}"), None, "carol", false, now)
                .expect("issue");
            st.label_issue("acme/app", n, "agent:ready", Actor::user("maria"), now)
                .expect("label");
        }
        let pr = st
            .add_issue("acme/app", "a pr", None, "carol", true, now)
            .expect("pr");
        st.label_issue("acme/app", pr, "agent:ready", Actor::user("maria"), now)
            .expect("label");
        st.add_issue("acme/app", "unlabelled", None, "carol", false, now)
            .expect("issue");
    });
    let issues = env
        .gh
        .list_issues(&env.repo, "agent:ready", IssueState::Open)
        .await
        .expect("list");
    assert_eq!(issues.len(), 251);
    assert_eq!(issues.iter().filter(|i| i.is_pull_request).count(), 1);
    assert!(
        issues
            .iter()
            .all(|i| i.labels.contains(&"agent:ready".to_owned()))
    );
    assert!(issues.iter().all(|i| i.body.is_empty() && i.open));
    let pages = env.seen("/repos/acme/app/issues");
    assert_eq!(pages.len(), 3, "100 + 100 + 51");
    assert!(pages[0].query.contains("per_page=100"));
    assert!(pages[2].query.contains("page=3"), "followed Link rel=next");
}

#[tokio::test]
async fn list_issues_filters_by_state() {
    let env = Env::new().await;
    let open = env.issue("open one");
    let closed = env.issue("closed one");
    env.with(|st, now| {
        for n in [open, closed] {
            st.label_issue("acme/app", n, "ready", Actor::user("maria"), now)
                .expect("label");
        }
        st.set_open(
            "acme/app",
            closed,
            Some("not_planned"),
            Actor::user("maria"),
            None,
            now,
        )
        .expect("close");
    });
    let numbers =
        |v: Vec<afk_remotes::tracker::Issue>| v.iter().map(|i| i.number).collect::<Vec<_>>();
    let list = |s| env.gh.list_issues(&env.repo, "ready", s);
    assert_eq!(
        numbers(list(IssueState::Open).await.expect("open")),
        vec![open]
    );
    let closed_list = list(IssueState::Closed).await.expect("closed");
    assert_eq!(closed_list[0].close_reason, Some(CloseReason::NotPlanned));
    assert_eq!(numbers(closed_list), vec![closed]);
    assert_eq!(list(IssueState::All).await.expect("all").len(), 2);
}

/// 250 events: unknown event names throughout, `labeled` only where the test puts it.
fn seed_events(env: &Env, number: u64, labeled_at: &[(usize, Actor)]) {
    env.with(|st, now| {
        for i in 0..250 {
            let at = now + chrono::TimeDelta::seconds(i as i64);
            match labeled_at.iter().find(|(idx, _)| *idx == i) {
                Some((_, actor)) => st
                    .add_event(
                        "acme/app",
                        number,
                        "labeled",
                        actor.clone(),
                        Some("ready"),
                        at,
                    )
                    .expect("event"),
                None => {
                    let name = [
                        "blocked_by_added",
                        "issue_type_added",
                        "mentioned",
                        "sub_issue_added",
                    ][i % 4];
                    st.add_event("acme/app", number, name, Actor::user("zed"), None, at)
                        .expect("event")
                }
            }
        }
    });
}

#[tokio::test]
async fn latest_labeling_reads_the_last_page_first_and_steps_back() {
    let env = Env::new().await;
    let n = env.issue("labelled twice");
    seed_events(
        &env,
        n,
        &[(5, Actor::user("alice")), (120, Actor::user("bob"))],
    );
    let change = env
        .gh
        .latest_labeling(&env.repo, n, "ready")
        .await
        .expect("events")
        .expect("a labeled event");
    assert_eq!(change.actor, Login::new("bob"));
    assert!(!change.actor_is_bot && change.added);
    let pages: Vec<String> = env.seen("/events").into_iter().map(|r| r.query).collect();
    assert_eq!(pages.len(), 3);
    assert!(
        pages[1].contains("page=3") && pages[2].contains("page=2"),
        "{pages:?}"
    );
}

#[tokio::test]
async fn latest_labeling_reuses_the_first_page_and_spots_bots() {
    let env = Env::new().await;
    let n = env.issue("labelled by a bot early");
    seed_events(&env, n, &[(5, Actor::bot("renovate[bot]"))]);
    let change = env
        .gh
        .latest_labeling(&env.repo, n, "ready")
        .await
        .expect("events")
        .expect("a labeled event");
    assert_eq!(change.actor, Login::new("renovate[bot]"));
    assert!(change.actor_is_bot);
    assert_eq!(
        env.seen("/events").len(),
        3,
        "first, last, middle; the first is not read twice"
    );

    let app = env.issue("labelled through an app");
    env.with(|st, now| {
        let actor = Actor {
            login: "dora".into(),
            bot: false,
            app: Some("triage-app".into()),
        };
        st.label_issue("acme/app", app, "ready", actor, now)
            .expect("label");
    });
    let change = env
        .gh
        .latest_labeling(&env.repo, app, "READY")
        .await
        .expect("events");
    assert!(
        change.expect("labeled").actor_is_bot,
        "performed_via_github_app counts as a bot"
    );

    let none = env.issue("never labelled");
    seed_events(&env, none, &[]);
    assert_eq!(
        env.gh
            .latest_labeling(&env.repo, none, "ready")
            .await
            .expect("events"),
        None
    );
}

#[tokio::test]
async fn permission_levels_and_untrusted_answers() {
    let env = Env::new().await;
    env.with(|st, _| {
        st.set_collaborator("acme/app", "wanda", Role::Write)
            .expect("c");
        st.set_collaborator("acme/app", "mae", Role::Maintain)
            .expect("c");
        st.set_collaborator("acme/app", "ada", Role::Admin)
            .expect("c");
        st.set_collaborator("acme/app", "tri", Role::Triage)
            .expect("c");
        st.add_user("stranger");
        st.add_repo("acme/secret", "main", true).expect("repo");
        st.set_collaborator("acme/secret", BOT, Role::Admin)
            .expect("c");
        st.add_repo("acme/other", "main", false).expect("repo");
        st.set_collaborator("acme/other", BOT, Role::Read)
            .expect("c");
    });
    let p = |login: &'static str| env.gh.permission(&env.repo, login);
    assert_eq!(p("wanda").await.expect("write"), Permission::Write);
    assert_eq!(p("mae").await.expect("maintain"), Permission::Maintain);
    assert_eq!(p("ada").await.expect("admin"), Permission::Admin);
    assert_eq!(p("acme").await.expect("owner"), Permission::Admin);
    assert_eq!(p("tri").await.expect("triage"), Permission::Read);
    assert_eq!(p("stranger").await.expect("public"), Permission::Read);
    assert!(matches!(
        p("nobody-at-all").await.expect("404"),
        Permission::Unknown(_)
    ));
    let secret: RepoName = "acme/secret".parse().expect("name");
    assert_eq!(
        env.gh
            .permission(&secret, "stranger")
            .await
            .expect("private"),
        Permission::None
    );
    let other: RepoName = "acme/other".parse().expect("name");
    match env.gh.permission(&other, "stranger").await.expect("403") {
        Permission::Unknown(why) => assert!(why.contains("403") && why.contains("push"), "{why}"),
        p => panic!("a 403 must be untrusted, got {p:?}"),
    }
}

#[tokio::test]
async fn permission_server_errors_are_errors() {
    let env = Env::new().await;
    env.fault("GET", "/permission", 10, status(503));
    let err = env
        .gh
        .permission(&env.repo, "wanda")
        .await
        .expect_err("5xx");
    assert_eq!(err.status(), Some(503));
    assert!(
        err.to_string().contains("/collaborators/wanda/permission"),
        "{err}"
    );
}

#[tokio::test]
async fn body_edits_come_from_graphql() {
    let env = Env::new().await;
    let n = env.issue("edited later");
    assert_eq!(
        env.gh
            .issue_extras(&env.repo, n)
            .await
            .expect("gql")
            .body_edited_at,
        None
    );
    env.world().sim.clock.advance_secs(60);
    let when = env.with(|st, now| {
        st.edit_body("acme/app", n, "new body", now).expect("edit");
        now
    });
    let got = env
        .gh
        .issue_extras(&env.repo, n)
        .await
        .expect("gql")
        .body_edited_at;
    assert_eq!(got.map(|t| t.timestamp()), Some(when.timestamp()));
    let err = env
        .gh
        .issue_extras(&env.repo, 999)
        .await
        .expect_err("no issue");
    assert!(err.to_string().contains("Could not resolve"), "{err}");
}

#[tokio::test]
async fn native_blockers_come_with_the_edit_time_in_one_query() {
    let env = Env::new().await;
    let n = env.issue("blocked natively");
    let open = env.issue("still to do");
    let done = env.issue("done already");
    env.with(|st, now| {
        st.set_open(
            "acme/app",
            done,
            Some("completed"),
            Actor::user("alice"),
            None,
            now,
        )
        .expect("close");
        st.block("acme/app", n, ("acme/app", open)).expect("block");
        st.block("acme/app", n, ("acme/app", done)).expect("block");
    });
    let extras = env.gh.issue_extras(&env.repo, n).await.expect("gql");
    assert_eq!(extras.body_edited_at, None);
    assert_eq!(extras.unlisted_blockers, 0);
    let got: Vec<(u64, bool)> = extras
        .linked_blockers
        .iter()
        .map(|b| (b.number, b.open))
        .collect();
    assert_eq!(got, vec![(open, true), (done, false)]);
    assert!(extras.linked_blockers.iter().all(|b| b.repo == "acme/app"));
    assert_eq!(env.seen("/graphql").len(), 1, "one query for both");
    let plain = env.gh.issue_extras(&env.repo, open).await.expect("gql");
    assert!(plain.linked_blockers.is_empty());
}

#[tokio::test]
async fn single_issue_default_branch_and_missing_issues() {
    let env = Env::new().await;
    let n = env.issue("one");
    let pr = env.with(|st, now| {
        st.add_issue("acme/app", "pr", None, "carol", true, now)
            .expect("pr")
    });
    let issue = env
        .gh
        .issue(&env.repo, n)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (
            issue.title.as_str(),
            issue.body.as_str(),
            issue.is_pull_request
        ),
        ("one", "body", false)
    );
    assert_eq!(issue.author, Login::new("carol"));
    assert_eq!(issue.comments, Some(0));
    assert!(
        env.gh
            .issue(&env.repo, pr)
            .await
            .expect("get")
            .expect("pr")
            .is_pull_request
    );
    assert_eq!(
        env.gh.issue(&env.repo, 4242).await.expect("404 is none"),
        None
    );
    let elsewhere: RepoName = "other/repo".parse().expect("name");
    assert_eq!(
        env.gh.issue(&elsewhere, 1).await.expect("404 is none"),
        None
    );
    assert_eq!(
        env.gh.default_branch(&env.repo).await.expect("repo"),
        "main"
    );
    let err = env
        .gh
        .default_branch(&elsewhere)
        .await
        .expect_err("no repo");
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn labels_are_added_and_removed_idempotently() {
    let env = Env::new().await;
    let n = env.issue("labels");
    let labels = vec!["agent:running".to_owned(), "needs review/now".to_owned()];
    env.gh.add_labels(&env.repo, n, &labels).await.expect("add");
    env.gh
        .add_labels(&env.repo, n, &[])
        .await
        .expect("empty add sends nothing");
    let issue = env.with(|st, _| st.repo("acme/app").expect("repo").issues[&n].clone());
    assert_eq!(issue.labels, labels);
    assert!(
        issue
            .events
            .iter()
            .all(|e| e.event == "labeled" && e.actor.login == BOT)
    );
    env.gh
        .remove_label(&env.repo, n, "needs review/now")
        .await
        .expect("remove");
    env.gh
        .remove_label(&env.repo, n, "needs review/now")
        .await
        .expect("already gone");
    let issue = env.with(|st, _| st.repo("acme/app").expect("repo").issues[&n].clone());
    assert_eq!(issue.labels, vec!["agent:running".to_owned()]);
    assert_eq!(
        env.seen("/labels/needs%20review%2Fnow").len(),
        2,
        "the name is percent-encoded"
    );
}

#[tokio::test]
async fn comments_are_created_listed_across_pages_and_edited_with_patch() {
    let env = Env::new().await;
    let n = env.issue("chatty");
    env.with(|st, now| {
        for i in 0..150 {
            st.add_comment("acme/app", n, Actor::user("carol"), &format!("c{i}"), now)
                .expect("comment");
        }
    });
    let created = env
        .gh
        .create_comment(&env.repo, n, "status: claimed")
        .await
        .expect("create");
    assert_eq!(created.author, Login::new(BOT));
    env.gh
        .edit_comment(&env.repo, created.id, "status: running")
        .await
        .expect("edit");
    let all = env.gh.list_comments(&env.repo, n).await.expect("list");
    assert_eq!(all.len(), 151);
    assert_eq!(all[0].body, "c0");
    let last = all.last().expect("last");
    assert_eq!(
        (last.id, last.body.as_str()),
        (created.id, "status: running")
    );
    let edits = env.seen("/issues/comments/");
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].method, "PATCH");
    assert_eq!(lock(&env.world().github).comment_edits_via_post, 0);
    let err = env
        .gh
        .edit_comment(&env.repo, 1, "x")
        .await
        .expect_err("unknown comment");
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn a_comment_over_the_size_limit_is_refused_with_422() {
    let env = Env::new().await;
    let n = env.issue("long");
    let created = env
        .gh
        .create_comment(&env.repo, n, &"x".repeat(65_536))
        .await
        .expect("exactly at the limit");
    for err in [
        env.gh
            .create_comment(&env.repo, n, &"é".repeat(65_537))
            .await
            .expect_err("create over the limit"),
        env.gh
            .edit_comment(&env.repo, created.id, &"x".repeat(65_537))
            .await
            .expect_err("edit over the limit"),
    ] {
        assert_eq!(err.status(), Some(422));
        assert!(err.to_string().contains("too long"), "{err}");
    }
}

#[tokio::test]
async fn issues_close_with_a_reason_and_reopen() {
    let env = Env::new().await;
    let n = env.issue("to close");
    env.gh
        .close_issue(&env.repo, n, CloseReason::NotPlanned)
        .await
        .expect("close");
    let issue = env
        .gh
        .issue(&env.repo, n)
        .await
        .expect("get")
        .expect("exists");
    assert!(!issue.open);
    assert_eq!(issue.close_reason, Some(CloseReason::NotPlanned));
    env.gh.reopen_issue(&env.repo, n).await.expect("reopen");
    let issue = env
        .gh
        .issue(&env.repo, n)
        .await
        .expect("get")
        .expect("exists");
    assert!(issue.open && issue.close_reason.is_none());
    env.gh
        .close_issue(&env.repo, n, CloseReason::Unspecified)
        .await
        .expect("close");
    let issue = env
        .gh
        .issue(&env.repo, n)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        issue.close_reason,
        Some(CloseReason::Completed),
        "GitHub's default"
    );
}

#[tokio::test]
async fn commits_since_are_newest_first_and_pushes_close_issues() {
    let env = Env::new().await;
    let before = env.world().sim.now();
    let n = env.issue("fixed by a push");
    let other = env.issue("fixed on a branch");
    push_commit(env.world(), "acme/app", "main", "initial").expect("push");
    env.world().sim.clock.advance_secs(10);
    let since = env.world().sim.now();
    let a = push_commit(env.world(), "acme/app", "main", "Add healthz\n\nCloses #1").expect("push");
    env.world().sim.clock.advance_secs(10);
    let b = push_commit(env.world(), "acme/app", "main", "docs").expect("push");
    push_commit(
        env.world(),
        "acme/app",
        "feature",
        &format!("fixes #{other}"),
    )
    .expect("push");

    let commits = env
        .gh
        .commits_since(&env.repo, "main", since)
        .await
        .expect("commits");
    let shas: Vec<&str> = commits.iter().map(|c| c.sha.as_str()).collect();
    assert_eq!(shas, vec![b.as_str(), a.as_str()]);
    assert!(commits[1].message.contains("Closes #1"));
    assert_eq!(
        env.gh
            .commits_since(&env.repo, "main", before)
            .await
            .expect("all")
            .len(),
        3
    );

    let closed = env
        .gh
        .issue(&env.repo, n)
        .await
        .expect("get")
        .expect("exists");
    assert!(!closed.open);
    assert_eq!(closed.close_reason, Some(CloseReason::Completed));
    let untouched = env
        .gh
        .issue(&env.repo, other)
        .await
        .expect("get")
        .expect("exists");
    assert!(
        untouched.open,
        "only pushes to the default branch close issues"
    );

    env.with(|st, _| st.add_repo("acme/empty", "main", false).expect("repo"));
    let empty: RepoName = "acme/empty".parse().expect("name");
    assert!(
        env.gh
            .commits_since(&empty, "main", before)
            .await
            .expect("409 is empty")
            .is_empty()
    );
}

#[tokio::test]
async fn ci_providers_map_to_signals() {
    let env = Env::new().await;
    let sha = push_commit(env.world(), "acme/app", "main", "ci").expect("push");
    env.with(|st, now| {
        let r = "acme/app";
        st.add_check_run(r, &sha, "build", "completed", Some("success"), now)
            .expect("c");
        st.add_check_run(r, &sha, "lint", "completed", Some("skipped"), now)
            .expect("c");
        st.add_check_run(r, &sha, "test", "in_progress", None, now)
            .expect("c");
        st.add_check_run(r, &sha, "e2e", "completed", Some("timed_out"), now)
            .expect("c");
        st.add_status(
            r,
            &sha,
            "ci/woodpecker",
            "pending",
            Some("https://ci/1"),
            now,
        )
        .expect("s");
        st.add_status(
            r,
            &sha,
            "ci/woodpecker",
            "success",
            Some("https://ci/2"),
            now,
        )
        .expect("s");
        st.add_status(r, &sha, "deploy", "error", None, now)
            .expect("s");
        st.add_workflow_run(r, &sha, "main", "CI", "completed", Some("failure"), now)
            .expect("w");
        st.add_workflow_run(r, &sha, "main", "CI", "completed", Some("success"), now)
            .expect("w");
        st.add_workflow_run(r, &sha, "main", "Release", "queued", None, now)
            .expect("w");
    });
    let signals = |p| env.gh.ci_signals(&env.repo, &sha, p);
    let by_name = |v: Vec<afk_remotes::tracker::CiSignal>| {
        v.into_iter()
            .map(|s| (s.name, s.state))
            .collect::<BTreeMap<_, _>>()
    };
    let checks = by_name(signals(CiProvider::GithubChecks).await.expect("checks"));
    assert_eq!(checks["build"], SignalState::Success);
    assert_eq!(checks["lint"], SignalState::Success);
    assert_eq!(checks["test"], SignalState::Pending);
    assert_eq!(checks["e2e"], SignalState::Failure);
    let statuses = signals(CiProvider::GithubStatus).await.expect("status");
    assert_eq!(statuses.len(), 2, "latest per context");
    let woodpecker = statuses
        .iter()
        .find(|s| s.name == "ci/woodpecker")
        .expect("context");
    assert_eq!(
        (woodpecker.state, woodpecker.url.as_deref()),
        (SignalState::Success, Some("https://ci/2"))
    );
    assert_eq!(by_name(statuses)["deploy"], SignalState::Failure);
    let actions = by_name(signals(CiProvider::GithubActions).await.expect("actions"));
    assert_eq!(actions.len(), 2);
    assert_eq!(
        actions["CI"],
        SignalState::Success,
        "the newest run of a workflow counts"
    );
    assert_eq!(actions["Release"], SignalState::Pending);

    let quiet = push_commit(env.world(), "acme/app", "main", "nothing reports").expect("push");
    let none = env
        .gh
        .ci_signals(&env.repo, &quiet, CiProvider::GithubStatus)
        .await
        .expect("status");
    assert!(
        none.is_empty(),
        "zero statuses is an empty provider, not a verdict"
    );
    let err = env
        .gh
        .ci_signals(&env.repo, &sha, CiProvider::Woodpecker)
        .await
        .expect_err("not github");
    assert!(matches!(err.kind, ErrorKind::Local(_)));
}

#[tokio::test]
async fn conditional_requests_cost_no_rate_limit() {
    let env = Env::new().await;
    let n = env.issue("cached");
    env.with(|st, now| {
        st.label_issue("acme/app", n, "ready", Actor::user("maria"), now)
            .expect("label")
    });
    let first = env
        .gh
        .list_issues(&env.repo, "ready", IssueState::Open)
        .await
        .expect("list");
    let (made, budget) = (env.gh.requests_made(), env.remaining());
    let second = env
        .gh
        .list_issues(&env.repo, "ready", IssueState::Open)
        .await
        .expect("list");
    assert_eq!(first, second);
    assert_eq!(env.gh.requests_made(), made, "a 304 costs nothing");
    assert_eq!(env.gh.requests_not_modified(), 1);
    assert_eq!(
        env.remaining(),
        budget,
        "the simulator did not charge the 304"
    );
    assert_eq!(env.seen("/issues").last().map(|r| r.status), Some(304));

    // A persisted cache carries over to a new client (the next tick).
    let cache: EtagCache =
        serde_json::from_str(&serde_json::to_string(&env.gh.etag_cache()).expect("ser"))
            .expect("de");
    let next_tick = env.client(policy()).with_etag_cache(cache);
    assert_eq!(
        next_tick
            .list_issues(&env.repo, "ready", IssueState::Open)
            .await
            .expect("list"),
        first
    );
    assert_eq!(next_tick.requests_made(), 0);

    env.with(|st, now| st.edit_body("acme/app", n, "changed", now).expect("edit"));
    let changed = env
        .gh
        .list_issues(&env.repo, "ready", IssueState::Open)
        .await
        .expect("list");
    assert_eq!(changed[0].body, "changed");
    assert_eq!(env.gh.requests_made(), made + 1);
}

#[tokio::test]
async fn server_errors_and_dropped_connections_are_retried() {
    let env = Env::new().await;
    env.fault("GET", "/repos/acme/app", 2, status(502));
    assert_eq!(
        env.gh.default_branch(&env.repo).await.expect("third try"),
        "main"
    );
    assert_eq!(env.gh.requests_made(), 3);

    env.world().sim.clear_faults();
    env.fault("GET", "/repos/acme/app", 1, FaultAction::DropBefore);
    assert_eq!(
        env.gh
            .default_branch(&env.repo)
            .await
            .expect("after a drop"),
        "main"
    );

    env.world().sim.clear_faults();
    env.fault("GET", "/repos/acme/app", 10, status(500));
    let err = env
        .gh
        .default_branch(&env.repo)
        .await
        .expect_err("gives up");
    assert_eq!(err.status(), Some(500));
    assert_eq!(
        env.seen("/repos/acme/app")
            .iter()
            .filter(|r| r.status == 500)
            .count(),
        4
    );
}

#[tokio::test]
async fn comment_creation_is_not_retried_after_a_server_error() {
    let env = Env::new().await;
    let n = env.issue("no duplicates");
    env.fault("POST", "/comments", 1, FaultAction::DropAfter);
    assert!(env.gh.create_comment(&env.repo, n, "hello").await.is_err());
    let comments = env.with(|st, _| st.repo("acme/app").expect("repo").comments.len());
    assert_eq!(comments, 1, "applied once, never resent");
}

#[tokio::test]
async fn timeouts_are_retried() {
    let env = Env::new().await;
    let fast = env.client(RetryPolicy {
        timeout: Duration::from_millis(300),
        ..policy()
    });
    env.fault("GET", "/repos/acme/app", 1, FaultAction::Delay { ms: 1000 });
    assert_eq!(
        fast.default_branch(&env.repo).await.expect("second try"),
        "main"
    );
}

#[tokio::test]
async fn secondary_limits_honour_retry_after() {
    let env = Env::new().await;
    env.with(|st, _| st.throttle(1, 1));
    let started = Instant::now();
    assert_eq!(
        env.gh
            .default_branch(&env.repo)
            .await
            .expect("after waiting"),
        "main"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for retry-after"
    );
    assert_eq!(
        env.seen("/repos/acme/app").first().map(|r| r.status),
        Some(429)
    );
}

#[tokio::test]
async fn an_exhausted_budget_past_the_deadline_is_rate_limited() {
    let env = Env::new().await;
    env.with(|st, now| st.exhaust_rate_limit(now, 3600));
    let client = env.client(RetryPolicy {
        deadline: Some(Instant::now() + Duration::from_secs(3)),
        ..policy()
    });
    let started = Instant::now();
    let err = client
        .default_branch(&env.repo)
        .await
        .expect_err("rate limited");
    assert!(
        matches!(err.kind, ErrorKind::RateLimited { retry_after: Some(w) } if w > Duration::from_secs(3000)),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "did not wait for a reset past the deadline"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_bad_token_is_an_error_that_never_shows_the_token() {
    let env = Env::new().await;
    let mut bad = NamedTempFile::new().expect("tempfile");
    write!(bad, "ghp-wrong-secret-987").expect("write");
    let client = GitHub::new(
        env.running.url(Remote::Github),
        SecretFile::new(bad.path()),
        policy(),
    )
    .expect("client");
    let err = client.default_branch(&env.repo).await.expect_err("401");
    assert_eq!(err.status(), Some(401));
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("ghp-wrong-secret-987"), "{text}");
        assert!(
            text.contains("github") && text.contains("GET /repos/acme/app"),
            "{text}"
        );
    }
    // The token file is re-read for every request: fixing it fixes the next request.
    std::fs::write(bad.path(), TOKEN).expect("rotate");
    assert_eq!(
        client.default_branch(&env.repo).await.expect("rotated"),
        "main"
    );
}

mod simulator {
    //! Malformed requests get the answers GitHub gives.

    use super::*;
    use serde_json::{Value, json};

    async fn call(
        env: &Env,
        method: &str,
        path: &str,
        body: Option<Value>,
        auth: bool,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let client = reqwest::Client::new();
        let url = format!("{}{path}", env.running.url(Remote::Github));
        let mut rb = client.request(method.parse().expect("method"), url);
        if auth {
            rb = rb.header("authorization", format!("token {TOKEN}"));
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("send");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            headers,
        )
    }

    #[tokio::test]
    async fn rejects_what_github_rejects() {
        let env = Env::new().await;
        let n = env.issue("target");
        let issue = format!("/repos/acme/app/issues/{n}");
        let (s, body, _) = call(&env, "GET", "/repos/acme/app", None, false).await;
        assert_eq!(
            (s, body["message"].as_str()),
            (401, Some("Requires authentication"))
        );
        let (s, _, _) = call(
            &env,
            "POST",
            &format!("{issue}/labels"),
            Some(json!({"labels": []})),
            true,
        )
        .await;
        assert_eq!(s, 422, "empty label list");
        let (s, _, _) = call(
            &env,
            "POST",
            &format!("{issue}/comments"),
            Some(json!({"text": "x"})),
            true,
        )
        .await;
        assert_eq!(s, 422, "comment without body");
        let (s, body, _) = call(
            &env,
            "PATCH",
            &issue,
            Some(json!({"state": "closed", "state_reason": "done"})),
            true,
        )
        .await;
        assert_eq!(
            (s, body["message"].as_str()),
            (422, Some("Validation Failed"))
        );
        let (s, _, _) = call(
            &env,
            "GET",
            "/repos/acme/app/issues?state=weird",
            None,
            true,
        )
        .await;
        assert_eq!(s, 422);
        for path in [
            "/repos/acme/nope/issues",
            "/repos/acme/app/issues/999",
            "/repos/acme/app/issues/999/events",
        ] {
            assert_eq!(call(&env, "GET", path, None, true).await.0, 404, "{path}");
        }
        let (s, body, _) = call(
            &env,
            "DELETE",
            &format!("{issue}/labels/absent"),
            None,
            true,
        )
        .await;
        assert_eq!(
            (s, body["message"].as_str()),
            (404, Some("Label does not exist"))
        );
        let (s, _, _) = call(
            &env,
            "PATCH",
            "/repos/acme/app/issues/comments/77",
            Some(json!({"body": "x"})),
            true,
        )
        .await;
        assert_eq!(s, 404, "unknown comment");
        let (s, body, _) = call(
            &env,
            "POST",
            "/graphql",
            Some(json!({"query": "{ viewer { login } }"})),
            true,
        )
        .await;
        assert_eq!(s, 200);
        assert!(
            body["errors"][0]["message"].is_string(),
            "other GraphQL queries are refused"
        );
        let (s, _, _) = call(
            &env,
            "POST",
            &format!("{issue}/comments"),
            Some(json!({"body": "x"})),
            true,
        )
        .await;
        assert_eq!(s, 201);
    }

    #[tokio::test]
    async fn pages_are_capped_and_conditional_reads_are_free() {
        let env = Env::new().await;
        env.with(|st, now| {
            for i in 0..150 {
                st.add_issue("acme/app", &format!("i{i}"), None, "carol", false, now)
                    .expect("issue");
            }
        });
        let (s, body, headers) = call(
            &env,
            "GET",
            "/repos/acme/app/issues?per_page=500",
            None,
            true,
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(body.as_array().map(Vec::len), Some(100));
        let link = headers
            .get("link")
            .and_then(|l| l.to_str().ok())
            .unwrap_or("");
        assert!(
            link.contains("rel=\"next\"") && link.contains("rel=\"last\""),
            "{link}"
        );
        let remaining = headers
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let etag = headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let resp = reqwest::Client::new()
            .get(format!(
                "{}/repos/acme/app/issues?per_page=500",
                env.running.url(Remote::Github)
            ))
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 304);
        assert_eq!(
            resp.headers()
                .get("x-ratelimit-remaining")
                .and_then(|v| v.to_str().ok()),
            Some(remaining)
        );
        assert!(resp.text().await.expect("body").is_empty());
    }

    #[tokio::test]
    async fn comment_edits_by_post_are_accepted_and_counted() {
        let env = Env::new().await;
        let n = env.issue("octocrab style");
        let id = env.with(|st, now| {
            st.add_comment("acme/app", n, Actor::user(BOT), "a", now)
                .expect("comment")
        });
        let (s, body, _) = call(
            &env,
            "POST",
            &format!("/repos/acme/app/issues/comments/{id}"),
            Some(json!({"body": "b"})),
            true,
        )
        .await;
        assert_eq!((s, body["body"].as_str()), (200, Some("b")));
        assert_eq!(lock(&env.world().github).comment_edits_via_post, 1);
    }

    #[tokio::test]
    async fn label_events_carry_no_author_association() {
        let env = Env::new().await;
        let n = env.issue("trust");
        env.with(|st, now| {
            st.label_issue("acme/app", n, "ready", Actor::user("acme"), now)
                .expect("label")
        });
        let (_, body, _) = call(
            &env,
            "GET",
            &format!("/repos/acme/app/issues/{n}/timeline"),
            None,
            true,
        )
        .await;
        let event = &body[0];
        assert_eq!(event["event"], "labeled");
        assert!(event.get("author_association").is_none());
        assert_eq!(event["actor"]["login"], "acme");
    }

    #[tokio::test]
    async fn control_endpoints_seed_from_outside() {
        let env = Env::new().await;
        let client = reqwest::Client::new();
        let control = |p: &str| format!("{}/__sim/github/{p}", env.running.control_url);
        let post = |p: &str, b: Value| client.post(control(p)).json(&b).send();
        assert!(
            post("repos", json!({"repo": "ops/site"}))
                .await
                .expect("repos")
                .status()
                .is_success()
        );
        let created: Value = post(
            "issues",
            json!({"repo": "ops/site", "title": "t", "labels": ["ready"]}),
        )
        .await
        .expect("issue")
        .json()
        .await
        .expect("json");
        assert_eq!(created["number"], 1);
        assert!(post("label", json!({"repo": "ops/site", "number": 1, "label": "go", "actor": "dependabot[bot]", "bot": true})).await.expect("label").status().is_success());
        let sha: Value = post(
            "commit",
            json!({"repo": "ops/site", "branch": "main", "message": "fix: x\n\nfixes #1"}),
        )
        .await
        .expect("commit")
        .json()
        .await
        .expect("json");
        assert_eq!(sha["sha"].as_str().map(str::len), Some(40));
        assert!(post("check-run", json!({"repo": "ops/site", "sha": sha["sha"], "name": "b", "status": "completed", "conclusion": "success"})).await.expect("check").status().is_success());
        assert_eq!(
            post(
                "collaborator",
                json!({"repo": "ops/site", "login": "x", "role": "owner"})
            )
            .await
            .expect("bad role")
            .status()
            .as_u16(),
            400
        );
        let issue: Value = client
            .get(control("issues/ops/site/1"))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(
            (issue["state"].as_str(), issue["state_reason"].as_str()),
            (Some("closed"), Some("completed"))
        );
        let exhausted = post("rate-limit/exhaust", json!({}))
            .await
            .expect("exhaust");
        assert!(exhausted.status().is_success());
        let (s, _, headers) = call(&env, "GET", "/repos/acme/app", None, true).await;
        assert_eq!(s, 403);
        assert_eq!(
            headers
                .get("x-ratelimit-remaining")
                .and_then(|v| v.to_str().ok()),
            Some("0")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Wire facts the client once got wrong (event order, secondary limits, older GraphQL schemas)

#[tokio::test]
async fn the_latest_labeling_is_found_by_time_not_by_position() {
    // GitHub does not document the order of `/events`: a server answering newest first must
    // not make an older labelling look like the latest.
    let env = Env::new().await;
    let n = env.issue("labelled twice, events newest first");
    let later = env.with(|st, now| {
        st.events_newest_first = true;
        st.label_issue("acme/app", n, "ready", Actor::user("mallory"), now)
            .expect("label");
        st.unlabel_issue("acme/app", n, "ready", Actor::user("mallory"), now)
            .expect("unlabel");
        let later = now + chrono::TimeDelta::seconds(60);
        st.label_issue("acme/app", n, "ready", Actor::user("alice"), later)
            .expect("label again");
        later
    });
    let change = env
        .gh
        .latest_labeling(&env.repo, n, "ready")
        .await
        .expect("events")
        .expect("labelled");
    assert_eq!(change.actor, Login::new("alice"));
    assert_eq!(change.at.timestamp(), later.timestamp());
}

#[tokio::test]
async fn a_headerless_403_on_the_permission_check_is_a_rate_limit_not_untrusted() {
    let env = Env::new().await;
    // A secondary limit as the abuse layer sends it: 403, no retry-after, no x-ratelimit-*.
    env.fault("GET", "/permission", 10, status(403));
    let short = env.client(RetryPolicy {
        deadline: Some(Instant::now() + Duration::from_millis(1500)),
        default_rate_limit_wait: Duration::from_secs(60),
        ..policy()
    });
    let started = Instant::now();
    let err = short
        .permission(&env.repo, "wanda")
        .await
        .expect_err("rate limited, not decided");
    assert!(
        matches!(err.kind, ErrorKind::RateLimited { retry_after: Some(w) } if w >= Duration::from_secs(60)),
        "{err:?}"
    );
    assert!(err.to_string().contains("next tick continues"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no minute-long sleep"
    );
    // A real refusal (GitHub's headers present, nothing about limits) stays an answer.
    env.world().sim.clear_faults();
    env.fault(
        "GET",
        "/permission",
        1,
        FaultAction::Status {
            status: 403,
            body: Some(
                r#"{"message":"Must have push access to view collaborator permission."}"#.into(),
            ),
            headers: [("x-ratelimit-remaining".to_owned(), "4999".to_owned())].into(),
        },
    );
    assert!(matches!(
        env.gh.permission(&env.repo, "wanda").await.expect("answer"),
        Permission::Unknown(_)
    ));
}

#[tokio::test]
async fn secondary_limits_without_headers_wait_then_back_off_exponentially() {
    let env = Env::new().await;
    env.fault("GET", "/repos/acme/app", 2, status(429));
    let client = env.client(RetryPolicy {
        default_rate_limit_wait: Duration::from_millis(300),
        ..policy()
    });
    let started = Instant::now();
    assert_eq!(
        client.default_branch(&env.repo).await.expect("third try"),
        "main"
    );
    // 300 ms, then 600 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let statuses: Vec<u16> = env
        .seen("/repos/acme/app")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![429, 429, 200]);
    // A 403 saying so is a secondary limit too, even with GitHub's headers.
    env.fault(
        "GET",
        "/repos/acme/app",
        1,
        FaultAction::Status {
            status: 403,
            body: Some(r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#.into()),
            headers: [("x-ratelimit-remaining".to_owned(), "4000".to_owned())].into(),
        },
    );
    assert_eq!(
        client
            .default_branch(&env.repo)
            .await
            .expect("after the wait"),
        "main"
    );
}

#[tokio::test]
async fn a_server_without_blocked_by_falls_back_once_per_client() {
    let env = Env::new().await;
    let n = env.issue("on an older Enterprise Server");
    let m = env.issue("another");
    env.with(|st, _| st.graphql_without_blocked_by = true);
    let extras = env.gh.issue_extras(&env.repo, n).await.expect("fallback");
    assert!(extras.linked_blockers.is_empty());
    assert_eq!(extras.body_edited_at, None);
    // `lastEditedAt` is still read: the body edit time stays known (GitHub, not Forgejo, rules).
    assert!(extras.body_edit_time_known);
    let again = env.gh.issue_extras(&env.repo, m).await.expect("fallback");
    assert!(again.linked_blockers.is_empty());
    let queries: Vec<String> = env.seen("/graphql").into_iter().map(|r| r.body).collect();
    assert_eq!(
        queries.len(),
        3,
        "refused, fallback, then the fallback only"
    );
    assert!(queries[0].contains("blockedBy"));
    assert!(!queries[1].contains("blockedBy") && !queries[2].contains("blockedBy"));
}

#[tokio::test]
async fn a_blocker_the_token_cannot_see_blocks_instead_of_failing() {
    let env = Env::new().await;
    let n = env.issue("blocked by something secret");
    env.with(|st, now| {
        st.add_repo("acme/secret", "main", true)
            .expect("private repo");
        let hidden = st
            .add_issue("acme/secret", "hidden", None, "carol", false, now)
            .expect("issue");
        st.block("acme/app", n, ("acme/secret", hidden))
            .expect("block");
    });
    let extras = env
        .gh
        .issue_extras(&env.repo, n)
        .await
        .expect("partial data");
    assert_eq!(extras.hidden_blockers, 1);
    assert!(extras.linked_blockers.is_empty());
}

#[tokio::test]
async fn latest_labeling_reports_a_title_change_after_it_across_pages() {
    let env = Env::new().await;
    let n = env.issue("renamed after the label");
    seed_events(&env, n, &[(5, Actor::user("alice"))]);
    // Renamed before the labelling: not reported.
    let quiet = env
        .gh
        .latest_labeling(&env.repo, n, "ready")
        .await
        .expect("events")
        .expect("labelled");
    assert_eq!(quiet.title_changed_after, None);

    let later = env.with(|st, now| {
        let at = now + chrono::TimeDelta::seconds(400);
        st.edit_title(
            "acme/app",
            n,
            "Exfiltrate the token",
            Actor::user("mallory"),
            at,
        )
        .expect("rename");
        at
    });
    let change = env
        .gh
        .latest_labeling(&env.repo, n, "ready")
        .await
        .expect("events")
        .expect("labelled");
    assert_eq!(change.actor, Login::new("alice"));
    // GitHub renders times to the second.
    assert_eq!(
        change.title_changed_after.map(|t| t.timestamp()),
        Some(later.timestamp())
    );

    // The simulator records what GitHub records: a `renamed` event, and no body edit time.
    let extras = env.gh.issue_extras(&env.repo, n).await.expect("graphql");
    assert!(extras.body_edit_time_known);
    assert_eq!(extras.body_edited_at, None, "a title is not body content");
}
