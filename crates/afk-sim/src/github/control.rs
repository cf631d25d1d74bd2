//! `/__sim/github/*`: seeding and steering the simulated GitHub from outside the process
//! (tokens, GitHub Apps and their installations, repos, issues, labels with actors,
//! collaborators, commits, CI results, rate limits).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::model::{Actor, Role};
use super::render;
use crate::infra::lock;
use crate::world::World;

type W = State<Arc<World>>;

fn answer(r: anyhow::Result<Value>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e:#}")).into_response(),
    }
}

fn actor(login: &str, bot: bool, app: Option<String>) -> Actor {
    Actor {
        login: login.to_owned(),
        bot,
        app,
    }
}

#[derive(Deserialize)]
struct TokenReq {
    token: String,
    login: String,
}

/// A GitHub App to register, with its key (the test-only fixture key unless given) and one
/// installation on `repos`.
#[derive(Deserialize)]
struct AppReq {
    app_id: u64,
    slug: String,
    installation_id: u64,
    #[serde(default)]
    repos: Vec<String>,
    #[serde(default)]
    public_key_pem: Option<String>,
}

#[derive(Deserialize)]
struct AppClockReq {
    skew_secs: i64,
}

#[derive(Deserialize)]
struct RepoReq {
    repo: String,
    #[serde(default = "main")]
    default_branch: String,
    #[serde(default)]
    private: bool,
}

fn main() -> String {
    "main".into()
}

#[derive(Deserialize)]
struct IssueReq {
    repo: String,
    title: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default = "octocat")]
    author: String,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    pull_request: bool,
}

fn octocat() -> String {
    "octocat".into()
}

#[derive(Deserialize)]
struct LabelReq {
    repo: String,
    number: u64,
    label: String,
    actor: String,
    #[serde(default)]
    bot: bool,
    #[serde(default)]
    app: Option<String>,
    /// Remove instead of add.
    #[serde(default)]
    remove: bool,
}

#[derive(Deserialize)]
struct EventReq {
    repo: String,
    number: u64,
    event: String,
    actor: String,
}

#[derive(Deserialize)]
struct CollaboratorReq {
    repo: String,
    login: String,
    role: String,
}

#[derive(Deserialize)]
struct CommitReq {
    repo: String,
    branch: String,
    message: String,
}

#[derive(Deserialize)]
struct CommentReq {
    repo: String,
    number: u64,
    author: String,
    body: String,
}

#[derive(Deserialize)]
struct BodyReq {
    repo: String,
    number: u64,
    body: String,
}

#[derive(Deserialize)]
struct CheckRunReq {
    repo: String,
    sha: String,
    name: String,
    status: String,
    #[serde(default)]
    conclusion: Option<String>,
}

#[derive(Deserialize)]
struct StatusReq {
    repo: String,
    sha: String,
    context: String,
    state: String,
    #[serde(default)]
    target_url: Option<String>,
}

#[derive(Deserialize)]
struct WorkflowRunReq {
    repo: String,
    sha: String,
    #[serde(default = "main")]
    branch: String,
    name: String,
    status: String,
    #[serde(default)]
    conclusion: Option<String>,
}

#[derive(Deserialize)]
struct RateReq {
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    remaining: Option<u64>,
}

#[derive(Deserialize)]
struct ExhaustReq {
    #[serde(default = "hour")]
    reset_in_secs: i64,
}

fn hour() -> i64 {
    3600
}

#[derive(Deserialize)]
struct ThrottleReq {
    requests: u64,
    retry_after: u64,
}

/// How the simulated server departs from github.com; absent fields stay as they are.
#[derive(Deserialize)]
struct ServerReq {
    /// `/events` newest first (GitHub does not document their order).
    #[serde(default)]
    events_newest_first: Option<bool>,
    /// A GitHub Enterprise Server whose GraphQL schema has no `Issue.blockedBy`.
    #[serde(default)]
    graphql_without_blocked_by: Option<bool>,
}

/// The control routes (merged into the control port's router).
pub fn routes(world: Arc<World>) -> Router {
    Router::new()
        .route(
            "/__sim/github/apps",
            post(|State(w): W, Json(r): Json<AppReq>| async move {
                let mut st = lock(&w.github);
                let key = r.public_key_pem.as_deref().unwrap_or(super::apps::TEST_APP_PUBLIC_KEY);
                let login = st.install_app(r.app_id, &r.slug, key, r.installation_id, &r.repos);
                answer(login.map(|l| json!({"bot_login": l})))
            }),
        )
        .route(
            "/__sim/github/apps/clock",
            post(|State(w): W, Json(r): Json<AppClockReq>| async move {
                lock(&w.github).apps.clock_skew_secs = r.skew_secs;
                answer(Ok(json!({})))
            }),
        )
        .route(
            "/__sim/github/tokens",
            post(|State(w): W, Json(r): Json<TokenReq>| async move {
                lock(&w.github).add_token(&r.token, &r.login);
                answer(Ok(json!({})))
            }),
        )
        .route(
            "/__sim/github/repos",
            post(|State(w): W, Json(r): Json<RepoReq>| async move {
                answer(lock(&w.github).add_repo(&r.repo, &r.default_branch, r.private).map(|()| json!({})))
            }),
        )
        .route(
            "/__sim/github/issues",
            post(|State(w): W, Json(r): Json<IssueReq>| async move {
                let now = w.sim.now();
                let mut st = lock(&w.github);
                answer((|| {
                    let n = st.add_issue(&r.repo, &r.title, r.body.as_deref(), &r.author, r.pull_request, now)?;
                    for l in &r.labels {
                        st.label_issue(&r.repo, n, l, Actor::user(&r.author), now)?;
                    }
                    Ok(json!({"number": n}))
                })())
            }),
        )
        .route(
            "/__sim/github/issues/{owner}/{name}/{number}",
            get(|State(w): W, Path((o, n, num)): Path<(String, String, u64)>| async move {
                let st = lock(&w.github);
                match st.repo(&format!("{o}/{n}")).and_then(|r| r.issues.get(&num).map(|i| render::issue(r, i))) {
                    Some(v) => Json(v).into_response(),
                    None => (StatusCode::NOT_FOUND, "no such issue").into_response(),
                }
            }),
        )
        .route(
            "/__sim/github/label",
            post(|State(w): W, Json(r): Json<LabelReq>| async move {
                let now = w.sim.now();
                let a = actor(&r.actor, r.bot, r.app);
                let mut st = lock(&w.github);
                let done = if r.remove {
                    st.unlabel_issue(&r.repo, r.number, &r.label, a, now)
                } else {
                    st.label_issue(&r.repo, r.number, &r.label, a, now)
                };
                answer(done.map(|changed| json!({"changed": changed})))
            }),
        )
        .route(
            "/__sim/github/event",
            post(|State(w): W, Json(r): Json<EventReq>| async move {
                let now = w.sim.now();
                let res = lock(&w.github).add_event(&r.repo, r.number, &r.event, Actor::user(&r.actor), None, now);
                answer(res.map(|()| json!({})))
            }),
        )
        .route(
            "/__sim/github/collaborator",
            post(|State(w): W, Json(r): Json<CollaboratorReq>| async move {
                answer((|| {
                    let role = Role::parse(&r.role)
                        .ok_or_else(|| anyhow::anyhow!("role {:?} is not admin, maintain, write, triage or read", r.role))?;
                    lock(&w.github).set_collaborator(&r.repo, &r.login, role)?;
                    Ok(json!({}))
                })())
            }),
        )
        .route(
            "/__sim/github/commit",
            post(|State(w): W, Json(r): Json<CommitReq>| async move {
                answer(super::state::push_commit(&w, &r.repo, &r.branch, &r.message).map(|sha| json!({"sha": sha})))
            }),
        )
        .route(
            "/__sim/github/comment",
            post(|State(w): W, Json(r): Json<CommentReq>| async move {
                let now = w.sim.now();
                let res = lock(&w.github).add_comment(&r.repo, r.number, Actor::user(&r.author), &r.body, now);
                answer(res.map(|id| json!({"id": id})))
            }),
        )
        .route(
            "/__sim/github/edit-body",
            post(|State(w): W, Json(r): Json<BodyReq>| async move {
                let now = w.sim.now();
                answer(lock(&w.github).edit_body(&r.repo, r.number, &r.body, now).map(|()| json!({})))
            }),
        )
        .route(
            "/__sim/github/check-run",
            post(|State(w): W, Json(r): Json<CheckRunReq>| async move {
                let now = w.sim.now();
                let res = lock(&w.github).add_check_run(&r.repo, &r.sha, &r.name, &r.status, r.conclusion.as_deref(), now);
                answer(res.map(|id| json!({"id": id})))
            }),
        )
        .route(
            "/__sim/github/status",
            post(|State(w): W, Json(r): Json<StatusReq>| async move {
                let now = w.sim.now();
                let res = lock(&w.github).add_status(&r.repo, &r.sha, &r.context, &r.state, r.target_url.as_deref(), now);
                answer(res.map(|id| json!({"id": id})))
            }),
        )
        .route(
            "/__sim/github/workflow-run",
            post(|State(w): W, Json(r): Json<WorkflowRunReq>| async move {
                let now = w.sim.now();
                let res = lock(&w.github).add_workflow_run(
                    &r.repo,
                    &r.sha,
                    &r.branch,
                    &r.name,
                    &r.status,
                    r.conclusion.as_deref(),
                    now,
                );
                answer(res.map(|id| json!({"id": id})))
            }),
        )
        .route(
            "/__sim/github/rate-limit",
            get(|State(w): W| async move {
                let st = lock(&w.github);
                Json(json!({"limit": st.rate.limit, "remaining": st.rate.remaining, "reset": st.rate.reset}))
            })
            .post(|State(w): W, Json(r): Json<RateReq>| async move {
                let now = w.sim.now();
                let mut st = lock(&w.github);
                st.rate.refresh(now);
                if let Some(l) = r.limit {
                    st.rate.limit = l;
                }
                st.rate.remaining = r.remaining.unwrap_or(st.rate.limit).min(st.rate.limit);
                Json(json!({"limit": st.rate.limit, "remaining": st.rate.remaining, "reset": st.rate.reset}))
            }),
        )
        .route(
            "/__sim/github/rate-limit/exhaust",
            post(|State(w): W, Json(r): Json<ExhaustReq>| async move {
                let now = w.sim.now();
                let mut st = lock(&w.github);
                st.exhaust_rate_limit(now, r.reset_in_secs);
                Json(json!({"reset": st.rate.reset}))
            }),
        )
        .route(
            "/__sim/github/server",
            post(|State(w): W, Json(r): Json<ServerReq>| async move {
                let mut st = lock(&w.github);
                if let Some(v) = r.events_newest_first {
                    st.events_newest_first = v;
                }
                if let Some(v) = r.graphql_without_blocked_by {
                    st.graphql_without_blocked_by = v;
                }
                Json(json!({
                    "events_newest_first": st.events_newest_first,
                    "graphql_without_blocked_by": st.graphql_without_blocked_by,
                }))
            }),
        )
        .route(
            "/__sim/github/throttle",
            post(|State(w): W, Json(r): Json<ThrottleReq>| async move {
                lock(&w.github).throttle(r.requests, r.retry_after);
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(world)
}
