//! The poll tick: gather the enrolled repos' ready issues, read deep facts only for those that
//! could win (every one in a dry run), select with the core's policy, then claim and dispatch
//! each winner in the crash-safe order the core planned.

mod vet;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use afk_core::claim::{ClaimInput, PriorRun, plan_claim};
use afk_core::comment::{CommentFacts, RecordLookup, latest_record};
use afk_core::config::Config;
use afk_core::effect::Effect;
use afk_core::facts::{BlockerState, Permission, PollFacts, RepoFacts};
use afk_core::ids;
use afk_core::lazy;
use afk_core::model::{Login, RepoName, Timestamp};
use afk_core::plan::{DispatchEntry, ErrorEntry, Plan};
use afk_core::policy::Winner;
use afk_core::prompt::IssueText;
use afk_core::record::RunRecord;
use afk_remotes::error::RemoteError;
use afk_remotes::t3::Fleet;
use afk_remotes::tracker::{Comment, Issue, IssueState};
use futures::StreamExt;

use crate::remotes::Remotes;
use crate::watch::{ErrCtx, Tick, finish_dispatch};

/// What one repo's gathering produced, besides its facts.
struct Gathered {
    facts: RepoFacts,
    issues: BTreeMap<u64, Issue>,
    /// Permissions looked up this tick (reused for commenters of winners).
    permissions: HashMap<String, Permission>,
    /// Blocker issues looked up this tick.
    blockers: HashMap<(RepoName, u64), BlockerState>,
}

/// Runs the poll tick into `plan`: the cheap facts of every repo, then the deep facts of only
/// the issues that could win (every issue in a dry run), then the claims.
pub async fn tick(
    config: &Config,
    remotes: &Remotes,
    now: Timestamp,
    plan: &mut Plan,
    concurrency: usize,
) {
    let fleet = match crate::watch::read_fleet(remotes).await {
        Ok(f) => f,
        Err(e) => {
            // Capacity and running threads are unknown: dispatch nothing (fail closed).
            plan.errors
                .push(error(None, None, format!("nothing dispatched: {e}")));
            return;
        }
    };
    const STOPS: &str = "the poll reads no further and dispatches nothing this tick";
    if let Err(e) = remotes.tracker.read_rate_limit().await {
        plan.errors.push(error(
            None,
            None,
            format!("nothing dispatched: the rate-limit budget is unknown: {e}"),
        ));
        return;
    }
    if crate::budget::reserve_reached(config, remotes, now, plan, STOPS) {
        return;
    }
    let results: Vec<(RepoName, Result<Gathered, RemoteError>)> =
        futures::stream::iter(config.allowlist.iter().cloned())
            .map(|repo| {
                let running = project_running(&fleet, &repo);
                async move {
                    let r = gather_repo(config, remotes, &repo, running).await;
                    (repo, r)
                }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;

    let mut gathered = BTreeMap::new();
    let mut facts = PollFacts {
        repos: Vec::new(),
        live_runs: 0,
        t3_busy_threads: u32::try_from(fleet.running_threads()).unwrap_or(u32::MAX),
    };
    for (repo, result) in results {
        match result {
            Ok(g) => {
                facts.live_runs += u32::try_from(g.facts.locked_issues.len()).unwrap_or(u32::MAX);
                facts.repos.push(g.facts.clone());
                gathered.insert(repo, g);
            }
            Err(e) => {
                // Unknown live runs: count the repo as holding its one slot (conservative).
                facts.live_runs += 1;
                plan.errors.push(error(Some(&repo), None, e.to_string()));
            }
        }
    }

    // Deep facts in rounds: a scheduled poll reads only issues that could win (the core
    // decides which); a dry run reads every issue, in one round, to explain each.
    let mut vetted = BTreeSet::new();
    let mut first = true;
    loop {
        let round = if plan.dry_run {
            if first {
                lazy::all_to_vet(&facts, config)
            } else {
                Vec::new()
            }
        } else {
            lazy::next_round(&facts, &vetted, config)
        };
        first = false;
        if round.is_empty() {
            break;
        }
        if crate::budget::reserve_reached(config, remotes, now, plan, STOPS) {
            return;
        }
        let (read, failed) =
            vet::vet_round(remotes, config, &round, &mut gathered, concurrency).await;
        for (repo, e) in failed {
            facts.repos.retain(|r| r.repo != repo);
            gathered.remove(&repo);
            facts.live_runs += 1;
            plan.errors.push(error(Some(&repo), None, e.to_string()));
        }
        for ((repo, number), candidate) in read {
            for r in facts.repos.iter_mut().filter(|r| r.repo == repo) {
                for i in r.issues.iter_mut().filter(|i| i.number == number) {
                    *i = candidate.clone();
                }
            }
            vetted.insert((repo, number));
        }
    }
    let selection = lazy::select_vetted(&facts, &vetted, config);
    plan.skipped.extend(selection.skipped);
    if !selection.winners.is_empty()
        && crate::budget::reserve_reached(config, remotes, now, plan, STOPS)
    {
        return;
    }

    let tick = Tick {
        config,
        remotes,
        fleet: &fleet,
        t3_unreachable: None,
        off_shell: Default::default(),
        now,
        dry_run: plan.dry_run,
    };
    let tick = &tick;
    let gathered = &gathered;
    let claims: Vec<ClaimReport> = futures::stream::iter(selection.winners)
        .map(|w| async move {
            match gathered.get(&w.repo) {
                Some(g) => claim_winner(tick, g, &w).await,
                None => ClaimReport::failed(&w, "no facts were gathered for this repo".into()),
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    for c in claims {
        plan.dispatch.extend(c.entry);
        plan.effects.extend(c.effects);
        plan.errors.extend(c.error);
    }
}

/// Whether an afk thread of `repo` is running in T3 (the repo is busy even without a lock).
fn project_running(fleet: &Fleet, repo: &RepoName) -> bool {
    let project = ids::project_id(repo);
    fleet
        .threads
        .iter()
        .any(|t| t.project_id == project && t.is_running())
}

/// The repo's cheap facts: its ready and locked issues, as the listings show them (no deep
/// fact yet: see [`vet::vet_round`]).
async fn gather_repo(
    config: &Config,
    remotes: &Remotes,
    repo: &RepoName,
    t3_thread_running: bool,
) -> Result<Gathered, RemoteError> {
    let tracker = &remotes.tracker;
    let labels = &config.labels;
    let ready = tracker
        .list_issues(repo, &labels.ready, IssueState::Open)
        .await?;
    let locked = tracker
        .list_issues(repo, &labels.in_progress, IssueState::All)
        .await?;
    Ok(Gathered {
        facts: RepoFacts {
            repo: repo.clone(),
            issues: ready.iter().map(vet::listed).collect(),
            locked_issues: locked.iter().map(|i| i.number).collect(),
            t3_thread_running,
        },
        issues: ready.into_iter().map(|i| (i.number, i)).collect(),
        permissions: HashMap::new(),
        blockers: HashMap::new(),
    })
}

pub(crate) async fn permission_of(
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

/// What claiming one winner produced.
struct ClaimReport {
    entry: Option<DispatchEntry>,
    effects: Vec<Effect>,
    error: Option<ErrorEntry>,
}

impl ClaimReport {
    fn failed(w: &Winner, msg: String) -> ClaimReport {
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
/// with the core and applies it, unless dry-running.
async fn claim_winner(tick: &Tick<'_>, g: &Gathered, w: &Winner) -> ClaimReport {
    let Some(issue) = g.issues.get(&w.issue) else {
        return ClaimReport::failed(
            w,
            "the winning issue is missing from the gathered list".into(),
        );
    };
    let comments = match tick.remotes.tracker.list_comments(&w.repo, w.issue).await {
        Ok(c) => c,
        Err(e) => return ClaimReport::failed(w, e.to_string()),
    };
    let facts: Vec<CommentFacts> = comments
        .iter()
        .map(|c| CommentFacts {
            id: c.id,
            author: c.author.clone(),
            body: c.body.clone(),
        })
        .collect();
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
    let text = match issue_text(tick, &w.repo, issue, &comments, &g.permissions).await {
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

/// Applies a claim (comment, lock, dispatch) in order. Once the comment and the lock are in
/// place, the dispatch outcome is recorded in the comment either way; a failure before that
/// leaves nothing a later tick cannot resume.
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
    let (setup, dispatch): (Vec<&Effect>, Vec<&Effect>) = effects
        .iter()
        .partition(|e| !matches!(e, Effect::Dispatch { .. }));
    for e in setup {
        if let Err(failed) = tick
            .apply_all(std::slice::from_ref(e), &mut comment, ctx)
            .await
        {
            // Past the comment (the lock could not be taken): say so in the record, so the
            // attempt counts and a person reading the comment sees why.
            if comment.is_some() {
                return finish_dispatch(tick, ctx, record, &mut comment, Err(failed)).await;
            }
            return Err(failed);
        }
    }
    let mut result = Ok(());
    for e in dispatch {
        result = tick
            .apply_all(std::slice::from_ref(e), &mut comment, ctx)
            .await;
    }
    finish_dispatch(tick, ctx, record, &mut comment, result).await
}

fn error(repo: Option<&RepoName>, issue: Option<u64>, error: String) -> ErrorEntry {
    ErrorEntry {
        public: None,
        repo: repo.cloned(),
        issue,
        run: None,
        error,
    }
}
