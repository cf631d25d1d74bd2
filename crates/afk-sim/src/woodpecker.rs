//! Simulator of Woodpecker CI v3's API: repo lookup by full name, pipelines
//! listed newest first with `perPage` capped at 50, validated `event`/`status` filters, bearer
//! auth and Unix-second timestamps.
//!
//! There is no commit filter, as in the real server: clients must match `commit` themselves.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::infra::lock;
use crate::world::World;

/// The token the simulator accepts unless a test sets another with [`set_token`].
pub const DEFAULT_TOKEN: &str = "woodpecker-sim-token";

/// The largest page the real server serves; larger `perPage` values are capped to it.
pub const MAX_PER_PAGE: usize = 50;

/// Events the real server accepts in the `event` filter.
const EVENTS: [&str; 9] = [
    "push",
    "pull_request",
    "pull_request_closed",
    "pull_request_metadata",
    "tag",
    "release",
    "deployment",
    "cron",
    "manual",
];

/// Pipeline statuses of the real server.
pub const STATUSES: [&str; 11] = [
    "created", "pending", "running", "blocked", "success", "failure", "killed", "canceled",
    "error", "declined", "skipped",
];

const TERMINAL: [&str; 7] = [
    "success", "failure", "killed", "canceled", "error", "declined", "skipped",
];

/// One activated repository.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Repo {
    pub id: i64,
    pub owner: String,
    pub name: String,
    pub full_name: String,
    pub default_branch: String,
    pub active: bool,
}

/// One pipeline, in the real server's JSON shape (Unix-second timestamps).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pipeline {
    pub id: i64,
    pub number: i64,
    pub parent: i64,
    pub event: String,
    pub status: String,
    pub commit: String,
    pub branch: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub message: String,
    pub author: String,
    pub created: i64,
    pub updated: i64,
    pub started: i64,
    pub finished: i64,
    pub forge_url: String,
}

/// Everything this simulated remote knows.
#[derive(Debug)]
pub struct State {
    /// The bearer token requests must carry.
    pub token: String,
    /// Repos by full name.
    pub repos: BTreeMap<String, Repo>,
    /// Pipelines per repo id, in creation order.
    pub pipelines: BTreeMap<i64, Vec<Pipeline>>,
    next_repo_id: i64,
    next_pipeline_id: i64,
}

impl Default for State {
    fn default() -> Self {
        State {
            token: DEFAULT_TOKEN.to_owned(),
            repos: BTreeMap::new(),
            pipelines: BTreeMap::new(),
            next_repo_id: 1,
            next_pipeline_id: 1,
        }
    }
}

/// What a scenario says about a new pipeline.
#[derive(Debug, Clone, Deserialize)]
pub struct NewPipeline {
    pub commit: String,
    #[serde(default = "default_branch")]
    pub branch: String,
    #[serde(default = "default_event")]
    pub event: String,
    #[serde(default = "default_status")]
    pub status: String,
    #[serde(default)]
    pub message: String,
}

fn default_branch() -> String {
    "main".to_owned()
}
fn default_event() -> String {
    "push".to_owned()
}
fn default_status() -> String {
    "pending".to_owned()
}

impl NewPipeline {
    pub fn push(commit: &str, status: &str) -> NewPipeline {
        NewPipeline {
            commit: commit.to_owned(),
            branch: default_branch(),
            event: default_event(),
            status: status.to_owned(),
            message: String::new(),
        }
    }
}

/// Replaces the accepted token.
pub fn set_token(world: &World, token: &str) {
    lock(&world.woodpecker).token = token.to_owned();
}

/// Activates a repo (idempotent) and returns its id.
pub fn add_repo(world: &World, full_name: &str) -> i64 {
    let mut st = lock(&world.woodpecker);
    if let Some(r) = st.repos.get(full_name) {
        return r.id;
    }
    let id = st.next_repo_id;
    st.next_repo_id += 1;
    let (owner, name) = full_name.split_once('/').unwrap_or(("", full_name));
    st.repos.insert(
        full_name.to_owned(),
        Repo {
            id,
            owner: owner.to_owned(),
            name: name.to_owned(),
            full_name: full_name.to_owned(),
            default_branch: default_branch(),
            active: true,
        },
    );
    st.pipelines.insert(id, Vec::new());
    id
}

/// Activates or deactivates a known repo (a deactivated repo is still found by lookup, with
/// `active: false`, as in Woodpecker).
pub fn set_active(world: &World, full_name: &str, active: bool) -> Result<(), Refused> {
    let mut st = lock(&world.woodpecker);
    let r = st
        .repos
        .get_mut(full_name)
        .ok_or_else(|| Refused(format!("no repo {full_name}")))?;
    r.active = active;
    Ok(())
}

/// Why a scripted change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// Adds a pipeline to a repo; returns its number.
pub fn add_pipeline(world: &World, repo_id: i64, p: NewPipeline) -> Result<i64, Refused> {
    if !STATUSES.contains(&p.status.as_str()) {
        return Err(Refused(format!("unknown status {:?}", p.status)));
    }
    if !EVENTS.contains(&p.event.as_str()) {
        return Err(Refused(format!("unknown event {:?}", p.event)));
    }
    let now = world.sim.now().timestamp();
    let mut st = lock(&world.woodpecker);
    let id = st.next_pipeline_id;
    st.next_pipeline_id += 1;
    let list = st
        .pipelines
        .get_mut(&repo_id)
        .ok_or_else(|| Refused(format!("no repo with id {repo_id}")))?;
    let number = list.last().map_or(1, |l| l.number + 1);
    let started = if p.status == "pending" || p.status == "created" || p.status == "blocked" {
        0
    } else {
        now
    };
    let finished = if TERMINAL.contains(&p.status.as_str()) {
        now
    } else {
        0
    };
    list.push(Pipeline {
        id,
        number,
        parent: 0,
        git_ref: format!("refs/heads/{}", p.branch),
        forge_url: format!("https://forge.example/commit/{}", p.commit),
        event: p.event,
        status: p.status,
        commit: p.commit,
        branch: p.branch,
        message: p.message,
        author: "agent".to_owned(),
        created: now,
        updated: now,
        started,
        finished,
    });
    Ok(number)
}

/// Changes a pipeline's status (CI progressing or finishing).
pub fn set_status(world: &World, repo_id: i64, number: i64, status: &str) -> Result<(), Refused> {
    if !STATUSES.contains(&status) {
        return Err(Refused(format!("unknown status {status:?}")));
    }
    let now = world.sim.now().timestamp();
    let mut st = lock(&world.woodpecker);
    let p = st
        .pipelines
        .get_mut(&repo_id)
        .and_then(|l| l.iter_mut().find(|p| p.number == number))
        .ok_or_else(|| Refused(format!("no pipeline {number} in repo {repo_id}")))?;
    p.status = status.to_owned();
    p.updated = now;
    if status == "running" && p.started == 0 {
        p.started = now;
    }
    if TERMINAL.contains(&status) {
        if p.started == 0 {
            p.started = now;
        }
        p.finished = now;
    }
    Ok(())
}

fn text(status: StatusCode, msg: &str) -> Response {
    (status, msg.to_owned()).into_response()
}

fn authorized(world: &World, headers: &HeaderMap) -> bool {
    let want = lock(&world.woodpecker).token.clone();
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == want)
}

async fn lookup(
    AxState(world): AxState<Arc<World>>,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
) -> Response {
    if !authorized(&world, &headers) {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let st = lock(&world.woodpecker);
    match st.repos.get(&format!("{owner}/{name}")) {
        Some(r) => Json(serde_json::json!({
            "id": r.id,
            "forge_remote_id": r.id.to_string(),
            "owner": r.owner,
            "name": r.name,
            "full_name": r.full_name,
            "default_branch": r.default_branch,
            "active": r.active,
            "forge_url": format!("https://forge.example/{}", r.full_name),
            "clone_url": format!("https://forge.example/{}.git", r.full_name),
            "private": false,
            "visibility": "public",
        }))
        .into_response(),
        None => text(StatusCode::NOT_FOUND, "Not Found"),
    }
}

async fn list_pipelines(
    AxState(world): AxState<Arc<World>>,
    headers: HeaderMap,
    Path(repo_id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if !authorized(&world, &headers) {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let Ok(repo_id) = repo_id.parse::<i64>() else {
        return text(StatusCode::BAD_REQUEST, "Error parsing repository id");
    };
    let page = q
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let per_page = q
        .get("perPage")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| (1..=MAX_PER_PAGE).contains(p))
        .unwrap_or(MAX_PER_PAGE);
    let events: Vec<&str> = match q.get("event").map(String::as_str) {
        None | Some("") => Vec::new(),
        Some(list) => list.split(',').collect(),
    };
    if let Some(bad) = events.iter().find(|e| !EVENTS.contains(e)) {
        return text(
            StatusCode::BAD_REQUEST,
            &format!("invalid event filter: {bad}"),
        );
    }
    let status = q.get("status").filter(|s| !s.is_empty());
    if let Some(s) = status
        && !STATUSES.contains(&s.as_str())
    {
        return text(
            StatusCode::BAD_REQUEST,
            &format!("invalid status filter: {s}"),
        );
    }
    let st = lock(&world.woodpecker);
    let Some(all) = st.pipelines.get(&repo_id) else {
        return text(StatusCode::NOT_FOUND, "Not Found");
    };
    let mut matching: Vec<&Pipeline> = all
        .iter()
        .filter(|p| {
            q.get("branch")
                .is_none_or(|b| b.is_empty() || &p.branch == b)
        })
        .filter(|p| events.is_empty() || events.contains(&p.event.as_str()))
        .filter(|p| status.is_none_or(|s| &p.status == s))
        .filter(|p| q.get("ref").is_none_or(|r| p.git_ref.contains(r.as_str())))
        .collect();
    matching.sort_by_key(|p| std::cmp::Reverse(p.number));
    let page_items: Vec<&Pipeline> = matching
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    Json(page_items).into_response()
}

async fn unknown() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found")
}

/// The remote's API as afk sees it (base URL `<sim>/api`).
pub fn router(world: Arc<World>) -> Router {
    Router::new()
        .route("/api/repos/lookup/{owner}/{name}", get(lookup))
        .route("/api/repos/{repo_id}/pipelines", get(list_pipelines))
        .fallback(unknown)
        .with_state(world)
}

#[derive(Deserialize)]
struct NewRepo {
    full_name: String,
}

#[derive(Deserialize)]
struct NewStatus {
    status: String,
}

fn refused(r: Refused) -> Response {
    (StatusCode::BAD_REQUEST, r.0).into_response()
}

/// Test and scenario control endpoints under `/__sim/woodpecker/`:
/// `POST repos {full_name}` → `{id}`, `GET repos`, `POST repos/{id}/pipelines` (a
/// [`NewPipeline`]) → `{number}`, `POST repos/{id}/pipelines/{number}/status {status}`.
pub fn control(world: Arc<World>) -> Router {
    Router::new()
        .route(
            "/__sim/woodpecker/repos",
            post(
                |AxState(w): AxState<Arc<World>>, Json(r): Json<NewRepo>| async move {
                    Json(serde_json::json!({"id": add_repo(&w, &r.full_name)}))
                },
            )
            .get(|AxState(w): AxState<Arc<World>>| async move {
                let repos: Vec<Repo> = lock(&w.woodpecker).repos.values().cloned().collect();
                Json(repos)
            }),
        )
        .route(
            "/__sim/woodpecker/repos/{id}/pipelines",
            post(
                |AxState(w): AxState<Arc<World>>,
                 Path(id): Path<i64>,
                 Json(p): Json<NewPipeline>| async move {
                    match add_pipeline(&w, id, p) {
                        Ok(n) => Json(serde_json::json!({"number": n})).into_response(),
                        Err(r) => refused(r),
                    }
                },
            ),
        )
        .route(
            "/__sim/woodpecker/repos/{id}/pipelines/{number}/status",
            post(
                |AxState(w): AxState<Arc<World>>,
                 Path((id, number)): Path<(i64, i64)>,
                 Json(s): Json<NewStatus>| async move {
                    match set_status(&w, id, number, &s.status) {
                        Ok(()) => StatusCode::NO_CONTENT.into_response(),
                        Err(r) => refused(r),
                    }
                },
            ),
        )
        .with_state(world)
}
