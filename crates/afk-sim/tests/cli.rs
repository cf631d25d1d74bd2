//! The afk-sim command line: `serve --help` lists every scenario the code knows, each with its
//! line, and every listed scenario can be prepared.

use std::process::Command;

use afk_sim::infra::Sim;
use afk_sim::scenario::{SCENARIOS, prepare, scenario_names};
use afk_sim::world::World;

#[test]
fn serve_help_lists_every_scenario_with_its_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_afk-sim"))
        .args(["serve", "--help"])
        .output()
        .expect("afk-sim runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for (name, line) in SCENARIOS {
        assert!(
            help.lines()
                .any(|l| l.contains(&format!("- {name}:")) && l.contains(line)),
            "serve --help lacks {name}:\n{help}"
        );
    }
}

#[test]
fn an_unknown_scenario_is_refused_with_the_known_ones() {
    let out = Command::new(env!("CARGO_BIN_EXE_afk-sim"))
        .args(["serve", "--scenario", "nope", "--config-out", "afk.toml"])
        .output()
        .expect("afk-sim runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for name in scenario_names() {
        assert!(stderr.contains(name), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_listed_scenario_can_be_prepared() {
    for name in scenario_names() {
        let world = World::new(Sim::default());
        let running = afk_sim::server::start(world.clone())
            .await
            .expect("simulators start");
        let dir = tempfile::tempdir().expect("tempdir");
        let setup = prepare(&world, &running, name, dir.path())
            .unwrap_or_else(|e| panic!("scenario {name}: {e:#}"));
        assert!(setup.config_path.is_file(), "{name} wrote its config");
    }
}
