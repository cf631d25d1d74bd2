//! Claiming and dispatching a run, shared by both ticks: the issue text the agent is given,
//! the claim of a poll's winner, the watcher's resumed dispatch, and applying either in the
//! crash-safe order the core planned.

use std::collections::HashMap;

use afk_core::applied::after_apply;
use afk_core::claim::{ClaimInput, PriorRun, plan_claim, resume_dispatch};
use afk_core::comment::{CommentFacts, RecordLookup, latest_record};
use afk_core::effect::Effect;
use afk_core::facts::Permission;
use afk_core::model::{Login, RepoName};
use afk_core::plan::{DispatchEntry, ErrorEntry};
use afk_core::policy::Winner;
use afk_core::prompt::IssueText;
use afk_core::record::RunRecord;
use afk_remotes::error::RemoteError;
use afk_remotes::tracker::{Comment, Issue};

use crate::remotes::Remotes;
use crate::tick::{ErrCtx, Tick, error};

/// A login's permission on the repo, read once per tick and login (case-insensitive) through
/// `cache`.
pub async fn permission_of(
    remotes: &Remotes,
    repo: &RepoName,
    login: &Login,
    cache: &mut HashMap<String, Permission>,
) -> Result<Permission, RemoteError> {
    let key = login.as_str().to_ascii_lowercase();
    if let Some(p) = cache.get(&key) {
        return Ok(p.clone());
    }
    let p = remotes.tracker.permission(repo, login.as_str()).await?;
    cache.insert(key, p.clone());
    Ok(p)
}

/// What claiming one winner (or resuming a claimed run) produced.
pub struct ClaimReport {
    /// The plan's dispatch entry (a poll's claim only).
    pub entry: Option<DispatchEntry>,
    pub effects: Vec<Effect>,
    pub error: Option<ErrorEntry>,
}

impl ClaimReport {
    pub fn failed(w: &Winner, msg: String) -> ClaimReport {
        ClaimReport {
            entry: None,
            effects: Vec::new(),
            error: Some(error(Some(&w.repo), Some(w.issue), msg)),
        }
    }
}

/// The issue as the agent will see it: title, body, and only trusted people's comments
/// (never afk's own, never anyone without write access).
pub async fn issue_text(
    tick: &Tick<'_>,
    repo: &RepoName,
    issue: &Issue,
    comments: &[Comment],
    known: &HashMap<String, Permission>,
) -> Result<IssueText, RemoteError> {
    let bot = tick.bot();
    let mut cache = known.clone();
    let mut trusted = Vec::new();
    for c in comments {
        if c.author == bot {
            continue;
        }
        if permission_of(tick.remotes, repo, &c.author, &mut cache)
            .await?
            .may_arm()
        {
            trusted.push((c.author.clone(), c.body.clone()));
        }
    }
    Ok(IssueText {
        number: issue.number,
        title: issue.title.clone(),
        body: issue.body.clone(),
        trusted_comments: trusted,
    })
}

/// Reads what the claim needs (comments, commenters' trust, default branch), plans the claim
/// with the core and applies it, unless dry-running. `issue` is the winner as gathered;
/// `permissions` the permissions already looked up this tick.
pub async fn claim_winner(
    tick: &Tick<'_>,
    issue: Option<&Issue>,
    permissions: &HashMap<String, Permission>,
    w: &Winner,
) -> ClaimReport {
    let Some(issue) = issue else {
        return ClaimReport::failed(
            w,
            "the winning issue is missing from the gathered list".into(),
        );
    };
    let comments = match tick.remotes.tracker.list_comments(&w.repo, w.issue).await {
        Ok(c) => c,
        Err(e) => return ClaimReport::failed(w, e.to_string()),
    };
    let facts: Vec<CommentFacts> = comments.iter().map(CommentFacts::from).collect();
    let latest = match latest_record(&facts, &tick.bot()) {
        RecordLookup::Found {
            comment_id, record, ..
        } => Some(PriorRun {
            comment_id,
            record: *record,
        }),
        RecordLookup::None => None,
        RecordLookup::Corrupt { comment_id, error } => {
            return ClaimReport::failed(
                w,
                format!(
                    "not dispatched: afk's earlier run record (comment {comment_id}) is unreadable ({error}); a person must look"
                ),
            );
        }
    };
    let text = match issue_text(tick, &w.repo, issue, &comments, permissions).await {
        Ok(t) => t,
        Err(e) => return ClaimReport::failed(w, e.to_string()),
    };
    let default_branch = match tick.default_branch(&w.repo).await {
        Ok(b) => b,
        Err(e) => return ClaimReport::failed(w, e.to_string()),
    };
    let claim = match plan_claim(&ClaimInput {
        repo: &w.repo,
        issue: &text,
        issue_url: &issue.html_url,
        latest: latest.as_ref(),
        ready_at: w.ready_at,
        config: tick.config,
        default_branch: &default_branch,
        now: tick.now,
    }) {
        Ok(c) => c,
        Err(why) => return ClaimReport::failed(w, why),
    };
    tracing::info!(repo = %w.repo, issue = w.issue, run = %claim.run, reason = %w.reason, dry_run = tick.dry_run, "dispatching");
    let ctx = ErrCtx {
        repo: w.repo.clone(),
        issue: w.issue,
        run: Some(claim.run.clone()),
    };
    let existing = latest
        .as_ref()
        .filter(|p| p.record.run == claim.run)
        .map(|p| p.comment_id);
    let error = apply_claim(tick, &ctx, &claim.record, &claim.effects, existing)
        .await
        .err();
    ClaimReport {
        entry: Some(DispatchEntry {
            repo: w.repo.clone(),
            issue: w.issue,
            run: claim.run.clone(),
            reason: w.reason.clone(),
        }),
        effects: claim.effects,
        error,
    }
}

/// Applies a claim (comment, lock, dispatch) in order, then what the core decides follows:
/// once the comment is in place, the dispatch outcome is recorded in it either way (a lock that
/// could not be taken too, so the attempt counts); a failure before that leaves nothing a later
/// tick cannot resume. Dry-run applies nothing.
pub async fn apply_claim(
    tick: &Tick<'_>,
    ctx: &ErrCtx,
    record: &RunRecord,
    effects: &[Effect],
    existing_comment: Option<u64>,
) -> Result<(), ErrorEntry> {
    if tick.dry_run {
        return Ok(());
    }
    let mut comment = existing_comment;
    let step = tick.apply_step(effects, &mut comment, ctx).await;
    let follow = after_apply(record, comment, &step.applied, tick.config, tick.now);
    let written = tick.apply_all(&follow.effects, &mut comment, ctx).await;
    match step.failure {
        // The comment is public: only the sanitised reason went there; the full error is in
        // the plan and the logs.
        Some(e) => Err(e),
        None => written,
    }
}

/// The watcher's row 10: a claimed run whose dispatch died is resumed with the same ids.
pub async fn resume(
    tick: &Tick<'_>,
    ctx: &ErrCtx,
    issue: &Issue,
    comments: &[Comment],
    record: &RunRecord,
    comment_id: u64,
) -> ClaimReport {
    let mut report = ClaimReport {
        entry: None,
        effects: Vec::new(),
        error: None,
    };
    let text = match issue_text(tick, &ctx.repo, issue, comments, &Default::default()).await {
        Ok(t) => t,
        Err(e) => {
            report.error = Some(ctx.error(format!("resume: {e}")));
            return report;
        }
    };
    let default_branch = match tick.default_branch(&ctx.repo).await {
        Ok(b) => b,
        Err(e) => {
            report.error = Some(ctx.error(format!("resume: {e}")));
            return report;
        }
    };
    let claim = match resume_dispatch(
        record,
        comment_id,
        &text,
        tick.config,
        &default_branch,
        tick.now,
    ) {
        Ok(c) => c,
        Err(why) => {
            report.error = Some(ctx.error(format!("resume: {why}")));
            return report;
        }
    };
    report.effects.extend(claim.effects.iter().cloned());
    report.error = apply_claim(tick, ctx, &claim.record, &claim.effects, Some(comment_id))
        .await
        .err();
    report
}
