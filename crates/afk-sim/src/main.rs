//! `afk-sim`: serve the simulators, run the demo, run the bench.

use std::path::PathBuf;
use std::process::ExitCode;

use afk_sim::driver::Binaries;
use afk_sim::infra::Sim;
use afk_sim::world::World;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Strict simulators of every remote afk talks to, the demo and the bench"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the real afk-poll/afk-watch through the lifecycle scenarios and tell the story.
    ///
    /// afk-poll and afk-watch are looked for next to afk-sim, then on PATH (install them with
    /// `cargo install --locked --path crates/afk`); run from the source tree's target folder
    /// they are built first.
    Demo {
        /// Only this scenario.
        #[arg(long, value_parser = scenario_values(&afk_sim::demo::DEMO_SCENARIOS))]
        scenario: Option<String>,
    },
    /// Serve the simulators for a scenario until killed.
    ///
    /// Writes a complete afk config pointing at the simulators, prints `ready <control-url>`
    /// once every simulator listens, and serves until interrupted.
    Serve {
        /// The world to serve.
        #[arg(long, default_value = "empty", value_parser = scenario_values(&afk_sim::scenario::scenario_names()))]
        scenario: String,
        /// Where to write a complete afk config pointing at the simulators.
        #[arg(long)]
        config_out: PathBuf,
    },
    /// Measure the real binaries' poll and watch ticks (cold, warm, quiet) against a simulated
    /// fleet with injected latency, their GitHub rate-limit cost, the largest fleet that fits the
    /// hourly budget, and the targets (docs/performance.md); or, with --t3-threads, the cost of
    /// one T3 fleet read.
    Bench {
        #[arg(long, default_value_t = 200)]
        repos: usize,
        #[arg(long, default_value_t = 5)]
        issues_per_repo: usize,
        #[arg(long, default_value_t = 20)]
        live_runs: usize,
        /// Latency added to every simulated request, in milliseconds.
        #[arg(long, default_value_t = 50)]
        latency_ms: u64,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Run the ticks with request concurrency 1.
        #[arg(long)]
        sequential: bool,
        /// Measure one watch tick reading a pre-0.0.32 /snapshot of N threads instead.
        #[arg(long)]
        t3_threads: Option<usize>,
        /// Skip the second, smaller fleet (and so `fleet_fits`): a faster run.
        #[arg(long)]
        no_fit: bool,
        /// The CronJob manifest whose afk-poll and afk-watch schedules set the ticks an hour for
        /// `fleet_fits` (default: the source tree's deploy/base/cronjobs.yaml).
        #[arg(long)]
        cronjobs: Option<PathBuf>,
    },
}

/// The scenarios `names` as the argument's possible values, each with its line of
/// [`afk_sim::scenario::SCENARIOS`] for `--help`: the list cannot drift from the code.
fn scenario_values(names: &[&'static str]) -> clap::builder::PossibleValuesParser {
    let values: Vec<clap::builder::PossibleValue> = names
        .iter()
        .map(|name| {
            let help = afk_sim::scenario::SCENARIOS
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, help)| *help);
            clap::builder::PossibleValue::new(*name).help(help)
        })
        .collect();
    clap::builder::PossibleValuesParser::new(values)
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("afk-sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("afk-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Demo { scenario } => {
            let bins = Binaries::beside_current_exe()?;
            afk_sim::demo::run(&bins, scenario.as_deref()).await?;
            Ok(())
        }
        Command::Serve {
            scenario,
            config_out,
        } => serve(&scenario, &config_out).await,
        Command::Bench {
            repos,
            issues_per_repo,
            live_runs,
            latency_ms,
            json,
            sequential,
            t3_threads,
            no_fit,
            cronjobs,
        } => {
            let bins = Binaries::beside_current_exe()?;
            if let Some(threads) = t3_threads {
                let report = afk_sim::bench::run_t3(&bins, threads).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    print_t3(&report);
                }
                return Ok(());
            }
            let spec = afk_sim::bench::FleetSpec {
                repos,
                issues_per_repo,
                live_runs,
                latency_ms,
                sequential,
            };
            let opts = afk_sim::bench::BenchOptions {
                fit: !no_fit,
                cronjobs: cronjobs.unwrap_or_else(afk_sim::bench::shipped_cronjobs),
            };
            let report = afk_sim::bench::run_bench(&bins, &spec, &opts).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", afk_sim::bench::render(&report));
            }
            Ok(())
        }
    }
}

fn print_t3(r: &afk_sim::bench::T3Report) {
    println!(
        "T3 /snapshot of {} threads: {} bytes, parsed in {} ms; peak RSS {} KiB ({} x the snapshot); watch tick {} ms, {} fleet read(s)",
        r.threads,
        r.snapshot_bytes,
        r.parse_ms,
        r.peak_rss_kib.map_or("?".to_owned(), |k| k.to_string()),
        r.peak_to_snapshot
            .map_or("?".to_owned(), |x| format!("{x:.2}")),
        r.wall_ms,
        r.t3_fleet_reads
    );
}

async fn serve(scenario: &str, config_out: &std::path::Path) -> anyhow::Result<()> {
    let world = World::new(Sim::default());
    let running = afk_sim::server::start(world.clone()).await?;
    let dir = config_out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let setup = afk_sim::scenario::prepare(
        &world,
        &running,
        scenario,
        &dir.join(format!("afk-sim-{scenario}")),
    )?;
    std::fs::copy(&setup.config_path, config_out)?;
    println!("ready {}", running.control_url);
    use std::io::Write;
    std::io::stdout().flush()?;
    tokio::signal::ctrl_c().await?;
    Ok(())
}
