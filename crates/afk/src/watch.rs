//! The watch tick: for every live run (an issue carrying the lock label), gather the
//! evidence, let the core's state machine decide, and apply the effects.

use std::collections::BTreeSet;

use afk_core::comment::{CommentFacts, RecordLookup, latest_record};
use afk_core::config::{CiProvider, Config};
use afk_core::effect::Effect;
use afk_core::evidence::{
    CiVerdict, CloseReason, DeployVerdict, Evidence, IssueFacts, PushedCommit, commit_belongs,
};
use afk_core::machine::{
    Delivery, OrphanKind, RunInput, after_notify, after_t3_page, decide, orphan_lock,
    release_after_delivery, t3_outage, t3_page_recorded,
};
use afk_core::model::{RepoName, RunId, Timestamp};
use afk_core::plan::{Decision, ErrorEntry, Plan, RunEntry};
use afk_core::record::{RunRecord, RunStatus, Verdict};
use afk_remotes::error::{ErrorKind, RemoteError};
use afk_remotes::tracker::{Issue, IssueState};
use futures::StreamExt;

use crate::dispatch::resume;
use crate::fleet::{t3_unreachable_error, thread_evidence, unreachable_fleet};
use crate::remotes::Remotes;
use crate::tick::{ErrCtx, Tick};

/// What one run's step produced for the plan.
#[derive(Default)]
pub struct RunReport {
    pub entry: Option<RunEntry>,
    pub effects: Vec<Effect>,
    pub errors: Vec<ErrorEntry>,
    /// The run is still live after this tick (its worktree must be kept).
    pub live: Option<RunId>,
    /// The run's record after this tick and its status comment, when the tick got through
    /// the run (what the T3 outage page is decided over).
    pub tracked: Option<(RunRecord, u64)>,
}

/// Runs the watch tick into `plan`.
pub async fn tick(
    config: &Config,
    remotes: &Remotes,
    now: Timestamp,
    plan: &mut Plan,
    concurrency: usize,
) {
    let (fleet, t3_unreachable) = match crate::fleet::read_fleet(remotes).await {
        Ok(f) => (f, None),
        Err(e) => {
            plan.errors.push(t3_unreachable_error(config, &e));
            (unreachable_fleet(), Some(e.to_string()))
        }
    };
    let tick = Tick {
        config,
        remotes,
        fleet: &fleet,
        t3_unreachable,
        off_shell: Default::default(),
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
                public: None,
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
    let mut tracked = Vec::new();
    for r in reports.drain(..) {
        plan.runs.extend(r.entry);
        plan.effects.extend(r.effects);
        plan.errors.extend(r.errors);
        live.extend(r.live);
        tracked.extend(r.tracked);
    }
    if let Some(error) = &tick.t3_unreachable {
        page_t3_outage(tick, error, &tracked, plan).await;
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
                public: None,
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
        text_sha256: Some(afk_core::vetting::text_sha256(&issue.title, &issue.body)),
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
        let resumed = resume(tick, &ctx, issue, &comments, &outcome.record, comment_id).await;
        report.effects.extend(resumed.effects);
        report.errors.extend(resumed.error);
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
    report.tracked = Some((current, comment_id));
    report
}

/// Pages a T3 outage once for the fleet (the core decides over every run's record), then puts
/// each delivery on every affected run's record.
async fn page_t3_outage(
    tick: &Tick<'_>,
    error: &str,
    tracked: &[(RunRecord, u64)],
    plan: &mut Plan,
) {
    let records: Vec<RunRecord> = tracked.iter().map(|(r, _)| r.clone()).collect();
    let Some(page) = t3_outage(&records, error, tick.config, tick.now) else {
        return;
    };
    tracing::warn!(reason = %page.reason, "t3 outage page");
    plan.effects.extend(page.effects.iter().cloned());
    if tick.dry_run {
        return;
    }
    let mut after = records;
    for effect in &page.effects {
        let Effect::Notify { channel, .. } = effect else {
            continue;
        };
        let delivery = match tick.applier().apply(effect, &mut None).await {
            Ok(()) => Delivery::Delivered,
            Err(e) => {
                plan.errors.push(ErrorEntry {
                    public: None,
                    repo: None,
                    issue: None,
                    run: None,
                    error: format!(
                        "the t3-unreachable page via {channel:?} was not delivered (retried next \
                         tick): {e}"
                    ),
                });
                Delivery::Failed
            }
        };
        for record in &mut after {
            *record = after_t3_page(record, *channel, delivery);
        }
    }
    for ((before, comment_id), after) in tracked.iter().zip(&after) {
        let Some(upsert) = t3_page_recorded(before, after, *comment_id, tick.config) else {
            continue;
        };
        plan.effects.push(upsert.clone());
        let ctx = ErrCtx {
            repo: before.repo.clone(),
            issue: before.issue,
            run: Some(before.run.clone()),
        };
        if let Err(e) = tick
            .apply_all(std::slice::from_ref(&upsert), &mut Some(*comment_id), &ctx)
            .await
        {
            plan.errors.push(e);
        }
    }
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
