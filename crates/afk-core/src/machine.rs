//! The run state machine: one live run's record, evidence, config and `now` in; a decision, its reason, the next record
//! and the effects out. Pure: no clock, no I/O.
//!
//! # The decision table (first match wins)
//!
//! | # | situation | decision |
//! |---|---|---|
//! | 0 | the record already holds a verdict (`finished`) | the verdict's decision: re-emit the verdict effects still missing, deliver pending doorbells, release the lock last |
//! | 0b | T3 cannot be read (the tick's fleet read failed) | wait, "waiting on T3" (a person's override is held until T3 answers, so that the agent can be interrupted first) |
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
//! | 6 | not pushed, thread error, or the turn ended with nothing pushed (seen on two looks at least [`PUSH_VISIBILITY_GRACE`] apart) | `needs-human` |
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
//! Turn-state caveat: after afk starts a turn, T3 keeps reporting the previous turn
//! until the new one runs. A latest turn requested no later than afk's own start (or no turn at
//! all) counts as "still starting", i.e. running, for [`STARTING_GRACE`].
//!
//! T3 outage (row 0b): a run whose T3 cannot be read is neither dispatched, corrected nor
//! concluded (a verdict releases the lock, and an agent that may still be running must be
//! interruptible first); push and CI are still observed. A finished run keeps its verdict's
//! labels and doorbells but never emits an interrupt it cannot deliver, and keeps the lock until
//! T3 answers. The first tick that found T3 unreachable is recorded (`t3_unreachable_since`) and
//! cleared when it answers; [`t3_outage`] decides over all the tick's runs whether the outage is
//! paged (once per outage, per channel), and [`after_t3_page`] records each delivery.
//!
//! Quiet ticks write nothing: the comment is upserted only when its rendering changes, and every
//! `now`-derived record field is set once (first sight), never refreshed.
//!
//! Verdict effects come in an order where a crash anywhere is recoverable (the record says
//! `finished`, so the next tick re-emits what is still missing): comment → interrupt → remove
//! ready → add human → close / reopen → remove worktree → doorbells → remove lock last. The lock
//! is released only once no doorbell is pending: the tick reports each delivery to
//! [`crate::applied::after_apply`], which records it ([`after_notify`]) and then releases
//! ([`release_after_delivery`]).

use std::fmt::Write as _;
use std::time::Duration;

use crate::config::Config;
use crate::effect::Effect;
use crate::evidence::{
    CiVerdict, CloseReason, DeployVerdict, Evidence, PendingRequest, ThreadEvidence, TurnState,
};
use crate::ids;
use crate::model::{Timestamp, elapsed, format_duration};
use crate::plan::Decision;
use crate::prompt;
use crate::record::{FixAttempt, PhaseState, PushRecord, Question, RunRecord, RunStatus, Verdict};

mod observe;
mod orphan;
mod outage;
mod verdict;

use observe::{Agent, Red, agent_state, mark_t3, observe, red};
pub use orphan::{OrphanKind, OrphanOutcome, orphan_lock};
pub use outage::{T3Page, after_t3_page, t3_outage, t3_page_recorded};
pub use verdict::{Delivery, after_notify, release_after_delivery, render_context};
use verdict::{conclude, finish, upsert_if_changed};

/// How long a turn afk started counts as running while T3 still reports the previous one.
pub const STARTING_GRACE: Duration = Duration::from_secs(10 * 60);
/// How long a thread may be missing from T3's fleet read before the run goes to a human.
pub const THREAD_MISSING_GRACE: Duration = Duration::from_secs(10 * 60);
/// A turn that ended with no push in sight is looked at again at least this long after, before
/// "nothing was pushed" is concluded: the forge may list a push a moment after the turn ends,
/// and a run concluded too early would leave a pushed commit unwatched. Shorter than the watch
/// cadence, so the second look is the next watch tick.
pub const PUSH_VISIBILITY_GRACE: Duration = Duration::from_secs(60);
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
#[must_use = "the decision's effects must be applied (or printed by --dry-run)"]
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

/// Decides one step of one live run. Total: every input gets exactly one decision.
pub fn decide(input: &RunInput) -> RunOutcome {
    let agent = agent_state(input.record, &input.evidence.thread, input.now);
    let mut record = input.record.clone();
    mark_t3(&mut record, &input.evidence.thread, input.now);
    if record.status == RunStatus::Finished {
        return match record.verdict.clone() {
            Some(verdict) => finish(input, record, verdict, &agent),
            None => conclude(
                input,
                record,
                Verdict::NeedsHuman,
                "the run record says the run finished but holds no verdict; a person must check \
                 the run"
                    .to_owned(),
                &agent,
            ),
        };
    }
    if record.status == RunStatus::Dispatched {
        observe(&mut record, input.evidence, input.config, input.now, &agent);
    }
    if let Agent::Unreachable(error) = &agent {
        let overridden = human_override(input.evidence, input.config).is_some();
        let reason = t3_wait_reason(&record, error, overridden, input.now);
        return apply(input, record, Step::Wait(reason), &agent);
    }
    if let Some(reason) = human_override(input.evidence, input.config) {
        return conclude(input, record, Verdict::Released, reason, &agent);
    }
    let step = if record.status == RunStatus::Claimed {
        claimed_step(&record, input.evidence, input.config, input.now)
    } else {
        table(&record, input.evidence, input.config, input.now, &agent)
    };
    apply(input, record, step, &agent)
}

/// Row 0b: T3 cannot be read. Nothing that needs T3 is done (no dispatch, no corrective turn),
/// and no verdict is reached: a verdict releases the lock, and with T3 silent the agent may
/// still be running and cannot be interrupted. Push and CI are still observed and recorded.
fn t3_wait_reason(record: &RunRecord, error: &str, overridden: bool, now: Timestamp) -> String {
    let since = record.t3_unreachable_since.unwrap_or(now);
    let mut reason = format!(
        "waiting on T3: unreachable since {} ({})",
        crate::comment::minute(since),
        clip(error)
    );
    if overridden {
        reason.push_str(
            "; a person took the run over, and afk releases it once T3 answers, so that its \
             agent can be interrupted first",
        );
    } else if let Some(push) = &record.push {
        let ci = match record.ci.as_ref().map(|c| &c.state) {
            Some(PhaseState::Green) => "green",
            Some(PhaseState::Red) => "red",
            Some(PhaseState::Skipped) => "skipped",
            Some(PhaseState::Pending) | None => "pending",
        };
        let _ = write!(
            reason,
            "; commit {} pushed, CI {ci}; the verdict waits for T3",
            short(&push.sha)
        );
    } else {
        reason.push_str("; no dispatch, corrective turn or verdict until it answers");
    }
    reason
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

/// Row 10: a claimed run that is not dispatched yet. A dispatch is resumed only with the exact
/// text the run vetted at claim: if the issue's title or body has another fingerprint now (or
/// the record holds none), the run goes to a person instead, and the edited text is never sent.
fn claimed_step(record: &RunRecord, evidence: &Evidence, config: &Config, now: Timestamp) -> Step {
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
    let current = evidence.issue.text_sha256.as_deref().unwrap_or_default();
    if !crate::vetting::matches(record.text_sha256.as_deref(), current) {
        let why = if record.text_sha256.is_none() {
            "the run record holds no fingerprint of the text that was vetted at claim"
        } else if current.is_empty() {
            "the issue's current text could not be read"
        } else {
            "the issue's title or body was edited after it was vetted at claim"
        };
        return verdict(
            Verdict::NeedsHuman,
            format!(
                "dispatch not resumed: {why}, so it is not sent to the agent; a trusted \
                 collaborator must read the issue as it is now and re-apply `{}` to start a new \
                 run",
                config.labels.ready
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
            let since = elapsed(record.idle_unpushed_since.unwrap_or(now), now);
            if since < PUSH_VISIBILITY_GRACE {
                return Some(Step::Wait(format!(
                    "the agent's turn {ended} and no commit for this run is on the default \
                     branch yet; looking once more after {} in case the forge lists the push late",
                    format_duration(PUSH_VISIBILITY_GRACE)
                )));
            }
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
        Agent::Missing | Agent::Running | Agent::NotStarted | Agent::Unreachable(_) => {}
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
            record.turn_before = match &input.evidence.thread {
                ThreadEvidence::Present {
                    latest_turn: Some(turn),
                    ..
                } => Some(turn.turn_id.clone()),
                _ => None,
            };
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
