//! Forgejo's JSON shapes, as far as afk reads them, and their conversion to afk's types.

use afk_core::evidence::CloseReason;
use afk_core::facts::Activity;
use afk_core::model::{Login, Timestamp};
use serde::Deserialize;

use crate::error::{ErrorKind, RemoteError, Result};
use crate::tracker::{Comment, Commit, Issue, LabelChange};

use super::REMOTE;

#[derive(Debug, Clone, Deserialize)]
pub(super) struct User {
    pub login: String,
}

/// A deleted account shows as `null` (or Forgejo's "Ghost"): never trusted.
fn login(user: Option<User>) -> Login {
    Login::new(user.map_or_else(|| "ghost".to_owned(), |u| u.login))
}

#[derive(Debug, Deserialize)]
pub(super) struct Label {
    pub id: u64,
    pub name: String,
}

/// An issue in the answer of `…/issues/{index}/dependencies` (the issues blocking it).
#[derive(Debug, Deserialize)]
pub(super) struct WireDependency {
    pub number: u64,
    /// `open` or `closed`; anything but `closed` blocks.
    pub state: String,
    #[serde(default)]
    pub repository: Option<RepoMeta>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RepoMeta {
    pub full_name: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireIssue {
    number: u64,
    title: String,
    body: Option<String>,
    state: String,
    #[serde(default)]
    labels: Option<Vec<Label>>,
    user: Option<User>,
    /// Non-null for pull requests.
    #[serde(default)]
    pull_request: Option<serde_json::Value>,
    html_url: String,
    updated_at: Timestamp,
    #[serde(default)]
    comments: Option<u64>,
}

impl WireIssue {
    pub fn into_issue(self, request: &str) -> Result<Issue> {
        let open = match self.state.as_str() {
            "open" => true,
            "closed" => false,
            other => {
                return Err(RemoteError::new(
                    REMOTE,
                    request,
                    ErrorKind::Decode(format!(
                        "issue #{} has state {other:?}, expected open or closed",
                        self.number
                    )),
                ));
            }
        };
        Ok(Issue {
            number: self.number,
            title: self.title,
            body: self.body.unwrap_or_default(),
            open,
            // Forgejo records no close reason.
            close_reason: (!open).then_some(CloseReason::Unspecified),
            labels: self
                .labels
                .unwrap_or_default()
                .into_iter()
                .map(|l| l.name)
                .collect(),
            is_pull_request: self.pull_request.is_some_and(|p| !p.is_null()),
            author: login(self.user),
            html_url: self.html_url,
            updated_at: self.updated_at,
            comments: self.comments,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct TimelineItem {
    #[serde(default)]
    id: u64,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    user: Option<User>,
    /// `null` once the label was deleted from the repo.
    #[serde(default)]
    label: Option<Label>,
    created_at: Timestamp,
}

impl TimelineItem {
    /// The label change this item records, if it is one for `label`.
    /// Forgejo writes `body: "1"` for an added label and `""` for a removed one.
    pub fn label_change(&self, label: &str) -> Option<(u64, LabelChange)> {
        if self.kind != "label" || self.label.as_ref().is_none_or(|l| l.name != label) {
            return None;
        }
        let added = self.body.as_deref() == Some("1");
        Some((
            self.id,
            LabelChange {
                label: label.to_owned(),
                added,
                actor: login(self.user.clone()),
                // Forgejo's API does not mark bot accounts.
                actor_is_bot: false,
                at: self.created_at,
                title_changed_after: None,
                activity_after: Vec::new(),
            },
        ))
    }

    /// Whether this entry comes after the one with `id` created at `at` (creation time, then id:
    /// Forgejo numbers timeline entries in creation order).
    pub fn is_after(&self, at: Timestamp, id: u64) -> bool {
        (self.created_at, self.id) > (at, id)
    }

    /// A title change (`change_title`: Forgejo's `CommentTypeChangeTitle`, written by
    /// `issue_service.ChangeTitle` with `old_title`/`new_title`).
    pub fn is_title_change(&self) -> bool {
        self.kind == "change_title"
    }

    /// Who made the entry, and when.
    pub fn activity(&self) -> Activity {
        Activity {
            actor: login(self.user.clone()),
            at: self.created_at,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct WireComment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    user: Option<User>,
    created_at: Timestamp,
}

impl From<WireComment> for Comment {
    fn from(c: WireComment) -> Comment {
        Comment {
            id: c.id,
            author: login(c.user),
            body: c.body.unwrap_or_default(),
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Signature {
    date: Timestamp,
}

#[derive(Debug, Deserialize)]
struct CommitDetail {
    message: String,
    committer: Signature,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireCommit {
    sha: String,
    html_url: String,
    commit: CommitDetail,
}

impl From<WireCommit> for Commit {
    fn from(c: WireCommit) -> Commit {
        Commit {
            sha: c.sha,
            message: c.commit.message,
            html_url: c.html_url,
            committed_at: c.commit.committer.date,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct RepoInfo {
    pub default_branch: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct PermissionInfo {
    pub permission: String,
}

/// One commit status; Forgejo's key is `status`, not GitHub's `state`.
#[derive(Debug, Deserialize)]
pub(super) struct WireStatus {
    #[serde(default)]
    pub id: u64,
    pub status: String,
    #[serde(default)]
    pub context: String,
    #[serde(default)]
    pub target_url: Option<String>,
}

/// `GET …/commits/{ref}/status`. A commit without statuses comes back as an empty object
/// with `statuses: null`.
#[derive(Debug, Deserialize)]
pub(super) struct CombinedStatus {
    #[serde(default)]
    pub total_count: Option<u64>,
    #[serde(default)]
    pub statuses: Option<Vec<WireStatus>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireRun {
    pub id: u64,
    #[serde(default)]
    pub workflow_id: String,
    #[serde(default)]
    pub title: String,
    pub status: String,
    #[serde(default)]
    pub commit_sha: String,
    #[serde(default)]
    pub html_url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RunList {
    #[serde(default)]
    pub total_count: Option<u64>,
    #[serde(default)]
    pub workflow_runs: Option<Vec<WireRun>>,
}
