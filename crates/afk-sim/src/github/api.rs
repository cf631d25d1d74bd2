//! The simulated GitHub REST endpoints for repos, issues, events and labels, strict where
//! GitHub is strict (comments and CI live next door).

#![allow(
    clippy::result_large_err,
    reason = "handlers return early with the finished error response"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::model::{self, Actor, Repo, Role};
use super::render;
use super::wire::{
    Caller, invalid_request, json_response, message, not_found, paginate, parse_body, validation,
    with_link,
};
use crate::infra::lock;
use crate::world::World;

pub(super) type Q = Query<BTreeMap<String, String>>;
pub(super) type W = State<Arc<World>>;

/// The repo as the caller may see it: private repos are 404 to non-collaborators.
pub(super) fn visible<'a>(
    st: &'a super::state::State,
    owner: &str,
    name: &str,
    caller: &str,
) -> Result<&'a Repo, Response> {
    match st.repo(&format!("{owner}/{name}")) {
        Some(r) if !r.private || r.role_of(caller).is_some() => Ok(r),
        _ => Err(not_found()),
    }
}

pub(super) fn since(
    q: &BTreeMap<String, String>,
    resource: &str,
) -> Result<Option<DateTime<Utc>>, Response> {
    match q.get("since") {
        None => Ok(None),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| validation(resource, "since", "invalid")),
    }
}

pub(super) fn can_triage(repo: &Repo, caller: &str) -> bool {
    repo.role_of(caller).is_some_and(|r| r != Role::Read)
}

pub(super) fn caller_actor(caller: &str) -> Actor {
    Actor::user(caller)
}

/// `GET /user`: the account the token authenticates as.
pub async fn authenticated_user(Extension(c): Extension<Caller>) -> Response {
    json_response(StatusCode::OK, &render::user(&caller_actor(&c.0)))
}

/// `GET /rate_limit` (GitHub REST docs, "Get rate limit status for the authenticated user"):
/// every resource's budget under `resources`, plus the deprecated `rate` (a copy of `core`).
/// "Accessing this endpoint does not count against your REST API rate limit": the gate neither
/// charges nor refuses it. The simulator keeps one budget, reported for `core` and `graphql`.
pub async fn rate_limit(State(w): W) -> Response {
    let now = w.sim.now();
    let mut st = lock(&w.github);
    st.rate.refresh(now);
    let r = &st.rate;
    let one = json!({
        "limit": r.limit,
        "used": r.limit - r.remaining.min(r.limit),
        "remaining": r.remaining,
        "reset": r.reset,
    });
    json_response(
        StatusCode::OK,
        &json!({
            "resources": {"core": one.clone(), "graphql": one.clone()},
            "rate": one,
        }),
    )
}

/// `GET /repos/{owner}/{repo}/labels`: the repo's labels, paginated. GitHub creates a label
/// in the repo when it is first added to an issue and keeps it after it is removed, so the
/// repo's labels are every label any of its issues carries or ever carried.
pub async fn repo_labels(
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
    let (page, link) = paginate(
        names.iter().map(|l| render::label(l)).collect(),
        &q,
        &uri,
        &headers,
    );
    with_link(&Value::Array(page), link)
}

pub async fn get_repo(
    State(w): W,
    Extension(c): Extension<Caller>,
    Path((o, n)): Path<(String, String)>,
) -> Response {
    let st = lock(&w.github);
    match visible(&st, &o, &n, &c.0) {
        Err(e) => e,
        Ok(r) => json_response(
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
        ),
    }
}

pub async fn list_issues(
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
    let state = q.get("state").map(String::as_str).unwrap_or("open");
    if !["open", "closed", "all"].contains(&state) {
        return validation("Issue", "state", "invalid");
    }
    let since = match since(&q, "Issue") {
        Ok(s) => s,
        Err(e) => return e,
    };
    let wanted: Vec<String> = q
        .get("labels")
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
    match q.get("sort").map(String::as_str).unwrap_or("created") {
        "created" => issues.sort_by_key(|i| (i.created_at, i.number)),
        "updated" => issues.sort_by_key(|i| (i.updated_at, i.number)),
        "comments" => {
            issues.sort_by_key(|i| r.comments.iter().filter(|c| c.issue == i.number).count())
        }
        _ => return validation("Issue", "sort", "invalid"),
    }
    match q.get("direction").map(String::as_str).unwrap_or("desc") {
        "desc" => issues.reverse(),
        "asc" => {}
        _ => return validation("Issue", "direction", "invalid"),
    }
    let items = issues.iter().map(|i| render::issue(r, i)).collect();
    let (page, link) = paginate(items, &q, &uri, &headers);
    with_link(&Value::Array(page), link)
}

pub async fn get_issue(
    State(w): W,
    Extension(c): Extension<Caller>,
    Path((o, n, num)): Path<(String, String, String)>,
) -> Response {
    let st = lock(&w.github);
    let r = match visible(&st, &o, &n, &c.0) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match num.parse::<u64>().ok().and_then(|num| r.issues.get(&num)) {
        Some(i) => json_response(StatusCode::OK, &render::issue(r, i)),
        None => not_found(),
    }
}

/// `PATCH /repos/{o}/{r}/issues/{n}`: title, body, state and state_reason.
pub async fn update_issue(
    State(w): W,
    Extension(c): Extension<Caller>,
    Path((o, n, num)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let now = w.sim.now();
    let v = match parse_body(&body) {
        Ok(Value::Object(v)) => v,
        Ok(_) => return message(StatusCode::BAD_REQUEST, "Problems parsing JSON"),
        Err(e) => return e,
    };
    let mut st = lock(&w.github);
    let full = format!("{o}/{n}");
    let open = {
        let r = match visible(&st, &o, &n, &c.0) {
            Ok(r) => r,
            Err(e) => return e,
        };
        let Some(i) = num.parse::<u64>().ok().and_then(|num| r.issues.get(&num)) else {
            return not_found();
        };
        if !can_triage(r, &c.0) && !i.user.login.eq_ignore_ascii_case(&c.0) {
            return message(
                StatusCode::FORBIDDEN,
                "Must have triage access to edit this issue.",
            );
        }
        i.open
    };
    let number = num.parse::<u64>().unwrap_or(0);
    let state = match v.get("state") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "open" || s == "closed" => Some(s.clone()),
        Some(_) => return validation("Issue", "state", "invalid"),
    };
    let reason = match v.get("state_reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(s))
            if ["completed", "not_planned", "duplicate", "reopened"].contains(&s.as_str()) =>
        {
            Some(s.clone())
        }
        Some(_) => return validation("Issue", "state_reason", "invalid"),
    };
    let title = match v.get("title") {
        None => None,
        Some(Value::String(t)) if !t.trim().is_empty() => Some(t.clone()),
        Some(_) => return validation("Issue", "title", "invalid"),
    };
    let new_body = match v.get("body") {
        None => None,
        Some(Value::String(b)) => Some(b.clone()),
        Some(Value::Null) => Some(String::new()),
        Some(_) => return validation("Issue", "body", "invalid"),
    };
    let actor = caller_actor(&c.0);
    let applied = (|| -> anyhow::Result<()> {
        if let Some(t) = title {
            st.edit_title(&full, number, &t, actor.clone(), now)?;
        }
        if let Some(b) = new_body {
            st.edit_body(&full, number, &b, now)?;
        }
        match state.as_deref() {
            Some("closed") if open => {
                let reason = reason
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
    if applied.is_err() {
        return not_found();
    }
    match st
        .repo(&full)
        .and_then(|r| r.issues.get(&number).map(|i| render::issue(r, i)))
    {
        Some(v) => json_response(StatusCode::OK, &v),
        None => not_found(),
    }
}

pub async fn issue_events(
    State(w): W,
    Extension(c): Extension<Caller>,
    Path((o, n, num)): Path<(String, String, String)>,
    Query(q): Q,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let timeline = uri.path().ends_with("/timeline");
    let st = lock(&w.github);
    let r = match visible(&st, &o, &n, &c.0) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let Some(i) = num.parse::<u64>().ok().and_then(|num| r.issues.get(&num)) else {
        return not_found();
    };
    let mut items: Vec<(DateTime<Utc>, u64, Value)> = i
        .events
        .iter()
        .map(|e| (e.created_at, e.id, render::event(r, e)))
        .collect();
    if timeline {
        let excluded: Vec<&str> = q
            .get("exclude")
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
    let (page, link) = paginate(
        items.into_iter().map(|(_, _, v)| v).collect(),
        &q,
        &uri,
        &headers,
    );
    with_link(&Value::Array(page), link)
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

fn labels_of(st: &super::state::State, full: &str, number: u64) -> Response {
    match st.repo(full).and_then(|r| r.issues.get(&number)) {
        Some(i) => json_response(
            StatusCode::OK,
            &Value::Array(i.labels.iter().map(|l| render::label(l)).collect()),
        ),
        None => not_found(),
    }
}

pub async fn add_labels(
    State(w): W,
    Extension(c): Extension<Caller>,
    Path((o, n, num)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let now = w.sim.now();
    let names = match parse_body(&body).and_then(|v| label_names(&v)) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let mut st = lock(&w.github);
    let full = format!("{o}/{n}");
    let number = match visible(&st, &o, &n, &c.0) {
        Err(e) => return e,
        Ok(r) => match num.parse::<u64>().ok().filter(|n| r.issues.contains_key(n)) {
            None => return not_found(),
            Some(_) if !can_triage(r, &c.0) => {
                return message(
                    StatusCode::FORBIDDEN,
                    "Must have triage access to label this issue.",
                );
            }
            Some(num) => num,
        },
    };
    for name in names {
        if st
            .label_issue(&full, number, &name, caller_actor(&c.0), now)
            .is_err()
        {
            return not_found();
        }
    }
    labels_of(&st, &full, number)
}

pub async fn remove_label(
    State(w): W,
    Extension(c): Extension<Caller>,
    Path((o, n, num, label)): Path<(String, String, String, String)>,
) -> Response {
    let now = w.sim.now();
    let mut st = lock(&w.github);
    let full = format!("{o}/{n}");
    let number = match visible(&st, &o, &n, &c.0) {
        Err(e) => return e,
        Ok(r) => match num.parse::<u64>().ok().filter(|n| r.issues.contains_key(n)) {
            None => return not_found(),
            Some(_) if !can_triage(r, &c.0) => {
                return message(
                    StatusCode::FORBIDDEN,
                    "Must have triage access to label this issue.",
                );
            }
            Some(num) => num,
        },
    };
    match st.unlabel_issue(&full, number, &label, caller_actor(&c.0), now) {
        Ok(true) => labels_of(&st, &full, number),
        _ => message(StatusCode::NOT_FOUND, "Label does not exist"),
    }
}

pub async fn fallback() -> Response {
    not_found()
}
