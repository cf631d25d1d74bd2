//! `afk-sim demo`: the whole system in one command. For each lifecycle scenario it starts the
//! simulators, runs the real `afk-poll` and `afk-watch` binaries tick after tick on a
//! simulated clock, and tells the story: each tick's plan, the final status comment, the
//! labels and issue state, and the doorbell messages.

use std::fmt::Write as _;
use std::path::Path;

use afk_core::plan::{Decision, Plan, render_text};
use anyhow::Context;

use crate::driver::{Binaries, Tick, TickOptions, run_tick};
use crate::infra::{Sim, lock};
use crate::scenario::{prepare, record_of};
use crate::world::World;

/// The scenarios the demo walks through, in order.
pub const DEMO_SCENARIOS: [&str; 4] = ["landed", "needs-human", "fix-forward", "frozen"];

/// Simulated minutes between two rounds of ticks.
const STEP_SECS: i64 = 300;
/// Rounds before a scenario is declared stuck.
const MAX_ROUNDS: usize = 60;

/// How one scenario ended.
#[derive(Debug, Clone)]
pub struct ScenarioEnd {
    pub name: String,
    /// `repo#N verdict` for each armed issue.
    pub verdicts: Vec<String>,
    pub rounds: usize,
}

/// Runs every demo scenario, printing the story to stdout.
pub async fn run(bins: &Binaries, only: Option<&str>) -> anyhow::Result<Vec<ScenarioEnd>> {
    let mut ends = Vec::new();
    for name in DEMO_SCENARIOS
        .iter()
        .filter(|n| only.is_none_or(|o| o == **n))
    {
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        ends.push(run_scenario(bins, name, dir.path()).await?);
    }
    println!("\n== Summary");
    for e in &ends {
        println!(
            "  {:<12} {} ({} rounds of ticks)",
            e.name,
            e.verdicts.join(", "),
            e.rounds
        );
    }
    Ok(ends)
}

/// One scenario to its verdicts.
pub async fn run_scenario(bins: &Binaries, name: &str, dir: &Path) -> anyhow::Result<ScenarioEnd> {
    let world = World::new(Sim::default());
    let running = crate::server::start(world.clone()).await?;
    let setup = prepare(&world, &running, name, dir)?;
    println!("\n==================== scenario: {name} ====================");
    for (repo, n) in &setup.repos {
        println!(
            "{repo}#{n} labelled ready-for-agent by a maintainer; T3, CI, the cluster and the doorbells are simulated."
        );
    }
    let opts = TickOptions {
        json: true,
        ..TickOptions::default()
    };
    let mut rounds = 0;
    while rounds < MAX_ROUNDS {
        rounds += 1;
        let now = world.sim.now();
        for tick in [Tick::Poll, Tick::Watch] {
            let run = run_tick(bins, tick, &setup.config_path, now, &opts).await?;
            let header = format!(
                "\n--- {} at {} (exit {})",
                tick.name(),
                now.format("%H:%M"),
                run.code.unwrap_or(-1)
            );
            match run
                .plan
                .clone()
                .and_then(|v| serde_json::from_value::<Plan>(v).ok())
            {
                Some(plan) if eventful(&plan) => {
                    println!("{header}");
                    println!("{}", indent(render_text(&plan).trim_end()));
                }
                Some(_) => {}
                None => {
                    println!("{header}: no plan printed");
                    println!("{}", indent(run.stderr.trim_end()));
                }
            }
        }
        if finished(&world, &setup.repos) {
            break;
        }
        world.sim.clock.advance_secs(STEP_SECS);
    }
    let verdicts = report(&world, &setup.repos);
    Ok(ScenarioEnd {
        name: name.to_owned(),
        verdicts,
        rounds,
    })
}

/// A plan worth showing: one that did or decided something beyond waiting.
fn eventful(plan: &Plan) -> bool {
    !plan.dispatch.is_empty()
        || !plan.effects.is_empty()
        || !plan.errors.is_empty()
        || plan.runs.iter().any(|r| r.decision != Decision::Wait)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every armed issue has a finished run whose lock is released.
fn finished(world: &World, repos: &[(String, u64)]) -> bool {
    repos.iter().all(|(repo, n)| {
        let locked = lock(&world.github)
            .repo(repo)
            .and_then(|r| r.issues.get(n))
            .is_some_and(|i| i.labels.iter().any(|l| l == "agent-in-progress"));
        let done = record_of(world, repo, *n).is_some_and(|(_, r)| r.verdict.is_some());
        done && !locked
    })
}

/// Prints the final state: status comments, labels, issue state, doorbells.
fn report(world: &World, repos: &[(String, u64)]) -> Vec<String> {
    let mut verdicts = Vec::new();
    for (repo, n) in repos {
        let (labels, state) = {
            let gh = lock(&world.github);
            gh.repo(repo)
                .and_then(|r| r.issues.get(n))
                .map(|i| {
                    (
                        i.labels.join(", "),
                        if i.open {
                            "open".to_owned()
                        } else {
                            format!("closed ({})", i.state_reason.clone().unwrap_or_default())
                        },
                    )
                })
                .unwrap_or_default()
        };
        let verdict = match record_of(world, repo, *n) {
            Some((body, record)) => {
                println!(
                    "\n--- status comment on {repo}#{n}\n{}",
                    indent(body.split("<!--").next().unwrap_or("").trim_end())
                );
                record
                    .verdict
                    .map(|v| v.verdict.as_str().to_owned())
                    .unwrap_or_else(|| "no verdict".into())
            }
            None => "no run".to_owned(),
        };
        println!("\n--- {repo}#{n}: issue {state}; labels [{labels}]");
        verdicts.push(format!("{repo}#{n} {verdict}"));
    }
    let mut bell = String::new();
    for m in crate::ntfy::messages(&lock(&world.ntfy)) {
        let _ = writeln!(
            bell,
            "  ntfy  [priority {}] {} — {}",
            m.priority,
            m.title,
            m.message.lines().next().unwrap_or("")
        );
    }
    for p in crate::slack::posts(&lock(&world.slack)) {
        let _ = writeln!(bell, "  slack {}", p.text.lines().next().unwrap_or(""));
    }
    println!(
        "\n--- doorbell\n{}",
        if bell.is_empty() {
            "  (nothing rang)\n".to_owned()
        } else {
            bell
        }
    );
    verdicts
}
