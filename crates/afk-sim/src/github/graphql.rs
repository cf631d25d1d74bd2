//! The simulated GitHub GraphQL endpoint. Requests are parsed with a real GraphQL parser
//! (`query`), validated against the part of GitHub's schema the simulator models (`schema`),
//! priced and bounded by GitHub's documented cost model and node limit (`cost`), charged to
//! the `graphql` rate-limit budget, and run against the simulated state (`exec`).
//!
//! Like GitHub's GraphQL API, every answer is HTTP 200 (GitHub docs, "Rate limits and query
//! limits for the GraphQL API"): a refused query has `errors` and no `data`; a server set up
//! without issue dependencies (`graphql_without_blocked_by`, as on GitHub Enterprise Server
//! versions before them) refuses a query selecting `blockedBy` as an `undefinedField`; a
//! repository, issue or blocker the caller cannot see is `null` plus a `NOT_FOUND` error
//! naming its path, the rest of `data` still answered. A query that costs more points than
//! remain is refused with a `RATE_LIMITED` error ("Exceeding the rate limit": the status is
//! still 200). Answers carry the `x-ratelimit-*` headers of the `graphql` resource (set by
//! the gate in `wire`).

mod cost;
mod exec;
mod query;
mod schema;

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::DateTime;
use serde_json::{Value, json};

use super::wire::{Caller, json_response, message};
use crate::infra::lock;
use crate::world::World;

/// The points a call that is refused before it runs is charged: GitHub's docs give the
/// minimum point value of a call as 1.
const REFUSED_CALL_POINTS: u64 = 1;

fn errors_only(errors: Vec<Value>) -> Response {
    json_response(StatusCode::OK, &json!({"errors": errors}))
}

pub async fn graphql(
    State(w): State<Arc<World>>,
    Extension(c): Extension<Caller>,
    body: Bytes,
) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return message(StatusCode::BAD_REQUEST, "Problems parsing JSON");
    };
    let Some(text) = v.get("query").and_then(Value::as_str) else {
        return errors_only(vec![query::error(
            "A query attribute must be specified and must be a string.",
        )]);
    };
    let vars = v.get("variables").cloned().unwrap_or(Value::Null);
    let operation = v.get("operationName").and_then(Value::as_str);
    let parsed = query::parse(text, &vars, operation);
    let mut st = lock(&w.github);
    let sels = match parsed {
        Ok(sels) => sels,
        Err(errors) => {
            st.graphql_rate.charge(REFUSED_CALL_POINTS);
            return errors_only(errors);
        }
    };
    let schema = schema::Schema::github(st.graphql_without_blocked_by);
    let analysis = match cost::analyse(&schema, "Query", &sels) {
        Ok(a) => a,
        Err(errors) => {
            st.graphql_rate.charge(REFUSED_CALL_POINTS);
            return errors_only(errors);
        }
    };
    let cost = analysis.cost();
    if st.graphql_rate.remaining < cost {
        return errors_only(vec![json!({
            "type": "RATE_LIMITED",
            "message": "API rate limit exceeded for user ID 1.",
        })]);
    }
    st.graphql_rate.charge(cost);
    let rate = exec::RateView {
        cost,
        limit: st.graphql_rate.limit,
        remaining: st.graphql_rate.remaining,
        reset_at: DateTime::from_timestamp(st.graphql_rate.reset, 0)
            .map(super::render::time)
            .unwrap_or_default(),
        node_count: analysis.nodes,
    };
    let mut run = exec::Exec {
        st: &st,
        caller: &c.0,
        rate,
        errors: Vec::new(),
    };
    let data = run.query(&sels);
    let mut answer = json!({ "data": data });
    if !run.errors.is_empty() {
        answer["errors"] = Value::Array(run.errors);
    }
    json_response(StatusCode::OK, &answer)
}
