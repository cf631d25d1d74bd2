//! The second decision of a step: what applying a plan step did (every effect applied, failed,
//! not delivered or not tried) in, the follow-up effects out.
//!
//! A tick applies a step's effects in order and stops at the first failure. What happened is
//! data ([`AppliedEffect`]), and [`after_apply`] decides what follows, so the second decision
//! is as testable as the first:
//!
//! | the step applied | follow-up |
//! |---|---|
//! | a claim or a resumed dispatch (the step holds a `dispatch`), every effect applied | the record says `dispatched`; the status comment is edited to show it |
//! | a claim or a resumed dispatch, an effect failed once the status comment exists | the record keeps `claimed` with the failure's public reason (the attempt counts); the comment is edited to show it |
//! | a claim whose status comment could not be written | nothing: no lock was taken, the next poll starts over |
//! | a run's step in which an effect failed (not a doorbell) | nothing: the next tick resumes from what the tracker shows |
//! | a run's step with doorbells | each delivery recorded (delivered, failed: retried, refused: given up); the comment shows it; the lock goes last, once no doorbell is pending and T3 answered |
//! | anything else | nothing |

use crate::claim::{dispatch_failed, dispatched};
use crate::comment;
use crate::config::Config;
use crate::effect::Effect;
use crate::machine::{Delivery, after_notify, release_after_delivery, render_context};
use crate::model::Timestamp;
use crate::record::RunRecord;

/// What the status comment says when a failure has no public reason.
const GENERIC_DISPATCH_FAILURE: &str = "dispatch failed; the details are in afk's logs";

/// How applying one effect went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The remote accepted it (a doorbell: delivered).
    Applied,
    /// It failed and the step stopped there. `public` is a short, sanitised reason fit for the
    /// public status comment; `None` when only a generic reason may be shown.
    Failed { public: Option<String> },
    /// A doorbell its channel did not take; the step went on. `refused`: the channel refused it
    /// for good (retrying cannot help); otherwise it is retried on later ticks.
    Undelivered { refused: bool },
    /// Not tried: an earlier effect of the step failed.
    NotAttempted,
}

/// One effect of a step and how applying it went.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedEffect {
    pub effect: Effect,
    pub outcome: Outcome,
}

/// What follows a step: the run's record after it, and the effects to apply next.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "the follow-up effects must be applied"]
pub struct FollowUp {
    pub record: RunRecord,
    pub effects: Vec<Effect>,
}

/// Decides what follows a step (the table in the module docs). `record` is the run's record as
/// the step's decision left it; `comment_id` the run's status comment after the step (`None`
/// when it does not exist, e.g. a claim whose comment could not be created).
pub fn after_apply(
    record: &RunRecord,
    comment_id: Option<u64>,
    applied: &[AppliedEffect],
    config: &Config,
    now: Timestamp,
) -> FollowUp {
    let nothing = || FollowUp {
        record: record.clone(),
        effects: Vec::new(),
    };
    let failure = applied.iter().find_map(|a| match &a.outcome {
        Outcome::Failed { public } => Some(public.as_deref()),
        _ => None,
    });
    let dispatch = applied
        .iter()
        .find(|a| matches!(a.effect, Effect::Dispatch { .. }));
    if let Some(dispatch) = dispatch {
        let next = match failure {
            // The comment could not be written: there is nothing to record the attempt in.
            Some(_) if comment_id.is_none() => return nothing(),
            Some(public) => {
                dispatch_failed(record, public.unwrap_or(GENERIC_DISPATCH_FAILURE), now)
            }
            None if dispatch.outcome == Outcome::Applied => dispatched(record, now),
            None => return nothing(),
        };
        let upsert = status_comment(&next, comment_id, config);
        return FollowUp {
            record: next,
            effects: vec![upsert],
        };
    }
    if failure.is_some() {
        return nothing();
    }
    let mut next = record.clone();
    let mut tried = false;
    for a in applied {
        let Effect::Notify { channel, .. } = &a.effect else {
            continue;
        };
        let delivery = match a.outcome {
            Outcome::Applied => Delivery::Delivered,
            Outcome::Undelivered { refused: true } => Delivery::Refused,
            Outcome::Undelivered { refused: false } => Delivery::Failed,
            Outcome::Failed { .. } | Outcome::NotAttempted => continue,
        };
        next = after_notify(&next, *channel, delivery, now);
        tried = true;
    }
    match comment_id {
        Some(id) if tried => FollowUp {
            effects: release_after_delivery(&next, id, config),
            record: next,
        },
        _ => FollowUp {
            record: next,
            effects: Vec::new(),
        },
    }
}

/// The run's status comment showing `record`, edited in place when it exists.
fn status_comment(record: &RunRecord, comment_id: Option<u64>, config: &Config) -> Effect {
    Effect::UpsertStatusComment {
        repo: record.repo.clone(),
        issue: record.issue,
        run: record.run.clone(),
        comment_id,
        body: comment::render(record, &render_context(config, record)),
    }
}
