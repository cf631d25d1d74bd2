//! `afk-sim`: serve the simulators, run the demo, run the bench (INTERFACES §5, BENCH.md).

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
    Demo {
        /// Only this scenario (landed, needs-human, fix-forward, frozen).
        #[arg(long)]
        scenario: Option<String>,
    },
    /// Serve the simulators for a scenario until killed.
    Serve {
        /// empty, landed, needs-human, fix-forward, frozen or fleet.
        #[arg(long, default_value = "empty")]
        scenario: String,
        /// Where to write a complete afk config pointing at the simulators.
        #[arg(long)]
        config_out: PathBuf,
    },
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
    }
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
