//! Workspace housekeeping at the end of the watch tick: the workspace volume's facts, the
//! core's decision (`afk_core::housekeeping::decide`), the effects added to the plan, and, unless
//! this is a dry run, mirror upkeep and the effects applied in order.

use std::collections::BTreeSet;

use afk_core::effect::Effect;
use afk_core::model::RunId;
use afk_core::plan::{ErrorEntry, Plan};

use crate::tick::{Tick, error};

/// Decides housekeeping (never touching a run in `live` or one this tick concluded for a
/// person, as `plan.runs` shows) and applies it (dry run: only adds the effects to the plan). A failed effect stops the pass; the next tick gathers the
/// facts again and finishes what is left.
pub async fn run(tick: &Tick<'_>, live: &BTreeSet<RunId>, plan: &mut Plan) {
    let ws_config = &tick.config.workspace;
    let workspaces = &tick.remotes.workspaces;
    if !tick.dry_run
        && let Err(e) = workspaces.maintain_mirrors().await
    {
        plan.errors
            .push(error(None, None, format!("workspace housekeeping: {e}")));
    }
    let volume = workspaces.volume_usage();
    let sizes = afk_core::housekeeping::over_limit(volume.as_ref(), ws_config.evict_above_percent);
    let facts = match workspaces.facts(&ws_config.cache_dirs, sizes).await {
        Ok(f) => f,
        Err(e) => {
            plan.errors
                .push(error(None, None, format!("workspace housekeeping: {e}")));
            return;
        }
    };
    let keep = afk_core::housekeeping::untouchable(live, &plan.runs);
    let decided = afk_core::housekeeping::decide(&facts, &keep, tick.now, ws_config);
    for (run, problem) in decided.problems {
        plan.errors.push(ErrorEntry {
            public: None,
            repo: Some(run.repo().clone()),
            issue: Some(run.issue()),
            run: Some(run),
            error: format!("workspace housekeeping: {problem}"),
        });
    }
    plan.effects.extend(decided.effects.iter().cloned());
    let mut applied = 0usize;
    if !tick.dry_run {
        let applier = tick.applier();
        for effect in &decided.effects {
            let (repo, run) = where_(effect);
            let (repo, run) = (repo.as_deref(), run.as_deref());
            if let Err(e) = applier.apply(effect, &mut None).await {
                tracing::warn!(repo, run, effect = effect.kind(), error = %e, "effect failed");
                plan.errors.push(ErrorEntry {
                    public: None,
                    repo: effect.repo().cloned(),
                    issue: None,
                    run: run_of(effect),
                    error: format!("workspace housekeeping: {} failed: {e}", effect.kind()),
                });
                break;
            }
            tracing::info!(repo, run, effect = effect.kind(), "applied");
            applied += 1;
        }
    }
    tracing::info!(
        planned = decided.effects.len(),
        applied,
        usage_percent = workspaces.volume_usage().and_then(|v| v.percent_after(0)),
        "housekeeping"
    );
}

fn run_of(effect: &Effect) -> Option<RunId> {
    match effect {
        Effect::RemoveWorktree { run, .. } | Effect::RemovePartialClone { run, .. } => {
            Some(run.clone())
        }
        _ => None,
    }
}

/// The repo and run of an effect as log fields (absent when it has none).
fn where_(effect: &Effect) -> (Option<String>, Option<String>) {
    (
        effect.repo().map(ToString::to_string),
        run_of(effect).map(|r| r.to_string()),
    )
}
