//! A small bench fleet (20 repos × 3 issues, 4 live runs, no latency) run through the real
//! binaries with the whole measured sequence (cold, warm and quiet ticks, and the smaller
//! fleet behind `fleet_fits`): the facts that must hold at any fleet size, so a change that
//! adds requests, repeats a read, writes on a quiet tick or makes a quiet tick cost more than
//! a busy one fails here.

use afk_sim::bench::{BenchOptions, FleetSpec, run_bench};

/// Requests measured for this fleet (cold poll: 216, cold watch: 54), with a little headroom.
const POLL_CEILING: u64 = 230;
const WATCH_CEILING: u64 = 58;
/// The quiet poll's rate-limit cost once GitHub answers the unchanged reads `304`.
const QUIET_POLL_COST: u64 = 10;

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
    let r = run_bench(&bins, &spec, &BenchOptions::default())
        .await
        .expect("bench runs");
    let json = serde_json::to_string_pretty(&r).unwrap_or_default();

    for (name, t) in r.ticks() {
        assert_eq!(t.exit_code, Some(0), "{name} failed: {json}");
        assert_eq!(t.duplicate_gets, 0, "{name} repeated a read: {json}");
        assert_eq!(
            t.t3_fleet_reads, 1,
            "{name} must read T3's fleet exactly once: {json}"
        );
        assert!(
            t.rate_limit_cost <= t.rate_limited_requests,
            "{name}: the cost counts at most the GitHub requests not answered 304: {json}"
        );
    }
    for (name, t) in [("poll", &r.poll), ("poll_warm", &r.poll_warm)] {
        assert_eq!(
            t.claims,
            u64::from(r.new_claims_per_poll),
            "{name} must claim a winner per free slot: {json}"
        );
        assert!(t.writes > 0, "{name} claimed but wrote nothing: {json}");
    }
    assert_eq!(
        r.live_runs_watched,
        spec.live_runs + 2 * r.new_claims_per_poll as usize,
        "{json}"
    );
    for (name, t) in [
        ("poll_quiet", &r.poll_quiet),
        ("quiet_watch", &r.quiet_watch),
    ] {
        assert_eq!(t.writes, 0, "a quiet tick ({name}) wrote: {json}");
        assert_eq!(t.claims, 0, "a quiet tick ({name}) claimed: {json}");
    }
    assert!(
        r.poll_quiet.rate_limit_cost <= r.poll_warm.rate_limit_cost,
        "the quiet poll cost more than the warm poll with work: {json}"
    );
    assert!(
        r.quiet_watch.rate_limit_cost <= r.watch_warm.rate_limit_cost,
        "the quiet watch cost more than the warm watch: {json}"
    );
    // The bound holds once afk keeps GitHub's validators between ticks: a warm tick that got
    // no `304` at all sent no validator, so there is no cache in this build to hold it to.
    let cached = r.poll_warm.not_modified + r.poll_quiet.not_modified > 0;
    if cached {
        assert!(
            r.poll_quiet.rate_limit_cost <= QUIET_POLL_COST,
            "with nothing changed, a poll with its cache warm must cost at most \
             {QUIET_POLL_COST} (REST not answered 304 + GraphQL points): {json}"
        );
    } else {
        eprintln!(
            "no GitHub read of the warm polls was answered 304 (no ETag cache in this build): \
             the quiet poll's bound of {QUIET_POLL_COST} is not checked"
        );
    }
    for (name, t) in [("poll", &r.poll), ("poll_warm", &r.poll_warm)] {
        assert!(
            t.requests.total <= POLL_CEILING,
            "{name} made {} requests (ceiling {POLL_CEILING}): {json}",
            t.requests.total
        );
    }
    assert!(
        r.watch.requests.total <= WATCH_CEILING,
        "watch made {} requests (ceiling {WATCH_CEILING}): {json}",
        r.watch.requests.total
    );

    let fit = r.fit.as_ref().expect("the fit ran");
    assert_eq!(fit.points.len(), 2, "{json}");
    assert!(fit.points[0].repos < r.repos, "{json}");
    assert_eq!(
        fit.points[0].poll_warm_claims, fit.points[1].poll_warm_claims,
        "both fleets' warm polls must do the same work: {json}"
    );
    for p in &fit.points {
        let at = p.repos as f64;
        assert!(
            (fit.poll_warm.at(at) - p.poll_warm as f64).abs() < 1e-6
                && (fit.watch_warm.at(at) - p.watch_warm as f64).abs() < 1e-6,
            "two points: the lines pass through them: {json}"
        );
    }
    assert_eq!(r.fleet_fits, fit.fleet_fits, "{json}");
    if let Some(n) = r.fleet_fits {
        let hourly = |n: f64| fit.hourly.at(n);
        let cap = afk_sim::bench::BUDGET_SHARE * afk_sim::bench::HOURLY_BUDGET as f64;
        assert!(
            (n == 0 || hourly(n as f64) <= cap) && hourly(n as f64 + 1.0) > cap,
            "fleet_fits {n} is not the largest fleet within {cap}/h: {json}"
        );
    }
    assert_eq!(r.targets.len(), 9, "{json}");
}
