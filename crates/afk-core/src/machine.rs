//! The run state machine (SPEC §4 human overrides, §5, §7 quiet ticks, §8 doorbell bookkeeping):
//! one live run's record, evidence, config and `now` in; a decision, its reason, the next record
//! and the effects out. Pure: no clock, no I/O.
//!
//! # The decision table (first match wins)
//!
//! | # | situation | decision |
//! |---|---|---|
//! | 0 | the record already holds a verdict (`finished`) | the verdict's decision: re-emit the verdict effects still missing, deliver pending doorbells, release the lock last |
//! | 0a | a person added the human label, or closed the issue as not planned / duplicate | `released`: interrupt a running turn, remove the lock, update the comment; nothing else, no doorbell |
//! | 10 | claimed, not dispatched | wait while a dispatch may still be in flight (one tick deadline), then `needs-human` past `max_dispatch_attempts`, else `resume-dispatch` (`hold` under the kill switch) |
//! | 1 | pushed, CI green, deploy healthy or no target | `done` |
//! | 9 | spend ≥ `max_budget_usd` | `needs-human` before a push, `frozen` after |
//! | 4a | pushed, red, the fix-forward window since the first red is over | `frozen` |
//! | 2 | pushed, red, a turn still running | wait (the fix-forward clock runs) |
//! | 4b | pushed, red, agent idle, attempts used up | `frozen` |
//! | 3g | pushed, red, the last two fixes targeted this very failing set on an older commit | `frozen` early (loop guard) |
//! | 3 | pushed, red, agent idle | `fix-forward`: a corrective turn (`hold` under the kill switch) |
//! | 5 | pushed, CI or rollout still pending `ci_timeout` after the push was seen | `needs-human` |
//! | 6 | not pushed, thread error, or the turn ended with nothing pushed | `needs-human` |
//! | 7 | not pushed, the agent asks for approval or input | `needs-human`, the question kept in the record |
//! | 8 | not pushed, running longer than `max_run_duration` since dispatch | `needs-human` ("stalled") |
//! | 11 | thread missing from T3 for [`THREAD_MISSING_GRACE`] | `needs-human` ("thread lost") |
//! | 12 | otherwise | wait |
//!
//! Ordering choices, deliberately:
//! - The budget (row 9) is checked right after row 1, before the red rows, so an agent that is
//!   still running (row 2 would wait) cannot overspend while afk waits for it.
//! - Row 2 waits only inside the fix-forward window: "the clock runs" means a running agent
//!   that is still red when the window closes is frozen (and interrupted), not waited on forever.
//! - A claimed run waits one tick deadline after its latest dispatch attempt started even when
//!   that was the last attempt allowed: a poll tick may still be dispatching it, and escalating
//!   (releasing the lock) under a dispatch in flight could leave an agent running unlocked.
//! - Rows 1–9 and 11 apply to dispatched runs only; a claimed run is resumed first (the resume is
//!   idempotent and records `dispatched`), after which they apply.
//!
//! Turn-state caveat (t3.md §3): after afk starts a turn, T3 keeps reporting the previous turn
//! until the new one runs. A latest turn requested no later than afk's own start (or no turn at
//! all) counts as "still starting", i.e. running, for [`STARTING_GRACE`].
//!
//! Quiet ticks write nothing: the comment is upserted only when its rendering changes, and every
//! `now`-derived record field is set once (first sight), never refreshed.
//!
//! Verdict effects come in an order where a crash anywhere is recoverable (the record says
//! `finished`, so the next tick re-emits what is still missing): comment → interrupt → remove
//! ready → add human → close / reopen → remove worktree → doorbells → remove lock last. The lock
//! is released only once no doorbell is pending: the tick reports each delivery through
//! [`after_notify`] and then applies [`release_after_delivery`].

use std::time::Duration;

use crate::comment::{self, RenderContext};
use crate::config::{Config, Pricing};
use crate::effect::Effect;
use crate::evidence::{
    Check, CiVerdict, CloseReason, DeployVerdict, Evidence, PendingRequest, ThreadEvidence,
    TokenUsage, TurnState,
};
use crate::ids;
use crate::model::{IssueNumber, RepoName, Timestamp, elapsed, format_duration};
use crate::notice;
use crate::plan::Decision;
use crate::prompt;
use crate::record::{
    Channel, CheckSummary, FixAttempt, PhaseState, PushRecord, Question, RunRecord, RunStatus,
    Verdict, VerdictRecord,
};

/// How long a turn afk started counts as running while T3 still reports the previous one.
pub const STARTING_GRACE: Duration = Duration::from_secs(10 * 60);
/// How long a thread may be missing from T3's fleet read before the run goes to a human.
pub const THREAD_MISSING_GRACE: Duration = Duration::from_secs(10 * 60);
/// How long after the verdict afk keeps retrying a doorbell before releasing the lock anyway.
pub const NOTIFY_GIVE_UP: Duration = Duration::from_secs(6 * 60 * 60);

/// Longest quoted agent question or error kept in a reason (the record keeps the full text).
const QUOTE_MAX: usize = 200;

/// One live run, as the watch tick found it.
#[derive(Debug, Clone, Copy)]
pub struct RunInput<'a> {
    pub record: &'a RunRecord,
    /// The run's status comment, edited in place.
    pub comment_id: u64,
    /// The status comment's current body, to tell a quiet tick from a visible change.
    pub comment_body: &'a str,
    pub evidence: &'a Evidence,
    pub config: &'a Config,
    pub now: Timestamp,
}

/// What the machine decided for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub decision: Decision,
    /// Human-readable; goes to the plan, the logs, and (for verdicts) the comment and doorbell.
    pub reason: String,
    /// Where the run is after this decision: `claimed`, `agent`, `ci`, `deploy` or `finished`.
    pub phase: &'static str,
    /// The record to carry forward (written only through an `UpsertStatusComment` effect).
    pub record: RunRecord,
    /// To apply in order; a run's effects stop at the first failure (doorbells excepted).
    pub effects: Vec<Effect>,
}

/// Decides one step of one live run (SPEC §5). Total: every input gets exactly one decision.
pub fn decide(input: &RunInput) -> RunOutcome {
    let agent = agent_state(input.record, &input.evidence.thread, input.now);
    if input.record.status == RunStatus::Finished {
        return match input.record.verdict.clone() {
            Some(verdict) => finish(input, input.record.clone(), verdict, &agent),
            None => conclude(
                input,
                input.record.clone(),
                Verdict::NeedsHuman,
                "the run record says the run finished but holds no verdict; a person must check \
                 the run"
                    .to_owned(),
                &agent,
            ),
        };
    }
    let mut record = input.record.clone();
    if record.status == RunStatus::Dispatched {
        observe(&mut record, input.evidence, input.config, input.now);
    }
    if let Some(reason) = human_override(input.evidence, input.config) {
        return conclude(input, record, Verdict::Released, reason, &agent);
    }
    let step = if record.status == RunStatus::Claimed {
        claimed_step(&record, input.config, input.now)
    } else {
        table(&record, input.evidence, input.config, input.now, &agent)
    };
    apply(input, record, step, &agent)
}

/// Records one doorbell delivery: a delivered channel moves from pending to notified; a failed
/// one counts a failure and, past [`NOTIFY_GIVE_UP`] since the verdict, is given up.
pub fn after_notify(
    record: &RunRecord,
    channel: Channel,
    delivered: bool,
    now: Timestamp,
) -> RunRecord {
    let mut record = record.clone();
    if let Some(v) = record.verdict.as_mut() {
        if delivered {
            v.notify_pending.retain(|c| *c != channel);
            if !v.notified.contains(&channel) {
                v.notified.push(channel);
            }
        } else {
            v.notify_failures = v.notify_failures.saturating_add(1);
            if v.notify_pending.contains(&channel) && elapsed(v.at, now) >= NOTIFY_GIVE_UP {
                v.notify_pending.retain(|c| *c != channel);
                if !v.notify_given_up.contains(&channel) {
                    v.notify_given_up.push(channel);
                }
            }
        }
    }
    record
}

/// The effects after a tick's doorbells were tried: the comment shows what was delivered, and
/// the lock goes (last) only when no doorbell is pending any more.
pub fn release_after_delivery(record: &RunRecord, comment_id: u64, config: &Config) -> Vec<Effect> {
    let mut effects = vec![Effect::UpsertStatusComment {
        repo: record.repo.clone(),
        issue: record.issue,
        run: record.run.clone(),
        comment_id: Some(comment_id),
        body: comment::render(record, &render_context(config, record)),
    }];
    if record
        .verdict
        .as_ref()
        .is_some_and(|v| v.notify_pending.is_empty())
    {
        effects.push(remove_label(record, &config.labels.in_progress));
    }
    effects
}

/// The links the status comment of `record` shows.
pub fn render_context(config: &Config, record: &RunRecord) -> RenderContext {
    RenderContext {
        thread_url: config
            .t3
            .as_ref()
            .map(|t3| ids::thread_url(&t3.web_url, &record.thread_id))
            .unwrap_or_default(),
    }
}

/// Why a locked issue has no usable run record (SPEC §5 "Orphans", §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrphanKind {
    /// No comment by afk's account carries a run record.
    NoRecord,
    /// afk's own newest record comment is corrupt, of an unknown version, or not this issue's.
    Unreadable { comment_id: u64, detail: String },
}

/// What to do about a locked issue without a usable record.
#[derive(Debug, Clone, PartialEq)]
pub struct OrphanOutcome {
    pub decision: Decision,
    pub reason: String,
    pub effects: Vec<Effect>,
}

/// Repairs a lock that has no usable run record behind it, so no repo stays locked forever.
///
/// No record: the lock is released with a comment saying why. An unreadable record is never
/// guessed at: the issue goes to a human (comment, human label, ready and lock labels removed).
pub fn orphan_lock(
    repo: &RepoName,
    issue: IssueNumber,
    why: OrphanKind,
    config: &Config,
) -> OrphanOutcome {
    let labels = &config.labels;
    let label = |add: bool, name: &str| {
        if add {
            Effect::AddLabel {
                repo: repo.clone(),
                issue,
                label: name.to_owned(),
            }
        } else {
            Effect::RemoveLabel {
                repo: repo.clone(),
                issue,
                label: name.to_owned(),
            }
        }
    };
    let threads = format!("afk-{}-{issue}-", repo.slug());
    match why {
        OrphanKind::NoRecord => {
            let reason = format!(
                "the `{}` lock label is on {repo}#{issue} but no afk run record exists for it; \
                 afk released the lock so the repo is not blocked",
                labels.in_progress
            );
            let body = format!(
                "**afk** released an orphan lock: {reason}. Nothing else was changed. If an \
                 agent is still working on this issue, look for T3 threads named `{threads}*`."
            );
            OrphanOutcome {
                decision: Decision::Released,
                effects: vec![
                    Effect::PostComment {
                        repo: repo.clone(),
                        issue,
                        body,
                    },
                    label(false, &labels.in_progress),
                ],
                reason,
            }
        }
        OrphanKind::Unreadable { comment_id, detail } => {
            let reason = format!(
                "afk's run record in comment {comment_id} on {repo}#{issue} cannot be used \
                 ({detail}); afk does not guess at a run's state, so a person must look"
            );
            let body = format!(
                "**afk** needs a human: {reason}.\n\nafk handed the issue back (`{}` added, `{}` \
                 and `{}` removed) and left everything else as it was. No doorbell was rung: \
                 without a readable record afk cannot tell which run this was. An agent may \
                 still be running: look for T3 threads named `{threads}*`.",
                labels.human, labels.ready, labels.in_progress
            );
            OrphanOutcome {
                decision: Decision::NeedsHuman,
                effects: vec![
                    Effect::PostComment {
                        repo: repo.clone(),
                        issue,
                        body,
                    },
                    label(true, &labels.human),
                    label(false, &labels.ready),
                    label(false, &labels.in_progress),
                ],
                reason,
            }
        }
    }
}

/// The agent, as T3 shows it, with the turn-state caveat applied.
#[derive(Debug, Clone, PartialEq)]
enum Agent {
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
}

impl Agent {
    /// A turn is live in T3: a verdict interrupts it, fix-forward waits for it.
    fn turn_running(&self) -> bool {
        matches!(self, Agent::Running | Agent::Asking(_))
    }
}

fn agent_state(record: &RunRecord, thread: &ThreadEvidence, now: Timestamp) -> Agent {
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
        (Some(turn), Some(started)) => turn.requested_at.is_some_and(|r| r > started),
    };
    if !shows_afks_turn && started.is_some_and(|s| elapsed(s, now) < STARTING_GRACE) {
        return Agent::Running;
    }
    if let Some(request) = pending {
        return Agent::Asking(request.clone());
    }
    let error = || {
        session_error
            .clone()
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

/// Folds this tick's evidence into the record. Every `now`-derived field is set on first sight
/// only, so a tick that sees nothing new leaves the record (and the comment) as it was.
fn observe(record: &mut RunRecord, evidence: &Evidence, config: &Config, now: Timestamp) {
    match &evidence.thread {
        ThreadEvidence::Missing => {
            record.thread_missing_since.get_or_insert(now);
        }
        ThreadEvidence::Present { tokens, .. } => {
            record.thread_missing_since = None;
            if let Some(tokens) = tokens {
                record.spend_usd = record.spend_usd.max(price(tokens, &config.pricing));
            }
        }
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
    if record.push.is_some() && red(evidence).is_some() {
        record.first_red_at.get_or_insert(now);
    }
}

/// Estimated spend in USD, rounded to cents (so token counts alone do not rewrite the comment).
fn price(tokens: &TokenUsage, pricing: &Pricing) -> f64 {
    let usd = (tokens.input as f64 * pricing.input
        + tokens.cached_input as f64 * pricing.cached_input
        + tokens.output as f64 * pricing.output)
        / 1_000_000.0;
    (usd * 100.0).round() / 100.0
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
struct Red {
    /// For the corrective prompt.
    checks: Vec<Check>,
    /// Stable names, sorted: what the loop guard compares.
    names: Vec<String>,
}

fn red(evidence: &Evidence) -> Option<Red> {
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

fn human_override(evidence: &Evidence, config: &Config) -> Option<String> {
    let human = &config.labels.human;
    if has_label(evidence, human) {
        return Some(format!(
            "a person added `{human}` to the live run and took it over: afk interrupted its \
             agent, released the lock and changed nothing else"
        ));
    }
    let closed_as = match (evidence.issue.open, evidence.issue.close_reason) {
        (false, Some(CloseReason::NotPlanned)) => "not planned",
        (false, Some(CloseReason::Duplicate)) => "a duplicate",
        _ => return None,
    };
    Some(format!(
        "a person closed the issue as {closed_as}, cancelling the run: afk interrupted its agent, \
         released the lock and changed nothing else"
    ))
}

fn has_label(evidence: &Evidence, label: &str) -> bool {
    evidence
        .issue
        .labels
        .iter()
        .any(|l| l.eq_ignore_ascii_case(label))
}

/// One row's outcome, before effects.
enum Step {
    Wait(String),
    Hold(String),
    ResumeDispatch(String),
    FixForward {
        sha: String,
        red: Red,
        reason: String,
    },
    Verdict {
        verdict: Verdict,
        reason: String,
        question: Option<Question>,
    },
}

fn verdict(verdict: Verdict, reason: String) -> Step {
    Step::Verdict {
        verdict,
        reason,
        question: None,
    }
}

/// Row 10: a claimed run that is not dispatched yet.
fn claimed_step(record: &RunRecord, config: &Config, now: Timestamp) -> Step {
    let limits = &config.limits;
    let attempt = record.dispatch_attempts;
    let since = elapsed(record.dispatch_started_at, now);
    if since < limits.tick_deadline {
        return Step::Wait(format!(
            "dispatch attempt {attempt} started {} ago and may still be in progress; resuming \
             only after the tick deadline ({})",
            format_duration(since),
            format_duration(limits.tick_deadline)
        ));
    }
    if attempt >= limits.max_dispatch_attempts {
        let error = record
            .dispatch_error
            .as_deref()
            .unwrap_or("no error was recorded");
        return verdict(
            Verdict::NeedsHuman,
            format!(
                "dispatch failed {attempt} times (limit {}); last error: {}",
                limits.max_dispatch_attempts,
                clip(error)
            ),
        );
    }
    if config.kill_switch {
        return Step::Hold(format!(
            "dispatch attempt {attempt} did not finish; resuming it is held while the kill \
             switch is on"
        ));
    }
    Step::ResumeDispatch(format!(
        "dispatch attempt {attempt} did not finish; resuming it with the same ids"
    ))
}

/// Rows 1–9, 11 and 12 for a dispatched run.
fn table(
    record: &RunRecord,
    evidence: &Evidence,
    config: &Config,
    now: Timestamp,
    agent: &Agent,
) -> Step {
    let limits = &config.limits;
    if let Some(push) = &record.push {
        let ci_green = matches!(evidence.ci, CiVerdict::Green { .. });
        let deployed = match &evidence.deploy {
            DeployVerdict::NoTarget => Some(String::new()),
            DeployVerdict::Healthy { detail } if detail.is_empty() => {
                Some(", rolled out".to_owned())
            }
            DeployVerdict::Healthy { detail } => Some(format!(", rolled out ({detail})")),
            _ => None,
        };
        if let (true, Some(deployed)) = (ci_green, deployed) {
            return verdict(
                Verdict::Done,
                format!("commit {} landed: CI green{deployed}", short(&push.sha)),
            );
        }
    }
    if record.spend_usd >= limits.max_budget_usd {
        let spent = format!(
            "the estimated spend of ${:.2} reached the budget of ${:.2}",
            record.spend_usd, limits.max_budget_usd
        );
        return match &record.push {
            Some(push) => verdict(
                Verdict::Frozen,
                format!("{spent} after commit {} was pushed", short(&push.sha)),
            ),
            None => verdict(
                Verdict::NeedsHuman,
                format!("{spent} before anything was pushed"),
            ),
        };
    }
    if let Some(push) = &record.push {
        if let Some(red) = red(evidence) {
            if let Some(step) = red_step(record, push, red, config, now, agent) {
                return step;
            }
        } else if let Some(step) = pending_step(push, evidence, config, now) {
            return step;
        }
    } else if let Some(step) = unpushed_step(record, agent, config, now) {
        return step;
    }
    if *agent == Agent::Missing {
        let since = elapsed(record.thread_missing_since.unwrap_or(now), now);
        if since >= THREAD_MISSING_GRACE {
            return verdict(
                Verdict::NeedsHuman,
                format!(
                    "thread lost: T3 has not listed the run's thread `{}` for {}",
                    record.thread_id,
                    format_duration(since)
                ),
            );
        }
        return Step::Wait(format!(
            "the run's thread `{}` is missing from T3; waiting {} before calling it lost",
            record.thread_id,
            format_duration(THREAD_MISSING_GRACE)
        ));
    }
    Step::Wait(waiting_for(record, evidence, agent))
}

/// Rows 2, 3 and 4 (and the loop guard) for pushed, red work; `None` falls through to row 11.
fn red_step(
    record: &RunRecord,
    push: &PushRecord,
    red: Red,
    config: &Config,
    now: Timestamp,
    agent: &Agent,
) -> Option<Step> {
    let limits = &config.limits;
    let what = format!(
        "commit {} is red (failing: {})",
        short(&push.sha),
        failing_list(&red.names)
    );
    let attempts = record.fix_attempts();
    let red_for = elapsed(record.first_red_at.unwrap_or(now), now);
    if red_for >= limits.fix_forward_window {
        return Some(verdict(
            Verdict::Frozen,
            format!(
                "{what}, still red {} after the first red (fix-forward window {}), after {} \
                 fix-forward attempt(s)",
                format_duration(red_for),
                format_duration(limits.fix_forward_window),
                attempts
            ),
        ));
    }
    if agent.turn_running() {
        return Some(Step::Wait(format!(
            "{what}; the agent's turn is still running, so it may fix its own CI (the \
             fix-forward clock runs)"
        )));
    }
    if attempts >= limits.fix_forward_max_attempts {
        return Some(verdict(
            Verdict::Frozen,
            format!("{what} after {attempts} fix-forward attempt(s), the maximum"),
        ));
    }
    if let [.., before, last] = record.fixes.as_slice() {
        let same = |fix: &FixAttempt| sorted(&fix.failing) == red.names;
        if same(before) && same(last) && last.sha != push.sha {
            return Some(verdict(
                Verdict::Frozen,
                format!(
                    "{what}: the same checks failed after each of the last two fix-forward \
                     attempts, so afk stopped early (loop guard)"
                ),
            ));
        }
    }
    match agent {
        Agent::Missing => None,
        Agent::NotStarted => Some(Step::Wait(format!(
            "{what}; the agent's turn has not started in T3 yet"
        ))),
        _ if config.kill_switch => Some(Step::Hold(format!(
            "{what}; the corrective turn is held while the kill switch is on"
        ))),
        _ => Some(Step::FixForward {
            sha: push.sha.clone(),
            reason: format!(
                "{what}; the agent is idle, so afk sends fix-forward attempt {} of {}",
                attempts + 1,
                limits.fix_forward_max_attempts
            ),
            red,
        }),
    }
}

/// Row 5: pushed work whose CI or rollout never finished.
fn pending_step(
    push: &PushRecord,
    evidence: &Evidence,
    config: &Config,
    now: Timestamp,
) -> Option<Step> {
    let timeout = config.limits.ci_timeout;
    let waited = elapsed(push.seen_at, now);
    if waited < timeout {
        return None;
    }
    let reason = if matches!(evidence.ci, CiVerdict::Green { .. }) {
        let detail = match &evidence.deploy {
            DeployVerdict::Pending { detail } if !detail.is_empty() => format!(" ({detail})"),
            _ => String::new(),
        };
        format!(
            "rollout never completed: commit {} is green but not rolled out {} after the push{detail}",
            short(&push.sha),
            format_duration(waited)
        )
    } else {
        format!(
            "CI never reported: no verdict for commit {} {} after the push (timeout {})",
            short(&push.sha),
            format_duration(waited),
            format_duration(timeout)
        )
    };
    Some(verdict(Verdict::NeedsHuman, reason))
}

/// Rows 6, 7 and 8: the agent stopped, asked, or stalled before pushing.
fn unpushed_step(
    record: &RunRecord,
    agent: &Agent,
    config: &Config,
    now: Timestamp,
) -> Option<Step> {
    match agent {
        Agent::Failed(error) => {
            return Some(verdict(
                Verdict::NeedsHuman,
                format!(
                    "the agent's thread reported an error before anything was pushed: {}",
                    clip(error)
                ),
            ));
        }
        Agent::Idle(state) => {
            let ended = if *state == TurnState::Interrupted {
                "was interrupted"
            } else {
                "completed"
            };
            return Some(verdict(
                Verdict::NeedsHuman,
                format!("the agent's turn {ended} without pushing a commit for this run"),
            ));
        }
        Agent::Asking(request) => {
            let (kind, text, asked) = match request {
                PendingRequest::Approval { summary } => ("approval", summary, "approval for"),
                PendingRequest::UserInput { question } => ("user-input", question, "input:"),
            };
            return Some(Step::Verdict {
                verdict: Verdict::NeedsHuman,
                reason: format!(
                    "the agent asked for {asked} {}; unattended runs must not ask, so a person \
                     must answer in T3",
                    clip(text)
                ),
                question: Some(Question {
                    kind: kind.to_owned(),
                    text: text.clone(),
                }),
            });
        }
        Agent::Missing | Agent::Running | Agent::NotStarted => {}
    }
    let max = config.limits.max_run_duration;
    let running = elapsed(record.dispatched_at.unwrap_or(record.claimed_at), now);
    (running >= max).then(|| {
        verdict(
            Verdict::NeedsHuman,
            format!(
                "stalled: the agent has worked for {} without pushing (limit {})",
                format_duration(running),
                format_duration(max)
            ),
        )
    })
}

fn waiting_for(record: &RunRecord, evidence: &Evidence, agent: &Agent) -> String {
    let Some(push) = &record.push else {
        return match agent {
            Agent::NotStarted => "waiting for the agent's turn to start in T3".to_owned(),
            _ => "the agent is working; nothing pushed yet".to_owned(),
        };
    };
    match (&evidence.ci, &evidence.deploy) {
        (CiVerdict::Green { .. }, DeployVerdict::Pending { detail }) if !detail.is_empty() => {
            format!(
                "commit {} is green; waiting for the rollout ({detail})",
                short(&push.sha)
            )
        }
        (CiVerdict::Green { .. }, _) => {
            format!(
                "commit {} is green; waiting for the rollout",
                short(&push.sha)
            )
        }
        _ => format!("waiting for CI on commit {}", short(&push.sha)),
    }
}

fn apply(input: &RunInput, mut record: RunRecord, step: Step, agent: &Agent) -> RunOutcome {
    let (decision, reason, extra) = match step {
        Step::Verdict {
            verdict,
            reason,
            question,
        } => {
            if question.is_some() {
                record.question = question;
            }
            return conclude(input, record, verdict, reason, agent);
        }
        Step::Wait(reason) => (Decision::Wait, reason, None),
        Step::Hold(reason) => (Decision::Hold, reason, None),
        Step::ResumeDispatch(reason) => (Decision::ResumeDispatch, reason, None),
        Step::FixForward { sha, red, reason } => {
            let attempt = record.fix_attempts().saturating_add(1);
            let (command_id, message_id) = ids::fix_turn_ids(&record.run, attempt);
            let prompt = prompt::fix_forward_prompt(
                &record.run,
                &sha,
                &red.checks,
                attempt,
                input.config.limits.fix_forward_max_attempts,
            );
            record.fixes.push(FixAttempt {
                sha,
                failing: red.names,
                at: input.now,
            });
            record.last_turn_at = Some(input.now);
            let start = Effect::StartTurn {
                repo: record.repo.clone(),
                issue: record.issue,
                run: record.run.clone(),
                thread_id: record.thread_id.clone(),
                command_id,
                message_id,
                prompt,
            };
            (Decision::FixForward, reason, Some(start))
        }
    };
    // The comment goes first: a fix attempt is on record before its turn is started.
    let effects = upsert_if_changed(input, &record)
        .into_iter()
        .chain(extra)
        .collect();
    RunOutcome {
        decision,
        reason,
        phase: phase(&record, input.evidence),
        record,
        effects,
    }
}

fn phase(record: &RunRecord, evidence: &Evidence) -> &'static str {
    match record.status {
        RunStatus::Claimed => "claimed",
        RunStatus::Finished => "finished",
        RunStatus::Dispatched if record.push.is_none() => "agent",
        RunStatus::Dispatched if matches!(evidence.ci, CiVerdict::Green { .. }) => "deploy",
        RunStatus::Dispatched => "ci",
    }
}

/// Records a verdict and emits its effects.
fn conclude(
    input: &RunInput,
    mut record: RunRecord,
    verdict: Verdict,
    reason: String,
    agent: &Agent,
) -> RunOutcome {
    record.status = RunStatus::Finished;
    let notify_pending = if verdict == Verdict::Released {
        Vec::new()
    } else {
        channels(input.config)
    };
    let verdict = VerdictRecord {
        verdict,
        reason,
        at: input.now,
        notify_pending,
        notified: Vec::new(),
        notify_failures: 0,
        notify_given_up: Vec::new(),
    };
    finish(input, record, verdict, agent)
}

/// The verdict's effects that are still needed, in crash-safe order (module docs).
fn finish(
    input: &RunInput,
    mut record: RunRecord,
    mut verdict: VerdictRecord,
    agent: &Agent,
) -> RunOutcome {
    let (evidence, config) = (input.evidence, input.config);
    if !verdict.notify_pending.is_empty() && elapsed(verdict.at, input.now) >= NOTIFY_GIVE_UP {
        let gave_up = std::mem::take(&mut verdict.notify_pending);
        for channel in gave_up {
            if !verdict.notify_given_up.contains(&channel) {
                verdict.notify_given_up.push(channel);
            }
        }
    }
    record.status = RunStatus::Finished;
    record.verdict = Some(verdict.clone());
    let kind = verdict.verdict;
    let labels = &config.labels;
    let mut effects: Vec<Effect> = upsert_if_changed(input, &record).into_iter().collect();
    if agent.turn_running() {
        let why = if kind == Verdict::Released {
            "override"
        } else {
            "verdict"
        };
        effects.push(Effect::Interrupt {
            repo: record.repo.clone(),
            issue: record.issue,
            run: record.run.clone(),
            thread_id: record.thread_id.clone(),
            command_id: ids::interrupt_command_id(&record.run, why),
        });
    }
    if kind != Verdict::Released {
        if has_label(evidence, &labels.ready) {
            effects.push(remove_label(&record, &labels.ready));
        }
        let to_human = matches!(kind, Verdict::NeedsHuman | Verdict::Frozen);
        if to_human && !has_label(evidence, &labels.human) {
            effects.push(Effect::AddLabel {
                repo: record.repo.clone(),
                issue: record.issue,
                label: labels.human.clone(),
            });
        }
        if kind == Verdict::Done && evidence.issue.open {
            effects.push(Effect::CloseIssue {
                repo: record.repo.clone(),
                issue: record.issue,
                reason: CloseReason::Completed,
            });
        }
        if kind == Verdict::Frozen && !evidence.issue.open {
            effects.push(Effect::ReopenIssue {
                repo: record.repo.clone(),
                issue: record.issue,
            });
        }
        if kind == Verdict::Done {
            effects.push(Effect::RemoveWorktree {
                repo: record.repo.clone(),
                run: record.run.clone(),
                worktree: record.worktree.clone(),
            });
        }
        let thread_url = render_context(config, &record).thread_url;
        for channel in &verdict.notify_pending {
            effects.push(Effect::Notify {
                repo: record.repo.clone(),
                issue: record.issue,
                run: record.run.clone(),
                channel: *channel,
                notice: notice::notice(
                    &record,
                    kind,
                    &verdict.reason,
                    &evidence.issue.html_url,
                    &thread_url,
                ),
            });
        }
    }
    if verdict.notify_pending.is_empty() && has_label(evidence, &labels.in_progress) {
        effects.push(remove_label(&record, &labels.in_progress));
    }
    let reason = if verdict.notify_pending.is_empty() {
        verdict.reason.clone()
    } else {
        format!(
            "{} (doorbell pending: {})",
            verdict.reason,
            channel_names(&verdict.notify_pending)
        )
    };
    RunOutcome {
        decision: decision_of(kind),
        reason,
        phase: "finished",
        record,
        effects,
    }
}

fn decision_of(verdict: Verdict) -> Decision {
    match verdict {
        Verdict::Done => Decision::Done,
        Verdict::NeedsHuman => Decision::NeedsHuman,
        Verdict::Frozen => Decision::Frozen,
        Verdict::Released => Decision::Released,
    }
}

/// The configured doorbell channels, in a fixed order.
fn channels(config: &Config) -> Vec<Channel> {
    let mut out = Vec::new();
    if config.notify.ntfy.is_some() {
        out.push(Channel::Ntfy);
    }
    if config.notify.slack.is_some() {
        out.push(Channel::Slack);
    }
    out
}

fn channel_names(channels: &[Channel]) -> String {
    channels
        .iter()
        .map(|c| match c {
            Channel::Ntfy => "ntfy",
            Channel::Slack => "slack",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn upsert_if_changed(input: &RunInput, record: &RunRecord) -> Option<Effect> {
    let body = comment::render(record, &render_context(input.config, record));
    (body != input.comment_body).then(|| Effect::UpsertStatusComment {
        repo: record.repo.clone(),
        issue: record.issue,
        run: record.run.clone(),
        comment_id: Some(input.comment_id),
        body,
    })
}

fn remove_label(record: &RunRecord, label: &str) -> Effect {
    Effect::RemoveLabel {
        repo: record.repo.clone(),
        issue: record.issue,
        label: label.to_owned(),
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn sorted(names: &[String]) -> Vec<String> {
    let mut names = names.to_vec();
    names.sort();
    names.dedup();
    names
}

fn failing_list(names: &[String]) -> String {
    if names.is_empty() {
        "no check named".to_owned()
    } else {
        names.join(", ")
    }
}

/// Bounds quoted text from the agent or a remote inside a reason.
fn clip(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= QUOTE_MAX {
        return text.to_owned();
    }
    let cut: String = text.chars().take(QUOTE_MAX).collect();
    format!("{cut}…")
}
