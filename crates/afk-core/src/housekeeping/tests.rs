//! Housekeeping decisions: examples, and properties over arbitrary workspaces.

use std::path::PathBuf;

use proptest::prelude::*;

use super::*;
use crate::model::RepoName;

const GIB: u64 = 1 << 30;

fn config(retain_days: u32, evict_above_percent: u8) -> WorkspaceConfig {
    WorkspaceConfig {
        root: PathBuf::from("/data/afk"),
        clone_url_template: "https://github.com/{repo}.git".into(),
        send_tracker_token: true,
        retain_days,
        evict_above_percent,
        cache_dirs: vec![],
    }
}

fn now() -> Timestamp {
    chrono::DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_default()
}

fn run(issue: u64) -> RunId {
    RunId::new(RepoName::new("octo", "shop").expect("repo"), issue, 1)
}

/// A run's clone, last modified `hours` ago, taking `gib` GiB.
fn clone_of(issue: u64, hours: i64, gib: u64) -> RunWorkspace {
    RunWorkspace {
        run: run(issue),
        clone: Some(CloneFacts {
            modified: Some(now() - chrono::TimeDelta::hours(hours)),
            bytes: Some(gib * GIB),
        }),
        retained: Retained::No,
        partial: false,
        removing: false,
    }
}

/// A 100 GiB volume with `used` GiB used.
fn volume(used: u64) -> Option<VolumeUsage> {
    Some(VolumeUsage {
        total_bytes: 100 * GIB,
        available_bytes: (100 - used) * GIB,
    })
}

/// `(kind, run or path, reason)` of each effect.
fn summary(h: &Housekeeping) -> Vec<String> {
    h.effects
        .iter()
        .map(|e| match e {
            Effect::RemoveWorktree { run, reason, .. } => {
                format!("remove {} {}", run.issue(), reason.as_str())
            }
            Effect::RemovePartialClone { run, .. } => format!("partial {}", run.issue()),
            Effect::RemoveCacheDir { path } => format!("cache {path}"),
            other => format!("unexpected {}", other.kind()),
        })
        .collect()
}

#[test]
fn a_volume_under_the_limit_keeps_finished_clones() {
    let facts = WorkspaceFacts {
        volume: volume(50),
        runs: vec![clone_of(1, 100, 10), clone_of(2, 1, 10)],
        caches: vec![],
    };
    let h = decide(&facts, &BTreeSet::new(), now(), &config(14, 85));
    assert!(h.effects.is_empty(), "{h:?}");
    assert!(!over_limit(facts.volume.as_ref(), 85));
}

#[test]
fn eviction_takes_caches_then_the_oldest_finished_clones_until_under_the_limit() {
    let facts = WorkspaceFacts {
        volume: volume(95),
        runs: vec![
            clone_of(1, 5, 4),
            clone_of(2, 50, 3),
            clone_of(3, 20, 4),
            clone_of(4, 1, 4),
        ],
        caches: vec![CacheDir {
            path: "/data/afk/cache/cargo".into(),
            bytes: Some(2 * GIB),
        }],
    };
    assert!(over_limit(facts.volume.as_ref(), 85));
    let h = decide(&facts, &BTreeSet::new(), now(), &config(14, 85));
    // 95 → cache 93 → #2 (oldest) 90 → #3 87 → #1 83: under 85, #4 stays.
    assert_eq!(
        summary(&h),
        [
            "cache /data/afk/cache/cargo",
            "remove 2 evicted",
            "remove 3 evicted",
            "remove 1 evicted"
        ]
    );
    assert!(matches!(
        &h.effects[1],
        Effect::RemoveWorktree { worktree, .. }
            if worktree == "/data/afk/worktrees/octo__shop/octo__shop-2-1"
    ));
}

#[test]
fn live_and_retained_clones_are_never_evicted() {
    let mut kept = clone_of(2, 100, 10);
    kept.retained = Retained::Since(now() - chrono::TimeDelta::days(1));
    let mut unreadable = clone_of(3, 100, 10);
    unreadable.retained = Retained::Unreadable("not a time".into());
    let facts = WorkspaceFacts {
        volume: volume(99),
        runs: vec![clone_of(1, 200, 10), kept, unreadable, clone_of(4, 1, 1)],
        caches: vec![],
    };
    let live: BTreeSet<RunId> = [run(1)].into_iter().collect();
    // A 0 % limit is always over: everything evictable goes.
    let h = decide(&facts, &live, now(), &config(14, 0));
    assert_eq!(summary(&h), ["remove 4 evicted"]);
    assert_eq!(h.problems.len(), 1);
    assert_eq!(h.problems[0].0, run(3));
    assert!(h.problems[0].1.contains("not a time"));
}

#[test]
fn retained_clones_expire_after_retain_days() {
    let mut old = clone_of(1, 1, 1);
    old.retained = Retained::Since(now() - chrono::TimeDelta::days(15));
    let mut young = clone_of(2, 1, 1);
    young.retained = Retained::Since(now() - chrono::TimeDelta::days(13));
    // A marker whose clone is already gone (a removal that died before the marker) expires too.
    let stray = RunWorkspace {
        run: run(3),
        clone: None,
        retained: Retained::Since(now() - chrono::TimeDelta::days(20)),
        partial: false,
        removing: false,
    };
    let facts = WorkspaceFacts {
        volume: None,
        runs: vec![old, young, stray],
        caches: vec![],
    };
    let h = decide(&facts, &BTreeSet::new(), now(), &config(14, 85));
    assert_eq!(summary(&h), ["remove 1 expired", "remove 3 expired"]);
}

#[test]
fn leftovers_of_dead_ticks_are_cleaned_unless_the_run_is_live() {
    let partial = RunWorkspace {
        run: run(1),
        clone: None,
        retained: Retained::No,
        partial: true,
        removing: false,
    };
    let mut half_removed = clone_of(2, 1, 1);
    half_removed.clone = None;
    half_removed.removing = true;
    half_removed.retained = Retained::Since(now());
    let mut live_partial = partial.clone();
    live_partial.run = run(3);
    let facts = WorkspaceFacts {
        volume: volume(10),
        runs: vec![partial, half_removed, live_partial],
        caches: vec![],
    };
    let live: BTreeSet<RunId> = [run(3)].into_iter().collect();
    let h = decide(&facts, &live, now(), &config(14, 85));
    assert_eq!(summary(&h), ["partial 1", "remove 2 unfinished"]);
}

#[test]
fn freed_space_of_expired_clones_counts_before_eviction() {
    let mut old = clone_of(1, 1, 10);
    old.retained = Retained::Since(now() - chrono::TimeDelta::days(30));
    let facts = WorkspaceFacts {
        volume: volume(90),
        runs: vec![old, clone_of(2, 100, 5)],
        caches: vec![],
    };
    let h = decide(&facts, &BTreeSet::new(), now(), &config(14, 85));
    assert_eq!(summary(&h), ["remove 1 expired"]);
}

#[test]
fn an_unmeasured_volume_evicts_nothing() {
    let facts = WorkspaceFacts {
        volume: None,
        runs: vec![clone_of(1, 100, 10)],
        caches: vec![CacheDir {
            path: "/data/afk/cache".into(),
            bytes: None,
        }],
    };
    let h = decide(&facts, &BTreeSet::new(), now(), &config(14, 0));
    assert!(h.effects.is_empty());
    assert!(!over_limit(None, 0));
    let empty = VolumeUsage {
        total_bytes: 0,
        available_bytes: 0,
    };
    assert!(!over_limit(Some(&empty), 0));
}

#[test]
fn runs_concluded_for_a_person_this_tick_are_untouchable() {
    let entry = |issue: u64, decision: Decision| RunEntry {
        repo: run(issue).repo().clone(),
        issue,
        run: Some(run(issue)),
        phase: "finished".into(),
        decision,
        reason: String::new(),
        spend_usd: None,
    };
    let live: BTreeSet<RunId> = [run(1)].into_iter().collect();
    let runs = [
        entry(2, Decision::NeedsHuman),
        entry(3, Decision::Frozen),
        entry(4, Decision::Done),
        entry(5, Decision::Released),
    ];
    let keep = untouchable(&live, &runs);
    assert_eq!(keep, [run(1), run(2), run(3)].into_iter().collect());
    let facts = WorkspaceFacts {
        volume: volume(99),
        runs: (1..=5).map(|i| clone_of(i, 10, 1)).collect(),
        caches: vec![],
    };
    let h = decide(&facts, &keep, now(), &config(14, 0));
    assert_eq!(summary(&h), ["remove 4 evicted", "remove 5 evicted"]);
}

fn arb_run() -> impl Strategy<Value = (RunWorkspace, bool)> {
    (
        1u64..40,
        prop::option::weighted(
            0.9,
            (
                prop::option::weighted(0.9, 0i64..500),
                prop::option::weighted(0.9, 0u64..8),
            ),
        ),
        prop_oneof![
            6 => Just(None),
            2 => (0i64..30).prop_map(Some),
            1 => Just(Some(-1)),
        ],
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(issue, clone, retained, partial, removing, live)| {
            let ws = RunWorkspace {
                run: run(issue),
                clone: clone.map(|(hours, gib)| CloneFacts {
                    modified: hours.map(|h| now() - chrono::TimeDelta::hours(h)),
                    bytes: gib.map(|g| g * GIB),
                }),
                retained: match retained {
                    None => Retained::No,
                    Some(-1) => Retained::Unreadable("garbage".into()),
                    Some(days) => Retained::Since(now() - chrono::TimeDelta::days(days)),
                },
                partial,
                removing,
            };
            (ws, live)
        })
}

fn arb_case() -> impl Strategy<Value = (WorkspaceFacts, BTreeSet<RunId>, u8)> {
    (
        prop::collection::vec(arb_run(), 0..16),
        prop::option::weighted(0.95, 0u64..=100),
        prop::collection::vec(prop::option::of(0u64..3), 0..3),
        0u8..=100,
    )
        .prop_map(|(runs, used, caches, limit)| {
            // One entry per run, as the adapter lists them.
            let mut seen = BTreeSet::new();
            let mut live = BTreeSet::new();
            let mut list = Vec::new();
            for (ws, is_live) in runs {
                if seen.insert(ws.run.clone()) {
                    if is_live {
                        live.insert(ws.run.clone());
                    }
                    list.push(ws);
                }
            }
            let facts = WorkspaceFacts {
                volume: used.and_then(volume),
                runs: list,
                caches: caches
                    .into_iter()
                    .enumerate()
                    .map(|(i, gib)| CacheDir {
                        path: format!("/data/afk/cache/{i}"),
                        bytes: gib.map(|g| g * GIB),
                    })
                    .collect(),
            };
            (facts, live, limit)
        })
}

fn bytes(ws: &RunWorkspace) -> u64 {
    ws.clone.as_ref().and_then(|c| c.bytes).unwrap_or(0)
}

proptest! {
    #[test]
    fn housekeeping_keeps_its_promises((facts, live, limit) in arb_case()) {
        let cfg = config(14, limit);
        let h = decide(&facts, &live, now(), &cfg);
        let find = |run: &RunId| facts.runs.iter().find(|w| &w.run == run);
        let mut removed = BTreeSet::new();
        let mut evicted = Vec::new();
        let mut freed_before_eviction = 0u64;
        for e in &h.effects {
            match e {
                Effect::RemoveWorktree { run, reason, .. } => {
                    // Never the clone of a live run; at most once per run.
                    prop_assert!(!live.contains(run), "{run} is live");
                    prop_assert!(removed.insert(run.clone()), "{run} removed twice");
                    let ws = find(run).expect("a run from the facts");
                    match reason {
                        WorktreeRemoval::Unfinished => prop_assert!(ws.removing),
                        WorktreeRemoval::Expired => prop_assert!(matches!(
                            ws.retained,
                            Retained::Since(at) if now() - at > chrono::TimeDelta::days(14)
                        )),
                        WorktreeRemoval::Evicted => {
                            // Never a kept clone, never before the volume is over the limit.
                            prop_assert!(ws.retained == Retained::No && ws.clone.is_some());
                            evicted.push(ws);
                        }
                        WorktreeRemoval::Done => prop_assert!(false, "done is the machine's"),
                    }
                    if *reason != WorktreeRemoval::Evicted {
                        freed_before_eviction += bytes(ws);
                    }
                }
                Effect::RemovePartialClone { run, .. } => {
                    prop_assert!(!live.contains(run));
                    prop_assert!(find(run).is_some_and(|w| w.partial));
                }
                Effect::RemoveCacheDir { .. } => {}
                other => prop_assert!(false, "unexpected {}", other.kind()),
            }
        }
        let caches: u64 = facts.caches.iter().map(|c| c.bytes.unwrap_or(0)).sum();
        let cache_effects = h.effects.iter().filter(|e| matches!(e, Effect::RemoveCacheDir { .. })).count();
        let over = |freed: u64| facts.volume.is_some_and(|v| v.percent_after(freed).is_some_and(|p| p > u64::from(limit)));
        if !over(freed_before_eviction) {
            prop_assert!(evicted.is_empty() && cache_effects == 0, "evicted under the limit");
            return Ok(());
        }
        prop_assert_eq!(cache_effects, facts.caches.len());
        // Oldest first: no clone left behind is older than one evicted.
        let candidates: Vec<&RunWorkspace> = facts.runs.iter().filter(|w| {
            !live.contains(&w.run) && !w.removing && w.retained == Retained::No && w.clone.is_some()
        }).collect();
        let age = |w: &RunWorkspace| w.clone.as_ref().and_then(|c| c.modified);
        let newest_evicted = evicted.iter().map(|w| age(w)).max();
        for w in &candidates {
            if !evicted.iter().any(|e| e.run == w.run) {
                prop_assert!(newest_evicted.is_none_or(|n| age(w) >= n), "a younger clone went first");
            }
        }
        // Until under the limit, and no further.
        let total: u64 = freed_before_eviction + caches + evicted.iter().map(|w| bytes(w)).sum::<u64>();
        if evicted.len() < candidates.len() {
            prop_assert!(!over(total), "stopped while still over the limit");
        }
        if let Some(last) = evicted.last() {
            prop_assert!(over(total - bytes(last)), "evicted one too many");
        }
    }
}
