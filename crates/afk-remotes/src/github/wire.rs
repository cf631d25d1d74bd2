//! GitHub's JSON shapes as afk reads them (own structs, tolerant of extra fields and of
//! values octocrab's models reject), and their mapping to afk's tracker and CI types.

use afk_core::evidence::CloseReason;
use afk_core::facts::Permission;
use afk_core::model::{Login, Timestamp};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::tracker::{CiSignal, Comment, Commit, Issue, LabelChange, SignalState};

/// GitHub's placeholder for a deleted account (an actor of `null`).
const GHOST: &str = "ghost";

#[derive(Debug, Deserialize)]
pub(super) struct User {
    pub login: String,
}

fn login(u: Option<User>) -> Login {
    Login::new(u.map(|u| u.login).unwrap_or_else(|| GHOST.to_owned()))
}

/// Issue labels are objects with a name, or (in older payloads) bare strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Label {
    Name(String),
    Object { name: String },
}

#[derive(Debug, Deserialize)]
pub(super) struct WireIssue {
    number: u64,
    title: String,
    body: Option<String>,
    state: String,
    #[serde(default)]
    state_reason: Option<String>,
    #[serde(default)]
    labels: Vec<Label>,
    user: Option<User>,
    html_url: String,
    updated_at: Timestamp,
    #[serde(default)]
    comments: Option<u64>,
    /// Present (an object) exactly when the item is a pull request.
    #[serde(default)]
    pull_request: Option<IgnoredAny>,
}

pub(super) fn close_reason(state_reason: Option<&str>) -> CloseReason {
    match state_reason {
        Some("completed") => CloseReason::Completed,
        Some("not_planned") => CloseReason::NotPlanned,
        Some("duplicate") => CloseReason::Duplicate,
        _ => CloseReason::Unspecified,
    }
}

/// The `state_reason` to send when closing; `None` lets GitHub pick its default.
pub(super) fn state_reason(reason: &CloseReason) -> Option<&'static str> {
    match reason {
        CloseReason::Completed => Some("completed"),
        CloseReason::NotPlanned => Some("not_planned"),
        CloseReason::Duplicate => Some("duplicate"),
        CloseReason::Unspecified => None,
    }
}

impl WireIssue {
    pub fn into_issue(self) -> Issue {
        let open = self.state == "open";
        Issue {
            number: self.number,
            title: self.title,
            body: self.body.unwrap_or_default(),
            open,
            close_reason: (!open).then(|| close_reason(self.state_reason.as_deref())),
            labels: self
                .labels
                .into_iter()
                .map(|l| match l {
                    Label::Name(n) | Label::Object { name: n } => n,
                })
                .collect(),
            is_pull_request: self.pull_request.is_some(),
            author: login(self.user),
            html_url: self.html_url,
            updated_at: self.updated_at,
            comments: self.comments,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct WireComment {
    id: u64,
    user: Option<User>,
    body: Option<String>,
    created_at: Timestamp,
}

impl WireComment {
    pub fn into_comment(self) -> Comment {
        Comment {
            id: self.id,
            author: login(self.user),
            body: self.body.unwrap_or_default(),
            created_at: self.created_at,
        }
    }
}

#[derive(Debug, Deserialize)]
struct GitPerson {
    date: Timestamp,
}

#[derive(Debug, Deserialize)]
struct GitCommit {
    message: String,
    committer: Option<GitPerson>,
    author: Option<GitPerson>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireCommit {
    sha: String,
    html_url: String,
    commit: GitCommit,
}

impl WireCommit {
    /// `None` when the commit carries no date at all (never seen on GitHub).
    pub fn into_commit(self) -> Option<Commit> {
        let at = self
            .commit
            .committer
            .or(self.commit.author)
            .map(|p| p.date)?;
        Some(Commit {
            sha: self.sha,
            message: self.commit.message,
            html_url: self.html_url,
            committed_at: at,
        })
    }
}

/// `GET …/collaborators/{user}/permission`: `permission` is the legacy base role
/// (`admin|write|read|none`), `role_name` the real one (`maintain`, custom roles, …).
#[derive(Debug, Deserialize)]
pub(super) struct WirePermission {
    permission: String,
    #[serde(default)]
    role_name: Option<String>,
}

impl WirePermission {
    pub fn into_permission(self) -> Permission {
        if self.role_name.as_deref() == Some("maintain") {
            return Permission::Maintain;
        }
        crate::tracker::permission_from_str(&self.permission)
    }
}

/// The label change an `/events` item describes, with the event's id, if it is `labeled` for
/// `label`. Items are raw JSON so event names this code has never heard of cannot break a page.
pub(super) fn labeling(item: &Value, label: &str) -> Option<(u64, LabelChange)> {
    if item.get("event").and_then(Value::as_str) != Some("labeled") {
        return None;
    }
    let name = item.pointer("/label/name").and_then(Value::as_str)?;
    if !name.eq_ignore_ascii_case(label) {
        return None;
    }
    let at = item
        .get("created_at")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())?
        .with_timezone(&chrono::Utc);
    let actor = item.get("actor").filter(|a| !a.is_null());
    let login = actor
        .and_then(|a| a.get("login"))
        .and_then(Value::as_str)
        .unwrap_or(GHOST);
    let bot_type = actor
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("Bot"));
    let via_app = item
        .get("performed_via_github_app")
        .is_some_and(|a| !a.is_null());
    let id = item.get("id").and_then(Value::as_u64).unwrap_or(0);
    Some((
        id,
        LabelChange {
            label: name.to_owned(),
            added: true,
            actor: Login::new(login),
            actor_is_bot: bot_type || via_app,
            at,
            title_changed_after: None,
            activity_after: Vec::new(),
        },
    ))
}

/// When a `renamed` `/events` item (a title change, `rename: {from, to}`) was recorded, if the
/// item is one. A `renamed` item whose time cannot be read counts as "now or later": the
/// caller treats it as after the labelling (fail closed).
pub(super) fn renamed_at(item: &Value) -> Option<Option<Timestamp>> {
    if item.get("event").and_then(Value::as_str) != Some("renamed") {
        return None;
    }
    Some(
        item.get("created_at")
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc)),
    )
}

#[derive(Debug, Deserialize)]
struct WireCheckRun {
    name: String,
    status: String,
    conclusion: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    details_url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct CheckRuns {
    check_runs: Vec<WireCheckRun>,
}

/// A completed run's conclusion. An unknown conclusion is not a pass.
fn conclusion_state(conclusion: Option<&str>) -> SignalState {
    match conclusion {
        None => SignalState::Pending,
        Some("success" | "neutral" | "skipped") => SignalState::Success,
        Some(_) => SignalState::Failure,
    }
}

fn run_state(status: Option<&str>, conclusion: Option<&str>) -> SignalState {
    match status {
        Some("completed") => conclusion_state(conclusion),
        _ => SignalState::Pending,
    }
}

impl CheckRuns {
    pub fn signals(self) -> Vec<CiSignal> {
        self.check_runs
            .into_iter()
            .map(|c| CiSignal {
                state: run_state(Some(&c.status), c.conclusion.as_deref()),
                url: c.html_url.or(c.details_url),
                name: c.name,
            })
            .collect()
    }
}

#[derive(Debug, Deserialize)]
struct WireStatus {
    context: String,
    state: String,
    #[serde(default)]
    target_url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct CombinedStatus {
    #[serde(default)]
    statuses: Vec<WireStatus>,
}

impl CombinedStatus {
    /// One signal per context; none at all means nothing has reported yet (an empty list).
    pub fn signals(self) -> Vec<CiSignal> {
        self.statuses
            .into_iter()
            .map(|s| CiSignal {
                state: match s.state.as_str() {
                    "success" => SignalState::Success,
                    "pending" => SignalState::Pending,
                    _ => SignalState::Failure,
                },
                url: s.target_url,
                name: s.context,
            })
            .collect()
    }
}

#[derive(Debug, Deserialize)]
struct WireRun {
    id: u64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WorkflowRuns {
    workflow_runs: Vec<WireRun>,
}

impl WorkflowRuns {
    /// Runs as `(id, signal)`, so the caller can keep the newest run per workflow name.
    pub fn runs(self) -> Vec<(u64, CiSignal)> {
        self.workflow_runs
            .into_iter()
            .map(|r| {
                let state = run_state(r.status.as_deref(), r.conclusion.as_deref());
                let name = r.name.unwrap_or_else(|| format!("workflow run {}", r.id));
                (
                    r.id,
                    CiSignal {
                        name,
                        url: r.html_url,
                        state,
                    },
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ci_states_map_like_github_documents_them() {
        for (status, conclusion, want) in [
            ("queued", None, SignalState::Pending),
            ("in_progress", None, SignalState::Pending),
            ("waiting", None, SignalState::Pending),
            ("completed", Some("success"), SignalState::Success),
            ("completed", Some("neutral"), SignalState::Success),
            ("completed", Some("skipped"), SignalState::Success),
            ("completed", Some("failure"), SignalState::Failure),
            ("completed", Some("cancelled"), SignalState::Failure),
            ("completed", Some("timed_out"), SignalState::Failure),
            ("completed", Some("action_required"), SignalState::Failure),
            ("completed", Some("startup_failure"), SignalState::Failure),
            ("completed", Some("stale"), SignalState::Failure),
            ("completed", Some("something_new"), SignalState::Failure),
        ] {
            assert_eq!(
                run_state(Some(status), conclusion),
                want,
                "{status} {conclusion:?}"
            );
        }
    }

    #[test]
    fn labeled_events_from_apps_count_as_bots() {
        let item = json!({"event": "labeled", "label": {"name": "Ready"}, "created_at": "2026-01-01T00:00:00Z",
            "actor": {"login": "alice", "type": "User"}, "performed_via_github_app": {"slug": "x"}});
        let (_, change) = labeling(&item, "ready").expect("a labeled event");
        assert!(change.actor_is_bot);
        assert_eq!(change.actor, Login::new("alice"));
        let unlabeled = json!({"event": "unlabeled", "label": {"name": "ready"}, "created_at": "2026-01-01T00:00:00Z"});
        assert_eq!(labeling(&unlabeled, "ready"), None);
    }
}
