//! Claiming a winner and dispatching its run, as effects in a
//! crash-safe order, plus the record updates for a dispatch's outcome.
//!
//! A claim is: write the status comment (state `claimed`, every id precomputed), then take the
//! lock label, then dispatch. The comment comes first on purpose: a crash between the two leaves
//! a claimed record without a lock, which the next poll finds as the issue's newest record and
//! reuses (same run id, same comment, one more dispatch attempt) instead of starting a second
//! run; a lock therefore never exists without a record, and the watcher may treat a lock without
//! a record as an orphan. Every id is derived from the run id ([`crate::ids`]) so a repeated
//! dispatch resends the same T3 ids and T3 starts no second agent.

use crate::comment::{self, RenderContext};
use crate::config::Config;
use crate::effect::{DispatchSpec, Effect};
use crate::ids;
use crate::model::{RepoName, RunId, Timestamp};
use crate::prompt::{self, IssueText, WorkContext};
use crate::record::{RECORD_VERSION, RunRecord, RunStatus};
use crate::vetting;

/// Longest T3 thread title, in characters (the title is for people scanning a list).
pub const MAX_THREAD_TITLE_CHARS: usize = 80;
/// Longest dispatch error kept in the run record, in characters.
pub const MAX_DISPATCH_ERROR_CHARS: usize = 500;

/// afk's newest run record on the issue (from [`comment::latest_record`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PriorRun {
    pub comment_id: u64,
    pub record: RunRecord,
}

/// Everything needed to claim one winner.
#[derive(Debug, Clone, Copy)]
pub struct ClaimInput<'a> {
    pub repo: &'a RepoName,
    pub issue: &'a IssueText,
    /// The issue's web link, for the caller's plan entry and logs about this claim.
    pub issue_url: &'a str,
    pub latest: Option<&'a PriorRun>,
    /// When the trusted labeler applied the ready label (the request this claim answers).
    pub ready_at: Timestamp,
    pub config: &'a Config,
    pub default_branch: &'a str,
    pub now: Timestamp,
}

/// A planned claim (or resumed dispatch): the run, the record the comment will hold, and the
/// effects to apply in order.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Claim {
    pub run: RunId,
    pub record: RunRecord,
    pub effects: Vec<Effect>,
}

/// Plans the claim of a winner: status comment → lock label → dispatch.
///
/// The run is numbered one past the issue's newest run. If that newest run is still `claimed`,
/// was never dispatched and answered this very labeling (a claim that failed or crashed before
/// taking the lock), it is reused with one more dispatch attempt, editing its comment instead
/// of creating a second one. Once it has used `max_dispatch_attempts`, it is not claimed again
/// (`Err` says why and what to do): re-applying the ready label asks for a new run. Nor is it
/// when the issue's text no longer has the fingerprint that run recorded: the text was edited
/// after it was vetted, so only a fresh labelling may arm it.
///
/// The record carries the fingerprint of `input.issue`'s title and body: the caller passes the
/// text that just passed the eligibility checks.
pub fn plan_claim(input: &ClaimInput<'_>) -> Result<Claim, String> {
    let text_sha256 = vetting::text_sha256(&input.issue.title, &input.issue.body);
    let reusable = input.latest.filter(|prior| {
        let r = &prior.record;
        r.status == RunStatus::Claimed
            && r.dispatched_at.is_none()
            && r.run.repo() == input.repo
            && r.run.issue() == input.issue.number
            && r.claimed_at >= input.ready_at
    });
    if let Some(prior) = reusable {
        let r = &prior.record;
        let max = input.config.limits.max_dispatch_attempts;
        if r.dispatch_attempts >= max {
            return Err(format!(
                "not claimed again: run {} was claimed {} times (limit {max}) and never \
                 dispatched; last error: {}. Fix the cause, then re-apply `{}` to start a new run",
                r.run,
                r.dispatch_attempts,
                r.dispatch_error.as_deref().unwrap_or("none recorded"),
                input.config.labels.ready
            ));
        }
        if !vetting::matches(r.text_sha256.as_deref(), &text_sha256) {
            return Err(format!(
                "not claimed again: the title or body of {}#{} changed after run {} vetted it \
                 (or that run recorded no fingerprint of the text); nothing is sent to the agent. \
                 A trusted collaborator must read the issue and re-apply `{}` to start a new run",
                input.repo, input.issue.number, r.run, input.config.labels.ready
            ));
        }
    }

    let (record, comment_id) = match reusable {
        Some(prior) => {
            let mut record = claimed_record(
                prior.record.run.clone(),
                input.config,
                prior.record.claimed_at,
                input.now,
            );
            record.dispatch_attempts = prior.record.dispatch_attempts.saturating_add(1);
            record.dispatch_error = prior.record.dispatch_error.clone();
            record.text_sha256 = Some(text_sha256);
            (record, Some(prior.comment_id))
        }
        None => {
            let n = input
                .latest
                .map_or(1, |prior| prior.record.run.attempt().saturating_add(1));
            let run = RunId::new(input.repo.clone(), input.issue.number, n);
            let mut record = claimed_record(run, input.config, input.now, input.now);
            record.text_sha256 = Some(text_sha256);
            (record, None)
        }
    };

    let status = status_comment(&record, comment_id, input.config);
    let lock = Effect::AddLabel {
        repo: input.repo.clone(),
        issue: input.issue.number,
        label: input.config.labels.in_progress.clone(),
    };
    let dispatch = dispatch_effect(&record, input.issue, input.config, input.default_branch);
    Ok(Claim {
        run: record.run.clone(),
        record,
        effects: vec![status, lock, dispatch],
    })
}

/// Resumes the dispatch of a claimed run (the watcher's row 10): one more dispatch attempt,
/// recorded in the comment first, then the dispatch with that attempt's command ids.
///
/// `Err` when `issue`'s title and body are not the text the record vetted (or the record holds
/// no fingerprint): nothing may be dispatched from them. The state machine sends such a run to
/// a person before this is reached; this check keeps the prompt bound to the vetted text.
pub fn resume_dispatch(
    record: &RunRecord,
    comment_id: u64,
    issue: &IssueText,
    config: &Config,
    default_branch: &str,
    now: Timestamp,
) -> Result<Claim, String> {
    let current = vetting::text_sha256(&issue.title, &issue.body);
    if !vetting::matches(record.text_sha256.as_deref(), &current) {
        return Err(format!(
            "not dispatched: the title or body of {}#{} is not the text run {} vetted; a person \
             must look",
            record.repo, record.issue, record.run
        ));
    }
    let mut next = record.clone();
    next.v = RECORD_VERSION;
    next.status = RunStatus::Claimed;
    next.dispatch_attempts = record.dispatch_attempts.saturating_add(1);
    next.dispatch_started_at = now;
    let status = status_comment(&next, Some(comment_id), config);
    let dispatch = dispatch_effect(&next, issue, config, default_branch);
    Ok(Claim {
        run: next.run.clone(),
        record: next,
        effects: vec![status, dispatch],
    })
}

/// The record once the first turn was started in T3.
pub fn dispatched(record: &RunRecord, now: Timestamp) -> RunRecord {
    RunRecord {
        status: RunStatus::Dispatched,
        dispatched_at: Some(now),
        last_turn_at: Some(now),
        dispatch_error: None,
        ..record.clone()
    }
}

/// The record after a dispatch attempt failed: still `claimed`, with the error (bounded) for
/// the comment and for the needs-human reason once attempts run out.
pub fn dispatch_failed(record: &RunRecord, error: &str, now: Timestamp) -> RunRecord {
    // The record lives in a public comment: no paths, URL queries or secret-looking words.
    let error = crate::public::public_text(error);
    let error = error.trim();
    let mut kept: String = error.chars().take(MAX_DISPATCH_ERROR_CHARS).collect();
    if kept.len() < error.len() {
        kept.push('…');
    }
    RunRecord {
        status: RunStatus::Claimed,
        dispatch_error: Some(format!(
            "{kept} (at {})",
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )),
        ..record.clone()
    }
}

/// A fresh `claimed` record for `run` with every id precomputed.
fn claimed_record(run: RunId, config: &Config, claimed_at: Timestamp, now: Timestamp) -> RunRecord {
    let root = config.workspace.root.to_string_lossy();
    RunRecord {
        v: RECORD_VERSION,
        repo: run.repo().clone(),
        issue: run.issue(),
        status: RunStatus::Claimed,
        claimed_at,
        branch: run.branch(),
        worktree: ids::worktree_path(&root, &run),
        project_id: ids::project_id(run.repo()),
        thread_id: ids::thread_id(&run),
        text_sha256: None,
        dispatch_attempts: 1,
        dispatch_error: None,
        dispatch_started_at: now,
        dispatched_at: None,
        last_turn_at: None,
        turn_before: None,
        thread_missing_since: None,
        idle_unpushed_since: None,
        t3_unreachable_since: None,
        t3_outage_paged: Vec::new(),
        push: None,
        ci: None,
        deploy: None,
        first_red_at: None,
        fixes: Vec::new(),
        spend_usd: 0.0,
        spend_turns: Vec::new(),
        question: None,
        verdict: None,
        run,
    }
}

fn status_comment(record: &RunRecord, comment_id: Option<u64>, config: &Config) -> Effect {
    let thread_url = config
        .t3
        .as_ref()
        .map(|t3| ids::thread_url(&t3.web_url, &record.thread_id))
        .unwrap_or_default();
    Effect::UpsertStatusComment {
        repo: record.repo.clone(),
        issue: record.issue,
        run: record.run.clone(),
        comment_id,
        body: comment::render(record, &RenderContext { thread_url }),
    }
}

/// The dispatch of `record`'s current attempt, with the ids and worktree the record holds.
fn dispatch_effect(
    record: &RunRecord,
    issue: &IssueText,
    config: &Config,
    default_branch: &str,
) -> Effect {
    let run = &record.run;
    let attempt = record.dispatch_attempts.max(1);
    let root = config.workspace.root.to_string_lossy();
    let work = WorkContext {
        worktree: record.worktree.clone(),
        branch: record.branch.clone(),
        default_branch: default_branch.to_owned(),
    };
    let spec = DispatchSpec {
        branch: record.branch.clone(),
        worktree: record.worktree.clone(),
        default_branch: Some(default_branch.to_owned()),
        project_id: record.project_id.clone(),
        project_title: record.repo.to_string(),
        project_root: ids::checkout_path(&root, &record.repo),
        thread_id: record.thread_id.clone(),
        thread_title: thread_title(issue),
        message_id: ids::first_message_id(run),
        project_command_id: ids::project_command_id(run, attempt),
        thread_command_id: ids::thread_command_id(run, attempt),
        turn_command_id: ids::turn_command_id(run, attempt),
        prompt: prompt::issue_prompt(run, issue, &work),
    };
    Effect::Dispatch {
        repo: record.repo.clone(),
        issue: record.issue,
        run: run.clone(),
        spec: Box::new(spec),
    }
}

/// `#42 <title>`, whitespace collapsed, bounded to [`MAX_THREAD_TITLE_CHARS`].
pub fn thread_title(issue: &IssueText) -> String {
    let title = issue.title.split_whitespace().collect::<Vec<_>>().join(" ");
    let full = format!("#{} {}", issue.number, title);
    if full.chars().count() <= MAX_THREAD_TITLE_CHARS {
        return full.trim_end().to_owned();
    }
    let mut cut: String = full.chars().take(MAX_THREAD_TITLE_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}
