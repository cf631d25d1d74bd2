//! What one tick costs against GitHub's hourly rate limits: REST requests not answered
//! `304 Not Modified`, plus GraphQL points.
//!
//! GitHub's REST docs ("Best practices for using the REST API", use conditional requests):
//! an authorized conditional request answered `304 Not Modified` does not count against the
//! primary rate limit; every other REST request does, errors included. GitHub's GraphQL docs
//! ("Rate limits and query limits for the GraphQL API"): GraphQL has its own primary limit
//! (5,000 points an hour for a user), every query costs at least one point, larger ones the
//! requests they imply divided by 100. The bench adds the two, which over-counts against
//! either budget alone: a conservative figure.

use crate::infra::{Remote, RequestRecord};
use crate::world::World;

/// Where the GraphQL points of a report come from (`graphql_points_source` in the JSON).
pub const POINTS_FROM_SIMULATOR: &str = "simulator";
/// The fallback: each GraphQL request counted as one point, GitHub's minimum per query.
pub const POINTS_ONE_PER_REQUEST: &str = "one point per GraphQL request";

/// GraphQL points the GitHub simulator has charged so far (priced by GitHub's cost model:
/// [`crate::github::rate_used`]); `None` would make the bench count requests instead.
pub fn sim_graphql_points(world: &World) -> Option<u64> {
    Some(crate::github::rate_used(world).1)
}

/// The source the bench's GraphQL figures come from in `world`.
pub fn graphql_points_source(world: &World) -> &'static str {
    if sim_graphql_points(world).is_some() {
        POINTS_FROM_SIMULATOR
    } else {
        POINTS_ONE_PER_REQUEST
    }
}

/// One tick's rate-limit cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateCost {
    /// GitHub REST requests not answered 304.
    pub rest: u64,
    pub graphql_points: u64,
    pub source: &'static str,
}

fn is_graphql(r: &RequestRecord) -> bool {
    r.remote == Remote::Github && r.path == "/graphql"
}

/// The cost of the tick whose log is `log`; `graphql_charged` is what the simulator charged
/// in GraphQL points during the tick (the difference of [`sim_graphql_points`] around it).
pub fn rate_cost(log: &[RequestRecord], graphql_charged: Option<u64>) -> RateCost {
    let rest = log
        .iter()
        .filter(|r| r.remote == Remote::Github && !is_graphql(r) && r.status != 304)
        .count() as u64;
    let (graphql_points, source) = match graphql_charged {
        Some(points) => (points, POINTS_FROM_SIMULATOR),
        None => (
            log.iter().filter(|r| is_graphql(r)).count() as u64,
            POINTS_ONE_PER_REQUEST,
        ),
    };
    RateCost {
        rest,
        graphql_points,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(remote: Remote, method: &str, path: &str, status: u16) -> RequestRecord {
        RequestRecord {
            seq: 0,
            remote,
            method: method.to_owned(),
            path: path.to_owned(),
            query: String::new(),
            status,
            at_ms: 0,
            body: String::new(),
            fault: None,
        }
    }

    #[test]
    fn a_304_is_free_and_graphql_counts_apart() {
        let log = [
            req(Remote::Github, "GET", "/repos/o/r/issues", 200),
            req(Remote::Github, "GET", "/repos/o/r/issues", 304),
            req(Remote::Github, "POST", "/repos/o/r/issues/1/comments", 201),
            req(Remote::Github, "GET", "/repos/o/r/issues/2", 404),
            req(Remote::Github, "POST", "/graphql", 200),
            req(Remote::Github, "POST", "/graphql", 200),
            req(Remote::T3, "GET", "/api/orchestration/shell", 200),
        ];
        let counted = rate_cost(&log, None);
        assert_eq!(counted.rest, 3, "200, 201 and 404 cost; the 304 does not");
        assert_eq!(counted.graphql_points, 2);
        assert_eq!(counted.source, POINTS_ONE_PER_REQUEST);
        let charged = rate_cost(&log, Some(7));
        assert_eq!((charged.rest, charged.graphql_points), (3, 7));
        assert_eq!(charged.source, POINTS_FROM_SIMULATOR);
    }
}
