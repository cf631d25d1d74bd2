//! The Kubernetes client against the Kubernetes simulator: a rollout progressing on the
//! simulated clock, a stalled rollout, a missing target, and API errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use afk_core::config::{DeployTarget, ImageMatch};
use afk_core::evidence::DeployVerdict;
use afk_remotes::error::ErrorKind;
use afk_remotes::http::RetryPolicy;
use afk_remotes::kube::Kube;
use afk_sim::infra::{FaultAction, FaultRule, Remote, Sim};
use afk_sim::kube::{self as sim, NewDeployment};
use afk_sim::server::Running;
use afk_sim::world::World;

const OLD: &str = "0123456789abcdef0123456789abcdef01234567";
const SHA: &str = "9f1c2e3d4b5a69788796a5b4c3d2e1f00a1b2c3d";

struct Env {
    world: Arc<World>,
    running: Running,
}

async fn env() -> Env {
    let world = World::new(Sim::default());
    let running = afk_sim::server::start(world.clone()).await.expect("start");
    let mut d = NewDeployment::new("app", "web", "web", &format!("registry.example/web:{OLD}"));
    d.replicas = 3;
    d.observe_secs = 1;
    d.step_secs = 10;
    d.progress_deadline_secs = 600;
    sim::add_deployment(&world, d);
    Env { world, running }
}

impl Env {
    fn client(&self) -> Kube {
        Kube::for_url(self.running.url(Remote::Kube))
            .expect("client")
            .with_policy(RetryPolicy {
                max_retries: 2,
                backoff: Duration::from_millis(10),
                timeout: Duration::from_secs(5),
                deadline: None,
                default_rate_limit_wait: Duration::from_millis(10),
                max_body_bytes: afk_remotes::http::DEFAULT_MAX_BODY_BYTES,
            })
    }
    fn advance(&self, secs: i64) {
        self.world.sim.clock.advance_secs(secs);
    }
    fn deploy(&self, sha: &str) {
        sim::set_image(
            &self.world,
            "app",
            "web",
            "web",
            &format!("registry.example/web:{sha}"),
        )
        .expect("set image");
    }
}

/// The rollout verdict as the watch tick gets it: the client reads the Deployment's facts and
/// the core judges them.
trait Rollout {
    async fn rollout(
        &self,
        target: &DeployTarget,
        sha: &str,
    ) -> Result<DeployVerdict, afk_remotes::error::RemoteError>;
}

impl Rollout for Kube {
    async fn rollout(
        &self,
        target: &DeployTarget,
        sha: &str,
    ) -> Result<DeployVerdict, afk_remotes::error::RemoteError> {
        let facts = self.deployment_facts(target).await?;
        Ok(afk_core::rollout::judge(&facts, sha, &target.image_match))
    }
}

fn target() -> DeployTarget {
    DeployTarget {
        namespace: "app".into(),
        deployment: "web".into(),
        container: "web".into(),
        image_match: ImageMatch::FullSha,
    }
}

fn matching(how: ImageMatch) -> DeployTarget {
    DeployTarget {
        image_match: how,
        ..target()
    }
}

fn set_image(e: &Env, image: &str) {
    sim::set_image(&e.world, "app", "web", "web", image).expect("set image");
}

/// Lets the simulated rollout finish (observe 1 s, three pods 10 s apart, then terminations).
fn settle(e: &Env) {
    e.advance(60);
}

#[tokio::test]
async fn a_short_sha_tag_template_matches_only_its_own_commit() {
    let e = env().await;
    let kube = e.client();
    let t = matching(ImageMatch::Tag {
        template: "sha-{short_sha}".into(),
        short_len: 7,
    });
    // Tagged the way the registry's CI tags it: never matched by the full-SHA default.
    set_image(&e, &format!("registry.example/web:sha-{}", &SHA[..7]));
    settle(&e);
    assert!(matches!(
        kube.rollout(&t, SHA).await.expect("read"),
        DeployVerdict::Healthy { .. }
    ));
    let v = kube.rollout(&target(), SHA).await.expect("read");
    assert!(pending_says(&v).contains("not yet commit"), "{v:?}");
    // Another commit's short tag is not this commit.
    let v = kube.rollout(&t, OLD).await.expect("read");
    assert!(
        pending_says(&v).contains("not yet tag sha-0123456"),
        "{v:?}"
    );
    // `{sha}` templates need the whole tag to match, prefix and all.
    let full = matching(ImageMatch::Tag {
        template: "main-{sha}".into(),
        short_len: 7,
    });
    assert!(pending_says(&kube.rollout(&full, SHA).await.expect("read")).contains("main-9f1c"));
    set_image(&e, &format!("registry.example/web:main-{SHA}"));
    settle(&e);
    assert!(matches!(
        kube.rollout(&full, SHA).await.expect("read"),
        DeployVerdict::Healthy { .. }
    ));
}

#[tokio::test]
async fn a_digest_pinned_image_matches_only_through_the_revision_annotation() {
    let e = env().await;
    let kube = e.client();
    let digest = format!("registry.example/web@sha256:{}", "ab".repeat(32));
    set_image(&e, &digest);
    settle(&e);
    // By tag it can never match, and the wait reason says what to configure.
    let v = kube.rollout(&target(), SHA).await.expect("read");
    let says = pending_says(&v);
    assert!(says.contains("pinned by digest"), "{says}");
    assert!(says.contains("deploy.revision_annotation"), "{says}");

    let t = matching(ImageMatch::Annotation {
        key: "org.opencontainers.image.revision".into(),
    });
    let v = kube.rollout(&t, SHA).await.expect("read");
    assert!(pending_says(&v).contains("no annotation"), "{v:?}");
    // The deploy tooling stamps the commit on the pod template: a new rollout.
    sim::set_template_annotation(
        &e.world,
        "app",
        "web",
        "org.opencontainers.image.revision",
        Some(SHA),
    )
    .expect("annotate");
    let v = kube.rollout(&t, SHA).await.expect("read");
    assert!(pending_says(&v).contains("to be observed"), "{v:?}");
    settle(&e);
    assert!(matches!(
        kube.rollout(&t, SHA).await.expect("read"),
        DeployVerdict::Healthy { .. }
    ));
    let v = kube.rollout(&t, OLD).await.expect("read");
    assert!(
        pending_says(&v).contains("annotation org.opencontainers.image.revision is 9f1c"),
        "{v:?}"
    );
}

fn pending_says(v: &DeployVerdict) -> String {
    match v {
        DeployVerdict::Pending { detail } => detail.clone(),
        other => panic!("expected pending, got {other:?}"),
    }
}

#[tokio::test]
async fn a_rollout_progresses_to_healthy_on_the_simulated_clock() {
    let e = env().await;
    let kube = e.client();
    let t = target();

    // Before Keel sets the image: the old image is complete but is not the commit.
    let v = kube.rollout(&t, SHA).await.expect("read");
    assert!(pending_says(&v).contains("not yet commit"), "{v:?}");
    assert!(matches!(
        kube.rollout(&t, OLD).await.expect("read"),
        DeployVerdict::Healthy { .. }
    ));

    e.deploy(SHA);
    let v = kube.rollout(&t, SHA).await.expect("read");
    assert!(pending_says(&v).contains("to be observed"), "{v:?}");

    e.advance(1);
    let v = kube.rollout(&t, SHA).await.expect("read");
    assert!(pending_says(&v).contains("1 of 3 new replicas"), "{v:?}");

    e.advance(10);
    let v = kube.rollout(&t, SHA).await.expect("read");
    assert!(pending_says(&v).contains("2 of 3 new replicas"), "{v:?}");

    e.advance(10);
    let v = kube.rollout(&t, SHA).await.expect("read");
    assert!(
        pending_says(&v).contains("old replicas are pending termination"),
        "{v:?}"
    );

    e.advance(10);
    let v = kube.rollout(&t, SHA).await.expect("read");
    assert!(
        matches!(&v, DeployVerdict::Healthy { detail } if detail.contains(SHA)),
        "{v:?}"
    );

    // One GET per check, nothing else (no discovery, no pods, no replicasets).
    let reqs = e.world.sim.requests();
    assert_eq!(reqs.len(), 7);
    assert!(
        reqs.iter()
            .all(|r| r.method == "GET" && r.path == "/apis/apps/v1/namespaces/app/deployments/web")
    );
}

#[tokio::test]
async fn a_stalled_rollout_fails_at_the_progress_deadline() {
    let e = env().await;
    let kube = e.client();
    sim::fail_rollout(&e.world, "app", "web").expect("script");
    e.deploy(SHA);
    e.advance(1);
    let v = kube.rollout(&target(), SHA).await.expect("read");
    assert!(pending_says(&v).contains("1 of 3 new replicas"), "{v:?}");
    e.advance(599);
    assert!(matches!(
        kube.rollout(&target(), SHA).await.expect("read"),
        DeployVerdict::Pending { .. }
    ));
    e.advance(1);
    let v = kube.rollout(&target(), SHA).await.expect("read");
    assert!(
        matches!(&v, DeployVerdict::Failed { detail } if detail.contains("progress deadline")),
        "{v:?}"
    );
}

#[tokio::test]
async fn a_missing_deployment_is_an_error_naming_the_target() {
    let e = env().await;
    let mut t = target();
    t.deployment = "nope".into();
    let err = e.client().rollout(&t, SHA).await.expect_err("404");
    assert_eq!(err.remote, "kube");
    assert_eq!(err.status(), Some(404));
    assert_eq!(
        err.request,
        "GET /apis/apps/v1/namespaces/app/deployments/nope"
    );
    let msg = err.to_string();
    assert!(msg.contains("app/nope does not exist"), "{msg}");
    assert!(msg.contains("deploy target"), "{msg}");
}

#[tokio::test]
async fn a_missing_container_is_an_error_listing_the_containers() {
    let e = env().await;
    let mut t = target();
    t.container = "api".into();
    let err = e.client().rollout(&t, SHA).await.expect_err("no container");
    let msg = err.to_string();
    assert!(msg.contains("no container \"api\" (it has: web)"), "{msg}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn the_simulator_answers_unknown_names_with_a_status_object() {
    let e = env().await;
    let r = reqwest::get(format!(
        "{}/apis/apps/v1/namespaces/app/deployments/ghost",
        e.running.url(Remote::Kube)
    ))
    .await
    .expect("send");
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["apiVersion"], "v1");
    assert_eq!(body["status"], "Failure");
    assert_eq!(body["reason"], "NotFound");
    assert_eq!(body["code"], 404);
    assert_eq!(body["message"], "deployments.apps \"ghost\" not found");
}

#[tokio::test]
async fn forbidden_says_which_permission_is_missing() {
    let e = env().await;
    e.world.sim.add_fault(FaultRule {
        remote: Some(Remote::Kube),
        method: None,
        path: None,
        skip: 0,
        times: None,
        action: FaultAction::Status {
            status: 403,
            body: Some(
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps \"web\" is forbidden: User \"system:serviceaccount:afk:afk\" cannot get resource \"deployments\"","reason":"Forbidden","details":{"name":"web","group":"apps","kind":"deployments"},"code":403}"#
                    .into(),
            ),
            headers: Default::default(),
        },
        seen: 0,
    });
    let err = e.client().rollout(&target(), SHA).await.expect_err("403");
    assert_eq!(err.status(), Some(403));
    let msg = err.to_string();
    assert!(msg.contains("Forbidden"), "{msg}");
    assert!(
        msg.contains("needs get on deployments.apps in namespace app"),
        "{msg}"
    );
}

fn fault(times: Option<u64>, action: FaultAction) -> FaultRule {
    FaultRule {
        remote: Some(Remote::Kube),
        method: None,
        path: None,
        skip: 0,
        times,
        action,
        seen: 0,
    }
}

fn unavailable() -> FaultAction {
    FaultAction::Status {
        status: 503,
        body: None,
        headers: Default::default(),
    }
}

#[tokio::test]
async fn transient_failures_are_retried_within_the_policy() {
    let e = env().await;
    e.world.sim.add_fault(fault(Some(1), unavailable()));
    e.world
        .sim
        .add_fault(fault(Some(1), FaultAction::DropBefore));
    let v = e.client().rollout(&target(), OLD).await.expect("third try");
    assert!(matches!(v, DeployVerdict::Healthy { .. }), "{v:?}");
    assert_eq!(e.world.sim.requests().len(), 3);
}

#[tokio::test]
async fn lasting_server_errors_are_reported_as_transient() {
    let e = env().await;
    e.world.sim.add_fault(fault(None, unavailable()));
    let err = e.client().rollout(&target(), SHA).await.expect_err("503");
    assert_eq!(err.status(), Some(503));
    assert!(err.is_transient());
    assert_eq!(e.world.sim.requests().len(), 3, "1 + max_retries, no more");

    e.world.sim.clear_faults();
    e.world.sim.add_fault(fault(None, FaultAction::DropBefore));
    let err = e
        .client()
        .rollout(&target(), SHA)
        .await
        .expect_err("dropped");
    assert!(
        matches!(err.kind, ErrorKind::Transport(_) | ErrorKind::Timeout),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn no_retry_wait_runs_past_the_deadline() {
    let e = env().await;
    e.world.sim.add_fault(fault(None, unavailable()));
    let kube = Kube::for_url(e.running.url(Remote::Kube))
        .expect("client")
        .with_policy(RetryPolicy {
            max_retries: 10,
            backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            deadline: Some(Instant::now() + Duration::from_secs(3)),
            default_rate_limit_wait: Duration::from_secs(1),
            max_body_bytes: afk_remotes::http::DEFAULT_MAX_BODY_BYTES,
        });
    let started = Instant::now();
    let err = kube.rollout(&target(), SHA).await.expect_err("503");
    assert_eq!(err.status(), Some(503));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(e.world.sim.requests().len(), 1);
}

#[tokio::test]
async fn control_endpoints_script_the_rollout() {
    let e = env().await;
    let http = reqwest::Client::new();
    let ctl = &e.running.control_url;
    let r = http
        .post(format!("{ctl}/__sim/kube/deployments/app/web/image"))
        .json(&serde_json::json!({"container": "web", "image": format!("web:{SHA}")}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 204);
    let r = http
        .post(format!("{ctl}/__sim/kube/deployments/app/web/image"))
        .json(&serde_json::json!({"container": "nope", "image": "x"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let all: Vec<serde_json::Value> = http
        .get(format!("{ctl}/__sim/kube/deployments"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(all[0]["metadata"]["generation"], 2);
    assert_eq!(all[0]["status"]["observedGeneration"], 1);
}

#[tokio::test]
async fn an_unknown_kubeconfig_context_is_a_config_error_naming_it() {
    let err = Kube::from_env(Some("afk-no-such-context"))
        .await
        .expect_err("no such context");
    assert_eq!(err.remote, "kube");
    assert!(matches!(err.kind, ErrorKind::Local(_)), "{err:?}");
    assert!(err.to_string().contains("afk-no-such-context"), "{err}");
}
