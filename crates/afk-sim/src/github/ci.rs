//! The simulated GitHub's commits and CI results: check runs, combined status, Actions runs.

#![allow(
    clippy::result_large_err,
    reason = "handlers return early with the finished error response"
)]

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::api::{Q, W, since, visible};
use super::model::{self, Repo};
use super::render;
use super::wire::{Caller, message, paginate, validation, with_link};
use crate::infra::lock;

pub async fn list_commits(
    State(w): W,
    Extension(c): Extension<Caller>,
    Path((o, n)): Path<(String, String)>,
    Query(q): Q,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let st = lock(&w.github);
    let r = match visible(&st, &o, &n, &c.0) {
        Ok(r) => r,
        Err(e) => return e,
    };
    if r.branches.values().all(Vec::is_empty) {
        return message(StatusCode::CONFLICT, "Git Repository is empty.");
    }
    let branch = q
        .get("sha")
        .cloned()
        .unwrap_or_else(|| r.default_branch.clone());
    let Some(commits) = r.branches.get(&branch) else {
        return message(
            StatusCode::NOT_FOUND,
            &format!("No commit found for SHA: {branch}"),
        );
    };
    let (since, until) = match (
        since(&q, "Commit"),
        q.get("until").map(|u| DateTime::parse_from_rfc3339(u)),
    ) {
        (Err(e), _) => return e,
        (_, Some(Err(_))) => return validation("Commit", "until", "invalid"),
        (Ok(s), u) => (s, u.and_then(Result::ok).map(|u| u.with_timezone(&Utc))),
    };
    let items = commits
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, cm)| since.is_none_or(|s| cm.date >= s) && until.is_none_or(|u| cm.date <= u))
        .map(|(i, cm)| {
            let parent = i.checked_sub(1).map(|p| commits[p].sha.as_str());
            render::commit(r, &cm.sha, &cm.message, cm.date, parent)
        })
        .collect();
    let (page, link) = paginate(items, &q, &uri, &headers);
    with_link(&Value::Array(page), link)
}

fn known_sha(r: &Repo, sha: &str) -> bool {
    r.branches.values().flatten().any(|c| c.sha == sha)
        || r.check_runs.contains_key(sha)
        || r.statuses.contains_key(sha)
        || r.workflow_runs.iter().any(|w| w.head_sha == sha)
}

pub async fn check_runs(
    State(w): W,
    Extension(c): Extension<Caller>,
    Path((o, n, reference)): Path<(String, String, String)>,
    Query(q): Q,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let st = lock(&w.github);
    let r = match visible(&st, &o, &n, &c.0) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let sha = r.resolve_ref(&reference);
    if !known_sha(r, &sha) {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("No commit found for SHA: {reference}"),
        );
    }
    let latest = match q.get("filter").map(String::as_str).unwrap_or("latest") {
        "latest" => true,
        "all" => false,
        _ => return validation("CheckRun", "filter", "invalid"),
    };
    let mut runs: Vec<&model::CheckRun> = r
        .check_runs
        .get(&sha)
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    runs.sort_by_key(|c| std::cmp::Reverse(c.id));
    if latest {
        let mut seen = Vec::new();
        runs.retain(|c| {
            let fresh = !seen.contains(&c.name);
            seen.push(c.name.clone());
            fresh
        });
    }
    let total = runs.len();
    let items = runs
        .iter()
        .map(|cr| render::check_run(r, &sha, cr))
        .collect();
    let (page, link) = paginate(items, &q, &uri, &headers);
    with_link(&json!({"total_count": total, "check_runs": page}), link)
}

pub async fn combined_status(
    State(w): W,
    Extension(c): Extension<Caller>,
    Path((o, n, reference)): Path<(String, String, String)>,
    Query(q): Q,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let st = lock(&w.github);
    let r = match visible(&st, &o, &n, &c.0) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let sha = r.resolve_ref(&reference);
    if !known_sha(r, &sha) {
        return message(
            StatusCode::NOT_FOUND,
            &format!("No commit found for SHA: {reference}"),
        );
    }
    let mut latest: BTreeMap<&str, &model::CommitStatus> = BTreeMap::new();
    for s in r.statuses.get(&sha).into_iter().flatten() {
        if latest
            .get(s.context.as_str())
            .is_none_or(|old| old.id < s.id)
        {
            latest.insert(&s.context, s);
        }
    }
    let states: Vec<&str> = latest.values().map(|s| s.state.as_str()).collect();
    let state = if states.iter().any(|s| *s == "error" || *s == "failure") {
        "failure"
    } else if states.is_empty() || states.contains(&"pending") {
        "pending"
    } else {
        "success"
    };
    let total = latest.len();
    let items = latest.values().map(|s| render::status(s)).collect();
    let (page, link) = paginate(items, &q, &uri, &headers);
    with_link(
        &json!({
            "state": state,
            "sha": sha,
            "total_count": total,
            "statuses": page,
            "repository": {"full_name": r.full_name()},
        }),
        link,
    )
}

pub async fn workflow_runs(
    State(w): W,
    Extension(c): Extension<Caller>,
    Path((o, n)): Path<(String, String)>,
    Query(q): Q,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let st = lock(&w.github);
    let r = match visible(&st, &o, &n, &c.0) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let mut runs: Vec<&model::WorkflowRun> = r
        .workflow_runs
        .iter()
        .filter(|wr| q.get("head_sha").is_none_or(|s| *s == wr.head_sha))
        .filter(|wr| q.get("branch").is_none_or(|b| *b == wr.head_branch))
        .filter(|wr| {
            q.get("status")
                .is_none_or(|s| *s == wr.status || wr.conclusion.as_deref() == Some(s.as_str()))
        })
        .collect();
    runs.sort_by_key(|wr| std::cmp::Reverse(wr.id));
    let total = runs.len();
    let items = runs.iter().map(|wr| render::workflow_run(r, wr)).collect();
    let (page, link) = paginate(items, &q, &uri, &headers);
    with_link(&json!({"total_count": total, "workflow_runs": page}), link)
}
