//! The T3 read-cost mode (`bench --t3-threads N`): N threads with long histories served as a
//! pre-0.0.32 `/snapshot`, one watch tick with debug logs, its parse time and peak memory.

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;

use super::{T3_ACTIVITIES, T3_MESSAGES, fleet_reads, repo_name};
use crate::driver::{Binaries, Tick, TickOptions, run_tick};
use crate::github::Role;
use crate::infra::{Sim, lock};
use crate::scenario::{self, BOT};
use crate::server;
use crate::t3::T3Version;
use crate::world::World;

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
