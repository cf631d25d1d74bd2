//! Scenarios: a seeded world (tracker, T3, CI, cluster, doorbells, a real git remote) plus the
//! agent's scripted behaviour, and the afk config that points every remote at the simulators.
//!
//! The simulated agent works like the real one from afk's point of view: when its turn
//! completes it has pushed a commit to the default branch carrying `Closes #N` and the run's
//! `AFK-Run:` trailer; CI reports on that commit a couple of minutes later; a green build is
//! rolled out by "Keel" (the Deployment's image tag becomes the commit SHA).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::TimeDelta;

use crate::github::{Actor, Role};
use crate::infra::{Remote, lock};
use crate::server::Running;
use crate::t3::{ScriptedTurn, T3Version, TurnCompletion, TurnOutcome};
use crate::world::World;
use crate::{forgejo, kube, ntfy, slack, woodpecker};

/// Every scenario `serve` and `demo` know, with one line each for `--help`. All but the
/// `forgejo*` ones track issues on GitHub with GitHub check runs for CI; `forgejo` is `landed`
/// and `forgejo-needs-human` is `needs-human`, on Forgejo with Woodpecker CI (neither repo has
/// afk's lock or human label).
pub const SCENARIOS: [(&str, &str); 8] = [
    ("empty", "every remote up, no issue: nothing to do"),
    (
        "landed",
        "acme/shop#1 ready; the agent pushes green, CI passes, the rollout is healthy: done",
    ),
    (
        "needs-human",
        "acme/shop#1 ready; the agent asks a question instead of finishing: needs-human",
    ),
    (
        "fix-forward",
        "acme/shop#1 ready; the first push is red, a corrective turn makes it green: done",
    ),
    (
        "frozen",
        "acme/shop#1 ready; every push stays red until fix-forward runs out: frozen (T3 0.0.27)",
    ),
    (
        "fleet",
        "acme/svc-1 to acme/svc-4, one ready issue each, all green",
    ),
    (
        "forgejo",
        "landed, with the issue on Forgejo and CI on Woodpecker",
    ),
    (
        "forgejo-needs-human",
        "needs-human, on Forgejo with Woodpecker CI, in a repo without afk's labels",
    ),
];

/// The scenario names, in [`SCENARIOS`] order.
pub fn scenario_names() -> Vec<&'static str> {
    SCENARIOS.iter().map(|(name, _)| *name).collect()
}

/// Where a scenario's issues and CI live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    /// GitHub issues, GitHub check runs.
    Github,
    /// Forgejo issues, Woodpecker pipelines.
    Forgejo,
}

/// Recognisable fake secrets: tests assert none of them ever shows up in afk's output.
pub const TRACKER_TOKEN: &str = "ghp_SIMTOKENtracker0000000000000000000001";
pub const T3_TOKEN: &str = "t3sim_SECRETbearer_0000000000000000000002";
pub const NTFY_TOKEN: &str = "tk_simntfysecret000000000000000003";
pub const SLACK_SECRET: &str = "SIMslackWEBHOOKsecret0000000004";
pub const WOODPECKER_TOKEN: &str = "wp_SIMwoodpeckerSECRET00000000005";

/// The bot account afk comments as.
pub const BOT: &str = "afk-bot";
/// A maintainer who arms issues.
pub const MAINTAINER: &str = "alice";
/// A read-only user.
pub const OUTSIDER: &str = "mallory";

/// CI takes this long to report after a push.
pub const CI_SECS: i64 = 120;
/// The agent's turns take this long.
pub const TURN_SECS: i64 = 600;

/// How the simulated agent and CI behave for one repo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentScript {
    /// Every turn pushes a commit that CI passes.
    Green,
    /// The first turn's push fails CI; later ones pass.
    RedThenGreen,
    /// Every push fails CI.
    AlwaysRed,
    /// The first turn asks the person a question instead of working.
    Asks,
}

/// A prepared scenario.
pub struct Setup {
    pub name: String,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    /// Repos enrolled, each with one issue armed by the maintainer.
    pub repos: Vec<(String, u64)>,
}

/// One simulated repo to seed.
struct RepoSeed {
    repo: String,
    script: AgentScript,
    title: String,
    body: String,
}

/// Seeds `world` for the scenario `name` and writes a complete afk config (kill switch off,
/// the scenario's repos enrolled, secret files beside it) into `dir`.
pub fn prepare(
    world: &Arc<World>,
    running: &Running,
    name: &str,
    dir: &Path,
) -> anyhow::Result<Setup> {
    let forge = if name.starts_with("forgejo") {
        Forge::Forgejo
    } else {
        Forge::Github
    };
    let seeds = match name {
        "empty" => Vec::new(),
        "forgejo" => vec![seed("acme/shop", AgentScript::Green)],
        "forgejo-needs-human" => vec![seed("acme/shop", AgentScript::Asks)],
        "landed" => vec![seed("acme/shop", AgentScript::Green)],
        "needs-human" => vec![seed("acme/shop", AgentScript::Asks)],
        "fix-forward" => vec![seed("acme/shop", AgentScript::RedThenGreen)],
        "frozen" => vec![seed("acme/shop", AgentScript::AlwaysRed)],
        "fleet" => (1..=4)
            .map(|i| seed(&format!("acme/svc-{i}"), AgentScript::Green))
            .collect(),
        other => bail!(
            "unknown scenario {other:?}; known: {}",
            scenario_names().join(", ")
        ),
    };
    install_credentials(world, running, dir)?;
    {
        let mut t3 = lock(&world.t3);
        t3.set_version(if name == "frozen" {
            T3Version::V0_0_27
        } else {
            T3Version::V0_0_33
        });
        t3.timing.duration_secs = TURN_SECS;
    }

    let mut repos = Vec::new();
    let mut scripts = Vec::new();
    for s in &seeds {
        let number = match forge {
            Forge::Github => seed_repo(world, dir, s)?,
            Forge::Forgejo => seed_forgejo_repo(world, dir, s)?,
        };
        repos.push((s.repo.clone(), number));
        scripts.push((s.repo.clone(), s.script));
        if s.script == AgentScript::Asks {
            let run = format!("afk-{}-{number}-1", s.repo.replace('/', "__"));
            lock(&world.t3).script_next_turn(
                &run,
                ScriptedTurn {
                    outcome: TurnOutcome::AskUserInput {
                        question: "Should /healthz check the database too?".into(),
                    },
                    duration_secs: Some(120),
                    tokens: None,
                    requests: None,
                },
            );
        }
    }
    install_agent(world, forge, scripts);

    let enrolled: Vec<String> = repos.iter().map(|(r, _)| r.clone()).collect();
    let config_path = write_forge_config(running, dir, forge, &enrolled, 3)?;
    Ok(Setup {
        name: name.to_owned(),
        dir: dir.to_path_buf(),
        config_path,
        repos,
    })
}

/// Creates `dir` (with `secrets/` and `workspace/`), grants the scenarios' fake credentials
/// in the simulators and writes them as secret files beside the config.
pub fn install_credentials(world: &World, running: &Running, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets)?;
    std::fs::create_dir_all(dir.join("workspace"))?;
    lock(&world.github).add_token(TRACKER_TOKEN, BOT);
    lock(&world.github).set_token_scopes(TRACKER_TOKEN, "repo");
    forgejo::add_user(world, BOT, Some(TRACKER_TOKEN), false);
    woodpecker::set_token(world, WOODPECKER_TOKEN);
    lock(&world.t3).add_token(T3_TOKEN, &[crate::t3::READ_SCOPE, crate::t3::OPERATE_SCOPE]);
    ntfy::add_token(world, NTFY_TOKEN, &["afk"]);
    ntfy::require_auth(world, true);
    let hook = slack::add_hook(world, "T0SIM", "B0SIM", SLACK_SECRET);
    write_secret(&secrets.join("tracker-token"), TRACKER_TOKEN)?;
    write_secret(&secrets.join("t3-token"), T3_TOKEN)?;
    write_secret(&secrets.join("ntfy-token"), NTFY_TOKEN)?;
    write_secret(&secrets.join("woodpecker-token"), WOODPECKER_TOKEN)?;
    write_secret(
        &secrets.join("slack-webhook"),
        &format!("{}{hook}", running.url(Remote::Slack)),
    )?;
    Ok(())
}

/// Writes `<dir>/config.toml`: every remote pointing at the simulators, kill switch off,
/// `repos` enrolled (GitHub checks for CI, a Deployment named after the repo), and
/// `max_in_flight` live runs at most (T3 may run as many threads, and at least 8). Returns its
/// path.
pub fn write_config(
    running: &Running,
    dir: &Path,
    repos: &[String],
    max_in_flight: u32,
) -> anyhow::Result<PathBuf> {
    write_forge_config(running, dir, Forge::Github, repos, max_in_flight)
}

fn write_forge_config(
    running: &Running,
    dir: &Path,
    forge: Forge,
    repos: &[String],
    max_in_flight: u32,
) -> anyhow::Result<PathBuf> {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        config_toml(running, dir, forge, repos, max_in_flight),
    )
    .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn seed(repo: &str, script: AgentScript) -> RepoSeed {
    RepoSeed {
        repo: repo.to_owned(),
        script,
        title: "Add a /healthz endpoint".to_owned(),
        body: "Serve `GET /healthz` answering 200 `ok` so the rollout can be probed.\n\nAcceptance: a test hits /healthz.".to_owned(),
    }
}

fn write_secret(path: &Path, value: &str) -> anyhow::Result<()> {
    std::fs::write(path, format!("{value}\n"))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The tracker repo with its people and one armed issue, a real bare git remote with one
/// commit, and the Deployment running the initial image.
fn seed_repo(world: &World, dir: &Path, s: &RepoSeed) -> anyhow::Result<u64> {
    let now = world.sim.now();
    let initial = init_git_remote(dir, &s.repo)?;
    let number = {
        let mut gh = lock(&world.github);
        gh.add_repo(&s.repo, "main", false)?;
        gh.set_collaborator(&s.repo, BOT, Role::Write)?;
        gh.set_collaborator(&s.repo, MAINTAINER, Role::Maintain)?;
        gh.set_collaborator(&s.repo, OUTSIDER, Role::Read)?;
        gh.add_commit(&s.repo, "main", "initial commit", now)?;
        let n = gh.add_issue(&s.repo, &s.title, Some(&s.body), MAINTAINER, false, now)?;
        gh.label_issue(&s.repo, n, "ready-for-agent", Actor::user(MAINTAINER), now)?;
        n
    };
    add_deployment(world, &s.repo, &initial);
    Ok(number)
}

/// The same on Forgejo, with the repo active in Woodpecker.
fn seed_forgejo_repo(world: &World, dir: &Path, s: &RepoSeed) -> anyhow::Result<u64> {
    let initial = init_git_remote(dir, &s.repo)?;
    forgejo::add_repo(world, &s.repo, "main", false)?;
    // Forgejo shows another user's permission to repo admins only.
    forgejo::set_collaborator(world, &s.repo, BOT, "admin")?;
    forgejo::set_collaborator(world, &s.repo, MAINTAINER, "admin")?;
    forgejo::set_collaborator(world, &s.repo, OUTSIDER, "read")?;
    forgejo::push_commit(world, &s.repo, "main", "initial commit")?;
    let number = forgejo::add_issue(
        world,
        &s.repo,
        forgejo::NewIssue {
            title: s.title.clone(),
            body: s.body.clone(),
            author: MAINTAINER.to_owned(),
            labels: Vec::new(),
            pull_request: false,
        },
    )?;
    forgejo::label_issue(world, &s.repo, number, "ready-for-agent", MAINTAINER)?;
    woodpecker::add_repo(world, &s.repo);
    add_deployment(world, &s.repo, &initial);
    Ok(number)
}

/// The repo's Deployment (named after the repo), running the image of `sha`.
fn add_deployment(world: &World, repo: &str, sha: &str) {
    let name = repo.split('/').nth(1).unwrap_or("app");
    kube::add_deployment(
        world,
        kube::NewDeployment::new(name, name, "app", &format!("registry.example/{name}:{sha}")),
    );
}

/// A bare repository at `<dir>/remotes/<owner>/<name>.git` with one commit on `main`.
pub fn init_git_remote(dir: &Path, repo: &str) -> anyhow::Result<String> {
    let bare = dir.join("remotes").join(format!("{repo}.git"));
    let seed = dir.join("seed").join(repo);
    std::fs::create_dir_all(&seed)?;
    if let Some(parent) = bare.parent() {
        std::fs::create_dir_all(parent)?;
    }
    git(
        dir,
        &[
            "init",
            "--quiet",
            "--bare",
            "-b",
            "main",
            &bare.to_string_lossy(),
        ],
    )?;
    git(&seed, &["init", "--quiet", "-b", "main"])?;
    std::fs::write(seed.join("README.md"), format!("# {repo}\n"))?;
    git(&seed, &["add", "."])?;
    git(&seed, &["commit", "--quiet", "-m", "initial commit"])?;
    git(&seed, &["push", "--quiet", &bare.to_string_lossy(), "main"])?;
    let sha = git(&seed, &["rev-parse", "HEAD"])?;
    Ok(sha.trim().to_owned())
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "afk-sim")
        .env("GIT_AUTHOR_EMAIL", "afk-sim@example.invalid")
        .env("GIT_COMMITTER_NAME", "afk-sim")
        .env("GIT_COMMITTER_EMAIL", "afk-sim@example.invalid")
        .output()
        .context("cannot run git; is it installed?")?;
    if !out.status.success() {
        bail!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The simulated agent: what happens when a turn completes.
fn install_agent(world: &World, forge: Forge, scripts: Vec<(String, AgentScript)>) {
    let hook = Arc::new(move |world: &World, done: &TurnCompletion| {
        let Some(run) = done.thread_id.strip_prefix("afk-") else {
            return;
        };
        let Some((repo, script)) = scripts
            .iter()
            .find(|(r, _)| run.starts_with(&format!("{}-", r.replace('/', "__"))))
        else {
            return;
        };
        if *script == AgentScript::Asks && done.turn_number == 1 {
            return;
        }
        let issue = run.rsplit('-').nth(1).unwrap_or("0");
        let message = format!(
            "feat: healthz endpoint (turn {})\n\nCloses #{issue}\nAFK-Run: {run}\n",
            done.turn_number
        );
        let green = match script {
            AgentScript::Green | AgentScript::Asks => true,
            AgentScript::RedThenGreen => done.turn_number > 1,
            AgentScript::AlwaysRed => false,
        };
        let now = world.sim.now();
        let ci = match push_and_start_ci(world, forge, repo, &message) {
            Ok(ci) => ci,
            Err(e) => {
                tracing::error!(error = %e, "simulated agent could not push");
                return;
            }
        };
        let repo = repo.clone();
        world.schedule(
            now + TimeDelta::seconds(CI_SECS),
            Box::new(move |world: &World| finish_ci(world, &repo, &ci, green)),
        );
    });
    lock(&world.t3).set_turn_hook(hook);
}

/// Adds a step the simulated agent takes in its working folder (`TurnCompletion::worktree_path`)
/// when a turn completes, before the scenario's own behaviour (commit, push, CI) for that turn.
/// The scenarios themselves add none; tests use it to make the agent hostile.
pub fn add_agent_step(world: &World, step: crate::t3::TurnHook) {
    let mut t3 = lock(&world.t3);
    let before = t3.turn_hook();
    t3.set_turn_hook(Arc::new(move |world: &World, done: &TurnCompletion| {
        step(world, done);
        if let Some(hook) = &before {
            hook(world, done);
        }
    }));
}

/// A pushed commit whose CI is running.
enum RunningCi {
    /// GitHub check runs on the commit.
    Checks { sha: String },
    /// A Woodpecker pipeline.
    Pipeline {
        sha: String,
        repo_id: i64,
        number: i64,
    },
}

/// Pushes the agent's commit to the default branch and starts its CI.
fn push_and_start_ci(
    world: &World,
    forge: Forge,
    repo: &str,
    message: &str,
) -> anyhow::Result<RunningCi> {
    let now = world.sim.now();
    match forge {
        Forge::Github => {
            let sha = lock(&world.github).push_commit(repo, "main", message, now)?;
            lock(&world.github).add_check_run(repo, &sha, "ci/build", "in_progress", None, now)?;
            Ok(RunningCi::Checks { sha })
        }
        Forge::Forgejo => {
            let sha = forgejo::push_commit(world, repo, "main", message)?;
            let repo_id = woodpecker::add_repo(world, repo);
            let number = woodpecker::add_pipeline(
                world,
                repo_id,
                woodpecker::NewPipeline::push(&sha, "running"),
            )
            .map_err(|e| anyhow::anyhow!("woodpecker refused the pipeline: {}", e.0))?;
            Ok(RunningCi::Pipeline {
                sha,
                repo_id,
                number,
            })
        }
    }
}

/// CI reports; a green build is rolled out (the image tag becomes the SHA).
fn finish_ci(world: &World, repo: &str, ci: &RunningCi, green: bool) {
    let sha = match ci {
        RunningCi::Checks { sha } => {
            let mut gh = lock(&world.github);
            if let Ok(r) = gh.repo_mut(repo)
                && let Some(runs) = r.check_runs.get_mut(sha)
            {
                for run in runs.iter_mut() {
                    run.status = "completed".into();
                    run.conclusion = Some(if green { "success" } else { "failure" }.into());
                }
            }
            sha
        }
        RunningCi::Pipeline {
            sha,
            repo_id,
            number,
        } => {
            let status = if green { "success" } else { "failure" };
            if let Err(e) = woodpecker::set_status(world, *repo_id, *number, status) {
                tracing::error!(error = e.0, "simulated CI could not report");
            }
            sha
        }
    };
    if green {
        let name = repo.split('/').nth(1).unwrap_or("app");
        let _ = kube::set_image(
            world,
            name,
            name,
            "app",
            &format!("registry.example/{name}:{sha}"),
        );
    }
}

/// A complete afk config pointing at the simulators.
fn config_toml(
    running: &Running,
    dir: &Path,
    forge: Forge,
    repos: &[String],
    max_in_flight: u32,
) -> String {
    let secrets = dir.join("secrets");
    let allow: Vec<String> = repos.iter().map(|r| format!("\"{r}\"")).collect();
    let mut out = format!(
        r#"# Written by afk-sim for a simulated world; every remote points at 127.0.0.1.
kill_switch = false
allowlist = [{allow}]
max_in_flight = {max_in_flight}
t3_max_busy_threads = {busy}

[limits]
tick_deadline = "2m"

[tracker]
kind = "{kind}"
api_url = "{tracker}"
token_file = "{secrets}/tracker-token"
bot_login = "{BOT}"

[t3]
base_url = "{t3}"
token_file = "{secrets}/t3-token"
web_url = "https://t3.example.test"

[workspace]
root = "{workspace}"
clone_url_template = "file://{remotes}/{{repo}}.git"

[notify.ntfy]
url = "{ntfy}"
topic = "afk"
token_file = "{secrets}/ntfy-token"

[notify.slack]
webhook_url_file = "{secrets}/slack-webhook"

[ci.woodpecker]
api_url = "{woodpecker}/api"
token_file = "{secrets}/woodpecker-token"

[kube]
api_url = "{kube}"
"#,
        allow = allow.join(", "),
        busy = max_in_flight.max(8),
        kind = match forge {
            Forge::Github => "github",
            Forge::Forgejo => "forgejo",
        },
        tracker = match forge {
            Forge::Github => running.url(Remote::Github).to_owned(),
            Forge::Forgejo => format!("{}/api/v1", running.url(Remote::Forgejo)),
        },
        woodpecker = running.url(Remote::Woodpecker),
        t3 = running.url(Remote::T3),
        ntfy = running.url(Remote::Ntfy),
        kube = running.url(Remote::Kube),
        secrets = secrets.display(),
        workspace = dir.join("workspace").display(),
        remotes = dir.join("remotes").display(),
    );
    let ci = match forge {
        Forge::Github => "github-checks",
        Forge::Forgejo => "woodpecker",
    };
    for repo in repos {
        let name = repo.split('/').nth(1).unwrap_or("app");
        out.push_str(&format!(
            "\n[repos.\"{repo}\"]\nci = [\"{ci}\"]\ndeploy = {{ namespace = \"{name}\", deployment = \"{name}\", container = \"app\" }}\n"
        ));
    }
    out
}

/// The comments on an issue of the simulated tracker (GitHub, or Forgejo when GitHub has no
/// such repo), as afk-core reads them.
pub fn comments_of(world: &World, repo: &str, issue: u64) -> Vec<afk_core::comment::CommentFacts> {
    use afk_core::comment::CommentFacts;
    use afk_core::model::Login;
    if let Some(r) = lock(&world.github).repo(repo) {
        return r
            .comments
            .iter()
            .filter(|c| c.issue == issue)
            .map(|c| CommentFacts {
                id: c.id,
                author: Login::new(c.user.login.clone()),
                body: c.body.clone(),
            })
            .collect();
    }
    forgejo::issue(world, repo, issue)
        .map(|i| {
            i.timeline
                .into_iter()
                .filter(|e| e.kind == "comment")
                .map(|e| CommentFacts {
                    id: e.id,
                    author: Login::new(e.user),
                    body: e.body,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The labels on an issue of the simulated tracker.
pub fn labels_of(world: &World, repo: &str, issue: u64) -> Vec<String> {
    if let Some(r) = lock(&world.github).repo(repo) {
        return r
            .issues
            .get(&issue)
            .map(|i| i.labels.clone())
            .unwrap_or_default();
    }
    forgejo::issue_labels(world, repo, issue)
}

/// Whether an issue of the simulated tracker is open.
pub fn is_open(world: &World, repo: &str, issue: u64) -> bool {
    if let Some(r) = lock(&world.github).repo(repo) {
        return r.issues.get(&issue).is_some_and(|i| i.open);
    }
    forgejo::issue(world, repo, issue).is_some_and(|i| i.open)
}

/// afk's newest run record on an issue (only from the bot account), with its comment body.
pub fn record_of(
    world: &World,
    repo: &str,
    issue: u64,
) -> Option<(String, afk_core::record::RunRecord)> {
    use afk_core::comment::{RecordLookup, latest_record};
    match latest_record(
        &comments_of(world, repo, issue),
        &afk_core::model::Login::new(BOT),
    ) {
        RecordLookup::Found { body, record, .. } => Some((body, *record)),
        _ => None,
    }
}

/// The simulated GitHub App a scenario can switch to ([`use_github_app`]).
pub const APP_ID: u64 = 4242;
pub const APP_INSTALLATION_ID: u64 = 77;
pub const APP_SLUG: &str = "afk-sim-app";

/// Switches a prepared GitHub scenario from the token file to GitHub App auth: registers the
/// App (with the test-only fixture key) installed on the scenario's repos, writes its private
/// key to `secrets/app-private-key.pem`, and rewrites the config's `[tracker]` to `app_id`,
/// `installation_id` and `private_key_file`, with `bot_login = "<app-slug>[bot]"`. Returns
/// that login.
pub fn use_github_app(world: &World, setup: &Setup) -> anyhow::Result<String> {
    let repos: Vec<String> = setup.repos.iter().map(|(r, _)| r.clone()).collect();
    let login = format!("{APP_SLUG}[bot]");
    lock(&world.github).install_app(
        APP_ID,
        APP_SLUG,
        crate::github::apps::TEST_APP_PUBLIC_KEY,
        APP_INSTALLATION_ID,
        &repos,
    )?;
    let key = setup.dir.join("secrets/app-private-key.pem");
    write_secret(&key, crate::github::apps::TEST_APP_PRIVATE_KEY.trim_end())?;
    let text = std::fs::read_to_string(&setup.config_path)
        .with_context(|| format!("cannot read {}", setup.config_path.display()))?;
    let token_line = format!(
        "token_file = \"{}/tracker-token\"\nbot_login = \"{BOT}\"\n",
        setup.dir.join("secrets").display()
    );
    if !text.contains(&token_line) {
        bail!("the config has no GitHub token_file and bot_login to replace");
    }
    let app_lines = format!(
        "app_id = {APP_ID}\ninstallation_id = {APP_INSTALLATION_ID}\nprivate_key_file = \"{}\"\nbot_login = \"{login}\"\n",
        key.display()
    );
    std::fs::write(
        &setup.config_path,
        text.replacen(&token_line, &app_lines, 1),
    )
    .with_context(|| format!("cannot write {}", setup.config_path.display()))?;
    Ok(login)
}
