//! Deploy facts from the Kubernetes API: one GET of the target Deployment per check, reduced
//! to [`DeploymentFacts`] (generations, replica counts, conditions, the target container's
//! template image, the pod template's annotations). The verdict is judged in the core
//! (`afk_core::rollout::judge`). Pods and ReplicaSets are not read: the Deployment's status is
//! enough for the `kubectl rollout status` logic.
//!
//! kube's own retry layer is off (it would wait up to minutes, past a tick's deadline);
//! transient failures (429, 5xx, transport, timeout) are retried by the shared retry executor
//! ([`crate::http::retry`]) under the client's [`RetryPolicy`] instead, never past its deadline.
//!
//! A missing Deployment or container is an error (the deploy target is misconfigured), never a
//! verdict; it is reported every tick until an operator fixes the config.

use afk_core::config::DeployTarget;
use afk_core::rollout::{DeploymentCondition, DeploymentFacts};
use k8s_openapi::api::apps::v1::Deployment;

use crate::error::{ErrorKind, RemoteError, Result};
use crate::http::RetryPolicy;
use crate::http::retry::{self, Verdict};

const REMOTE: &str = "kube";

/// Kubernetes API client.
#[derive(Clone)]
pub struct Kube {
    client: ::kube::Client,
    policy: RetryPolicy,
}

impl std::fmt::Debug for Kube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kube")
    }
}

fn local(request: &str, msg: String) -> RemoteError {
    RemoteError::new(REMOTE, request, ErrorKind::Local(msg))
}

/// Building a kube client spawns its request buffer, so a Tokio runtime must be running.
fn need_runtime(request: &str) -> Result<()> {
    tokio::runtime::Handle::try_current()
        .map(|_| ())
        .map_err(|_| {
            local(
                request,
                "the Kubernetes client needs a Tokio runtime".to_owned(),
            )
        })
}

fn build(mut config: ::kube::Config, request: &str) -> Result<Kube> {
    need_runtime(request)?;
    let policy = RetryPolicy::default();
    config.read_timeout = Some(policy.timeout);
    config.default_retry = false;
    let client = ::kube::Client::try_from(config).map_err(|e| {
        local(
            request,
            format!("cannot build the Kubernetes client: {}", safe_message(&e)),
        )
    })?;
    Ok(Kube { client, policy })
}

/// True when `e` or one of its causes is an authentication failure, whose text can hold the
/// output of a credential plugin.
fn mentions_auth(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.downcast_ref::<::kube::client::AuthError>().is_some() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The error and its causes, unless an authentication failure is among them.
fn safe_message(e: &::kube::Error) -> String {
    if matches!(e, ::kube::Error::Auth(_)) || mentions_auth(e) {
        return "authenticating to the cluster failed; check the kubeconfig user or the \
                service account token"
            .to_owned();
    }
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        src = s.source();
    }
    msg
}

fn looks_like_timeout(e: &::kube::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        let text = err.to_string().to_ascii_lowercase();
        if text.contains("timed out") || text.contains("elapsed") {
            return true;
        }
        cur = err.source();
    }
    false
}

impl Kube {
    /// In-cluster config, or `KUBECONFIG`/`~/.kube/config` (with `context` when given).
    pub async fn from_env(context: Option<&str>) -> Result<Self> {
        let request = "load config";
        let config = match context {
            Some(c) => ::kube::Config::from_kubeconfig(&::kube::config::KubeConfigOptions {
                context: Some(c.to_owned()),
                ..Default::default()
            })
            .await
            .map_err(|e| {
                local(
                    request,
                    format!("cannot load kubeconfig context {c:?}: {e}; check KUBECONFIG and kube.context"),
                )
            })?,
            None => ::kube::Config::infer().await.map_err(|e| {
                local(
                    request,
                    format!(
                        "no Kubernetes config found (in-cluster service account or KUBECONFIG): {e}"
                    ),
                )
            })?,
        };
        build(config, request)
    }

    /// A plain base URL with no authentication (the simulator, `kubectl proxy`).
    pub fn for_url(url: &str) -> Result<Self> {
        let request = "client";
        let uri: ::http::Uri = url
            .parse()
            .map_err(|e| local(request, format!("invalid Kubernetes API URL {url:?}: {e}")))?;
        build(::kube::Config::new(uri), request)
    }

    /// Replaces the retry and time budget (default: [`RetryPolicy::default`]).
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Reads the Deployment, retrying transient failures within the policy.
    async fn get_deployment(
        &self,
        request: &str,
        target: &DeployTarget,
    ) -> Result<Option<Deployment>> {
        let api: ::kube::Api<Deployment> =
            ::kube::Api::namespaced(self.client.clone(), &target.namespace);
        let (api, policy) = (&api, &self.policy);
        retry::run(policy, REMOTE, request, true, || async move {
            match tokio::time::timeout(policy.timeout, api.get_opt(&target.deployment)).await {
                Ok(Ok(found)) => Verdict::Done(found),
                Ok(Err(e)) => {
                    let err = self.error(request, target, e);
                    if err.is_transient() {
                        Verdict::Transient(err)
                    } else {
                        Verdict::Failed(err)
                    }
                }
                Err(_) => Verdict::Transient(RemoteError::new(REMOTE, request, ErrorKind::Timeout)),
            }
        })
        .await
    }

    /// Reads the target's Deployment and checks it has the configured container (one GET;
    /// the preflight check). Returns the Deployment's container names.
    pub async fn check_target(&self, target: &DeployTarget) -> Result<Vec<String>> {
        let deployment = self.target_deployment(target).await?;
        Ok(container_names(&deployment))
    }

    /// The target's Deployment (one GET): a missing Deployment or container is an error naming
    /// what to check in the repo's deploy target.
    async fn target_deployment(&self, target: &DeployTarget) -> Result<Deployment> {
        let request = format!(
            "GET /apis/apps/v1/namespaces/{}/deployments/{}",
            target.namespace, target.deployment
        );
        let Some(deployment) = self.get_deployment(&request, target).await? else {
            return Err(RemoteError::new(
                REMOTE,
                request,
                ErrorKind::Status {
                    status: 404,
                    detail: format!(
                        "deployment {}/{} does not exist; check the repo's deploy target \
                         (namespace and deployment)",
                        target.namespace, target.deployment
                    ),
                },
            ));
        };
        let names = container_names(&deployment);
        if !names.iter().any(|n| n == &target.container) {
            return Err(local(
                &request,
                format!(
                    "deployment {}/{} has no container {:?} (it has: {}); check the repo's deploy \
                     target container",
                    target.namespace,
                    target.deployment,
                    target.container,
                    names.join(", ")
                ),
            ));
        }
        Ok(deployment)
    }

    /// What the target's Deployment says about its rollout (one GET of the Deployment), for
    /// the core to judge.
    pub async fn deployment_facts(&self, target: &DeployTarget) -> Result<DeploymentFacts> {
        let deployment = self.target_deployment(target).await?;
        let facts = deployment_facts(&deployment, &target.container);
        tracing::debug!(
            remote = REMOTE,
            namespace = %target.namespace,
            deployment = %target.deployment,
            generation = facts.generation,
            observed_generation = facts.observed_generation,
            updated_replicas = facts.updated_replicas,
            available_replicas = facts.available_replicas,
            "deployment read"
        );
        Ok(facts)
    }

    fn error(&self, request: &str, target: &DeployTarget, e: ::kube::Error) -> RemoteError {
        let kind = match &e {
            ::kube::Error::Api(s) => {
                let hint = match s.code {
                    401 => "; check the cluster credentials".to_owned(),
                    403 => format!(
                        "; afk's service account needs get on deployments.apps in namespace {}",
                        target.namespace
                    ),
                    _ => String::new(),
                };
                let detail = match (s.reason.is_empty(), s.message.is_empty()) {
                    (false, false) => format!("{}: {}", s.reason, s.message),
                    (false, true) => s.reason.clone(),
                    _ => s.message.clone(),
                };
                ErrorKind::Status {
                    status: s.code,
                    detail: format!("{}{hint}", crate::error::excerpt(detail.as_bytes())),
                }
            }
            ::kube::Error::SerdeError(err) => ErrorKind::Decode(err.to_string()),
            ::kube::Error::Auth(_) => ErrorKind::Local(safe_message(&e)),
            _ if mentions_auth(&e) => ErrorKind::Local(safe_message(&e)),
            _ if looks_like_timeout(&e) => ErrorKind::Timeout,
            _ => ErrorKind::Transport(safe_message(&e)),
        };
        RemoteError::new(REMOTE, request, kind)
    }
}

fn container_names(d: &Deployment) -> Vec<String> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default()
}

/// The facts of `deployment` for `container`, as the API returned them (absent counts stay
/// absent; a container without an image reads as `""`).
pub fn deployment_facts(deployment: &Deployment, container: &str) -> DeploymentFacts {
    let spec = deployment.spec.as_ref();
    let status = deployment.status.as_ref();
    let template = spec.map(|s| &s.template);
    DeploymentFacts {
        namespace: deployment.metadata.namespace.clone().unwrap_or_default(),
        name: deployment.metadata.name.clone().unwrap_or_default(),
        generation: deployment.metadata.generation,
        observed_generation: status.and_then(|s| s.observed_generation),
        paused: spec.and_then(|s| s.paused).unwrap_or(false),
        desired_replicas: spec.and_then(|s| s.replicas),
        replicas: status.and_then(|s| s.replicas),
        updated_replicas: status.and_then(|s| s.updated_replicas),
        ready_replicas: status.and_then(|s| s.ready_replicas),
        available_replicas: status.and_then(|s| s.available_replicas),
        unavailable_replicas: status.and_then(|s| s.unavailable_replicas),
        conditions: status
            .and_then(|s| s.conditions.as_ref())
            .map(|cs| {
                cs.iter()
                    .map(|c| DeploymentCondition {
                        kind: c.type_.clone(),
                        status: c.status.clone(),
                        reason: c.reason.clone(),
                        message: c.message.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        container: container.to_owned(),
        image: template
            .and_then(|t| t.spec.as_ref())
            .and_then(|p| p.containers.iter().find(|c| c.name == container))
            .map(|c| c.image.clone().unwrap_or_default()),
        template_annotations: template
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.annotations.clone())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Deployment mid-rollout as `GET /apis/apps/v1/namespaces/app/deployments/web` returns
    /// it (shape and condition reasons as the Deployment controller writes them; see
    /// "Deployments" in the Kubernetes concepts, "Progressing Deployment").
    const ROLLING: &str = r#"{
      "apiVersion": "apps/v1",
      "kind": "Deployment",
      "metadata": {
        "name": "web", "namespace": "app", "generation": 5,
        "annotations": {"deployment.kubernetes.io/revision": "5"}
      },
      "spec": {
        "replicas": 3,
        "paused": true,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
          "metadata": {
            "labels": {"app": "web"},
            "annotations": {"org.opencontainers.image.revision": "9f1c2e3d4b5a69788796a5b4c3d2e1f00a1b2c3d"}
          },
          "spec": {"containers": [
            {"name": "sidecar", "image": "proxy:1.2"},
            {"name": "web", "image": "registry.example:5000/team/web:sha-9f1c2e3"},
            {"name": "bare"}
          ]}
        }
      },
      "status": {
        "observedGeneration": 5,
        "replicas": 4,
        "updatedReplicas": 1,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "unavailableReplicas": 1,
        "conditions": [
          {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
           "message": "Deployment has minimum availability.",
           "lastUpdateTime": "2026-01-01T10:00:00Z", "lastTransitionTime": "2026-01-01T10:00:00Z"},
          {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
           "message": "ReplicaSet \"web-5f6b\" is progressing.",
           "lastUpdateTime": "2026-01-01T10:01:00Z", "lastTransitionTime": "2026-01-01T09:00:00Z"}
        ]
      }
    }"#;

    fn parse(json: &str) -> Deployment {
        serde_json::from_str(json).expect("a Deployment")
    }

    #[test]
    fn the_facts_are_what_the_deployment_says() {
        let f = deployment_facts(&parse(ROLLING), "web");
        assert_eq!((f.namespace.as_str(), f.name.as_str()), ("app", "web"));
        assert_eq!((f.generation, f.observed_generation), (Some(5), Some(5)));
        assert!(f.paused);
        assert_eq!(f.desired_replicas, Some(3));
        assert_eq!(
            (
                f.replicas,
                f.updated_replicas,
                f.ready_replicas,
                f.available_replicas,
                f.unavailable_replicas
            ),
            (Some(4), Some(1), Some(3), Some(3), Some(1))
        );
        assert_eq!(f.conditions.len(), 2);
        assert_eq!(f.conditions[1].kind, "Progressing");
        assert_eq!(f.conditions[1].reason.as_deref(), Some("ReplicaSetUpdated"));
        assert_eq!(
            f.conditions[1].message.as_deref(),
            Some("ReplicaSet \"web-5f6b\" is progressing.")
        );
        assert_eq!(
            f.image.as_deref(),
            Some("registry.example:5000/team/web:sha-9f1c2e3")
        );
        assert_eq!(
            f.template_annotations
                .get("org.opencontainers.image.revision")
                .map(String::as_str),
            Some("9f1c2e3d4b5a69788796a5b4c3d2e1f00a1b2c3d")
        );
    }

    #[test]
    fn only_the_target_container_is_read() {
        let d = parse(ROLLING);
        assert_eq!(
            deployment_facts(&d, "sidecar").image.as_deref(),
            Some("proxy:1.2")
        );
        assert_eq!(deployment_facts(&d, "bare").image.as_deref(), Some(""));
        assert_eq!(deployment_facts(&d, "nope").image, None);
    }

    #[test]
    fn absent_status_fields_stay_absent() {
        // A Deployment just created (no status yet) and one scaled to zero (the API leaves
        // zero counts out).
        let new = parse(
            r#"{"metadata": {"name": "web", "namespace": "app", "generation": 1},
                "spec": {"replicas": 0, "selector": {}, "template": {"spec": {"containers": [
                  {"name": "web", "image": "web:1"}]}}}}"#,
        );
        let f = deployment_facts(&new, "web");
        assert_eq!(f.observed_generation, None);
        assert_eq!(f.desired_replicas, Some(0));
        assert_eq!(
            (f.replicas, f.updated_replicas, f.available_replicas),
            (None, None, None)
        );
        assert!(f.conditions.is_empty() && f.template_annotations.is_empty() && !f.paused);
    }
}
