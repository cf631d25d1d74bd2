//! The rollout verdict from Deployment facts shaped like what the API returns in each phase of
//! a rollout (the conditions and counts the Deployment controller writes, as documented in
//! "Deployments" of the Kubernetes concepts: complete, progressing, failed, paused).

use super::*;

const SHA: &str = "9f1c2e3d4b5a69788796a5b4c3d2e1f00a1b2c3d";
const OLD: &str = "0123456789abcdef0123456789abcdef01234567";

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> DeploymentCondition {
    DeploymentCondition {
        kind: kind.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
    }
}

/// `app/web`, 3 replicas, rolled out completely on `image` (generation 4 observed).
fn complete(image: &str) -> DeploymentFacts {
    DeploymentFacts {
        namespace: "app".into(),
        name: "web".into(),
        generation: Some(4),
        observed_generation: Some(4),
        paused: false,
        desired_replicas: Some(3),
        replicas: Some(3),
        updated_replicas: Some(3),
        ready_replicas: Some(3),
        available_replicas: Some(3),
        unavailable_replicas: None,
        conditions: vec![
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            ),
            condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                "ReplicaSet \"web-7d9c\" has successfully progressed.",
            ),
        ],
        container: "web".into(),
        image: Some(image.into()),
        template_annotations: BTreeMap::new(),
    }
}

fn on_sha() -> DeploymentFacts {
    complete(&format!("registry.example:5000/team/web:{SHA}"))
}

/// Mid-rollout with the default strategy (25 % surge/unavailable): one new pod up, three old
/// ones still serving.
fn rolling() -> DeploymentFacts {
    let mut d = on_sha();
    d.generation = Some(5);
    d.observed_generation = Some(5);
    d.replicas = Some(4);
    d.updated_replicas = Some(1);
    d.ready_replicas = Some(3);
    d.available_replicas = Some(3);
    d.unavailable_replicas = Some(1);
    d.conditions[1] = condition(
        "Progressing",
        "True",
        "ReplicaSetUpdated",
        "ReplicaSet \"web-5f6b\" is progressing.",
    );
    d
}

fn is_pending(v: &DeployVerdict, says: &str) -> bool {
    matches!(v, DeployVerdict::Pending { detail } if detail.contains(says))
}

fn full(d: &DeploymentFacts, sha: &str) -> DeployVerdict {
    judge(d, sha, &ImageMatch::FullSha)
}

#[test]
fn a_complete_rollout_of_the_commit_is_healthy() {
    let v = full(&on_sha(), SHA);
    assert!(
        matches!(&v, DeployVerdict::Healthy { detail } if detail.contains("app/web") && detail.contains("3 available")),
        "{v:?}"
    );
}

#[test]
fn a_rolling_deployment_is_pending_on_its_counts() {
    let v = full(&rolling(), SHA);
    assert!(
        is_pending(&v, "1 of 3 new replicas have been updated"),
        "{v:?}"
    );
    // All new pods created, one old pod still terminating.
    let mut d = rolling();
    d.updated_replicas = Some(3);
    assert!(is_pending(
        &full(&d, SHA),
        "1 old replicas are pending termination"
    ));
    // Old pods gone, one new pod not yet available.
    d.replicas = Some(3);
    d.available_replicas = Some(2);
    assert!(is_pending(
        &full(&d, SHA),
        "2 of 3 updated replicas are available"
    ));
}

#[test]
fn progress_deadline_exceeded_fails_even_with_replicas_lagging() {
    let mut d = rolling();
    d.conditions[1] = condition(
        "Progressing",
        "False",
        "ProgressDeadlineExceeded",
        "ReplicaSet \"web-5f6b\" has timed out progressing.",
    );
    let v = full(&d, SHA);
    assert!(
        matches!(&v, DeployVerdict::Failed { detail } if detail.contains("progress deadline") && detail.contains("timed out") && detail.contains("9f1c2e3d4b5a")),
        "{v:?}"
    );
    // An unobserved generation comes first, as in kubectl.
    d.generation = Some(9);
    assert!(is_pending(&full(&d, SHA), "to be observed"));
}

#[test]
fn other_conditions_with_that_reason_do_not_fail() {
    let mut d = on_sha();
    d.conditions = vec![condition(
        "Available",
        "False",
        "ProgressDeadlineExceeded",
        "",
    )];
    assert!(matches!(full(&d, SHA), DeployVerdict::Healthy { .. }));
}

#[test]
fn a_wrong_image_is_pending_even_when_the_rollout_is_complete() {
    let v = full(&complete(&format!("web:{OLD}")), SHA);
    assert!(is_pending(&v, "not yet commit 9f1c2e3d4b5a"), "{v:?}");
    let v = full(&complete(&format!("web:{}", &SHA[..7])), SHA);
    assert!(is_pending(&v, "runs image web:9f1c2e3"), "{v:?}");
    // The old commit's own rollout is healthy.
    assert!(matches!(
        full(&complete(&format!("web:{OLD}")), OLD),
        DeployVerdict::Healthy { .. }
    ));
}

#[test]
fn a_paused_deployment_is_judged_by_its_template_and_counts() {
    // Paused before the new image was set: the template still runs the old commit.
    let mut d = complete(&format!("web:{OLD}"));
    d.paused = true;
    d.conditions[1] = condition(
        "Progressing",
        "Unknown",
        "DeploymentPaused",
        "Deployment is paused",
    );
    assert!(is_pending(&full(&d, SHA), "not yet commit"));
    // Paused mid-rollout: the counts keep it pending, and no deadline is exceeded.
    let mut d = rolling();
    d.paused = true;
    d.conditions[1] = condition(
        "Progressing",
        "Unknown",
        "DeploymentPaused",
        "Deployment is paused",
    );
    assert!(is_pending(&full(&d, SHA), "1 of 3 new replicas"));
}

#[test]
fn a_deployment_scaled_to_zero_is_healthy_on_the_commit() {
    // The API leaves zero counts out of status.
    let mut d = on_sha();
    d.desired_replicas = Some(0);
    d.replicas = None;
    d.updated_replicas = None;
    d.ready_replicas = None;
    d.available_replicas = None;
    let v = full(&d, SHA);
    assert!(
        matches!(&v, DeployVerdict::Healthy { detail } if detail.contains("0 available")),
        "{v:?}"
    );
}

#[test]
fn an_unobserved_generation_is_pending() {
    let mut d = on_sha();
    d.generation = Some(5);
    assert!(is_pending(&full(&d, SHA), "to be observed"));
    // No status at all yet.
    d.observed_generation = None;
    d.replicas = None;
    d.updated_replicas = None;
    d.available_replicas = None;
    d.conditions.clear();
    assert!(is_pending(&full(&d, SHA), "to be observed"));
}

#[test]
fn without_desired_replicas_the_updated_count_check_is_skipped() {
    let mut d = on_sha();
    d.desired_replicas = None;
    d.replicas = Some(1);
    d.updated_replicas = Some(1);
    d.available_replicas = Some(1);
    assert!(matches!(full(&d, SHA), DeployVerdict::Healthy { .. }));
}

#[test]
fn a_missing_container_is_pending_naming_it() {
    let mut d = on_sha();
    d.image = None;
    d.container = "nope".into();
    assert!(is_pending(&full(&d, SHA), "no container \"nope\""));
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
fn a_tag_template_matches_exactly_with_the_configured_short_length() {
    let how = ImageMatch::Tag {
        template: "sha-{short_sha}".into(),
        short_len: 7,
    };
    let d = complete("registry:5000/web:sha-9f1c2e3");
    assert!(matches!(
        judge(&d, SHA, &how),
        DeployVerdict::Healthy { .. }
    ));
    let d = complete("registry:5000/web:sha-9f1c2e3d");
    assert!(is_pending(&judge(&d, SHA, &how), "not yet tag sha-9f1c2e3"));
    // A short SHA as the commit never matches.
    let d = complete("web:sha-9f1c2e3");
    assert!(is_pending(&judge(&d, "9f1c2e3", &how), "not yet tag"));
}

#[test]
fn a_digest_pinned_image_is_matched_by_its_revision_annotation() {
    let pinned = format!("registry:5000/web@sha256:{}", "b".repeat(64));
    let v = full(&complete(&pinned), SHA);
    assert!(is_pending(&v, "only deploy.revision_annotation"), "{v:?}");
    let how = ImageMatch::Annotation {
        key: "org.opencontainers.image.revision".into(),
    };
    let mut d = complete(&pinned);
    assert!(is_pending(&judge(&d, SHA, &how), "has no annotation"));
    d.template_annotations
        .insert("org.opencontainers.image.revision".into(), OLD.into());
    assert!(is_pending(&judge(&d, SHA, &how), "is 0123456789ab"));
    d.template_annotations.insert(
        "org.opencontainers.image.revision".into(),
        format!(" {} ", SHA.to_uppercase()),
    );
    assert!(matches!(
        judge(&d, SHA, &how),
        DeployVerdict::Healthy { .. }
    ));
}
