//! Adversarial hardening: a hostile environment around afk (a clock pinned in production, huge
//! answers, absurd settings, remote error bodies aimed at the public comment, secrets over plain
//! HTTP). Each case reproduces the attack with the real binaries and shows afk refusing it.

use afk_sim::driver::{Tick, TickOptions, TickRun, run_tick};

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
