//! Adversarial: the agent tries to run code inside afk. From inside its working folder it plants
//! hooks and program-running config everywhere it can reach (its own `.git`, the folder git calls
//! the common dir, the repo's mirror as if the volume's permissions had failed), pushes a
//! `.gitattributes` that asks for a planted filter, and swaps part of its folder for a symlink.
//! Two runs of the same repo then go all the way to `done`, the second from the mirror the first
//! agent tampered with, and nothing planted ever runs in afk nor sees a secret.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use afk_core::record::Verdict;
use afk_sim::github::Actor;
use afk_sim::infra::lock;
use afk_sim::scenario::{MAINTAINER, TRACKER_TOKEN};
use afk_sim::t3::TurnCompletion;

use crate::harness::{Harness, SECRETS, assert_no_secret};

const READY: &str = "ready-for-agent";
const LOCK: &str = "agent-in-progress";

/// Every hook git may call during clone, fetch, checkout, branch, commit, push, receive or gc.
const HOOKS: [&str; 22] = [
    "applypatch-msg",
    "pre-applypatch",
    "post-applypatch",
    "pre-commit",
    "pre-merge-commit",
    "prepare-commit-msg",
    "commit-msg",
    "post-commit",
    "pre-rebase",
    "post-checkout",
    "post-merge",
    "pre-push",
    "pre-receive",
    "update",
    "proc-receive",
    "post-receive",
    "post-update",
    "reference-transaction",
    "push-to-checkout",
    "pre-auto-gc",
    "post-rewrite",
    "post-index-change",
];

/// Where the planted program reports that it ran, and what it saw.
struct Trap {
    dir: PathBuf,
    script: PathBuf,
    marker: PathBuf,
    dump: PathBuf,
    precious: PathBuf,
}

impl Trap {
    fn new(dir: &Path) -> Trap {
        std::fs::create_dir_all(dir).expect("trap dir");
        let marker = dir.join("ran");
        let dump = dir.join("environment");
        let script = dir.join("evil.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$0 $* (cwd $(pwd))\" >> '{}'\nenv >> '{}'\ncat >/dev/null 2>&1\nexit 0\n",
                marker.display(),
                dump.display()
            ),
        )
        .expect("script");
        make_executable(&script);
        let precious = dir.join("precious");
        std::fs::create_dir_all(&precious).expect("precious");
        std::fs::write(precious.join("keep"), "afk must not delete me\n").expect("keep");
        Trap {
            dir: dir.to_path_buf(),
            script,
            marker,
            dump,
            precious,
        }
    }

    /// Panics with what ran (and whether it saw a secret) if anything planted ever ran.
    fn assert_nothing_ran(&self) {
        if let Ok(ran) = std::fs::read_to_string(&self.marker) {
            let env = std::fs::read_to_string(&self.dump).unwrap_or_default();
            let leaked: Vec<&str> = SECRETS
                .iter()
                .copied()
                .filter(|s| env.contains(s))
                .collect();
            let header = env.contains("Authorization:");
            panic!(
                "planted code ran:\n{ran}\nsecrets it saw: {leaked:?}; the git credential header: {header}"
            );
        }
        assert!(!self.dump.exists(), "planted code dumped the environment");
    }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perm = std::fs::metadata(path).expect("meta").permissions();
    perm.set_mode(0o755);
    std::fs::set_permissions(path, perm).expect("chmod");
}

/// The agent's own git, in its folder, with its own identity.
fn agent_git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "agent")
        .env("GIT_AUTHOR_EMAIL", "agent@example.invalid")
        .env("GIT_COMMITTER_NAME", "agent")
        .env("GIT_COMMITTER_EMAIL", "agent@example.invalid")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "agent git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn plant_hooks(dir: &Path, trap: &Trap) {
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    for name in HOOKS {
        let hook = dir.join(name);
        if std::fs::copy(&trap.script, &hook).is_ok() {
            make_executable(&hook);
        }
    }
}

/// Writes every program-running key the agent can think of into a git config file.
fn plant_config(file: &Path, trap: &Trap, include: &Path) {
    let script = trap.script.to_string_lossy().into_owned();
    let hooks = trap.dir.join("hooks").to_string_lossy().into_owned();
    let include = include.to_string_lossy().into_owned();
    let file = file.to_string_lossy().into_owned();
    for (key, value) in [
        ("core.fsmonitor", script.as_str()),
        ("core.hooksPath", hooks.as_str()),
        ("core.sshCommand", script.as_str()),
        ("core.pager", script.as_str()),
        ("core.askPass", script.as_str()),
        ("core.editor", script.as_str()),
        ("core.gitProxy", script.as_str()),
        ("core.alternateRefsCommand", script.as_str()),
        ("credential.helper", script.as_str()),
        ("uploadpack.packObjectsHook", script.as_str()),
        ("filter.evil.clean", script.as_str()),
        ("filter.evil.smudge", script.as_str()),
        ("filter.evil.process", script.as_str()),
        ("gc.auto", "1"),
        ("include.path", include.as_str()),
    ] {
        agent_git(
            Path::new("/"),
            &["config", "--file", &file, "--add", key, value],
        );
    }
}

/// What the hostile agent does in its folder when its turn completes: first its own git work
/// (a `.gitattributes` asking for the `evil` filter, pushed to the default branch), then the
/// planting, so nothing it planted is triggered by its own commands.
fn hostile_agent(root: &Path, folder: &Path, trap: &Trap) {
    let run = folder.file_name().expect("run folder").to_string_lossy();
    std::fs::write(
        folder.join(".gitattributes"),
        format!("* filter=evil\n# {run}\n"),
    )
    .expect("attributes");
    agent_git(folder, &["add", ".gitattributes"]);
    agent_git(folder, &["commit", "--quiet", "-m", "chore: attributes"]);
    agent_git(folder, &["push", "--quiet", "origin", "HEAD:main"]);

    plant_hooks(&trap.dir.join("hooks"), trap);
    let include = trap.dir.join("included.config");
    let _ = std::fs::write(
        &include,
        format!(
            "[core]\n\tfsmonitor = {0}\n\thooksPath = {1}\n",
            trap.script.display(),
            trap.dir.join("hooks").display()
        ),
    );
    let common = folder.join(agent_git(folder, &["rev-parse", "--git-common-dir"]));
    let git_dir = folder.join(agent_git(folder, &["rev-parse", "--git-dir"]));
    for dir in [&common, &git_dir] {
        plant_hooks(&dir.join("hooks"), trap);
        plant_config(&dir.join("config"), trap, &include);
        let _ = std::fs::write(dir.join("info/attributes"), "* filter=evil\n");
    }
    // The mirror, as if the volume let the agent's uid write there.
    let slug = folder
        .parent()
        .and_then(Path::file_name)
        .expect("repo folder")
        .to_owned();
    let mirror = root.join("repos").join(slug);
    for dir in [mirror.clone(), mirror.join(".git")] {
        if dir.join("config").is_file() {
            plant_hooks(&dir.join("hooks"), trap);
            plant_config(&dir.join("config"), trap, &include);
            let _ = std::fs::create_dir_all(dir.join("info"));
            let _ = std::fs::write(dir.join("info/attributes"), "* filter=evil\n");
        }
    }
    // A symlink out of the folder: removing the folder must not follow it.
    let _ = std::os::unix::fs::symlink(&trap.precious, folder.join("precious-link"));
}

fn arm_new_issue(h: &Harness, repo: &str) -> u64 {
    let now = h.world.sim.now();
    let mut gh = lock(&h.world.github);
    let n = gh
        .add_issue(
            repo,
            "Add a /readyz endpoint",
            Some("Serve `GET /readyz` answering 200."),
            MAINTAINER,
            false,
            now,
        )
        .expect("issue");
    gh.label_issue(repo, n, READY, Actor::user(MAINTAINER), now)
        .expect("label");
    n
}

/// Rounds until issue `n` has a `done` verdict and its lock is gone.
async fn run_to_done(h: &Harness, repo: &str, n: u64) {
    for _ in 0..40 {
        let (p, w) = h.round(300).await;
        assert_no_secret(&p);
        assert_no_secret(&w);
        assert_ne!(p.code, Some(2), "poll: {}", p.stderr);
        assert_ne!(w.code, Some(2), "watch: {}", w.stderr);
        if let Some(r) = h.record(repo, n)
            && let Some(v) = &r.verdict
            && !h.has_label(repo, n, LOCK)
        {
            assert_eq!(v.verdict, Verdict::Done, "#{n} ended {v:?}");
            return;
        }
    }
    panic!("#{n} reached no verdict; record: {:?}", h.record(repo, n));
}

#[tokio::test]
async fn nothing_the_agent_plants_in_its_folder_or_the_mirror_ever_runs_in_afk() {
    let h = Harness::new("landed").await;
    let (repo, first) = h.repo();
    let root = h.setup.dir.join("workspace");
    let trap = Arc::new(Trap::new(&h.setup.dir.join("trap")));
    let folders: Arc<Mutex<Vec<PathBuf>>> = Arc::default();
    {
        let (root, trap, folders) = (root.clone(), trap.clone(), folders.clone());
        afk_sim::scenario::add_agent_step(
            &h.world,
            Arc::new(move |_world, done: &TurnCompletion| {
                let folder = PathBuf::from(&done.worktree_path);
                hostile_agent(&root, &folder, &trap);
                folders.lock().expect("folders").push(folder);
            }),
        );
    }

    run_to_done(&h, &repo, first).await;
    trap.assert_nothing_ran();
    let planted_in = folders.lock().expect("folders").clone();
    assert_eq!(planted_in.len(), 1, "the agent worked once: {planted_in:?}");
    assert!(
        !planted_in[0].exists(),
        "done removes the run's folder: {}",
        planted_in[0].display()
    );
    assert!(
        trap.precious.join("keep").exists(),
        "removing the run's folder followed a symlink out of it"
    );

    // A second run of the same repo starts from the mirror the first agent tampered with, and
    // from a default branch whose `.gitattributes` asks for the planted filter.
    let second = arm_new_issue(&h, &repo);
    run_to_done(&h, &repo, second).await;
    trap.assert_nothing_ran();
    let planted_in = folders.lock().expect("folders").clone();
    assert_eq!(planted_in.len(), 2, "{planted_in:?}");
    assert_ne!(planted_in[0], planted_in[1]);
    assert!(!planted_in[1].exists());
    assert!(trap.precious.join("keep").exists());
    assert!(
        !std::fs::read_to_string(trap.dir.join("environment"))
            .unwrap_or_default()
            .contains(TRACKER_TOKEN)
    );
    h.assert_no_secret_anywhere();
}

/// The deployment mounts only the tracker's and T3's secrets into afk-poll (deploy/policy.py);
/// a poll without the others still claims and dispatches, and reports no error.
#[tokio::test]
async fn afk_poll_works_with_only_the_tracker_and_t3_secrets() {
    let h = Harness::new("landed").await;
    let (repo, n) = h.repo();
    let secrets = h.setup.dir.join("secrets");
    let hidden = h.setup.dir.join("not-mounted-in-poll");
    std::fs::create_dir_all(&hidden).expect("hidden");
    let others = ["ntfy-token", "slack-webhook", "woodpecker-token"];
    for name in others {
        std::fs::rename(secrets.join(name), hidden.join(name)).expect("hide");
    }
    let p = h.tick(afk_sim::driver::Tick::Poll).await;
    assert_no_secret(&p);
    assert_eq!(p.code, Some(0), "poll: {}", p.stderr);
    let plan = crate::harness::plan(&p);
    assert_eq!(crate::harness::dispatched(plan), vec![n], "{plan}");
    assert!(
        plan["errors"].as_array().is_none_or(Vec::is_empty),
        "{plan}"
    );
    assert!(h.has_label(&repo, n, LOCK));
    assert_eq!(h.threads().len(), 1);
    for name in others {
        std::fs::rename(hidden.join(name), secrets.join(name)).expect("restore");
    }
    run_to_done(&h, &repo, n).await;
}
