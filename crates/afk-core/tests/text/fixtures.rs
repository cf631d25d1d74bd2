//! Builders for run records and times, so tests read like the story they check.

use afk_core::evidence::Check;
use afk_core::model::{RepoName, RunId, Timestamp};
use afk_core::record::{
    Channel, CheckSummary, FixAttempt, PhaseState, PushRecord, Question, RECORD_VERSION, RunRecord,
    RunStatus, Verdict, VerdictRecord,
};

/// 2025-03-01 09:00 UTC plus `minutes`.
pub fn at(minutes: i64) -> Timestamp {
    let base = chrono::DateTime::from_timestamp(1_740_819_600, 0).expect("valid base time");
    base + chrono::Duration::minutes(minutes)
}

pub fn repo() -> RepoName {
    "octo/shop".parse().expect("repo")
}

pub fn run_id() -> RunId {
    RunId::new(repo(), 42, 1)
}

pub const THREAD_URL: &str = "https://t3.example.test/threads/afk-octo__shop-42-1";
pub const ISSUE_URL: &str = "https://github.com/octo/shop/issues/42";

pub fn check(name: &str, url: Option<&str>) -> Check {
    Check {
        name: name.to_owned(),
        url: url.map(str::to_owned),
    }
}

/// A run record, built up phase by phase: `RecordBuilder::claimed().dispatched().pushed(..)`.
pub struct RecordBuilder(RunRecord);

impl RecordBuilder {
    /// Run `octo__shop-42-1`, claimed at minute 0, nothing else happened yet.
    pub fn claimed() -> Self {
        let run = run_id();
        RecordBuilder(RunRecord {
            v: RECORD_VERSION,
            repo: repo(),
            issue: 42,
            status: RunStatus::Claimed,
            claimed_at: at(0),
            branch: run.branch(),
            worktree: format!("/data/afk/worktrees/octo__shop/{run}"),
            project_id: "afk-octo__shop".to_owned(),
            thread_id: format!("afk-{run}"),
            text_sha256: None,
            dispatch_attempts: 1,
            dispatch_error: None,
            dispatch_started_at: at(0),
            dispatched_at: None,
            last_turn_at: None,
            turn_before: None,
            thread_missing_since: None,
            idle_unpushed_since: None,
            t3_unreachable_since: None,
            t3_outage_paged: Vec::new(),
            push: None,
            ci: None,
            deploy: None,
            first_red_at: None,
            fixes: Vec::new(),
            spend_usd: 0.0,
            spend_turns: Vec::new(),
            question: None,
            verdict: None,
            run,
        })
    }

    pub fn dispatch_failed(mut self, attempts: u32, error: &str) -> Self {
        self.0.dispatch_attempts = attempts;
        self.0.dispatch_error = Some(error.to_owned());
        self
    }

    /// The first turn started at minute 2.
    pub fn dispatched(mut self) -> Self {
        self.0.status = RunStatus::Dispatched;
        self.0.dispatched_at = Some(at(2));
        self.0.last_turn_at = Some(at(2));
        self
    }

    /// Commit `sha` seen on the default branch at minute 40.
    pub fn pushed(mut self, sha: &str) -> Self {
        self.0.push = Some(PushRecord {
            sha: sha.to_owned(),
            url: format!("https://github.com/octo/shop/commit/{sha}"),
            seen_at: at(40),
        });
        self
    }

    pub fn ci(mut self, state: PhaseState, checks: Vec<afk_core::evidence::Check>) -> Self {
        if state == PhaseState::Red && self.0.first_red_at.is_none() {
            self.0.first_red_at = Some(at(45));
        }
        self.0.ci = Some(CheckSummary {
            state,
            checks,
            detail: String::new(),
        });
        self
    }

    pub fn deploy(mut self, state: PhaseState, detail: &str) -> Self {
        self.0.deploy = Some(CheckSummary {
            state,
            checks: Vec::new(),
            detail: detail.to_owned(),
        });
        self
    }

    /// A corrective turn for `sha` at `minute`.
    pub fn fix(mut self, sha: &str, failing: &[&str], minute: i64) -> Self {
        self.0.fixes.push(FixAttempt {
            sha: sha.to_owned(),
            failing: failing.iter().map(|s| (*s).to_owned()).collect(),
            at: at(minute),
        });
        self.0.last_turn_at = Some(at(minute));
        self
    }

    pub fn spend(mut self, usd: f64) -> Self {
        self.0.spend_usd = usd;
        self
    }

    pub fn question(mut self, kind: &str, text: &str) -> Self {
        self.0.question = Some(Question {
            kind: kind.to_owned(),
            text: text.to_owned(),
        });
        self
    }

    /// The verdict reached at `minute`; doorbells not yet delivered.
    pub fn verdict(mut self, verdict: Verdict, reason: &str, minute: i64) -> Self {
        self.0.status = RunStatus::Finished;
        self.0.verdict = Some(VerdictRecord {
            verdict,
            reason: reason.to_owned(),
            at: at(minute),
            notify_pending: vec![Channel::Ntfy, Channel::Slack],
            notified: Vec::new(),
            notify_failures: 0,
            notify_given_up: Vec::new(),
        });
        self
    }

    pub fn delivered(mut self, sent: &[Channel], pending: &[Channel], failures: u32) -> Self {
        if let Some(v) = self.0.verdict.as_mut() {
            v.notified = sent.to_vec();
            v.notify_pending = pending.to_vec();
            v.notify_failures = failures;
        }
        self
    }

    /// T3 could not be read since `minute`; the outage was paged on `paged`.
    pub fn t3_unreachable(mut self, minute: i64, paged: &[Channel]) -> Self {
        self.0.t3_unreachable_since = Some(at(minute));
        self.0.t3_outage_paged = paged.to_vec();
        self
    }

    pub fn build(self) -> RunRecord {
        self.0
    }
}
