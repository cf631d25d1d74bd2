//! The Slack client against the Slack simulator: `ok` parsing, error codes, 429, and that the
//! webhook URL (a secret) never shows in an error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use afk_core::effect::Notice;
use afk_remotes::error::{ErrorKind, RemoteError};
use afk_remotes::http::{RetryPolicy, SecretFile};
use afk_remotes::slack::Slack;
use afk_sim::infra::{FaultAction, FaultRule, Remote, Sim};
use afk_sim::server::Running;
use afk_sim::slack as sim;
use afk_sim::world::World;

const SECRET: &str = "s3cr3tW3bh00kT0k3n";

struct Env {
    world: Arc<World>,
    running: Running,
    dir: tempfile::TempDir,
    hook: String,
}

async fn env() -> Env {
    let world = World::new(Sim::default());
    let running = afk_sim::server::start(world.clone()).await.expect("start");
    let hook = sim::add_hook(&world, "T0001", "B0001", SECRET);
    Env {
        world,
        running,
        dir: tempfile::tempdir().expect("tempdir"),
        hook,
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
        deadline: None,
        default_rate_limit_wait: Duration::from_millis(20),
        max_body_bytes: afk_remotes::http::DEFAULT_MAX_BODY_BYTES,
    }
}

impl Env {
    fn url_file(&self, url: &str) -> SecretFile {
        let path = self.dir.path().join("slack-webhook");
        std::fs::write(&path, format!("{url}\n")).expect("write");
        SecretFile::new(path)
    }
    fn hook_url(&self) -> String {
        format!("{}{}", self.running.url(Remote::Slack), self.hook)
    }
    fn client(&self, policy: RetryPolicy) -> Slack {
        Slack::new(self.url_file(&self.hook_url()), policy).expect("client")
    }
    fn posts(&self) -> Vec<sim::Post> {
        sim::posts(&afk_sim::infra::lock(&self.world.slack))
    }
}

fn notice() -> Notice {
    Notice {
        title: "octo/app#42: needs a human".into(),
        message: "CI stayed **red** after 5 attempts; see [the log](https://ci.example/1)".into(),
        priority: 4,
        tags: vec!["warning".into()],
        click: "https://github.com/octo/app/issues/42".into(),
        thread_url: "https://t3.example/threads/abc".into(),
    }
}

fn assert_no_secret(err: &RemoteError) {
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(!shown.contains("/services/"), "{shown}");
    assert_eq!(err.remote, "slack");
    assert_eq!(err.request, "POST slack webhook");
}

#[tokio::test]
async fn a_notice_is_posted_with_text_and_mrkdwn_blocks() {
    let e = env().await;
    e.client(policy()).post(&notice()).await.expect("ok");
    let posts = e.posts();
    assert_eq!(posts.len(), 1);
    let p = &posts[0];
    assert_eq!(p.hook, e.hook);
    assert_eq!(p.text, "octo/app#42: needs a human");
    assert_eq!(p.blocks[0]["type"], "section");
    assert_eq!(p.blocks[0]["text"]["type"], "mrkdwn");
    assert_eq!(p.blocks[0]["text"]["text"], "*octo/app#42: needs a human*");
    assert_eq!(
        p.blocks[1]["text"]["text"],
        "CI stayed *red* after 5 attempts; see <https://ci.example/1|the log>"
    );
    let links = p.blocks[2]["text"]["text"].as_str().expect("links");
    assert!(
        links.contains("<https://github.com/octo/app/issues/42|Issue>"),
        "{links}"
    );
    assert!(
        links.contains("<https://t3.example/threads/abc|T3 thread>"),
        "{links}"
    );
}

#[tokio::test]
async fn the_url_is_read_from_its_file_on_every_post() {
    let e = env().await;
    let client = e.client(policy());
    client.post(&notice()).await.expect("first");
    let rotated = sim::add_hook(&e.world, "T0001", "B0002", "r0tat3d");
    e.url_file(&format!("{}{}", e.running.url(Remote::Slack), rotated));
    client.post(&notice()).await.expect("second");
    let hooks: Vec<String> = e.posts().into_iter().map(|p| p.hook).collect();
    assert_eq!(hooks, vec![e.hook.clone(), rotated]);
}

#[tokio::test]
async fn anything_but_ok_is_an_error() {
    let e = env().await;
    e.world.sim.add_fault(FaultRule {
        remote: Some(Remote::Slack),
        method: None,
        path: None,
        skip: 0,
        times: Some(1),
        action: FaultAction::Status {
            status: 200,
            body: Some("<html>login</html>".into()),
            headers: Default::default(),
        },
        seen: 0,
    });
    let err = e
        .client(policy())
        .post(&notice())
        .await
        .expect_err("not ok");
    assert!(matches!(err.kind, ErrorKind::Decode(_)), "{err:?}");
    assert!(err.to_string().contains("login"), "{err}");
    assert_no_secret(&err);
}

#[tokio::test]
async fn a_removed_webhook_is_no_service_and_names_the_file_not_the_url() {
    let e = env().await;
    let file = e.url_file(&format!(
        "{}/services/T0001/B0001/{SECRET}x",
        e.running.url(Remote::Slack)
    ));
    let err = Slack::new(file, policy())
        .expect("client")
        .post(&notice())
        .await
        .expect_err("404");
    assert_eq!(err.status(), Some(404));
    let msg = err.to_string();
    assert!(msg.contains("no_service"), "{msg}");
    assert!(
        msg.contains("slack-webhook"),
        "names the secret file: {msg}"
    );
    assert_no_secret(&err);
}

#[tokio::test]
async fn per_hook_errors_are_reported_with_their_code() {
    let e = env().await;
    for (status, code, says) in [
        (403, "invalid_token", "revoked"),
        (403, "action_prohibited", "revoked"),
        (404, "channel_not_found", "channel"),
        (410, "channel_is_archived", "archived"),
    ] {
        sim::set_hook_error(&e.world, &e.hook, Some((status, code)));
        let err = e.client(policy()).post(&notice()).await.expect_err(code);
        assert_eq!(err.status(), Some(status));
        let msg = err.to_string();
        assert!(msg.contains(code) && msg.contains(says), "{msg}");
        assert!(!err.is_transient(), "{code}");
        assert_no_secret(&err);
    }
    sim::set_hook_error(&e.world, &e.hook, Some((500, "rollup_error")));
    let err = e.client(policy()).post(&notice()).await.expect_err("500");
    assert!(err.is_transient());
    assert!(err.to_string().contains("rollup_error"), "{err}");
    assert_no_secret(&err);
    let posts_500 = e
        .world
        .sim
        .requests()
        .iter()
        .filter(|r| r.status == 500)
        .count();
    assert_eq!(posts_500, 1, "a post is never resent");
    assert!(e.posts().is_empty());
}

#[tokio::test]
async fn the_simulator_validates_payloads() {
    let e = env().await;
    let http = reqwest::Client::new();
    let send = |body: String| http.post(e.hook_url()).body(body).send();
    let r = send("not json".into()).await.expect("send");
    assert_eq!(r.status(), 400);
    assert_eq!(r.text().await.expect("text"), "invalid_payload");
    let r = send(r#"{"text":""}"#.into()).await.expect("send");
    assert_eq!(r.text().await.expect("text"), "no_text");
    let r = send(r#"{"blocks":[{"type":"section"}]}"#.into())
        .await
        .expect("send");
    assert_eq!(r.text().await.expect("text"), "invalid_blocks");
    let r = send(r#"{"text":"hi"}"#.into()).await.expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("text"), "ok");
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_for_its_retry_after() {
    let e = env().await;
    sim::rate_limit(&e.world, 1, 1);
    let started = Instant::now();
    e.client(policy())
        .post(&notice())
        .await
        .expect("second try");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "honoured Retry-After"
    );
    assert_eq!(e.posts().len(), 1);
}

#[tokio::test]
async fn a_rate_limit_past_the_deadline_is_reported_without_waiting() {
    let e = env().await;
    sim::rate_limit(&e.world, 1, 60);
    let mut p = policy();
    p.deadline = Some(Instant::now() + Duration::from_secs(5));
    let started = Instant::now();
    let err = e.client(p).post(&notice()).await.expect_err("limited");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        err.kind,
        ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(60))
        }
    );
    assert_no_secret(&err);
}

#[tokio::test]
async fn transport_failures_and_bad_files_never_show_the_url() {
    let e = env().await;
    // Nothing listens on port 9 on loopback.
    let file = e.url_file(&format!("http://127.0.0.1:9/services/T0001/B0001/{SECRET}"));
    let err = Slack::new(file, policy())
        .expect("client")
        .post(&notice())
        .await
        .expect_err("refused");
    assert!(matches!(err.kind, ErrorKind::Transport(_)), "{err:?}");
    assert_no_secret(&err);

    let file = e.url_file(SECRET);
    let err = Slack::new(file, policy())
        .expect("client")
        .post(&notice())
        .await
        .expect_err("not a URL");
    assert!(err.to_string().contains("slack-webhook"), "{err}");
    assert_no_secret(&err);

    let missing = SecretFile::new(e.dir.path().join("absent"));
    let err = Slack::new(missing, policy())
        .expect("client")
        .post(&notice())
        .await
        .expect_err("missing");
    assert!(matches!(err.kind, ErrorKind::Local(_)));
    assert_no_secret(&err);
}
