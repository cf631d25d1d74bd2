//! The plan a tick prints (INTERFACES §3): what it dispatched or skipped, what it decided for
//! each live run, the effects, and the errors. Serializes to exactly the documented JSON shape.

use serde::{Deserialize, Serialize};

use crate::effect::Effect;
use crate::model::{IssueNumber, RepoName, RunId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TickKind {
    Poll,
    Watch,
}

/// Why an issue was not dispatched (stable kebab-case names, INTERFACES §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    KillSwitch,
    NotAllowlisted,
    RepoPaused,
    NotAnIssue,
    HasHumanLabel,
    UntrustedLabeler,
    EditedAfterLabel,
    Blocked,
    RepoBusy,
    AtCapacity,
    T3Busy,
    LowerPriority,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::KillSwitch => "kill-switch",
            SkipReason::NotAllowlisted => "not-allowlisted",
            SkipReason::RepoPaused => "repo-paused",
            SkipReason::NotAnIssue => "not-an-issue",
            SkipReason::HasHumanLabel => "has-human-label",
            SkipReason::UntrustedLabeler => "untrusted-labeler",
            SkipReason::EditedAfterLabel => "edited-after-label",
            SkipReason::Blocked => "blocked",
            SkipReason::RepoBusy => "repo-busy",
            SkipReason::AtCapacity => "at-capacity",
            SkipReason::T3Busy => "t3-busy",
            SkipReason::LowerPriority => "lower-priority",
        }
    }
}

/// What the state machine decided for a live run (stable names, INTERFACES §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Wait,
    Done,
    FixForward,
    NeedsHuman,
    Frozen,
    ResumeDispatch,
    /// Agent work that would be started is held back by the kill switch.
    Hold,
    /// A person took the run over, or an orphan lock was released (extension).
    Released,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Wait => "wait",
            Decision::Done => "done",
            Decision::FixForward => "fix-forward",
            Decision::NeedsHuman => "needs-human",
            Decision::Frozen => "frozen",
            Decision::ResumeDispatch => "resume-dispatch",
            Decision::Hold => "hold",
            Decision::Released => "released",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchEntry {
    pub repo: RepoName,
    pub issue: IssueNumber,
    pub run: RunId,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkipEntry {
    /// Absent only for tick-wide skips (the kill switch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<RepoName>,
    /// Absent for repo-wide skips (a configured repo that is not allowlisted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue: Option<IssueNumber>,
    pub reason: SkipReason,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEntry {
    pub repo: RepoName,
    pub issue: IssueNumber,
    /// Absent when no run record could be read (orphan lock, corrupt record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunId>,
    /// The phase the run is in (`claimed`, `agent`, `ci`, `deploy`, `finished`, …).
    pub phase: String,
    pub decision: Decision,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<RepoName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue: Option<IssueNumber>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunId>,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub tick: TickKind,
    pub dry_run: bool,
    pub kill_switch: bool,
    pub dispatch: Vec<DispatchEntry>,
    pub skipped: Vec<SkipEntry>,
    pub runs: Vec<RunEntry>,
    pub effects: Vec<Effect>,
    pub errors: Vec<ErrorEntry>,
}

impl Plan {
    pub fn new(tick: TickKind, dry_run: bool, kill_switch: bool) -> Plan {
        Plan {
            tick,
            dry_run,
            kill_switch,
            dispatch: Vec::new(),
            skipped: Vec::new(),
            runs: Vec::new(),
            effects: Vec::new(),
            errors: Vec::new(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"errors\":[{{\"error\":\"{e}\"}}]}}"))
    }
}
