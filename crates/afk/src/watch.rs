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
    Delivery, OrphanKind, RunInput, after_notify, after_t3_page, decide, orphan_lock,
    release_after_delivery, t3_outage, t3_page_recorded,
};
use afk_core::model::{Login, RepoName, RunId, Timestamp};
use afk_core::plan::{Decision, ErrorEntry, Plan, RunEntry};
use afk_core::record::{RunRecord, RunStatus, Verdict};
use afk_remotes::error::{ErrorKind, RemoteError};
use afk_remotes::t3::{Fleet, FleetSource, ThreadInfo};
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
    /// The run's record after this tick and its status comment, when the tick got through
    /// the run (what the T3 outage page is decided over).
    pub tracked: Option<(RunRecord, u64)>,
}

/// Shared, read-only context of one tick.
pub struct Tick<'a> {
    pub config: &'a Config,
    pub remotes: &'a Remotes,
    pub fleet: &'a Fleet,
    /// T3's fleet read failed this tick (the error, for the runs' reasons): `fleet` is empty
    /// and every run's thread evidence says T3 is unreachable.
    pub t3_unreachable: Option<String>,
    /// `/snapshot`, read at most once a tick and only when a run's thread is not in `/shell`
    /// (archived threads leave it).
    pub off_shell: tokio::sync::OnceCell<Fleet>,
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
                let mut entry = ctx.error(format!("{} failed: {e}", effect.kind()));
                entry.public = Some(format!("{} failed: {}", effect.kind(), e.public_summary()));
                return Err(entry);
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
            public: None,
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
/// What the watch stops doing at the rate-limit reserve.
const RESERVE_STOPS: &str =
    "the watch reads no further live run this tick; runs already read are finished";

pub async fn tick(
    config: &Config,
    remotes: &Remotes,
    now: Timestamp,
    plan: &mut Plan,
    concurrency: usize,
) {
    let (fleet, t3_unreachable) = match read_fleet(remotes).await {
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
        plan.errors.push(ErrorEntry {
            public: None,
            repo: None,
            issue: None,
            run: None,
            error: format!(
                "the rate-limit budget is unknown (the answers' own figures still guard): {e}"
            ),
        });
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
    }
    if !plan.dry_run && unread == 0 {
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
        resume(
            tick,
            &ctx,
            issue,
            &comments,
            &outcome.record,
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
    report.tracked = Some((current, comment_id));
    report
}

/// The tick's error when T3's fleet read failed: the runs are still watched, but nothing
/// that needs T3 is done.
fn t3_unreachable_error(config: &Config, e: &RemoteError) -> ErrorEntry {
    let url = config.t3.as_ref().map_or("", |t| t.base_url.as_str());
    ErrorEntry {
        public: None,
        repo: None,
        issue: None,
        run: None,
        error: format!(
            "T3 unreachable at {url}: {e}; every live run waits on T3 (check that the T3 server \
             runs and is reachable from afk-watch, and afk's T3 token)"
        ),
    }
}

/// Stands in for T3's fleet when it could not be read. Nothing is applied against it: with T3
/// unreachable the state machine emits no dispatch, turn or interrupt.
fn unreachable_fleet() -> Fleet {
    Fleet {
        projects: Vec::new(),
        threads: Vec::new(),
        snapshot_sequence: 0,
        source: FleetSource::Shell,
    }
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
            report.errors.push(ctx.error(format!("resume: {why}")));
            return;
        }
    };
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
        // The comment is public: only the sanitised reason goes there; the full error is in
        // the plan and the logs.
        Err(e) => {
            let public = e
                .public
                .as_deref()
                .unwrap_or("dispatch failed; the details are in afk's logs");
            (dispatch_failed(record, public, tick.now), Some(e))
        }
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

/// The evidence of a thread `/shell` does not list, from T3's snapshot (read once a tick):
/// archived (present and settled) or missing.
async fn off_shell_thread(tick: &Tick<'_>, thread_id: &str) -> Result<ThreadEvidence, RemoteError> {
    if tick.fleet.source != FleetSource::Shell {
        return Ok(ThreadEvidence::Missing);
    }
    let snapshot = tick
        .off_shell
        .get_or_try_init(|| async {
            let env = tick.remotes.t3.cached_environment().await?;
            tick.remotes.t3.snapshot_fleet(&env).await
        })
        .await?;
    Ok(match snapshot.thread(thread_id) {
        Some(t) if !t.deleted && t.archived => archived_evidence(snapshot, t),
        _ => ThreadEvidence::Missing,
    })
}

/// An archived thread: present and settled with what T3 last showed (its detail answers 404;
/// the spend already seen stays in the record). Newer T3 archives settled threads on its own.
fn archived_evidence(source: &Fleet, t: &ThreadInfo) -> ThreadEvidence {
    let settled = t.settled_view();
    // A full snapshot (< 0.0.32) still carries the activities: questions and token usage.
    let detail = source.detail_from_snapshot(&t.id);
    ThreadEvidence::Present {
        latest_turn: settled.latest_turn,
        session_status: settled.session_status,
        session_error: settled.session_error,
        pending: detail.as_ref().and_then(|d| d.pending.clone()),
        tokens: detail.map(|d| d.tokens).unwrap_or_default(),
    }
}

/// The run's thread as T3 shows it; detail is read only when the thread is active or asks
/// something (token usage and questions live there). A thread T3 archived is present and
/// settled, never missing; only a deleted (or unknown) thread is missing.
async fn thread_evidence(
    tick: &Tick<'_>,
    record: &RunRecord,
) -> Result<ThreadEvidence, RemoteError> {
    if let Some(error) = &tick.t3_unreachable {
        return Ok(ThreadEvidence::Unreachable {
            error: error.clone(),
        });
    }
    let t = match tick.fleet.thread(&record.thread_id) {
        Some(t) => t,
        // Only a dispatched run is judged by its thread: a claimed one (whose thread may not
        // exist yet) or a finished one costs no snapshot read.
        None if record.status != RunStatus::Dispatched => return Ok(ThreadEvidence::Missing),
        None => return off_shell_thread(tick, &record.thread_id).await,
    };
    if t.deleted {
        return Ok(ThreadEvidence::Missing);
    }
    if t.archived {
        return Ok(archived_evidence(tick.fleet, t));
    }
    let asks = t.pending_approval == Some(true) || t.pending_user_input == Some(true);
    let detail = if let Some(d) = tick.fleet.detail_from_snapshot(&t.id) {
        Some(d)
    } else if record.status == RunStatus::Dispatched {
        // Token usage (the spend) and the agent's questions are only in thread detail.
        match tick.remotes.t3.thread_detail(&t.id).await? {
            Some(d) => Some(d),
            // Archived (or deleted) between the shell read and now: ask the snapshot.
            None => return off_shell_thread(tick, &t.id).await,
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
        tokens: detail.map(|d| d.tokens).unwrap_or_default(),
    })
}
