//! Simulator of GitHub's REST and GraphQL APIs as afk uses them (see the shared remotes facts,
//! §A): strict about authentication, request shapes and validation, stateful (issues, label
//! events with actors, comments, commits, CI results), with a primary rate-limit budget,
//! secondary-limit throttling, ETags and `Link` pagination; GitHub Apps (JWT → installation
//! token) beside personal tokens.

mod api;
pub mod apps;
mod ci;
mod comments;
mod control;
mod graphql;
mod model;
mod render;
mod request;
mod state;
mod wire;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::world::World;

pub use model::{
    Actor, CheckRun, Comment, Commit, CommitStatus, Event, Issue, RateBudget, Repo, Role,
    WorkflowRun,
};
pub use state::{State, closing_references, push_commit, rate_used};

/// The remote's API as afk sees it.
pub fn router(world: Arc<World>) -> Router {
    const REPO: &str = "/repos/{owner}/{repo}";
    let r = |p: &str| format!("{REPO}{p}");
    Router::new()
        .route("/user", get(api::authenticated_user))
        .route("/rate_limit", get(api::rate_limit))
        .route(REPO, get(api::get_repo))
        .route(&r("/labels"), get(api::repo_labels))
        .route(&r("/issues"), get(api::list_issues))
        .route(
            &r("/issues/{number}"),
            get(api::get_issue).patch(api::update_issue),
        )
        .route(&r("/issues/{number}/events"), get(api::issue_events))
        .route(&r("/issues/{number}/timeline"), get(api::issue_events))
        .route(&r("/issues/{number}/labels"), post(api::add_labels))
        .route(
            &r("/issues/{number}/labels/{name}"),
            axum::routing::delete(api::remove_label),
        )
        .route(
            &r("/issues/{number}/comments"),
            get(comments::list_comments).post(comments::create_comment),
        )
        .route(
            &r("/issues/comments/{id}"),
            axum::routing::patch(comments::edit_comment).post(comments::edit_comment),
        )
        .route(
            &r("/collaborators/{user}/permission"),
            get(comments::permission),
        )
        .route(&r("/commits"), get(ci::list_commits))
        .route(&r("/commits/{reference}/check-runs"), get(ci::check_runs))
        .route(&r("/commits/{reference}/status"), get(ci::combined_status))
        .route(&r("/actions/runs"), get(ci::workflow_runs))
        .route("/graphql", post(graphql::graphql))
        .route(
            "/app/installations/{installation_id}/access_tokens",
            post(apps::create_installation_token),
        )
        .fallback(api::fallback)
        .layer(axum::middleware::from_fn_with_state(
            world.clone(),
            wire::gate,
        ))
        .with_state(world)
}

/// Test and scenario control endpoints under `/__sim/github/`.
pub fn control(world: Arc<World>) -> Router {
    control::routes(world)
}
