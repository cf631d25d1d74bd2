//! The follow-up decision after a step was applied (`applied::after_apply`): a dispatch that
//! succeeded, failed or stopped part way; doorbells delivered, failed or refused per channel;
//! the lock released only after every doorbell.

#[allow(dead_code)]
#[path = "text/fixtures.rs"]
mod fixtures;

use afk_core::applied::{AppliedEffect, FollowUp, Outcome, after_apply};
use afk_core::comment;
use afk_core::config::{self, Config};
use afk_core::effect::{DispatchSpec, Effect, Notice};
use afk_core::machine::{NOTIFY_GIVE_UP, render_context};
use afk_core::record::{Channel, RunRecord, RunStatus, Verdict};
use fixtures::{RecordBuilder, at};

const LOCK: &str = "agent-in-progress";
const COMMENT: u64 = 7001;

fn config() -> Config {
    let text = r#"
kill_switch = false
allowlist = ["octo/shop"]

[t3]
base_url = "http://t3.afk.svc:3773"
token_file = "/run/secrets/t3-token"
web_url = "https://t3.example.org"

[notify.ntfy]
url = "https://ntfy.example.org"
topic = "afk"

[notify.slack]
webhook_url_file = "/run/secrets/slack-webhook"
"#;
    config::parse(Some(text), &|_| None).expect("config parses")
}

fn claimed() -> RunRecord {
    RecordBuilder::claimed().build()
}

/// A verdict reached at minute 30 with both doorbells pending.
fn concluded() -> RunRecord {
    RecordBuilder::claimed()
        .dispatched()
        .verdict(Verdict::NeedsHuman, "the agent asked a question", 30)
        .build()
}

fn status_comment(record: &RunRecord, comment_id: Option<u64>) -> Effect {
    Effect::UpsertStatusComment {
        repo: record.repo.clone(),
        issue: record.issue,
        run: record.run.clone(),
        comment_id,
        body: "(claimed)".into(),
    }
}

fn lock(record: &RunRecord) -> Effect {
    Effect::AddLabel {
        repo: record.repo.clone(),
        issue: record.issue,
        label: LOCK.into(),
    }
}

fn dispatch(record: &RunRecord) -> Effect {
    Effect::Dispatch {
        repo: record.repo.clone(),
        issue: record.issue,
        run: record.run.clone(),
        spec: Box::new(DispatchSpec {
            branch: record.branch.clone(),
            worktree: record.worktree.clone(),
            default_branch: Some("main".into()),
            project_id: record.project_id.clone(),
            project_title: "octo/shop".into(),
            project_root: "/data/afk/mirrors/octo__shop.git".into(),
            thread_id: record.thread_id.clone(),
            thread_title: "#42 Add a basket".into(),
            message_id: "message-1".into(),
            project_command_id: "project-1".into(),
            thread_command_id: "thread-1".into(),
            turn_command_id: "turn-1".into(),
            prompt: "Add a basket.".into(),
        }),
    }
}

fn notify(record: &RunRecord, channel: Channel) -> Effect {
    Effect::Notify {
        repo: record.repo.clone(),
        issue: record.issue,
        run: record.run.clone(),
        channel,
        notice: Notice {
            title: "needs a human".into(),
            message: "the agent asked a question".into(),
            priority: 4,
            tags: Vec::new(),
            click: fixtures::ISSUE_URL.into(),
            thread_url: fixtures::THREAD_URL.into(),
        },
    }
}

fn remove_lock(record: &RunRecord) -> Effect {
    Effect::RemoveLabel {
        repo: record.repo.clone(),
        issue: record.issue,
        label: LOCK.into(),
    }
}

fn step(effects: &[(Effect, Outcome)]) -> Vec<AppliedEffect> {
    effects
        .iter()
        .map(|(effect, outcome)| AppliedEffect {
            effect: effect.clone(),
            outcome: outcome.clone(),
        })
        .collect()
}

fn failed(public: &str) -> Outcome {
    Outcome::Failed {
        public: Some(public.into()),
    }
}

/// The status comment showing `record` exactly, edited in place.
fn shows(record: &RunRecord, comment_id: Option<u64>) -> Effect {
    Effect::UpsertStatusComment {
        repo: record.repo.clone(),
        issue: record.issue,
        run: record.run.clone(),
        comment_id,
        body: comment::render(record, &render_context(&config(), record)),
    }
}

fn claim_step(record: &RunRecord, outcomes: [Outcome; 3]) -> Vec<AppliedEffect> {
    let [comment, lock_taken, dispatched] = outcomes;
    step(&[
        (status_comment(record, None), comment),
        (lock(record), lock_taken),
        (dispatch(record), dispatched),
    ])
}

// ---------------------------------------------------------------------------------------------
// Dispatch.

#[test]
fn a_dispatch_that_succeeded_records_dispatched_in_the_comment() {
    let record = claimed();
    let applied = claim_step(
        &record,
        [Outcome::Applied, Outcome::Applied, Outcome::Applied],
    );
    let follow = after_apply(&record, Some(COMMENT), &applied, &config(), at(3));
    assert_eq!(follow.record.status, RunStatus::Dispatched);
    assert_eq!(follow.record.dispatched_at, Some(at(3)));
    assert_eq!(follow.record.last_turn_at, Some(at(3)));
    assert_eq!(follow.record.dispatch_error, None);
    assert_eq!(follow.effects, [shows(&follow.record, Some(COMMENT))]);
}

#[test]
fn a_dispatch_that_failed_records_its_public_reason_and_stays_claimed() {
    let record = claimed();
    let applied = claim_step(
        &record,
        [
            Outcome::Applied,
            Outcome::Applied,
            failed("dispatch failed: T3 answered 503"),
        ],
    );
    let follow = after_apply(&record, Some(COMMENT), &applied, &config(), at(3));
    assert_eq!(follow.record.status, RunStatus::Claimed);
    assert_eq!(follow.record.dispatched_at, None);
    let error = follow.record.dispatch_error.as_deref().expect("error kept");
    assert!(
        error.starts_with("dispatch failed: T3 answered 503 (at "),
        "{error}"
    );
    assert_eq!(follow.effects, [shows(&follow.record, Some(COMMENT))]);
}

#[test]
fn a_claim_stopped_at_the_lock_records_the_failure_so_the_attempt_counts() {
    let record = claimed();
    let applied = claim_step(
        &record,
        [
            Outcome::Applied,
            failed("add-label failed: the forge answered 403"),
            Outcome::NotAttempted,
        ],
    );
    let follow = after_apply(&record, Some(COMMENT), &applied, &config(), at(3));
    assert_eq!(follow.record.status, RunStatus::Claimed);
    let error = follow.record.dispatch_error.as_deref().expect("error kept");
    assert!(error.contains("add-label failed"), "{error}");
    assert_eq!(follow.effects, [shows(&follow.record, Some(COMMENT))]);
}

#[test]
fn a_claim_whose_comment_could_not_be_written_has_no_follow_up() {
    let record = claimed();
    let applied = claim_step(
        &record,
        [
            failed("upsert-status-comment failed: the forge answered 500"),
            Outcome::NotAttempted,
            Outcome::NotAttempted,
        ],
    );
    let follow = after_apply(&record, None, &applied, &config(), at(3));
    assert_eq!(
        follow,
        FollowUp {
            record,
            effects: Vec::new()
        }
    );
}

#[test]
fn a_failure_without_a_public_reason_shows_only_the_generic_one() {
    let record = claimed();
    let applied = claim_step(
        &record,
        [
            Outcome::Applied,
            Outcome::Applied,
            Outcome::Failed { public: None },
        ],
    );
    let follow = after_apply(&record, Some(COMMENT), &applied, &config(), at(3));
    let error = follow.record.dispatch_error.as_deref().expect("error kept");
    assert!(
        error.starts_with("dispatch failed; the details are in afk's logs"),
        "{error}"
    );
}

#[test]
fn a_dispatch_that_was_never_tried_records_nothing() {
    let record = claimed();
    let applied = claim_step(
        &record,
        [
            Outcome::NotAttempted,
            Outcome::NotAttempted,
            Outcome::NotAttempted,
        ],
    );
    let follow = after_apply(&record, Some(COMMENT), &applied, &config(), at(3));
    assert!(follow.effects.is_empty());
    assert_eq!(follow.record, record);
}

// ---------------------------------------------------------------------------------------------
// Doorbells and the release.

fn doorbells(record: &RunRecord, ntfy: Outcome, slack: Outcome) -> Vec<AppliedEffect> {
    step(&[
        (status_comment(record, Some(COMMENT)), Outcome::Applied),
        (notify(record, Channel::Ntfy), ntfy),
        (notify(record, Channel::Slack), slack),
    ])
}

#[test]
fn every_doorbell_delivered_releases_the_lock_last() {
    let record = concluded();
    let applied = doorbells(&record, Outcome::Applied, Outcome::Applied);
    let follow = after_apply(&record, Some(COMMENT), &applied, &config(), at(31));
    let v = follow.record.verdict.as_ref().expect("verdict");
    assert_eq!(v.notified, [Channel::Ntfy, Channel::Slack]);
    assert!(v.notify_pending.is_empty());
    assert_eq!(v.notify_failures, 0);
    assert_eq!(
        follow.effects,
        [shows(&follow.record, Some(COMMENT)), remove_lock(&record)]
    );
}

#[test]
fn a_transient_delivery_failure_keeps_the_lock_and_the_channel_pending() {
    let record = concluded();
    let applied = doorbells(
        &record,
        Outcome::Applied,
        Outcome::Undelivered { refused: false },
    );
    let follow = after_apply(&record, Some(COMMENT), &applied, &config(), at(31));
    let v = follow.record.verdict.as_ref().expect("verdict");
    assert_eq!(v.notified, [Channel::Ntfy]);
    assert_eq!(v.notify_pending, [Channel::Slack]);
    assert_eq!(v.notify_failures, 1);
    assert!(v.notify_given_up.is_empty());
    assert_eq!(follow.effects, [shows(&follow.record, Some(COMMENT))]);
}

#[test]
fn a_refused_delivery_is_given_up_at_once_and_the_lock_goes() {
    let record = concluded();
    let applied = doorbells(
        &record,
        Outcome::Undelivered { refused: true },
        Outcome::Applied,
    );
    let follow = after_apply(&record, Some(COMMENT), &applied, &config(), at(31));
    let v = follow.record.verdict.as_ref().expect("verdict");
    assert_eq!(v.notified, [Channel::Slack]);
    assert_eq!(v.notify_given_up, [Channel::Ntfy]);
    assert!(v.notify_pending.is_empty());
    assert_eq!(
        follow.effects,
        [shows(&follow.record, Some(COMMENT)), remove_lock(&record)]
    );
}

#[test]
fn a_transient_failure_past_the_give_up_horizon_releases_the_lock() {
    let record = concluded();
    let past = at(30) + chrono::TimeDelta::from_std(NOTIFY_GIVE_UP).expect("delta");
    let applied = doorbells(
        &record,
        Outcome::Undelivered { refused: false },
        Outcome::Undelivered { refused: false },
    );
    let follow = after_apply(&record, Some(COMMENT), &applied, &config(), past);
    let v = follow.record.verdict.as_ref().expect("verdict");
    assert_eq!(v.notify_given_up, [Channel::Ntfy, Channel::Slack]);
    assert_eq!(v.notify_failures, 2);
    assert_eq!(follow.effects.last(), Some(&remove_lock(&record)));
}

#[test]
fn the_lock_waits_for_t3_even_when_every_doorbell_was_delivered() {
    let record = RecordBuilder::claimed()
        .dispatched()
        .verdict(Verdict::Frozen, "CI stayed red", 30)
        .t3_unreachable(25, &[])
        .build();
    let applied = doorbells(&record, Outcome::Applied, Outcome::Applied);
    let follow = after_apply(&record, Some(COMMENT), &applied, &config(), at(31));
    assert_eq!(follow.effects, [shows(&follow.record, Some(COMMENT))]);
}

#[test]
fn a_run_step_that_failed_before_its_doorbells_has_no_follow_up() {
    let record = concluded();
    let applied = step(&[
        (status_comment(&record, Some(COMMENT)), Outcome::Applied),
        (
            lock(&record),
            failed("add-label failed: the forge answered 502"),
        ),
        (notify(&record, Channel::Ntfy), Outcome::NotAttempted),
        (notify(&record, Channel::Slack), Outcome::NotAttempted),
    ]);
    let follow = after_apply(&record, Some(COMMENT), &applied, &config(), at(31));
    assert_eq!(follow.record, record, "no delivery is recorded");
    assert!(follow.effects.is_empty());
}

#[test]
fn a_step_without_doorbells_or_dispatch_has_no_follow_up() {
    let record = RecordBuilder::claimed().dispatched().build();
    let applied = step(&[(status_comment(&record, Some(COMMENT)), Outcome::Applied)]);
    let follow = after_apply(&record, Some(COMMENT), &applied, &config(), at(31));
    assert_eq!(follow.record, record);
    assert!(follow.effects.is_empty());
}
