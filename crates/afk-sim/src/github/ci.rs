//! The simulated GitHub's commits and CI results: check runs, combined status, Actions runs.

#![allow(
    clippy::result_large_err,
    reason = "handlers return early with the finished error response"
)]

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::model::{self, Repo};
use super::render;
use super::request::Ctx;
use super::wire::{message, validation, with_link};

type RepoPath = Path<(String, String)>;
type RefPath = Path<(String, String, String)>;

pub async fn list_commits(cx: Ctx, Path((o, n)): RepoPath) -> Response {
    cx.run(|st, call| {
        let r = call.repo(st, &o, &n)?;
        if r.branches.values().all(Vec::is_empty) {
            return Err(message(StatusCode::CONFLICT, "Git Repository is empty."));
        }
        let branch = call
            .param("sha")
            .map_or_else(|| r.default_branch.clone(), str::to_owned);
        let Some(commits) = r.branches.get(&branch) else {
            return Err(message(
                StatusCode::NOT_FOUND,
                &format!("No commit found for SHA: {branch}"),
            ));
        };
        let since = call.since("Commit")?;
        let until = match call.param("until").map(DateTime::parse_from_rfc3339) {
            None => None,
            Some(Ok(u)) => Some(u.with_timezone(&Utc)),
            Some(Err(_)) => return Err(validation("Commit", "until", "invalid")),
        };
        let items = commits
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, cm)| {
                since.is_none_or(|s| cm.date >= s) && until.is_none_or(|u| cm.date <= u)
            })
            .map(|(i, cm)| {
                let parent = i.checked_sub(1).map(|p| commits[p].sha.as_str());
                render::commit(r, &cm.sha, &cm.message, cm.date, parent)
            })
            .collect();
        Ok(call.list(items))
    })
}

fn known_sha(r: &Repo, sha: &str) -> bool {
    r.branches.values().flatten().any(|c| c.sha == sha)
        || r.check_runs.contains_key(sha)
        || r.statuses.contains_key(sha)
        || r.workflow_runs.iter().any(|w| w.head_sha == sha)
}

pub async fn check_runs(cx: Ctx, Path((o, n, reference)): RefPath) -> Response {
    cx.run(|st, call| {
        let r = call.repo(st, &o, &n)?;
        let sha = r.resolve_ref(&reference);
        if !known_sha(r, &sha) {
            return Err(message(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("No commit found for SHA: {reference}"),
            ));
        }
        let latest = match call.param("filter").unwrap_or("latest") {
            "latest" => true,
            "all" => false,
            _ => return Err(validation("CheckRun", "filter", "invalid")),
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
        let (page, link) = call.page(
            runs.iter()
                .map(|cr| render::check_run(r, &sha, cr))
                .collect(),
        );
        Ok(with_link(
            &json!({"total_count": total, "check_runs": page}),
            link,
        ))
    })
}

pub async fn combined_status(cx: Ctx, Path((o, n, reference)): RefPath) -> Response {
    cx.run(|st, call| {
        let r = call.repo(st, &o, &n)?;
        let sha = r.resolve_ref(&reference);
        if !known_sha(r, &sha) {
            return Err(message(
                StatusCode::NOT_FOUND,
                &format!("No commit found for SHA: {reference}"),
            ));
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
        let (page, link) = call.page(latest.values().map(|s| render::status(s)).collect());
        Ok(with_link(
            &json!({
                "state": state,
                "sha": sha,
                "total_count": total,
                "statuses": page,
                "repository": {"full_name": r.full_name()},
            }),
            link,
        ))
    })
}

pub async fn workflow_runs(cx: Ctx, Path((o, n)): RepoPath) -> Response {
    cx.run(|st, call| {
        let r = call.repo(st, &o, &n)?;
        let wanted = |name: &str, value: &str| call.param(name).is_none_or(|v| v == value);
        let mut runs: Vec<&model::WorkflowRun> = r
            .workflow_runs
            .iter()
            .filter(|wr| wanted("head_sha", &wr.head_sha) && wanted("branch", &wr.head_branch))
            .filter(|wr| {
                call.param("status")
                    .is_none_or(|s| s == wr.status || wr.conclusion.as_deref() == Some(s))
            })
            .collect();
        runs.sort_by_key(|wr| std::cmp::Reverse(wr.id));
        let total = runs.len();
        let (page, link) = call.page(runs.iter().map(|wr| render::workflow_run(r, wr)).collect());
        Ok(with_link(
            &json!({"total_count": total, "workflow_runs": page}),
            link,
        ))
    })
}
