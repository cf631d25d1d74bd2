//! Forgejo's JSON shapes for the simulated objects (swagger `Issue`, `TimelineComment`,
//! `Comment`, `Commit`, `CombinedStatus`, `ActionRun`, …).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::model::{ActionRun, Commit, Event, Issue, Label, Repo, State, Status};

/// Forgejo's timestamp format.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Where the simulated web UI and API live, for the `url`/`html_url` fields.
#[derive(Debug, Clone)]
pub struct Urls {
    pub web: String,
}

impl Urls {
    pub fn api(&self) -> String {
        format!("{}/api/v1", self.web)
    }
}

pub fn user(state: &State, login: &str, urls: &Urls) -> Value {
    let (id, is_admin, login) = match state.user(login) {
        Some(u) => (u.id, u.is_admin, u.login.clone()),
        None => (0, false, login.to_owned()),
    };
    json!({
        "id": id,
        "login": login,
        "login_name": "",
        "source_id": 0,
        "full_name": "",
        "email": format!("{}@noreply.localhost", login.to_ascii_lowercase()),
        "avatar_url": format!("{}/avatars/{id}", urls.web),
        "html_url": format!("{}/{login}", urls.web),
        "language": "",
        "is_admin": is_admin,
        "restricted": false,
        "active": true,
        "prohibit_login": false,
        "visibility": "public",
        "username": login,
    })
}

pub fn label(repo: &Repo, l: &Label, urls: &Urls) -> Value {
    json!({
        "id": l.id,
        "name": l.name,
        "exclusive": false,
        "is_archived": false,
        "color": l.color,
        "description": "",
        "url": format!("{}/repos/{}/labels/{}", urls.api(), repo.full_name(), l.id),
    })
}

pub fn repo(state: &State, r: &Repo, urls: &Urls) -> Value {
    json!({
        "id": r.id,
        "owner": user(state, &r.owner, urls),
        "name": r.name,
        "full_name": r.full_name(),
        "description": "",
        "empty": r.branches.is_empty(),
        "private": r.private,
        "fork": false,
        "html_url": format!("{}/{}", urls.web, r.full_name()),
        "clone_url": format!("{}/{}.git", urls.web, r.full_name()),
        "default_branch": r.default_branch,
        "archived": false,
        "has_issues": true,
        "has_pull_requests": true,
        "has_actions": true,
    })
}

pub fn issue(state: &State, r: &Repo, i: &Issue, urls: &Urls) -> Value {
    let kind = if i.pull_request { "pulls" } else { "issues" };
    let html_url = format!("{}/{}/{kind}/{}", urls.web, r.full_name(), i.index);
    let pull_request = if i.pull_request {
        json!({"merged": false, "merged_at": null, "draft": false, "html_url": html_url})
    } else {
        Value::Null
    };
    json!({
        "id": i.id,
        "url": format!("{}/repos/{}/issues/{}", urls.api(), r.full_name(), i.index),
        "html_url": html_url,
        "number": i.index,
        "user": user(state, &i.author, urls),
        "original_author": "",
        "original_author_id": 0,
        "title": i.title,
        "body": i.body,
        "ref": "",
        "assets": [],
        "labels": i.labels.iter().filter_map(|id| r.label_by_id(*id)).map(|l| label(r, l, urls)).collect::<Vec<_>>(),
        "milestone": null,
        "assignee": null,
        "assignees": null,
        "state": if i.open { "open" } else { "closed" },
        "is_locked": false,
        "comments": i.comment_count(),
        "created_at": time(i.created_at),
        "updated_at": time(i.updated_at),
        "closed_at": i.closed_at.map(time),
        "due_date": null,
        "pull_request": pull_request,
        "repository": {"id": r.id, "name": r.name, "owner": r.owner, "full_name": r.full_name()},
        "pin_order": 0,
    })
}

pub fn timeline_item(state: &State, r: &Repo, i: &Issue, e: &Event, urls: &Urls) -> Value {
    let label_json = e
        .label
        .and_then(|id| r.label_by_id(id))
        .map(|l| label(r, l, urls))
        .unwrap_or(Value::Null);
    json!({
        "id": e.id,
        "type": e.kind,
        "html_url": format!("{}/{}/issues/{}#issuecomment-{}", urls.web, r.full_name(), i.index, e.id),
        "pull_request_url": "",
        "issue_url": format!("{}/{}/issues/{}", urls.web, r.full_name(), i.index),
        "user": user(state, &e.user, urls),
        "body": e.body,
        "created_at": time(e.created_at),
        "updated_at": time(e.updated_at),
        "old_project_id": 0,
        "project_id": 0,
        "old_title": e.titles.as_ref().map_or("", |t| t.0.as_str()),
        "new_title": e.titles.as_ref().map_or("", |t| t.1.as_str()),
        "old_ref": "",
        "new_ref": "",
        "ref_action": "",
        "ref_commit_sha": "",
        "review_id": 0,
        "label": label_json,
        "assignee": null,
        "assignee_team": null,
        "removed_assignee": false,
        "resolve_doer": null,
        "dependent_issue": null,
    })
}

pub fn comment(state: &State, r: &Repo, i: &Issue, e: &Event, urls: &Urls) -> Value {
    json!({
        "id": e.id,
        "html_url": format!("{}/{}/issues/{}#issuecomment-{}", urls.web, r.full_name(), i.index, e.id),
        "pull_request_url": "",
        "issue_url": format!("{}/{}/issues/{}", urls.web, r.full_name(), i.index),
        "user": user(state, &e.user, urls),
        "original_author": "",
        "original_author_id": 0,
        "body": e.body,
        "assets": [],
        "created_at": time(e.created_at),
        "updated_at": time(e.updated_at),
    })
}

pub fn commit(state: &State, r: &Repo, c: &Commit, parent: Option<&Commit>, urls: &Urls) -> Value {
    let sig = json!({
        "name": c.author,
        "email": format!("{}@noreply.localhost", c.author.to_ascii_lowercase()),
        "date": time(c.at),
    });
    let api = format!(
        "{}/repos/{}/git/commits/{}",
        urls.api(),
        r.full_name(),
        c.sha
    );
    let parents: Vec<Value> = parent
        .map(|p| {
            json!({
                "url": format!("{}/repos/{}/git/commits/{}", urls.api(), r.full_name(), p.sha),
                "sha": p.sha,
                "created": time(p.at),
            })
        })
        .into_iter()
        .collect();
    json!({
        "url": api,
        "sha": c.sha,
        "created": time(c.at),
        "html_url": format!("{}/{}/commit/{}", urls.web, r.full_name(), c.sha),
        "commit": {
            "url": api,
            "author": sig,
            "committer": sig,
            "message": c.message,
            "tree": {"url": api, "sha": c.sha, "created": time(c.at)},
            "verification": null,
        },
        "author": user(state, &c.author, urls),
        "committer": user(state, &c.author, urls),
        "parents": parents,
        "files": null,
        "stats": null,
    })
}

pub fn status(state: &State, r: &Repo, sha: &str, s: &Status, urls: &Urls) -> Value {
    json!({
        "id": s.id,
        "status": s.status,
        "target_url": s.target_url,
        "description": s.description,
        "url": format!("{}/repos/{}/statuses/{sha}", urls.api(), r.full_name()),
        "context": s.context,
        "creator": user(state, &s.creator, urls),
        "created_at": time(s.created_at),
        "updated_at": time(s.created_at),
    })
}

pub fn action_run(state: &State, r: &Repo, run: &ActionRun, urls: &Urls) -> Value {
    let done = matches!(
        run.status.as_str(),
        "success" | "failure" | "cancelled" | "skipped"
    );
    json!({
        "id": run.id,
        "title": run.title,
        "repo_id": r.id,
        "owner_id": 0,
        "workflow_id": run.workflow_id,
        "index_in_repo": run.index_in_repo,
        "trigger_user": user(state, &run.trigger_user, urls),
        "schedule_id": 0,
        "prettyref": run.prettyref,
        "is_ref_deleted": false,
        "commit_sha": run.commit_sha,
        "is_fork_pull_request": false,
        "need_approval": run.status == "blocked",
        "approved_by": 0,
        "event": run.event,
        "event_payload": "",
        "trigger_event": run.event,
        "status": run.status,
        "started": time(run.created),
        "stopped": if done { time(run.updated) } else { "0001-01-01T00:00:00Z".to_owned() },
        "created": time(run.created),
        "updated": time(run.updated),
        "duration": 0,
        "html_url": format!("{}/{}/actions/runs/{}", urls.web, r.full_name(), run.index_in_repo),
    })
}
