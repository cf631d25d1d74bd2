//! What the poll tick gathers before deciding: facts about enrolled repos and their
//! ready issues. Adapters fill these in; [`crate::policy`] turns them into a selection.

use serde::{Deserialize, Serialize};

use crate::model::{IssueNumber, Login, RepoName, Timestamp};

/// A collaborator's permission on a repo, as the forge's permission endpoint reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// Forgejo's repo owner.
    Owner,
    Admin,
    Maintain,
    Write,
    Triage,
    Read,
    None,
    /// The permission could not be established (403, 404, an unknown value): untrusted.
    Unknown(String),
}

impl Permission {
    /// `admin`/`write` and above may arm an issue.
    pub fn may_arm(&self) -> bool {
        matches!(
            self,
            Permission::Owner | Permission::Admin | Permission::Maintain | Permission::Write
        )
    }
}

/// The most recent `labeled` event for the ready label, with its actor's permission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelEvent {
    pub actor: Login,
    /// GitHub `actor.type == "Bot"` or `performed_via_github_app` set; Forgejo bot accounts.
    pub actor_is_bot: bool,
    pub at: Timestamp,
    pub permission: Permission,
}

/// One timeline entry: who, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub actor: Login,
    pub at: Timestamp,
}

/// State of an issue named in a `Blocked by` reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "detail")]
pub enum BlockerState {
    Open,
    Closed,
    /// Could not be resolved (unknown repo, 404, parse failure): blocks, fail closed.
    Unresolvable(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blocker {
    /// As written or resolved, e.g. `#12` or `owner/repo#12`.
    pub reference: String,
    pub state: BlockerState,
}

/// An open issue carrying the ready label, and what the tick learned about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateIssue {
    pub number: IssueNumber,
    pub title: String,
    pub is_pull_request: bool,
    pub open: bool,
    pub labels: Vec<String>,
    /// `None`: no `labeled` event for the ready label was found (unattributable → untrusted).
    pub ready_label: Option<LabelEvent>,
    /// When the body was last edited, where the forge can tell (GitHub GraphQL `lastEditedAt`).
    pub body_edited_at: Option<Timestamp>,
    /// The newest title change recorded after the ready labelling (GitHub `renamed` events,
    /// Forgejo `change_title` timeline entries).
    #[serde(default)]
    pub title_edited_at: Option<Timestamp>,
    /// Where the forge shows no body edit time (Forgejo): the issue's `updated_at`, which a
    /// body edit moves. Later than the labelling and not explained by afk's own activity, it is
    /// edit evidence (see [`crate::policy`]).
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    /// Timeline entries (comments, label changes, events) recorded after the ready labelling.
    #[serde(default)]
    pub activity_after_label: Vec<Activity>,
    pub blockers: Vec<Blocker>,
}

/// One enrolled repo as seen by the poll tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoFacts {
    pub repo: RepoName,
    /// Issues carrying the ready label (open; pull requests included so they can be skipped).
    pub issues: Vec<CandidateIssue>,
    /// Issues, open or closed, carrying the lock label: the repo's live runs.
    pub locked_issues: Vec<IssueNumber>,
    /// An afk thread of this repo is running in T3 even though no issue holds the lock
    /// (e.g. the lock label was removed by hand): the repo is busy all the same.
    pub t3_thread_running: bool,
}

/// Everything one poll tick decides on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PollFacts {
    pub repos: Vec<RepoFacts>,
    /// Live runs across all enrolled repos (issues carrying the lock label).
    pub live_runs: u32,
    /// Threads T3 reports as running (human threads included).
    pub t3_busy_threads: u32,
}
