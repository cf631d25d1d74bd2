//! The simulated GitHub REST endpoints for repos, issues, events and labels, strict where
//! GitHub is strict (comments and CI live next door).

#![allow(
    clippy::result_large_err,
    reason = "handlers return early with the finished error response"
)]

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::model;
use super::render;
use super::request::{Answer, Ctx};
use super::wire::{invalid_request, json_response, message, not_found, parse_body, validation};

type RepoPath = Path<(String, String)>;
type IssuePath = Path<(String, String, String)>;

/// `GET /user`: the account the token authenticates as.
pub async fn authenticated_user(cx: Ctx) -> Response {
    cx.run(|_, call| Ok(json_response(StatusCode::OK, &render::user(&call.actor()))))
}

/// `GET /rate_limit` (GitHub REST docs, "Get rate limit status for the authenticated user"):
/// every resource's budget under `resources`, plus the deprecated `rate` (a copy of `core`).
/// "Accessing this endpoint does not count against your REST API rate limit": the gate neither
/// charges nor refuses it. REST (`core`) and GraphQL (`graphql`) have their own budgets.
pub async fn rate_limit(cx: Ctx) -> Response {
    cx.run(|st, call| {
        st.rate.refresh(call.now);
        st.graphql_rate.refresh(call.now);
        let of = |r: &model::RateBudget| {
            json!({
                "limit": r.limit,
                "used": r.limit - r.remaining.min(r.limit),
                "remaining": r.remaining,
                "reset": r.reset,
            })
        };
        let core = of(&st.rate);
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "resources": {"core": core.clone(), "graphql": of(&st.graphql_rate)},
                "rate": core,
            }),
        ))
    })
}

/// `GET /repos/{owner}/{repo}/labels`: the repo's labels, paginated. GitHub creates a label
/// in the repo when it is first added to an issue and keeps it after it is removed, so the
/// repo's labels are every label any of its issues carries or ever carried.
pub async fn repo_labels(cx: Ctx, Path((o, n)): RepoPath) -> Response {
    cx.run(|st, call| {
        let r = call.repo(st, &o, &n)?;
        let mut names: Vec<String> = Vec::new();
        for i in r.issues.values() {
            let ever = i
                .labels
                .iter()
                .cloned()
                .chain(i.events.iter().filter_map(|e| e.label.clone()));
            for l in ever {
                if !names.iter().any(|x| x.eq_ignore_ascii_case(&l)) {
                    names.push(l);
                }
            }
        }
        names.sort_by_key(|l| l.to_ascii_lowercase());
        Ok(call.list(names.iter().map(|l| render::label(l)).collect()))
    })
}

pub async fn get_repo(cx: Ctx, Path((o, n)): RepoPath) -> Response {
    cx.run(|st, call| {
        let r = call.repo(st, &o, &n)?;
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "id": r.id,
                "name": r.name,
                "full_name": r.full_name(),
                "owner": {"login": r.owner},
                "private": r.private,
                "default_branch": r.default_branch,
                "html_url": format!("https://github.com/{}", r.full_name()),
            }),
        ))
    })
}

pub async fn list_issues(cx: Ctx, Path((o, n)): RepoPath) -> Response {
    cx.run(|st, call| {
        let r = call.repo(st, &o, &n)?;
        let state = call.param("state").unwrap_or("open");
        if !["open", "closed", "all"].contains(&state) {
            return Err(validation("Issue", "state", "invalid"));
        }
        let since = call.since("Issue")?;
        let wanted: Vec<String> = call
            .param("labels")
            .map(|l| {
                l.split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let mut issues: Vec<&model::Issue> = r
            .issues
            .values()
            .filter(|i| state == "all" || i.open == (state == "open"))
            .filter(|i| {
                wanted
                    .iter()
                    .all(|l| i.labels.iter().any(|x| x.eq_ignore_ascii_case(l)))
            })
            .filter(|i| since.is_none_or(|s| i.updated_at >= s))
            .collect();
        match call.param("sort").unwrap_or("created") {
            "created" => issues.sort_by_key(|i| (i.created_at, i.number)),
            "updated" => issues.sort_by_key(|i| (i.updated_at, i.number)),
            "comments" => {
                issues.sort_by_key(|i| r.comments.iter().filter(|c| c.issue == i.number).count())
            }
            _ => return Err(validation("Issue", "sort", "invalid")),
        }
        match call.param("direction").unwrap_or("desc") {
            "desc" => issues.reverse(),
            "asc" => {}
            _ => return Err(validation("Issue", "direction", "invalid")),
        }
        Ok(call.list(issues.iter().map(|i| render::issue(r, i)).collect()))
    })
}

pub async fn get_issue(cx: Ctx, Path((o, n, num)): IssuePath) -> Response {
    cx.run(|st, call| {
        let (r, i) = call.issue(st, &o, &n, &num)?;
        Ok(json_response(StatusCode::OK, &render::issue(r, i)))
    })
}

/// The fields of an issue `PATCH`, validated as GitHub does (422 naming the field), after
/// the access checks.
struct IssuePatch {
    state: Option<String>,
    state_reason: Option<String>,
    title: Option<String>,
    body: Option<String>,
}

impl IssuePatch {
    fn parse(v: &serde_json::Map<String, Value>) -> Result<IssuePatch, Response> {
        let state = match v.get("state") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s == "open" || s == "closed" => Some(s.clone()),
            Some(_) => return Err(validation("Issue", "state", "invalid")),
        };
        let state_reason = match v.get("state_reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(s))
                if ["completed", "not_planned", "duplicate", "reopened"].contains(&s.as_str()) =>
            {
                Some(s.clone())
            }
            Some(_) => return Err(validation("Issue", "state_reason", "invalid")),
        };
        let title = match v.get("title") {
            None => None,
            Some(Value::String(t)) if !t.trim().is_empty() => Some(t.clone()),
            Some(_) => return Err(validation("Issue", "title", "invalid")),
        };
        let body = match v.get("body") {
            None => None,
            Some(Value::String(b)) => Some(b.clone()),
            Some(Value::Null) => Some(String::new()),
            Some(_) => return Err(validation("Issue", "body", "invalid")),
        };
        Ok(IssuePatch {
            state,
            state_reason,
            title,
            body,
        })
    }
}

/// `PATCH /repos/{o}/{r}/issues/{n}`: title, body, state and state_reason.
pub async fn update_issue(cx: Ctx, Path((o, n, num)): IssuePath, body: Bytes) -> Response {
    cx.run(|st, call| {
        let Value::Object(fields) = parse_body(&body)? else {
            return Err(message(StatusCode::BAD_REQUEST, "Problems parsing JSON"));
        };
        let full = format!("{o}/{n}");
        let (number, open) = {
            let (r, i) = call.issue(st, &o, &n, &num)?;
            // The issue's author may edit it without triage access.
            if !super::request::can_triage(r, call.caller)
                && !i.user.login.eq_ignore_ascii_case(call.caller)
            {
                return Err(message(
                    StatusCode::FORBIDDEN,
                    "Must have triage access to edit this issue.",
                ));
            }
            (i.number, i.open)
        };
        let patch = IssuePatch::parse(&fields)?;
        let (now, actor) = (call.now, call.actor());
        let applied = (|| -> anyhow::Result<()> {
            if let Some(t) = patch.title {
                st.edit_title(&full, number, &t, actor.clone(), now)?;
            }
            if let Some(b) = patch.body {
                st.edit_body(&full, number, &b, now)?;
            }
            match patch.state.as_deref() {
                Some("closed") if open => {
                    let reason = patch
                        .state_reason
                        .as_deref()
                        .filter(|r| *r != "reopened")
                        .unwrap_or("completed");
                    st.set_open(&full, number, Some(reason), actor, None, now)?;
                }
                Some("open") if !open => st.set_open(&full, number, None, actor, None, now)?,
                _ => {}
            }
            Ok(())
        })();
        applied.map_err(|_| not_found())?;
        let (r, i) = call.issue(st, &o, &n, &num)?;
        Ok(json_response(StatusCode::OK, &render::issue(r, i)))
    })
}

pub async fn issue_events(cx: Ctx, Path((o, n, num)): IssuePath) -> Response {
    cx.run(|st, call| {
        let timeline = call.uri.path().ends_with("/timeline");
        let (r, i) = call.issue(st, &o, &n, &num)?;
        let mut items: Vec<(chrono::DateTime<chrono::Utc>, u64, Value)> = i
            .events
            .iter()
            .map(|e| (e.created_at, e.id, render::event(r, e)))
            .collect();
        if timeline {
            let excluded: Vec<&str> = call
                .param("exclude")
                .map(|e| e.split(',').collect())
                .unwrap_or_default();
            items.retain(|(_, _, v)| !excluded.contains(&v["event"].as_str().unwrap_or("")));
            if !excluded.contains(&"commented") {
                items.extend(
                    r.comments
                        .iter()
                        .filter(|cm| cm.issue == i.number)
                        .map(|cm| (cm.created_at, cm.id, render::commented(r, cm))),
                );
            }
            items.sort_by_key(|(t, id, _)| (*t, *id));
        } else if st.events_newest_first {
            items.reverse();
        }
        Ok(call.list(items.into_iter().map(|(_, _, v)| v).collect()))
    })
}

/// Label names from `{"labels": [...]}` or a bare array; items are strings or `{name}`.
fn label_names(v: &Value) -> Result<Vec<String>, Response> {
    let list = match v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("labels") {
            Some(Value::Array(a)) => a,
            _ => return Err(invalid_request("\"labels\" wasn't supplied.")),
        },
        _ => return Err(message(StatusCode::BAD_REQUEST, "Problems parsing JSON")),
    };
    if list.is_empty() {
        return Err(invalid_request("For 'items', [] has fewer items than 1."));
    }
    list.iter()
        .map(|item| match item {
            Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
            Value::Object(o) => match o.get("name") {
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
                _ => Err(validation("Label", "name", "missing_field")),
            },
            _ => Err(invalid_request(
                "label items must be strings or objects with a name.",
            )),
        })
        .collect()
}

fn labels_of(st: &super::state::State, full: &str, number: u64) -> Answer {
    let i = st
        .repo(full)
        .and_then(|r| r.issues.get(&number))
        .ok_or_else(not_found)?;
    Ok(json_response(
        StatusCode::OK,
        &Value::Array(i.labels.iter().map(|l| render::label(l)).collect()),
    ))
}

pub async fn add_labels(cx: Ctx, Path((o, n, num)): IssuePath, body: Bytes) -> Response {
    cx.run(|st, call| {
        let names = label_names(&parse_body(&body)?)?;
        let number = call.triaged_issue(st, &o, &n, &num, "label")?;
        let full = format!("{o}/{n}");
        for name in names {
            st.label_issue(&full, number, &name, call.actor(), call.now)
                .map_err(|_| not_found())?;
        }
        labels_of(st, &full, number)
    })
}

pub async fn remove_label(
    cx: Ctx,
    Path((o, n, num, label)): Path<(String, String, String, String)>,
) -> Response {
    cx.run(|st, call| {
        let number = call.triaged_issue(st, &o, &n, &num, "label")?;
        let full = format!("{o}/{n}");
        match st.unlabel_issue(&full, number, &label, call.actor(), call.now) {
            Ok(true) => labels_of(st, &full, number),
            _ => Err(message(StatusCode::NOT_FOUND, "Label does not exist")),
        }
    })
}

pub async fn fallback() -> Response {
    not_found()
}
