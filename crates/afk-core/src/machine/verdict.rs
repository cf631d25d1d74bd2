//! Verdicts and their effects: recording a verdict, the
//! crash-safe effect order, doorbell bookkeeping, and releasing the lock last.

use crate::comment::{self, RenderContext};
use crate::config::Config;
use crate::effect::{Effect, WorktreeRemoval};
use crate::evidence::CloseReason;
use crate::ids;
use crate::model::{Timestamp, elapsed};
use crate::notice;
use crate::plan::Decision;
use crate::record::{Channel, RunRecord, RunStatus, Verdict, VerdictRecord};

use super::observe::Agent;
use super::{NOTIFY_GIVE_UP, RunInput, RunOutcome, has_label};

/// How one doorbell delivery went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The channel accepted the message.
    Delivered,
    /// A transient failure (429, 5xx, timeout, connection): retried on later ticks, given up
    /// after [`NOTIFY_GIVE_UP`].
    Failed,
    /// A permanent refusal (a 4xx other than 429, a channel that is not configured): retrying
    /// cannot help, so it is given up at once rather than holding the repo's lock for hours.
    Refused,
}

/// Records one doorbell delivery: a delivered channel moves from pending to notified; a failed
/// one counts a failure and, past [`NOTIFY_GIVE_UP`] since the verdict, is given up.
pub fn after_notify(
    record: &RunRecord,
    channel: Channel,
    delivery: Delivery,
    now: Timestamp,
) -> RunRecord {
    let mut record = record.clone();
    if let Some(v) = record.verdict.as_mut() {
        let give_up = |v: &mut crate::record::VerdictRecord| {
            v.notify_pending.retain(|c| *c != channel);
            if !v.notify_given_up.contains(&channel) {
                v.notify_given_up.push(channel);
            }
        };
        match delivery {
            Delivery::Delivered => {
                v.notify_pending.retain(|c| *c != channel);
                if !v.notified.contains(&channel) {
                    v.notified.push(channel);
                }
            }
            Delivery::Failed => {
                v.notify_failures = v.notify_failures.saturating_add(1);
                if v.notify_pending.contains(&channel) && elapsed(v.at, now) >= NOTIFY_GIVE_UP {
                    give_up(v);
                }
            }
            Delivery::Refused => {
                v.notify_failures = v.notify_failures.saturating_add(1);
                give_up(v);
            }
        }
    }
    record
}

/// The effects after a tick's doorbells were tried: the comment shows what was delivered, and
/// the lock goes (last) only when no doorbell is pending any more and T3 could be read this
/// tick (with T3 unreachable the agent may still need interrupting).
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
        && record.t3_unreachable_since.is_none()
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

/// Records a verdict and emits its effects.
pub(super) fn conclude(
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
pub(super) fn finish(
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
    let mut effects: Vec<Effect> = Vec::new();
    if matches!(kind, Verdict::NeedsHuman | Verdict::Frozen) && input.record.verdict.is_none() {
        // Kept for a person: marked before the verdict is recorded, so a tick that dies in
        // between decides (and marks) again; once recorded, it is marked.
        effects.push(Effect::RetainWorktree {
            repo: record.repo.clone(),
            run: record.run.clone(),
            worktree: record.worktree.clone(),
            since: verdict.at,
        });
    }
    effects.extend(upsert_if_changed(input, &record));
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
                reason: WorktreeRemoval::Done,
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
    // With T3 unreachable nobody can tell whether the agent still runs (a crash may have come
    // between the verdict's comment and its interrupt): the lock waits for T3.
    let t3_down = matches!(agent, Agent::Unreachable(_));
    if verdict.notify_pending.is_empty() && !t3_down && has_label(evidence, &labels.in_progress) {
        effects.push(remove_label(&record, &labels.in_progress));
    }
    let mut reason = if verdict.notify_pending.is_empty() {
        verdict.reason.clone()
    } else {
        format!(
            "{} (doorbell pending: {})",
            verdict.reason,
            channel_names(&verdict.notify_pending)
        )
    };
    if t3_down && has_label(evidence, &labels.in_progress) {
        reason.push_str("; the lock is kept until T3 answers, so that the agent can be interrupted if it still runs");
    }
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
pub(super) fn channels(config: &Config) -> Vec<Channel> {
    let mut out = Vec::new();
    if config.notify.ntfy.is_some() {
        out.push(Channel::Ntfy);
    }
    if config.notify.slack.is_some() {
        out.push(Channel::Slack);
    }
    out
}

pub(super) fn channel_names(channels: &[Channel]) -> String {
    channels
        .iter()
        .map(|c| match c {
            Channel::Ntfy => "ntfy",
            Channel::Slack => "slack",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn upsert_if_changed(input: &RunInput, record: &RunRecord) -> Option<Effect> {
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
