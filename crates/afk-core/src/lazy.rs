//! Lazy vetting: which ready issues a scheduled poll reads deep facts for (the labelling
//! timeline, the labeller's permission, edit evidence, blockers), so a tick's tracker cost
//! follows what could be dispatched rather than the size of the fleet.
//!
//! The poll first gathers the cheap facts of every enrolled repo (its ready and locked issues,
//! T3's running threads). [`next_round`] then names the issues to vet next, in rounds, most
//! urgent first as far as the cheap facts tell: the priority label (the labelling time that
//! breaks ties is a deep fact). An issue whose repo is busy or paused, or that fails a check the
//! cheap facts decide, is never read; with no free slot nothing is. A round's results go back
//! into the facts and the next round replaces what failed vetting, until the winners are
//! settled: every issue left unread is provably no better than its repo's vetted best, or than
//! the last of the winners when the slots are full. [`select_vetted`] then selects over what
//! was read, exactly as [`crate::policy::select`] would over the fully vetted fleet, and reports
//! every issue left unread: under the gate that held it (a busy repo, no free slot), or as
//! `not-vetted` when more urgent issues took the slots.
//!
//! A dry run vets every issue instead (one round with all of them), so it can explain each.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::Config;
use crate::facts::{CandidateIssue, PollFacts, RepoFacts};
use crate::model::{IssueNumber, RepoName};
use crate::plan::{SkipEntry, SkipReason};
use crate::policy::{
    Selection, Winner, check_issue, group_by_repo, has_label, priority_of, repo_busy, repo_gate,
    select, urgency,
};

/// An issue of a repo.
pub type IssueKey = (RepoName, IssueNumber);

/// Whether the cheap facts alone decide the issue's skip (its repo is not enrolled or paused; a
/// pull request, closed, no longer ready, handed to a person, or already locked), so no deep
/// read is needed, in any mode.
pub fn decided_cheaply(repo: &RepoName, issue: &CandidateIssue, config: &Config) -> bool {
    let labels = &config.labels;
    repo_gate(repo, config).is_some()
        || issue.is_pull_request
        || !issue.open
        || !has_label(issue, &labels.ready)
        || has_label(issue, &labels.human)
        || has_label(issue, &labels.in_progress)
}

/// Every issue that needs deep facts to be judged (the eager set: a dry run vets all of them).
pub fn all_to_vet(facts: &PollFacts, config: &Config) -> Vec<IssueKey> {
    let mut out: Vec<IssueKey> = facts
        .repos
        .iter()
        .flat_map(|r| {
            r.issues
                .iter()
                .filter(|i| !decided_cheaply(&r.repo, i, config))
                .map(|i| (r.repo.clone(), i.number))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The urgency class the cheap facts show: a priority label beats none, a lower value first.
type Tier = (bool, u32);

fn tier_of(issue: &CandidateIssue, config: &Config) -> Tier {
    let p = priority_of(&issue.labels, &config.labels.priority_patterns);
    (p.is_none(), p.unwrap_or(u32::MAX))
}

fn winner_tier(w: &Winner) -> Tier {
    (w.priority.is_none(), w.priority.unwrap_or(u32::MAX))
}

/// Free dispatch slots this tick: the global and the T3 limit, whichever is tighter.
pub fn free_slots(facts: &PollFacts, config: &Config) -> u32 {
    let free = config.max_in_flight.saturating_sub(facts.live_runs);
    let t3_free = config
        .t3_max_busy_threads
        .saturating_sub(facts.t3_busy_threads);
    free.min(t3_free)
}

/// What the vetted facts say so far: each free repo's best eligible issue and its unread
/// issues that could still beat it.
struct Standing<'a> {
    /// Free repos' best vetted eligible issues, most urgent first.
    bests: Vec<Winner>,
    /// Per free repo: its best (if any) and its unread issues needing deep facts.
    repos: BTreeMap<&'a RepoName, (Option<Winner>, Vec<&'a CandidateIssue>)>,
}

fn standing<'a>(
    facts: &'a PollFacts,
    vetted: &BTreeSet<IssueKey>,
    config: &Config,
) -> Standing<'a> {
    let mut repos = BTreeMap::new();
    let mut bests = Vec::new();
    for (repo, parts) in group_by_repo(facts) {
        if repo_gate(repo, config).is_some() || repo_busy(repo, &parts, config).is_some() {
            continue;
        }
        let mut best: Option<Winner> = None;
        let mut unread = Vec::new();
        for issue in parts.issues {
            if decided_cheaply(repo, issue, config) {
                continue;
            }
            if !vetted.contains(&(repo.clone(), issue.number)) {
                unread.push(issue);
            } else if let Ok(w) = check_issue(repo, issue, config)
                && best.as_ref().is_none_or(|b| urgency(&w) < urgency(b))
            {
                best = Some(w);
            }
        }
        bests.extend(best.clone());
        repos.insert(repo, (best, unread));
    }
    bests.sort_by(|a, b| urgency(a).cmp(&urgency(b)));
    Standing { bests, repos }
}

/// The issues to vet next; empty when no further read can change the winners (or nothing can
/// be dispatched: the kill switch, no free slot, every repo busy).
///
/// A round is every unread issue of the most urgent priority class that could still win: the
/// labelling time that orders issues of one class is on each issue's timeline, so every one of
/// them that is not beaten on priority has to be read before the winners are known, and reading
/// them together costs no more requests than one by one, in fewer round trips. An issue that
/// fails vetting is replaced by the next class in the next round; a class beaten by enough
/// winners (or by its repo's best) is never read.
pub fn next_round(
    facts: &PollFacts,
    vetted: &BTreeSet<IssueKey>,
    config: &Config,
) -> Vec<IssueKey> {
    let slots = free_slots(facts, config);
    if config.kill_switch || slots == 0 {
        return Vec::new();
    }
    let st = standing(facts, vetted, config);
    let slots = usize::try_from(slots).unwrap_or(usize::MAX);
    // With every slot taken by a vetted repo best, only an issue that may beat the last of
    // them still matters.
    let cutoff = (st.bests.len() >= slots)
        .then(|| st.bests.get(slots - 1).map(winner_tier))
        .flatten();
    let mut open: Vec<(Tier, &RepoName, IssueNumber)> = Vec::new();
    for (repo, (best, unread)) in &st.repos {
        for issue in unread {
            let tier = tier_of(issue, config);
            let beaten_in_repo = best.as_ref().is_some_and(|b| tier > winner_tier(b));
            let beaten_overall = cutoff.is_some_and(|c| tier > c);
            if !beaten_in_repo && !beaten_overall {
                open.push((tier, repo, issue.number));
            }
        }
    }
    let Some(first) = open.iter().map(|(t, _, _)| *t).min() else {
        return Vec::new();
    };
    let mut round: Vec<IssueKey> = open
        .into_iter()
        .filter(|(t, _, _)| *t == first)
        .map(|(_, repo, number)| (repo.clone(), number))
        .collect();
    round.sort();
    round
}

/// The selection over the vetted issues (and those the cheap facts decide), with every other
/// issue skipped for the gate that held it (`repo-busy`, `at-capacity`, `t3-busy`) or, when it
/// lost to more urgent issues, as `not-vetted`. When the rounds of
/// [`next_round`] are done, its winners are exactly [`select`]'s over the fully vetted facts.
pub fn select_vetted(facts: &PollFacts, vetted: &BTreeSet<IssueKey>, config: &Config) -> Selection {
    let is_read = |repo: &RepoName, i: &CandidateIssue| {
        decided_cheaply(repo, i, config) || vetted.contains(&(repo.clone(), i.number))
    };
    let kept = PollFacts {
        repos: facts
            .repos
            .iter()
            .map(|r| RepoFacts {
                repo: r.repo.clone(),
                issues: r
                    .issues
                    .iter()
                    .filter(|i| is_read(&r.repo, i))
                    .cloned()
                    .collect(),
                locked_issues: r.locked_issues.clone(),
                t3_thread_running: r.t3_thread_running,
            })
            .collect(),
        live_runs: facts.live_runs,
        t3_busy_threads: facts.t3_busy_threads,
    };
    let mut selection = select(&kept, config);
    if config.kill_switch {
        return selection;
    }
    let slots = free_slots(facts, config);
    let st = standing(facts, vetted, config);
    let mut reported: BTreeSet<IssueKey> = BTreeSet::new();
    for (repo, parts) in group_by_repo(facts) {
        let busy = repo_busy(repo, &parts, config);
        for issue in parts.issues {
            if is_read(repo, issue) || !reported.insert((repo.clone(), issue.number)) {
                continue;
            }
            // A gate that holds whatever the issue's facts are is the reason (as the eager
            // selection would give it for an eligible issue); `not-vetted` is for an issue
            // that loses to more urgent ones.
            let t3_full = facts.t3_busy_threads >= config.t3_max_busy_threads;
            let (reason, why) = if let Some(busy) = &busy {
                (SkipReason::RepoBusy, busy.clone())
            } else if slots == 0 && !t3_full {
                (
                    SkipReason::AtCapacity,
                    format!(
                        "no free slot: {} live run(s) of max_in_flight {}",
                        facts.live_runs, config.max_in_flight
                    ),
                )
            } else if slots == 0 {
                (
                    SkipReason::T3Busy,
                    format!(
                        "T3 reports {} busy thread(s) of t3_max_busy_threads {}",
                        facts.t3_busy_threads, config.t3_max_busy_threads
                    ),
                )
            } else if let Some((Some(best), _)) = st.repos.get(repo) {
                (
                    SkipReason::NotVetted,
                    format!("{repo}'s slot goes to the more urgent #{}", best.issue),
                )
            } else {
                (
                    SkipReason::NotVetted,
                    format!("more urgent issues take this tick's {slots} free slot(s)"),
                )
            };
            selection.skipped.push(SkipEntry {
                repo: Some(repo.clone()),
                issue: Some(issue.number),
                reason,
                detail: format!(
                    "{why}; its labelling, edits and blockers were not read this tick (a dry run \
                     reads and explains them)"
                ),
            });
        }
    }
    selection.skipped.sort_by(|a, b| {
        (&a.repo, a.issue, a.reason, &a.detail).cmp(&(&b.repo, b.issue, b.reason, &b.detail))
    });
    selection
}
