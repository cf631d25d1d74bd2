//! The GitHub client authenticated as a GitHub App installation, against the simulated GitHub:
//! the JWT → installation token exchange, the token's reach, and every way it fails closed.

use std::sync::Arc;
use std::time::Duration;

use afk_remotes::error::ErrorKind;
use afk_remotes::github::{GitHub, GitHubApp, GitHubAuth};
use afk_remotes::http::{RetryPolicy, SecretFile};
use afk_remotes::tracker::IssueState;
use afk_sim::github::apps::{TEST_APP_PRIVATE_KEY, TEST_OTHER_PRIVATE_KEY};
use afk_sim::infra::{Clock, Remote, RequestRecord, Sim, lock};
use afk_sim::server::{Running, start};
use afk_sim::world::World;
use tempfile::NamedTempFile;

const APP: u64 = 31;
const INSTALLATION: u64 = 9001;
const MINT: &str = "/app/installations/9001/access_tokens";

struct Env {
    running: Running,
    key: NamedTempFile,
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
        deadline: None,
        default_rate_limit_wait: Duration::from_secs(1),
        max_body_bytes: afk_remotes::http::DEFAULT_MAX_BODY_BYTES,
    }
}

impl Env {
    async fn new(private_key: &str) -> Env {
        let world = World::new(Sim::new(Clock::starting_at(chrono::Utc::now())));
        {
            let mut st = lock(&world.github);
            st.add_repo("acme/app", "main", true).expect("repo");
            st.add_repo("acme/other", "main", true).expect("repo");
            st.install_app(
                APP,
                "afk-test",
                afk_sim::github::apps::TEST_APP_PUBLIC_KEY,
                INSTALLATION,
                &["acme/app".to_owned()],
            )
            .expect("app");
            let now = world.sim.now();
            st.add_issue("acme/app", "one", Some("b"), "carol", false, now)
                .expect("issue");
        }
        let running = start(world).await.expect("simulator");
        let key = NamedTempFile::new().expect("tempfile");
        std::fs::write(key.path(), private_key).expect("key");
        Env { running, key }
    }

    fn world(&self) -> &Arc<World> {
        &self.running.world
    }

    fn client(&self) -> GitHub {
        GitHub::with_auth(
            self.running.url(Remote::Github),
            GitHubAuth::App(GitHubApp {
                app_id: APP,
                installation_id: INSTALLATION,
                private_key: SecretFile::new(self.key.path()),
            }),
            policy(),
        )
        .expect("client")
    }

    fn requests(&self) -> Vec<RequestRecord> {
        self.world()
            .sim
            .requests()
            .into_iter()
            .filter(|r| r.remote == Remote::Github)
            .collect()
    }

    fn mints(&self) -> Vec<RequestRecord> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == MINT)
            .collect()
    }
}

fn repo(name: &str) -> afk_core::model::RepoName {
    name.parse().expect("repo name")
}

#[tokio::test]
async fn the_installation_token_is_minted_once_and_used_for_every_request() {
    let env = Env::new(TEST_APP_PRIVATE_KEY).await;
    let gh = env.client();
    assert!(
        env.requests().is_empty(),
        "building the client sends nothing"
    );
    let issues = gh
        .list_issues(&repo("acme/app"), "x", IssueState::Open)
        .await
        .expect("issues");
    assert!(issues.is_empty());
    let one = gh.issue(&repo("acme/app"), 1).await.expect("issue");
    assert_eq!(one.map(|i| i.title), Some("one".to_owned()));
    let extras = gh
        .issue_extras(&repo("acme/app"), 1)
        .await
        .expect("graphql");
    assert!(extras.body_edited_at.is_none());
    gh.create_comment(&repo("acme/app"), 1, "hello")
        .await
        .expect("comment");
    assert!(gh.installation_token_ready().await.expect("ready"));
    let mints = env.mints();
    assert_eq!(mints.len(), 1, "one token for the client: {mints:?}");
    assert_eq!((mints[0].method.as_str(), mints[0].status), ("POST", 201));
    assert!(
        env.requests().iter().all(|r| r.status < 400),
        "{:?}",
        env.requests()
    );
    // The comment was written as the App's bot.
    let comments = gh.list_comments(&repo("acme/app"), 1).await.expect("list");
    assert_eq!(comments[0].author.as_str(), "afk-test[bot]");
}

#[tokio::test]
async fn a_repo_outside_the_installation_is_hidden() {
    let env = Env::new(TEST_APP_PRIVATE_KEY).await;
    let gh = env.client();
    let err = gh
        .list_issues(&repo("acme/other"), "x", IssueState::Open)
        .await
        .expect_err("not installed there");
    assert_eq!(err.status(), Some(404), "{err}");
    assert_eq!(gh.issue(&repo("acme/other"), 1).await.expect("404"), None);
}

#[tokio::test]
async fn a_wrong_key_is_refused_once_and_named_without_retries() {
    let env = Env::new(TEST_OTHER_PRIVATE_KEY).await;
    let gh = env.client();
    let err = gh.issue(&repo("acme/app"), 1).await.expect_err("wrong key");
    let text = err.to_string();
    assert!(matches!(err.kind, ErrorKind::Local(_)), "{err:?}");
    assert!(text.contains("GitHub App auth"), "{text}");
    assert!(text.contains("HTTP 401"), "{text}");
    assert!(
        text.contains("A JSON web token could not be decoded"),
        "{text}"
    );
    assert!(text.contains("tracker.private_key_file"), "{text}");
    assert!(!text.contains("BEGIN RSA"), "the key never shows");
    assert_eq!(env.mints().len(), 1, "a refusal is not retried");
    assert_eq!(env.requests().len(), 1, "nothing else was sent");
}

#[tokio::test]
async fn a_jwt_github_sees_as_expired_or_from_the_future_is_refused() {
    let env = Env::new(TEST_APP_PRIVATE_KEY).await;
    // GitHub's clock 11 minutes ahead: the JWT (9 minutes of life) has expired.
    lock(&env.world().github).apps.clock_skew_secs = 660;
    let err = env
        .client()
        .issue(&repo("acme/app"), 1)
        .await
        .expect_err("expired");
    assert!(
        err.to_string()
            .contains("'Expiration time' claim ('exp') must be a numeric value"),
        "{err}"
    );
    // GitHub's clock 5 minutes behind: `iat` is in its future beyond the drift it allows.
    lock(&env.world().github).apps.clock_skew_secs = -300;
    let err = env
        .client()
        .issue(&repo("acme/app"), 1)
        .await
        .expect_err("from the future");
    let text = err.to_string();
    assert!(text.contains("'Issued at' claim ('iat')"), "{text}");
    assert!(text.contains("clock"), "{text}");
}

#[tokio::test]
async fn a_missing_or_malformed_key_fails_before_any_request() {
    let env = Env::new("not a pem").await;
    let err = env
        .client()
        .issue(&repo("acme/app"), 1)
        .await
        .expect_err("no key");
    assert!(
        err.to_string().contains("no RSA private key in PEM form"),
        "{err}"
    );
    std::fs::remove_file(env.key.path()).expect("remove");
    let err = env
        .client()
        .issue(&repo("acme/app"), 1)
        .await
        .expect_err("no file");
    assert!(
        err.to_string()
            .contains("cannot read the App's private key file"),
        "{err}"
    );
    assert!(env.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn the_simulator_refuses_a_jwt_outside_the_app_endpoints_and_stale_tokens() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let env = Env::new(TEST_APP_PRIVATE_KEY).await;
    let now = chrono::Utc::now().timestamp();
    let jwt = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &serde_json::json!({"iss": APP, "iat": now - 60, "exp": now + 540}),
        &EncodingKey::from_rsa_pem(TEST_APP_PRIVATE_KEY.as_bytes()).expect("key"),
    )
    .expect("jwt");
    let base = env.running.url(Remote::Github).to_owned();
    let http = reqwest::Client::new();
    let on_rest = http
        .get(format!("{base}/repos/acme/app/issues"))
        .bearer_auth(&jwt)
        .send()
        .await
        .expect("send");
    assert_eq!(on_rest.status().as_u16(), 403);
    let minted = http
        .post(format!("{base}{MINT}"))
        .bearer_auth(&jwt)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("send");
    assert_eq!(minted.status().as_u16(), 201);
    let body: serde_json::Value = minted.json().await.expect("json");
    let token = body["token"].as_str().expect("token").to_owned();
    assert_eq!(body["permissions"]["issues"], "write");
    let ok = http
        .get(format!("{base}/repos/acme/app/issues"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status().as_u16(), 200);
    let user = http
        .get(format!("{base}/user"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(user.status().as_u16(), 403, "an installation is no user");
    // An hour later the token is stale.
    lock(&env.world().github).apps.clock_skew_secs = 3601;
    let stale = http
        .get(format!("{base}/repos/acme/app/issues"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(stale.status().as_u16(), 401);
    // A personal token on the App endpoint is no JWT.
    let pat = http
        .post(format!("{base}{MINT}"))
        .bearer_auth("ghp_not_a_jwt")
        .send()
        .await
        .expect("send");
    assert_eq!(pat.status().as_u16(), 401);
}
