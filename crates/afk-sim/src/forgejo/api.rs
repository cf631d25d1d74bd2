//! The simulated Forgejo REST API (`/api/v1`), strict where the real service is and a little
//! stricter where a lenient answer would hide a client bug.
//!
//! - Every route needs `Authorization: token <t>` (or `Bearer <t>`) of a known account: 401.
//! - Unknown repos and issues, and private repos the caller cannot see: 404.
//! - Pages: `page` (from 1) and `limit` (default 30, capped at 50), `X-Total-Count` and `Link`;
//!   except the issue timeline, whose `X-Total-Count` is the length of the page served and
//!   which sends no `Link` (`ListIssueCommentsAndTimeline` calls
//!   `SetTotalCountHeader(len(apiComments))` and never `SetLinkHeader`).
//! - Issue lists OR the `labels` names and silently drop names the repo does not have (so a
//!   list filtered only by unknown labels returns everything, as on Forgejo); `type` selects
//!   `issues` or `pulls`, both when absent.
//! - `PATCH` of an issue answers 201; label add takes ids or names, drops
//!   names and ids the repo does not have and still answers 200 with the issue's labels, as
//!   Forgejo's `GetLabelIDsInRepoByNames` does; removing a label the issue lacks is 404;
//!   malformed JSON or missing fields are 422. Unknown
//!   `state`/`type` values and non-numeric paging are refused with 422 (Forgejo would silently
//!   fall back to a default).
//! - The permission endpoint answers 403 unless the caller is a site admin, a repo admin (or
//!   owner) or asks about itself.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::response::Response;
use axum::routing::{delete, get};
use serde_json::{Value, json};

use super::json::{self, Urls};
use super::model::{
    Access, ApiError, ApiResult, Label, LabelRef, RUN_STATUS_VALUES, State as Forgejo,
};
use super::request::{Ctx, Paging, Reply, error_response, parse_index, required_string};
use crate::world::World;

pub fn router(world: Arc<World>) -> Router {
    let p = "/api/v1/repos/{owner}/{repo}";
    Router::new()
        .route("/api/v1/user", get(authenticated_user))
        .route(p, get(get_repo))
        .route(&format!("{p}/labels"), get(repo_labels).post(create_label))
        .route(&format!("{p}/issues"), get(list_issues))
        .route(
            &format!("{p}/issues/{{index}}"),
            get(get_issue).patch(patch_issue),
        )
        .route(&format!("{p}/issues/{{index}}/timeline"), get(timeline))
        .route(
            &format!("{p}/issues/{{index}}/dependencies"),
            get(dependencies),
        )
        .route(
            &format!("{p}/issues/{{index}}/labels"),
            get(issue_labels).post(add_labels),
        )
        .route(
            &format!("{p}/issues/{{index}}/labels/{{identifier}}"),
            delete(remove_label),
        )
        .route(
            &format!("{p}/issues/{{index}}/comments"),
            get(list_comments).post(create_comment),
        )
        .route(
            &format!("{p}/issues/comments/{{id}}"),
            get(get_comment).patch(edit_comment),
        )
        .route(
            &format!("{p}/collaborators/{{collaborator}}/permission"),
            get(permission),
        )
        .route(&format!("{p}/commits"), get(list_commits))
        .route(
            &format!("{p}/commits/{{reference}}/status"),
            get(combined_status),
        )
        .route(&format!("{p}/actions/runs"), get(action_runs))
        .fallback(|| async { error_response(&ApiError::not_found(), "") })
        .with_state(world)
}

/// `GET /user`: the account the token authenticates as.
async fn authenticated_user(cx: Ctx) -> Response {
    cx.run(|st, call| Ok(Reply::ok(json::user(st, &call.caller, call.urls))))
}

async fn get_repo(cx: Ctx, Path((owner, repo)): Path<(String, String)>) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Read)?;
        let r = st.repo(&full).ok_or_else(ApiError::not_found)?;
        Ok(Reply::ok(json::repo(st, r, call.urls)))
    })
}

async fn repo_labels(cx: Ctx, Path((owner, repo)): Path<(String, String)>) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Read)?;
        let paging = Paging::from(call.query)?;
        let r = st.repo(&full).ok_or_else(ApiError::not_found)?;
        let all: Vec<&Label> = r.labels.iter().collect();
        let (page, headers) = paging.apply(&all, call);
        let body: Vec<Value> = page.iter().map(|l| json::label(r, l, call.urls)).collect();
        Ok(Reply::page(body, headers))
    })
}

/// `CreateLabelOption`: `name` and `color` (six hex digits, `#` optional) are required.
async fn create_label(
    cx: Ctx,
    Path((owner, repo)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Write)?;
        let obj = call.json_object(&body)?;
        let name = required_string(&obj, "name")?;
        let color = required_string(&obj, "color")?;
        let hex = color.strip_prefix('#').unwrap_or(&color);
        if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ApiError::unprocessable(format!(
                "[Color]: invalid color {color:?}"
            )));
        }
        let id = st.next_id();
        let r = st.repo_mut(&full)?;
        r.labels.push(Label {
            id,
            name,
            color: hex.to_ascii_lowercase(),
        });
        let r = st.repo(&full).ok_or_else(ApiError::not_found)?;
        let created = r.label_by_id(id).ok_or_else(ApiError::not_found)?;
        Ok(Reply::with(201, json::label(r, created, call.urls)))
    })
}

async fn list_issues(cx: Ctx, Path((owner, repo)): Path<(String, String)>) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Read)?;
        let q = call.query;
        let state = q
            .one_of("state", &["open", "closed", "all"])?
            .unwrap_or("open");
        let kind = q.one_of("type", &["issues", "pulls"])?;
        // `since`: only issues updated at or after this RFC 3339 time (swagger: "Only show
        // items updated after the given time"); anything else is a 422.
        let since = match q.get("since").filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(
                chrono::DateTime::parse_from_rfc3339(s)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .map_err(|_| ApiError::unprocessable(format!("invalid since {s:?}")))?,
            ),
        };
        let paging = Paging::from(q)?;
        let r = st.repo(&full).ok_or_else(ApiError::not_found)?;
        // Names the repo does not have are discarded; the rest are ORed.
        let wanted: Vec<u64> = q
            .get("labels")
            .unwrap_or("")
            .split(',')
            .filter_map(|n| r.label_by_name(n.trim()).map(|l| l.id))
            .collect();
        let matching: Vec<_> = r
            .issues
            .values()
            .rev()
            .filter(|i| match state {
                "open" => i.open,
                "closed" => !i.open,
                _ => true,
            })
            .filter(|i| match kind {
                Some("issues") => !i.pull_request,
                Some("pulls") => i.pull_request,
                _ => true,
            })
            .filter(|i| wanted.is_empty() || i.labels.iter().any(|l| wanted.contains(l)))
            .filter(|i| since.is_none_or(|s| i.updated_at >= s))
            .collect();
        let (page, headers) = paging.apply(&matching, call);
        let body: Vec<Value> = page
            .iter()
            .map(|i| json::issue(st, r, i, call.urls))
            .collect();
        Ok(Reply::page(body, headers))
    })
}

/// The issues `index` depends on, paged like every list.
async fn dependencies(
    cx: Ctx,
    Path((owner, repo, index)): Path<(String, String, String)>,
) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Read)?;
        let index = parse_index(&index)?;
        let paging = Paging::from(call.query)?;
        let r = st.repo(&full).ok_or_else(ApiError::not_found)?;
        let i = r.issues.get(&index).ok_or_else(ApiError::not_found)?;
        let (page, headers) = paging.apply(&i.depends_on, call);
        let body: Vec<Value> = page
            .iter()
            .filter_map(|(other, n)| {
                let br = st.repo(other)?;
                Some(json::issue(st, br, br.issues.get(n)?, call.urls))
            })
            .collect();
        Ok(Reply::page(body, headers))
    })
}

async fn get_issue(
    cx: Ctx,
    Path((owner, repo, index)): Path<(String, String, String)>,
) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Read)?;
        let index = parse_index(&index)?;
        let r = st.repo(&full).ok_or_else(ApiError::not_found)?;
        let i = r.issues.get(&index).ok_or_else(ApiError::not_found)?;
        Ok(Reply::ok(json::issue(st, r, i, call.urls)))
    })
}

async fn patch_issue(
    cx: Ctx,
    Path((owner, repo, index)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Read)?;
        let access = call.access(st, &full)?;
        let index = parse_index(&index)?;
        let obj = call.json_object(&body)?;
        let poster = {
            let issue = st.repo_mut(&full)?.issue_mut(index)?;
            issue.author.eq_ignore_ascii_case(&call.caller)
        };
        if !poster && access < Access::Write {
            return Err(ApiError::new(
                403,
                "only the poster or a writer may edit this issue",
            ));
        }
        let state = match obj.get("state") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s == "open" => Some(true),
            Some(Value::String(s)) if s == "closed" => Some(false),
            Some(other) => {
                return Err(ApiError::unprocessable(format!(
                    "[state]: must be \"open\" or \"closed\", got {other}"
                )));
            }
        };
        let title = match obj.get("title") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(_) => {
                return Err(ApiError::unprocessable(
                    "[title]: must be a non-empty string",
                ));
            }
        };
        let text = match obj.get("body") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(ApiError::unprocessable("[body]: must be a string")),
        };
        st.edit_issue(
            &full,
            index,
            title.as_deref(),
            text.as_deref(),
            &call.caller,
            call.now,
        )?;
        if let Some(open) = state {
            st.set_open(&full, index, open, &call.caller, call.now)?;
        }
        let r = st.repo(&full).ok_or_else(ApiError::not_found)?;
        let i = r.issues.get(&index).ok_or_else(ApiError::not_found)?;
        Ok(Reply::with(201, json::issue(st, r, i, call.urls)))
    })
}

async fn timeline(cx: Ctx, Path((owner, repo, index)): Path<(String, String, String)>) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Read)?;
        let index = parse_index(&index)?;
        let paging = Paging::from(call.query)?;
        let r = st.repo(&full).ok_or_else(ApiError::not_found)?;
        let i = r.issues.get(&index).ok_or_else(ApiError::not_found)?;
        let (page, _) = paging.apply(&i.timeline, call);
        let body: Vec<Value> = page
            .iter()
            .map(|e| json::timeline_item(st, r, i, e, call.urls))
            .collect();
        // Forgejo counts the page it serves, not the timeline (see the module notes).
        let count = vec![("x-total-count", body.len().to_string())];
        Ok(Reply::page(body, count))
    })
}

fn labels_of(st: &Forgejo, full: &str, index: u64, urls: &Urls) -> ApiResult<Value> {
    let r = st.repo(full).ok_or_else(ApiError::not_found)?;
    let i = r.issues.get(&index).ok_or_else(ApiError::not_found)?;
    Ok(Value::Array(
        i.labels
            .iter()
            .filter_map(|id| r.label_by_id(*id))
            .map(|l| json::label(r, l, urls))
            .collect(),
    ))
}

async fn issue_labels(
    cx: Ctx,
    Path((owner, repo, index)): Path<(String, String, String)>,
) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Read)?;
        let index = parse_index(&index)?;
        Ok(Reply::ok(labels_of(st, &full, index, call.urls)?))
    })
}

async fn add_labels(
    cx: Ctx,
    Path((owner, repo, index)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Write)?;
        let index = parse_index(&index)?;
        let obj = call.json_object(&body)?;
        let Some(Value::Array(items)) = obj.get("labels") else {
            return Err(ApiError::unprocessable(
                "[labels]: Required (an array of ids or names)",
            ));
        };
        let refs = items
            .iter()
            .map(|v| match v {
                Value::Number(n) => n.as_u64().map(LabelRef::Id),
                Value::String(s) => Some(LabelRef::Name(s.clone())),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::unprocessable("[labels]: items must be ids or names"))?;
        // Unknown names and ids are dropped; the answer is every label the issue now has,
        // so a caller can see which of its labels did not stick.
        st.add_labels(&full, index, &refs, &call.caller, call.now)?;
        Ok(Reply::ok(labels_of(st, &full, index, call.urls)?))
    })
}

async fn remove_label(
    cx: Ctx,
    Path((owner, repo, index, identifier)): Path<(String, String, String, String)>,
) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Write)?;
        let index = parse_index(&index)?;
        let r = st.repo(&full).ok_or_else(ApiError::not_found)?;
        // A number names a label id when the repo has one; otherwise the text is a name.
        let label = match identifier.parse::<u64>() {
            Ok(id) if r.label_by_id(id).is_some() => LabelRef::Id(id),
            _ => LabelRef::Name(identifier.clone()),
        };
        st.remove_label(&full, index, &label, &call.caller, call.now)?;
        Ok(Reply::no_content())
    })
}

async fn list_comments(
    cx: Ctx,
    Path((owner, repo, index)): Path<(String, String, String)>,
) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Read)?;
        let index = parse_index(&index)?;
        let r = st.repo(&full).ok_or_else(ApiError::not_found)?;
        let i = r.issues.get(&index).ok_or_else(ApiError::not_found)?;
        let body: Vec<Value> = i
            .timeline
            .iter()
            .filter(|e| e.kind == "comment")
            .map(|e| json::comment(st, r, i, e, call.urls))
            .collect();
        let count = vec![("x-total-count", body.len().to_string())];
        Ok(Reply::page(body, count))
    })
}

async fn create_comment(
    cx: Ctx,
    Path((owner, repo, index)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Read)?;
        let index = parse_index(&index)?;
        let obj = call.json_object(&body)?;
        let text = required_string(&obj, "body")?;
        let id = st.add_comment(&full, index, &call.caller, &text, call.now)?;
        comment_reply(st, &full, id, 201, call.urls)
    })
}

fn comment_reply(st: &Forgejo, full: &str, id: u64, status: u16, urls: &Urls) -> ApiResult<Reply> {
    let (index, pos) = st.find_comment(full, id)?;
    let r = st.repo(full).ok_or_else(ApiError::not_found)?;
    let i = r.issues.get(&index).ok_or_else(ApiError::not_found)?;
    let e = i.timeline.get(pos).ok_or_else(ApiError::not_found)?;
    Ok(Reply::with(status, json::comment(st, r, i, e, urls)))
}

async fn get_comment(cx: Ctx, Path((owner, repo, id)): Path<(String, String, String)>) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Read)?;
        let id = parse_index(&id)?;
        comment_reply(st, &full, id, 200, call.urls)
    })
}

async fn edit_comment(
    cx: Ctx,
    Path((owner, repo, id)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Read)?;
        let access = call.access(st, &full)?;
        let id = parse_index(&id)?;
        let obj = call.json_object(&body)?;
        let text = required_string(&obj, "body")?;
        let (index, pos) = st.find_comment(&full, id)?;
        let issue = st.repo_mut(&full)?.issue_mut(index)?;
        let comment = issue
            .timeline
            .get_mut(pos)
            .ok_or_else(ApiError::not_found)?;
        // Forgejo lets only the comment's author or a repo admin edit it.
        if !comment.user.eq_ignore_ascii_case(&call.caller) && access < Access::Admin {
            return Err(ApiError::new(
                403,
                "only the author or a repo admin may edit this comment",
            ));
        }
        comment.body = text;
        comment.updated_at = call.now;
        comment_reply(st, &full, id, 200, call.urls)
    })
}

async fn permission(
    cx: Ctx,
    Path((owner, repo, collaborator)): Path<(String, String, String)>,
) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Read)?;
        let r = st.repo(&full).ok_or_else(ApiError::not_found)?;
        let caller_is_admin = st.user(&call.caller).is_some_and(|u| u.is_admin);
        let caller_access = st.access(r, &call.caller);
        if !caller_is_admin
            && caller_access < Access::Admin
            && !call.caller.eq_ignore_ascii_case(&collaborator)
        {
            return Err(ApiError::new(
                403,
                "Only admins can query all permissions, repo admins can query all repo \
                 permissions, collaborators can query only their own",
            ));
        }
        let user = st.user(&collaborator).ok_or_else(|| {
            ApiError::new(404, format!("user does not exist [name: {collaborator}]"))
        })?;
        let access = st.access(r, &user.login).as_str();
        Ok(Reply::ok(json!({
            "permission": access,
            "role_name": access,
            "user": json::user(st, &user.login, call.urls),
        })))
    })
}

async fn list_commits(cx: Ctx, Path((owner, repo)): Path<(String, String)>) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Read)?;
        let q = call.query;
        for flag in ["stat", "verification", "files"] {
            q.boolean(flag)?;
        }
        let paging = Paging::from(q)?;
        let r = st.repo(&full).ok_or_else(ApiError::not_found)?;
        if r.branches.values().all(Vec::is_empty) {
            return Err(ApiError::new(409, "Git Repository is empty."));
        }
        let wanted = q
            .get("sha")
            .filter(|s| !s.is_empty())
            .unwrap_or(&r.default_branch);
        let history: &[_] = match r.branches.get(wanted) {
            Some(commits) => commits,
            None => r
                .branches
                .values()
                .find_map(|commits| {
                    commits
                        .iter()
                        .position(|c| c.sha.eq_ignore_ascii_case(wanted))
                        .map(|pos| &commits[..=pos])
                })
                .ok_or_else(|| ApiError::new(404, format!("sha not found [{wanted}]")))?,
        };
        // Newest first, each with its parent.
        let newest_first: Vec<usize> = (0..history.len()).rev().collect();
        let (page, headers) = paging.apply(&newest_first, call);
        let body: Vec<Value> = page
            .iter()
            .map(|&i| {
                let parent = i.checked_sub(1).and_then(|p| history.get(p));
                json::commit(st, r, &history[i], parent, call.urls)
            })
            .collect();
        Ok(Reply::page(body, headers))
    })
}

async fn combined_status(
    cx: Ctx,
    Path((owner, repo, reference)): Path<(String, String, String)>,
) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Read)?;
        let paging = Paging::from(call.query)?;
        let r = st.repo(&full).ok_or_else(ApiError::not_found)?;
        let sha = r
            .resolve_ref(&reference)
            .ok_or_else(|| ApiError::new(404, format!("ref not found [{reference}]")))?;
        let latest = r.latest_statuses(&sha);
        if latest.is_empty() {
            // Forgejo answers an empty object when a commit has no statuses.
            return Ok(Reply::ok(json!({
                "state": "", "sha": "", "total_count": 0, "statuses": null,
                "repository": null, "commit_url": "", "url": "",
            })));
        }
        let worst = latest
            .iter()
            .map(|s| s.status.as_str())
            .min_by_key(|s| status_rank(s))
            .unwrap_or("pending");
        let (page, headers) = paging.apply(&latest, call);
        let statuses: Vec<Value> = page
            .iter()
            .map(|s| json::status(st, r, &sha, s, call.urls))
            .collect();
        Ok(Reply {
            headers,
            ..Reply::ok(json!({
                "state": worst,
                "sha": sha,
                "total_count": latest.len(),
                "statuses": statuses,
                "repository": json::repo(st, r, call.urls),
                "commit_url": format!("{}/repos/{full}/commits/{sha}", call.urls.api()),
                "url": format!("{}/repos/{full}/commits/{sha}/status", call.urls.api()),
            }))
        })
    })
}

/// Forgejo's order for the combined state: the lowest-ranked status wins.
fn status_rank(s: &str) -> u8 {
    match s {
        "error" => 0,
        "failure" => 1,
        "warning" => 2,
        "pending" => 3,
        "success" => 4,
        _ => 5,
    }
}

async fn action_runs(cx: Ctx, Path((owner, repo)): Path<(String, String)>) -> Response {
    cx.run(|st, call| {
        let full = call.authorize(st, &owner, &repo, Access::Read)?;
        let q = call.query;
        let status = q.one_of("status", &RUN_STATUS_VALUES)?;
        let paging = Paging::from(q)?;
        let r = st.repo(&full).ok_or_else(ApiError::not_found)?;
        let runs: Vec<_> = r
            .runs
            .iter()
            .rev()
            .filter(|run| {
                q.get("head_sha")
                    .is_none_or(|s| s.is_empty() || run.commit_sha == s)
            })
            .filter(|run| {
                q.get("event")
                    .is_none_or(|e| e.is_empty() || run.event == e)
            })
            .filter(|run| status.is_none_or(|s| run.status == s))
            .collect();
        let (page, headers) = paging.apply(&runs, call);
        let body: Vec<Value> = page
            .iter()
            .map(|run| json::action_run(st, r, run, call.urls))
            .collect();
        Ok(Reply {
            headers,
            ..Reply::ok(json!({"total_count": runs.len(), "workflow_runs": body}))
        })
    })
}
