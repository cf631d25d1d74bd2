//! The watch tick: for every live run (an issue carrying the lock label), gather the
//! evidence, let the core's state machine decide, and apply the effects.

use std::collections::BTreeSet;

use afk_core::claim::{dispatch_failed, dispatched, resume_dispatch};
use afk_core::comment::{CommentFacts, RecordLookup, latest_record};
use afk_core::config::{CiProvider, Config};
use afk_core::effect::Effect;
use afk_core::evidence::{
    CiVerdict, CloseReason, DeployVerdict, Evidence, IssueFacts, PendingRequest, PushedCommit,
    ThreadEvidence, commit_belongs,
};
use afk_core::machine::{
    Delivery, OrphanKind, RunInput, after_notify, decide, orphan_lock, release_after_delivery,
};
use afk_core::model::{Login, RepoName, RunId, Timestamp};
use afk_core::plan::{Decision, ErrorEntry, Plan, RunEntry};
use afk_core::record::{RunRecord, RunStatus, Verdict};
use afk_remotes::error::{ErrorKind, RemoteError};
use afk_remotes::t3::Fleet;
use afk_remotes::tracker::{Issue, IssueState};
use futures::StreamExt;

use crate::apply::Applier;
use crate::remotes::Remotes;

/// Reads T3's environment and the whole fleet (one read per tick).
pub async fn read_fleet(remotes: &Remotes) -> Result<Fleet, RemoteError> {
    let env = remotes.t3.environment().await?;
    remotes.t3.fleet(&env).await
}

/// What one run's step produced for the plan.
#[derive(Default)]
pub struct RunReport {
    pub entry: Option<RunEntry>,
    pub effects: Vec<Effect>,
    pub errors: Vec<ErrorEntry>,
    /// The run is still live after this tick (its worktree must be kept).
    pub live: Option<RunId>,
}

/// Shared, read-only context of one tick.
pub struct Tick<'a> {
    pub config: &'a Config,
    pub remotes: &'a Remotes,
    pub fleet: &'a Fleet,
    pub now: Timestamp,
    pub dry_run: bool,
}

impl Tick<'_> {
    pub fn applier(&self) -> Applier<'_> {
        Applier {
            config: self.config,
            remotes: self.remotes,
            fleet: self.fleet,
            now: self.now,
        }
    }

    pub fn bot(&self) -> Login {
        Login::new(
            self.config
                .tracker
                .as_ref()
                .map(|t| t.bot_login.clone())
                .unwrap_or_default(),
        )
    }

    /// The repo's default branch: configured, or the forge's.
    pub async fn default_branch(&self, repo: &RepoName) -> Result<String, RemoteError> {
        match self.config.repo(repo).default_branch {
            Some(b) => Ok(b),
            None => self.remotes.tracker.default_branch(repo).await,
        }
    }

    /// Applies a run's effects in order, stopping at the first failure (the next tick resumes
    /// from what the tracker then shows). Dry-run applies nothing.
    pub async fn apply_all(
        &self,
        effects: &[Effect],
        comment_id: &mut Option<u64>,
        ctx: &ErrCtx,
    ) -> Result<(), ErrorEntry> {
        if self.dry_run {
            return Ok(());
        }
        let applier = self.applier();
        for effect in effects {
            if let Err(e) = applier.apply(effect, comment_id).await {
                tracing::warn!(repo = %ctx.repo, issue = ctx.issue, run = ctx.run_field(), effect = effect.kind(), error = %e, "effect failed");
                return Err(ctx.error(format!("{} failed: {e}", effect.kind())));
            }
            tracing::info!(repo = %ctx.repo, issue = ctx.issue, run = ctx.run_field(), effect = effect.kind(), "applied");
        }
        Ok(())
    }
}

/// Names the repo, issue and run an error belongs to.
pub struct ErrCtx {
    pub repo: RepoName,
    pub issue: u64,
    pub run: Option<RunId>,
}

impl ErrCtx {
    pub fn error(&self, error: String) -> ErrorEntry {
        ErrorEntry {
            repo: Some(self.repo.clone()),
            issue: Some(self.issue),
            run: self.run.clone(),
            error,
        }
    }
    /// The run for a log field: absent (not `""`) when unknown.
    fn run_field(&self) -> Option<tracing::field::DisplayValue<&RunId>> {
        self.run.as_ref().map(tracing::field::display)
    }
}

/// Runs the watch tick into `plan`.
pub async fn tick(
    config: &Config,
    remotes: &Remotes,
    now: Timestamp,
    plan: &mut Plan,
    concurrency: usize,
) {
    let fleet = match read_fleet(remotes).await {
        Ok(f) => f,
        Err(e) => {
            // Without T3's view no run can be judged: report and decide nothing.
            plan.errors.push(ErrorEntry {
                repo: None,
                issue: None,
                run: None,
                error: format!("no run was decided: {e}"),
            });
            return;
        }
    };
    let tick = Tick {
        config,
        remotes,
        fleet: &fleet,
        now,
        dry_run: plan.dry_run,
    };
    let tick = &tick;
    let repos: Vec<(RepoName, Result<Vec<Issue>, RemoteError>)> =
        futures::stream::iter(config.allowlist.iter().cloned())
            .map(|repo| async move {
                let r = remotes
                    .tracker
                    .list_issues(&repo, &config.labels.in_progress, IssueState::All)
                    .await;
                (repo, r)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    let mut live_issues = Vec::new();
    for (repo, result) in repos {
        match result {
            Ok(issues) => live_issues.extend(issues.into_iter().map(|i| (repo.clone(), i))),
            Err(e) => plan.errors.push(ErrorEntry {
                repo: Some(repo),
                issue: None,
                run: None,
                error: e.to_string(),
            }),
        }
    }
    live_issues.sort_by(|a, b| (&a.0, a.1.number).cmp(&(&b.0, b.1.number)));
    let mut reports: Vec<RunReport> = futures::stream::iter(live_issues)
        .map(|(repo, issue)| async move { watch_run(tick, &repo, &issue).await })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    let mut live = BTreeSet::new();
    for r in reports.drain(..) {
        plan.runs.extend(r.entry);
        plan.effects.extend(r.effects);
        plan.errors.extend(r.errors);
        live.extend(r.live);
    }
    if !plan.dry_run {
        let ws = &config.workspace;
        match remotes
            .workspaces
            .housekeeping(
                &live,
                now,
                ws.retain_days,
                ws.evict_above_percent,
                &ws.cache_dirs,
            )
            .await
        {
            Ok(report) => {
                tracing::info!(
                    expired = report.expired.len(),
                    evicted = report.evicted.len(),
                    usage_percent = report.usage_percent,
                    "housekeeping"
                )
            }
            Err(e) => plan.errors.push(ErrorEntry {
                repo: None,
                issue: None,
                run: None,
                error: format!("workspace housekeeping: {e}"),
            }),
        }
    }
}

fn issue_facts(issue: &Issue) -> IssueFacts {
    IssueFacts {
        open: issue.open,
        close_reason: if issue.open {
            None
        } else {
            Some(issue.close_reason.unwrap_or(CloseReason::Unspecified))
        },
        labels: issue.labels.clone(),
        title: issue.title.clone(),
        html_url: issue.html_url.clone(),
    }
}

async fn watch_run(tick: &Tick<'_>, repo: &RepoName, issue: &Issue) -> RunReport {
    let mut report = RunReport::default();
    let mut ctx = ErrCtx {
        repo: repo.clone(),
        issue: issue.number,
        run: None,
    };
    let comments = match tick.remotes.tracker.list_comments(repo, issue.number).await {
        Ok(c) => c,
        Err(e) => {
            report.errors.push(ctx.error(e.to_string()));
            return report;
        }
    };
    let facts: Vec<CommentFacts> = comments
        .iter()
        .map(|c| CommentFacts {
            id: c.id,
            author: c.author.clone(),
            body: c.body.clone(),
        })
        .collect();
    let (comment_id, body, record) = match latest_record(&facts, &tick.bot()) {
        RecordLookup::Found {
            comment_id,
            body,
            record,
        } => (comment_id, body, *record),
        RecordLookup::None => return orphan(tick, &ctx, OrphanKind::NoRecord).await,
        RecordLookup::Corrupt { comment_id, error } => {
            return orphan(
                tick,
                &ctx,
                OrphanKind::Unreadable {
                    comment_id,
                    detail: error.to_string(),
                },
            )
            .await;
        }
    };
    ctx.run = Some(record.run.clone());
    let evidence = match gather_evidence(tick, repo, issue, &record).await {
        Ok(e) => e,
        Err(e) => {
            report.errors.push(ctx.error(format!("evidence: {e}")));
            report.live = Some(record.run.clone());
            report.entry = Some(RunEntry {
                repo: repo.clone(),
                issue: issue.number,
                run: Some(record.run.clone()),
                phase: phase_of(&record).to_owned(),
                decision: Decision::Wait,
                reason: format!("could not gather evidence, nothing decided: {e}"),
            });
            return report;
        }
    };
    let outcome = decide(&RunInput {
        record: &record,
        comment_id,
        comment_body: &body,
        evidence: &evidence,
        config: tick.config,
        now: tick.now,
    });
    tracing::info!(repo = %repo, issue = issue.number, run = %record.run, decision = outcome.decision.as_str(), reason = %outcome.reason, "decided");
    report.entry = Some(RunEntry {
        repo: repo.clone(),
        issue: issue.number,
        run: Some(record.run.clone()),
        phase: outcome.phase.to_owned(),
        decision: outcome.decision,
        reason: outcome.reason.clone(),
    });
    if outcome.record.status != RunStatus::Finished {
        report.live = Some(record.run.clone());
    }
    if outcome.decision == Decision::ResumeDispatch {
        resume(
            tick,
            &ctx,
            issue,
            &comments,
            &record,
            comment_id,
            &mut report,
        )
        .await;
        return report;
    }
    let mut comment = Some(comment_id);
    let mut current = outcome.record.clone();
    let mut notified = false;
    for effect in &outcome.effects {
        report.effects.push(effect.clone());
        if tick.dry_run {
            continue;
        }
        if let Effect::Notify { channel, .. } = effect {
            let delivery = match tick.applier().apply(effect, &mut comment).await {
                Ok(()) => Delivery::Delivered,
                Err(e) => {
                    let permanent = match &e.kind {
                        ErrorKind::Status { status, .. } => {
                            (400..500).contains(status) && *status != 429
                        }
                        ErrorKind::Local(_) | ErrorKind::Decode(_) => true,
                        _ => false,
                    };
                    let next = if permanent {
                        "given up: the channel refused it; fix its configuration"
                    } else {
                        "retried next tick"
                    };
                    report.errors.push(
                        ctx.error(format!("doorbell {channel:?} not delivered ({next}): {e}")),
                    );
                    if permanent {
                        Delivery::Refused
                    } else {
                        Delivery::Failed
                    }
                }
            };
            current = after_notify(&current, *channel, delivery, tick.now);
            notified = true;
            continue;
        }
        if let Err(e) = tick
            .apply_all(std::slice::from_ref(effect), &mut comment, &ctx)
            .await
        {
            report.errors.push(e);
            return report;
        }
    }
    if notified {
        let release = release_after_delivery(&current, comment_id, tick.config);
        report.effects.extend(release.iter().cloned());
        if let Err(e) = tick.apply_all(&release, &mut comment, &ctx).await {
            report.errors.push(e);
        }
    }
    if !tick.dry_run
        && let Some(v) = &outcome.record.verdict
        && matches!(v.verdict, Verdict::NeedsHuman | Verdict::Frozen)
        && let Err(e) = tick
            .remotes
            .workspaces
            .mark_retained(&record.run, v.at)
            .await
    {
        report
            .errors
            .push(ctx.error(format!("could not mark the worktree as retained: {e}")));
    }
    report
}

async fn orphan(tick: &Tick<'_>, ctx: &ErrCtx, kind: OrphanKind) -> RunReport {
    let outcome = orphan_lock(&ctx.repo, ctx.issue, kind, tick.config);
    tracing::warn!(repo = %ctx.repo, issue = ctx.issue, reason = %outcome.reason, "orphan lock");
    let mut report = RunReport {
        entry: Some(RunEntry {
            repo: ctx.repo.clone(),
            issue: ctx.issue,
            run: None,
            phase: "orphan".to_owned(),
            decision: outcome.decision,
            reason: outcome.reason.clone(),
        }),
        effects: outcome.effects.clone(),
        ..RunReport::default()
    };
    let mut comment = None;
    if let Err(e) = tick.apply_all(&outcome.effects, &mut comment, ctx).await {
        report.errors.push(e);
    }
    report
}

/// Row 10: a claimed run whose dispatch died is resumed with the same ids.
async fn resume(
    tick: &Tick<'_>,
    ctx: &ErrCtx,
    issue: &Issue,
    comments: &[afk_remotes::tracker::Comment],
    record: &RunRecord,
    comment_id: u64,
    report: &mut RunReport,
) {
    let text = match crate::poll::issue_text(tick, &ctx.repo, issue, comments, &Default::default())
        .await
    {
        Ok(t) => t,
        Err(e) => {
            report.errors.push(ctx.error(format!("resume: {e}")));
            return;
        }
    };
    let default_branch = match tick.default_branch(&ctx.repo).await {
        Ok(b) => b,
        Err(e) => {
            report.errors.push(ctx.error(format!("resume: {e}")));
            return;
        }
    };
    let claim = resume_dispatch(
        record,
        comment_id,
        &text,
        tick.config,
        &default_branch,
        tick.now,
    );
    report.effects.extend(claim.effects.iter().cloned());
    if let Err(e) =
        crate::poll::apply_claim(tick, ctx, &claim.record, &claim.effects, Some(comment_id)).await
    {
        report.errors.push(e);
    }
}

/// Applies a claim's effects; then records `dispatched`, or the dispatch error, in the comment.
pub async fn finish_dispatch(
    tick: &Tick<'_>,
    ctx: &ErrCtx,
    record: &RunRecord,
    comment: &mut Option<u64>,
    result: Result<(), ErrorEntry>,
) -> Result<(), ErrorEntry> {
    let (next, failure) = match result {
        Ok(()) => (dispatched(record, tick.now), None),
        Err(e) => (dispatch_failed(record, &e.error, tick.now), Some(e)),
    };
    let body = afk_core::comment::render(
        &next,
        &afk_core::machine::render_context(tick.config, &next),
    );
    let update = Effect::UpsertStatusComment {
        repo: next.repo.clone(),
        issue: next.issue,
        run: next.run.clone(),
        comment_id: *comment,
        body,
    };
    let written = tick
        .apply_all(std::slice::from_ref(&update), comment, ctx)
        .await;
    match (failure, written) {
        (Some(e), _) => Err(e),
        (None, Err(e)) => Err(e),
        (None, Ok(())) => Ok(()),
    }
}

fn phase_of(record: &RunRecord) -> &'static str {
    match record.status {
        RunStatus::Claimed => "claimed",
        RunStatus::Dispatched if record.push.is_some() => "ci",
        RunStatus::Dispatched => "agent",
        RunStatus::Finished => "finished",
    }
}

/// Everything the state machine needs about one run. Claimed and finished runs need only the
/// issue and T3's fleet view; dispatched runs read commits, CI and the rollout as needed.
async fn gather_evidence(
    tick: &Tick<'_>,
    repo: &RepoName,
    issue: &Issue,
    record: &RunRecord,
) -> Result<Evidence, RemoteError> {
    let thread = thread_evidence(tick, record).await?;
    let mut evidence = Evidence {
        issue: issue_facts(issue),
        thread,
        push: None,
        ci: CiVerdict::NotApplicable,
        deploy: DeployVerdict::NotApplicable,
    };
    if record.status != RunStatus::Dispatched {
        return Ok(evidence);
    }
    let branch = tick.default_branch(repo).await?;
    let since = record.dispatched_at.unwrap_or(record.claimed_at) - chrono::TimeDelta::minutes(5);
    let commits = tick
        .remotes
        .tracker
        .commits_since(repo, &branch, since)
        .await?;
    let pushed = commits
        .iter()
        .filter(|c| commit_belongs(&c.message, &record.run))
        .max_by_key(|c| c.committed_at);
    let Some(commit) = pushed else {
        return Ok(evidence);
    };
    evidence.push = Some(PushedCommit {
        sha: commit.sha.clone(),
        at: commit.committed_at,
        url: commit.html_url.clone(),
        message_first_line: commit.message.lines().next().unwrap_or("").to_owned(),
    });
    let mut reports = Vec::new();
    for provider in tick.config.ci_providers(repo) {
        let signals = match provider {
            CiProvider::Woodpecker => match &tick.remotes.woodpecker {
                Some(w) => w.ci_signals(repo, &commit.sha).await?,
                None => Vec::new(),
            },
            p => {
                tick.remotes
                    .tracker
                    .ci_signals(repo, &commit.sha, p)
                    .await?
            }
        };
        reports.push((provider, signals));
    }
    evidence.ci = afk_core::ci::combine_ci(&reports);
    evidence.deploy = match tick.config.repo(repo).deploy {
        None => DeployVerdict::NoTarget,
        Some(target) if matches!(evidence.ci, CiVerdict::Green { .. }) => {
            match &tick.remotes.kube {
                Some(k) => k.rollout(&target, &commit.sha).await?,
                None => DeployVerdict::Pending {
                    detail: "no Kubernetes client configured".into(),
                },
            }
        }
        Some(_) => DeployVerdict::NotApplicable,
    };
    Ok(evidence)
}

/// The run's thread as T3 shows it; detail is read only when the thread is active or asks
/// something (token usage and questions live there).
async fn thread_evidence(
    tick: &Tick<'_>,
    record: &RunRecord,
) -> Result<ThreadEvidence, RemoteError> {
    let Some(t) = tick.fleet.thread(&record.thread_id) else {
        return Ok(ThreadEvidence::Missing);
    };
    if t.deleted || t.archived {
        return Ok(ThreadEvidence::Missing);
    }
    let asks = t.pending_approval == Some(true) || t.pending_user_input == Some(true);
    let detail = if let Some(d) = tick.fleet.detail_from_snapshot(&t.id) {
        Some(d)
    } else if record.status == RunStatus::Dispatched {
        // Token usage (the spend) and the agent's questions are only in thread detail.
        match tick.remotes.t3.thread_detail(&t.id).await? {
            Some(d) => Some(d),
            None => return Ok(ThreadEvidence::Missing),
        }
    } else {
        None
    };
    let pending = match (&detail, asks) {
        (Some(d), _) if d.pending.is_some() => d.pending.clone(),
        (_, true) => Some(if t.pending_user_input == Some(true) {
            PendingRequest::UserInput {
                question: "(the agent asked a question; see the thread)".into(),
            }
        } else {
            PendingRequest::Approval {
                summary: "(the agent asked for an approval; see the thread)".into(),
            }
        }),
        _ => None,
    };
    Ok(ThreadEvidence::Present {
        latest_turn: detail
            .as_ref()
            .and_then(|d| d.latest_turn.clone())
            .or_else(|| t.latest_turn.clone()),
        session_status: t.session_status.clone(),
        session_error: t.session_error.clone(),
        pending,
        tokens: detail.and_then(|d| d.tokens),
    })
}
