//! HTTP routes of the simulated T3 server (auth, typed error bodies, the SPA catch-all) and its
//! `/__sim/t3/*` control endpoints.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::dispatch::Answer;
use super::wire::{self, Window};
use super::{
    OPERATE_SCOPE, READ_SCOPE, ScriptedTurn, State, T3Version, TurnCompletion, TurnHook,
    TurnTiming, run_hooks, seed_history,
};
use crate::infra::lock;
use crate::world::World;

/// The page the web app's catch-all serves for unknown GET paths.
const SPA_HTML: &str = "<!doctype html><html><head><title>T3 Code</title></head>\
<body><div id=\"root\"></div><script type=\"module\" src=\"/assets/index.js\"></script></body></html>";

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn spa() -> Response {
    let mut resp = (StatusCode::OK, SPA_HTML).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

fn typed(status: StatusCode, body: serde_json::Value) -> Response {
    json(status, body.to_string().into_bytes())
}

/// Checks the bearer token and its scopes (before any payload decoding, as upstream); the
/// typed 401/403 answer when refused.
fn deny(st: &mut State, headers: &HeaderMap, scope: &str) -> Option<Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Some(auth_invalid(st, "missing_credential"));
    };
    let Some(scopes) = st.tokens.get(token) else {
        return Some(auth_invalid(st, "invalid_credential"));
    };
    if !scopes.contains(scope) {
        let trace = st.next_trace();
        return Some(typed(
            StatusCode::FORBIDDEN,
            serde_json::json!({
                "_tag": "EnvironmentScopeRequiredError",
                "code": "insufficient_scope",
                "requiredScope": scope,
                "traceId": trace,
            }),
        ));
    }
    None
}

fn auth_invalid(st: &mut State, reason: &str) -> Response {
    let trace = st.next_trace();
    typed(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({
            "_tag": "EnvironmentAuthInvalidError",
            "code": "auth_invalid",
            "reason": reason,
            "traceId": trace,
        }),
    )
}

/// Locks the state, settles turns up to the simulated now, runs `f`, releases the lock, then
/// runs the turn hooks.
fn with_state<R>(world: &World, f: impl FnOnce(&mut State) -> R) -> R {
    let now = world.sim.now();
    let (out, hook, done): (R, Option<TurnHook>, Vec<TurnCompletion>) = {
        let mut st = lock(&world.t3);
        let done = st.settle(now);
        let out = f(&mut st);
        (out, st.hook.clone(), done)
    };
    run_hooks(world, hook, &done);
    out
}

/// The API as afk sees it.
pub fn router(world: Arc<World>) -> Router {
    Router::new()
        .route("/.well-known/t3/environment", get(environment))
        .route("/api/orchestration/snapshot", get(snapshot))
        .route("/api/orchestration/shell", get(shell))
        .route("/api/orchestration/threads/{id}", get(thread_detail))
        .route("/api/orchestration/dispatch", post(dispatch))
        .fallback(fallback)
        .with_state(world)
}

async fn fallback(method: Method) -> Response {
    if method == Method::GET {
        spa()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn environment(AxState(world): AxState<Arc<World>>) -> Response {
    let version = lock(&world.t3).version;
    json(StatusCode::OK, wire::environment(version))
}

async fn snapshot(AxState(world): AxState<Arc<World>>, headers: HeaderMap) -> Response {
    with_state(&world, |st| {
        if let Some(r) = deny(st, &headers, READ_SCOPE) {
            return r;
        }
        json(StatusCode::OK, wire::snapshot(st))
    })
}

async fn shell(AxState(world): AxState<Arc<World>>, headers: HeaderMap) -> Response {
    with_state(&world, |st| {
        if !st.version.has_shell() {
            return spa();
        }
        if let Some(r) = deny(st, &headers, READ_SCOPE) {
            return r;
        }
        json(StatusCode::OK, wire::shell(st))
    })
}

fn schema_error(message: &str) -> Response {
    typed(
        StatusCode::BAD_REQUEST,
        serde_json::json!({"_tag": "HttpApiSchemaError", "message": message}),
    )
}

/// `turnLimit` (a positive integer) and `beforeCursor` (as this simulator mints them).
fn parse_window(query: Option<&str>) -> Result<Window, String> {
    let mut w = Window {
        turn_limit: None,
        before: None,
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "turnLimit" => {
                let n: u32 = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("Expected a positive integer, got {v:?}\n  at [\"turnLimit\"]")
                })?;
                w.turn_limit = Some(n);
            }
            "beforeCursor" => {
                let n: u32 = v
                    .strip_prefix("turn%3A")
                    .or_else(|| v.strip_prefix("turn:"))
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("Invalid cursor {v:?}\n  at [\"beforeCursor\"]"))?;
                w.before = Some(n);
            }
            _ => {}
        }
    }
    Ok(w)
}

async fn thread_detail(
    AxState(world): AxState<Arc<World>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    with_state(&world, |st| {
        if !st.version.has_shell() {
            return spa();
        }
        if let Some(r) = deny(st, &headers, READ_SCOPE) {
            return r;
        }
        let window = match parse_window(query.as_deref()) {
            Ok(w) => w,
            Err(m) => return schema_error(&m),
        };
        match wire::thread_detail(st, &id, window) {
            Some(body) => json(StatusCode::OK, body),
            None => {
                let trace = st.next_trace();
                typed(
                    StatusCode::NOT_FOUND,
                    serde_json::json!({
                        "_tag": "EnvironmentResourceNotFoundError",
                        "code": "not_found",
                        "reason": "thread_not_found",
                        "traceId": trace,
                    }),
                )
            }
        }
    })
}

async fn dispatch(
    AxState(world): AxState<Arc<World>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = world.sim.now();
    with_state(&world, |st| {
        if let Some(r) = deny(st, &headers, OPERATE_SCOPE) {
            let status = r.status().as_u16();
            st.commands.push(super::CommandRecord {
                kind: None,
                command_id: None,
                body: serde_json::Value::Null,
                outcome: super::CommandOutcome::Unauthorized { status },
                at: now,
            });
            return r;
        }
        let value: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return schema_error(&format!("Invalid JSON: {e}")),
        };
        match st.dispatch(&value, now) {
            Answer::Sequence(sequence) => {
                typed(StatusCode::OK, serde_json::json!({"sequence": sequence}))
            }
            Answer::Schema(message) => schema_error(&message),
            Answer::Invalid => {
                let trace = st.next_trace();
                typed(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({
                        "_tag": "EnvironmentRequestInvalidError",
                        "code": "invalid_request",
                        "reason": "invalid_command",
                        "traceId": trace,
                    }),
                )
            }
            Answer::Rejected => {
                let trace = st.next_trace();
                typed(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({
                        "_tag": "EnvironmentInternalError",
                        "code": "internal_error",
                        "reason": "orchestration_dispatch_failed",
                        "traceId": trace,
                    }),
                )
            }
        }
    })
}

#[derive(Deserialize)]
struct SetVersion {
    version: T3Version,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AutoArchive {
    /// `autoArchiveSettledAfter` in seconds; `null` never archives.
    after_secs: Option<i64>,
}

#[derive(Deserialize)]
struct AddToken {
    token: String,
    scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Seed {
    threads: usize,
    messages: usize,
    activities: usize,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Duration {
    duration_secs: i64,
}

/// `/__sim/t3/*`: version, the auto-archive setting, tokens, turn scripts and timing, the command log, bench seeding.
pub fn control(world: Arc<World>) -> Router {
    Router::new()
        .route(
            "/__sim/t3/version",
            post(|AxState(w): AxState<Arc<World>>, Json(v): Json<SetVersion>| async move {
                lock(&w.t3).set_version(v.version);
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/__sim/t3/auto-archive",
            post(|AxState(w): AxState<Arc<World>>, Json(a): Json<AutoArchive>| async move {
                lock(&w.t3).auto_archive_after_secs = a.after_secs;
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/__sim/t3/tokens",
            post(|AxState(w): AxState<Arc<World>>, Json(t): Json<AddToken>| async move {
                let scopes: Vec<&str> = t.scopes.iter().map(String::as_str).collect();
                lock(&w.t3).add_token(&t.token, &scopes);
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/__sim/t3/timing",
            post(|AxState(w): AxState<Arc<World>>, Json(t): Json<TurnTiming>| async move {
                lock(&w.t3).timing = t;
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/__sim/t3/threads/{id}/next-turn",
            post(
                |AxState(w): AxState<Arc<World>>, Path(id): Path<String>, Json(s): Json<ScriptedTurn>| async move {
                    lock(&w.t3).script_next_turn(&id, s);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/__sim/t3/threads/{id}/duration",
            post(
                |AxState(w): AxState<Arc<World>>, Path(id): Path<String>, Json(d): Json<Duration>| async move {
                    lock(&w.t3).set_turn_duration(&id, d.duration_secs);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/__sim/t3/commands",
            get(|AxState(w): AxState<Arc<World>>| async move { Json(lock(&w.t3).commands().to_vec()) }),
        )
        .route(
            "/__sim/t3/seed",
            post(|AxState(w): AxState<Arc<World>>, Json(s): Json<Seed>| async move {
                let mut st = lock(&w.t3);
                seed_history(&mut st, s.threads, s.messages, s.activities);
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(world)
}
