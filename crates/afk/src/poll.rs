//! The poll tick: gather the enrolled repos' ready issues, select with the core's
//! policy, then claim and dispatch each winner in the crash-safe order the core planned.

use std::collections::{BTreeMap, HashMap};

use afk_core::blockers::{BlockerRef, blocker_refs};
use afk_core::config::Config;
use afk_core::facts::{
    Blocker, BlockerState, CandidateIssue, LabelEvent, Permission, PollFacts, RepoFacts,
};
use afk_core::ids;
use afk_core::model::{RepoName, Timestamp};
use afk_core::plan::Plan;
use afk_core::policy::{Winner, select};
use afk_remotes::error::RemoteError;
use afk_remotes::t3::Fleet;
use afk_remotes::tracker::{Issue, IssueExtras, IssueState};
use futures::StreamExt;

use crate::dispatch::{self, ClaimReport, permission_of};
use crate::remotes::Remotes;
use crate::tick::{Tick, error};

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
    let fleet = match crate::fleet::read_fleet(remotes).await {
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
                let extras = tracker.issue_extras(repo, issue.number).await?;
                candidate.body_edited_at = extras.body_edited_at;
                if !extras.body_edit_time_known {
                    candidate.updated_at = Some(issue.updated_at);
                }
                candidate.blockers =
                    resolve_blockers(remotes, repo, &issue.body, &mut blocker_cache).await;
                add_linked_blockers(&mut candidate.blockers, repo, &extras);
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

/// Claims one winner with what its repo's gathering found.
async fn claim_winner(tick: &Tick<'_>, g: &Gathered, w: &Winner) -> ClaimReport {
    dispatch::claim_winner(tick, g.issues.get(&w.issue), &g.permissions, w).await
}
