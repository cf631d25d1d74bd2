//! Operator views against the simulators, both read-only: the preflight check (`--check`) and
//! the fleet view (`afk-watch --report`); and the metrics each tick pushes to a Pushgateway.

use std::path::Path;
use std::process::Stdio;

use afk_sim::infra::{RequestRecord, lock};
use serde_json::Value;

use crate::harness::{Harness, SECRETS};

/// What one `--check` run printed and returned.
struct Checked {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Checked {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("--check printed no JSON ({e}):\n{}", self.stdout))
    }

    fn assert_no_secret(&self) {
        for s in SECRETS {
            assert!(!self.stdout.contains(s), "a secret on stdout");
            assert!(!self.stderr.contains(s), "a secret on stderr");
        }
    }
}

/// Runs `<bin> --check` with the scenario's config.
async fn check(
    h: &Harness,
    bin: &Path,
    config: &Path,
    json: bool,
    env: &[(&str, &str)],
) -> Checked {
    run_with(h, bin, "--check", config, json, env).await
}

/// Runs `<bin> <flag>` with the scenario's config.
async fn run_with(
    h: &Harness,
    bin: &Path,
    flag: &str,
    config: &Path,
    json: bool,
    env: &[(&str, &str)],
) -> Checked {
    let mut cmd = tokio::process::Command::new(bin);
    afk_sim::driver::simulation_env(&mut cmd, h.world.sim.now());
    cmd.arg(flag)
        .arg("--config")
        .arg(config)
        .args(["--log-format", "json"])
        .args(["--output", if json { "json" } else { "text" }])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("--check runs");
    Checked {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn non_gets(log: &[RequestRecord]) -> Vec<String> {
    log.iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{:?} {} {}", r.remote, r.method, r.path))
        .collect()
}

fn row<'a>(report: &'a Value, check: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["check"] == check))
        .unwrap_or_else(|| panic!("no {check:?} row in {report:#}"))
}

fn statuses(report: &Value) -> Vec<String> {
    report["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| format!("{} {} {}", r["check"], r["target"], r["status"]))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn check_refuses_a_real_dry_run() {
    let h = Harness::new("empty").await;
    h.reset_log();
    let env = [("AFK_DRY_RUN", "true")];
    let run = check(&h, &h.bins.watch, &h.setup.config_path, false, &env).await;
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("--dry-run"), "{}", run.stderr);
    assert!(
        h.requests().is_empty(),
        "a refused --check contacted a remote"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_on_a_healthy_forgejo_setup_passes_with_reads_only() {
    let h = Harness::new("forgejo").await;
    let (repo, _) = h.repo();
    h.reset_log();
    // The CronJobs set AFK_DRY_RUN=false: that is no dry run, so no conflict with --check.
    let env = [("AFK_DRY_RUN", "false")];
    let run = check(&h, &h.bins.watch, &h.setup.config_path, true, &env).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["ok"], true, "{:?}", statuses(&report));
    assert_eq!(report["binary"], "afk-watch");
    for check in [
        "tracker token",
        "repo readable",
        "bot permission",
        "t3 server",
        "t3 auth",
        "woodpecker repo",
        "kube rollout read",
        "ntfy",
    ] {
        assert_eq!(row(&report, check)["status"], "ok", "{check}: {report:#}");
    }
    assert_eq!(row(&report, "repo readable")["target"], repo.as_str());
    assert_eq!(row(&report, "slack")["status"], "warn");
    assert!(
        row(&report, "slack")["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not contacted")),
        "{report:#}"
    );
    let log = h.requests();
    assert!(!log.is_empty(), "--check reached no remote");
    assert!(
        non_gets(&log).is_empty(),
        "--check wrote: {:?}",
        non_gets(&log)
    );
    assert!(
        lock(&h.world.ntfy).messages.is_empty(),
        "ntfy was published to"
    );
    assert!(h.slack().is_empty(), "slack was posted to");
    run.assert_no_secret();
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_each_broken_remote_as_a_row_and_exits_1() {
    let h = Harness::new("landed").await;
    // A wrong T3 token, a classic tracker token without the repo scope, a missing
    // ntfy token file: three failing rows, and the other checks still run.
    let secrets = h.setup.dir.join("secrets");
    std::fs::write(secrets.join("t3-token"), "not-a-t3-token\n").expect("write");
    std::fs::remove_file(secrets.join("ntfy-token")).expect("remove");
    lock(&h.world.github).set_token_scopes(afk_sim::scenario::TRACKER_TOKEN, "read:user");
    h.reset_log();
    let run = check(&h, &h.bins.poll, &h.setup.config_path, true, &[]).await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["ok"], false);
    assert_eq!(row(&report, "t3 server")["status"], "ok");
    assert_eq!(row(&report, "t3 auth")["status"], "fail", "{report:#}");
    assert_eq!(row(&report, "token scopes")["status"], "fail", "{report:#}");
    assert!(row(&report, "token scopes")["fix"].is_string());
    let ntfy_file = report["rows"]
        .as_array()
        .and_then(|rows| {
            rows.iter().find(|r| {
                r["check"] == "secret file"
                    && r["target"]
                        .as_str()
                        .is_some_and(|t| t.ends_with("ntfy-token"))
            })
        })
        .expect("a row for the ntfy token file");
    assert_eq!(ntfy_file["status"], "fail");
    assert_eq!(row(&report, "bot permission")["status"], "ok");
    // afk-poll does not read CI or rollouts: no such rows.
    assert!(
        report["rows"]
            .as_array()
            .is_some_and(|rows| !rows.iter().any(|r| r["check"] == "kube rollout read")),
        "{report:#}"
    );
    let log = h.requests();
    assert!(
        non_gets(&log).is_empty(),
        "--check wrote: {:?}",
        non_gets(&log)
    );
    run.assert_no_secret();
    // The text table shows the same, with the fixes.
    let text = check(&h, &h.bins.poll, &h.setup.config_path, false, &[]).await;
    assert_eq!(text.code, Some(1));
    assert!(text.stdout.contains("t3 auth"), "{}", text.stdout);
    assert!(text.stdout.contains("FAIL"), "{}", text.stdout);
    assert!(text.stdout.contains("fix: "), "{}", text.stdout);
    assert!(text.stdout.contains("checks FAILED"), "{}", text.stdout);
    text.assert_no_secret();
}

#[tokio::test(flavor = "multi_thread")]
async fn check_runs_its_reads_with_the_kill_switch_on_and_exits_2_on_a_bad_config() {
    let h = Harness::new("landed").await;
    h.reset_log();
    let run = check(
        &h,
        &h.bins.poll,
        &h.setup.config_path,
        true,
        &[("AFK_KILL_SWITCH", "true")],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(row(&report, "kill switch")["status"], "warn");
    assert_eq!(row(&report, "tracker token")["status"], "ok");
    assert!(non_gets(&h.requests()).is_empty());

    let bad = h.setup.dir.join("bad.toml");
    std::fs::write(&bad, "kill_switch = false\nno_such_key = 1\n").expect("write");
    h.reset_log();
    let run = check(&h, &h.bins.watch, &bad, true, &[]).await;
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("no_such_key"), "{}", run.stderr);
    assert!(h.requests().is_empty(), "a bad config made requests");
}

async fn report(h: &Harness, json: bool) -> Checked {
    let run = run_with(
        h,
        &h.bins.watch,
        "--report",
        &h.setup.config_path,
        json,
        &[],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    run.assert_no_secret();
    run
}

async fn report_lists_a_live_run_then_its_verdict(scenario: &str) {
    let h = Harness::new(scenario).await;
    let (repo, n) = h.repo();
    let p = h.tick(afk_sim::driver::Tick::Poll).await;
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    h.world.sim.clock.advance_secs(600);
    h.reset_log();
    let live = report(&h, true).await.json();
    assert!(non_gets(&h.requests()).is_empty(), "--report wrote");
    let runs = live["live"].as_array().expect("live runs");
    assert_eq!(runs.len(), 1, "{live:#}");
    assert_eq!(runs[0]["repo"], repo.as_str());
    assert_eq!(runs[0]["issue"], n);
    assert_eq!(runs[0]["phase"], "agent", "{live:#}");
    assert_eq!(runs[0]["age_secs"], 600);
    assert!(
        runs[0]["thread_url"]
            .as_str()
            .is_some_and(|u| u.contains("afk-"))
    );
    assert!(
        runs[0]["issue_url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/{n}")))
    );
    assert_eq!(live["recent"].as_array().map(Vec::len), Some(0));

    let record = h.run_to_verdict(40).await;
    let verdict = record.verdict.as_ref().expect("a verdict").verdict;
    h.reset_log();
    let after = report(&h, true).await.json();
    assert!(non_gets(&h.requests()).is_empty(), "--report wrote");
    assert_eq!(after["live"].as_array().map(Vec::len), Some(0), "{after:#}");
    let recent = after["recent"].as_array().expect("recent verdicts");
    assert_eq!(recent.len(), 1, "{after:#}");
    assert_eq!(recent[0]["issue"], n);
    assert_eq!(recent[0]["verdict"], verdict.as_str());
    let text = report(&h, false).await;
    assert!(text.stdout.contains("live runs (0)"), "{}", text.stdout);
    assert!(
        text.stdout
            .contains(&format!("{repo}#{n}  {}", verdict.as_str())),
        "{}",
        text.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn report_lists_live_runs_and_recent_verdicts_on_github() {
    report_lists_a_live_run_then_its_verdict("landed").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn report_lists_live_runs_and_recent_verdicts_on_forgejo() {
    report_lists_a_live_run_then_its_verdict("forgejo").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn report_is_afk_watch_only() {
    let h = Harness::new("landed").await;
    h.reset_log();
    let run = run_with(
        &h,
        &h.bins.poll,
        "--report",
        &h.setup.config_path,
        true,
        &[],
    )
    .await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("afk-watch"), "{}", run.stderr);
    assert!(h.requests().is_empty());
}

/// Appends `[metrics]` pointing at `url` to the scenario's config.
fn enable_metrics(h: &Harness, url: &str) {
    let mut text = std::fs::read_to_string(&h.setup.config_path).expect("config");
    text.push_str(&format!(
        "\n[metrics]\npushgateway_url = \"{url}\"\njob = \"afk-e2e\"\n"
    ));
    std::fs::write(&h.setup.config_path, text).expect("write config");
}

fn value(push: &afk_sim::pushgateway::Push, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    push.samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_tick_pushes_its_metrics_and_a_dry_run_pushes_none() {
    use afk_sim::driver::Tick;
    let h = Harness::new("landed").await;
    let (repo, _) = h.repo();
    enable_metrics(&h, &h.url(afk_sim::infra::Remote::Pushgateway));
    let dry = h.dry_run(Tick::Poll).await;
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    assert!(
        lock(&h.world.pushgateway).pushes.is_empty(),
        "a dry run pushed metrics"
    );

    let p = h.tick(Tick::Poll).await;
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    let pushes = afk_sim::pushgateway::pushes(&lock(&h.world.pushgateway));
    assert_eq!(pushes.len(), 1, "{pushes:?}\n{}", p.stderr);
    let poll = &pushes[0];
    assert_eq!(poll.method, "PUT");
    assert_eq!(
        poll.grouping,
        vec![
            ("job".to_owned(), "afk-e2e".to_owned()),
            ("tick".to_owned(), "poll".to_owned())
        ]
    );
    assert_eq!(value(poll, "afk_dispatches", &[("repo", &repo)]), Some(1.0));
    assert_eq!(
        value(poll, "afk_tick_failed", &[("tick", "poll")]),
        Some(0.0)
    );
    assert!(value(poll, "afk_tick_duration_seconds", &[]).is_some_and(|d| d > 0.0));
    assert!(value(poll, "afk_github_requests", &[]).is_some_and(|n| n >= 1.0));

    h.world.sim.clock.advance_secs(300);
    let w = h.tick(Tick::Watch).await;
    assert_eq!(w.code, Some(0), "{}", w.stderr);
    let pushes = afk_sim::pushgateway::pushes(&lock(&h.world.pushgateway));
    let watch = pushes.last().expect("the watch pushed");
    assert_eq!(watch.grouping[1], ("tick".to_owned(), "watch".to_owned()));
    assert_eq!(
        value(watch, "afk_runs", &[("decision", "wait")]),
        Some(1.0),
        "{watch:?}"
    );

    // T3 down: the watch fails (exit 1), and the failure is in its metrics.
    h.fault(afk_sim::infra::FaultRule {
        remote: Some(afk_sim::infra::Remote::T3),
        method: None,
        path: None,
        skip: 0,
        times: None,
        action: afk_sim::infra::FaultAction::Status {
            status: 503,
            body: None,
            headers: std::collections::BTreeMap::new(),
        },
        seen: 0,
    });
    let failed = h.tick(Tick::Watch).await;
    assert_eq!(failed.code, Some(1), "{}", failed.stderr);
    let pushes = afk_sim::pushgateway::pushes(&lock(&h.world.pushgateway));
    let last = pushes.last().expect("the failed watch pushed");
    assert_eq!(
        value(last, "afk_tick_failed", &[("tick", "watch")]),
        Some(1.0),
        "{last:?}"
    );
    assert!(
        value(last, "afk_errors", &[("remote", "t3")]).is_some_and(|n| n >= 1.0),
        "{last:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_pushgateway_does_not_fail_the_tick() {
    use afk_sim::driver::Tick;
    let h = Harness::new("landed").await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    enable_metrics(&h, &url);
    let p = h.tick(Tick::Poll).await;
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    assert!(p.stderr.contains("metrics not pushed"), "{}", p.stderr);
}
