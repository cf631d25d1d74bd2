//! The ntfy client against the ntfy simulator: the JSON-to-root publish, auth, errors, 429.

use std::sync::Arc;
use std::time::{Duration, Instant};

use afk_core::effect::Notice;
use afk_remotes::error::ErrorKind;
use afk_remotes::http::{RetryPolicy, SecretFile};
use afk_remotes::ntfy::{MAX_MESSAGE_BYTES, Ntfy};
use afk_sim::infra::{Remote, Sim};
use afk_sim::ntfy as sim;
use afk_sim::server::Running;
use afk_sim::world::World;

const TOKEN: &str = "tk_s3cr3ttokenvalue0000000000";

struct Env {
    world: Arc<World>,
    running: Running,
    dir: tempfile::TempDir,
}

async fn env() -> Env {
    let world = World::new(Sim::default());
    let running = afk_sim::server::start(world.clone()).await.expect("start");
    Env {
        world,
        running,
        dir: tempfile::tempdir().expect("tempdir"),
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
    fn token_file(&self, token: &str) -> SecretFile {
        let path = self.dir.path().join("ntfy-token");
        std::fs::write(&path, token).expect("write");
        SecretFile::new(path)
    }
    fn client(&self, token: Option<SecretFile>, policy: RetryPolicy) -> Ntfy {
        Ntfy::new(self.running.url(Remote::Ntfy), "afk", token, policy).expect("client")
    }
    fn messages(&self) -> Vec<sim::Message> {
        sim::messages(&afk_sim::infra::lock(&self.world.ntfy))
    }
    fn url(&self) -> String {
        self.running.url(Remote::Ntfy).to_owned()
    }
}

fn notice() -> Notice {
    Notice {
        title: "octo/app#42: done".into(),
        message: "**healthz** live at 9f1c2e".into(),
        priority: 2,
        tags: vec!["white_check_mark".into()],
        click: "https://github.com/octo/app/issues/42".into(),
        thread_url: "https://t3.example/threads/abc".into(),
    }
}

#[tokio::test]
async fn a_notice_is_published_as_json_to_the_root_url() {
    let e = env().await;
    e.client(None, policy())
        .publish(&notice())
        .await
        .expect("published");
    let msgs = e.messages();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.topic, "afk");
    assert_eq!(m.title, "octo/app#42: done");
    assert_eq!(m.message, "**healthz** live at 9f1c2e");
    assert_eq!(m.priority, 2);
    assert_eq!(m.tags, vec!["white_check_mark".to_owned()]);
    assert_eq!(m.click, "https://github.com/octo/app/issues/42");
    assert_eq!(m.content_type.as_deref(), Some("text/markdown"));
    assert_eq!(m.actions.len(), 1);
    assert_eq!(m.actions[0]["action"], "view");
    assert_eq!(m.actions[0]["url"], "https://t3.example/threads/abc");
    let reqs = e.world.sim.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("POST", "/")
    );
}

#[tokio::test]
async fn the_simulator_rejects_the_wrong_shapes() {
    let e = env().await;
    let http = reqwest::Client::new();
    // JSON without a topic, to the root.
    let r = http
        .post(format!("{}/", e.url()))
        .json(&serde_json::json!({"message": "hi", "title": "t"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["code"], 40009);
    // Text to the root.
    let r = http
        .post(format!("{}/", e.url()))
        .body("hi")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    // Priority out of range.
    let r = http
        .post(format!("{}/", e.url()))
        .json(&serde_json::json!({"topic": "afk", "message": "hi", "priority": 9}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["code"], 40007);
    // A bad priority word in the text form.
    let r = http
        .post(format!("{}/afk", e.url()))
        .header("X-Priority", "loud")
        .body("hi")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    assert!(e.messages().is_empty());
}

#[tokio::test]
async fn the_text_form_to_the_topic_url_reads_the_headers() {
    let e = env().await;
    let r = reqwest::Client::new()
        .put(format!("{}/afk?tags=a,b", e.url()))
        .header("Title", "hello")
        .header("X-Priority", "urgent")
        .header("Markdown", "yes")
        .body("body text")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let stored: sim::Message = r.json().await.expect("json");
    assert_eq!(stored.title, "hello");
    assert_eq!(stored.priority, 5);
    assert_eq!(stored.tags, vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(stored.message, "body text");
    assert_eq!(e.messages(), vec![stored]);
}

#[tokio::test]
async fn long_messages_are_cut_to_what_ntfy_keeps() {
    let e = env().await;
    let mut n = notice();
    n.message = "x".repeat(MAX_MESSAGE_BYTES * 2);
    n.priority = 9;
    e.client(None, policy())
        .publish(&n)
        .await
        .expect("published");
    let m = &e.messages()[0];
    assert!(m.message.len() <= MAX_MESSAGE_BYTES);
    assert_eq!(m.priority, 5, "clamped into 1..=5");
}

#[tokio::test]
async fn a_token_is_sent_as_bearer_when_configured() {
    let e = env().await;
    sim::require_auth(&e.world, true);
    sim::add_token(&e.world, TOKEN, &["afk"]);
    let err = e
        .client(None, policy())
        .publish(&notice())
        .await
        .expect_err("anonymous refused");
    assert_eq!(err.status(), Some(403));
    assert!(err.to_string().contains("40301"), "{err}");
    assert!(err.to_string().contains("token_file"), "{err}");

    let token = e.token_file(TOKEN);
    e.client(Some(token), policy())
        .publish(&notice())
        .await
        .expect("authorised");
    assert_eq!(e.messages().len(), 1);
}

#[tokio::test]
async fn auth_errors_say_what_to_check_and_never_show_the_token() {
    let e = env().await;
    sim::add_token(&e.world, TOKEN, &["elsewhere"]);
    let unknown = e.token_file("tk_s3cr3twrongwrongwrong");
    let err = e
        .client(Some(unknown), policy())
        .publish(&notice())
        .await
        .expect_err("401");
    assert_eq!(err.remote, "ntfy");
    assert_eq!(err.status(), Some(401));
    let msg = err.to_string();
    assert!(
        msg.starts_with("ntfy: POST /: HTTP 401: ntfy error 40101"),
        "{msg}"
    );
    assert!(msg.contains("ntfy-token"), "{msg}");
    assert!(!msg.contains("s3cr3t"), "{msg}");

    let forbidden = e.token_file(TOKEN);
    let err = e
        .client(Some(forbidden), policy())
        .publish(&notice())
        .await
        .expect_err("403");
    let msg = err.to_string();
    assert_eq!(err.status(), Some(403));
    assert!(msg.contains("40301") && msg.contains("\"afk\""), "{msg}");
    assert!(!msg.contains("s3cr3t"), "{msg}");
    assert!(e.messages().is_empty());
}

#[tokio::test]
async fn a_rate_limit_without_retry_after_is_waited_out() {
    let e = env().await;
    sim::rate_limit(&e.world, 2);
    e.client(None, policy())
        .publish(&notice())
        .await
        .expect("third try lands");
    assert_eq!(e.messages().len(), 1);
    let statuses: Vec<u16> = e.world.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 429, 200]);
}

#[tokio::test]
async fn a_lasting_rate_limit_ends_as_rate_limited_within_the_deadline() {
    let e = env().await;
    sim::rate_limit(&e.world, 100);
    let err = e
        .client(None, policy())
        .publish(&notice())
        .await
        .expect_err("limited");
    assert!(matches!(err.kind, ErrorKind::RateLimited { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(e.world.sim.requests().len(), 3, "bounded: 1 + max_retries");

    let started = Instant::now();
    let mut tight = policy();
    tight.default_rate_limit_wait = Duration::from_secs(30);
    tight.deadline = Some(Instant::now() + Duration::from_secs(2));
    let err = e
        .client(None, tight)
        .publish(&notice())
        .await
        .expect_err("limited");
    assert!(matches!(err.kind, ErrorKind::RateLimited { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no wait past the deadline"
    );
    assert!(e.messages().is_empty());
}

#[tokio::test]
async fn a_server_error_is_not_resent() {
    let e = env().await;
    e.world.sim.add_fault(afk_sim::infra::FaultRule {
        remote: Some(Remote::Ntfy),
        method: None,
        path: None,
        skip: 0,
        times: Some(1),
        action: afk_sim::infra::FaultAction::Status {
            status: 500,
            body: Some(r#"{"code":50001,"http":500,"error":"internal server error"}"#.into()),
            headers: Default::default(),
        },
        seen: 0,
    });
    let err = e
        .client(None, policy())
        .publish(&notice())
        .await
        .expect_err("500");
    assert_eq!(err.status(), Some(500));
    assert!(err.is_transient());
    assert_eq!(e.world.sim.requests().len(), 1, "never rings twice");
}
