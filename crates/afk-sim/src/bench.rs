//! The bench: a fleet of enrolled repos in the simulators, the real `afk-poll` and `afk-watch`
//! ticks run against it with injected latency, each measured from the simulators' request
//! log (requests, writes, repeated reads, wall time against the physical limit, peak memory,
//! GitHub rate-limit cost); a second, smaller fleet for the hourly cost model behind
//! `fleet_fits`; the targets; and the T3 read-cost mode (`--t3-threads`, [`t3`]).
//!
//! The fleet: R repos `bench/repo-NNN`, each with one open unlabelled tracking issue and I
//! issues labelled `ready-for-agent`: most armed by a maintainer, every sixth by a read-only
//! user (untrusted), every sixth blocked by the tracking issue. F of the repos (spread evenly)
//! hold a live run on their first issue: claimed and dispatched by a real `afk-poll` tick during
//! setup (no latency, `max_in_flight = F`), so the status comment, the lock label, the worktree
//! and the running T3 thread are exactly what afk itself writes (`claim::plan_claim`,
//! `claim::dispatched`, `comment::render`, the T3 dispatch API).
//!
//! The measured ticks, in order, sharing one workspace root as in production (whatever a tick
//! keeps there, the next one finds): `poll` (cold; [`NEW_CLAIMS`] free slots, so it claims and
//! dispatches), `watch` (cold), `poll_warm` ([`NEW_CLAIMS`] more free slots: a second poll with
//! real work), `watch_warm`, then, after one unmeasured poll with no free slot that settles
//! what `poll_warm` wrote, `poll_quiet` (nothing changed since the previous poll) and
//! `quiet_watch` (nothing changed since the previous watch). The second tick of each kind is
//! the one the targets compare.

mod cost;
mod fit;
mod measure;
mod schedule;
mod t3;
mod targets;
mod text;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::driver::{Binaries, Tick, TickOptions, TickRun, run_tick};
use crate::github::{Actor, Role};
use crate::infra::{RequestRecord, Sim, lock};
use crate::scenario::{self, BOT, MAINTAINER, OUTSIDER, TURN_SECS};
use crate::server::Running;
use crate::t3::T3Version;
use crate::world::World;
use crate::{kube, server};

pub use cost::{RateCost, graphql_points_source, rate_cost, sim_graphql_points};
pub use fit::{BUDGET_SHARE, FitPoint, FitReport, HOURLY_BUDGET, Line, least_squares};
pub use measure::{
    Measured, Requests, TickReport, claims_in, duplicate_reads, fleet_reads, poll_depth, report,
    watch_depth, writes,
};
pub use schedule::{Schedules, read_schedules, shipped_cronjobs, ticks_per_hour};
pub use t3::{T3Report, run_t3};
pub use targets::{TARGET_FLEET, Target, evaluate};
pub use text::render;

/// afk's default request concurrency (`--concurrency`).
pub const DEFAULT_CONCURRENCY: u16 = 16;
/// Free slots each measured poll with work finds (it claims and dispatches this many winners).
pub const NEW_CLAIMS: u32 = 4;
/// Messages and activities per thread in the T3 read-cost mode (a long-lived server).
pub const T3_MESSAGES: usize = 50;
pub const T3_ACTIVITIES: usize = 200;
/// The simulated GitHub budget of a bench fleet: the bench measures what a whole tick costs,
/// so the budget must not run out under it; whether the cost fits GitHub's real hourly budget
/// is what `fleet_fits` answers.
pub const BENCH_RATE_LIMIT: u64 = 100_000_000;

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

/// What else to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Measure a second, smaller fleet and answer `fleet_fits`.
    pub fit: bool,
    /// The CronJob manifest whose schedules set the ticks an hour.
    pub cronjobs: PathBuf,
}

impl Default for BenchOptions {
    fn default() -> BenchOptions {
        BenchOptions {
            fit: true,
            cronjobs: shipped_cronjobs(),
        }
    }
}

/// The fleet mode's result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FleetReport {
    pub repos: usize,
    pub issues_per_repo: usize,
    pub live_runs: usize,
    pub latency_ms: u64,
    pub concurrency: u16,
    /// Free slots `poll` and `poll_warm` each found.
    pub new_claims_per_poll: u32,
    /// Live runs when the quiet ticks ran: F plus what the two polls claimed.
    pub live_runs_watched: usize,
    /// Where the GraphQL points come from: the simulator's own account, or one per request.
    pub graphql_points_source: &'static str,
    pub poll: TickReport,
    pub watch: TickReport,
    pub poll_warm: TickReport,
    pub watch_warm: TickReport,
    pub poll_quiet: TickReport,
    /// The watch tick after `watch_warm`: nothing changed, so it must write nothing.
    pub quiet_watch: TickReport,
    /// The largest fleet that fits the hourly budget (see [`FitReport`]); `None` without the
    /// fit (`--no-fit`) or when the model sets no bound.
    pub fleet_fits: Option<u64>,
    pub fit: Option<FitReport>,
    pub targets: BTreeMap<String, Target>,
}

impl FleetReport {
    /// The measured ticks, in the order they ran.
    pub fn ticks(&self) -> [(&'static str, &TickReport); 6] {
        [
            ("poll", &self.poll),
            ("watch", &self.watch),
            ("poll_warm", &self.poll_warm),
            ("watch_warm", &self.watch_warm),
            ("poll_quiet", &self.poll_quiet),
            ("quiet_watch", &self.quiet_watch),
        ]
    }
}

/// The ticks of one fleet, as measured.
struct FleetTicks {
    poll: TickReport,
    watch: TickReport,
    poll_warm: TickReport,
    watch_warm: TickReport,
    /// `None` when only the ticks with work were run (the fit's fleet).
    quiet: Option<(TickReport, TickReport)>,
    live_runs_watched: usize,
}

/// A seeded fleet, served.
pub struct Fleet {
    pub world: Arc<World>,
    pub running: Running,
    pub config_path: PathBuf,
    pub spec: FleetSpec,
    /// Winners each measured poll with work may claim.
    pub new_claims: u32,
    names: Vec<String>,
    dir: tempfile::TempDir,
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
    {
        let mut gh = lock(&world.github);
        gh.rate.limit = BENCH_RATE_LIMIT;
        gh.rate.remaining = BENCH_RATE_LIMIT;
        gh.graphql_rate.limit = BENCH_RATE_LIMIT;
        gh.graphql_rate.remaining = BENCH_RATE_LIMIT;
    }
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
        names,
        dir,
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

    /// Rewrites the config (same workspace root) with room for `free` more live runs than
    /// the fleet holds now.
    fn allow_claims(&self, free: u32) -> anyhow::Result<()> {
        let live = u32::try_from(locked_issues(&self.world)).unwrap_or(u32::MAX);
        let path = scenario::write_config(
            &self.running,
            self.dir.path(),
            &self.names,
            live.saturating_add(free).max(1),
        )?;
        if path != self.config_path {
            bail!(
                "the bench config moved from {} to {}",
                self.config_path.display(),
                path.display()
            );
        }
        Ok(())
    }

    /// Runs one tick with the fleet's latency and reports it.
    async fn measure(&self, bins: &Binaries, tick: Tick) -> anyhow::Result<TickReport> {
        let sim = &self.world.sim;
        sim.reset_log();
        sim.set_latency_ms(self.spec.latency_ms);
        let before = sim_graphql_points(&self.world);
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
        .await;
        sim.set_latency_ms(0);
        let run = run?;
        let after = sim_graphql_points(&self.world);
        let log = sim.requests();
        if run.code != Some(0) {
            tracing::warn!(tick = tick.name(), code = ?run.code, "the tick did not exit 0");
        }
        Ok(self.report(
            tick,
            &run,
            &log,
            before.zip(after).map(|(b, a)| a.saturating_sub(b)),
        ))
    }

    fn report(
        &self,
        tick: Tick,
        run: &TickRun,
        log: &[RequestRecord],
        graphql_charged: Option<u64>,
    ) -> TickReport {
        let depth = match tick {
            Tick::Poll => poll_depth(log, claims_in(run)),
            Tick::Watch => watch_depth(log),
        };
        report(
            &Measured {
                run,
                log,
                graphql_charged,
                concurrency: self.concurrency(),
                latency_ms: self.spec.latency_ms,
            },
            depth,
        )
    }

    /// The measured sequence (see the module docs); `quiet` adds the settling poll and the
    /// two quiet ticks.
    async fn ticks(&self, bins: &Binaries, quiet: bool) -> anyhow::Result<FleetTicks> {
        let poll = self.measure(bins, Tick::Poll).await?;
        let watch = self.measure(bins, Tick::Watch).await?;
        self.allow_claims(self.new_claims)?;
        let poll_warm = self.measure(bins, Tick::Poll).await?;
        let watch_warm = self.measure(bins, Tick::Watch).await?;
        let live_runs_watched = locked_issues(&self.world);
        let quiet = if quiet {
            self.allow_claims(0)?;
            let settle = run_tick(
                bins,
                Tick::Poll,
                &self.config_path,
                self.world.sim.now(),
                &TickOptions {
                    json: true,
                    concurrency: Some(self.concurrency()),
                    ..TickOptions::default()
                },
            )
            .await?;
            if settle.code != Some(0) || claims_in(&settle) != 0 {
                bail!(
                    "the settling poll (no free slot) exited {:?} and claimed {}: its log:\n{}",
                    settle.code,
                    claims_in(&settle),
                    settle.stderr.chars().take(4000).collect::<String>()
                );
            }
            let poll_quiet = self.measure(bins, Tick::Poll).await?;
            let quiet_watch = self.measure(bins, Tick::Watch).await?;
            Some((poll_quiet, quiet_watch))
        } else {
            None
        };
        Ok(FleetTicks {
            poll,
            watch,
            poll_warm,
            watch_warm,
            quiet,
            live_runs_watched,
        })
    }

    /// Runs the measured sequence (without the fit or the targets: see [`run_bench`]).
    pub async fn run(&self, bins: &Binaries) -> anyhow::Result<FleetReport> {
        let t = self.ticks(bins, true).await?;
        let Some((poll_quiet, quiet_watch)) = t.quiet else {
            bail!("the quiet ticks did not run");
        };
        Ok(FleetReport {
            repos: self.spec.repos,
            issues_per_repo: self.spec.issues_per_repo,
            live_runs: self.spec.live_runs,
            latency_ms: self.spec.latency_ms,
            concurrency: self.concurrency(),
            new_claims_per_poll: self.new_claims,
            live_runs_watched: t.live_runs_watched,
            graphql_points_source: graphql_points_source(&self.world),
            poll: t.poll,
            watch: t.watch,
            poll_warm: t.poll_warm,
            watch_warm: t.watch_warm,
            poll_quiet,
            quiet_watch,
            fleet_fits: None,
            fit: None,
            targets: BTreeMap::new(),
        })
    }

    /// The fit's point for this fleet: its warm ticks' costs.
    async fn fit_point(&self, bins: &Binaries) -> anyhow::Result<FitPoint> {
        let t = self.ticks(bins, false).await?;
        Ok(point(self.spec.repos, &t.poll_warm, &t.watch_warm))
    }
}

fn point(repos: usize, poll_warm: &TickReport, watch_warm: &TickReport) -> FitPoint {
    FitPoint {
        repos,
        poll_warm: poll_warm.rate_limit_cost,
        watch_warm: watch_warm.rate_limit_cost,
        poll_warm_claims: poll_warm.claims,
    }
}

/// The size of the fit's second fleet: a quarter of `spec`'s, but room for its live runs and
/// both polls' claims; `None` when that is not smaller than `spec`'s.
pub fn fit_repos(spec: &FleetSpec) -> Option<usize> {
    let needed = spec.live_runs + 2 * NEW_CLAIMS as usize;
    let small = (spec.repos / 4).max(needed).max(1);
    (small < spec.repos).then_some(small)
}

/// The whole bench: the fleet of `spec` through the measured sequence, with `opts.fit` a
/// smaller fleet (same I, F, L) for the hourly cost model, then the targets.
pub async fn run_bench(
    bins: &Binaries,
    spec: &FleetSpec,
    opts: &BenchOptions,
) -> anyhow::Result<FleetReport> {
    // Everything the fit needs is checked before the (long) measurement starts.
    let fit_plan = if opts.fit {
        let schedules = read_schedules(&opts.cronjobs)?;
        let Some(small) = fit_repos(spec) else {
            bail!(
                "fleet_fits needs a second, smaller fleet with room for the {} live runs and \
                 {} claims: --repos {} is too small for that; pass more repos or --no-fit",
                spec.live_runs,
                2 * NEW_CLAIMS,
                spec.repos
            );
        };
        Some((schedules, small))
    } else {
        None
    };
    let mut report = {
        let fleet = build_fleet(bins, spec).await?;
        fleet.run(bins).await?
    };
    if let Some((schedules, small)) = fit_plan {
        let small_spec = FleetSpec {
            repos: small,
            ..spec.clone()
        };
        let small_point = {
            let fleet = build_fleet(bins, &small_spec).await?;
            fleet.fit_point(bins).await?
        };
        let big_point = point(spec.repos, &report.poll_warm, &report.watch_warm);
        let fit = fit::fit(vec![small_point, big_point], schedules)?;
        report.fleet_fits = fit.fleet_fits;
        report.fit = Some(fit);
    }
    report.targets = evaluate(&report);
    Ok(report)
}
