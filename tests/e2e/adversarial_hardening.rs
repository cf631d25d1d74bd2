//! Adversarial hardening: a hostile environment around afk (a clock pinned in production, huge
//! answers, absurd settings, remote error bodies aimed at the public comment, secrets over plain
//! HTTP). Each case reproduces the attack with the real binaries and shows afk refusing it.

use afk_sim::driver::{Tick, TickOptions, TickRun, run_tick};
use afk_sim::infra::{FaultAction, FaultRule, Remote};

use crate::harness::{Harness, assert_no_secret, plan};

/// The scenario's config with `edit` applied to its text.
fn edit_config(h: &Harness, edit: impl Fn(&str) -> String) {
    let original = std::fs::read_to_string(&h.setup.config_path).expect("config");
    std::fs::write(&h.setup.config_path, edit(&original)).expect("write config");
}

/// A tick refused as a usage error before any request: exit 2, the reason on stderr.
fn refused_before_any_request(h: &Harness, run: &TickRun, names: &str) {
    assert_eq!(run.code, Some(2), "{}: {}", run.tick.name(), run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(
        run.stderr.contains(names),
        "stderr must name {names}: {}",
        run.stderr
    );
    assert_no_secret(run);
    assert!(h.requests().is_empty(), "{:?}", h.requests());
}

// ---------------------------------------------------------------- 4: the pinned clock

/// A year ahead: on the old code every retained worktree and stale lock looked expired.
fn far_future(h: &Harness) -> String {
    (h.world.sim.now() + chrono::Duration::days(400)).to_rfc3339()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_clock_without_the_simulation_opt_in_is_refused() {
    let h = Harness::new("needs-human").await;
    let future = far_future(&h);
    for tick in [Tick::Poll, Tick::Watch] {
        // The driver sets the opt-in for simulated ticks; a deployment does not have it.
        let opts = TickOptions {
            env: vec![
                ("AFK_NOW".into(), future.clone()),
                ("AFK_SIMULATION".into(), "0".into()),
            ],
            ..TickOptions::default()
        };
        let run = h.tick_with(tick, opts).await;
        refused_before_any_request(&h, &run, "AFK_NOW");
        assert!(run.stderr.contains("AFK_SIMULATION"), "{}", run.stderr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_clock_inside_kubernetes_is_refused_even_with_the_opt_in() {
    let h = Harness::new("needs-human").await;
    let future = far_future(&h);
    for tick in [Tick::Poll, Tick::Watch] {
        let opts = TickOptions {
            env: vec![
                ("AFK_NOW".into(), future.clone()),
                ("KUBERNETES_SERVICE_HOST".into(), "10.96.0.1".into()),
            ],
            ..TickOptions::default()
        };
        let run = h.tick_with(tick, opts).await;
        refused_before_any_request(&h, &run, "KUBERNETES_SERVICE_HOST");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_honoured_pinned_clock_is_loud_in_the_log_and_the_plan() {
    let h = Harness::new("landed").await;
    let run = h.tick_with(Tick::Watch, TickOptions::default()).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let pinned = plan(&run)["pinned_now"]
        .as_str()
        .map(|s| chrono::DateTime::parse_from_rfc3339(s).expect("rfc3339"));
    assert_eq!(
        pinned.map(|t| t.with_timezone(&chrono::Utc)),
        Some(h.world.sim.now())
    );
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains("WARN") && l.contains("AFK_NOW")),
        "{}",
        run.stderr
    );
    let text = run_tick(
        &h.bins,
        Tick::Watch,
        &h.setup.config_path,
        h.world.sim.now(),
        &TickOptions::default(),
    )
    .await
    .expect("tick runs");
    assert!(text.stdout.contains("CLOCK PINNED"), "{}", text.stdout);
}

// ---------------------------------------------------------------- 7: absurd durations

#[tokio::test(flavor = "multi_thread")]
async fn an_absurd_duration_exits_2_naming_the_key_instead_of_panicking() {
    let h = Harness::new("landed").await;
    edit_config(&h, |t| {
        t.replacen(
            "tick_deadline = \"2m\"",
            "tick_deadline = \"200000000000000d\"",
            1,
        )
    });
    for tick in [Tick::Poll, Tick::Watch] {
        let run = h.tick(tick).await;
        refused_before_any_request(&h, &run, "limits.tick_deadline");
    }
}

// ---------------------------------------------------------------- 10: secrets over plain HTTP

/// Replaces the value of the first line starting with `key = `.
fn set_key(text: &str, key: &str, value: &str) -> String {
    let mut done = false;
    text.lines()
        .map(|l| {
            if !done && l.starts_with(&format!("{key} = ")) {
                done = true;
                format!("{key} = {value:?}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_to_a_remote_host_for_a_secret_is_refused_naming_the_key() {
    let h = Harness::new("forgejo").await;
    let original = std::fs::read_to_string(&h.setup.config_path).expect("config");
    for (key, section_key, url) in [
        (
            "tracker.api_url",
            "api_url",
            "http://git.example.test/api/v1",
        ),
        ("t3.base_url", "base_url", "http://t3.example.test:3773"),
        (
            "workspace.clone_url_template",
            "clone_url_template",
            "http://git.example.test/{repo}.git",
        ),
        ("notify.ntfy.url", "url", "http://ntfy.example.test"),
    ] {
        std::fs::write(&h.setup.config_path, set_key(&original, section_key, url))
            .expect("write config");
        for tick in [Tick::Poll, Tick::Watch] {
            let run = h.tick(tick).await;
            refused_before_any_request(&h, &run, key);
            assert!(run.stderr.contains("allow_insecure_http"), "{}", run.stderr);
        }
    }
    // The Woodpecker API URL sits under [ci.woodpecker], after the tracker's api_url.
    let at = original
        .find("[ci.woodpecker]")
        .expect("the scenario configures Woodpecker");
    let woodpecker = format!(
        "{}{}",
        &original[..at],
        set_key(&original[at..], "api_url", "http://ci.example.test/api")
    );
    std::fs::write(&h.setup.config_path, woodpecker).expect("write config");
    let run = h.tick(Tick::Watch).await;
    refused_before_any_request(&h, &run, "ci.woodpecker.api_url");
}

/// A plain HTTP listener on loopback that answers 404 to everything and keeps what it was sent.
fn recording_git_host() -> (u16, std::sync::Arc<std::sync::Mutex<String>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            if let Ok(mut s) = keep.lock() {
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tracker_token_is_not_sent_to_a_clone_host_that_is_not_the_trackers() {
    let h = Harness::new("landed").await;
    let (port, seen) = recording_git_host();
    edit_config(&h, |t| {
        set_key(
            t,
            "clone_url_template",
            &format!("http://127.0.0.1:{port}/{{repo}}.git"),
        )
    });
    let run = h.tick(Tick::Poll).await;
    assert!(matches!(run.code, Some(0 | 1)), "{}", run.stderr);
    let seen = seen.lock().expect("seen").clone();
    assert!(
        seen.contains("GET /"),
        "git reached the clone host: {seen:?}"
    );
    assert!(
        !seen.to_ascii_lowercase().contains("authorization"),
        "the tracker token went to another host: {seen}"
    );
    h.assert_no_secret_anywhere();
}

// ---------------------------------------------------------------- 5: huge answers

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

fn huge(remote: Remote, method: &str, path: &str, bytes: u64, announced: Option<u64>) -> FaultRule {
    FaultRule {
        remote: Some(remote),
        method: Some(method.to_owned()),
        path: Some(path.to_owned()),
        skip: 0,
        times: None,
        action: FaultAction::HugeBody {
            status: 200,
            bytes,
            content_length: announced,
        },
        seen: 0,
    }
}

/// The tick failed the usual way (exit 1, naming the remote and the cap), small and fast.
fn failed_at_the_cap(run: &TickRun, remote: &str) {
    assert_no_secret(run);
    assert_eq!(run.code, Some(1), "{}: {}", run.tick.name(), run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let errors = plan(run)["errors"].to_string();
    assert!(errors.contains(remote), "{errors}");
    assert!(errors.contains("-byte cap"), "{errors}");
    if let Some(kib) = run.peak_rss_kib {
        assert!(
            kib < 160 * 1024,
            "peak RSS {kib} KiB: the body was not capped"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_streamed_answer_stops_at_the_cap_and_fails_the_tick_cleanly() {
    let h = Harness::new("landed").await;
    // A 1 GiB chunked answer to the ready-issue list.
    h.fault(huge(Remote::Github, "GET", "/issues", GIB, None));
    let run = h
        .tick_with(
            Tick::Poll,
            TickOptions {
                measure_rss: true,
                ..TickOptions::default()
            },
        )
        .await;
    failed_at_the_cap(&run, "github");
    // The read stopped at the 32 MiB cap (plus what sat in socket buffers), once: no retry.
    let streamed = h.world.sim.streamed_bytes();
    assert!(
        streamed < 32 * MIB + 16 * MIB,
        "{streamed} bytes were served"
    );
    assert!(h.threads().is_empty(), "nothing was dispatched");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_announced_content_length_fails_before_reading() {
    let h = Harness::new("landed").await;
    // T3's environment claims 3 GiB; the real body is small (a lying Content-Length).
    h.fault(huge(
        Remote::T3,
        "GET",
        "/.well-known/t3/environment",
        MIB,
        Some(3 * GIB),
    ));
    for tick in [Tick::Poll, Tick::Watch] {
        let run = h
            .tick_with(
                tick,
                TickOptions {
                    measure_rss: true,
                    ..TickOptions::default()
                },
            )
            .await;
        failed_at_the_cap(&run, "t3");
        assert!(
            plan(&run)["errors"].to_string().contains("Content-Length"),
            "{}",
            plan(&run)["errors"]
        );
    }
    assert!(
        h.world.sim.streamed_bytes() <= 2 * MIB,
        "{} bytes were served",
        h.world.sim.streamed_bytes()
    );
}

// ---------------------------------------------------------------- 9: the public comment

/// What a hostile or careless remote puts in an error body.
const LEAKY_BODY: &str = r#"{"error":"orchestration failed reading /srv/t3/private/state.db with key sk-live-51HcZ9aQ8vT3xK2LmN7pQ4rS see https://t3.internal/debug?session=abc"}"#;

#[tokio::test(flavor = "multi_thread")]
async fn remote_error_bodies_and_paths_stay_out_of_the_public_comment() {
    let h = Harness::new("landed").await;
    let (repo, n) = h.repo();
    h.fault(FaultRule {
        remote: Some(Remote::T3),
        method: Some("POST".into()),
        path: Some("/api/orchestration/dispatch".into()),
        skip: 0,
        times: None,
        action: FaultAction::Status {
            status: 500,
            body: Some(LEAKY_BODY.into()),
            headers: Default::default(),
        },
        seen: 0,
    });
    let run = h.tick(Tick::Poll).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    // The operator still sees everything: the plan and the logs keep the remote's words.
    assert!(
        plan(&run)["errors"].to_string().contains("/srv/t3/private"),
        "{}",
        plan(&run)["errors"]
    );
    let comments = h.comments(&repo, n);
    let status = comments
        .iter()
        .find(|c| c.body.contains("dispatch"))
        .unwrap_or_else(|| panic!("a status comment: {comments:?}"));
    for leak in [
        "/srv/t3",
        "sk-live-",
        "session=",
        "t3.internal/debug",
        "orchestration failed",
    ] {
        assert!(
            !status.body.contains(leak),
            "the public comment holds {leak:?}:\n{}",
            status.body
        );
    }
    assert!(
        status.body.contains("t3 POST dispatch answered HTTP 500"),
        "a short category instead:\n{}",
        status.body
    );
    h.assert_no_secret_anywhere();
}
