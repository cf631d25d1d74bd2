//! Effects: what a tick decided to do, as plain data.
//!
//! The core only produces these; the tick applies them in order, and `--dry-run` prints them.
//! Every effect is idempotent when applied twice (labels, close/reopen, deterministic T3
//! command ids, "ensure" semantics for workspaces and projects), which is what makes a crash
//! between any two effects recoverable.

use serde::{Deserialize, Serialize};

use crate::evidence::CloseReason;
use crate::model::{IssueNumber, RepoName, RunId};
use crate::record::Channel;

/// One rendered doorbell message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub title: String,
    /// Markdown body.
    pub message: String,
    /// ntfy priority 1..=5 (done 2, needs-human 4, frozen 5).
    pub priority: u8,
    pub tags: Vec<String>,
    /// The issue link (what a tap opens).
    pub click: String,
    /// The T3 thread deep link.
    pub thread_url: String,
}

/// Everything needed to start the agent on a claimed run. Applying it is
/// an idempotent procedure: ensure the worktree, ensure the project, create the thread unless
/// it exists, start the first turn unless it was started, all with deterministic ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchSpec {
    pub branch: String,
    pub worktree: String,
    pub default_branch: Option<String>,
    pub project_id: String,
    pub project_title: String,
    /// The repo's bare mirror, the project's workspace root.
    pub project_root: String,
    pub thread_id: String,
    pub thread_title: String,
    pub message_id: String,
    /// Command ids, unique per run, step and dispatch attempt.
    pub project_command_id: String,
    pub thread_command_id: String,
    pub turn_command_id: String,
    pub prompt: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Effect {
    AddLabel {
        repo: RepoName,
        issue: IssueNumber,
        label: String,
    },
    /// Idempotent: a label already gone is success.
    RemoveLabel {
        repo: RepoName,
        issue: IssueNumber,
        label: String,
    },
    /// Create the run's status comment (`comment_id: None`) or edit it in place.
    UpsertStatusComment {
        repo: RepoName,
        issue: IssueNumber,
        run: RunId,
        comment_id: Option<u64>,
        body: String,
    },
    /// A plain comment (e.g. explaining why an orphan lock was released).
    PostComment {
        repo: RepoName,
        issue: IssueNumber,
        body: String,
    },
    CloseIssue {
        repo: RepoName,
        issue: IssueNumber,
        reason: CloseReason,
    },
    ReopenIssue {
        repo: RepoName,
        issue: IssueNumber,
    },
    Dispatch {
        repo: RepoName,
        issue: IssueNumber,
        run: RunId,
        spec: Box<DispatchSpec>,
    },
    /// A corrective turn in the run's thread.
    StartTurn {
        repo: RepoName,
        issue: IssueNumber,
        run: RunId,
        thread_id: String,
        command_id: String,
        message_id: String,
        prompt: String,
    },
    Interrupt {
        repo: RepoName,
        issue: IssueNumber,
        run: RunId,
        thread_id: String,
        command_id: String,
    },
    RemoveWorktree {
        repo: RepoName,
        run: RunId,
        worktree: String,
    },
    Notify {
        repo: RepoName,
        issue: IssueNumber,
        run: RunId,
        channel: Channel,
        notice: Notice,
    },
}

impl Effect {
    /// Stable kebab-case name, as in the JSON plan.
    pub fn kind(&self) -> &'static str {
        match self {
            Effect::AddLabel { .. } => "add-label",
            Effect::RemoveLabel { .. } => "remove-label",
            Effect::UpsertStatusComment { .. } => "upsert-status-comment",
            Effect::PostComment { .. } => "post-comment",
            Effect::CloseIssue { .. } => "close-issue",
            Effect::ReopenIssue { .. } => "reopen-issue",
            Effect::Dispatch { .. } => "dispatch",
            Effect::StartTurn { .. } => "start-turn",
            Effect::Interrupt { .. } => "interrupt",
            Effect::RemoveWorktree { .. } => "remove-worktree",
            Effect::Notify { .. } => "notify",
        }
    }

    pub fn repo(&self) -> &RepoName {
        match self {
            Effect::AddLabel { repo, .. }
            | Effect::RemoveLabel { repo, .. }
            | Effect::UpsertStatusComment { repo, .. }
            | Effect::PostComment { repo, .. }
            | Effect::CloseIssue { repo, .. }
            | Effect::ReopenIssue { repo, .. }
            | Effect::Dispatch { repo, .. }
            | Effect::StartTurn { repo, .. }
            | Effect::Interrupt { repo, .. }
            | Effect::RemoveWorktree { repo, .. }
            | Effect::Notify { repo, .. } => repo,
        }
    }

    /// Starts or continues agent work: never produced while the kill switch is on.
    pub fn starts_agent_work(&self) -> bool {
        matches!(self, Effect::Dispatch { .. } | Effect::StartTurn { .. })
    }
}
