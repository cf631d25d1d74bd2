//! What the bench reads from one tick's request log: requests by remote, writes, repeated
//! reads, T3 fleet reads, the tick's dependent chain (depth) and the physical limit its wall
//! time is compared with, and its cost against GitHub's rate limits ([`super::cost`]).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use super::cost::{RateCost, rate_cost};
use crate::driver::TickRun;
use crate::infra::{Remote, RequestRecord};

/// Requests of one tick.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Requests {
    pub total: u64,
    pub by_remote: BTreeMap<String, u64>,
}

/// One measured tick.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TickReport {
    pub wall_ms: u64,
    pub exit_code: Option<i32>,
    pub requests: Requests,
    /// GitHub requests that were not `304 Not Modified` (GraphQL included).
    pub rate_limited_requests: u64,
    /// GitHub requests answered `304 Not Modified` (free against the rate limit).
    pub not_modified: u64,
    /// REST requests not answered 304 plus GraphQL points: what the tick spent of GitHub's
    /// hourly budgets.
    pub rate_limit_cost: u64,
    /// The REST part of [`TickReport::rate_limit_cost`].
    pub rest_cost: u64,
    /// The GraphQL part (see `graphql_points_source` in the fleet report).
    pub graphql_points: u64,
    /// Mutating requests (a GraphQL POST query is a read).
    pub writes: u64,
    /// Reads repeated within the tick (same method, path and query; GraphQL: same body).
    pub duplicate_gets: u64,
    /// T3 fleet reads (`/shell` or `/snapshot`).
    pub t3_fleet_reads: u64,
    /// Winners the tick claimed and dispatched (dispatch entries of its plan).
    pub claims: u64,
    pub peak_rss_kib: Option<u64>,
    /// The longest chain of requests that must happen one after another (see [`poll_depth`]
    /// and [`watch_depth`]).
    pub depth: u64,
    /// The minimum the tick needs: every distinct read once, plus every write.
    pub total_requests: u64,
    pub concurrency: u16,
    pub limit_ms: u64,
    pub ratio: f64,
}

/// Dispatch entries in the tick's JSON plan.
pub fn claims_in(run: &TickRun) -> usize {
    run.plan
        .as_ref()
        .and_then(|p| p.get("dispatch"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

fn is_read(r: &RequestRecord) -> bool {
    !r.is_write() || (r.remote == Remote::Github && r.path == "/graphql")
}

fn is_fleet_read(r: &RequestRecord) -> bool {
    r.remote == Remote::T3
        && (r.path == "/api/orchestration/shell" || r.path == "/api/orchestration/snapshot")
}

/// The identity of a read: a repeated identity within one tick is a duplicate.
fn read_key(r: &RequestRecord) -> (Remote, String, String, String) {
    let body = if r.method == "GET" {
        String::new()
    } else {
        r.body.clone()
    };
    (
        r.remote,
        r.method.clone(),
        format!("{}?{}", r.path, r.query),
        body,
    )
}

/// Reads repeated within the log (each repetition counts once).
pub fn duplicate_reads(log: &[RequestRecord]) -> u64 {
    let mut seen: HashMap<(Remote, String, String, String), u64> = HashMap::new();
    for r in log.iter().filter(|r| is_read(r)) {
        *seen.entry(read_key(r)).or_default() += 1;
    }
    seen.values().map(|n| n - 1).sum()
}

/// Mutating requests (a GraphQL POST query is a read).
pub fn writes(log: &[RequestRecord]) -> u64 {
    log.iter().filter(|r| !is_read(r)).count() as u64
}

/// T3 fleet reads in the log.
pub fn fleet_reads(log: &[RequestRecord]) -> u64 {
    log.iter().filter(|r| is_fleet_read(r)).count() as u64
}

fn has(log: &[RequestRecord], f: impl Fn(&RequestRecord) -> bool) -> bool {
    log.iter().any(f)
}

/// The poll tick's dependent chain, from its code paths:
/// - gathering: T3 environment → fleet (2) runs beside each repo's chain
///   list ready issues → label events → labeler's permission → body edits / blocker issue
///   (the last two independent of each other: one level), i.e. 3 or 4;
/// - then, when winners are claimed: comments ∥ default branch → create status comment →
///   lock label → T3 project.create → thread.create → turn.start → edit status comment (7;
///   6 when the project already exists).
pub fn poll_depth(log: &[RequestRecord], claims: usize) -> u64 {
    let blockers_or_edits = has(log, |r| r.remote == Remote::Github && r.path == "/graphql")
        || has(log, |r| {
            r.remote == Remote::Github
                && r.method == "GET"
                && r.path.contains("/issues/")
                && !r.path.ends_with("/events")
                && !r.path.ends_with("/comments")
        });
    let gather = 3 + u64::from(blockers_or_edits);
    let gather = gather.max(2);
    if claims == 0 {
        return gather;
    }
    let creates_project = has(log, |r| {
        r.remote == Remote::T3 && r.method == "POST" && r.body.contains("project.create")
    });
    gather + 6 + u64::from(creates_project)
}

/// The watch tick's dependent chain, from its code paths: T3 environment → fleet (2) beside
/// each repo's locked-issue list (1); then per live run: comments (the run record) → commits
/// since dispatch ∥ thread detail ∥ default branch (the chain ends there while no commit of
/// the run was pushed; a push adds CI → rollout).
pub fn watch_depth(log: &[RequestRecord]) -> u64 {
    let comments = has(log, |r| {
        r.remote == Remote::Github && r.method == "GET" && r.path.ends_with("/comments")
    });
    let commits = has(log, |r| {
        r.remote == Remote::Github && r.method == "GET" && r.path.ends_with("/commits")
    });
    2 + u64::from(comments) + u64::from(commits)
}

/// How one tick ran, for [`report`].
pub struct Measured<'a> {
    pub run: &'a TickRun,
    pub log: &'a [RequestRecord],
    /// GraphQL points the simulator charged during the tick, when it keeps that account.
    pub graphql_charged: Option<u64>,
    pub concurrency: u16,
    pub latency_ms: u64,
}

/// Measures one tick from its log; `depth` is its dependent chain.
pub fn report(m: &Measured<'_>, depth: u64) -> TickReport {
    let log = m.log;
    let mut by_remote = BTreeMap::new();
    for r in log {
        *by_remote
            .entry(r.remote.as_str().to_owned())
            .or_insert(0u64) += 1;
    }
    let total = log.len() as u64;
    let duplicates = duplicate_reads(log);
    let minimum = total - duplicates;
    let c = u64::from(m.concurrency.max(1));
    let latency_ms = m.latency_ms;
    let limit_ms = (depth * latency_ms).max(minimum.div_ceil(c) * latency_ms);
    let wall_ms = u64::try_from(m.run.wall.as_millis()).unwrap_or(u64::MAX);
    let github = || log.iter().filter(|r| r.remote == Remote::Github);
    let RateCost {
        rest,
        graphql_points,
        ..
    } = rate_cost(log, m.graphql_charged);
    TickReport {
        wall_ms,
        exit_code: m.run.code,
        requests: Requests { total, by_remote },
        rate_limited_requests: github().filter(|r| r.status != 304).count() as u64,
        not_modified: github().filter(|r| r.status == 304).count() as u64,
        rate_limit_cost: rest + graphql_points,
        rest_cost: rest,
        graphql_points,
        writes: writes(log),
        duplicate_gets: duplicates,
        t3_fleet_reads: fleet_reads(log),
        claims: claims_in(m.run) as u64,
        peak_rss_kib: m.run.peak_rss_kib,
        depth,
        total_requests: minimum,
        concurrency: m.concurrency.max(1),
        limit_ms,
        ratio: if limit_ms == 0 {
            0.0
        } else {
            wall_ms as f64 / limit_ms as f64
        },
    }
}
