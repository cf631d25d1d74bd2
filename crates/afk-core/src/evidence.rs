//! What the watch tick gathers about one live run before deciding (SPEC §4).

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

/// Why a closed issue was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    Completed,
    NotPlanned,
    Duplicate,
    /// Forgejo has no reasons; GitHub may omit it.
    Unspecified,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueFacts {
    pub open: bool,
    /// Set when closed.
    pub close_reason: Option<CloseReason>,
    pub labels: Vec<String>,
    pub title: String,
    pub html_url: String,
}

/// `latestTurn.state` in T3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TurnState {
    Running,
    Completed,
    Interrupted,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnFacts {
    pub turn_id: String,
    pub state: TurnState,
    pub requested_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
}

/// A question the agent is waiting on (unattended runs must not ask).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PendingRequest {
    Approval { summary: String },
    UserInput { question: String },
}

/// Token usage from `context-window.updated` activities.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input: u64,
    pub cached_input: u64,
    pub output: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ThreadEvidence {
    /// Not in T3's fleet read (or deleted).
    Missing,
    Present {
        /// `None`: no turn has started yet (T3 records a pending start first).
        latest_turn: Option<TurnFacts>,
        /// Session status, e.g. `running`, `ready`, `error`.
        session_status: Option<String>,
        session_error: Option<String>,
        pending: Option<PendingRequest>,
        /// From thread detail, when it was read.
        tokens: Option<TokenUsage>,
    },
}

/// The newest commit on the default branch after dispatch that belongs to this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedCommit {
    pub sha: String,
    pub at: Timestamp,
    pub url: String,
    pub message_first_line: String,
}

/// One CI check or status context.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub url: Option<String>,
}

/// One CI signal as a provider reports it (a check run, a status context, a workflow run, a
/// pipeline), already mapped to three states by the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiSignal {
    pub name: String,
    pub url: Option<String>,
    pub state: SignalState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignalState {
    Pending,
    Success,
    Failure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum CiVerdict {
    /// Nothing pushed yet, so nothing to check.
    NotApplicable,
    /// No report yet, or some checks still running.
    Pending {
        checks: Vec<Check>,
    },
    Green {
        checks: Vec<Check>,
    },
    Red {
        failing: Vec<Check>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum DeployVerdict {
    /// The repo has no deploy target: the phase is skipped.
    NoTarget,
    /// Nothing pushed yet, or CI not green yet.
    NotApplicable,
    /// Template image not on the commit yet, or rollout in progress.
    Pending {
        detail: String,
    },
    Healthy {
        detail: String,
    },
    Failed {
        detail: String,
    },
}

/// Everything known about one live run this tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub issue: IssueFacts,
    pub thread: ThreadEvidence,
    pub push: Option<PushedCommit>,
    pub ci: CiVerdict,
    pub deploy: DeployVerdict,
}
