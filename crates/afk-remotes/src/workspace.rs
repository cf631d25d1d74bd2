//! Git workspaces: one persistent checkout per enrolled repo and one worktree per run,
//! under a root shared with T3's pod, driven through the real `git` binary.
//!
//! Every path is derived from a validated `RepoName`/`RunId` and checked to stay inside the root.
//! Git always runs as a child process with an argument vector (never a shell string), with
//! prompts disabled and, when a credential is configured, an `http.extraHeader` passed through
//! the environment so the token is in neither the argument list nor `.git/config`.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use afk_core::ids;
use afk_core::model::{RepoName, RunId, Timestamp};
use base64::Engine;

use crate::error::{ErrorKind, RemoteError, Result};
use crate::http::SecretFile;

const REMOTE: &str = "git";
/// Suffix of the marker file that says a worktree is kept for a person (needs-human/frozen).
const RETAINED_SUFFIX: &str = ".retained";

/// The workspace root and how to reach the repos.
#[derive(Debug, Clone)]
pub struct Workspaces {
    root: PathBuf,
    clone_url_template: String,
    credential: Option<SecretFile>,
    git: PathBuf,
    timeout: Duration,
}

/// What a housekeeping pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Housekeeping {
    /// Retained worktrees past `retain_days`, removed.
    pub expired: Vec<String>,
    /// Worktrees or cache folders removed to bring the volume under the threshold.
    pub evicted: Vec<String>,
    /// Volume usage in percent after the pass, when it could be measured.
    pub usage_percent: Option<u8>,
}

/// A worktree found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FoundWorktree {
    run: RunId,
    path: PathBuf,
    retained_at: Option<Timestamp>,
    modified: Option<Timestamp>,
}

impl Workspaces {
    /// `root` must be absolute (config validation guarantees it).
    pub fn new(
        root: impl Into<PathBuf>,
        clone_url_template: &str,
        credential: Option<SecretFile>,
    ) -> Workspaces {
        Workspaces {
            root: root.into(),
            clone_url_template: clone_url_template.to_owned(),
            credential,
            git: PathBuf::from("git"),
            timeout: Duration::from_secs(600),
        }
    }

    /// Uses another git binary (tests) or timeout.
    pub fn with_git(mut self, git: impl Into<PathBuf>, timeout: Duration) -> Workspaces {
        self.git = git.into();
        self.timeout = timeout;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `repos/<owner>__<name>` under the root.
    pub fn checkout_path(&self, repo: &RepoName) -> PathBuf {
        PathBuf::from(ids::checkout_path(&self.root_str(), repo))
    }

    /// `worktrees/<owner>__<name>/<run id>` under the root.
    pub fn worktree_path(&self, run: &RunId) -> PathBuf {
        PathBuf::from(ids::worktree_path(&self.root_str(), run))
    }

    fn root_str(&self) -> String {
        self.root.to_string_lossy().into_owned()
    }

    fn clone_url(&self, repo: &RepoName) -> String {
        self.clone_url_template.replace("{repo}", &repo.to_string())
    }

    /// Makes sure the repo's persistent checkout exists and is fresh: clones it the first time,
    /// then fetches (with prune) every time. Returns the checkout path.
    pub async fn prepare_checkout(&self, repo: &RepoName) -> Result<PathBuf> {
        let path = self.checkout_path(repo);
        self.check_inside(&path)?;
        let url = self.clone_url(repo);
        if path.join(".git").exists() {
            let origin = self
                .git_out(Some(&path), &["remote", "get-url", "origin"])
                .await?;
            if origin.trim() != url {
                return Err(local(format!(
                    "the checkout {} points at a different origin than {repo}; move it away or fix clone_url_template",
                    path.display()
                )));
            }
        } else {
            if path.exists() {
                // A clone that died half-way: start again.
                remove_dir(&path).await?;
            }
            let parent = path.parent().unwrap_or(&self.root).to_path_buf();
            make_dir(&parent).await?;
            let target = path.to_string_lossy().into_owned();
            self.git_out(None, &["clone", "--no-checkout", "--", &url, &target])
                .await?;
        }
        self.git_out(Some(&path), &["fetch", "--prune", "origin"])
            .await?;
        Ok(path)
    }

    /// The remote's default branch as the checkout sees it (`origin/HEAD`).
    pub async fn default_branch(&self, repo: &RepoName) -> Result<String> {
        let path = self.checkout_path(repo);
        let head = self
            .git_out(
                Some(&path),
                &["symbolic-ref", "--short", "refs/remotes/origin/HEAD"],
            )
            .await?;
        Ok(head.trim().trim_start_matches("origin/").to_owned())
    }

    /// Makes sure the run's worktree exists on `branch`, created from the freshly fetched
    /// `origin/<default_branch>`. Idempotent: a worktree already there on that branch is kept
    /// as it is (a retry after a crash finds the same worktree).
    pub async fn ensure_worktree(
        &self,
        run: &RunId,
        branch: &str,
        default_branch: &str,
    ) -> Result<PathBuf> {
        check_ref_name(branch)?;
        check_ref_name(default_branch)?;
        let checkout = self.prepare_checkout(run.repo()).await?;
        let path = self.worktree_path(run);
        self.check_inside(&path)?;
        if path.join(".git").exists() {
            let current = self
                .git_out(Some(&path), &["rev-parse", "--abbrev-ref", "HEAD"])
                .await?;
            if current.trim() == branch {
                return Ok(path);
            }
            return Err(local(format!(
                "the worktree {} is on branch {} instead of {branch}; a person should look before afk touches it",
                path.display(),
                current.trim()
            )));
        }
        if path.exists() {
            remove_dir(&path).await?;
        }
        self.git_out(Some(&checkout), &["worktree", "prune"])
            .await?;
        make_dir(path.parent().unwrap_or(&self.root)).await?;
        let target = path.to_string_lossy().into_owned();
        let start = format!("origin/{default_branch}");
        self.git_out(
            Some(&checkout),
            &["worktree", "add", "-B", branch, "--", &target, &start],
        )
        .await?;
        Ok(path)
    }

    /// Removes a finished run's worktree and its local branch (the work is on the default
    /// branch). Idempotent.
    pub async fn remove_worktree(&self, run: &RunId, branch: &str) -> Result<()> {
        check_ref_name(branch)?;
        let checkout = self.checkout_path(run.repo());
        let path = self.worktree_path(run);
        self.check_inside(&path)?;
        if checkout.join(".git").exists() {
            if path.exists() {
                let target = path.to_string_lossy().into_owned();
                self.git_out(
                    Some(&checkout),
                    &["worktree", "remove", "--force", "--", &target],
                )
                .await?;
            }
            self.git_out(Some(&checkout), &["worktree", "prune"])
                .await?;
            let exists = self
                .git_status(
                    Some(&checkout),
                    &[
                        "rev-parse",
                        "--verify",
                        "--quiet",
                        &format!("refs/heads/{branch}"),
                    ],
                )
                .await?;
            if exists {
                self.git_out(Some(&checkout), &["branch", "-D", "--", branch])
                    .await?;
            }
        } else if path.exists() {
            remove_dir(&path).await?;
        }
        let _ = tokio::fs::remove_file(self.retained_marker(run)).await;
        Ok(())
    }

    /// Marks a run's worktree as kept for a person (needs-human/frozen) since `at`; it is
    /// removed after `retain_days` and never evicted before.
    pub async fn mark_retained(&self, run: &RunId, at: Timestamp) -> Result<()> {
        let marker = self.retained_marker(run);
        self.check_inside(&marker)?;
        make_dir(marker.parent().unwrap_or(&self.root)).await?;
        tokio::fs::write(&marker, at.to_rfc3339())
            .await
            .map_err(|e| local(format!("cannot write {}: {e}", marker.display())))
    }

    fn retained_marker(&self, run: &RunId) -> PathBuf {
        let mut p = self.worktree_path(run).into_os_string();
        p.push(RETAINED_SUFFIX);
        PathBuf::from(p)
    }

    /// Housekeeping: `git worktree prune` and `git gc --auto` in every checkout; removes
    /// retained worktrees older than `retain_days`; when the volume is fuller than
    /// `evict_above_percent`, empties the cache folders and then removes the oldest finished
    /// worktrees (neither live nor retained) until it is under the threshold. Worktrees of
    /// `live` runs are never touched.
    pub async fn housekeeping(
        &self,
        live: &BTreeSet<RunId>,
        now: Timestamp,
        retain_days: u32,
        evict_above_percent: u8,
        cache_dirs: &[PathBuf],
    ) -> Result<Housekeeping> {
        let mut report = Housekeeping::default();
        for checkout in self.checkouts().await? {
            self.git_out(Some(&checkout), &["worktree", "prune"])
                .await?;
            self.git_out(Some(&checkout), &["gc", "--auto", "--quiet"])
                .await?;
        }
        let retain = chrono::TimeDelta::days(i64::from(retain_days));
        let mut finished = Vec::new();
        for wt in self.worktrees().await? {
            if live.contains(&wt.run) {
                continue;
            }
            match wt.retained_at {
                Some(at) if now - at > retain => {
                    self.remove_found(&wt).await?;
                    report.expired.push(wt.run.to_string());
                }
                Some(_) => {}
                None => finished.push(wt),
            }
        }
        let mut usage = usage_percent(&self.root);
        if usage.is_some_and(|u| u > evict_above_percent) {
            for dir in cache_dirs {
                let dir = if dir.is_absolute() {
                    dir.clone()
                } else {
                    self.root.join(dir)
                };
                if self.check_inside(&dir).is_ok() && dir.exists() {
                    remove_dir(&dir).await?;
                    report.evicted.push(dir.to_string_lossy().into_owned());
                }
            }
            usage = usage_percent(&self.root);
            finished.sort_by_key(|w| w.modified);
            for wt in finished {
                if usage.is_none_or(|u| u <= evict_above_percent) {
                    break;
                }
                self.remove_found(&wt).await?;
                report.evicted.push(wt.run.to_string());
                usage = usage_percent(&self.root);
            }
        }
        report.usage_percent = usage;
        Ok(report)
    }

    async fn remove_found(&self, wt: &FoundWorktree) -> Result<()> {
        self.remove_worktree(&wt.run, &wt.run.branch()).await
    }

    async fn checkouts(&self) -> Result<Vec<PathBuf>> {
        let dir = self.root.join("repos");
        let mut out = Vec::new();
        for (name, path) in list_dir(&dir).await? {
            if RepoName::from_slug(&name).is_ok() && path.join(".git").exists() {
                out.push(path);
            }
        }
        Ok(out)
    }

    async fn worktrees(&self) -> Result<Vec<FoundWorktree>> {
        let mut out = Vec::new();
        for (slug, repo_dir) in list_dir(&self.root.join("worktrees")).await? {
            if RepoName::from_slug(&slug).is_err() {
                continue;
            }
            for (name, path) in list_dir(&repo_dir).await? {
                let Ok(run) = name.parse::<RunId>() else {
                    continue;
                };
                if !path.is_dir() || run.repo().slug() != slug {
                    continue;
                }
                let retained_at = tokio::fs::read_to_string(self.retained_marker(&run))
                    .await
                    .ok()
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s.trim()).ok())
                    .map(|t| t.with_timezone(&chrono::Utc));
                let modified = tokio::fs::metadata(&path)
                    .await
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .map(Timestamp::from);
                out.push(FoundWorktree {
                    run,
                    path,
                    retained_at,
                    modified,
                });
            }
        }
        Ok(out)
    }

    /// Refuses any path that is not strictly below the root (defence in depth: names are
    /// validated already).
    fn check_inside(&self, path: &Path) -> Result<()> {
        let rel = path.strip_prefix(&self.root).map_err(|_| {
            local(format!(
                "refusing to touch {} outside the workspace root",
                path.display()
            ))
        })?;
        let ok = rel.components().count() > 0
            && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if ok {
            Ok(())
        } else {
            Err(local(format!(
                "refusing to touch {}: not strictly inside the workspace root",
                path.display()
            )))
        }
    }

    fn command(&self, dir: Option<&Path>, args: &[&str]) -> Result<tokio::process::Command> {
        let mut cmd = tokio::process::Command::new(&self.git);
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        cmd.args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "true")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null());
        if let Some(cred) = &self.credential {
            let token = cred.read(REMOTE)?;
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("afk:{token}"));
            cmd.env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env(
                    "GIT_CONFIG_VALUE_0",
                    format!("Authorization: Basic {basic}"),
                );
        }
        Ok(cmd)
    }

    async fn run(&self, dir: Option<&Path>, args: &[&str]) -> Result<std::process::Output> {
        let what = describe(args);
        let mut cmd = self.command(dir, args)?;
        let out = tokio::time::timeout(self.timeout, cmd.output())
            .await
            .map_err(|_| RemoteError::new(REMOTE, what.clone(), ErrorKind::Timeout))?
            .map_err(|e| {
                RemoteError::new(
                    REMOTE,
                    what.clone(),
                    ErrorKind::Local(format!("cannot run git ({e}); is git installed?")),
                )
            })?;
        Ok(out)
    }

    async fn git_out(&self, dir: Option<&Path>, args: &[&str]) -> Result<String> {
        let out = self.run(dir, args).await?;
        if !out.status.success() {
            let stderr = scrub(&String::from_utf8_lossy(&out.stderr));
            return Err(RemoteError::new(
                REMOTE,
                describe(args),
                ErrorKind::Local(format!("git failed ({}): {}", out.status, stderr.trim())),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    async fn git_status(&self, dir: Option<&Path>, args: &[&str]) -> Result<bool> {
        Ok(self.run(dir, args).await?.status.success())
    }
}

/// `git <subcommand>` with URLs scrubbed, for errors.
fn describe(args: &[&str]) -> String {
    let shown: Vec<String> = args.iter().take(3).map(|a| scrub(a)).collect();
    format!("git {}", shown.join(" "))
}

/// Removes credentials embedded in URLs (`https://user:pass@host` → `https://***@host`).
fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out.chars().take(600).collect()
}

/// Branch names afk passes to git: no option injection, no ref trickery.
fn check_ref_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('-')
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.ends_with(".lock")
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("@{")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(())
    } else {
        Err(local(format!("refusing the branch name {name:?}")))
    }
}

fn local(msg: String) -> RemoteError {
    RemoteError::new(REMOTE, "workspace", ErrorKind::Local(msg))
}

async fn make_dir(path: &Path) -> Result<()> {
    tokio::fs::create_dir_all(path)
        .await
        .map_err(|e| local(format!("cannot create {}: {e}", path.display())))
}

async fn remove_dir(path: &Path) -> Result<()> {
    match tokio::fs::remove_dir_all(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(local(format!("cannot remove {}: {e}", path.display()))),
    }
}

async fn list_dir(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(local(format!("cannot list {}: {e}", dir.display()))),
    };
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|e| local(format!("cannot list {}: {e}", dir.display())))?
    {
        if let Some(name) = entry.file_name().to_str() {
            out.push((name.to_owned(), entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Used space of the volume holding `root`, in percent.
fn usage_percent(root: &Path) -> Option<u8> {
    let stats = fs4::statvfs(root).ok()?;
    let total = stats.total_space();
    if total == 0 {
        return None;
    }
    let used = total.saturating_sub(stats.available_space());
    u8::try_from(used.saturating_mul(100) / total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_credentials_from_urls() {
        assert_eq!(
            scrub("fatal: https://afk:s3cret@github.com/o/r.git not found"),
            "fatal: https://***@github.com/o/r.git not found"
        );
        assert_eq!(
            scrub("https://github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
    }

    #[test]
    fn ref_names_refuse_option_injection() {
        assert!(check_ref_name("afk/42-o__r-42-1").is_ok());
        for bad in [
            "-b",
            "--upload-pack=x",
            "a..b",
            "a b",
            "a;b",
            "",
            "x.lock",
            "a@{1}",
        ] {
            assert!(check_ref_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_stay_inside_the_root() {
        let ws = Workspaces::new("/data/afk", "https://example.org/{repo}.git", None);
        assert!(ws.check_inside(Path::new("/data/afk/repos/o__r")).is_ok());
        assert!(ws.check_inside(Path::new("/data/afk")).is_err());
        assert!(ws.check_inside(Path::new("/data/afk/../etc")).is_err());
        assert!(ws.check_inside(Path::new("/etc/passwd")).is_err());
    }
}
