//! The rollout verdict, judged from what a Deployment says about itself.
//!
//! The Kubernetes client reads the target Deployment and reduces it to [`DeploymentFacts`]
//! (generations, replica counts, conditions, the target container's template image and the pod
//! template's annotations); [`judge`] turns them into a [`DeployVerdict`] for a commit.
//!
//! A deploy is healthy when the target container's pod template shows the commit (the image tag
//! or a pod template annotation, per [`ImageMatch`]) and the rollout is complete by the logic of
//! `kubectl rollout status` (kubernetes/kubectl `pkg/polymorphichelpers/rollout_status.go`,
//! `DeploymentStatusViewer.Status`): a generation not yet observed is waiting; a `Progressing`
//! condition with reason `ProgressDeadlineExceeded` has failed; fewer updated replicas than
//! desired, old replicas still terminating, or fewer available than updated replicas is
//! waiting; anything else is complete. "Carries the commit" in the image tag means the **full**
//! SHA, not next to other hex digits: a short prefix never matches, because tags like
//! `app:9f1c2e3` are ambiguous and a wrong match would call someone else's rollout healthy.

use std::collections::BTreeMap;

use crate::config::ImageMatch;
use crate::evidence::DeployVerdict;
use crate::public::excerpt;

/// One entry of `status.conditions` of a Deployment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentCondition {
    /// `Progressing`, `Available` or `ReplicaFailure`.
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// e.g. `NewReplicaSetAvailable`, `ReplicaSetUpdated`, `ProgressDeadlineExceeded`,
    /// `DeploymentPaused`, `MinimumReplicasAvailable`.
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// What a Deployment says about its rollout, as read from the API (absent fields stay `None`:
/// the API leaves zero counts out of `status`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentFacts {
    pub namespace: String,
    pub name: String,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `status.observedGeneration` (`None` also when there is no status at all).
    pub observed_generation: Option<i64>,
    /// `spec.paused`.
    pub paused: bool,
    /// `spec.replicas` (the desired count).
    pub desired_replicas: Option<i32>,
    /// `status.replicas`: pods of every revision.
    pub replicas: Option<i32>,
    /// `status.updatedReplicas`: pods of the current template.
    pub updated_replicas: Option<i32>,
    /// `status.readyReplicas`.
    pub ready_replicas: Option<i32>,
    /// `status.availableReplicas`.
    pub available_replicas: Option<i32>,
    /// `status.unavailableReplicas`.
    pub unavailable_replicas: Option<i32>,
    /// `status.conditions`, in the API's order.
    pub conditions: Vec<DeploymentCondition>,
    /// The container afk watches.
    pub container: String,
    /// That container's image in the pod template: `None` when the template has no such
    /// container; a container without an image reads as `""`.
    pub image: Option<String>,
    /// The pod template's annotations (where deploy tooling records the commit when the image
    /// is pinned by digest).
    pub template_annotations: BTreeMap<String, String>,
}

/// Whether `image`'s tag contains the full commit `sha` (at least 40 hex digits), not flanked
/// by other hex digits. Digests (`@sha256:…`) are ignored.
pub fn image_carries_sha(image: &str, sha: &str) -> bool {
    let sha = sha.trim().to_ascii_lowercase();
    if sha.len() < 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let Some(tag) = image_tag(image) else {
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

/// Whether the image reference is pinned by digest (`name@sha256:…`).
fn pinned_by_digest(image: &str) -> bool {
    image.contains('@')
}

/// The tag of an image reference (`registry:5000/app:tag@sha256:…` → `tag`), if it has one.
fn image_tag(image: &str) -> Option<&str> {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    last.split_once(':').map(|(_, tag)| tag)
}

/// Whether the template `image` and the pod template's `annotations` show commit `sha` under
/// `how`; `Err` says why not, for the wait reason.
fn shows_commit(
    image: &str,
    annotations: &BTreeMap<String, String>,
    sha: &str,
    how: &ImageMatch,
) -> Result<(), String> {
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
        ImageMatch::Annotation { key } => match annotations.get(key) {
            Some(v) if sha.len() >= 40 && v.trim().eq_ignore_ascii_case(&sha) => Ok(()),
            Some(v) => Err(format!(
                "pod template annotation {key} is {}, not yet commit {short}",
                excerpt(v)
            )),
            None => Err(format!(
                "pod template has no annotation {key}; the deploy tooling must set it to \
                 the commit SHA"
            )),
        },
    }
}

/// The deploy verdict for commit `sha` from the Deployment's facts: the target container's pod
/// template must show the commit (`how`), then `kubectl rollout status` in order: generation
/// not yet observed → Pending; `Progressing` with `ProgressDeadlineExceeded` → Failed; fewer
/// updated replicas than desired → Pending; old replicas still terminating → Pending; fewer
/// available than updated replicas → Pending; else Healthy. A container missing from the
/// template is Pending (the client reports it as an error before the core sees it). A paused
/// Deployment is judged like any other: paused before the new template it never shows the
/// commit; paused mid-rollout its counts keep it pending.
pub fn judge(facts: &DeploymentFacts, sha: &str, how: &ImageMatch) -> DeployVerdict {
    let ns = if facts.namespace.is_empty() {
        "default"
    } else {
        facts.namespace.as_str()
    };
    let name = if facts.name.is_empty() {
        "?"
    } else {
        facts.name.as_str()
    };
    let container = facts.container.as_str();
    let short = sha.get(..12).unwrap_or(sha);
    let pending = |detail: String| DeployVerdict::Pending { detail };
    let Some(image) = facts.image.as_deref() else {
        return pending(format!(
            "deployment {ns}/{name} has no container {container:?} in its pod template"
        ));
    };
    if let Err(why) = shows_commit(image, &facts.template_annotations, sha, how) {
        return pending(format!(
            "deployment {ns}/{name} container {container} {why}"
        ));
    }
    if facts.generation.unwrap_or(0) > facts.observed_generation.unwrap_or(0) {
        return pending(format!(
            "deployment {ns}/{name}: waiting for the rollout of {short} to be observed"
        ));
    }
    if let Some(c) = facts.conditions.iter().find(|c| {
        c.kind == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    }) {
        let message = c.message.as_deref().unwrap_or("");
        return DeployVerdict::Failed {
            detail: format!(
                "deployment {ns}/{name} exceeded its progress deadline rolling out {short}: {message}"
            ),
        };
    }
    let updated = facts.updated_replicas.unwrap_or(0);
    let current = facts.replicas.unwrap_or(0);
    let available = facts.available_replicas.unwrap_or(0);
    if let Some(want) = facts.desired_replicas
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
mod tests;
