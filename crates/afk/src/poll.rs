//! The poll tick: gather the enrolled repos' ready issues, read deep facts only for those that
//! could win (every one in a dry run), select with the core's policy, then claim and dispatch
//! each winner in the crash-safe order the core planned.

mod vet;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use afk_core::config::Config;
use afk_core::facts::{BlockerState, Permission, PollFacts, RepoFacts};
use afk_core::ids;
use afk_core::lazy;
use afk_core::model::{RepoName, Timestamp};
use afk_core::plan::Plan;
use afk_core::policy::Winner;
use afk_remotes::error::RemoteError;
use afk_remotes::t3::Fleet;
use afk_remotes::tracker::{Issue, IssueState};
use futures::StreamExt;

use crate::dispatch::{self, ClaimReport};
use crate::remotes::Remotes;
use crate::tick::{Tick, error};

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
    let fleet = match crate::fleet::read_fleet(remotes).await {
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

/// Claims one winner with what its repo's gathering found.
async fn claim_winner(tick: &Tick<'_>, g: &Gathered, w: &Winner) -> ClaimReport {
    dispatch::claim_winner(tick, g.issues.get(&w.issue), &g.permissions, w).await
}
