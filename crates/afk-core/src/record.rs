//! The run record: everything a later tick needs about a run, carried in the status comment
//! as versioned JSON. afk keeps no other state.

use serde::{Deserialize, Serialize};

use crate::evidence::Check;
use crate::model::{IssueNumber, RepoName, RunId, Timestamp};

/// Bumped on any incompatible change; a record of another version goes to a human.
pub const RECORD_VERSION: u32 = 1;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Lock taken and comment written; the agent is not running yet.
    Claimed,
    /// The first turn was started in T3.
    Dispatched,
    /// A verdict was reached; labels and doorbells may still be finishing.
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Done,
    NeedsHuman,
    Frozen,
    /// A person took the run over (human label, or closed as not planned). No doorbell.
    Released,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Done => "done",
            Verdict::NeedsHuman => "needs-human",
            Verdict::Frozen => "frozen",
            Verdict::Released => "released",
        }
    }
}

/// A doorbell channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    Ntfy,
    Slack,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictRecord {
    pub verdict: Verdict,
    pub reason: String,
    pub at: Timestamp,
    /// Doorbell channels that still have to be delivered (removed on success).
    #[serde(default)]
    pub notify_pending: Vec<Channel>,
    /// Doorbell channels delivered successfully.
    #[serde(default)]
    pub notified: Vec<Channel>,
    /// Delivery attempts that failed, for the give-up horizon and the comment.
    #[serde(default)]
    pub notify_failures: u32,
    /// Channels afk stopped retrying after the give-up horizon; the lock was released anyway.
    #[serde(default)]
    pub notify_given_up: Vec<Channel>,
}

/// What one agent turn cost, as far as afk has seen (the largest estimate seen for it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnSpend {
    /// T3's `turnId` (empty when the activities carried none).
    pub turn: String,
    /// Estimated USD, to the micro-dollar.
    pub usd: f64,
    /// Model requests counted (`context-window.updated` activities that reported new tokens).
    pub requests: u64,
}

/// The commit the run pushed, as first observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRecord {
    pub sha: String,
    pub url: String,
    /// When afk first saw it (the CI timeout counts from here).
    pub seen_at: Timestamp,
}

/// The CI/deploy state the comment shows, so a tick only writes when it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhaseState {
    Pending,
    Green,
    Red,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSummary {
    pub state: PhaseState,
    /// Failing checks when red, all checks otherwise (bounded when rendered).
    #[serde(default)]
    pub checks: Vec<Check>,
    #[serde(default)]
    pub detail: String,
}

/// One corrective turn sent by afk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixAttempt {
    /// The red commit the turn was asked to fix.
    pub sha: String,
    pub failing: Vec<String>,
    pub at: Timestamp,
}

/// A question the agent asked, kept for the comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    pub kind: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Always [`RECORD_VERSION`] when written by this build.
    pub v: u32,
    pub run: RunId,
    pub repo: RepoName,
    pub issue: IssueNumber,
    pub status: RunStatus,
    pub claimed_at: Timestamp,
    /// Branch the agent works on (`afk/<issue>-<run>`).
    pub branch: String,
    /// Absolute worktree path, the same in afk's and T3's pods.
    pub worktree: String,
    pub project_id: String,
    pub thread_id: String,
    /// SHA-256 of the exact title and body that passed the eligibility checks at claim
    /// ([`crate::vetting`]). Every dispatch of the run sends only text with this fingerprint;
    /// `None` in records written before afk kept it (such a run is never re-dispatched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_sha256: Option<String>,
    /// Dispatch attempts started (the claim counts as the first).
    pub dispatch_attempts: u32,
    #[serde(default)]
    pub dispatch_error: Option<String>,
    /// When the latest dispatch attempt started (a resume waits a tick deadline past it).
    pub dispatch_started_at: Timestamp,
    #[serde(default)]
    pub dispatched_at: Option<Timestamp>,
    /// When afk last started a turn (first or corrective), to tell a new turn from the old.
    #[serde(default)]
    pub last_turn_at: Option<Timestamp>,
    /// The id of the turn T3 showed as latest when afk started its last corrective turn: until
    /// another turn is latest, T3 is still describing the old one (no clock comparison, so a
    /// skew between afk's and T3's clocks cannot fake a new turn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn_before: Option<String>,
    /// First tick that found the thread missing from T3 (grace before "thread lost").
    #[serde(default)]
    pub thread_missing_since: Option<Timestamp>,
    /// First tick that found the agent's turn over with no push for this run: "nothing was
    /// pushed" is concluded only on a second look (the forge may list a push a moment late).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_unpushed_since: Option<Timestamp>,
    /// First tick that could not read T3 at all (an outage, not a missing thread); cleared
    /// when T3 answers again. The outage's length, for the page, counts from the earliest of
    /// these among the live runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t3_unreachable_since: Option<Timestamp>,
    /// Channels the current T3 outage was paged on (`t3-unreachable`): every affected run's
    /// record carries the mark, so a later tick sees it whichever run it reads first. Cleared
    /// with [`RunRecord::t3_unreachable_since`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub t3_outage_paged: Vec<Channel>,
    #[serde(default)]
    pub push: Option<PushRecord>,
    #[serde(default)]
    pub ci: Option<CheckSummary>,
    #[serde(default)]
    pub deploy: Option<CheckSummary>,
    /// First time the pushed work was seen red (the fix-forward window counts from here).
    #[serde(default)]
    pub first_red_at: Option<Timestamp>,
    #[serde(default)]
    pub fixes: Vec<FixAttempt>,
    /// Estimated spend so far, USD (never goes down; see [`crate::spend`]).
    #[serde(default)]
    pub spend_usd: f64,
    /// The spend estimate per agent turn, so a turn T3 no longer shows (thread detail windows
    /// to the latest turn) keeps counting. Absent in records written before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spend_turns: Vec<TurnSpend>,
    #[serde(default)]
    pub question: Option<Question>,
    #[serde(default)]
    pub verdict: Option<VerdictRecord>,
}

impl RunRecord {
    /// Number of corrective turns sent.
    pub fn fix_attempts(&self) -> u32 {
        u32::try_from(self.fixes.len()).unwrap_or(u32::MAX)
    }
}
