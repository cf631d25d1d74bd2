//! Git workspaces against real repositories: a bare "remote" in a temp dir, real `git`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use afk_core::config::WorkspaceConfig;
use afk_core::effect::{Effect, WorktreeRemoval};
use afk_core::model::{RepoName, RunId, Timestamp};
use afk_remotes::workspace::Workspaces;

/// One housekeeping pass as the watch tick runs it: mirror upkeep, the volume's facts, the
/// core's decision, then each effect applied in order. Returns the effects.
async fn housekeeping(
    ws: &Workspaces,
    live: &BTreeSet<RunId>,
    now: Timestamp,
    retain_days: u32,
    evict_above_percent: u8,
    cache_dirs: &[PathBuf],
) -> Result<Vec<Effect>, afk_remotes::error::RemoteError> {
    ws.maintain_mirrors().await?;
    let sizes = afk_core::housekeeping::over_limit(ws.volume_usage().as_ref(), evict_above_percent);
    let facts = ws.facts(cache_dirs, sizes).await?;
    let config = WorkspaceConfig {
        root: ws.root().to_path_buf(),
        clone_url_template: String::new(),
        send_tracker_token: false,
        retain_days,
        evict_above_percent,
        cache_dirs: cache_dirs.to_vec(),
    };
    let decided = afk_core::housekeeping::decide(&facts, live, now, &config);
    for effect in &decided.effects {
        match effect {
            Effect::RemoveWorktree { run, .. } => ws.remove_worktree(run, &run.branch()).await?,
            Effect::RemovePartialClone { run, .. } => ws.remove_partial_clone(run).await?,
            Effect::RemoveCacheDir { path } => ws.remove_cache_dir(Path::new(path)).await?,
            other => panic!("housekeeping planned {}", other.kind()),
        }
    }
    Ok(decided.effects)
}

/// The runs whose clone the effects remove for `why`.
fn removed(effects: &[Effect], why: WorktreeRemoval) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::RemoveWorktree { run, reason, .. } if *reason == why => Some(run.to_string()),
            _ => None,
        })
        .collect()
}

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
async fn a_removal_cut_short_is_finished_by_the_next_housekeeping() {
    let f = fixture();
    let ws = f.workspaces();
    let run = RunId::new(f.repo.clone(), 8, 1);
    let path = ws
        .ensure_worktree(&run, &run.branch(), "main")
        .await
        .expect("worktree");
    ws.mark_retained(&run, chrono::Utc::now())
        .await
        .expect("mark");
    // The tick died after moving the clone aside and deleting part of it.
    let removing = PathBuf::from(format!("{}.removing", path.display()));
    std::fs::rename(&path, &removing).expect("move aside");
    std::fs::remove_file(removing.join("README.md")).expect("half deleted");
    let marker = PathBuf::from(format!("{}.retained", path.display()));
    assert!(marker.exists());

    let facts = ws.facts(&[], false).await.expect("facts");
    assert_eq!(facts.runs.len(), 1);
    assert!(facts.runs[0].removing && facts.runs[0].clone.is_none());
    let effects = housekeeping(&ws, &BTreeSet::new(), chrono::Utc::now(), 14, 100, &[])
        .await
        .expect("housekeeping");
    assert_eq!(
        removed(&effects, WorktreeRemoval::Unfinished),
        vec![run.to_string()]
    );
    assert!(!removing.exists() && !marker.exists() && !path.exists());
    assert!(ws.facts(&[], false).await.expect("facts").runs.is_empty());
}

#[tokio::test]
async fn the_facts_are_what_the_volume_holds() {
    use afk_core::housekeeping::Retained;
    let f = fixture();
    let ws = f.workspaces();
    let finished = RunId::new(f.repo.clone(), 1, 1);
    let kept = RunId::new(f.repo.clone(), 2, 1);
    for r in [&finished, &kept] {
        ws.ensure_worktree(r, &r.branch(), "main")
            .await
            .expect("worktree");
    }
    let at = chrono::DateTime::parse_from_rfc3339("2026-02-01T10:00:00Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    ws.mark_retained(&kept, at).await.expect("mark");
    let half = RunId::new(f.repo.clone(), 3, 1);
    std::fs::create_dir_all(format!("{}.partial", ws.worktree_path(&half).display()))
        .expect("partial");
    let garbled = RunId::new(f.repo.clone(), 4, 1);
    std::fs::create_dir_all(ws.worktree_path(&garbled)).expect("clone");
    std::fs::write(
        format!("{}.retained", ws.worktree_path(&garbled).display()),
        "yesterday",
    )
    .expect("marker");
    // Not afk's: another repo's folder name, a stray file, a symlink in a clone's place.
    std::fs::write(f.root.join("worktrees/o__r/notes.txt"), "x").expect("stray");
    let link = RunId::new(f.repo.clone(), 5, 1);
    std::os::unix::fs::symlink(f.root.join("cache"), ws.worktree_path(&link)).expect("symlink");
    let elsewhere = RunId::new("p/q".parse().expect("repo"), 1, 1);
    std::os::unix::fs::symlink(
        "/",
        f.root.join("worktrees/o__r").join(elsewhere.to_string()),
    )
    .expect("symlink");
    std::fs::create_dir_all(f.root.join("cache/npm")).expect("cache");
    std::fs::write(f.root.join("cache/npm/blob"), vec![7u8; 64 * 1024]).expect("blob");

    let caches = [
        PathBuf::from("cache/npm"),
        PathBuf::from("cache/missing"),
        PathBuf::from("/etc"),
    ];
    let facts = ws.facts(&caches, true).await.expect("facts");
    let volume = facts.volume.expect("a measured volume");
    assert!(volume.total_bytes > 0 && volume.available_bytes <= volume.total_bytes);
    let by_run = |r: &RunId| facts.runs.iter().find(|w| &w.run == r).expect("listed");
    assert_eq!(facts.runs.len(), 4, "{:?}", facts.runs);
    let clone = by_run(&finished).clone.as_ref().expect("a clone");
    assert!(clone.modified.is_some());
    assert!(clone.bytes.is_some_and(|b| b > 0));
    assert_eq!(by_run(&finished).retained, Retained::No);
    assert_eq!(by_run(&kept).retained, Retained::Since(at));
    assert!(by_run(&half).partial && by_run(&half).clone.is_none());
    assert!(
        matches!(&by_run(&garbled).retained, Retained::Unreadable(why) if why.contains("RFC 3339"))
    );
    assert_eq!(
        facts.caches.len(),
        1,
        "only existing caches inside the root"
    );
    assert!(facts.caches[0].path.ends_with("cache/npm"));
    assert!(facts.caches[0].bytes.is_some_and(|b| b >= 64 * 1024));
    // Without sizes nothing is walked.
    let quick = ws.facts(&caches, false).await.expect("facts");
    assert!(quick.caches[0].bytes.is_none());
    assert!(
        quick
            .runs
            .iter()
            .all(|w| w.clone.as_ref().is_none_or(|c| c.bytes.is_none()))
    );
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
    let effects = housekeeping(&ws, &live_set, now, 14, 100, &[])
        .await
        .expect("housekeeping");
    assert_eq!(
        removed(&effects, WorktreeRemoval::Expired),
        vec![old.to_string()]
    );
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
    let effects = housekeeping(&ws, &live_set, now, 14, 0, &[PathBuf::from("cache/cargo")])
        .await
        .expect("housekeeping");
    assert!(!cache.exists());
    assert!(
        removed(&effects, WorktreeRemoval::Evicted).contains(&finished.to_string()),
        "{effects:?}"
    );
    assert!(ws.worktree_path(&live).exists());
    assert!(ws.worktree_path(&kept).exists());
    assert!(!ws.worktree_path(&finished).exists());
}

/// A `git` that logs each call (its arguments and whole environment) and then runs the real one.
fn logging_git(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let log = dir.join("git.log");
    let wrapper = dir.join("git-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n{{ echo \"CALL $*\"; env | sed 's/^/ENV /'; }} >> '{}'\nexec git \"$@\"\n",
            log.display()
        ),
    )
    .expect("wrapper");
    let mut perm = std::fs::metadata(&wrapper).expect("meta").permissions();
    perm.set_mode(0o755);
    std::fs::set_permissions(&wrapper, perm).expect("chmod");
    (wrapper, log)
}

/// The logged calls: (arguments, environment lines).
fn calls(log: &Path) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(log).expect("log");
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(args) = line.strip_prefix("CALL ") {
            out.push((args.to_owned(), Vec::new()));
        } else if let Some(env) = line.strip_prefix("ENV ")
            && let Some(last) = out.last_mut()
        {
            last.1.push(env.to_owned());
        }
    }
    out
}

#[tokio::test]
async fn the_credential_goes_only_to_remote_commands_and_git_sees_a_cleared_environment() {
    let f = fixture();
    let tmp = f.root.parent().expect("parent").to_path_buf();
    let token = tmp.join("token");
    std::fs::write(&token, "s3cr3t-token\n").expect("token");
    let (wrapper, log) = logging_git(&tmp);
    let template = format!("file://{}/{{repo}}.git", f.remotes.display());
    let ws = Workspaces::new(
        &f.root,
        &template,
        Some(afk_remotes::workspace::GitCredential::File(
            afk_remotes::http::SecretFile::new(&token),
        )),
    )
    .with_git(&wrapper, std::time::Duration::from_secs(60));
    let run = RunId::new(f.repo.clone(), 5, 1);
    ws.ensure_worktree(&run, &run.branch(), "main")
        .await
        .expect("worktree");
    housekeeping(&ws, &BTreeSet::new(), chrono::Utc::now(), 14, 100, &[])
        .await
        .expect("housekeeping");
    let calls = calls(&log);
    let remote = |args: &str| args.contains(" clone --bare ") || args.contains(" fetch ");
    assert!(calls.iter().any(|(a, _)| remote(a)), "{calls:?}");
    assert!(
        calls.iter().any(|(a, _)| a.contains(" checkout ")),
        "{calls:?}"
    );
    assert!(calls.iter().any(|(a, _)| a.contains(" gc ")), "{calls:?}");
    for (args, env) in &calls {
        let has = |line: &str| env.iter().any(|e| e == line);
        let credential = env.iter().any(|e| e.starts_with("GIT_CONFIG_"))
            && has("GIT_CONFIG_KEY_0=http.extraHeader");
        assert_eq!(
            credential,
            remote(args),
            "credential on {args:?}: {credential}"
        );
        assert!(!args.contains("s3cr3t"), "token in the arguments: {args}");
        assert!(has("GIT_CONFIG_NOSYSTEM=1"), "{args}: {env:?}");
        assert!(has("GIT_CONFIG_GLOBAL=/dev/null"), "{args}: {env:?}");
        assert!(has("GIT_TERMINAL_PROMPT=0"), "{args}: {env:?}");
        for e in env {
            let name = e.split('=').next().unwrap_or_default();
            let allowed = [
                "PATH", "HOME", "LC_ALL", "TMPDIR", "PWD", "SHLVL", "_", "OLDPWD",
            ]
            .contains(&name)
                || (name.starts_with("GIT_") && !name.starts_with("GIT_AUTHOR"))
                || name.starts_with("SSL_CERT_")
                || name.to_ascii_lowercase().ends_with("_proxy");
            assert!(allowed, "{args}: git inherited {name}");
        }
        assert!(
            args.starts_with("-c core.hooksPath=/dev/null -c core.fsmonitor=false "),
            "{args}"
        );
    }
}

#[tokio::test]
async fn a_run_clone_is_independent_of_the_mirror_and_points_at_the_real_repo() {
    use std::os::unix::fs::MetadataExt;
    let f = fixture();
    let ws = f.workspaces();
    let run = RunId::new(f.repo.clone(), 6, 1);
    let path = ws
        .ensure_worktree(&run, &run.branch(), "main")
        .await
        .expect("worktree");
    let mirror = ws.checkout_path(&f.repo);
    assert!(path.join(".git").is_dir(), "a clone with its own .git");
    assert_eq!(
        std::fs::canonicalize(path.join(git(&path, &["rev-parse", "--git-common-dir"]).trim()))
            .expect("common dir"),
        std::fs::canonicalize(path.join(".git")).expect(".git"),
        "the clone's common dir is its own"
    );
    assert!(!path.join(".git/objects/info/alternates").exists());
    assert_eq!(
        git(&path, &["remote", "get-url", "origin"]).trim(),
        format!("file://{}/o/r.git", f.remotes.display())
    );
    let config = std::fs::read_to_string(path.join(".git/config")).expect("config");
    assert!(
        !config.contains(&mirror.to_string_lossy().into_owned()),
        "{config}"
    );
    // No object file is shared (hard-linked) with the mirror.
    let mut stack = vec![path.join(".git/objects")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let entry = entry.expect("entry");
            let meta = entry.metadata().expect("meta");
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                assert_eq!(meta.nlink(), 1, "{} is shared", entry.path().display());
            }
        }
    }
    // The clone is the group's (T3's uid works in it); the mirror is afk's alone.
    use std::os::unix::fs::PermissionsExt;
    for p in [
        path.clone(),
        path.join("README.md"),
        path.join(".git/config"),
    ] {
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode();
        assert_eq!(mode & 0o060, 0o060, "{} mode {mode:o}", p.display());
    }
    for p in [
        mirror.clone(),
        mirror.join("config"),
        mirror.join("objects"),
    ] {
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode();
        assert_eq!(mode & 0o022, 0, "{} mode {mode:o}", p.display());
    }
    // What the agent writes in its clone stays there.
    std::fs::write(path.join(".git/hooks/post-checkout"), "#!/bin/sh\n").expect("hook");
    assert!(!mirror.join("hooks/post-checkout").exists());
}

#[tokio::test]
async fn a_retry_reads_the_clone_head_without_running_git() {
    let f = fixture();
    let ws = f.workspaces();
    let run = RunId::new(f.repo.clone(), 8, 1);
    let path = ws
        .ensure_worktree(&run, &run.branch(), "main")
        .await
        .expect("worktree");
    // The agent made the clone's config hostile; no git may run there again.
    std::fs::write(
        path.join(".git/config"),
        "[core]\n\tfsmonitor = /bin/false\n[include]\n\tpath = /nonexistent\n",
    )
    .expect("config");
    let no_git = ws
        .clone()
        .with_git("/nonexistent/git", std::time::Duration::from_secs(5));
    assert_eq!(
        no_git
            .ensure_worktree(&run, &run.branch(), "main")
            .await
            .expect("a retry needs no git"),
        path
    );
    std::fs::write(path.join(".git/HEAD"), "ref: refs/heads/elsewhere\n").expect("head");
    let err = no_git
        .ensure_worktree(&run, &run.branch(), "main")
        .await
        .expect_err("another branch");
    assert!(err.to_string().contains("instead of"), "{err}");
    std::fs::write(path.join(".git/HEAD"), "0123456789abcdef\n").expect("detached");
    let err = no_git
        .ensure_worktree(&run, &run.branch(), "main")
        .await
        .expect_err("detached");
    assert!(err.to_string().contains("a person should look"), "{err}");
}

#[tokio::test]
async fn removal_never_follows_a_symlink() {
    let f = fixture();
    let ws = f.workspaces();
    let outside = f.root.parent().expect("parent").join("precious");
    std::fs::create_dir_all(&outside).expect("outside");
    std::fs::write(outside.join("keep"), "x").expect("keep");

    // A symlink inside the clone.
    let run = RunId::new(f.repo.clone(), 9, 1);
    let path = ws
        .ensure_worktree(&run, &run.branch(), "main")
        .await
        .expect("worktree");
    std::os::unix::fs::symlink(&outside, path.join("link")).expect("symlink");
    ws.remove_worktree(&run, &run.branch())
        .await
        .expect("remove");
    assert!(!path.exists());
    assert!(outside.join("keep").exists());

    // The clone itself swapped for a symlink: refused by a retry, removed as a link.
    let run = RunId::new(f.repo.clone(), 10, 1);
    let path = ws.worktree_path(&run);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("parent");
    std::os::unix::fs::symlink(&outside, &path).expect("symlink");
    let err = ws
        .ensure_worktree(&run, &run.branch(), "main")
        .await
        .expect_err("a symlink is not a clone");
    assert!(err.to_string().contains("symlink"), "{err}");
    ws.remove_worktree(&run, &run.branch())
        .await
        .expect("remove");
    assert!(std::fs::symlink_metadata(&path).is_err());
    assert!(outside.join("keep").exists());

    // A symlink planted where the retained marker goes is replaced, not written through.
    let run = RunId::new(f.repo.clone(), 11, 1);
    ws.ensure_worktree(&run, &run.branch(), "main")
        .await
        .expect("worktree");
    let marker = PathBuf::from(format!("{}.retained", ws.worktree_path(&run).display()));
    std::os::unix::fs::symlink(outside.join("keep"), &marker).expect("symlink");
    ws.mark_retained(&run, chrono::Utc::now())
        .await
        .expect("mark");
    assert_eq!(
        std::fs::read_to_string(outside.join("keep")).expect("keep"),
        "x"
    );
    assert!(
        !std::fs::symlink_metadata(&marker)
            .expect("marker")
            .is_symlink()
    );
}

#[tokio::test]
async fn a_half_made_clone_or_mirror_is_recovered_by_the_next_attempt() {
    let f = fixture();
    let ws = f.workspaces();
    let run = RunId::new(f.repo.clone(), 12, 1);
    let path = ws.worktree_path(&run);
    // A tick killed mid-clone left partial folders, and a mirror that is not one.
    let partial = PathBuf::from(format!("{}.partial", path.display()));
    std::fs::create_dir_all(partial.join(".git")).expect("partial");
    std::fs::write(partial.join(".git/HEAD"), "garbage").expect("junk");
    let mirror = ws.checkout_path(&f.repo);
    std::fs::create_dir_all(&mirror).expect("mirror");
    std::fs::write(mirror.join("half"), "junk").expect("junk");
    let mirror_partial = PathBuf::from(format!("{}.partial", mirror.display()));
    std::fs::create_dir_all(&mirror_partial).expect("mirror partial");

    let made = ws
        .ensure_worktree(&run, &run.branch(), "main")
        .await
        .expect("recovered");
    assert_eq!(made, path);
    assert!(path.join("README.md").exists());
    assert!(!partial.exists() && !mirror_partial.exists());
    assert!(mirror.join("HEAD").is_file() && !mirror.join("half").exists());

    // Housekeeping removes the partial clone of a run that is no longer live.
    let gone = RunId::new(f.repo.clone(), 13, 1);
    let gone_partial = PathBuf::from(format!("{}.partial", ws.worktree_path(&gone).display()));
    std::fs::create_dir_all(&gone_partial).expect("partial");
    housekeeping(&ws, &BTreeSet::new(), chrono::Utc::now(), 14, 100, &[])
        .await
        .expect("housekeeping");
    assert!(!gone_partial.exists());
    assert!(path.exists(), "a finished clone stays until eviction");
}

#[tokio::test]
async fn a_tampered_mirror_is_never_used_as_it_is() {
    let f = fixture();
    let ws = f.workspaces();
    let mirror = ws.prepare_checkout(&f.repo).await.expect("mirror");
    let marker = f.root.parent().expect("parent").join("ran");
    let script = f.root.parent().expect("parent").join("evil.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\n", marker.display()),
    )
    .expect("script");
    {
        use std::os::unix::fs::PermissionsExt;
        let mut perm = std::fs::metadata(&script).expect("meta").permissions();
        perm.set_mode(0o755);
        std::fs::set_permissions(&script, perm).expect("chmod");
    }
    let mut config = std::fs::read_to_string(mirror.join("config")).expect("config");
    config.push_str(&format!(
        "[core]\n\tfsmonitor = {0}\n\thooksPath = {1}\n[filter \"evil\"]\n\tsmudge = {0}\n",
        script.display(),
        mirror.join("hooks").display()
    ));
    std::fs::write(mirror.join("config"), config).expect("config");
    std::fs::create_dir_all(mirror.join("hooks")).expect("hooks");
    std::fs::copy(&script, mirror.join("hooks/reference-transaction")).expect("hook");
    std::fs::create_dir_all(mirror.join("objects/info")).expect("info");
    std::fs::write(mirror.join("objects/info/alternates"), "/nonexistent\n").expect("alt");

    f.push_to_remote("next.txt");
    let run = RunId::new(f.repo.clone(), 14, 1);
    ws.ensure_worktree(&run, &run.branch(), "main")
        .await
        .expect("worktree");
    assert!(!marker.exists(), "a planted program ran");
    let config = std::fs::read_to_string(mirror.join("config")).expect("config");
    assert!(
        !config.contains("evil") && !config.contains("fsmonitor"),
        "{config}"
    );
    assert!(!mirror.join("hooks").exists());
    assert!(!mirror.join("objects/info/alternates").exists());
    assert!(ws.worktree_path(&run).join("next.txt").exists());

    // Hooks alone (config untouched) are removed before git runs there.
    std::fs::create_dir_all(mirror.join("hooks")).expect("hooks");
    for hook in ["reference-transaction", "pre-auto-gc", "post-checkout"] {
        std::fs::copy(&script, mirror.join("hooks").join(hook)).expect("hook");
    }
    let run = RunId::new(f.repo.clone(), 15, 1);
    ws.ensure_worktree(&run, &run.branch(), "main")
        .await
        .expect("worktree");
    housekeeping(&ws, &BTreeSet::new(), chrono::Utc::now(), 14, 100, &[])
        .await
        .expect("housekeeping");
    assert!(!marker.exists(), "a planted hook ran");
    assert!(!mirror.join("hooks").exists());
}

#[tokio::test]
async fn a_changed_clone_url_gives_a_fresh_mirror_of_the_new_repo() {
    let f = fixture();
    let ws = f.workspaces();
    ws.prepare_checkout(&f.repo).await.expect("mirror");
    let moved = f.root.parent().expect("parent").join("moved");
    std::fs::create_dir_all(moved.join("o")).expect("mkdir");
    let out = Command::new("cp")
        .args(["-r"])
        .arg(f.remotes.join("o/r.git"))
        .arg(moved.join("o/r.git"))
        .output()
        .expect("cp");
    assert!(out.status.success());
    let template = format!("file://{}/{{repo}}.git", moved.display());
    let ws2 = Workspaces::new(&f.root, &template, None);
    let mirror = ws2.prepare_checkout(&f.repo).await.expect("mirror again");
    let config = std::fs::read_to_string(mirror.join("config")).expect("config");
    assert!(config.contains(&moved.display().to_string()), "{config}");
    assert!(
        !config.contains(&f.remotes.display().to_string()),
        "{config}"
    );
}
