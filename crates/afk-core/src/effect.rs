//! Effects: what a tick decided to do, as plain data.
//!
//! The core only produces these; the tick applies them in order, and `--dry-run` prints them.
//! Every effect is idempotent when applied twice (labels, close/reopen, deterministic T3
//! command ids, "ensure" semantics for workspaces and projects), which is what makes a crash
//! between any two effects recoverable.

use serde::{Deserialize, Serialize};

use crate::evidence::CloseReason;
use crate::model::{IssueNumber, RepoName, RunId, Timestamp};
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

/// Why a run's clone is removed (stable kebab-case names, as in the JSON plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorktreeRemoval {
    /// The run is done: its work is on the default branch.
    #[default]
    Done,
    /// Kept for a person (needs-human, frozen) for longer than `workspace.retain_days`.
    Expired,
    /// The volume is fuller than `workspace.evict_above_percent`: finished clones go, oldest
    /// first.
    Evicted,
    /// A removal an earlier tick began and did not finish (`<run id>.removing`).
    Unfinished,
}

impl WorktreeRemoval {
    pub fn as_str(self) -> &'static str {
        match self {
            WorktreeRemoval::Done => "done",
            WorktreeRemoval::Expired => "expired",
            WorktreeRemoval::Evicted => "evicted",
            WorktreeRemoval::Unfinished => "unfinished",
        }
    }
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
    /// Removes a run's clone (and its leftovers: a half-built or half-removed clone, the
    /// retained marker) without running git in it. Idempotent: a clone already gone is success.
    RemoveWorktree {
        repo: RepoName,
        run: RunId,
        worktree: String,
        #[serde(default)]
        reason: WorktreeRemoval,
    },
    /// Keeps a run's clone for a person (needs-human, frozen): marks it retained since `since`,
    /// so housekeeping removes it only after `workspace.retain_days` and never evicts it
    /// before. Idempotent: marking again with the same time changes nothing.
    RetainWorktree {
        repo: RepoName,
        run: RunId,
        worktree: String,
        since: Timestamp,
    },
    /// Removes the half-built clone (`<run id>.partial`) a tick left behind when it died, of a
    /// run that is no longer live. The clone in place, if any, stays.
    RemovePartialClone {
        repo: RepoName,
        run: RunId,
        path: String,
    },
    /// Removes one of `workspace.cache_dirs` to bring the volume under
    /// `workspace.evict_above_percent`.
    RemoveCacheDir {
        path: String,
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
            Effect::RetainWorktree { .. } => "retain-worktree",
            Effect::RemovePartialClone { .. } => "remove-partial-clone",
            Effect::RemoveCacheDir { .. } => "remove-cache-dir",
            Effect::Notify { .. } => "notify",
        }
    }

    /// The repo the effect belongs to; `None` for workspace-wide housekeeping (a cache folder).
    pub fn repo(&self) -> Option<&RepoName> {
        Some(match self {
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
            | Effect::RetainWorktree { repo, .. }
            | Effect::RemovePartialClone { repo, .. }
            | Effect::Notify { repo, .. } => repo,
            Effect::RemoveCacheDir { .. } => return None,
        })
    }

    /// Starts or continues agent work: never produced while the kill switch is on.
    pub fn starts_agent_work(&self) -> bool {
        matches!(self, Effect::Dispatch { .. } | Effect::StartTurn { .. })
    }
}
