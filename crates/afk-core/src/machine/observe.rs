//! Reading one tick's evidence: the agent's state in T3 (with the turn-state caveat), what is
//! red, and folding what was seen into the run record without touching `now`-derived fields
//! twice.

use crate::config::Config;
use crate::evidence::{
    Check, CiVerdict, DeployVerdict, Evidence, PendingRequest, ThreadEvidence, TurnState,
};
use crate::model::{Timestamp, elapsed};
use crate::record::{CheckSummary, PhaseState, PushRecord, RunRecord};

use super::STARTING_GRACE;

/// The agent, as T3 shows it, with the turn-state caveat applied.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Agent {
    Missing,
    /// A turn is running, or the turn afk started last is still starting.
    Running,
    /// Waiting on a person (approval or input).
    Asking(PendingRequest),
    /// The turn or the session ended in error.
    Failed(String),
    /// The turn is over (completed or interrupted).
    Idle(TurnState),
    /// No turn ever started, long after afk started one.
    NotStarted,
    /// T3 could not be read this tick: the agent may be running or not, nobody can tell (and
    /// nothing can be sent to it). Carries the read's error.
    Unreachable(String),
}

impl Agent {
    /// A turn is live in T3: a verdict interrupts it, fix-forward waits for it.
    pub(super) fn turn_running(&self) -> bool {
        matches!(self, Agent::Running | Agent::Asking(_))
    }
}

pub(super) fn agent_state(record: &RunRecord, thread: &ThreadEvidence, now: Timestamp) -> Agent {
    if let ThreadEvidence::Unreachable { error } = thread {
        return Agent::Unreachable(error.clone());
    }
    let ThreadEvidence::Present {
        latest_turn,
        session_status,
        session_error,
        pending,
        ..
    } = thread
    else {
        return Agent::Missing;
    };
    let started = record.last_turn_at.or(record.dispatched_at);
    let shows_afks_turn = match (latest_turn, started) {
        (_, None) => true,
        (None, Some(_)) => false,
        // Only afk's first turn ever ran in this thread.
        (Some(_), Some(_)) if record.fixes.is_empty() => true,
        (Some(turn), Some(_)) if record.turn_before.is_some() => {
            record.turn_before.as_deref() != Some(turn.turn_id.as_str())
        }
        // Records written before `turn_before` existed: compare times.
        (Some(turn), Some(started)) => turn.requested_at.is_some_and(|r| r > started),
    };
    if !shows_afks_turn && started.is_some_and(|s| elapsed(s, now) < STARTING_GRACE) {
        return Agent::Running;
    }
    if let Some(request) = pending {
        return Agent::Asking(request.clone());
    }
    let error = || {
        // Shown in the public comment: reduced to what a reader needs (the logs keep it all).
        session_error
            .as_deref()
            .map(crate::public::public_text)
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| "the agent's turn ended in error".to_owned())
    };
    if session_status.as_deref() == Some("error") {
        return Agent::Failed(error());
    }
    match latest_turn.as_ref().map(|t| t.state) {
        Some(TurnState::Error) => Agent::Failed(error()),
        Some(TurnState::Running) => Agent::Running,
        Some(state @ (TurnState::Completed | TurnState::Interrupted)) => Agent::Idle(state),
        None => Agent::NotStarted,
    }
}

/// Records whether T3 could be read this tick: the first tick that could not sets
/// `t3_unreachable_since` (once); the first tick that can again clears it and the outage's page
/// marks. Applies to every run afk still tracks, finished ones included (their lock waits too).
pub(super) fn mark_t3(record: &mut RunRecord, thread: &ThreadEvidence, now: Timestamp) {
    if matches!(thread, ThreadEvidence::Unreachable { .. }) {
        record.t3_unreachable_since.get_or_insert(now);
    } else {
        record.t3_unreachable_since = None;
        record.t3_outage_paged.clear();
    }
}

/// Folds this tick's evidence into the record. Every `now`-derived field is set on first sight
/// only, so a tick that sees nothing new leaves the record (and the comment) as it was.
pub(super) fn observe(
    record: &mut RunRecord,
    evidence: &Evidence,
    config: &Config,
    now: Timestamp,
    agent: &Agent,
) {
    match &evidence.thread {
        ThreadEvidence::Missing => {
            record.thread_missing_since.get_or_insert(now);
        }
        ThreadEvidence::Present { tokens, .. } => {
            record.thread_missing_since = None;
            let seen = crate::spend::estimate_turns(tokens, &config.pricing);
            if crate::spend::merge_turns(&mut record.spend_turns, seen) {
                let (usd, _) = crate::spend::total(&record.spend_turns);
                record.spend_usd = record.spend_usd.max(usd);
            }
        }
        // Nothing is known about the thread: its marks stay as the last look left them.
        ThreadEvidence::Unreachable { .. } => {}
    }
    if let Some(pushed) = &evidence.push {
        match record.push.as_mut() {
            Some(known) if known.sha == pushed.sha => known.url.clone_from(&pushed.url),
            _ => {
                record.push = Some(PushRecord {
                    sha: pushed.sha.clone(),
                    url: pushed.url.clone(),
                    seen_at: now,
                });
            }
        }
        record.ci = ci_summary(&evidence.ci);
        record.deploy = deploy_summary(&evidence.deploy);
    }
    if matches!(agent, Agent::Unreachable(_)) {
        // The second look at an idle agent waits for T3 to answer again.
    } else if record.push.is_none() && matches!(agent, Agent::Idle(_)) {
        record.idle_unpushed_since.get_or_insert(now);
    } else {
        record.idle_unpushed_since = None;
    }
    if record.push.is_some() && red(evidence).is_some() {
        record.first_red_at.get_or_insert(now);
    }
}

fn ci_summary(ci: &CiVerdict) -> Option<CheckSummary> {
    let summary = |state, checks: &Vec<Check>| CheckSummary {
        state,
        checks: checks.clone(),
        detail: String::new(),
    };
    match ci {
        CiVerdict::NotApplicable => None,
        CiVerdict::Pending { checks } => Some(summary(PhaseState::Pending, checks)),
        CiVerdict::Green { checks } => Some(summary(PhaseState::Green, checks)),
        CiVerdict::Red { failing } => Some(summary(PhaseState::Red, failing)),
    }
}

fn deploy_summary(deploy: &DeployVerdict) -> Option<CheckSummary> {
    let summary = |state, detail: &str| CheckSummary {
        state,
        checks: Vec::new(),
        detail: detail.to_owned(),
    };
    match deploy {
        DeployVerdict::NotApplicable => None,
        DeployVerdict::NoTarget => Some(summary(PhaseState::Skipped, "")),
        DeployVerdict::Pending { detail } => Some(summary(PhaseState::Pending, detail)),
        DeployVerdict::Healthy { detail } => Some(summary(PhaseState::Green, detail)),
        DeployVerdict::Failed { detail } => Some(summary(PhaseState::Red, detail)),
    }
}

/// What is red about the pushed work: failing CI checks and/or a failed rollout.
pub(super) struct Red {
    /// For the corrective prompt.
    pub(super) checks: Vec<Check>,
    /// Stable names, sorted: what the loop guard compares.
    pub(super) names: Vec<String>,
}

pub(super) fn red(evidence: &Evidence) -> Option<Red> {
    let mut checks = Vec::new();
    let mut names = Vec::new();
    let mut is_red = false;
    if let CiVerdict::Red { failing } = &evidence.ci {
        is_red = true;
        checks.extend(failing.iter().cloned());
        names.extend(failing.iter().map(|c| c.name.clone()));
    }
    if let DeployVerdict::Failed { detail } = &evidence.deploy {
        is_red = true;
        checks.push(Check {
            name: format!("deploy: {detail}"),
            url: None,
        });
        names.push("deploy".to_owned());
    }
    names.sort();
    names.dedup();
    is_red.then_some(Red { checks, names })
}
