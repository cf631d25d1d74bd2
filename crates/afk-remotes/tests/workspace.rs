//! Git workspaces against real repositories: a bare "remote" in a temp dir, real `git`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use afk_core::model::{RepoName, RunId};
use afk_remotes::workspace::Workspaces;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Fixture {
    _tmp: tempfile::TempDir,
    remotes: PathBuf,
    root: PathBuf,
    repo: RepoName,
}

/// A bare remote `o/r.git` with one commit on `main`, and an empty workspace root.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let remotes = tmp.path().join("remotes");
    let root = tmp.path().join("ws");
    std::fs::create_dir_all(remotes.join("o")).expect("mkdir");
    let bare = remotes.join("o/r.git");
    git(
        tmp.path(),
        &[
            "init",
            "--quiet",
            "--bare",
            "-b",
            "main",
            bare.to_str().expect("utf8"),
        ],
    );
    let seed = tmp.path().join("seed");
    git(
        tmp.path(),
        &[
            "clone",
            "--quiet",
            bare.to_str().expect("utf8"),
            seed.to_str().expect("utf8"),
        ],
    );
    std::fs::write(seed.join("README.md"), "hello\n").expect("write");
    git(&seed, &["checkout", "--quiet", "-b", "main"]);
    git(&seed, &["add", "."]);
    git(&seed, &["commit", "--quiet", "-m", "initial"]);
    git(&seed, &["push", "--quiet", "origin", "main"]);
    Fixture {
        remotes,
        root,
        repo: "o/r".parse().expect("repo"),
        _tmp: tmp,
    }
}

impl Fixture {
    fn workspaces(&self) -> Workspaces {
        let template = format!("file://{}/{{repo}}.git", self.remotes.display());
        Workspaces::new(&self.root, &template, None)
    }
    fn push_to_remote(&self, file: &str) -> String {
        let work = self
            .root
            .parent()
            .expect("parent")
            .join(format!("pusher-{file}"));
        git(
            self.root.parent().expect("parent"),
            &[
                "clone",
                "--quiet",
                self.remotes.join("o/r.git").to_str().expect("utf8"),
                work.to_str().expect("utf8"),
            ],
        );
        std::fs::write(work.join(file), "x\n").expect("write");
        git(&work, &["add", "."]);
        git(&work, &["commit", "--quiet", "-m", &format!("add {file}")]);
        git(&work, &["push", "--quiet", "origin", "HEAD:main"]);
        git(&work, &["rev-parse", "HEAD"]).trim().to_owned()
    }
}

#[tokio::test]
async fn worktree_is_created_from_the_fresh_default_branch_and_is_idempotent() {
    let f = fixture();
    let ws = f.workspaces();
    let run = RunId::new(f.repo.clone(), 42, 1);
    let path = ws
        .ensure_worktree(&run, &run.branch(), "main")
        .await
        .expect("worktree");
    assert_eq!(path, f.root.join("worktrees/o__r/o__r-42-1"));
    assert!(path.join("README.md").exists());
    assert_eq!(
        git(&path, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        run.branch()
    );
    assert_eq!(ws.default_branch(&f.repo).await.expect("default"), "main");

    // The agent commits in the worktree; a retry of the dispatch keeps that work.
    std::fs::write(path.join("work.txt"), "agent\n").expect("write");
    let again = ws
        .ensure_worktree(&run, &run.branch(), "main")
        .await
        .expect("again");
    assert_eq!(again, path);
    assert!(
        path.join("work.txt").exists(),
        "a retry must not wipe the worktree"
    );

    // A new run starts from what was pushed meanwhile (fetch before worktree add).
    let sha = f.push_to_remote("later.txt");
    let run2 = RunId::new(f.repo.clone(), 43, 1);
    let path2 = ws
        .ensure_worktree(&run2, &run2.branch(), "main")
        .await
        .expect("worktree 2");
    assert_eq!(git(&path2, &["rev-parse", "HEAD"]).trim(), sha);
    assert!(path2.join("later.txt").exists());
}

#[tokio::test]
async fn removing_a_worktree_deletes_it_and_its_branch_and_is_idempotent() {
    let f = fixture();
    let ws = f.workspaces();
    let run = RunId::new(f.repo.clone(), 7, 2);
    let path = ws
        .ensure_worktree(&run, &run.branch(), "main")
        .await
        .expect("worktree");
    ws.remove_worktree(&run, &run.branch())
        .await
        .expect("remove");
    assert!(!path.exists());
    let branches = git(&ws.checkout_path(&f.repo), &["branch", "--list"]);
    assert!(!branches.contains(&run.branch()), "{branches}");
    ws.remove_worktree(&run, &run.branch())
        .await
        .expect("remove twice is fine");
}

#[tokio::test]
async fn a_missing_repo_is_an_error_naming_git_and_the_step() {
    let f = fixture();
    let ws = f.workspaces();
    let run = RunId::new("o/missing".parse().expect("repo"), 1, 1);
    let err = ws
        .ensure_worktree(&run, &run.branch(), "main")
        .await
        .expect_err("no such repo");
    let msg = err.to_string();
    assert!(msg.starts_with("git: git clone"), "{msg}");
}

#[tokio::test]
async fn housekeeping_expires_retained_worktrees_and_never_touches_live_ones() {
    let f = fixture();
    let ws = f.workspaces();
    let live = RunId::new(f.repo.clone(), 1, 1);
    let kept = RunId::new(f.repo.clone(), 2, 1);
    let old = RunId::new(f.repo.clone(), 3, 1);
    for r in [&live, &kept, &old] {
        ws.ensure_worktree(r, &r.branch(), "main")
            .await
            .expect("worktree");
    }
    let now = chrono::Utc::now();
    ws.mark_retained(&kept, now - chrono::TimeDelta::days(2))
        .await
        .expect("mark");
    ws.mark_retained(&old, now - chrono::TimeDelta::days(20))
        .await
        .expect("mark");
    let live_set: BTreeSet<RunId> = [live.clone()].into_iter().collect();
    let report = ws
        .housekeeping(&live_set, now, 14, 100, &[])
        .await
        .expect("housekeeping");
    assert_eq!(report.expired, vec![old.to_string()]);
    assert!(ws.worktree_path(&live).exists());
    assert!(ws.worktree_path(&kept).exists());
    assert!(!ws.worktree_path(&old).exists());
}

#[tokio::test]
async fn eviction_removes_caches_and_finished_worktrees_but_never_retained_or_live() {
    let f = fixture();
    let ws = f.workspaces();
    let live = RunId::new(f.repo.clone(), 1, 1);
    let kept = RunId::new(f.repo.clone(), 2, 1);
    let finished = RunId::new(f.repo.clone(), 3, 1);
    for r in [&live, &kept, &finished] {
        ws.ensure_worktree(r, &r.branch(), "main")
            .await
            .expect("worktree");
    }
    let now = chrono::Utc::now();
    ws.mark_retained(&kept, now).await.expect("mark");
    let cache = f.root.join("cache/cargo");
    std::fs::create_dir_all(&cache).expect("cache");
    let live_set: BTreeSet<RunId> = [live.clone()].into_iter().collect();
    // A threshold of 0 % means "always over": everything evictable goes.
    let report = ws
        .housekeeping(&live_set, now, 14, 0, &[PathBuf::from("cache/cargo")])
        .await
        .expect("housekeeping");
    assert!(!cache.exists());
    assert!(report.evicted.contains(&finished.to_string()), "{report:?}");
    assert!(ws.worktree_path(&live).exists());
    assert!(ws.worktree_path(&kept).exists());
    assert!(!ws.worktree_path(&finished).exists());
}
