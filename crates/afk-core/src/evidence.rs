//! What the watch tick gathers about one live run before deciding.

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

impl CloseReason {
    /// The serialized name (`completed`, `not_planned`, `duplicate`, `unspecified`).
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Completed => "completed",
            CloseReason::NotPlanned => "not_planned",
            CloseReason::Duplicate => "duplicate",
            CloseReason::Unspecified => "unspecified",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueFacts {
    pub open: bool,
    /// Set when closed.
    pub close_reason: Option<CloseReason>,
    pub labels: Vec<String>,
    pub title: String,
    pub html_url: String,
    /// The fingerprint ([`crate::vetting::text_sha256`]) of the issue's title and body as read
    /// this tick; compared with the run record's before any dispatch is resumed.
    #[serde(default)]
    pub text_sha256: Option<String>,
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

/// One `context-window.updated` activity: the token counts of **one model request** (T3 fills
/// them from the provider's per-request usage: Claude's last usage iteration, Codex's
/// `usage.last`). `input` includes the cached part (`cached_input`), as both providers report
/// it; only `total_processed` is cumulative. See [`crate::spend`] for how a run's spend is
/// estimated from these.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input: u64,
    pub cached_input: u64,
    pub output: u64,
    /// `totalProcessedTokens`: the thread's running total when T3 reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_processed: Option<u64>,
    /// The turn the request belongs to (`turnId` of the activity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ThreadEvidence {
    /// Not in T3's fleet read (or deleted).
    Missing,
    /// T3 could not be read this tick (its fleet read failed): nothing is known about the
    /// thread. `error` is the failure, short and free of secrets.
    Unreachable { error: String },
    Present {
        /// `None`: no turn has started yet (T3 records a pending start first).
        latest_turn: Option<TurnFacts>,
        /// Session status, e.g. `running`, `ready`, `error`.
        session_status: Option<String>,
        session_error: Option<String>,
        pending: Option<PendingRequest>,
        /// Every `context-window.updated` in the read, oldest first (thread detail, or a full
        /// snapshot); empty when none was read.
        #[serde(default)]
        tokens: Vec<TokenUsage>,
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

/// Whether a commit message belongs to a run: it carries the run's
/// trailer `AFK-Run: <run id>`, or references the issue with a closing keyword
/// (`Closes #N`, `Fixes #N`, `Resolves #N` and their inflections, case-insensitive).
pub fn commit_belongs(message: &str, run: &crate::model::RunId) -> bool {
    let trailer = format!("afk-run: {run}").to_ascii_lowercase();
    let issue = run.issue();
    message.lines().any(|line| {
        let l = line.trim().to_ascii_lowercase();
        if l == trailer {
            return true;
        }
        closes_issue(&l, issue)
    })
}

const CLOSING_KEYWORDS: [&str; 9] = [
    "close", "closes", "closed", "fix", "fixes", "fixed", "resolve", "resolves", "resolved",
];

fn closes_issue(line: &str, issue: u64) -> bool {
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(2).any(|w| {
        let keyword = w[0].trim_end_matches(':');
        let reference = w[1].trim_end_matches(['.', ';', ':']);
        CLOSING_KEYWORDS.contains(&keyword)
            && reference
                .strip_prefix('#')
                .and_then(|n| n.parse::<u64>().ok())
                == Some(issue)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RunId;

    fn run() -> RunId {
        RunId::new("o/r".parse().expect("repo"), 42, 1)
    }

    #[test]
    fn a_commit_with_the_trailer_or_a_closing_keyword_belongs_to_the_run() {
        assert!(commit_belongs("feat: x\n\nAFK-Run: o__r-42-1", &run()));
        assert!(commit_belongs("feat: healthz (Fixes #42)", &run()));
        assert!(commit_belongs("Closes: #42.", &run()));
        assert!(commit_belongs("resolved #42", &run()));
    }

    #[test]
    fn other_runs_and_mere_mentions_do_not() {
        assert!(!commit_belongs("AFK-Run: o__r-42-2", &run()));
        assert!(!commit_belongs("see #42", &run()));
        assert!(!commit_belongs("Fixes #420", &run()));
        assert!(!commit_belongs("Fixes other/repo#42 and #4", &run()));
    }
}
