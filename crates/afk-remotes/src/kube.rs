//! Deploy health from the Kubernetes API: one GET of the target Deployment per
//! check, judged by [`rollout_status`].
//!
//! A deploy is healthy when the target container's template image carries the commit and the
//! rollout is complete by the logic of `kubectl rollout status`. "Carries the commit" means the
//! image tag contains the **full** commit SHA (`app:<sha>`, `app:main-<sha>`), not next to other
//! hex digits; a short prefix never matches, because tags like `app:9f1c2e3` are ambiguous and
//! a wrong match would call someone else's rollout healthy. Pods and ReplicaSets are not read:
//! the Deployment's status is enough for the `kubectl` logic.
//!
//! kube's own retry layer is off (it would wait up to minutes, past a tick's deadline);
//! transient failures (429, 5xx, transport, timeout) are retried by the shared retry executor
//! ([`crate::http::retry`]) under the client's [`RetryPolicy`] instead, never past its deadline.
//!
//! A missing Deployment or container is an error (the deploy target is misconfigured), never a
//! verdict; it is reported every tick until an operator fixes the config.

use afk_core::config::{DeployTarget, ImageMatch};
use afk_core::evidence::DeployVerdict;
use k8s_openapi::api::apps::v1::Deployment;

use crate::error::{ErrorKind, RemoteError, Result, excerpt};
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

    /// The deploy verdict for `sha` on `target` (one GET of the Deployment).
    pub async fn rollout(&self, target: &DeployTarget, sha: &str) -> Result<DeployVerdict> {
        let deployment = self.target_deployment(target).await?;
        let verdict =
            rollout_status_matching(&deployment, &target.container, sha, &target.image_match);
        tracing::debug!(
            remote = REMOTE,
            namespace = %target.namespace,
            deployment = %target.deployment,
            ?verdict,
            "rollout checked"
        );
        Ok(verdict)
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

/// Whether `image`'s tag contains the full commit `sha` (at least 40 hex digits), not flanked
/// by other hex digits. Digests (`@sha256:…`) are ignored.
pub fn image_carries_sha(image: &str, sha: &str) -> bool {
    let sha = sha.trim().to_ascii_lowercase();
    if sha.len() < 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    let Some((_, tag)) = last.split_once(':') else {
        return false;
    };
    let tag = tag.to_ascii_lowercase();
    tag.match_indices(&sha).any(|(at, m)| {
        let before = tag[..at].bytes().next_back();
        let after = tag[at + m.len()..].bytes().next();
        !before.is_some_and(|b| b.is_ascii_hexdigit())
            && !after.is_some_and(|b| b.is_ascii_hexdigit())
    })
}

/// [`rollout_status_matching`] with the default match: the full SHA in the image tag.
pub fn rollout_status(deployment: &Deployment, container: &str, sha: &str) -> DeployVerdict {
    rollout_status_matching(deployment, container, sha, &ImageMatch::FullSha)
}

/// Whether the image `reference` is pinned by digest (`name@sha256:…`).
fn pinned_by_digest(image: &str) -> bool {
    image.contains('@')
}

/// The tag of an image reference (`registry:5000/app:tag@sha256:…` → `tag`), if it has one.
fn image_tag(image: &str) -> Option<&str> {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    last.split_once(':').map(|(_, tag)| tag)
}

/// Whether the template `image` of `container` and the pod template's annotations show commit
/// `sha` under `how`; `Err` says why not, for the wait reason.
fn shows_commit(
    image: &str,
    annotations: Option<&std::collections::BTreeMap<String, String>>,
    sha: &str,
    how: &ImageMatch,
) -> std::result::Result<(), String> {
    let sha = sha.trim().to_ascii_lowercase();
    let short = sha.get(..12).unwrap_or(&sha);
    let digest_hint = if pinned_by_digest(image) && image_tag(image).is_none() {
        "; the image is pinned by digest, so only deploy.revision_annotation can tell its commit"
    } else {
        ""
    };
    match how {
        ImageMatch::FullSha => {
            if image_carries_sha(image, &sha) {
                Ok(())
            } else {
                Err(format!(
                    "runs image {image}, not yet commit {short}{digest_hint}"
                ))
            }
        }
        ImageMatch::Tag {
            template,
            short_len,
        } => {
            let want = template
                .replace("{short_sha}", sha.get(..*short_len).unwrap_or(&sha))
                .replace("{sha}", &sha);
            if sha.len() >= 40 && image_tag(image) == Some(want.as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "runs image {image}, not yet tag {want} of commit {short}{digest_hint}"
                ))
            }
        }
        ImageMatch::Annotation { key } => {
            let value = annotations.and_then(|a| a.get(key));
            match value {
                Some(v) if sha.len() >= 40 && v.trim().eq_ignore_ascii_case(&sha) => Ok(()),
                Some(v) => Err(format!(
                    "pod template annotation {key} is {}, not yet commit {short}",
                    excerpt(v.as_bytes())
                )),
                None => Err(format!(
                    "pod template has no annotation {key}; the deploy tooling must set it to \
                     the commit SHA"
                )),
            }
        }
    }
}

/// The deploy verdict for `sha` from a Deployment alone: the target container's pod template
/// must show the commit (`how`: the image tag, or a pod template annotation), then
/// `kubectl rollout status` in order:
/// generation not yet observed → Pending; `Progressing` with `ProgressDeadlineExceeded` →
/// Failed; fewer updated replicas than desired → Pending; old replicas still terminating →
/// Pending; fewer available than updated replicas → Pending; else Healthy. A container missing
/// from the template is Pending (the client reports it as an error before calling this).
pub fn rollout_status_matching(
    deployment: &Deployment,
    container: &str,
    sha: &str,
    how: &ImageMatch,
) -> DeployVerdict {
    let ns = deployment
        .metadata
        .namespace
        .as_deref()
        .unwrap_or("default");
    let name = deployment.metadata.name.as_deref().unwrap_or("?");
    let short = sha.get(..12).unwrap_or(sha);
    let pending = |detail: String| DeployVerdict::Pending { detail };
    let image = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.iter().find(|c| c.name == container))
        .map(|c| c.image.clone().unwrap_or_default());
    let Some(image) = image else {
        return pending(format!(
            "deployment {ns}/{name} has no container {container:?} in its pod template"
        ));
    };
    let annotations = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref());
    if let Err(why) = shows_commit(&image, annotations, sha, how) {
        return pending(format!(
            "deployment {ns}/{name} container {container} {why}"
        ));
    }
    let generation = deployment.metadata.generation.unwrap_or(0);
    let default_status = Default::default();
    let status = deployment.status.as_ref().unwrap_or(&default_status);
    if generation > status.observed_generation.unwrap_or(0) {
        return pending(format!(
            "deployment {ns}/{name}: waiting for the rollout of {short} to be observed"
        ));
    }
    let conditions = status.conditions.as_deref().unwrap_or(&[]);
    if let Some(c) = conditions.iter().find(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    }) {
        let message = c.message.as_deref().unwrap_or("");
        return DeployVerdict::Failed {
            detail: format!(
                "deployment {ns}/{name} exceeded its progress deadline rolling out {short}: {message}"
            ),
        };
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let current = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if let Some(want) = deployment.spec.as_ref().and_then(|s| s.replicas)
        && updated < want
    {
        return pending(format!(
            "deployment {ns}/{name}: {updated} of {want} new replicas have been updated"
        ));
    }
    if current > updated {
        return pending(format!(
            "deployment {ns}/{name}: {} old replicas are pending termination",
            current - updated
        ));
    }
    if available < updated {
        return pending(format!(
            "deployment {ns}/{name}: {available} of {updated} updated replicas are available"
        ));
    }
    DeployVerdict::Healthy {
        detail: format!(
            "deployment {ns}/{name} rolled out {image} ({available} available replicas)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    const SHA: &str = "9f1c2e3d4b5a69788796a5b4c3d2e1f00a1b2c3d";

    /// A fully rolled-out Deployment of `image` with 3 replicas, to be bent per test.
    fn deployment(image: &str) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("app".into()),
                generation: Some(4),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(3),
                template: PodTemplateSpec {
                    spec: Some(PodSpec {
                        containers: vec![
                            Container {
                                name: "sidecar".into(),
                                image: Some(format!("proxy:{SHA}")),
                                ..Default::default()
                            },
                            Container {
                                name: "web".into(),
                                image: Some(image.into()),
                                ..Default::default()
                            },
                        ],
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            }),
            status: Some(DeploymentStatus {
                observed_generation: Some(4),
                replicas: Some(3),
                updated_replicas: Some(3),
                available_replicas: Some(3),
                ready_replicas: Some(3),
                conditions: Some(vec![DeploymentCondition {
                    type_: "Progressing".into(),
                    status: "True".into(),
                    reason: Some("NewReplicaSetAvailable".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn on_sha() -> Deployment {
        deployment(&format!("registry.example:5000/team/web:{SHA}"))
    }

    fn status(d: &mut Deployment) -> &mut DeploymentStatus {
        d.status.get_or_insert_with(Default::default)
    }

    fn is_pending(v: &DeployVerdict, says: &str) -> bool {
        matches!(v, DeployVerdict::Pending { detail } if detail.contains(says))
    }

    #[test]
    fn a_complete_rollout_of_the_commit_is_healthy() {
        let v = rollout_status(&on_sha(), "web", SHA);
        assert!(
            matches!(&v, DeployVerdict::Healthy { detail } if detail.contains("app/web")),
            "{v:?}"
        );
    }

    #[test]
    fn the_image_must_carry_the_full_sha() {
        for image in [
            format!("web:{SHA}"),
            format!("registry:5000/web:main-{SHA}"),
            format!("web:{}", SHA.to_uppercase()),
            format!("web:{SHA}@sha256:{}", "a".repeat(64)),
        ] {
            assert!(image_carries_sha(&image, SHA), "{image}");
        }
        for image in [
            "web:9f1c2e3".to_owned(),
            format!("web:{}", &SHA[..39]),
            format!("web:{SHA}0"),
            format!("{SHA}/web:latest"),
            format!("registry:5000/{SHA}"),
            "web:latest".to_owned(),
            "web".to_owned(),
        ] {
            assert!(!image_carries_sha(&image, SHA), "{image}");
        }
        assert!(
            !image_carries_sha("web:9f1c2e3", "9f1c2e3"),
            "short shas never match"
        );
    }

    #[test]
    fn another_image_is_pending_even_when_the_rollout_is_complete() {
        let v = rollout_status(
            &deployment("web:0123456789012345678901234567890123456789"),
            "web",
            SHA,
        );
        assert!(is_pending(&v, "not yet commit 9f1c2e3d4b5a"), "{v:?}");
        let v = rollout_status(&deployment(&format!("web:{}", &SHA[..7])), "web", SHA);
        assert!(is_pending(&v, "not yet commit"), "{v:?}");
    }

    #[test]
    fn only_the_target_container_counts() {
        // The sidecar carries the sha; the target does not.
        let d = deployment("web:latest");
        assert!(is_pending(
            &rollout_status(&d, "web", SHA),
            "runs image web:latest"
        ));
        assert!(matches!(
            rollout_status(&d, "sidecar", SHA),
            DeployVerdict::Healthy { .. }
        ));
        assert!(is_pending(
            &rollout_status(&d, "nope", SHA),
            "no container \"nope\""
        ));
    }

    #[test]
    fn an_unobserved_generation_is_pending() {
        let mut d = on_sha();
        d.metadata.generation = Some(5);
        assert!(is_pending(
            &rollout_status(&d, "web", SHA),
            "to be observed"
        ));
        d.status = None;
        assert!(is_pending(
            &rollout_status(&d, "web", SHA),
            "to be observed"
        ));
    }

    #[test]
    fn progress_deadline_exceeded_fails_even_with_replicas_lagging() {
        let mut d = on_sha();
        let s = status(&mut d);
        s.updated_replicas = Some(1);
        s.conditions = Some(vec![DeploymentCondition {
            type_: "Progressing".into(),
            status: "False".into(),
            reason: Some("ProgressDeadlineExceeded".into()),
            message: Some("ReplicaSet \"web-5f\" has timed out progressing.".into()),
            ..Default::default()
        }]);
        let v = rollout_status(&d, "web", SHA);
        assert!(
            matches!(&v, DeployVerdict::Failed { detail } if detail.contains("progress deadline") && detail.contains("timed out")),
            "{v:?}"
        );
        // Unobserved generation comes first, as in kubectl.
        d.metadata.generation = Some(9);
        assert!(is_pending(
            &rollout_status(&d, "web", SHA),
            "to be observed"
        ));
    }

    #[test]
    fn other_progressing_reasons_do_not_fail() {
        let mut d = on_sha();
        status(&mut d).conditions = Some(vec![DeploymentCondition {
            type_: "Available".into(),
            status: "False".into(),
            reason: Some("ProgressDeadlineExceeded".into()),
            ..Default::default()
        }]);
        assert!(matches!(
            rollout_status(&d, "web", SHA),
            DeployVerdict::Healthy { .. }
        ));
    }

    #[test]
    fn fewer_updated_than_desired_replicas_is_pending() {
        let mut d = on_sha();
        status(&mut d).updated_replicas = Some(2);
        assert!(is_pending(
            &rollout_status(&d, "web", SHA),
            "2 of 3 new replicas"
        ));
        status(&mut d).updated_replicas = None;
        assert!(is_pending(
            &rollout_status(&d, "web", SHA),
            "0 of 3 new replicas"
        ));
    }

    #[test]
    fn old_replicas_pending_termination_is_pending() {
        let mut d = on_sha();
        status(&mut d).replicas = Some(4);
        assert!(is_pending(
            &rollout_status(&d, "web", SHA),
            "1 old replicas"
        ));
    }

    #[test]
    fn fewer_available_than_updated_is_pending() {
        let mut d = on_sha();
        status(&mut d).available_replicas = Some(2);
        assert!(is_pending(
            &rollout_status(&d, "web", SHA),
            "2 of 3 updated replicas are available"
        ));
    }

    #[test]
    fn without_spec_replicas_the_desired_count_check_is_skipped() {
        let mut d = on_sha();
        if let Some(s) = d.spec.as_mut() {
            s.replicas = None;
        }
        let s = status(&mut d);
        s.replicas = Some(1);
        s.updated_replicas = Some(1);
        s.available_replicas = Some(1);
        assert!(matches!(
            rollout_status(&d, "web", SHA),
            DeployVerdict::Healthy { .. }
        ));
    }
}
