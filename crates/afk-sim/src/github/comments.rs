//! The simulated GitHub's issue comments and the collaborator-permission endpoint.

#![allow(
    clippy::result_large_err,
    reason = "handlers return early with the finished error response"
)]

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::api::{Q, W, caller_actor, since, visible};
use super::model::{Actor, Role};
use super::render;
use super::wire::{
    Caller, invalid_request, json_response, message, not_found, paginate, parse_body,
    validation_message, with_link,
};
use crate::infra::lock;

pub async fn list_comments(
    State(w): W,
    Extension(c): Extension<Caller>,
    Path((o, n, num)): Path<(String, String, String)>,
    Query(q): Q,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let st = lock(&w.github);
    let r = match visible(&st, &o, &n, &c.0) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let Some(number) = num.parse::<u64>().ok().filter(|n| r.issues.contains_key(n)) else {
        return not_found();
    };
    let since = match since(&q, "IssueComment") {
        Ok(s) => s,
        Err(e) => return e,
    };
    let items = r
        .comments
        .iter()
        .filter(|cm| cm.issue == number && since.is_none_or(|s| cm.updated_at >= s))
        .map(|cm| render::comment(r, cm))
        .collect();
    let (page, link) = paginate(items, &q, &uri, &headers);
    with_link(&Value::Array(page), link)
}

/// GitHub's limit on a comment body, in characters.
const BODY_MAX_CHARS: usize = 65_536;

fn comment_body(bytes: &[u8]) -> Result<String, Response> {
    match parse_body(bytes)? {
        Value::Object(o) => match o.get("body") {
            Some(Value::String(b)) if b.chars().count() > BODY_MAX_CHARS => {
                Err(validation_message(
                    "IssueComment",
                    "body",
                    "body is too long (maximum is 65536 characters)",
                ))
            }
            Some(Value::String(b)) => Ok(b.clone()),
            None => Err(invalid_request("\"body\" wasn't supplied.")),
            Some(_) => Err(invalid_request(
                "For 'properties/body', it is not a string.",
            )),
        },
        _ => Err(message(StatusCode::BAD_REQUEST, "Problems parsing JSON")),
    }
}

pub async fn create_comment(
    State(w): W,
    Extension(c): Extension<Caller>,
    Path((o, n, num)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let now = w.sim.now();
    let text = match comment_body(&body) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let mut st = lock(&w.github);
    let full = format!("{o}/{n}");
    let number = match visible(&st, &o, &n, &c.0) {
        Err(e) => return e,
        Ok(r) => match num.parse::<u64>().ok().filter(|n| r.issues.contains_key(n)) {
            None => return not_found(),
            Some(num) => num,
        },
    };
    let Ok(id) = st.add_comment(&full, number, caller_actor(&c.0), &text, now) else {
        return not_found();
    };
    let Some((r, cm)) = st
        .repo(&full)
        .and_then(|r| r.comments.iter().find(|cm| cm.id == id).map(|cm| (r, cm)))
    else {
        return not_found();
    };
    let v = render::comment(r, cm);
    let mut resp = json_response(StatusCode::CREATED, &v);
    if let Some(loc) = v["url"]
        .as_str()
        .and_then(|u| HeaderValue::try_from(u).ok())
    {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp
}

/// `PATCH /repos/{o}/{r}/issues/comments/{id}` (POST is accepted too, and counted).
pub async fn edit_comment(
    State(w): W,
    Extension(c): Extension<Caller>,
    method: Method,
    Path((o, n, id)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let now = w.sim.now();
    let text = match comment_body(&body) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let mut st = lock(&w.github);
    if method == Method::POST {
        st.comment_edits_via_post += 1;
    }
    let may_push = match visible(&st, &o, &n, &c.0) {
        Err(e) => return e,
        Ok(r) => r.role_of(&c.0).is_some_and(Role::can_push),
    };
    let Ok(r) = st.repo_mut(&format!("{o}/{n}")) else {
        return not_found();
    };
    let Some(cm) = id
        .parse::<u64>()
        .ok()
        .and_then(|id| r.comments.iter_mut().find(|cm| cm.id == id))
    else {
        return not_found();
    };
    if !may_push && !cm.user.login.eq_ignore_ascii_case(&c.0) {
        return message(
            StatusCode::FORBIDDEN,
            "Must have push access to edit this comment.",
        );
    }
    cm.body = text;
    cm.updated_at = now;
    let (issue, cm) = (cm.issue, cm.clone());
    if let Some(i) = r.issues.get_mut(&issue) {
        i.updated_at = now;
    }
    json_response(StatusCode::OK, &render::comment(r, &cm))
}

pub async fn permission(
    State(w): W,
    Extension(c): Extension<Caller>,
    Path((o, n, user)): Path<(String, String, String)>,
) -> Response {
    let st = lock(&w.github);
    let r = match visible(&st, &o, &n, &c.0) {
        Ok(r) => r,
        Err(e) => return e,
    };
    if !r.role_of(&c.0).is_some_and(Role::can_push) {
        return message(
            StatusCode::FORBIDDEN,
            "Must have push access to view collaborator permission.",
        );
    }
    if !st.users.contains(&user.to_ascii_lowercase()) {
        return not_found();
    }
    let (permission, role_name) = match r.role_of(&user) {
        Some(role) => (role.legacy(), role.name()),
        None if r.private => ("none", "none"),
        None => ("read", "read"),
    };
    json_response(
        StatusCode::OK,
        &json!({"permission": permission, "role_name": role_name, "user": render::user(&Actor::user(&user))}),
    )
}
