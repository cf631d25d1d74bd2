//! Workspace housekeeping, decided from what the workspace volume holds: which runs' clones
//! and leftovers to remove, and what to evict when the volume is too full.
//!
//! The watch tick gathers [`WorkspaceFacts`] (every run's clone with its age and, when the
//! volume is over the limit, its size; half-built and half-removed clones; retained markers;
//! the cache folders; the volume's usage) and [`decide`] turns them, with the set of live runs,
//! the config and `now`, into effects the tick prints and applies like any other:
//!
//! - nothing of a live run is ever touched;
//! - a half-built clone (`.partial`) of a run that is no longer live is removed;
//! - a half-removed clone (`.removing`) is finished;
//! - a clone kept for a person (needs-human, frozen) goes after `retain_days`, never before;
//! - when the volume is fuller than `evict_above_percent`, the cache folders go first, then
//!   finished clones (neither live nor kept), oldest first, until the usage the facts predict is
//!   under the limit. What a removal frees is its measured size; the next tick measures again.

use std::collections::BTreeSet;

use crate::config::WorkspaceConfig;
use crate::effect::{Effect, WorktreeRemoval};
use crate::ids;
use crate::model::{RunId, Timestamp};
use crate::plan::{Decision, RunEntry};

/// The volume holding the workspace root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeUsage {
    pub total_bytes: u64,
    /// Space available to afk (what `df` shows as available).
    pub available_bytes: u64,
}

impl VolumeUsage {
    /// Used space in whole percent (rounded down) once `freed` bytes are gone; `None` for a
    /// volume of size 0.
    pub fn percent_after(&self, freed: u64) -> Option<u64> {
        if self.total_bytes == 0 {
            return None;
        }
        let used = self
            .total_bytes
            .saturating_sub(self.available_bytes)
            .saturating_sub(freed);
        Some(u64::try_from(u128::from(used) * 100 / u128::from(self.total_bytes)).unwrap_or(100))
    }
}

/// Whether a run's clone is kept for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retained {
    /// No marker: a finished clone (or a live one).
    No,
    /// Kept since this time.
    Since(Timestamp),
    /// A marker afk cannot read: kept, and reported.
    Unreadable(String),
}

/// A run's clone in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneFacts {
    /// Last modification of the clone's folder.
    pub modified: Option<Timestamp>,
    /// Space it takes, when measured (only when the volume is over the limit).
    pub bytes: Option<u64>,
}

/// Everything on the volume that belongs to one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunWorkspace {
    pub run: RunId,
    pub clone: Option<CloneFacts>,
    pub retained: Retained,
    /// A clone left half-built by a tick that died (`<run id>.partial`).
    pub partial: bool,
    /// A clone left half-removed by a tick that died (`<run id>.removing`).
    pub removing: bool,
}

/// A configured cache folder that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheDir {
    /// Absolute, inside the workspace root.
    pub path: String,
    pub bytes: Option<u64>,
}

/// What the workspace volume holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkspaceFacts {
    /// `None` when the usage could not be measured: nothing is evicted.
    pub volume: Option<VolumeUsage>,
    /// In a stable order (by path); eviction keeps it among clones of the same age.
    pub runs: Vec<RunWorkspace>,
    /// In the configured order.
    pub caches: Vec<CacheDir>,
}

/// What housekeeping decided.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Housekeeping {
    pub effects: Vec<Effect>,
    /// Runs whose clone is kept because afk cannot tell what it is, and why.
    pub problems: Vec<(RunId, String)>,
}

/// Whether the volume is fuller than `evict_above_percent`, so the tick should measure sizes.
pub fn over_limit(volume: Option<&VolumeUsage>, evict_above_percent: u8) -> bool {
    volume
        .and_then(|v| v.percent_after(0))
        .is_some_and(|p| p > u64::from(evict_above_percent))
}

/// The runs housekeeping must not touch this tick: the runs still live, and the runs this tick
/// concluded as needs-human or frozen (kept for a person; the tick marks them retained before
/// housekeeping, but a dry run writes no marker, and a marker that could not be written must
/// not make the clone evictable in the same tick).
pub fn untouchable(live: &BTreeSet<RunId>, runs: &[RunEntry]) -> BTreeSet<RunId> {
    let mut keep = live.clone();
    keep.extend(
        runs.iter()
            .filter(|r| matches!(r.decision, Decision::NeedsHuman | Decision::Frozen))
            .filter_map(|r| r.run.clone()),
    );
    keep
}

/// The housekeeping effects for `facts` (see the module documentation for the rules).
pub fn decide(
    facts: &WorkspaceFacts,
    live: &BTreeSet<RunId>,
    now: Timestamp,
    config: &WorkspaceConfig,
) -> Housekeeping {
    let root = config.root.to_string_lossy();
    let retain = chrono::TimeDelta::days(i64::from(config.retain_days));
    let remove = |run: &RunId, reason| Effect::RemoveWorktree {
        repo: run.repo().clone(),
        run: run.clone(),
        worktree: ids::worktree_path(&root, run),
        reason,
    };
    let mut out = Housekeeping::default();
    let mut freed: u64 = 0;
    let mut finished: Vec<&RunWorkspace> = Vec::new();
    for ws in facts.runs.iter().filter(|ws| !live.contains(&ws.run)) {
        let size = ws.clone.as_ref().and_then(|c| c.bytes).unwrap_or(0);
        if ws.removing {
            // Removes the clone, the partial clone and the marker too.
            out.effects
                .push(remove(&ws.run, WorktreeRemoval::Unfinished));
            freed = freed.saturating_add(size);
            continue;
        }
        if ws.partial {
            out.effects.push(Effect::RemovePartialClone {
                repo: ws.run.repo().clone(),
                run: ws.run.clone(),
                path: format!("{}.partial", ids::worktree_path(&root, &ws.run)),
            });
        }
        match &ws.retained {
            Retained::Since(at) if now - *at > retain => {
                out.effects.push(remove(&ws.run, WorktreeRemoval::Expired));
                freed = freed.saturating_add(size);
            }
            Retained::Since(_) => {}
            Retained::Unreadable(why) => out.problems.push((
                ws.run.clone(),
                format!(
                    "the run's clone is kept: its retained marker cannot be read ({why}); \
                     remove the marker to let housekeeping expire or evict the clone"
                ),
            )),
            Retained::No if ws.clone.is_some() => finished.push(ws),
            Retained::No => {}
        }
    }
    let Some(volume) = facts.volume else {
        return out;
    };
    let limit = u64::from(config.evict_above_percent);
    let over = |freed: u64| volume.percent_after(freed).is_some_and(|p| p > limit);
    if !over(freed) {
        return out;
    }
    for cache in &facts.caches {
        out.effects.push(Effect::RemoveCacheDir {
            path: cache.path.clone(),
        });
        freed = freed.saturating_add(cache.bytes.unwrap_or(0));
    }
    // Oldest first; a clone whose age is unknown counts as the oldest. The sort is stable, so
    // clones of the same age go in the facts' order.
    finished.sort_by_key(|ws| ws.clone.as_ref().and_then(|c| c.modified));
    for ws in finished {
        if !over(freed) {
            break;
        }
        out.effects.push(remove(&ws.run, WorktreeRemoval::Evicted));
        freed = freed.saturating_add(ws.clone.as_ref().and_then(|c| c.bytes).unwrap_or(0));
    }
    out
}

#[cfg(test)]
mod tests;
