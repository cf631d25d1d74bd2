//! `fleet_fits`: the largest fleet whose hourly GitHub cost fits the budget at the shipped
//! schedules. Each warm tick kind's rate-limit cost is modelled as `a + b·R` (a fixed part and
//! a per-repo part), fitted by least squares over fleets of different sizes measured in one
//! run; the hourly cost is `poll_ticks_per_hour · poll_warm(R) + watch_ticks_per_hour ·
//! watch_warm(R)`, and the fleet fits while that stays within 80 % of 5,000.

use serde::Serialize;

use super::schedule::Schedules;

/// GitHub's primary rate limit for a user token, per hour (REST requests; GraphQL points).
pub const HOURLY_BUDGET: u64 = 5_000;
/// The share of it afk may plan to spend, leaving room for people and other tools.
pub const BUDGET_SHARE: f64 = 0.8;

/// The model, as the JSON states it.
pub const MODEL: &str = "per warm tick kind, rate_limit_cost(R) = fixed + per_repo * R, least \
     squares over the fleets measured at the same I and F; hourly(R) = poll_ticks_per_hour * \
     poll_warm(R) + watch_ticks_per_hour * watch_warm(R) (the warm ticks with work, not the \
     quiet ones); fleet_fits = the largest R with hourly(R) <= budget_share * hourly_budget";

/// `cost = fixed + per_repo · repos`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Line {
    pub fixed: f64,
    pub per_repo: f64,
}

impl Line {
    pub fn at(&self, repos: f64) -> f64 {
        self.fixed + self.per_repo * repos
    }
}

/// The least-squares line through `points` (`(repos, cost)`); `None` without two distinct
/// fleet sizes.
pub fn least_squares(points: &[(f64, f64)]) -> Option<Line> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let per_repo = sxy / sxx;
    Some(Line {
        fixed: mean_y - per_repo * mean_x,
        per_repo,
    })
}

/// One measured fleet size.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FitPoint {
    pub repos: usize,
    pub poll_warm: u64,
    pub watch_warm: u64,
    /// Winners the warm poll claimed (the fleets must do the same work for the fit to hold).
    pub poll_warm_claims: u64,
}

/// The fit and its answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FitReport {
    pub model: &'static str,
    pub points: Vec<FitPoint>,
    pub poll_warm: Line,
    pub watch_warm: Line,
    pub schedules: Schedules,
    pub hourly_budget: u64,
    pub budget_share: f64,
    /// `hourly(R) = fixed + per_repo · R`.
    pub hourly: Line,
    /// `None` when the measured hourly cost does not grow with R (no bound from this model).
    pub fleet_fits: Option<u64>,
    pub note: String,
}

/// Fits the points and answers the largest fleet within the budget.
pub fn fit(points: Vec<FitPoint>, schedules: Schedules) -> anyhow::Result<FitReport> {
    let line = |f: fn(&FitPoint) -> u64| {
        let xy: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (p.repos as f64, f(p) as f64))
            .collect();
        least_squares(&xy)
    };
    let (Some(poll), Some(watch)) = (line(|p| p.poll_warm), line(|p| p.watch_warm)) else {
        anyhow::bail!(
            "fleet_fits needs fleets of at least two different sizes, measured: {:?}",
            points.iter().map(|p| p.repos).collect::<Vec<_>>()
        );
    };
    let (np, nw) = (
        schedules.poll_ticks_per_hour,
        schedules.watch_ticks_per_hour,
    );
    let hourly = Line {
        fixed: np * poll.fixed + nw * watch.fixed,
        per_repo: np * poll.per_repo + nw * watch.per_repo,
    };
    let (fleet_fits, mut note) = largest_fleet(&hourly);
    let claims: Vec<u64> = points.iter().map(|p| p.poll_warm_claims).collect();
    if claims.windows(2).any(|w| w[0] != w[1]) {
        note.push_str(&format!(
            "; the warm polls claimed {claims:?} winners: the fleets did unequal work, so the \
             per-repo part is skewed"
        ));
    }
    Ok(FitReport {
        model: MODEL,
        points,
        poll_warm: poll,
        watch_warm: watch,
        schedules,
        hourly_budget: HOURLY_BUDGET,
        budget_share: BUDGET_SHARE,
        hourly,
        fleet_fits,
        note,
    })
}

/// The largest R with `hourly.at(R) ≤ BUDGET_SHARE · HOURLY_BUDGET`, and what bounds it.
pub fn largest_fleet(hourly: &Line) -> (Option<u64>, String) {
    let cap = BUDGET_SHARE * HOURLY_BUDGET as f64;
    if hourly.fixed > cap {
        return (
            Some(0),
            format!(
                "the fixed part alone ({:.0}/h) exceeds the {cap:.0}/h budget",
                hourly.fixed
            ),
        );
    }
    if hourly.per_repo <= 0.0 {
        return (
            None,
            format!(
                "unbounded by this model: the measured per-repo cost is {:.3}/h",
                hourly.per_repo
            ),
        );
    }
    let r = ((cap - hourly.fixed) / hourly.per_repo).floor();
    // Within f64's exact integers for any fleet this model can describe.
    let r = if r.is_finite() && r >= 0.0 {
        r.min(1e15) as u64
    } else {
        0
    };
    (
        Some(r),
        format!(
            "{:.0}/h fixed + {:.3}/h per repo within {cap:.0}/h",
            hourly.fixed, hourly.per_repo
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedules(poll: f64, watch: f64) -> Schedules {
        Schedules {
            source: "test".into(),
            poll: String::new(),
            poll_ticks_per_hour: poll,
            watch: String::new(),
            watch_ticks_per_hour: watch,
        }
    }

    fn point(repos: usize, poll_warm: u64, watch_warm: u64) -> FitPoint {
        FitPoint {
            repos,
            poll_warm,
            watch_warm,
            poll_warm_claims: 4,
        }
    }

    #[test]
    fn least_squares_recovers_a_line_and_needs_two_sizes() {
        let l = least_squares(&[(50.0, 110.0), (200.0, 410.0)]).expect("two sizes");
        assert!((l.per_repo - 2.0).abs() < 1e-9 && (l.fixed - 10.0).abs() < 1e-9);
        let l = least_squares(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0), (3.0, 7.0)]).expect("four");
        assert!((l.per_repo - 2.0).abs() < 1e-9 && (l.fixed - 1.0).abs() < 1e-9);
        assert!(least_squares(&[(5.0, 1.0), (5.0, 2.0)]).is_none());
        assert!(least_squares(&[(5.0, 1.0)]).is_none());
    }

    #[test]
    fn the_largest_fleet_within_the_budget() {
        // poll 20 + 0.1·R, watch 10 + 0.02·R at 12 ticks/h each: 360 + 1.44·R ≤ 4000.
        let r = fit(
            vec![point(50, 25, 11), point(200, 40, 14)],
            schedules(12.0, 12.0),
        )
        .expect("fits");
        assert_eq!(r.fleet_fits, Some(2527), "{r:?}");
        let at = r.hourly.at(2527.0);
        assert!(at <= 4000.0 && r.hourly.at(2528.0) > 4000.0, "{at}");
        // A fixed part above the budget fits no fleet; a flat cost is unbounded.
        assert_eq!(
            largest_fleet(&Line {
                fixed: 4001.0,
                per_repo: 1.0
            })
            .0,
            Some(0)
        );
        assert_eq!(
            largest_fleet(&Line {
                fixed: 10.0,
                per_repo: 0.0
            })
            .0,
            None
        );
        let one = fit(vec![point(50, 25, 11)], schedules(12.0, 12.0));
        assert!(one.is_err());
    }

    #[test]
    fn unequal_work_is_named() {
        let mut small = point(50, 25, 11);
        small.poll_warm_claims = 2;
        let r = fit(vec![small, point(200, 40, 14)], schedules(20.0, 30.0)).expect("fits");
        assert!(r.note.contains("unequal work"), "{}", r.note);
    }
}
