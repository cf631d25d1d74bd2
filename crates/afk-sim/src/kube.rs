//! Simulator of the slice of the Kubernetes API afk reads: Deployments under
//! `/apis/apps/v1/namespaces/{ns}/deployments[/{name}]`, as real `apps/v1` JSON, and real
//! `Status` objects for errors.
//!
//! Rollouts progress on the simulated clock: [`set_image`] changes a container's image and
//! bumps `metadata.generation`; after `observe_secs` the controller has observed it, then one
//! new pod is created every `step_secs` and becomes available one step later, old pods going
//! away as new ones become available. [`fail_rollout`] makes a rollout stall with one
//! unavailable new pod until `progressDeadlineSeconds` pass and `Progressing` turns to
//! `ProgressDeadlineExceeded`, as the deployment controller reports it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::infra::lock;
use crate::world::World;

/// One scripted rollout.
#[derive(Debug, Clone, PartialEq)]
struct Rollout {
    started: DateTime<Utc>,
    failing: bool,
}

/// One Deployment and its scripted rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub namespace: String,
    pub name: String,
    /// `(container name, image)` in template order.
    pub containers: Vec<(String, String)>,
    /// `spec.template.metadata.annotations` (what deploy tooling stamps on the pod template,
    /// e.g. `org.opencontainers.image.revision`); omitted from the JSON when empty, as the API
    /// server omits an empty map.
    pub template_annotations: BTreeMap<String, String>,
    pub replicas: i32,
    pub generation: i64,
    pub revision: i64,
    /// Seconds until the controller observes a new generation.
    pub observe_secs: i64,
    /// Seconds per new pod (created, then available one step later).
    pub step_secs: i64,
    pub progress_deadline_secs: i64,
    created: DateTime<Utc>,
    rollout: Option<Rollout>,
    fail_next: bool,
}

/// What a scenario says about a new Deployment (fully rolled out at creation).
#[derive(Debug, Clone, Deserialize)]
pub struct NewDeployment {
    pub namespace: String,
    pub name: String,
    pub container: String,
    pub image: String,
    #[serde(default = "default_replicas")]
    pub replicas: i32,
    #[serde(default = "default_observe")]
    pub observe_secs: i64,
    #[serde(default = "default_step")]
    pub step_secs: i64,
    #[serde(default = "default_deadline")]
    pub progress_deadline_secs: i64,
}

fn default_replicas() -> i32 {
    2
}
fn default_observe() -> i64 {
    1
}
fn default_step() -> i64 {
    10
}
fn default_deadline() -> i64 {
    600
}

impl NewDeployment {
    pub fn new(namespace: &str, name: &str, container: &str, image: &str) -> NewDeployment {
        NewDeployment {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            container: container.to_owned(),
            image: image.to_owned(),
            replicas: default_replicas(),
            observe_secs: default_observe(),
            step_secs: default_step(),
            progress_deadline_secs: default_deadline(),
        }
    }
}

/// Everything this simulated remote knows.
#[derive(Debug, Default)]
pub struct State {
    /// Deployments by `(namespace, name)`.
    pub deployments: BTreeMap<(String, String), Deployment>,
}

/// Why a scripted change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// Adds (or replaces) a Deployment, fully rolled out.
pub fn add_deployment(world: &World, d: NewDeployment) {
    let now = world.sim.now();
    lock(&world.kube).deployments.insert(
        (d.namespace.clone(), d.name.clone()),
        Deployment {
            namespace: d.namespace,
            name: d.name,
            containers: vec![(d.container, d.image)],
            template_annotations: BTreeMap::new(),
            replicas: d.replicas.max(0),
            generation: 1,
            revision: 1,
            observe_secs: d.observe_secs.max(0),
            step_secs: d.step_secs.max(1),
            progress_deadline_secs: d.progress_deadline_secs.max(1),
            created: now,
            rollout: None,
            fail_next: false,
        },
    );
}

fn find<'a>(st: &'a mut State, ns: &str, name: &str) -> Result<&'a mut Deployment, Refused> {
    st.deployments
        .get_mut(&(ns.to_owned(), name.to_owned()))
        .ok_or_else(|| Refused(format!("no deployment {ns}/{name}")))
}

/// Sets a container's image (what Keel does): a new generation and a new rollout. Setting the
/// image it already has changes nothing, as in Kubernetes.
pub fn set_image(
    world: &World,
    ns: &str,
    name: &str,
    container: &str,
    image: &str,
) -> Result<(), Refused> {
    let now = world.sim.now();
    let mut st = lock(&world.kube);
    let d = find(&mut st, ns, name)?;
    let slot = d
        .containers
        .iter_mut()
        .find(|(c, _)| c == container)
        .ok_or_else(|| {
            Refused(format!(
                "deployment {ns}/{name} has no container {container}"
            ))
        })?;
    if slot.1 == image {
        return Ok(());
    }
    slot.1 = image.to_owned();
    d.generation += 1;
    d.revision += 1;
    d.rollout = Some(Rollout {
        started: now,
        failing: std::mem::take(&mut d.fail_next),
    });
    Ok(())
}

/// Sets (or, with `None`, removes) a pod template annotation: like any pod template change in
/// Kubernetes, a new generation and a new rollout; an unchanged value changes nothing.
pub fn set_template_annotation(
    world: &World,
    ns: &str,
    name: &str,
    key: &str,
    value: Option<&str>,
) -> Result<(), Refused> {
    let now = world.sim.now();
    let mut st = lock(&world.kube);
    let d = find(&mut st, ns, name)?;
    if d.template_annotations.get(key).map(String::as_str) == value {
        return Ok(());
    }
    match value {
        Some(v) => d.template_annotations.insert(key.to_owned(), v.to_owned()),
        None => d.template_annotations.remove(key),
    };
    d.generation += 1;
    d.revision += 1;
    d.rollout = Some(Rollout {
        started: now,
        failing: std::mem::take(&mut d.fail_next),
    });
    Ok(())
}

/// Makes the current rollout (or, if none is in progress, the next one) stall and end in
/// `ProgressDeadlineExceeded`.
pub fn fail_rollout(world: &World, ns: &str, name: &str) -> Result<(), Refused> {
    let now = world.sim.now();
    let mut st = lock(&world.kube);
    let d = find(&mut st, ns, name)?;
    let in_progress = d.rollout.as_ref().is_some_and(|r| !d.done(r, now));
    match &mut d.rollout {
        Some(r) if in_progress => r.failing = true,
        _ => d.fail_next = true,
    }
    Ok(())
}

/// The Deployment as the API serves it now.
pub fn deployment_json(world: &World, ns: &str, name: &str) -> Option<Value> {
    let now = world.sim.now();
    lock(&world.kube)
        .deployments
        .get(&(ns.to_owned(), name.to_owned()))
        .map(|d| d.render(now))
}

/// Replica counts and conditions at one instant.
struct Progress {
    observed: i64,
    replicas: i32,
    updated: i32,
    available: i32,
    /// `(status, reason, message)` of the Progressing condition.
    progressing: (&'static str, &'static str, String),
    since: DateTime<Utc>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Deployment {
    fn done(&self, r: &Rollout, now: DateTime<Utc>) -> bool {
        let t = (now - r.started).num_seconds() - self.observe_secs;
        !r.failing && t >= 0 && t / self.step_secs >= i64::from(self.replicas)
    }

    fn progress(&self, now: DateTime<Utc>) -> Progress {
        let r = self.replicas;
        let rs = format!("{}-{:x}", self.name, 0x5f00 + self.revision);
        let complete = |since| Progress {
            observed: self.generation,
            replicas: r,
            updated: r,
            available: r,
            progressing: (
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{rs}\" has successfully progressed."),
            ),
            since,
        };
        let Some(roll) = &self.rollout else {
            return complete(self.created);
        };
        let t = (now - roll.started).num_seconds();
        if t < self.observe_secs {
            let old_rs = format!("{}-{:x}", self.name, 0x5f00 + self.revision - 1);
            return Progress {
                observed: self.generation - 1,
                replicas: r,
                updated: r,
                available: r,
                progressing: (
                    "True",
                    "NewReplicaSetAvailable",
                    format!("ReplicaSet \"{old_rs}\" has successfully progressed."),
                ),
                since: roll.started,
            };
        }
        let t = t - self.observe_secs;
        let observed_at = roll.started + chrono::TimeDelta::seconds(self.observe_secs);
        if roll.failing {
            let updated = r.min(1);
            let deadline = t >= self.progress_deadline_secs;
            return Progress {
                observed: self.generation,
                replicas: r + updated,
                updated,
                available: r,
                progressing: if deadline {
                    (
                        "False",
                        "ProgressDeadlineExceeded",
                        format!("ReplicaSet \"{rs}\" has timed out progressing."),
                    )
                } else {
                    (
                        "True",
                        "ReplicaSetUpdated",
                        format!("ReplicaSet \"{rs}\" is progressing."),
                    )
                },
                since: if deadline {
                    observed_at + chrono::TimeDelta::seconds(self.progress_deadline_secs)
                } else {
                    observed_at
                },
            };
        }
        let k = i32::try_from(t / self.step_secs).unwrap_or(i32::MAX);
        if k >= r {
            let finished = observed_at + chrono::TimeDelta::seconds(i64::from(r) * self.step_secs);
            return complete(finished);
        }
        let updated = r.min(k.saturating_add(1));
        let new_available = r.min(k);
        let old = r - new_available;
        Progress {
            observed: self.generation,
            replicas: updated + old,
            updated,
            available: new_available + old,
            progressing: (
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{rs}\" is progressing."),
            ),
            since: observed_at,
        }
    }

    /// Real `apps/v1` Deployment JSON (zero counts omitted, as the API server does).
    pub fn render(&self, now: DateTime<Utc>) -> Value {
        let p = self.progress(now);
        let containers: Vec<Value> = self
            .containers
            .iter()
            .map(|(name, image)| {
                json!({
                    "name": name,
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                })
            })
            .collect();
        let mut status = serde_json::Map::new();
        status.insert("observedGeneration".into(), p.observed.into());
        for (k, v) in [
            ("replicas", p.replicas),
            ("updatedReplicas", p.updated),
            ("readyReplicas", p.available),
            ("availableReplicas", p.available),
            ("unavailableReplicas", p.replicas - p.available),
        ] {
            if v > 0 {
                status.insert(k.into(), v.into());
            }
        }
        let created = rfc3339(self.created);
        let since = rfc3339(p.since);
        let mut template_metadata = json!({"labels": {"app": self.name}});
        if !self.template_annotations.is_empty() {
            template_metadata["annotations"] = json!(self.template_annotations);
        }
        status.insert(
            "conditions".into(),
            json!([
                {
                    "type": "Available",
                    "status": "True",
                    "lastUpdateTime": created,
                    "lastTransitionTime": created,
                    "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability."
                },
                {
                    "type": "Progressing",
                    "status": p.progressing.0,
                    "lastUpdateTime": since,
                    "lastTransitionTime": since,
                    "reason": p.progressing.1,
                    "message": p.progressing.2
                }
            ]),
        );
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "uid": format!("00000000-0000-4000-8000-{:012x}", fnv(&format!("{}/{}", self.namespace, self.name))),
                "resourceVersion": (self.generation * 1000 + i64::from(p.updated) * 10 + i64::from(p.available)).to_string(),
                "generation": self.generation,
                "creationTimestamp": created,
                "labels": {"app": self.name},
                "annotations": {"deployment.kubernetes.io/revision": self.revision.to_string()},
            },
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": {"app": self.name}},
                "template": {
                    "metadata": template_metadata,
                    "spec": {
                        "containers": containers,
                        "restartPolicy": "Always",
                        "terminationGracePeriodSeconds": 30,
                        "dnsPolicy": "ClusterFirst",
                    },
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
                },
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": self.progress_deadline_secs,
            },
            "status": Value::Object(status),
        })
    }
}

/// A stable 48-bit hash for fake uids.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) & 0xffff_ffff_ffff
}

/// A real `Status` failure object.
fn status(code: u16, reason: &str, message: String, details: Option<Value>) -> Response {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(d) = details {
        body["details"] = d;
    }
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(body)).into_response()
}

async fn get_deployment(
    AxState(world): AxState<Arc<World>>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    match deployment_json(&world, &ns, &name) {
        Some(d) => Json(d).into_response(),
        None => status(
            404,
            "NotFound",
            format!("deployments.apps \"{name}\" not found"),
            Some(json!({"name": name, "group": "apps", "kind": "deployments"})),
        ),
    }
}

async fn list_deployments(AxState(world): AxState<Arc<World>>, Path(ns): Path<String>) -> Response {
    let now = world.sim.now();
    let items: Vec<Value> = lock(&world.kube)
        .deployments
        .values()
        .filter(|d| d.namespace == ns)
        .map(|d| d.render(now))
        .collect();
    Json(json!({
        "apiVersion": "apps/v1",
        "kind": "DeploymentList",
        "metadata": {"resourceVersion": "1"},
        "items": items,
    }))
    .into_response()
}

async fn method_not_allowed() -> Response {
    status(
        405,
        "MethodNotAllowed",
        "the simulator serves reads only".to_owned(),
        None,
    )
}

async fn unknown() -> Response {
    status(
        404,
        "NotFound",
        "the server could not find the requested resource".to_owned(),
        None,
    )
}

/// The remote's API as afk sees it.
pub fn router(world: Arc<World>) -> Router {
    Router::new()
        .route(
            "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
            get(get_deployment).fallback(method_not_allowed),
        )
        .route(
            "/apis/apps/v1/namespaces/{ns}/deployments",
            get(list_deployments).fallback(method_not_allowed),
        )
        .route(
            "/version",
            get(|| async {
                Json(json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-afk-sim"}))
            }),
        )
        .fallback(unknown)
        .with_state(world)
}

#[derive(Deserialize)]
struct NewAnnotation {
    key: String,
    value: Option<String>,
}

#[derive(Deserialize)]
struct NewImage {
    container: String,
    image: String,
}

fn outcome(r: Result<(), Refused>) -> Response {
    match r {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(Refused(why)) => (StatusCode::BAD_REQUEST, why).into_response(),
    }
}

/// Test and scenario control endpoints under `/__sim/kube/`: `POST deployments` (a
/// [`NewDeployment`]), `GET deployments`, `POST deployments/{ns}/{name}/image
/// {container, image}`, `POST deployments/{ns}/{name}/annotation {key, value|null}` (pod
/// template), `POST deployments/{ns}/{name}/fail`.
pub fn control(world: Arc<World>) -> Router {
    Router::new()
        .route(
            "/__sim/kube/deployments",
            post(
                |AxState(w): AxState<Arc<World>>, Json(d): Json<NewDeployment>| async move {
                    add_deployment(&w, d);
                    StatusCode::CREATED
                },
            )
            .get(|AxState(w): AxState<Arc<World>>| async move {
                let now = w.sim.now();
                let all: Vec<Value> = lock(&w.kube)
                    .deployments
                    .values()
                    .map(|d| d.render(now))
                    .collect();
                Json(all)
            }),
        )
        .route(
            "/__sim/kube/deployments/{ns}/{name}/image",
            post(
                |AxState(w): AxState<Arc<World>>,
                 Path((ns, name)): Path<(String, String)>,
                 Json(i): Json<NewImage>| async move {
                    outcome(set_image(&w, &ns, &name, &i.container, &i.image))
                },
            ),
        )
        .route(
            "/__sim/kube/deployments/{ns}/{name}/annotation",
            post(
                |AxState(w): AxState<Arc<World>>,
                 Path((ns, name)): Path<(String, String)>,
                 Json(a): Json<NewAnnotation>| async move {
                    outcome(set_template_annotation(&w, &ns, &name, &a.key, a.value.as_deref()))
                },
            ),
        )
        .route(
            "/__sim/kube/deployments/{ns}/{name}/fail",
            post(
                |AxState(w): AxState<Arc<World>>,
                 Path((ns, name)): Path<(String, String)>| async move {
                    outcome(fail_rollout(&w, &ns, &name))
                },
            ),
        )
        .with_state(world)
}
