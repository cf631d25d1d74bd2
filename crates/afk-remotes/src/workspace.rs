//! Git workspaces: one mirror per enrolled repo that only afk writes, and one
//! independent clone per run that belongs to the agent, under a root shared with T3's pod,
//! driven through the real `git` binary.
//!
//! Nothing the agent can write is executed or trusted by afk. afk runs git only in the mirror
//! (whose config it rewrites before each use) and in a run's clone while building it beside its
//! final place; once the clone is renamed into place afk never runs git in it again: a retry
//! reads its `.git/HEAD` as a plain file, and `done` removes it as plain files. Every git
//! command runs with a cleared environment, no system or global config, hooks and fsmonitor off
//! and the other program-running keys pinned on the command line; the tracker credential goes
//! (as an `http.extraHeader` in the environment, never in the argument list or a file) only to
//! the commands that talk to the remote.
//!
//! Every path is derived from a validated `RepoName`/`RunId` and checked to stay inside the root.
//! Git always runs as a child process with an argument vector (never a shell string).
//!
//! Housekeeping is not decided here: [`Workspaces::facts`] reports what the volume holds and
//! the core (`afk_core::housekeeping`) decides what goes; the removals here only carry it out.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use afk_core::housekeeping::{
    CacheDir, CloneFacts, Retained, RunWorkspace, VolumeUsage, WorkspaceFacts,
};
use afk_core::ids;
use afk_core::model::{RepoName, RunId, Timestamp};
use base64::Engine;

use crate::error::{ErrorKind, RemoteError, Result};
use crate::http::SecretFile;

const REMOTE: &str = "git";
/// Suffix of the marker file that says a worktree is kept for a person (needs-human/frozen).
const RETAINED_SUFFIX: &str = ".retained";
/// Suffix of a clone (mirror or run) being built, renamed into place when complete.
const PARTIAL_SUFFIX: &str = ".partial";
/// Suffix of a run's clone being removed: moved aside first, so a removal cut short is never
/// mistaken for a clone and is finished by the next housekeeping.
const REMOVING_SUFFIX: &str = ".removing";

/// The only variables of afk's environment git sees (the rest is set explicitly): where the
/// programs are, where temporary files go, and the operator's TLS and proxy settings.
const PASSED_ENV: [&str; 10] = [
    "PATH",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Config keys that can make git run a program (or hand a credential to one) during clone,
/// fetch, checkout or gc, pinned on every command line; command-line config wins over any
/// repository's `config`. What cannot be pinned this way (`include.path`, `filter.<driver>`,
/// `core.alternateRefsCommand`...) lives only in a repository's own config, which afk writes
/// itself before it runs git in that repository.
const CONFIG_OVERRIDES: [(&str, &str); 7] = [
    ("core.hooksPath", "/dev/null"),
    ("core.fsmonitor", "false"),
    ("core.sshCommand", "ssh"),
    ("core.pager", "cat"),
    ("credential.helper", ""),
    ("protocol.ext.allow", "never"),
    ("gc.autoDetach", "false"),
];

/// The credential git sends to the tracker's host on clone/fetch of the mirror.
#[derive(Debug, Clone)]
pub enum GitCredential {
    /// A token file (read at each use).
    File(SecretFile),
    /// A GitHub App: its current installation token (`x-access-token`, as GitHub's docs on
    /// authenticating as an installation show for git over HTTPS).
    GitHubApp(Box<crate::github::GitHub>),
}

impl GitCredential {
    /// `user:token` for HTTP Basic auth.
    async fn basic(&self) -> Result<String> {
        match self {
            GitCredential::File(file) => Ok(format!("afk:{}", file.read(REMOTE)?)),
            GitCredential::GitHubApp(gh) => Ok(format!(
                "x-access-token:{}",
                gh.installation_token_for_git().await?
            )),
        }
    }
}

/// The workspace root and how to reach the repos.
#[derive(Debug, Clone)]
pub struct Workspaces {
    root: PathBuf,
    clone_url_template: String,
    credential: Option<GitCredential>,
    git: PathBuf,
    timeout: Duration,
}

impl Workspaces {
    /// `root` must be absolute (config validation guarantees it).
    pub fn new(
        root: impl Into<PathBuf>,
        clone_url_template: &str,
        credential: Option<GitCredential>,
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

    /// Makes sure the repo's mirror exists and is fresh: clones it (bare) the first time, then
    /// fetches every branch (with prune) every time. Returns the mirror's path.
    ///
    /// Only afk writes the mirror. Before each use afk rewrites its `config` with its own
    /// content, removes its `hooks/` and any `objects/info/alternates`, and checks its `HEAD`
    /// (defence in depth should the volume's permissions let an agent reach it). A folder that
    /// is not such a mirror (a clone that died half-way, the non-bare checkout an older afk kept
    /// there) or whose config is not exactly the one afk wrote for this URL (the clone URL
    /// template changed, or someone else wrote there) is removed and cloned again.
    pub async fn prepare_checkout(&self, repo: &RepoName) -> Result<PathBuf> {
        let path = self.checkout_path(repo);
        self.check_inside(&path)?;
        let url = self.clone_url(repo);
        check_config_value(&url)?;
        if !is_mirror(&path).await || !has_config(&path, &mirror_config(&url)).await {
            let partial = partial_path(&path);
            self.check_inside(&partial)?;
            remove_any(&partial).await?;
            remove_any(&path).await?;
            self.make_private_dir(path.parent().unwrap_or(&self.root))
                .await?;
            let target = partial.to_string_lossy().into_owned();
            self.git_remote(None, &["clone", "--bare", "--quiet", "--", &url, &target])
                .await?;
            secure_mirror(&partial, &url).await?;
            keep_all_private(&partial).await?;
            rename(&partial, &path).await?;
        }
        secure_mirror(&path, &url).await?;
        self.git_remote(
            Some(&path),
            &[
                "fetch",
                "--prune",
                "--quiet",
                "--",
                &url,
                "+refs/heads/*:refs/heads/*",
            ],
        )
        .await?;
        Ok(path)
    }

    /// The remote's default branch as the mirror recorded it when it was cloned (its `HEAD`),
    /// read as a plain file and validated.
    pub async fn default_branch(&self, repo: &RepoName) -> Result<String> {
        let path = self.checkout_path(repo);
        self.check_inside(&path)?;
        read_head(&path).await
    }

    /// Makes sure the run's clone exists on `branch`, created from the freshly fetched
    /// `<default_branch>` of the mirror. The clone is independent of the mirror (its own `.git`
    /// and objects) and, once in place, belongs to the agent: afk never runs git in it again.
    ///
    /// It is built beside its final place (`<run id>.partial`) and renamed into place only when
    /// complete, so a tick killed mid-way leaves a partial folder the next attempt removes. A
    /// clone already in place is kept as it is when its `.git/HEAD` (read as a plain file) names
    /// `branch`: a retry after a crash finds the same clone, with whatever the agent did in it.
    pub async fn ensure_worktree(
        &self,
        run: &RunId,
        branch: &str,
        default_branch: &str,
    ) -> Result<PathBuf> {
        check_ref_name(branch)?;
        check_ref_name(default_branch)?;
        let path = self.worktree_path(run);
        self.check_inside(&path)?;
        match tokio::fs::symlink_metadata(&path).await {
            Ok(meta) if meta.is_dir() => {
                let current = read_head(&path.join(".git")).await.map_err(|e| {
                    local(format!(
                        "the run's clone {} is there but its branch cannot be read ({e}); a person should look before afk touches it",
                        path.display()
                    ))
                })?;
                if current == branch {
                    return Ok(path);
                }
                return Err(local(format!(
                    "the run's clone {} is on branch {current} instead of {branch}; a person should look before afk touches it",
                    path.display()
                )));
            }
            Ok(_) => {
                return Err(local(format!(
                    "{} is not a folder (a symlink or a file took the run's clone's place); a person should look before afk touches it",
                    path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(local(format!("cannot inspect {}: {e}", path.display())));
            }
        }
        let mirror = self.prepare_checkout(run.repo()).await?;
        let url = self.clone_url(run.repo());
        let partial = partial_path(&path);
        self.check_inside(&partial)?;
        remove_any(&partial).await?;
        self.make_private_dir(path.parent().unwrap_or(&self.root))
            .await?;
        let source = mirror.to_string_lossy().into_owned();
        let target = partial.to_string_lossy().into_owned();
        // A plain copy of the objects (no hard links): nothing in the run's clone is shared
        // with the mirror, so nothing written there can change what the next run starts from.
        self.git_local(
            None,
            &[
                "clone",
                "--no-checkout",
                "--no-hardlinks",
                "--quiet",
                "--",
                &source,
                &target,
            ],
        )
        .await?;
        // The clone's own config, written by afk: `origin` is the real repo (no credential), so
        // the agent pushes where the issue lives, and nothing points back at the mirror.
        write_atomic(&partial.join(".git/config"), &clone_config(&url)).await?;
        let start = format!("refs/remotes/origin/{default_branch}");
        self.git_local(
            Some(&partial),
            &["checkout", "--quiet", "--no-track", "-b", branch, &start],
        )
        .await?;
        share_with_group(&partial).await?;
        rename(&partial, &path).await?;
        Ok(path)
    }

    /// Removes a run's clone without running git in it: a plain removal that never follows a
    /// symlink. The clone is first moved aside (`<run id>.removing`), so a removal cut short
    /// is finished by the next housekeeping; the half-built clone and the retained marker go
    /// too, the marker last (a clone kept for a person is never left unmarked). Idempotent.
    pub async fn remove_worktree(&self, run: &RunId, branch: &str) -> Result<()> {
        check_ref_name(branch)?;
        let path = self.worktree_path(run);
        self.check_inside(&path)?;
        let removing = suffixed(&path, REMOVING_SUFFIX);
        self.check_inside(&removing)?;
        remove_any(&partial_path(&path)).await?;
        match tokio::fs::symlink_metadata(&path).await {
            Ok(_) => {
                remove_any(&removing).await?;
                rename(&path, &removing).await?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(local(format!("cannot inspect {}: {e}", path.display()))),
        }
        remove_any(&removing).await?;
        remove_any(&self.retained_marker(run)).await?;
        Ok(())
    }

    /// Removes the half-built clone (`<run id>.partial`) of a run; the clone in place stays.
    /// Idempotent.
    pub async fn remove_partial_clone(&self, run: &RunId) -> Result<()> {
        let partial = partial_path(&self.worktree_path(run));
        self.check_inside(&partial)?;
        remove_any(&partial).await
    }

    /// Removes a cache folder (one of `workspace.cache_dirs`), refusing anything that is not
    /// strictly inside the root. Idempotent.
    pub async fn remove_cache_dir(&self, path: &Path) -> Result<()> {
        self.check_inside(path)?;
        remove_any(path).await
    }

    /// Marks a run's worktree as kept for a person (needs-human/frozen) since `at`; it is
    /// removed after `retain_days` and never evicted before.
    pub async fn mark_retained(&self, run: &RunId, at: Timestamp) -> Result<()> {
        let marker = self.retained_marker(run);
        self.check_inside(&marker)?;
        make_dir(marker.parent().unwrap_or(&self.root)).await?;
        write_atomic(&marker, &at.to_rfc3339()).await
    }

    /// Creates `dir` (and its parents) and takes group and other write access off it and every
    /// folder between it and the root, so no other uid can swap a mirror or a run's clone for
    /// something of its own.
    async fn make_private_dir(&self, dir: &Path) -> Result<()> {
        make_dir(dir).await?;
        let mut at = dir;
        while at != self.root.as_path() && self.check_inside(at).is_ok() {
            keep_private(at).await?;
            match at.parent() {
                Some(p) => at = p,
                None => break,
            }
        }
        Ok(())
    }

    fn retained_marker(&self, run: &RunId) -> PathBuf {
        let mut p = self.worktree_path(run).into_os_string();
        p.push(RETAINED_SUFFIX);
        PathBuf::from(p)
    }

    /// Mirror upkeep (not a decision, so not in the plan; never in a dry run): re-secures
    /// every mirror afk left as it wrote it and runs `git gc --auto` there. A folder that is not
    /// such a mirror is left to the next dispatch, which clones it again.
    pub async fn maintain_mirrors(&self) -> Result<()> {
        for (repo, mirror) in self.checkouts().await? {
            let url = self.clone_url(&repo);
            if check_config_value(&url).is_err() || !has_config(&mirror, &mirror_config(&url)).await
            {
                continue;
            }
            secure_mirror(&mirror, &url).await?;
            self.git_local(Some(&mirror), &["gc", "--auto", "--quiet"])
                .await?;
        }
        Ok(())
    }

    /// The usage of the volume holding the root, when it can be measured.
    pub fn volume_usage(&self) -> Option<VolumeUsage> {
        let stats = fs4::statvfs(&self.root).ok()?;
        Some(VolumeUsage {
            total_bytes: stats.total_space(),
            available_bytes: stats.available_space(),
        })
    }

    /// What the volume holds, for the core to decide housekeeping on (reads only): every run's
    /// clone (last modified; its size when `sizes`), half-built and half-removed clones,
    /// retained markers, the configured cache folders that exist (resolved against the root;
    /// entries outside it are left out) and the volume's usage. Sizes are disk blocks in use,
    /// counted without following symlinks.
    pub async fn facts(&self, cache_dirs: &[PathBuf], sizes: bool) -> Result<WorkspaceFacts> {
        let mut runs: BTreeMap<String, RunWorkspace> = BTreeMap::new();
        for (slug, repo_dir) in list_dir(&self.root.join("worktrees")).await? {
            if RepoName::from_slug(&slug).is_err() {
                continue;
            }
            for (name, path) in list_dir(&repo_dir).await? {
                let (run, kind) = match [PARTIAL_SUFFIX, REMOVING_SUFFIX, RETAINED_SUFFIX]
                    .into_iter()
                    .find_map(|sfx| name.strip_suffix(sfx).map(|r| (r, sfx)))
                {
                    Some((run, sfx)) => (run, sfx),
                    None => (name.as_str(), ""),
                };
                let Ok(run) = run.parse::<RunId>() else {
                    continue;
                };
                if run.repo().slug() != slug {
                    continue;
                }
                let clone = if kind.is_empty() {
                    match tokio::fs::symlink_metadata(&path).await {
                        // A symlink or a file in a clone's place is not a clone: left alone.
                        Ok(meta) if meta.is_dir() => Some(CloneFacts {
                            modified: meta.modified().ok().map(Timestamp::from),
                            bytes: if sizes {
                                Some(disk_usage(&path).await)
                            } else {
                                None
                            },
                        }),
                        _ => continue,
                    }
                } else {
                    None
                };
                let entry = runs.entry(run.to_string()).or_insert_with(|| RunWorkspace {
                    run: run.clone(),
                    clone: None,
                    retained: Retained::No,
                    partial: false,
                    removing: false,
                });
                match kind {
                    PARTIAL_SUFFIX => entry.partial = true,
                    REMOVING_SUFFIX => entry.removing = true,
                    RETAINED_SUFFIX => entry.retained = read_marker(&path).await,
                    _ => entry.clone = clone,
                }
            }
        }
        let mut caches = Vec::new();
        for dir in cache_dirs {
            let dir = if dir.is_absolute() {
                dir.clone()
            } else {
                self.root.join(dir)
            };
            if self.check_inside(&dir).is_ok() && tokio::fs::symlink_metadata(&dir).await.is_ok() {
                caches.push(CacheDir {
                    bytes: if sizes {
                        Some(disk_usage(&dir).await)
                    } else {
                        None
                    },
                    path: dir.to_string_lossy().into_owned(),
                });
            }
        }
        Ok(WorkspaceFacts {
            volume: self.volume_usage(),
            runs: runs.into_values().collect(),
            caches,
        })
    }

    /// The mirrors on disk (folders that are not mirrors are left to the next dispatch).
    async fn checkouts(&self) -> Result<Vec<(RepoName, PathBuf)>> {
        let dir = self.root.join("repos");
        let mut out = Vec::new();
        for (name, path) in list_dir(&dir).await? {
            if let Ok(repo) = RepoName::from_slug(&name)
                && is_mirror(&path).await
            {
                out.push((repo, path));
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

    /// A git child process that trusts nothing on disk it did not write: a cleared environment
    /// (no inherited `GIT_*`, no system or global config, no prompts), and on the command line
    /// every config key that could make git run a program during the subcommands afk uses
    /// pinned to a harmless value. `credential` adds the tracker token as an
    /// `http.extraHeader` through the environment (never in the argument list or a file); only
    /// commands that talk to the remote get it.
    fn command(
        &self,
        dir: Option<&Path>,
        args: &[&str],
        credential: Option<&str>,
    ) -> Result<tokio::process::Command> {
        let mut cmd = tokio::process::Command::new(&self.git);
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        cmd.env_clear();
        for key in PASSED_ENV {
            if let Some(v) = std::env::var_os(key) {
                cmd.env(key, v);
            }
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|h| h.is_absolute() && !h.starts_with(&self.root))
            .unwrap_or_else(|| PathBuf::from("/nonexistent"));
        cmd.env("HOME", home)
            .env("LC_ALL", "C")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0");
        for (key, value) in CONFIG_OVERRIDES {
            cmd.arg("-c").arg(format!("{key}={value}"));
        }
        cmd.args(args)
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null());
        if let Some(user_token) = credential {
            let basic = base64::engine::general_purpose::STANDARD.encode(user_token);
            cmd.env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env(
                    "GIT_CONFIG_VALUE_0",
                    format!("Authorization: Basic {basic}"),
                );
        }
        Ok(cmd)
    }

    async fn run(
        &self,
        dir: Option<&Path>,
        args: &[&str],
        credential: bool,
    ) -> Result<std::process::Output> {
        let what = describe(args);
        let user_token = match (&self.credential, credential) {
            (Some(cred), true) => Some(cred.basic().await?),
            _ => None,
        };
        let mut cmd = self.command(dir, args, user_token.as_deref())?;
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

    /// A command that talks to the remote (clone/fetch of the mirror): with the credential.
    async fn git_remote(&self, dir: Option<&Path>, args: &[&str]) -> Result<String> {
        self.git_out(dir, args, true).await
    }

    /// A local command: never with the credential.
    async fn git_local(&self, dir: Option<&Path>, args: &[&str]) -> Result<String> {
        self.git_out(dir, args, false).await
    }

    async fn git_out(&self, dir: Option<&Path>, args: &[&str], credential: bool) -> Result<String> {
        let out = self.run(dir, args, credential).await?;
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

/// Removes a file, a symlink (never what it points at) or a folder with everything in it;
/// missing is fine. The standard library's recursive removal does not follow symlinks.
async fn remove_any(path: &Path) -> Result<()> {
    let meta = match tokio::fs::symlink_metadata(path).await {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(local(format!("cannot inspect {}: {e}", path.display()))),
    };
    let removed = if meta.is_dir() {
        tokio::fs::remove_dir_all(path).await
    } else {
        tokio::fs::remove_file(path).await
    };
    match removed {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(local(format!("cannot remove {}: {e}", path.display()))),
    }
}

async fn rename(from: &Path, to: &Path) -> Result<()> {
    tokio::fs::rename(from, to).await.map_err(|e| {
        local(format!(
            "cannot move {} to {}: {e}",
            from.display(),
            to.display()
        ))
    })
}

/// Writes a file through a fresh temporary beside it and a rename, so a symlink planted at
/// `path` is replaced, never written through.
async fn write_atomic(path: &Path, content: &str) -> Result<()> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp = path.as_os_str().to_owned();
    // Unique per process and call: the two ticks may re-secure a mirror at the same moment.
    tmp.push(format!(".afk-tmp-{}-{n}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    remove_any(&tmp).await?;
    let mut opts = tokio::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    let mut file = opts
        .open(&tmp)
        .await
        .map_err(|e| local(format!("cannot write {}: {e}", tmp.display())))?;
    tokio::io::AsyncWriteExt::write_all(&mut file, content.as_bytes())
        .await
        .map_err(|e| local(format!("cannot write {}: {e}", tmp.display())))?;
    drop(file);
    rename(&tmp, path).await
}

fn partial_path(path: &Path) -> PathBuf {
    suffixed(path, PARTIAL_SUFFIX)
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// A retained marker: the time it holds, or why it cannot be read (never followed through a
/// symlink).
async fn read_marker(path: &Path) -> Retained {
    match tokio::fs::symlink_metadata(path).await {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Retained::Unreadable("not a plain file".into()),
        Err(e) => return Retained::Unreadable(e.to_string()),
    }
    match tokio::fs::read_to_string(path).await {
        Ok(text) => match chrono::DateTime::parse_from_rfc3339(text.trim()) {
            Ok(t) => Retained::Since(t.with_timezone(&chrono::Utc)),
            Err(e) => Retained::Unreadable(format!("not an RFC 3339 time: {e}")),
        },
        Err(e) => Retained::Unreadable(e.to_string()),
    }
}

/// Disk space in use under `path` (512-byte blocks, a hard-linked file at each of its links),
/// without following symlinks; what cannot be read counts as nothing.
async fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let root = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut total: u64 = 0;
        let mut stack = vec![root];
        while let Some(p) = stack.pop() {
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            total = total.saturating_add(meta.blocks().saturating_mul(512));
            if meta.is_dir()
                && let Ok(entries) = std::fs::read_dir(&p)
            {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
        total
    })
    .await
    .unwrap_or(0)
}

/// Whether `path` is a folder (not a symlink) holding a bare repository as afk makes them.
async fn is_mirror(path: &Path) -> bool {
    let is = |p: PathBuf, dir: bool| async move {
        tokio::fs::symlink_metadata(&p)
            .await
            .is_ok_and(|m| if dir { m.is_dir() } else { m.is_file() })
    };
    is(path.to_path_buf(), true).await
        && is(path.join("HEAD"), false).await
        && is(path.join("objects"), true).await
        && is(path.join("refs"), true).await
        && tokio::fs::symlink_metadata(path.join(".git"))
            .await
            .is_err()
}

/// Makes everything in a run's clone (built by afk's uid) writable by the group it shares with
/// T3's uid, so the agent can work in it; folders get the setgid bit so what the agent creates
/// stays in that group. Symlinks are left alone (their mode means nothing).
async fn share_with_group(path: &Path) -> Result<()> {
    set_modes(path, true).await
}

/// Takes group and other write access off everything in a new mirror, whatever the umask.
async fn keep_all_private(path: &Path) -> Result<()> {
    set_modes(path, false).await
}

/// The walk behind `share_with_group` (`share`) and `keep_all_private` (not `share`).
async fn set_modes(path: &Path, share: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let root = path.to_path_buf();
    let walked = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut stack = vec![root];
        while let Some(p) = stack.pop() {
            let meta = std::fs::symlink_metadata(&p)?;
            if meta.file_type().is_symlink() {
                continue;
            }
            let mode = meta.permissions().mode();
            if meta.is_dir() {
                for entry in std::fs::read_dir(&p)? {
                    stack.push(entry?.path());
                }
            }
            let wanted = match (share, meta.is_dir()) {
                (true, true) => mode | 0o2070,
                (true, false) => mode | 0o060,
                (false, _) => mode & !0o022,
            };
            if wanted != mode {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(wanted))?;
            }
        }
        Ok(())
    })
    .await
    .map_err(|e| local(format!("cannot set the modes in {}: {e}", path.display())))?;
    walked.map_err(|e| local(format!("cannot set the modes in {}: {e}", path.display())))
}

/// Takes group and other write access off the mirror's folder (afk's uid owns it), should the
/// volume or a umask have granted it.
async fn keep_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = tokio::fs::symlink_metadata(path)
        .await
        .map_err(|e| local(format!("cannot inspect {}: {e}", path.display())))?;
    if !meta.is_dir() {
        return Err(local(format!("{} is not a folder", path.display())));
    }
    let mode = meta.permissions().mode();
    if mode & 0o022 != 0 {
        tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !0o022))
            .await
            .map_err(|e| local(format!("cannot restrict {}: {e}", path.display())))?;
    }
    Ok(())
}

/// Whether the repository's `config` is exactly `wanted` (read as a plain file, never through a
/// symlink).
async fn has_config(git_dir: &Path, wanted: &str) -> bool {
    let path = git_dir.join("config");
    let plain = tokio::fs::symlink_metadata(&path)
        .await
        .is_ok_and(|m| m.is_file());
    plain
        && tokio::fs::read_to_string(&path)
            .await
            .is_ok_and(|text| text == wanted)
}

/// Puts back what afk relies on in a mirror: its own config, no hooks, no alternates, a valid
/// `HEAD`.
async fn secure_mirror(path: &Path, url: &str) -> Result<()> {
    keep_private(path).await?;
    write_atomic(&path.join("config"), &mirror_config(url)).await?;
    remove_any(&path.join("hooks")).await?;
    remove_any(&path.join("objects/info/alternates")).await?;
    remove_any(&path.join("objects/info/http-alternates")).await?;
    read_head(path).await.map(|_| ())
}

/// The branch a git folder's `HEAD` names, read as a plain file (never through git, never
/// through a symlink) and validated.
async fn read_head(git_dir: &Path) -> Result<String> {
    let head = git_dir.join("HEAD");
    for p in [git_dir, head.as_path()] {
        let meta = tokio::fs::symlink_metadata(p)
            .await
            .map_err(|e| local(format!("cannot read {}: {e}", p.display())))?;
        if meta.file_type().is_symlink() {
            return Err(local(format!("{} is a symlink", p.display())));
        }
    }
    let text = tokio::fs::read_to_string(&head)
        .await
        .map_err(|e| local(format!("cannot read {}: {e}", head.display())))?;
    let branch = text
        .strip_suffix('\n')
        .unwrap_or(&text)
        .strip_prefix("ref: refs/heads/")
        .ok_or_else(|| {
            local(format!(
                "{} does not name a branch (detached or not a git HEAD)",
                head.display()
            ))
        })?;
    check_ref_name(branch)?;
    Ok(branch.to_owned())
}

/// A value afk writes into a config file between quotes: nothing that could end the quotes,
/// escape or start another line.
fn check_config_value(value: &str) -> Result<()> {
    if value
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(local(
            "clone_url_template gives a URL with a quote, a backslash or a control character; afk refuses to write it into git config".into(),
        ));
    }
    Ok(())
}

/// The whole config of a mirror, as afk writes it. The fetch URL and refspec are passed on the
/// command line anyway; the remote is recorded for people who look.
fn mirror_config(url: &str) -> String {
    format!(
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n\tsharedRepository = 0644\n[remote \"origin\"]\n\turl = \"{url}\"\n\tfetch = +refs/heads/*:refs/heads/*\n"
    )
}

/// The whole config of a run's clone, as afk writes it before handing it over.
fn clone_config(url: &str) -> String {
    format!(
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n\tsharedRepository = group\n[remote \"origin\"]\n\turl = \"{url}\"\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
    )
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
