//! The simulated GitHub's JSON shapes (the documented REST schemas, trimmed to what matters).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::model::{Actor, CheckRun, Comment, CommitStatus, Event, Issue, Repo, WorkflowRun};

const WEB: &str = "https://github.com";
const API: &str = "https://api.github.com";

pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn user_id(login: &str) -> u64 {
    login
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        % 100_000_000
}

pub fn user(a: &Actor) -> Value {
    json!({
        "login": a.login,
        "id": user_id(&a.login),
        "node_id": format!("U_{}", user_id(&a.login)),
        "type": if a.bot { "Bot" } else { "User" },
        "site_admin": false,
        "url": format!("{API}/users/{}", a.login),
        "html_url": format!("{WEB}/{}", a.login),
    })
}

fn app(a: &Actor) -> Value {
    match &a.app {
        Some(slug) => {
            json!({"id": user_id(slug), "slug": slug, "name": slug, "owner": {"login": slug}})
        }
        None => Value::Null,
    }
}

pub fn label(name: &str) -> Value {
    json!({
        "id": user_id(name),
        "node_id": format!("LA_{}", user_id(name)),
        "url": format!("{API}/labels/{name}"),
        "name": name,
        "description": null,
        "color": "ededed",
        "default": false,
    })
}

fn author_association(repo: &Repo, login: &str) -> &'static str {
    if login.eq_ignore_ascii_case(&repo.owner) {
        "OWNER"
    } else if repo.collaborators.contains_key(&login.to_ascii_lowercase()) {
        "COLLABORATOR"
    } else {
        "NONE"
    }
}

pub fn issue(repo: &Repo, i: &Issue) -> Value {
    let full = repo.full_name();
    let kind = if i.is_pr { "pull" } else { "issues" };
    let comments = repo.comments.iter().filter(|c| c.issue == i.number).count();
    let mut v = json!({
        "id": repo.id * 100_000 + i.number,
        "node_id": format!("I_{}_{}", repo.id, i.number),
        "url": format!("{API}/repos/{full}/issues/{}", i.number),
        "html_url": format!("{WEB}/{full}/{kind}/{}", i.number),
        "number": i.number,
        "title": i.title,
        "body": i.body,
        "state": if i.open { "open" } else { "closed" },
        "state_reason": i.state_reason,
        "locked": false,
        "labels": i.labels.iter().map(|l| label(l)).collect::<Vec<_>>(),
        "user": user(&i.user),
        "author_association": author_association(repo, &i.user.login),
        "comments": comments,
        "created_at": time(i.created_at),
        "updated_at": time(i.updated_at),
        "closed_at": i.closed_at.map(time),
    });
    if i.is_pr
        && let Some(obj) = v.as_object_mut()
    {
        obj.insert(
            "pull_request".into(),
            json!({
                "url": format!("{API}/repos/{full}/pulls/{}", i.number),
                "html_url": format!("{WEB}/{full}/pull/{}", i.number),
                "diff_url": format!("{WEB}/{full}/pull/{}.diff", i.number),
                "patch_url": format!("{WEB}/{full}/pull/{}.patch", i.number),
                "merged_at": null,
            }),
        );
    }
    v
}

/// An issue event as `/events` and `/timeline` show it: no `author_association`.
pub fn event(repo: &Repo, e: &Event) -> Value {
    let mut v = json!({
        "id": e.id,
        "node_id": format!("E_{}", e.id),
        "url": format!("{API}/repos/{}/issues/events/{}", repo.full_name(), e.id),
        "actor": user(&e.actor),
        "event": e.event,
        "commit_id": e.commit_id,
        "commit_url": e.commit_id.as_ref().map(|c| format!("{API}/repos/{}/commits/{c}", repo.full_name())),
        "created_at": time(e.created_at),
        "performed_via_github_app": app(&e.actor),
    });
    if let (Some(name), Some(obj)) = (&e.label, v.as_object_mut()) {
        obj.insert("label".into(), json!({"name": name, "color": "ededed"}));
    }
    if let (Some((from, to)), Some(obj)) = (&e.rename, v.as_object_mut()) {
        obj.insert("rename".into(), json!({"from": from, "to": to}));
    }
    v
}

pub fn comment(repo: &Repo, c: &Comment) -> Value {
    let full = repo.full_name();
    json!({
        "id": c.id,
        "node_id": format!("IC_{}", c.id),
        "url": format!("{API}/repos/{full}/issues/comments/{}", c.id),
        "html_url": format!("{WEB}/{full}/issues/{}#issuecomment-{}", c.issue, c.id),
        "issue_url": format!("{API}/repos/{full}/issues/{}", c.issue),
        "body": c.body,
        "user": user(&c.user),
        "author_association": author_association(repo, &c.user.login),
        "created_at": time(c.created_at),
        "updated_at": time(c.updated_at),
        "performed_via_github_app": app(&c.user),
    })
}

/// A `commented` timeline item (these, unlike label events, carry `author_association`).
pub fn commented(repo: &Repo, c: &Comment) -> Value {
    let mut v = comment(repo, c);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("event".into(), json!("commented"));
        obj.insert("actor".into(), user(&c.user));
    }
    v
}

pub fn commit(
    repo: &Repo,
    sha: &str,
    message: &str,
    date: DateTime<Utc>,
    parent: Option<&str>,
) -> Value {
    let full = repo.full_name();
    let who = json!({"name": repo.owner, "email": format!("{}@users.noreply.github.com", repo.owner), "date": time(date)});
    json!({
        "sha": sha,
        "node_id": format!("C_{sha}"),
        "url": format!("{API}/repos/{full}/commits/{sha}"),
        "html_url": format!("{WEB}/{full}/commit/{sha}"),
        "commit": {"message": message, "author": who, "committer": who},
        "author": {},
        "committer": {},
        "parents": parent.map(|p| vec![json!({"sha": p})]).unwrap_or_default(),
    })
}

pub fn check_run(repo: &Repo, sha: &str, c: &CheckRun) -> Value {
    let url = format!("{WEB}/{}/runs/{}", repo.full_name(), c.id);
    json!({
        "id": c.id,
        "name": c.name,
        "head_sha": sha,
        "status": c.status,
        "conclusion": c.conclusion,
        "html_url": url,
        "details_url": url,
        "started_at": time(c.started_at),
        "completed_at": if c.status == "completed" { Some(time(c.started_at)) } else { None },
    })
}

pub fn status(s: &CommitStatus) -> Value {
    json!({
        "id": s.id,
        "context": s.context,
        "state": s.state,
        "description": null,
        "target_url": s.target_url,
        "created_at": time(s.created_at),
        "updated_at": time(s.created_at),
    })
}

pub fn workflow_run(repo: &Repo, w: &WorkflowRun) -> Value {
    json!({
        "id": w.id,
        "name": w.name,
        "head_sha": w.head_sha,
        "head_branch": w.head_branch,
        "event": "push",
        "status": w.status,
        "conclusion": w.conclusion,
        "run_number": w.id,
        "run_attempt": 1,
        "html_url": format!("{WEB}/{}/actions/runs/{}", repo.full_name(), w.id),
        "created_at": time(w.created_at),
        "updated_at": time(w.created_at),
        "run_started_at": time(w.created_at),
    })
}
