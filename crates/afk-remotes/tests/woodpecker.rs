//! The Woodpecker client against the Woodpecker simulator: lookup, paging, status mapping, errors.

use std::sync::Arc;
use std::time::Duration;

use afk_core::evidence::SignalState;
use afk_core::model::RepoName;
use afk_remotes::http::{RetryPolicy, SecretFile};
use afk_remotes::woodpecker::{MAX_PAGES, PER_PAGE, Woodpecker};
use afk_sim::infra::{Remote, Sim};
use afk_sim::server::Running;
use afk_sim::woodpecker::{self as sim, NewPipeline};
use afk_sim::world::World;

const SHA: &str = "9f1c2e3d4b5a69788796a5b4c3d2e1f00a1b2c3d";
const OTHER: &str = "0000000000000000000000000000000000000001";

struct Env {
    world: Arc<World>,
    running: Running,
    _dir: tempfile::TempDir,
    token: SecretFile,
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 1,
        backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
        deadline: None,
        default_rate_limit_wait: Duration::from_millis(10),
        max_body_bytes: afk_remotes::http::DEFAULT_MAX_BODY_BYTES,
    }
}

async fn env(token: &str) -> Env {
    let world = World::new(Sim::default());
    let running = afk_sim::server::start(world.clone()).await.expect("start");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("woodpecker-token");
    std::fs::write(&path, format!("{token}\n")).expect("write token");
    Env {
        world,
        running,
        _dir: dir,
        token: SecretFile::new(path),
    }
}

impl Env {
    fn client(&self) -> Woodpecker {
        let api = format!("{}/api", self.running.url(Remote::Woodpecker));
        Woodpecker::new(&api, self.token.clone(), policy()).expect("client")
    }
    fn list_requests(&self) -> Vec<afk_sim::infra::RequestRecord> {
        self.world
            .sim
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/pipelines"))
            .collect()
    }
}

fn repo() -> RepoName {
    "octo/app".parse().expect("repo")
}

#[tokio::test]
async fn repo_id_is_looked_up_by_full_name() {
    let e = env(sim::DEFAULT_TOKEN).await;
    sim::add_repo(&e.world, "other/thing");
    let id = sim::add_repo(&e.world, "octo/app");
    assert_eq!(e.client().repo_id(&repo()).await.expect("id"), id);
}

#[tokio::test]
async fn an_unactivated_repo_tells_the_operator_to_activate_it() {
    let e = env(sim::DEFAULT_TOKEN).await;
    let err = e.client().repo_id(&repo()).await.expect_err("404");
    assert_eq!(err.remote, "woodpecker");
    assert_eq!(err.status(), Some(404));
    let msg = err.to_string();
    assert!(msg.contains("GET /repos/lookup/octo/app"), "{msg}");
    assert!(msg.contains("not activated in Woodpecker"), "{msg}");
    assert!(msg.contains("octo/app"), "{msg}");
}

#[tokio::test]
async fn a_deactivated_repo_is_reported_like_an_unknown_one() {
    let e = env(sim::DEFAULT_TOKEN).await;
    sim::add_repo(&e.world, "octo/app");
    sim::set_active(&e.world, "octo/app", false).expect("known repo");
    let err = e
        .client()
        .ci_signals(&repo(), SHA)
        .await
        .expect_err("inactive");
    assert!(
        err.to_string().contains("not activated in Woodpecker"),
        "{err}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn a_wrong_token_is_a_401_that_never_shows_the_token() {
    let e = env("not-the-token-s3cr3t").await;
    sim::add_repo(&e.world, "octo/app");
    let err = e.client().repo_id(&repo()).await.expect_err("401");
    assert_eq!(err.status(), Some(401));
    let msg = err.to_string();
    assert!(!msg.contains("s3cr3t"), "{msg}");
    assert!(
        msg.contains("woodpecker-token"),
        "names the file to check: {msg}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn signals_map_every_status_of_the_commit() {
    let e = env(sim::DEFAULT_TOKEN).await;
    let id = sim::add_repo(&e.world, "octo/app");
    sim::add_pipeline(&e.world, id, NewPipeline::push(OTHER, "failure")).expect("add");
    let n = sim::add_pipeline(&e.world, id, NewPipeline::push(SHA, "running")).expect("add");
    let client = e.client();

    let sigs = client.ci_signals(&repo(), SHA).await.expect("signals");
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].name, "woodpecker/push");
    assert_eq!(sigs[0].state, SignalState::Pending);
    let url = sigs[0].url.clone().expect("url");
    assert!(url.ends_with(&format!("/repos/{id}/pipeline/{n}")), "{url}");
    assert!(!url.contains("/api/"), "a UI link, not an API one: {url}");

    for (status, want) in [
        ("success", SignalState::Success),
        ("failure", SignalState::Failure),
        ("killed", SignalState::Failure),
        ("canceled", SignalState::Failure),
        ("error", SignalState::Failure),
        ("declined", SignalState::Failure),
        ("skipped", SignalState::Pending),
        ("blocked", SignalState::Pending),
    ] {
        sim::set_status(&e.world, id, n, status).expect("status");
        let sigs = client.ci_signals(&repo(), SHA).await.expect("signals");
        assert_eq!(sigs[0].state, want, "{status}");
    }
}

#[tokio::test]
async fn no_pipeline_yet_is_an_empty_list() {
    let e = env(sim::DEFAULT_TOKEN).await;
    let id = sim::add_repo(&e.world, "octo/app");
    sim::add_pipeline(&e.world, id, NewPipeline::push(OTHER, "success")).expect("add");
    assert!(
        e.client()
            .ci_signals(&repo(), SHA)
            .await
            .expect("ok")
            .is_empty()
    );
}

#[tokio::test]
async fn a_restarted_pipeline_replaces_the_failed_one() {
    let e = env(sim::DEFAULT_TOKEN).await;
    let id = sim::add_repo(&e.world, "octo/app");
    sim::add_pipeline(&e.world, id, NewPipeline::push(SHA, "failure")).expect("add");
    sim::add_pipeline(&e.world, id, NewPipeline::push(SHA, "success")).expect("add");
    let sigs = e.client().ci_signals(&repo(), SHA).await.expect("ok");
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].state, SignalState::Success);
}

#[tokio::test]
async fn the_commit_is_found_on_the_third_page_of_fifty() {
    let e = env(sim::DEFAULT_TOKEN).await;
    let id = sim::add_repo(&e.world, "octo/app");
    // Oldest first: the commit's pipeline, then 120 newer ones of other commits.
    let n = sim::add_pipeline(&e.world, id, NewPipeline::push(SHA, "success")).expect("add");
    for _ in 0..120 {
        sim::add_pipeline(&e.world, id, NewPipeline::push(OTHER, "success")).expect("add");
    }
    let client = e.client();
    let found = client
        .pipelines_for_commit(id, SHA, Some("main"))
        .await
        .expect("found");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].number, n);
    assert_eq!(found[0].commit, SHA);
    assert!(found[0].created.is_some(), "Unix seconds decoded");
    let reqs = e.list_requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    for (i, r) in reqs.iter().enumerate() {
        assert!(r.query.contains(&format!("page={}", i + 1)), "{}", r.query);
        assert!(
            r.query.contains(&format!("perPage={PER_PAGE}")),
            "{}",
            r.query
        );
        assert!(r.query.contains("branch=main"), "{}", r.query);
    }
}

#[tokio::test]
async fn paging_stops_after_the_documented_bound() {
    let e = env(sim::DEFAULT_TOKEN).await;
    let id = sim::add_repo(&e.world, "octo/app");
    sim::add_pipeline(&e.world, id, NewPipeline::push(SHA, "success")).expect("add");
    for _ in 0..(MAX_PAGES * PER_PAGE) {
        sim::add_pipeline(&e.world, id, NewPipeline::push(OTHER, "success")).expect("add");
    }
    let found = e
        .client()
        .pipelines_for_commit(id, SHA, None)
        .await
        .expect("ok");
    assert!(found.is_empty(), "too far back: reads as no pipeline yet");
    assert_eq!(e.list_requests().len(), MAX_PAGES);
}

#[tokio::test]
async fn paging_stops_once_the_commits_pipelines_are_behind() {
    let e = env(sim::DEFAULT_TOKEN).await;
    let id = sim::add_repo(&e.world, "octo/app");
    for _ in 0..200 {
        sim::add_pipeline(&e.world, id, NewPipeline::push(OTHER, "success")).expect("add");
    }
    for _ in 0..60 {
        sim::add_pipeline(&e.world, id, NewPipeline::push(SHA, "success")).expect("add");
    }
    let found = e
        .client()
        .pipelines_for_commit(id, SHA, None)
        .await
        .expect("ok");
    assert_eq!(found.len(), 60);
    // Page 1 and 2 match, page 3 has none: stop there instead of reading all six pages.
    assert_eq!(e.list_requests().len(), 3);
}

#[tokio::test]
async fn the_simulator_caps_pages_and_rejects_bad_filters() {
    let e = env(sim::DEFAULT_TOKEN).await;
    let id = sim::add_repo(&e.world, "octo/app");
    for _ in 0..60 {
        sim::add_pipeline(&e.world, id, NewPipeline::push(OTHER, "success")).expect("add");
    }
    let base = e.running.url(Remote::Woodpecker).to_owned();
    let http = reqwest::Client::new();
    let get = |q: &str| {
        http.get(format!("{base}/api/repos/{id}/pipelines?{q}"))
            .bearer_auth(sim::DEFAULT_TOKEN)
            .send()
    };
    let page: Vec<serde_json::Value> = get("perPage=100")
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(page.len(), 50);
    assert_eq!(page[0]["number"], 60, "newest first");
    assert!(page[0]["created"].is_i64(), "Unix seconds");
    assert_eq!(get("event=bogus").await.expect("send").status(), 400);
    assert_eq!(get("event=push,manual").await.expect("send").status(), 200);
    let anon = http
        .get(format!("{base}/api/repos/{id}/pipelines"))
        .send()
        .await
        .expect("send");
    assert_eq!(anon.status(), 401);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_as_transient() {
    let e = env(sim::DEFAULT_TOKEN).await;
    let id = sim::add_repo(&e.world, "octo/app");
    sim::add_pipeline(&e.world, id, NewPipeline::push(SHA, "success")).expect("add");
    e.world.sim.add_fault(afk_sim::infra::FaultRule {
        remote: Some(Remote::Woodpecker),
        method: None,
        path: Some("/pipelines".into()),
        skip: 0,
        times: Some(1),
        action: afk_sim::infra::FaultAction::Status {
            status: 502,
            body: None,
            headers: Default::default(),
        },
        seen: 0,
    });
    let sigs = e.client().ci_signals(&repo(), SHA).await.expect("retried");
    assert_eq!(sigs[0].state, SignalState::Success);

    e.world.sim.add_fault(afk_sim::infra::FaultRule {
        remote: Some(Remote::Woodpecker),
        method: None,
        path: Some("/pipelines".into()),
        skip: 0,
        times: None,
        action: afk_sim::infra::FaultAction::Status {
            status: 503,
            body: None,
            headers: Default::default(),
        },
        seen: 0,
    });
    let err = e.client().ci_signals(&repo(), SHA).await.expect_err("503");
    assert!(err.is_transient());
    assert!(
        err.to_string().starts_with("woodpecker: GET /repos/"),
        "{err}"
    );
}
