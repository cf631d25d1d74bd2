//! The simulated GitHub's issue comments and the collaborator-permission endpoint.

#![allow(
    clippy::result_large_err,
    reason = "handlers return early with the finished error response"
)]

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::model::{Actor, Role};
use super::render;
use super::request::Ctx;
use super::wire::{
    invalid_request, json_response, message, not_found, parse_body, validation_message,
};

type IssuePath = Path<(String, String, String)>;

pub async fn list_comments(cx: Ctx, Path((o, n, num)): IssuePath) -> Response {
    cx.run(|st, call| {
        let (r, i) = call.issue(st, &o, &n, &num)?;
        let since = call.since("IssueComment")?;
        let items = r
            .comments
            .iter()
            .filter(|cm| cm.issue == i.number && since.is_none_or(|s| cm.updated_at >= s))
            .map(|cm| render::comment(r, cm))
            .collect();
        Ok(call.list(items))
    })
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

pub async fn create_comment(cx: Ctx, Path((o, n, num)): IssuePath, body: Bytes) -> Response {
    cx.run(|st, call| {
        let text = comment_body(&body)?;
        let number = call.issue(st, &o, &n, &num)?.1.number;
        let full = format!("{o}/{n}");
        let id = st
            .add_comment(&full, number, call.actor(), &text, call.now)
            .map_err(|_| not_found())?;
        let (r, cm) = st
            .repo(&full)
            .and_then(|r| r.comments.iter().find(|cm| cm.id == id).map(|cm| (r, cm)))
            .ok_or_else(not_found)?;
        let v = render::comment(r, cm);
        let mut resp = json_response(StatusCode::CREATED, &v);
        if let Some(loc) = v["url"]
            .as_str()
            .and_then(|u| HeaderValue::try_from(u).ok())
        {
            resp.headers_mut().insert(header::LOCATION, loc);
        }
        Ok(resp)
    })
}

/// `PATCH /repos/{o}/{r}/issues/comments/{id}` (POST is accepted too, and counted).
pub async fn edit_comment(cx: Ctx, Path((o, n, id)): IssuePath, body: Bytes) -> Response {
    cx.run(|st, call| {
        let text = comment_body(&body)?;
        if *call.method == Method::POST {
            st.comment_edits_via_post += 1;
        }
        let may_push = call
            .repo(st, &o, &n)?
            .role_of(call.caller)
            .is_some_and(Role::can_push);
        let r = st.repo_mut(&format!("{o}/{n}")).map_err(|_| not_found())?;
        let cm = id
            .parse::<u64>()
            .ok()
            .and_then(|id| r.comments.iter_mut().find(|cm| cm.id == id))
            .ok_or_else(not_found)?;
        if !may_push && !cm.user.login.eq_ignore_ascii_case(call.caller) {
            return Err(message(
                StatusCode::FORBIDDEN,
                "Must have push access to edit this comment.",
            ));
        }
        cm.body = text;
        cm.updated_at = call.now;
        let (issue, cm) = (cm.issue, cm.clone());
        if let Some(i) = r.issues.get_mut(&issue) {
            i.updated_at = call.now;
        }
        Ok(json_response(StatusCode::OK, &render::comment(r, &cm)))
    })
}

pub async fn permission(cx: Ctx, Path((o, n, user)): IssuePath) -> Response {
    cx.run(|st, call| {
        let r = call.repo(st, &o, &n)?;
        if !r.role_of(call.caller).is_some_and(Role::can_push) {
            return Err(message(
                StatusCode::FORBIDDEN,
                "Must have push access to view collaborator permission.",
            ));
        }
        if !st.users.contains(&user.to_ascii_lowercase()) {
            return Err(not_found());
        }
        let (permission, role_name) = match r.role_of(&user) {
            Some(role) => (role.legacy(), role.name()),
            None if r.private => ("none", "none"),
            None => ("read", "read"),
        };
        Ok(json_response(
            StatusCode::OK,
            &json!({"permission": permission, "role_name": role_name, "user": render::user(&Actor::user(&user))}),
        ))
    })
}
