//! What afk reads from and writes to an issue tracker, independent of the forge.
//!
//! [`Tracker`] is a closed set of backends (GitHub, Forgejo); both return these types, so the
//! ticks never see a forge's wire format.

use afk_core::evidence::CloseReason;
use afk_core::facts::Permission;
use afk_core::model::{IssueNumber, Login, Timestamp};

use crate::forgejo::Forgejo;
use crate::github::GitHub;

/// An issue (or, on list endpoints, a pull request) as afk needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub number: IssueNumber,
    pub title: String,
    /// Empty when the forge says `null`.
    pub body: String,
    pub open: bool,
    pub close_reason: Option<CloseReason>,
    pub labels: Vec<String>,
    pub is_pull_request: bool,
    pub author: Login,
    pub html_url: String,
    pub updated_at: Timestamp,
    /// Number of comments, when the forge reports it (lets a tick skip listing none).
    pub comments: Option<u64>,
}

/// Which issues a listing returns, by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueState {
    Open,
    Closed,
    All,
}

impl IssueState {
    /// The `state` query value both forges use.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueState::Open => "open",
            IssueState::Closed => "closed",
            IssueState::All => "all",
        }
    }
}

/// A label being added to or removed from an issue.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelChange {
    pub label: String,
    pub added: bool,
    pub actor: Login,
    pub actor_is_bot: bool,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    pub id: u64,
    pub author: Login,
    pub body: String,
    pub created_at: Timestamp,
}

/// A commit on a branch.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub sha: String,
    pub message: String,
    pub html_url: String,
    pub committed_at: Timestamp,
}

pub use afk_core::evidence::{CiSignal, SignalState};

/// The tracker backends.
#[derive(Debug, Clone)]
pub enum Tracker {
    GitHub(GitHub),
    Forgejo(Forgejo),
}

/// How a permission lookup turned out; anything but a clear grant is untrusted.
pub fn permission_from_str(s: &str) -> Permission {
    match s {
        "owner" => Permission::Owner,
        "admin" => Permission::Admin,
        "maintain" => Permission::Maintain,
        "write" => Permission::Write,
        "triage" => Permission::Triage,
        "read" => Permission::Read,
        "none" => Permission::None,
        other => Permission::Unknown(other.to_owned()),
    }
}
