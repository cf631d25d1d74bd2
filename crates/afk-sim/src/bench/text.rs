//! The fleet report as text: one row per measured tick, the fit, one PASS/FAIL line per
//! target.

use std::fmt::Write;

use super::{FleetReport, TARGET_FLEET};

/// The report as the bench prints it without `--json`.
pub fn render(r: &FleetReport) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "fleet: {} repos x {} issues, {} live runs, latency {} ms, concurrency {}; GraphQL points: {}",
        r.repos,
        r.issues_per_repo,
        r.live_runs,
        r.latency_ms,
        r.concurrency,
        r.graphql_points_source
    );
    let _ = writeln!(
        out,
        "{:<12} {:>8} {:>8} {:>8} {:>6} {:>5} {:>5} {:>5} {:>6} {:>9} {:>8} {:>6}",
        "tick",
        "wall_ms",
        "requests",
        "minimum",
        "writes",
        "dups",
        "depth",
        "304s",
        "rl_cost",
        "rss_kib",
        "limit_ms",
        "ratio"
    );
    for (name, t) in r.ticks() {
        let _ = writeln!(
            out,
            "{:<12} {:>8} {:>8} {:>8} {:>6} {:>5} {:>5} {:>5} {:>6} {:>9} {:>8} {:>6.2}",
            name,
            t.wall_ms,
            t.requests.total,
            t.total_requests,
            t.writes,
            t.duplicate_gets,
            t.depth,
            t.not_modified,
            t.rate_limit_cost,
            t.peak_rss_kib.map_or("?".to_owned(), |k| k.to_string()),
            t.limit_ms,
            t.ratio
        );
    }
    match &r.fit {
        Some(f) => {
            let points: Vec<String> = f
                .points
                .iter()
                .map(|p| {
                    format!(
                        "R={}: poll_warm {}, watch_warm {}",
                        p.repos, p.poll_warm, p.watch_warm
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "fit ({}): poll_warm = {:.1} + {:.3}·R, watch_warm = {:.1} + {:.3}·R; {} ({}/h) and {} ({}/h) in {}",
                points.join("; "),
                f.poll_warm.fixed,
                f.poll_warm.per_repo,
                f.watch_warm.fixed,
                f.watch_warm.per_repo,
                f.schedules.poll,
                f.schedules.poll_ticks_per_hour,
                f.schedules.watch,
                f.schedules.watch_ticks_per_hour,
                f.schedules.source
            );
            let _ = writeln!(
                out,
                "fleet_fits: {} ({})",
                f.fleet_fits
                    .map_or("unbounded".to_owned(), |n| n.to_string()),
                f.note
            );
        }
        None => {
            let _ = writeln!(out, "fleet_fits: not measured (--no-fit)");
        }
    }
    let (tr, ti, tf, tl) = TARGET_FLEET;
    if (r.repos, r.issues_per_repo, r.live_runs, r.latency_ms) != TARGET_FLEET {
        let _ = writeln!(
            out,
            "targets (set for R={tr}, I={ti}, F={tf}, L={tl}; this fleet differs):"
        );
    } else {
        let _ = writeln!(out, "targets:");
    }
    for (name, t) in &r.targets {
        let _ = writeln!(
            out,
            "{} {name}: {} (measured {})",
            t.verdict(),
            t.rule,
            t.measured.map_or("nothing".to_owned(), |m| format!("{m}"))
        );
    }
    out
}
