//! The fleet-scale targets, each as measured against its bound. A missed target is a finding,
//! not a failure of the bench: the process still exits 0.

use std::collections::BTreeMap;

use serde::Serialize;

use super::FleetReport;

/// The fleet the targets are set for: R, I, F, L.
pub const TARGET_FLEET: (usize, usize, usize, u64) = (200, 5, 20, 50);

/// One target.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Target {
    /// What is compared, in words.
    pub rule: String,
    /// `None`: not measured in this run.
    pub measured: Option<f64>,
    pub bound: f64,
    /// `true`: `measured ≤ bound`; `false`: `measured ≥ bound`.
    pub at_most: bool,
    pub met: Option<bool>,
}

impl Target {
    fn new(rule: String, measured: Option<f64>, bound: f64, at_most: bool) -> Target {
        let met = measured.map(|m| if at_most { m <= bound } else { m >= bound });
        Target {
            rule,
            measured,
            bound,
            at_most,
            met,
        }
    }

    fn at_most(rule: &str, measured: Option<f64>, bound: f64) -> Target {
        Target::new(rule.to_owned(), measured, bound, true)
    }

    /// `PASS`, `FAIL` or `SKIP` (not measured).
    pub fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "SKIP",
        }
    }
}

/// The targets of `r` (its `targets` field is ignored).
pub fn evaluate(r: &FleetReport) -> BTreeMap<String, Target> {
    let mut t = BTreeMap::new();
    let cost = |x: u64| Some(x as f64);
    t.insert(
        "poll_rate_limit_cost".into(),
        Target::at_most(
            "poll_warm.rate_limit_cost <= 60",
            cost(r.poll_warm.rate_limit_cost),
            60.0,
        ),
    );
    t.insert(
        "poll_quiet_rate_limit_cost".into(),
        Target::at_most(
            "poll_quiet.rate_limit_cost <= 10",
            cost(r.poll_quiet.rate_limit_cost),
            10.0,
        ),
    );
    t.insert(
        "watch_rate_limit_cost".into(),
        Target::at_most(
            "watch_warm.rate_limit_cost <= 40",
            cost(r.watch_warm.rate_limit_cost),
            40.0,
        ),
    );
    let watched = r.live_runs_watched;
    t.insert(
        "quiet_watch_rate_limit_cost".into(),
        Target::new(
            format!("quiet_watch.rate_limit_cost <= F + 5, F = the {watched} live runs it watched"),
            cost(r.quiet_watch.rate_limit_cost),
            (watched + 5) as f64,
            true,
        ),
    );
    t.insert(
        "fleet_fits".into(),
        Target::new(
            "fleet_fits >= 2000 repos".into(),
            r.fleet_fits.map(|f| f as f64),
            2000.0,
            false,
        ),
    );
    t.insert(
        "poll_ratio".into(),
        Target::at_most("poll_warm.ratio <= 1.5", Some(r.poll_warm.ratio), 1.5),
    );
    t.insert(
        "watch_ratio".into(),
        Target::at_most("watch_warm.ratio <= 1.5", Some(r.watch_warm.ratio), 1.5),
    );
    t.insert(
        "poll_peak_rss_kib".into(),
        Target::at_most(
            "poll_warm.peak_rss_kib <= 32 MiB",
            r.poll_warm.peak_rss_kib.map(|k| k as f64),
            32.0 * 1024.0,
        ),
    );
    let dups: u64 = r.ticks().iter().map(|(_, t)| t.duplicate_gets).sum();
    t.insert(
        "duplicate_reads".into(),
        Target::at_most(
            "duplicate reads over all measured ticks = 0",
            cost(dups),
            0.0,
        ),
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(Target::at_most("x", Some(10.0), 10.0).verdict(), "PASS");
        assert_eq!(Target::at_most("x", Some(10.5), 10.0).verdict(), "FAIL");
        assert_eq!(Target::at_most("x", None, 10.0).verdict(), "SKIP");
        let floor = Target::new("y".into(), Some(1999.0), 2000.0, false);
        assert_eq!(floor.verdict(), "FAIL");
        assert_eq!(
            Target::new("y".into(), Some(2000.0), 2000.0, false).verdict(),
            "PASS"
        );
    }
}
