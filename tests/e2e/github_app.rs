//! GitHub App auth end to end: the real binaries mint an installation token from the App's
//! private key, run an issue from claim to a landed verdict as the App's bot, and fail closed,
//! naming the App auth step, when the key is wrong or the clocks disagree.

use afk_sim::driver::Tick;
use afk_sim::infra::{Remote, lock};
use afk_sim::scenario::{APP_INSTALLATION_ID, use_github_app};

use crate::harness::{Harness, assert_no_secret, dispatched, plan};

const TOKEN_PATH: &str = "/app/installations/77/access_tokens";

fn no_installation_token_in(h: &Harness, text: &str) {
    assert!(
        !text.contains("ghs_sim"),
        "an installation token leaked: {text}"
    );
    let key =
        std::fs::read_to_string(h.setup.dir.join("secrets/app-private-key.pem")).expect("key file");
    let body_line = key.lines().nth(1).expect("a key line");
    assert!(!text.contains(body_line), "the private key leaked");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_installation_runs_an_issue_from_claim_to_landed() {
    let h = Harness::new("landed").await;
    assert_eq!(APP_INSTALLATION_ID, 77);
    let bot = use_github_app(&h.world, &h.setup).expect("app auth");
    let (repo, n) = h.repo();

    let poll = h.tick(Tick::Poll).await;
    assert_eq!(poll.code, Some(0), "{}", poll.stderr);
    assert_eq!(dispatched(plan(&poll)), vec![n], "{}", poll.stdout);
    assert_no_secret(&poll);
    no_installation_token_in(&h, &poll.stdout);
    no_installation_token_in(&h, &poll.stderr);
    let comments = h.comments(&repo, n);
    assert_eq!(comments.len(), 1, "one status comment");
    assert_eq!(comments[0].author.as_str(), bot, "written as the App's bot");
    assert!(h.has_label(&repo, n, "agent-in-progress"));
    assert_eq!(h.threads().len(), 1, "one agent");
    let log = h.requests();
    let mints: Vec<_> = log
        .iter()
        .filter(|r| r.remote == Remote::Github && r.path == TOKEN_PATH)
        .collect();
    assert_eq!(mints.len(), 1, "one installation token for the whole tick");
    assert_eq!(mints[0].method, "POST");
    assert_eq!(mints[0].status, 201);
    assert!(
        log.iter()
            .filter(|r| r.remote == Remote::Github)
            .all(|r| r.status != 401),
        "no request was refused"
    );

    for _ in 0..20 {
        h.world.sim.clock.advance_secs(300);
        let (p, w) = h.round(0).await;
        for run in [&p, &w] {
            assert_ne!(run.code, Some(2), "{}", run.stderr);
            no_installation_token_in(&h, &run.stdout);
            no_installation_token_in(&h, &run.stderr);
        }
        if !h.issue_open(&repo, n) && !h.has_label(&repo, n, "agent-in-progress") {
            break;
        }
    }
    assert!(
        !h.issue_open(&repo, n),
        "the run landed and closed the issue"
    );
    assert!(h.labels(&repo, n).is_empty(), "{:?}", h.labels(&repo, n));
    let comments = h.comments(&repo, n);
    assert_eq!(comments.len(), 1, "the one status comment, edited in place");
    assert_eq!(h.threads().len(), 1, "still exactly one agent");
    assert_eq!(h.ntfy().len(), 1);
    h.assert_no_secret_anywhere();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_private_key_fails_the_tick_closed_naming_the_app_auth_step() {
    let h = Harness::new("landed").await;
    use_github_app(&h.world, &h.setup).expect("app auth");
    std::fs::write(
        h.setup.dir.join("secrets/app-private-key.pem"),
        afk_sim::github::apps::TEST_OTHER_PRIVATE_KEY,
    )
    .expect("wrong key");
    let (repo, n) = h.repo();
    let poll = h.tick(Tick::Poll).await;
    assert_eq!(poll.code, Some(1), "{}\n{}", poll.stdout, poll.stderr);
    let errors = plan(&poll)["errors"].to_string();
    assert!(errors.contains("GitHub App auth"), "{errors}");
    assert!(errors.contains("401"), "{errors}");
    assert!(errors.contains("private_key_file"), "{errors}");
    assert!(
        errors.contains("A JSON web token could not be decoded"),
        "GitHub's reason is passed on: {errors}"
    );
    assert!(dispatched(plan(&poll)).is_empty());
    assert!(h.comments(&repo, n).is_empty(), "nothing was written");
    assert!(!h.has_label(&repo, n, "agent-in-progress"));
    assert!(h.threads().is_empty(), "no agent");
    no_installation_token_in(&h, &poll.stdout);
    no_installation_token_in(&h, &poll.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clock_ahead_of_githubs_is_refused_and_named() {
    let h = Harness::new("landed").await;
    use_github_app(&h.world, &h.setup).expect("app auth");
    // GitHub's clock ten minutes behind ours: the JWT's `iat` lies in its future.
    lock(&h.world.github).apps.clock_skew_secs = -600;
    let poll = h.tick(Tick::Poll).await;
    assert_eq!(poll.code, Some(1), "{}", poll.stderr);
    let errors = plan(&poll)["errors"].to_string();
    assert!(errors.contains("'Issued at' claim ('iat')"), "{errors}");
    assert!(errors.contains("clock"), "{errors}");
    assert!(h.threads().is_empty(), "no agent");
}

/// `<bin> --check --output json` with the scenario's config: exit code, stdout, stderr.
async fn preflight(h: &Harness) -> (Option<i32>, String, String) {
    let mut cmd = tokio::process::Command::new(&h.bins.poll);
    afk_sim::driver::simulation_env(&mut cmd, h.world.sim.now());
    cmd.arg("--check")
        .arg("--config")
        .arg(&h.setup.config_path)
        .args(["--log-format", "json", "--output", "json"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = cmd.output().await.expect("--check runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rows<'a>(report: &'a serde_json::Value, check: &str) -> Vec<&'a serde_json::Value> {
    report["rows"]
        .as_array()
        .map(|r| r.iter().filter(|row| row["check"] == check).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_the_installation_token_without_showing_it() {
    let h = Harness::new("landed").await;
    use_github_app(&h.world, &h.setup).expect("app auth");
    h.reset_log();
    let (code, stdout, stderr) = preflight(&h).await;
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json report");
    let app_rows = rows(&report, "tracker app");
    assert_eq!(app_rows.len(), 2, "{report:#}");
    assert!(app_rows.iter().all(|r| r["status"] == "ok"), "{report:#}");
    let detail = app_rows[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("obtained an installation token for installation 77"),
        "{detail}"
    );
    assert!(
        rows(&report, "tracker token").is_empty(),
        "no /user for an App"
    );
    assert!(
        rows(&report, "bot permission").is_empty(),
        "an App bot is no collaborator"
    );
    assert_eq!(
        rows(&report, "repo readable")[0]["status"],
        "ok",
        "{report:#}"
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    no_installation_token_in(&h, &stdout);
    no_installation_token_in(&h, &stderr);
    let writes: Vec<_> = h
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{:?} {} {}", r.remote, r.method, r.path))
        .collect();
    assert_eq!(
        writes,
        vec![format!("Github POST {TOKEN_PATH}")],
        "only the token exchange is not a GET"
    );

    // A wrong key: the App row fails, naming what to check.
    std::fs::write(
        h.setup.dir.join("secrets/app-private-key.pem"),
        afk_sim::github::apps::TEST_OTHER_PRIVATE_KEY,
    )
    .expect("wrong key");
    let (code, stdout, _) = preflight(&h).await;
    assert_eq!(code, Some(1), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json report");
    let failed = rows(&report, "tracker app");
    assert_eq!(failed[0]["status"], "fail", "{report:#}");
    assert!(
        failed[0]["fix"].to_string().contains("private_key_file"),
        "{report:#}"
    );
}
