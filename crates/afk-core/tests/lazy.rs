//! Lazy vetting against eager selection: the rounds of `lazy::next_round` read only issues that
//! could win, and `lazy::select_vetted` then picks exactly the winners `policy::select` picks
//! over the fully vetted fleet.

use std::collections::BTreeSet;

use afk_core::config::{Config, RepoConfig};
use afk_core::facts::{
    Blocker, BlockerState, CandidateIssue, LabelEvent, Permission, PollFacts, RepoFacts,
};
use afk_core::lazy::{IssueKey, all_to_vet, next_round, select_vetted};
use afk_core::model::{Login, RepoName, Timestamp};
use afk_core::plan::SkipReason;
use afk_core::policy::select;
use proptest::prelude::*;

fn t(minutes: i64) -> Timestamp {
    chrono::DateTime::from_timestamp(1_700_000_000 + minutes * 60, 0).expect("timestamp")
}

fn repo(i: usize) -> RepoName {
    format!("acme/r{i}").parse().expect("repo")
}

fn config(max_in_flight: u32, t3_max: u32, repos: usize, paused: &[usize]) -> Config {
    let mut c = Config::default_closed();
    c.kill_switch = false;
    c.max_in_flight = max_in_flight;
    c.t3_max_busy_threads = t3_max;
    c.allowlist = (0..repos).map(repo).collect();
    for &p in paused {
        c.repos.insert(
            repo(p),
            RepoConfig {
                default_branch: None,
                ci: Vec::new(),
                deploy: None,
                paused: true,
                pause_reason: "maintenance".into(),
            },
        );
    }
    c
}

/// An eligible issue: labelled by a writer at `t(at)`, with `labels` besides the ready label.
fn eligible(number: u64, at: i64, labels: &[&str]) -> CandidateIssue {
    let mut all = vec!["ready-for-agent".to_owned()];
    all.extend(labels.iter().map(|l| (*l).to_owned()));
    CandidateIssue {
        number,
        title: format!("Issue {number}"),
        is_pull_request: false,
        open: true,
        labels: all,
        ready_label: Some(LabelEvent {
            actor: Login::new("alice"),
            actor_is_bot: false,
            at: t(at),
            permission: Permission::Write,
        }),
        body_edited_at: None,
        title_edited_at: None,
        updated_at: None,
        activity_after_label: Vec::new(),
        blockers: Vec::new(),
    }
}

/// What the listing alone shows of an issue: no deep fact.
fn cheap(issue: &CandidateIssue) -> CandidateIssue {
    CandidateIssue {
        ready_label: None,
        body_edited_at: None,
        title_edited_at: None,
        updated_at: None,
        activity_after_label: Vec::new(),
        blockers: Vec::new(),
        ..issue.clone()
    }
}

fn repo_facts(i: usize, issues: Vec<CandidateIssue>, locked: &[u64]) -> RepoFacts {
    RepoFacts {
        repo: repo(i),
        issues,
        locked_issues: locked.to_vec(),
        t3_thread_running: false,
    }
}

/// Runs the lazy rounds the way the poll does, reading deep facts from `full`. Returns the
/// issues read, the number of rounds and the final selection.
fn lazy(
    full: &PollFacts,
    config: &Config,
) -> (
    BTreeSet<IssueKey>,
    usize,
    afk_core::policy::Selection,
    Vec<Vec<IssueKey>>,
) {
    let mut facts = full.clone();
    for r in &mut facts.repos {
        for i in &mut r.issues {
            *i = cheap(i);
        }
    }
    let mut vetted = BTreeSet::new();
    let mut rounds = Vec::new();
    loop {
        let round = next_round(&facts, &vetted, config);
        if round.is_empty() {
            break;
        }
        for key in &round {
            assert!(vetted.insert(key.clone()), "{key:?} read twice");
            let deep = full
                .repos
                .iter()
                .filter(|r| r.repo == key.0)
                .flat_map(|r| r.issues.iter())
                .find(|i| i.number == key.1)
                .expect("a known issue")
                .clone();
            for r in facts.repos.iter_mut().filter(|r| r.repo == key.0) {
                for i in r.issues.iter_mut().filter(|i| i.number == key.1) {
                    *i = deep.clone();
                }
            }
        }
        rounds.push(round);
        assert!(rounds.len() <= 200, "the rounds end");
    }
    let selection = select_vetted(&facts, &vetted, config);
    (vetted, rounds.len(), selection, rounds)
}

#[test]
fn a_fleet_at_capacity_reads_no_deep_fact() {
    let c = config(2, 8, 3, &[]);
    let facts = PollFacts {
        repos: vec![
            repo_facts(0, vec![eligible(1, 0, &[])], &[9]),
            repo_facts(1, vec![eligible(2, 0, &[])], &[8]),
            repo_facts(2, vec![eligible(3, 0, &[]), eligible(4, 1, &[])], &[]),
        ],
        live_runs: 2,
        t3_busy_threads: 0,
    };
    let (read, rounds, selection, _) = lazy(&facts, &c);
    assert!(read.is_empty() && rounds == 0, "{read:?}");
    assert!(selection.winners.is_empty());
    let reason = |n| {
        selection
            .skipped
            .iter()
            .find(|s| s.issue == Some(n))
            .map(|s| (s.reason, s.detail.contains("not read this tick")))
    };
    assert_eq!(
        reason(1),
        Some((SkipReason::RepoBusy, true)),
        "{:?}",
        selection.skipped
    );
    assert_eq!(reason(3), Some((SkipReason::AtCapacity, true)));
    assert_eq!(reason(4), Some((SkipReason::AtCapacity, true)));
}

#[test]
fn busy_and_paused_repos_cost_no_deep_read() {
    let c = config(5, 8, 3, &[2]);
    let mut running = repo_facts(1, vec![eligible(2, 0, &[])], &[]);
    running.t3_thread_running = true;
    let facts = PollFacts {
        repos: vec![
            repo_facts(0, vec![eligible(1, 0, &[])], &[7]),
            running,
            repo_facts(2, vec![eligible(3, 0, &[])], &[]),
        ],
        live_runs: 1,
        t3_busy_threads: 1,
    };
    assert!(next_round(&facts, &BTreeSet::new(), &c).is_empty());
    let (_, _, selection, _) = lazy(&facts, &c);
    let reason = |n| {
        selection
            .skipped
            .iter()
            .find(|s| s.issue == Some(n))
            .map(|s| s.reason)
    };
    assert_eq!(reason(1), Some(SkipReason::RepoBusy));
    assert_eq!(reason(2), Some(SkipReason::RepoBusy));
    assert_eq!(reason(3), Some(SkipReason::RepoPaused));
}

#[test]
fn one_free_slot_reads_the_most_urgent_first_and_replaces_a_failure() {
    let c = config(1, 8, 3, &[]);
    let mut untrusted = eligible(1, 0, &["P0"]);
    if let Some(l) = untrusted.ready_label.as_mut() {
        l.permission = Permission::Read;
    }
    let facts = PollFacts {
        repos: vec![
            repo_facts(0, vec![untrusted, eligible(2, 0, &[])], &[]),
            repo_facts(1, vec![eligible(3, 5, &["P1"]), eligible(4, 0, &[])], &[]),
            repo_facts(2, vec![eligible(5, 0, &["P2"])], &[]),
        ],
        live_runs: 0,
        t3_busy_threads: 0,
    };
    let (read, _, selection, rounds) = lazy(&facts, &c);
    assert_eq!(rounds[0], vec![(repo(0), 1)], "the P0 issue first");
    assert_eq!(rounds[1], vec![(repo(1), 3)], "then the next most urgent");
    let winners: Vec<u64> = selection.winners.iter().map(|w| w.issue).collect();
    assert_eq!(winners, vec![3]);
    assert_eq!(read.len(), 2, "nothing less urgent is read: {read:?}");
    let skipped = |n| {
        selection
            .skipped
            .iter()
            .find(|s| s.issue == Some(n))
            .map(|s| s.reason)
    };
    assert_eq!(
        skipped(2),
        Some(SkipReason::NotVetted),
        "{:?}",
        selection.skipped
    );
    assert_eq!(skipped(5), Some(SkipReason::NotVetted));
    assert_eq!(selection.winners, select(&facts, &c).winners);
}

#[test]
fn a_dry_run_vets_everything_and_selects_as_eagerly() {
    let c = config(1, 8, 2, &[]);
    let facts = PollFacts {
        repos: vec![
            repo_facts(0, vec![eligible(1, 0, &["P1"]), eligible(2, 0, &[])], &[]),
            repo_facts(1, vec![eligible(3, 0, &[])], &[4]),
        ],
        live_runs: 1,
        t3_busy_threads: 0,
    };
    let all: BTreeSet<IssueKey> = all_to_vet(&facts, &c).into_iter().collect();
    assert_eq!(all.len(), 3);
    assert_eq!(select_vetted(&facts, &all, &c), select(&facts, &c));
}

fn arb_issue(number: u64) -> impl Strategy<Value = CandidateIssue> {
    (
        0i64..4,
        prop::option::of(0u32..3),
        0u8..12,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(move |(at, priority, kind, edited, blocked)| {
            let p = priority.map(|p| format!("P{p}"));
            let mut i = eligible(
                number,
                at,
                &p.iter().map(String::as_str).collect::<Vec<_>>(),
            );
            match kind {
                0 => i.is_pull_request = true,
                1 => i.labels.push("ready-for-human".into()),
                2 => i.ready_label = None,
                3 => {
                    if let Some(l) = i.ready_label.as_mut() {
                        l.permission = Permission::Triage;
                    }
                }
                4 if edited => i.body_edited_at = Some(t(at + 1)),
                5 if blocked => i.blockers.push(Blocker {
                    reference: "#999".into(),
                    state: BlockerState::Open,
                }),
                6 => i.labels.push("agent-in-progress".into()),
                _ => {}
            }
            i
        })
}

fn arb_repo(index: usize) -> impl Strategy<Value = RepoFacts> {
    (
        prop::collection::vec(Just(()), 0..5),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
    )
        .prop_flat_map(move |(slots, locked, running)| {
            let issues: Vec<_> = (0..slots.len())
                .map(|k| arb_issue(index as u64 * 10 + k as u64 + 1))
                .collect();
            issues.prop_map(move |issues| RepoFacts {
                repo: repo(index),
                issues,
                locked_issues: if locked {
                    vec![index as u64 * 10 + 9]
                } else {
                    vec![]
                },
                t3_thread_running: running,
            })
        })
}

fn arb_fleet() -> impl Strategy<Value = (PollFacts, Config)> {
    (
        1usize..6,
        1u32..4,
        1u32..6,
        0u32..4,
        0u32..6,
        prop::option::of(0usize..6),
    )
        .prop_flat_map(|(n, max, t3_max, live, busy, paused)| {
            let repos: Vec<_> = (0..n).map(arb_repo).collect();
            repos.prop_map(move |repos| {
                let c = config(max, t3_max, n, &paused.into_iter().collect::<Vec<_>>());
                (
                    PollFacts {
                        repos,
                        live_runs: live,
                        t3_busy_threads: busy,
                    },
                    c,
                )
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The lazy rounds choose exactly the eager winners, read only issues that need deep
    /// facts, and report every other issue.
    #[test]
    fn lazy_rounds_choose_the_eager_winners((facts, c) in arb_fleet()) {
        let eager = select(&facts, &c);
        let (read, _, lazy_selection, _) = lazy(&facts, &c);
        prop_assert_eq!(&lazy_selection.winners, &eager.winners);
        let all: BTreeSet<IssueKey> = all_to_vet(&facts, &c).into_iter().collect();
        prop_assert!(read.is_subset(&all));
        // Every issue is reported once: a winner or a skip.
        let reported = lazy_selection.winners.len()
            + lazy_selection.skipped.iter().filter(|s| s.issue.is_some()).count();
        let total: usize = facts.repos.iter().map(|r| r.issues.len()).sum();
        prop_assert_eq!(reported, total);
        // Vetting everything is the eager selection, skips included.
        prop_assert_eq!(select_vetted(&facts, &all, &c), eager);
    }

    /// With no free slot nothing is read.
    #[test]
    fn no_free_slot_means_no_deep_read((facts, c) in arb_fleet()) {
        let full = facts.live_runs >= c.max_in_flight || facts.t3_busy_threads >= c.t3_max_busy_threads;
        if full {
            prop_assert!(next_round(&facts, &BTreeSet::new(), &c).is_empty());
        }
    }
}

#[test]
fn issues_tied_on_priority_are_read_together_and_the_oldest_labelling_wins() {
    let c = config(1, 8, 2, &[]);
    let facts = PollFacts {
        repos: vec![
            repo_facts(0, vec![eligible(1, 5, &[]), eligible(2, 3, &[])], &[]),
            repo_facts(1, vec![eligible(3, 4, &[]), eligible(4, 1, &["P3"])], &[]),
        ],
        live_runs: 0,
        t3_busy_threads: 0,
    };
    let (read, _, selection, rounds) = lazy(&facts, &c);
    assert_eq!(
        rounds,
        vec![vec![(repo(1), 4)]],
        "the one prioritised issue alone"
    );
    assert_eq!(read.len(), 1);
    assert_eq!(selection.winners[0].issue, 4);

    // Without the priority label every issue ties: one round reads them all, and the
    // labelling time decides (#2, labelled first), not the issue number.
    let mut flat = facts.clone();
    flat.repos[1].issues[1] = eligible(4, 6, &[]);
    let (read, _, selection, rounds) = lazy(&flat, &c);
    assert_eq!(rounds.len(), 1, "{rounds:?}");
    assert_eq!(read.len(), 4);
    assert_eq!(selection.winners[0].issue, 2);
    assert_eq!(selection.winners, select(&flat, &c).winners);
}
