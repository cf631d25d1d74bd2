//! Workspace housekeeping through the real `afk-watch`: its removals are effects in the plan,
//! a dry run shows them and leaves the volume alone, the tick applies them, and the next tick
//! has nothing left to do.

use std::path::{Path, PathBuf};

use afk_core::model::RunId;
use afk_sim::driver::Tick;
use serde_json::Value;

use crate::harness::{Harness, plan};

/// `(kind, run, reason)` of the plan's housekeeping effects.
fn housekeeping(plan: &Value) -> Vec<(String, String, String)> {
    let text = |e: &Value, key: &str| e[key].as_str().unwrap_or_default().to_owned();
    plan["effects"]
        .as_array()
        .expect("effects")
        .iter()
        .filter(|e| {
            matches!(
                e["kind"].as_str(),
                Some("remove-worktree" | "remove-partial-clone" | "remove-cache-dir")
            )
        })
        .map(|e| (text(e, "kind"), text(e, "run"), text(e, "reason")))
        .collect()
}

fn folder(path: &Path) {
    std::fs::create_dir_all(path.join(".git")).expect("folder");
    std::fs::write(path.join("file.txt"), "work\n").expect("file");
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

#[tokio::test(flavor = "multi_thread")]
async fn housekeeping_is_planned_shown_by_a_dry_run_and_applied_by_the_tick() {
    let h = Harness::new("landed").await;
    let (repo, _) = h.repo();
    let repo: afk_core::model::RepoName = repo.parse().expect("repo");
    let root = h.setup.dir.join("workspace");
    let place = |issue: u64| {
        let run = RunId::new(repo.clone(), issue, 1);
        let path = PathBuf::from(afk_core::ids::worktree_path(&root.to_string_lossy(), &run));
        (run, path)
    };
    // Left by ticks that died: a half-built clone and a half-removed one.
    let (partial_run, partial) = place(900);
    folder(&suffixed(&partial, ".partial"));
    let (removing_run, removing) = place(901);
    folder(&suffixed(&removing, ".removing"));
    // A clone kept for a person 30 days ago (retain_days is 14), and one kept yesterday.
    let now = h.world.sim.now();
    let (expired_run, expired) = place(902);
    folder(&expired);
    std::fs::write(
        suffixed(&expired, ".retained"),
        (now - chrono::TimeDelta::days(30)).to_rfc3339(),
    )
    .expect("marker");
    let (_, kept) = place(903);
    folder(&kept);
    std::fs::write(
        suffixed(&kept, ".retained"),
        (now - chrono::TimeDelta::days(1)).to_rfc3339(),
    )
    .expect("marker");

    let mut want = vec![
        (
            "remove-partial-clone".to_owned(),
            partial_run.to_string(),
            String::new(),
        ),
        (
            "remove-worktree".to_owned(),
            removing_run.to_string(),
            "unfinished".to_owned(),
        ),
        (
            "remove-worktree".to_owned(),
            expired_run.to_string(),
            "expired".to_owned(),
        ),
    ];
    want.sort();

    let dry = h.dry_run(Tick::Watch).await;
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    let mut planned = housekeeping(plan(&dry));
    planned.sort();
    assert_eq!(planned, want, "{}", dry.stdout);
    assert!(
        suffixed(&partial, ".partial").exists(),
        "a dry run removed something"
    );
    assert!(suffixed(&removing, ".removing").exists());
    assert!(expired.exists() && suffixed(&expired, ".retained").exists());

    let applied = h.tick(Tick::Watch).await;
    assert_eq!(applied.code, Some(0), "{}", applied.stderr);
    let mut done = housekeeping(plan(&applied));
    done.sort();
    assert_eq!(done, want);
    assert!(!suffixed(&partial, ".partial").exists());
    assert!(!suffixed(&removing, ".removing").exists());
    assert!(!expired.exists() && !suffixed(&expired, ".retained").exists());
    assert!(
        kept.exists(),
        "a clone kept for a person went before retain_days"
    );
    assert!(
        applied.stderr.contains("remove-partial-clone"),
        "each effect is logged: {}",
        applied.stderr
    );

    let quiet = h.tick(Tick::Watch).await;
    assert_eq!(quiet.code, Some(0), "{}", quiet.stderr);
    assert!(housekeeping(plan(&quiet)).is_empty(), "{}", quiet.stdout);
}
