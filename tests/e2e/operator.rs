//! What an operator meets first: every output line is JSON when asked, a missing config is an
//! error, closed gates and unused config are named in the plan, the dry run can come from the
//! environment, and `--help` / `--version` say what they should.

use std::path::Path;
use std::process::Command;

use afk_sim::driver::{Tick, TickOptions, TickRun};
use afk_sim::infra::{FaultAction, FaultRule, Remote};
use serde_json::Value;

use crate::harness::{Harness, bins, plan, writes};

/// Every line of stdout and stderr, each parsed as one JSON object.
fn json_lines(run: &TickRun) -> (Vec<Value>, Vec<Value>) {
    let parse = |stream: &str, text: &str| -> Vec<Value> {
        text.lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                    panic!(
                        "{} {stream} line is not JSON ({e}): {line}",
                        run.tick.name()
                    )
                });
                assert!(v.is_object(), "{stream} line is not an object: {line}");
                v
            })
            .collect()
    };
    (parse("stdout", &run.stdout), parse("stderr", &run.stderr))
}

/// Log fields hold plain values: no Rust `Option` rendering, absent fields left out.
fn assert_plain_fields(logs: &[Value]) {
    for line in logs {
        let Some(fields) = line.as_object() else {
            continue;
        };
        for (key, value) in fields {
            if let Some(s) = value.as_str() {
                assert!(
                    !s.starts_with("Some(") && s != "None" && !s.is_empty(),
                    "log field {key} is not a plain value: {line}"
                );
            }
        }
        if let Some(repo) = fields.get("repo") {
            let repo = repo
                .as_str()
                .unwrap_or_else(|| panic!("repo is a string: {line}"));
            assert!(repo.split('/').count() == 2, "repo is owner/name: {line}");
        }
        if let Some(issue) = fields.get("issue") {
            assert!(issue.is_u64(), "issue is a number: {line}");
        }
    }
}

fn with_env(pairs: &[(&str, &str)]) -> TickOptions {
    TickOptions {
        env: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..TickOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_output_and_json_logs_are_json_lines_with_plain_fields() {
    let h = Harness::new("landed").await;
    let (repo, _) = h.repo();
    let debug = with_env(&[("RUST_LOG", "debug")]);
    let poll = h.tick_with(Tick::Poll, debug.clone()).await;
    assert_eq!(poll.code, Some(0), "{}", poll.stderr);
    let (out, logs) = json_lines(&poll);
    assert_eq!(out.len(), 1, "the plan is one line: {}", poll.stdout);
    assert_eq!(out[0]["tick"], "poll");
    assert!(!logs.is_empty());
    assert_plain_fields(&logs);
    assert!(
        logs.iter()
            .any(|l| l["message"] == "dispatching" && l["repo"] == repo.as_str()),
        "a dispatch log line carries the plain repo: {}",
        poll.stderr
    );

    h.world.sim.clock.advance_secs(300);
    let watch = h.tick_with(Tick::Watch, debug).await;
    assert_eq!(watch.code, Some(0), "{}", watch.stderr);
    let (out, logs) = json_lines(&watch);
    assert_eq!(out.len(), 1, "the plan is one line: {}", watch.stdout);
    assert_eq!(out[0]["tick"], "watch");
    assert_plain_fields(&logs);

    // A failing repo: its error line is found by `select(.repo == "acme/shop")`.
    h.fault(FaultRule {
        remote: Some(Remote::Github),
        method: None,
        path: None,
        skip: 0,
        times: None,
        action: FaultAction::Status {
            status: 401,
            body: Some(
                r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}"#
                    .to_owned(),
            ),
            headers: Default::default(),
        },
        seen: 0,
    });
    let failed = h.tick(Tick::Watch).await;
    assert_eq!(failed.code, Some(1), "{}", failed.stderr);
    let (_, logs) = json_lines(&failed);
    assert_plain_fields(&logs);
    let errors: Vec<&Value> = logs.iter().filter(|l| l["level"] == "ERROR").collect();
    assert!(!errors.is_empty(), "{}", failed.stderr);
    assert!(
        errors.iter().any(|l| l["repo"] == repo.as_str()),
        "the failure names its repo plainly: {}",
        failed.stderr
    );
}

/// Runs a binary directly (no config unless given), from an empty directory.
fn run_bin(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(bin);
    cmd.args(args).current_dir(dir.path());
    for var in [
        "AFK_CONFIG",
        "AFK_INERT",
        "AFK_DRY_RUN",
        "AFK_KILL_SWITCH",
        "AFK_ALLOWLIST",
        "AFK_OUTPUT",
        "AFK_LOG_FORMAT",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

#[test]
fn no_config_is_an_error_unless_the_inert_default_is_asked_for() {
    let b = bins();
    for bin in [&b.poll, &b.watch] {
        let out = run_bin(bin, &["--output", "json"], &[]);
        assert_eq!(out.status.code(), Some(2), "no config: exit 2");
        assert!(out.stdout.is_empty(), "nothing done, no plan");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("no config file") && stderr.contains("--inert"),
            "says how to ask for the inert default: {stderr}"
        );

        for (args, env) in [
            (vec!["--inert"], vec![]),
            (vec![], vec![("AFK_INERT", "true")]),
            (vec![], vec![("AFK_KILL_SWITCH", "true")]),
        ] {
            let mut all = vec!["--output", "json"];
            all.extend(args.iter().copied());
            let out = run_bin(bin, &all, &env);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{args:?} {env:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let plan: Value = serde_json::from_slice(&out.stdout).expect("a JSON plan");
            assert_eq!(plan["kill_switch"], true);
            let reasons: Vec<&str> = plan["skipped"]
                .as_array()
                .expect("skipped")
                .iter()
                .filter_map(|s| s["reason"].as_str())
                .collect();
            assert!(reasons.contains(&"not-allowlisted"), "{reasons:?}");
        }

        // Asking for both is ambiguous: refused.
        let out = run_bin(bin, &["--inert", "--config", "afk.toml"], &[]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("drop one of the two"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_allowlist_with_the_kill_switch_off_is_named_in_the_plan() {
    let h = Harness::new("landed").await;
    for tick in [Tick::Poll, Tick::Watch] {
        let run = h
            .tick_with(
                tick,
                with_env(&[("AFK_ALLOWLIST", ""), ("AFK_KILL_SWITCH", "false")]),
            )
            .await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let skipped = plan(&run)["skipped"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0]["reason"], "not-allowlisted");
        assert!(skipped[0].get("repo").is_none(), "about every repo");
        assert!(
            skipped[0]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("allowlist is empty") && d.contains("AFK_ALLOWLIST")),
            "{skipped:?}"
        );
    }
    assert!(h.requests().is_empty(), "nothing enrolled: nothing read");

    // The text plan names the gate too.
    let text = h
        .tick_with(
            Tick::Poll,
            TickOptions {
                json: false,
                ..with_env(&[("AFK_ALLOWLIST", ""), ("AFK_KILL_SWITCH", "false")])
            },
        )
        .await;
    assert!(text.stdout.contains("not-allowlisted"), "{}", text.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repo_section_outside_the_allowlist_is_warned_about() {
    let h = Harness::new("landed").await;
    let path = &h.setup.config_path;
    let original = std::fs::read_to_string(path).expect("config");
    std::fs::write(
        path,
        format!("{original}\n[repos.\"acme/shpo\"]\npaused = true\n"),
    )
    .expect("write config");
    let run = h.tick(Tick::Poll).await;
    assert_eq!(
        run.code,
        Some(0),
        "a warning is not an error: {}",
        run.stderr
    );
    let warnings = plan(&run)["warnings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .as_str()
            .is_some_and(|w| w.contains("acme/shpo") && w.contains("allowlist")),
        "{warnings:?}"
    );
    let (_, logs) = json_lines(&run);
    assert!(
        logs.iter().any(|l| l["level"] == "WARN"
            && l["warning"]
                .as_str()
                .is_some_and(|w| w.contains("acme/shpo"))),
        "{}",
        run.stderr
    );
    assert!(
        !dispatched_nothing(&run),
        "the enrolled repo still works: {}",
        run.stdout
    );
}

fn dispatched_nothing(run: &TickRun) -> bool {
    plan(run)["dispatch"]
        .as_array()
        .is_none_or(|d| d.is_empty())
}

#[tokio::test(flavor = "multi_thread")]
async fn afk_dry_run_in_the_environment_is_a_dry_run() {
    let h = Harness::new("landed").await;
    let run = h
        .tick_with(Tick::Poll, with_env(&[("AFK_DRY_RUN", "true")]))
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(plan(&run)["dry_run"], true);
    assert!(
        !dispatched_nothing(&run),
        "the plan still shows the dispatch"
    );
    assert!(
        writes(&h.requests()).is_empty(),
        "{:?}",
        writes(&h.requests())
    );
    assert!(h.threads().is_empty(), "no T3 thread was created");

    // A value that is not a boolean is refused, not ignored.
    let bad = h
        .tick_with(Tick::Poll, with_env(&[("AFK_DRY_RUN", "yes")]))
        .await;
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(writes(&h.requests()).is_empty());
}

#[test]
fn help_says_what_it_does_and_version_names_the_commit() {
    let b = bins();
    for (bin, what) in [(&b.poll, "poll tick"), (&b.watch, "watch tick")] {
        let out = run_bin(bin, &["--help"], &[]);
        assert_eq!(out.status.code(), Some(0));
        let help = String::from_utf8_lossy(&out.stdout);
        for needle in [
            what,
            "kill switch",
            "allowlist",
            "Exit codes",
            "0  the tick completed",
            "2  configuration or usage error",
            "AFK_CONFIG",
            "AFK_INERT",
            "AFK_DRY_RUN",
            "AFK_OUTPUT",
            "AFK_LOG_FORMAT",
            "AFK_KILL_SWITCH",
            "AFK_ALLOWLIST",
            "RUST_LOG",
        ] {
            assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
        }
        let out = run_bin(bin, &["--version"], &[]);
        assert_eq!(out.status.code(), Some(0));
        let version = String::from_utf8_lossy(&out.stdout);
        assert!(
            version.contains(env!("CARGO_PKG_VERSION")) && version.contains("(commit "),
            "{version}"
        );
    }

    // A usage error is one JSON line when the environment asks for JSON logs.
    let out = run_bin(
        &b.poll,
        &["--output", "yaml"],
        &[("AFK_LOG_FORMAT", "json")],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(v["level"], "ERROR");
    }
}
