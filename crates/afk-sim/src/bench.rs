//! The bench: a fleet of enrolled repos in the simulators, one real `afk-poll` tick
//! and two real `afk-watch` ticks against it with injected latency, measured from the
//! simulators' request log; and the T3 read-cost mode (`--t3-threads`).
//!
//! The fleet: R repos `bench/repo-NNN`, each with one open unlabelled tracking issue and I
//! issues labelled `ready-for-agent`: most armed by a maintainer, every sixth by a read-only
//! user (untrusted), every sixth blocked by the tracking issue. F of the repos (spread evenly)
//! hold a live run on their first issue: claimed and dispatched by a real `afk-poll` tick during
//! setup (no latency, `max_in_flight = F`), so the status comment, the lock label, the worktree
//! and the running T3 thread are exactly what afk itself writes (`claim::plan_claim`,
//! `claim::dispatched`, `comment::render`, the T3 dispatch API). The measured config then allows
//! [`NEW_CLAIMS`] more live runs, so the measured poll tick claims and dispatches that many.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;

use crate::driver::{Binaries, Tick, TickOptions, TickRun, run_tick};
use crate::github::{Actor, Role};
use crate::infra::{Remote, RequestRecord, Sim, lock};
use crate::scenario::{self, BOT, MAINTAINER, OUTSIDER, TURN_SECS};
use crate::server::Running;
use crate::t3::T3Version;
use crate::world::World;
use crate::{kube, server};

/// afk's default request concurrency (`--concurrency`).
pub const DEFAULT_CONCURRENCY: u16 = 16;
/// Free slots the measured poll tick finds (it claims and dispatches this many winners).
pub const NEW_CLAIMS: u32 = 4;
/// Messages and activities per thread in the T3 read-cost mode (a long-lived server).
pub const T3_MESSAGES: usize = 50;
pub const T3_ACTIVITIES: usize = 200;

/// What to build and how to run it.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    pub repos: usize,
    pub issues_per_repo: usize,
    pub live_runs: usize,
    pub latency_ms: u64,
    /// Run the ticks with `--concurrency 1`.
    pub sequential: bool,
}

/// Requests of one tick.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Requests {
    pub total: u64,
    pub by_remote: BTreeMap<String, u64>,
}

/// One measured tick.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TickReport {
    pub wall_ms: u64,
    pub exit_code: Option<i32>,
    pub requests: Requests,
    /// GitHub requests that were not `304 Not Modified`.
    pub rate_limited_requests: u64,
    /// Mutating requests (a GraphQL POST query is a read).
    pub writes: u64,
    /// Reads repeated within the tick (same method, path and query; GraphQL: same body).
    pub duplicate_gets: u64,
    /// T3 fleet reads (`/shell` or `/snapshot`).
    pub t3_fleet_reads: u64,
    pub peak_rss_kib: Option<u64>,
    /// The longest chain of requests that must happen one after another (see [`poll_depth`]
    /// and [`watch_depth`]).
    pub depth: u64,
    /// The minimum the tick needs: every distinct read once, plus every write.
    pub total_requests: u64,
    pub concurrency: u16,
    pub limit_ms: u64,
    pub ratio: f64,
}

/// The fleet mode's result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FleetReport {
    pub repos: usize,
    pub issues_per_repo: usize,
    pub live_runs: usize,
    pub latency_ms: u64,
    pub concurrency: u16,
    pub poll: TickReport,
    pub watch: TickReport,
    /// The watch tick right after the first one: nothing changed, so it must write nothing.
    pub quiet_watch: TickReport,
}

/// The T3 read-cost mode's result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct T3Report {
    pub threads: usize,
    pub wall_ms: u64,
    pub exit_code: Option<i32>,
    /// Size of the `/snapshot` body afk read.
    pub snapshot_bytes: u64,
    /// Time afk spent decoding it (its `fleet read` debug log).
    pub parse_ms: u64,
    pub peak_rss_kib: Option<u64>,
    /// `peak_rss_kib × 1024 / snapshot_bytes`.
    pub peak_to_snapshot: Option<f64>,
    pub t3_fleet_reads: u64,
}

/// A seeded fleet, served.
pub struct Fleet {
    pub world: Arc<World>,
    pub running: Running,
    pub config_path: PathBuf,
    pub spec: FleetSpec,
    /// Winners the measured poll tick may claim.
    pub new_claims: u32,
    _dir: tempfile::TempDir,
}

fn repo_name(i: usize) -> String {
    format!("bench/repo-{i:03}")
}

/// Indexes of the repos that hold a live run: `live` of `repos`, spread evenly.
fn live_repos(repos: usize, live: usize) -> Vec<usize> {
    (0..live).map(|k| k * repos / live.max(1)).collect()
}

/// Builds the fleet of `spec` and claims its live runs with one real poll tick.
pub async fn build_fleet(bins: &Binaries, spec: &FleetSpec) -> anyhow::Result<Fleet> {
    if spec.repos == 0 || spec.issues_per_repo == 0 {
        bail!("the bench needs at least one repo and one issue per repo");
    }
    if spec.live_runs > spec.repos {
        bail!(
            "--live-runs {} exceeds --repos {}: a repo holds at most one live run",
            spec.live_runs,
            spec.repos
        );
    }
    let world = World::new(Sim::default());
    let running = server::start(world.clone()).await?;
    let dir = tempfile::tempdir().context("cannot create the bench directory")?;
    let root = dir.path();
    scenario::install_credentials(&world, &running, root)?;
    {
        let mut t3 = lock(&world.t3);
        t3.set_version(T3Version::V0_0_33);
        t3.timing.duration_secs = TURN_SECS;
    }
    let template = git_template(root)?;
    let names: Vec<String> = (0..spec.repos).map(repo_name).collect();
    let live: Vec<usize> = live_repos(spec.repos, spec.live_runs);
    let mut later: Vec<(String, u64, &str)> = Vec::new();
    let now = world.sim.now();
    for (i, repo) in names.iter().enumerate() {
        link_remote(root, &template, repo)?;
        let name = repo.split('/').nth(1).unwrap_or("app");
        let mut gh = lock(&world.github);
        gh.add_repo(repo, "main", false)?;
        gh.set_collaborator(repo, BOT, Role::Write)?;
        gh.set_collaborator(repo, MAINTAINER, Role::Maintain)?;
        gh.set_collaborator(repo, OUTSIDER, Role::Read)?;
        gh.add_commit(repo, "main", "initial commit", now)?;
        let tracking = gh.add_issue(
            repo,
            "Tracking: move the database to the new cluster",
            Some("Planned for next sprint."),
            MAINTAINER,
            false,
            now,
        )?;
        for j in 0..spec.issues_per_repo {
            let kind = (i * spec.issues_per_repo + j) % 6;
            let is_live = j == 0 && live.contains(&i);
            let body = if kind == 4 && !is_live {
                format!("Needs the new schema.\n\nBlocked by #{tracking}")
            } else {
                "Serve `GET /healthz` answering 200 `ok`.\n\nAcceptance: a test hits it.".to_owned()
            };
            let n = gh.add_issue(
                repo,
                &format!("Task {j} of {repo}"),
                Some(&body),
                MAINTAINER,
                false,
                now,
            )?;
            let labeler = if kind == 3 { OUTSIDER } else { MAINTAINER };
            if is_live {
                gh.label_issue(repo, n, "ready-for-agent", Actor::user(MAINTAINER), now)?;
            } else {
                later.push((repo.clone(), n, labeler));
            }
        }
        drop(gh);
        kube::add_deployment(
            &world,
            kube::NewDeployment::new(name, name, "app", &format!("registry.example/{name}:v1")),
        );
    }

    // The live runs, claimed and dispatched by afk itself.
    let live_count = u32::try_from(spec.live_runs).unwrap_or(u32::MAX);
    let config_path = scenario::write_config(&running, root, &names, live_count.max(1))?;
    if spec.live_runs > 0 {
        let setup = run_tick(
            bins,
            Tick::Poll,
            &config_path,
            world.sim.now(),
            &TickOptions {
                json: true,
                ..TickOptions::default()
            },
        )
        .await?;
        let locked = locked_issues(&world);
        if locked != spec.live_runs {
            bail!(
                "setting up the live runs: the poll tick locked {locked} issue(s), expected {} (exit {:?}); its log:\n{}",
                spec.live_runs,
                setup.code,
                setup.stderr
            );
        }
    }
    {
        let mut gh = lock(&world.github);
        for (repo, n, labeler) in &later {
            gh.label_issue(repo, *n, "ready-for-agent", Actor::user(labeler), now)?;
        }
    }
    let new_claims = NEW_CLAIMS;
    let config_path = scenario::write_config(&running, root, &names, live_count + new_claims)?;
    Ok(Fleet {
        world,
        running,
        config_path,
        spec: spec.clone(),
        new_claims,
        _dir: dir,
    })
}

fn locked_issues(world: &World) -> usize {
    let gh = lock(&world.github);
    (0..usize::MAX)
        .map(repo_name)
        .map_while(|r| {
            gh.repo(&r).map(|repo| {
                repo.issues
                    .values()
                    .filter(|i| i.labels.iter().any(|l| l == "agent-in-progress"))
                    .count()
            })
        })
        .sum()
}

/// One bare repository every enrolled repo's clone URL points at (through a link), so the
/// claims' clones work without creating hundreds of repositories.
fn git_template(root: &Path) -> anyhow::Result<PathBuf> {
    scenario::init_git_remote(root, "template/app")?;
    Ok(root.join("remotes").join("template/app.git"))
}

fn link_remote(root: &Path, template: &Path, repo: &str) -> anyhow::Result<()> {
    let path = root.join("remotes").join(format!("{repo}.git"));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    #[cfg(unix)]
    std::os::unix::fs::symlink(template, &path)
        .with_context(|| format!("cannot link {}", path.display()))?;
    #[cfg(not(unix))]
    scenario::init_git_remote(root, repo).map(drop)?;
    Ok(())
}

impl Fleet {
    fn concurrency(&self) -> u16 {
        if self.spec.sequential {
            1
        } else {
            DEFAULT_CONCURRENCY
        }
    }

    async fn measure(
        &self,
        bins: &Binaries,
        tick: Tick,
    ) -> anyhow::Result<(TickRun, Vec<RequestRecord>)> {
        let sim = &self.world.sim;
        sim.reset_log();
        sim.set_latency_ms(self.spec.latency_ms);
        let run = run_tick(
            bins,
            tick,
            &self.config_path,
            sim.now(),
            &TickOptions {
                json: true,
                concurrency: Some(self.concurrency()),
                measure_rss: true,
                ..TickOptions::default()
            },
        )
        .await?;
        sim.set_latency_ms(0);
        let log = sim.requests();
        if run.code != Some(0) {
            tracing::warn!(tick = tick.name(), code = ?run.code, "the tick did not exit 0");
        }
        Ok((run, log))
    }

    /// Runs poll, watch and a second (quiet) watch, and measures each.
    pub async fn run(&self, bins: &Binaries) -> anyhow::Result<FleetReport> {
        let c = self.concurrency();
        let l = self.spec.latency_ms;
        let (poll, log) = self.measure(bins, Tick::Poll).await?;
        let claims = claims_in(&poll);
        let poll = report(&poll, &log, poll_depth(&log, claims), c, l);
        let (watch, log) = self.measure(bins, Tick::Watch).await?;
        let watch = report(&watch, &log, watch_depth(&log), c, l);
        let (quiet, log) = self.measure(bins, Tick::Watch).await?;
        let quiet_watch = report(&quiet, &log, watch_depth(&log), c, l);
        Ok(FleetReport {
            repos: self.spec.repos,
            issues_per_repo: self.spec.issues_per_repo,
            live_runs: self.spec.live_runs,
            latency_ms: l,
            concurrency: c,
            poll,
            watch,
            quiet_watch,
        })
    }
}

/// Dispatch entries in the tick's JSON plan.
fn claims_in(run: &TickRun) -> usize {
    run.plan
        .as_ref()
        .and_then(|p| p.get("dispatch"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

fn is_read(r: &RequestRecord) -> bool {
    !r.is_write() || (r.remote == Remote::Github && r.path == "/graphql")
}

fn is_fleet_read(r: &RequestRecord) -> bool {
    r.remote == Remote::T3
        && (r.path == "/api/orchestration/shell" || r.path == "/api/orchestration/snapshot")
}

/// The identity of a read: a repeated identity within one tick is a duplicate.
fn read_key(r: &RequestRecord) -> (Remote, String, String, String) {
    let body = if r.method == "GET" {
        String::new()
    } else {
        r.body.clone()
    };
    (
        r.remote,
        r.method.clone(),
        format!("{}?{}", r.path, r.query),
        body,
    )
}

/// Reads repeated within the log (each repetition counts once).
pub fn duplicate_reads(log: &[RequestRecord]) -> u64 {
    let mut seen: HashMap<(Remote, String, String, String), u64> = HashMap::new();
    for r in log.iter().filter(|r| is_read(r)) {
        *seen.entry(read_key(r)).or_default() += 1;
    }
    seen.values().map(|n| n - 1).sum()
}

/// Mutating requests (a GraphQL POST query is a read).
pub fn writes(log: &[RequestRecord]) -> u64 {
    log.iter().filter(|r| !is_read(r)).count() as u64
}

/// T3 fleet reads in the log.
pub fn fleet_reads(log: &[RequestRecord]) -> u64 {
    log.iter().filter(|r| is_fleet_read(r)).count() as u64
}

fn has(log: &[RequestRecord], f: impl Fn(&RequestRecord) -> bool) -> bool {
    log.iter().any(f)
}

/// The poll tick's dependent chain, from its code paths:
/// - gathering: T3 environment → fleet (2) runs beside each repo's chain
///   list ready issues → label events → labeler's permission → body edits / blocker issue
///   (the last two independent of each other: one level), i.e. 3 or 4;
/// - then, when winners are claimed: comments ∥ default branch → create status comment →
///   lock label → T3 project.create → thread.create → turn.start → edit status comment (7;
///   6 when the project already exists).
pub fn poll_depth(log: &[RequestRecord], claims: usize) -> u64 {
    let blockers_or_edits = has(log, |r| r.remote == Remote::Github && r.path == "/graphql")
        || has(log, |r| {
            r.remote == Remote::Github
                && r.method == "GET"
                && r.path.contains("/issues/")
                && !r.path.ends_with("/events")
                && !r.path.ends_with("/comments")
        });
    let gather = 3 + u64::from(blockers_or_edits);
    let gather = gather.max(2);
    if claims == 0 {
        return gather;
    }
    let creates_project = has(log, |r| {
        r.remote == Remote::T3 && r.method == "POST" && r.body.contains("project.create")
    });
    gather + 6 + u64::from(creates_project)
}

/// The watch tick's dependent chain, from its code paths: T3 environment → fleet (2) beside
/// each repo's locked-issue list (1); then per live run: comments (the run record) → commits
/// since dispatch ∥ thread detail ∥ default branch (the chain ends there while no commit of
/// the run was pushed; a push adds CI → rollout).
pub fn watch_depth(log: &[RequestRecord]) -> u64 {
    let comments = has(log, |r| {
        r.remote == Remote::Github && r.method == "GET" && r.path.ends_with("/comments")
    });
    let commits = has(log, |r| {
        r.remote == Remote::Github && r.method == "GET" && r.path.ends_with("/commits")
    });
    2 + u64::from(comments) + u64::from(commits)
}

/// Measures one tick from its log.
pub fn report(
    run: &TickRun,
    log: &[RequestRecord],
    depth: u64,
    concurrency: u16,
    latency_ms: u64,
) -> TickReport {
    let mut by_remote = BTreeMap::new();
    for r in log {
        *by_remote
            .entry(r.remote.as_str().to_owned())
            .or_insert(0u64) += 1;
    }
    let total = log.len() as u64;
    let duplicates = duplicate_reads(log);
    let minimum = total - duplicates;
    let c = u64::from(concurrency.max(1));
    let limit_ms = (depth * latency_ms).max(minimum.div_ceil(c) * latency_ms);
    let wall_ms = u64::try_from(run.wall.as_millis()).unwrap_or(u64::MAX);
    TickReport {
        wall_ms,
        exit_code: run.code,
        requests: Requests { total, by_remote },
        rate_limited_requests: log
            .iter()
            .filter(|r| r.remote == Remote::Github && r.status != 304)
            .count() as u64,
        writes: writes(log),
        duplicate_gets: duplicates,
        t3_fleet_reads: fleet_reads(log),
        peak_rss_kib: run.peak_rss_kib,
        depth,
        total_requests: minimum,
        concurrency: concurrency.max(1),
        limit_ms,
        ratio: if limit_ms == 0 {
            0.0
        } else {
            wall_ms as f64 / limit_ms as f64
        },
    }
}

/// The T3 read-cost mode: `threads` threads with long histories served as a pre-0.0.32
/// `/snapshot`, one watch tick with debug logs.
pub async fn run_t3(bins: &Binaries, threads: usize) -> anyhow::Result<T3Report> {
    let world = World::new(Sim::default());
    let running = server::start(world.clone()).await?;
    let dir = tempfile::tempdir().context("cannot create the bench directory")?;
    scenario::install_credentials(&world, &running, dir.path())?;
    {
        let mut t3 = lock(&world.t3);
        t3.set_version(T3Version::V0_0_27);
        crate::t3::seed_history(&mut t3, threads, T3_MESSAGES, T3_ACTIVITIES);
    }
    // One enrolled repo without live runs: the tick's cost is then the fleet read.
    let repo = repo_name(0);
    {
        let mut gh = lock(&world.github);
        gh.add_repo(&repo, "main", false)?;
        gh.set_collaborator(&repo, BOT, Role::Write)?;
    }
    let config = scenario::write_config(&running, dir.path(), &[repo], 1)?;
    world.sim.reset_log();
    let run = run_tick(
        bins,
        Tick::Watch,
        &config,
        world.sim.now(),
        &TickOptions {
            json: true,
            measure_rss: true,
            env: vec![("RUST_LOG".into(), "debug".into())],
            ..TickOptions::default()
        },
    )
    .await?;
    let log = world.sim.requests();
    let fleet_read = run
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("message").and_then(Value::as_str) == Some("fleet read"));
    let Some(fleet_read) = fleet_read else {
        bail!(
            "the watch tick logged no `fleet read` (exit {:?}); its log:\n{}",
            run.code,
            run.stderr.chars().take(4000).collect::<String>()
        );
    };
    let field = |k: &str| fleet_read.get(k).and_then(Value::as_u64).unwrap_or(0);
    let snapshot_bytes = field("bytes");
    Ok(T3Report {
        threads,
        wall_ms: u64::try_from(run.wall.as_millis()).unwrap_or(u64::MAX),
        exit_code: run.code,
        snapshot_bytes,
        parse_ms: field("parse_ms"),
        peak_rss_kib: run.peak_rss_kib,
        peak_to_snapshot: run
            .peak_rss_kib
            .filter(|_| snapshot_bytes > 0)
            .map(|k| (k * 1024) as f64 / snapshot_bytes as f64),
        t3_fleet_reads: fleet_reads(&log),
    })
}
