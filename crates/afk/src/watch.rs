//! The watch tick: for every live run (an issue carrying the lock label), gather the
//! evidence, let the core's state machine decide, and apply the effects.

use std::collections::BTreeSet;

use afk_core::applied::after_apply;
use afk_core::comment::{CommentFacts, RecordLookup, latest_record};
use afk_core::config::{CiProvider, Config};
use afk_core::effect::Effect;
use afk_core::evidence::{
    CiVerdict, CloseReason, DeployVerdict, Evidence, IssueFacts, PushedCommit, commit_belongs,
};
use afk_core::machine::{
    Delivery, OrphanKind, RunInput, RunOutcome, after_t3_page, decide, orphan_lock, t3_outage,
    t3_page_recorded,
};
use afk_core::model::{RepoName, RunId, Timestamp};
use afk_core::plan::{Decision, ErrorEntry, Plan, RunEntry};
use afk_core::record::{RunRecord, RunStatus};
use afk_remotes::error::RemoteError;
use afk_remotes::tracker::{Comment, Issue, IssueState};
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

/// What the watch stops doing at the rate-limit reserve.
const RESERVE_STOPS: &str =
    "the watch reads no further live run this tick; runs already read are finished";

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
    // The rate-limit reserve: the watch reads no further run once it is reached, but finishes
    // every run it has read (its verdict, lock release and doorbells are written).
    if let Err(e) = remotes.tracker.read_rate_limit().await {
        plan.errors.push(crate::tick::error(
            None,
            None,
            format!("the rate-limit budget is unknown (the answers' own figures still guard): {e}"),
        ));
    }
    if crate::budget::reserve_reached(config, remotes, now, plan, RESERVE_STOPS) {
        return;
    }
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
            Err(e) => plan
                .errors
                .push(crate::tick::error(Some(&repo), None, e.to_string())),
        }
    }
    live_issues.sort_by(|a, b| (&a.0, a.1.number).cmp(&(&b.0, b.1.number)));
    let unread = std::sync::atomic::AtomicUsize::new(0);
    let unread = &unread;
    let mut reports: Vec<RunReport> = futures::stream::iter(live_issues)
        .map(|(repo, issue)| async move {
            if crate::budget::at_reserve(config, remotes, now) {
                unread.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return RunReport::default();
            }
            watch_run(tick, &repo, &issue).await
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    let unread = unread.load(std::sync::atomic::Ordering::SeqCst);
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
    if unread > 0 {
        let stops = format!(
            "{unread} live run(s) not read this tick ({RESERVE_STOPS}); workspace housekeeping \
             waits for a tick that sees every live run"
        );
        crate::budget::reserve_reached(config, remotes, now, plan, &stops);
    } else {
        crate::housekeeping::run(tick, &live, plan).await;
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

/// One live run: read its record, gather its evidence, let the core decide, apply.
async fn watch_run(tick: &Tick<'_>, repo: &RepoName, issue: &Issue) -> RunReport {
    let mut ctx = ErrCtx {
        repo: repo.clone(),
        issue: issue.number,
        run: None,
    };
    let found = match read_record(tick, &ctx).await {
        Ok(found) => found,
        Err(report) => return report,
    };
    let record = &found.record;
    ctx.run = Some(record.run.clone());
    let evidence = match gather_evidence(tick, repo, issue, record).await {
        Ok(e) => e,
        Err(e) => return evidence_failed(&ctx, record, &e),
    };
    let outcome = decide(&RunInput {
        record,
        comment_id: found.comment_id,
        comment_body: &found.body,
        evidence: &evidence,
        config: tick.config,
        now: tick.now,
    });
    tracing::info!(repo = %repo, issue = issue.number, run = %record.run, decision = outcome.decision.as_str(), reason = %outcome.reason, "decided");
    let mut report = RunReport {
        entry: Some(RunEntry {
            repo: repo.clone(),
            issue: issue.number,
            run: Some(record.run.clone()),
            phase: outcome.phase.to_owned(),
            decision: outcome.decision,
            reason: outcome.reason.clone(),
            spend_usd: Some(outcome.record.spend_usd),
        }),
        live: (outcome.record.status != RunStatus::Finished).then(|| record.run.clone()),
        ..RunReport::default()
    };
    if outcome.decision == Decision::ResumeDispatch {
        let resumed = resume(
            tick,
            &ctx,
            issue,
            &found.comments,
            &outcome.record,
            found.comment_id,
        )
        .await;
        report.effects.extend(resumed.effects);
        report.errors.extend(resumed.error);
        return report;
    }
    apply_run(tick, &ctx, &outcome, found.comment_id, &mut report).await;
    report
}

/// A run's newest record, from afk's own comments on the issue.
struct Found {
    comments: Vec<Comment>,
    comment_id: u64,
    /// The status comment's body as the tracker has it.
    body: String,
    record: RunRecord,
}

/// Reads the run's record from its issue's comments. `Err` is the run's report when there is
/// none to go on: the comments could not be read, or the lock is an orphan (no record, or an
/// unreadable one), which is released.
async fn read_record(tick: &Tick<'_>, ctx: &ErrCtx) -> Result<Found, RunReport> {
    let comments = match tick
        .remotes
        .tracker
        .list_comments(&ctx.repo, ctx.issue)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            return Err(RunReport {
                errors: vec![ctx.error(e.to_string())],
                ..RunReport::default()
            });
        }
    };
    let facts: Vec<CommentFacts> = comments.iter().map(CommentFacts::from).collect();
    let kind = match latest_record(&facts, &tick.bot()) {
        RecordLookup::Found {
            comment_id,
            body,
            record,
        } => {
            return Ok(Found {
                comments,
                comment_id,
                body,
                record: *record,
            });
        }
        RecordLookup::None => OrphanKind::NoRecord,
        RecordLookup::Corrupt { comment_id, error } => OrphanKind::Unreadable {
            comment_id,
            detail: error.to_string(),
        },
    };
    Err(orphan(tick, ctx, kind).await)
}

/// The run's report when its evidence could not be gathered: nothing is decided, the run
/// stays live.
fn evidence_failed(ctx: &ErrCtx, record: &RunRecord, e: &RemoteError) -> RunReport {
    RunReport {
        entry: Some(RunEntry {
            repo: ctx.repo.clone(),
            issue: ctx.issue,
            run: Some(record.run.clone()),
            phase: phase_of(record).to_owned(),
            decision: Decision::Wait,
            reason: format!("could not gather evidence, nothing decided: {e}"),
            spend_usd: Some(record.spend_usd),
        }),
        errors: vec![ctx.error(format!("evidence: {e}"))],
        live: Some(record.run.clone()),
        ..RunReport::default()
    }
}

/// Applies the machine's effects in order, then what the core decides follows from how they
/// went (doorbells recorded, the lock released last); marks the worktree of a run handed to a
/// person as retained. A failed effect ends the run's tick: the next tick resumes from what
/// the tracker then shows. A dry run applies nothing.
async fn apply_run(
    tick: &Tick<'_>,
    ctx: &ErrCtx,
    outcome: &RunOutcome,
    comment_id: u64,
    report: &mut RunReport,
) {
    if tick.dry_run {
        report.effects.extend(outcome.effects.iter().cloned());
        report.tracked = Some((outcome.record.clone(), comment_id));
        return;
    }
    let mut comment = Some(comment_id);
    let step = tick.apply_step(&outcome.effects, &mut comment, ctx).await;
    report.effects.extend(step.tried().cloned());
    report.errors.extend(step.undelivered.iter().cloned());
    if let Some(e) = step.failure {
        report.errors.push(e);
        return;
    }
    let follow = after_apply(
        &outcome.record,
        Some(comment_id),
        &step.applied,
        tick.config,
        tick.now,
    );
    report.effects.extend(follow.effects.iter().cloned());
    if let Err(e) = tick.apply_all(&follow.effects, &mut comment, ctx).await {
        report.errors.push(e);
    }
    report.tracked = Some((follow.record, comment_id));
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
        let delivery =
            match tick.applier().apply(effect, &mut None).await {
                Ok(()) => Delivery::Delivered,
                Err(e) => {
                    plan.errors.push(crate::tick::error(None, None, format!(
                        "the t3-unreachable page via {channel:?} was not delivered (retried next \
                         tick): {e}"
                    )));
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
            spend_usd: None,
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
                Some(k) => rollout_verdict(k, &target, &commit.sha).await?,
                None => DeployVerdict::Pending {
                    detail: "no Kubernetes client configured".into(),
                },
            }
        }
        Some(_) => DeployVerdict::NotApplicable,
    };
    Ok(evidence)
}

/// The rollout verdict for `sha`: the Deployment's facts from the cluster, judged by the core.
async fn rollout_verdict(
    kube: &afk_remotes::kube::Kube,
    target: &afk_core::config::DeployTarget,
    sha: &str,
) -> Result<DeployVerdict, RemoteError> {
    let facts = kube.deployment_facts(target).await?;
    Ok(afk_core::rollout::judge(&facts, sha, &target.image_match))
}
