//! The poll tick: gather the enrolled repos' ready issues, select with the core's
//! policy, then claim and dispatch each winner in the crash-safe order the core planned.

use std::collections::{BTreeMap, HashMap};

use afk_core::blockers::{BlockerRef, blocker_refs};
use afk_core::claim::{ClaimInput, PriorRun, plan_claim};
use afk_core::comment::{CommentFacts, RecordLookup, latest_record};
use afk_core::config::Config;
use afk_core::effect::Effect;
use afk_core::facts::{
    Blocker, BlockerState, CandidateIssue, LabelEvent, Permission, PollFacts, RepoFacts,
};
use afk_core::ids;
use afk_core::model::{Login, RepoName, Timestamp};
use afk_core::plan::{DispatchEntry, ErrorEntry, Plan};
use afk_core::policy::{Winner, select};
use afk_core::prompt::IssueText;
use afk_core::record::RunRecord;
use afk_remotes::error::RemoteError;
use afk_remotes::t3::Fleet;
use afk_remotes::tracker::{Comment, Issue, IssueExtras, IssueState};
use futures::StreamExt;

use crate::remotes::Remotes;
use crate::watch::{ErrCtx, Tick, finish_dispatch};

/// What one repo's gathering produced, besides its facts.
struct Gathered {
    facts: RepoFacts,
    issues: BTreeMap<u64, Issue>,
    /// Permissions looked up this tick (reused for commenters of winners).
    permissions: HashMap<String, Permission>,
}

/// Runs the poll tick into `plan`.
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

    let mut repos = Vec::new();
    let mut gathered = BTreeMap::new();
    let mut live_runs: u32 = 0;
    for (repo, result) in results {
        match result {
            Ok(g) => {
                live_runs += u32::try_from(g.facts.locked_issues.len()).unwrap_or(u32::MAX);
                repos.push(g.facts.clone());
                gathered.insert(repo, g);
            }
            Err(e) => {
                // Unknown live runs: count the repo as holding its one slot (conservative).
                live_runs += 1;
                plan.errors.push(error(Some(&repo), None, e.to_string()));
            }
        }
    }
    let facts = PollFacts {
        repos,
        live_runs,
        t3_busy_threads: u32::try_from(fleet.running_threads()).unwrap_or(u32::MAX),
    };
    let selection = select(&facts, config);
    plan.skipped.extend(selection.skipped);

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
    let mut permissions: HashMap<String, Permission> = HashMap::new();
    let mut blocker_cache: HashMap<(RepoName, u64), BlockerState> = HashMap::new();
    let mut candidates = Vec::new();
    let paused = config.repo(repo).paused;
    let bot = config
        .tracker
        .as_ref()
        .map(|t| t.bot_login.trim())
        .filter(|b| !b.is_empty());
    // Candidates (indices, one per ready issue) whose edits and blockers are read below, all
    // in one batch (GitHub: one GraphQL query per 100 issues).
    let mut deep: Vec<usize> = Vec::new();
    for issue in &ready {
        let cheap_skip = paused
            || issue.is_pull_request
            || !issue.open
            || has_label(&issue.labels, &labels.human)
            || has_label(&issue.labels, &labels.in_progress);
        let mut candidate = CandidateIssue {
            number: issue.number,
            title: issue.title.clone(),
            is_pull_request: issue.is_pull_request,
            open: issue.open,
            labels: issue.labels.clone(),
            ready_label: None,
            body_edited_at: None,
            title_edited_at: None,
            updated_at: None,
            activity_after_label: Vec::new(),
            blockers: Vec::new(),
        };
        let change = if cheap_skip {
            None
        } else {
            tracker
                .latest_labeling(repo, issue.number, &labels.ready)
                .await?
        };
        if let Some(change) = change {
            let permission = permission_of(remotes, repo, &change.actor, &mut permissions).await?;
            let listed_bot = change.actor_is_bot
                && config
                    .trusted_bots
                    .iter()
                    .any(|b| b.eq_ignore_ascii_case(change.actor.as_str()));
            let own = bot.is_some_and(|b| b.eq_ignore_ascii_case(change.actor.as_str().trim()));
            // Edits and blockers only matter for a labeler who may arm the issue: the policy
            // skips anyone else first, so reading them would be wasted requests.
            if !own && (listed_bot || (!change.actor_is_bot && permission.may_arm())) {
                deep.push(candidates.len());
            }
            candidate.title_edited_at = change.title_changed_after;
            candidate.activity_after_label = change.activity_after.clone();
            candidate.ready_label = Some(LabelEvent {
                actor: change.actor.clone(),
                actor_is_bot: change.actor_is_bot,
                at: change.at,
                permission,
            });
        }
        candidates.push(candidate);
    }
    let keys: Vec<_> = deep
        .iter()
        .map(|&k| (repo.clone(), ready[k].number))
        .collect();
    let extras = tracker.issue_extras_many(&keys).await?;
    for (&k, extras) in deep.iter().zip(&extras) {
        let (issue, candidate) = (&ready[k], &mut candidates[k]);
        candidate.body_edited_at = extras.body_edited_at;
        if !extras.body_edit_time_known {
            candidate.updated_at = Some(issue.updated_at);
        }
        candidate.blockers = resolve_blockers(remotes, repo, &issue.body, &mut blocker_cache).await;
        add_linked_blockers(&mut candidate.blockers, repo, extras);
    }
    Ok(Gathered {
        facts: RepoFacts {
            repo: repo.clone(),
            issues: candidates,
            locked_issues: locked.iter().map(|i| i.number).collect(),
            t3_thread_running,
        },
        issues: ready.into_iter().map(|i| (i.number, i)).collect(),
        permissions,
    })
}

fn has_label(labels: &[String], name: &str) -> bool {
    labels.iter().any(|l| l.eq_ignore_ascii_case(name))
}

async fn permission_of(
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

/// Resolves every blocker reference; anything that cannot be read blocks (fail closed).
async fn resolve_blockers(
    remotes: &Remotes,
    home: &RepoName,
    body: &str,
    cache: &mut HashMap<(RepoName, u64), BlockerState>,
) -> Vec<Blocker> {
    let mut out = Vec::new();
    for r in blocker_refs(body, home) {
        let reference = r.display(home);
        let state = match &r {
            BlockerRef::Malformed(s) => {
                BlockerState::Unresolvable(format!("not an issue reference: {s}"))
            }
            BlockerRef::Issue { repo, number } => {
                let key = (repo.clone(), *number);
                match cache.get(&key) {
                    Some(s) => s.clone(),
                    None => {
                        let s = match remotes.tracker.issue(repo, *number).await {
                            Ok(Some(i)) if i.open => BlockerState::Open,
                            Ok(Some(_)) => BlockerState::Closed,
                            Ok(None) => {
                                BlockerState::Unresolvable("no such issue (or no access)".into())
                            }
                            Err(e) => BlockerState::Unresolvable(e.to_string()),
                        };
                        cache.insert(key, s.clone());
                        s
                    }
                }
            }
        };
        out.push(Blocker { reference, state });
    }
    out
}

/// Adds the forge's native "blocked by" links not already named in the body. Links the forge
/// did not list are unknown, so they block (fail closed).
fn add_linked_blockers(blockers: &mut Vec<Blocker>, home: &RepoName, extras: &IssueExtras) {
    if let Some(why) = &extras.unreadable {
        // The forge answered for other issues but not this one: nothing is known, it blocks.
        blockers.push(Blocker {
            reference: "this issue's edits and linked issues".into(),
            state: BlockerState::Unresolvable(why.clone()),
        });
        return;
    }
    for link in &extras.linked_blockers {
        let reference = match link.repo.parse::<RepoName>() {
            Ok(r) => BlockerRef::Issue {
                repo: r,
                number: link.number,
            }
            .display(home),
            Err(_) => format!("{}#{}", link.repo, link.number),
        };
        if blockers.iter().any(|b| b.reference == reference) {
            continue;
        }
        let state = if link.open {
            BlockerState::Open
        } else {
            BlockerState::Closed
        };
        blockers.push(Blocker {
            reference: format!("{reference} (linked)"),
            state,
        });
    }
    if extras.unlisted_blockers > 0 {
        blockers.push(Blocker {
            reference: format!("{} more linked issue(s)", extras.unlisted_blockers),
            state: BlockerState::Unresolvable("the forge did not list them".into()),
        });
    }
    if extras.hidden_blockers > 0 {
        blockers.push(Blocker {
            reference: format!("{} linked issue(s) afk cannot see", extras.hidden_blockers),
            state: BlockerState::Unresolvable(
                "afk's token cannot read them; give it access or remove the link".into(),
            ),
        });
    }
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
