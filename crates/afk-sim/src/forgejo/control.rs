//! JSON control endpoints under `/__sim/forgejo/` to seed and inspect the simulated Forgejo
//! from outside the process (scenarios, end-to-end tests, operators).
//!
//! - `POST /__sim/forgejo/users` `{"login", "token"?, "admin"?}`
//! - `POST /__sim/forgejo/repos` `{"repo": "o/r", "default_branch"?, "private"?}`
//! - `POST /__sim/forgejo/repos/{o}/{r}/collaborators` `{"login", "permission"}`
//! - `POST /__sim/forgejo/repos/{o}/{r}/labels` `{"name"}` → `{"id"}`
//! - `POST /__sim/forgejo/repos/{o}/{r}/issues` `{"title", "body"?, "author", "labels"?,
//!   "pull_request"?}` → `{"number"}`
//! - `GET /__sim/forgejo/repos/{o}/{r}/issues/{n}` → the issue with labels and timeline
//! - `POST /__sim/forgejo/repos/{o}/{r}/issues/{n}/labels` `{"label", "actor", "added"?}`
//! - `POST /__sim/forgejo/repos/{o}/{r}/issues/{n}/comments` `{"author", "body"}` → `{"id"}`
//! - `POST /__sim/forgejo/repos/{o}/{r}/issues/{n}/events` `{"type", "actor", "body"?}` → `{"id"}`
//! - `POST /__sim/forgejo/repos/{o}/{r}/commits` `{"branch", "message"}` → `{"sha"}`
//! - `POST /__sim/forgejo/repos/{o}/{r}/statuses` `{"sha", "context", "status", "target_url"?}`
//! - `POST /__sim/forgejo/repos/{o}/{r}/action-runs` `{"sha", "workflow_id", "status"}` → `{"id"}`
//! - `PATCH /__sim/forgejo/repos/{o}/{r}/action-runs/{id}` `{"status"}`

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::json::time;
use super::model::ApiError;
use crate::infra::lock;
use crate::world::World;

type W = State<Arc<World>>;

pub fn router(world: Arc<World>) -> Router {
    let p = "/__sim/forgejo/repos/{owner}/{repo}";
    Router::new()
        .route("/__sim/forgejo/users", post(add_user))
        .route("/__sim/forgejo/repos", post(add_repo))
        .route(&format!("{p}/collaborators"), post(collaborator))
        .route(&format!("{p}/labels"), post(label))
        .route(&format!("{p}/issues"), post(add_issue))
        .route(&format!("{p}/issues/{{index}}"), get(show_issue))
        .route(&format!("{p}/issues/{{index}}/labels"), post(label_event))
        .route(&format!("{p}/issues/{{index}}/comments"), post(comment))
        .route(&format!("{p}/issues/{{index}}/events"), post(event))
        .route(&format!("{p}/commits"), post(commit))
        .route(&format!("{p}/statuses"), post(status))
        .route(&format!("{p}/action-runs"), post(action_run))
        .route(&format!("{p}/action-runs/{{id}}"), patch(update_action_run))
        .with_state(world)
}

fn answer(result: anyhow::Result<Value>) -> Response {
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => {
            let status = match e.downcast_ref::<ApiError>() {
                Some(api) => StatusCode::from_u16(api.status).unwrap_or(StatusCode::BAD_REQUEST),
                None if e.to_string().starts_with("no ") => StatusCode::NOT_FOUND,
                None => StatusCode::BAD_REQUEST,
            };
            (status, Json(json!({"error": format!("{e:#}")}))).into_response()
        }
    }
}

#[derive(Deserialize)]
struct NewUser {
    login: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    admin: bool,
}

async fn add_user(State(w): W, Json(u): Json<NewUser>) -> Response {
    super::add_user(&w, &u.login, u.token.as_deref(), u.admin);
    answer(Ok(json!({"login": u.login})))
}

#[derive(Deserialize)]
struct NewRepo {
    repo: String,
    #[serde(default)]
    default_branch: Option<String>,
    #[serde(default)]
    private: bool,
}

async fn add_repo(State(w): W, Json(r): Json<NewRepo>) -> Response {
    let branch = r.default_branch.unwrap_or_else(|| "main".to_owned());
    answer(super::add_repo(&w, &r.repo, &branch, r.private).map(|()| json!({"repo": r.repo})))
}

#[derive(Deserialize)]
struct Collaborator {
    login: String,
    permission: String,
}

async fn collaborator(
    State(w): W,
    Path((o, r)): Path<(String, String)>,
    Json(c): Json<Collaborator>,
) -> Response {
    answer(
        super::set_collaborator(&w, &format!("{o}/{r}"), &c.login, &c.permission)
            .map(|()| json!({})),
    )
}

#[derive(Deserialize)]
struct NewLabel {
    name: String,
}

async fn label(
    State(w): W,
    Path((o, r)): Path<(String, String)>,
    Json(l): Json<NewLabel>,
) -> Response {
    answer(super::add_label(&w, &format!("{o}/{r}"), &l.name).map(|id| json!({"id": id})))
}

#[derive(Deserialize)]
struct NewIssue {
    title: String,
    #[serde(default)]
    body: String,
    author: String,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    pull_request: bool,
}

async fn add_issue(
    State(w): W,
    Path((o, r)): Path<(String, String)>,
    Json(i): Json<NewIssue>,
) -> Response {
    let new = super::NewIssue {
        title: i.title,
        body: i.body,
        author: i.author,
        labels: i.labels,
        pull_request: i.pull_request,
    };
    answer(super::add_issue(&w, &format!("{o}/{r}"), new).map(|n| json!({"number": n})))
}

async fn show_issue(State(w): W, Path((o, r, index)): Path<(String, String, u64)>) -> Response {
    let full = format!("{o}/{r}");
    let st = lock(&w.forgejo);
    let found = st.repo(&full).and_then(|repo| {
        let i = repo.issues.get(&index)?;
        let name = |id: u64| repo.label_by_id(id).map(|l| l.name.clone());
        Some(json!({
            "number": i.index,
            "title": i.title,
            "body": i.body,
            "state": if i.open { "open" } else { "closed" },
            "pull_request": i.pull_request,
            "author": i.author,
            "labels": i.labels.iter().filter_map(|id| name(*id)).collect::<Vec<_>>(),
            "timeline": i.timeline.iter().map(|e| json!({
                "id": e.id, "type": e.kind, "user": e.user, "body": e.body,
                "label": e.label.and_then(name), "created_at": time(e.created_at),
            })).collect::<Vec<_>>(),
        }))
    });
    drop(st);
    answer(found.ok_or_else(|| anyhow::anyhow!("no issue {full}#{index}")))
}

#[derive(Deserialize)]
struct LabelEvent {
    label: String,
    actor: String,
    #[serde(default = "yes")]
    added: bool,
}

fn yes() -> bool {
    true
}

async fn label_event(
    State(w): W,
    Path((o, r, index)): Path<(String, String, u64)>,
    Json(e): Json<LabelEvent>,
) -> Response {
    let full = format!("{o}/{r}");
    let done = if e.added {
        super::label_issue(&w, &full, index, &e.label, &e.actor)
    } else {
        super::unlabel_issue(&w, &full, index, &e.label, &e.actor)
    };
    answer(done.map(|()| json!({})))
}

#[derive(Deserialize)]
struct NewComment {
    author: String,
    body: String,
}

async fn comment(
    State(w): W,
    Path((o, r, index)): Path<(String, String, u64)>,
    Json(c): Json<NewComment>,
) -> Response {
    answer(
        super::add_comment(&w, &format!("{o}/{r}"), index, &c.author, &c.body)
            .map(|id| json!({"id": id})),
    )
}

#[derive(Deserialize)]
struct NewEvent {
    #[serde(rename = "type")]
    kind: String,
    actor: String,
    #[serde(default)]
    body: String,
}

async fn event(
    State(w): W,
    Path((o, r, index)): Path<(String, String, u64)>,
    Json(e): Json<NewEvent>,
) -> Response {
    answer(
        super::add_event(&w, &format!("{o}/{r}"), index, &e.kind, &e.actor, &e.body)
            .map(|id| json!({"id": id})),
    )
}

#[derive(Deserialize)]
struct NewCommit {
    branch: String,
    message: String,
}

async fn commit(
    State(w): W,
    Path((o, r)): Path<(String, String)>,
    Json(c): Json<NewCommit>,
) -> Response {
    answer(
        super::push_commit(&w, &format!("{o}/{r}"), &c.branch, &c.message)
            .map(|sha| json!({"sha": sha})),
    )
}

#[derive(Deserialize)]
struct NewStatus {
    sha: String,
    context: String,
    status: String,
    #[serde(default)]
    target_url: String,
}

async fn status(
    State(w): W,
    Path((o, r)): Path<(String, String)>,
    Json(s): Json<NewStatus>,
) -> Response {
    answer(
        super::add_status(
            &w,
            &format!("{o}/{r}"),
            &s.sha,
            &s.context,
            &s.status,
            &s.target_url,
        )
        .map(|id| json!({"id": id})),
    )
}

#[derive(Deserialize)]
struct NewRun {
    sha: String,
    workflow_id: String,
    status: String,
}

async fn action_run(
    State(w): W,
    Path((o, r)): Path<(String, String)>,
    Json(n): Json<NewRun>,
) -> Response {
    answer(
        super::add_action_run(&w, &format!("{o}/{r}"), &n.sha, &n.workflow_id, &n.status)
            .map(|id| json!({"id": id})),
    )
}

#[derive(Deserialize)]
struct RunUpdate {
    status: String,
}

async fn update_action_run(
    State(w): W,
    Path((o, r, id)): Path<(String, String, u64)>,
    Json(u): Json<RunUpdate>,
) -> Response {
    answer(super::set_action_run(&w, &format!("{o}/{r}"), id, &u.status).map(|()| json!({})))
}
