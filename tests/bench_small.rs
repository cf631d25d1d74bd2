//! A small bench fleet (20 repos × 3 issues, 4 live runs, no latency) run through the real
//! binaries: the request-count properties the bench measures (docs/performance.md) must hold,
//! so a change that adds requests, repeats a read or writes on a quiet tick fails here.

use afk_sim::bench::{FleetSpec, build_fleet};

/// Requests measured for this fleet (poll: 216, watch: 54), with a little headroom.
const POLL_CEILING: u64 = 230;
const WATCH_CEILING: u64 = 58;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_fleet_ticks_stay_lean() {
    let bins = afk_tests::binaries();
    let spec = FleetSpec {
        repos: 20,
        issues_per_repo: 3,
        live_runs: 4,
        latency_ms: 0,
        sequential: false,
    };
    let fleet = build_fleet(&bins, &spec).await.expect("fleet builds");
    let r = fleet.run(&bins).await.expect("bench runs");
    let json = serde_json::to_string_pretty(&r).unwrap_or_default();

    for (name, t) in [
        ("poll", &r.poll),
        ("watch", &r.watch),
        ("quiet watch", &r.quiet_watch),
    ] {
        assert_eq!(t.exit_code, Some(0), "{name} failed: {json}");
        assert_eq!(t.duplicate_gets, 0, "{name} repeated a read: {json}");
        assert_eq!(
            t.t3_fleet_reads, 1,
            "{name} must read T3's fleet exactly once: {json}"
        );
    }
    assert!(r.poll.writes > 0, "the poll tick claimed nothing: {json}");
    assert_eq!(r.quiet_watch.writes, 0, "a quiet watch tick wrote: {json}");
    assert!(
        r.poll.requests.total <= POLL_CEILING,
        "poll made {} requests (ceiling {POLL_CEILING}): {json}",
        r.poll.requests.total
    );
    for (name, t) in [("watch", &r.watch), ("quiet watch", &r.quiet_watch)] {
        assert!(
            t.requests.total <= WATCH_CEILING,
            "{name} made {} requests (ceiling {WATCH_CEILING}): {json}",
            t.requests.total
        );
    }
}
