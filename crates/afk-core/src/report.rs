//! The fleet view (`afk-watch --report`): live runs with their phase, age, spend and links, and
//! the most recent verdicts, built from run records and rendered as text or JSON. Pure: the
//! watch binary gathers the records.

use serde::Serialize;

use crate::ids;
use crate::model::{IssueNumber, RepoName, Timestamp, format_duration};
use crate::record::{PhaseState, RunRecord, RunStatus};

/// How far back recent verdicts are looked for, and how many issues per repo are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentBound {
    /// Only issues updated within this many days are read.
    pub days: u32,
    /// At most this many recently updated issues per repo are read (one page).
    pub issues_per_repo: u32,
    /// At most this many verdicts are shown, newest first.
    pub verdicts: usize,
}

impl Default for RecentBound {
    fn default() -> Self {
        RecentBound {
            days: 7,
            issues_per_repo: 30,
            verdicts: 10,
        }
    }
}

/// One live run (its issue carries the lock label).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveRun {
    pub repo: String,
    pub issue: IssueNumber,
    pub run: String,
    /// `claimed`, `agent`, `ci`, `fixing`, `deploy`, `asked`, `finishing`, or `unknown` when
    /// the lock has no readable record.
    pub phase: String,
    /// Since the claim.
    pub age: String,
    pub age_secs: i64,
    pub spend_usd: f64,
    pub fix_attempts: u32,
    pub issue_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub thread_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub push_url: String,
}

/// One recent verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentVerdict {
    pub repo: String,
    pub issue: IssueNumber,
    pub run: String,
    pub verdict: String,
    pub reason: String,
    pub at: Timestamp,
    pub spend_usd: f64,
    pub issue_url: String,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetReport {
    pub now: Timestamp,
    pub live: Vec<LiveRun>,
    pub recent: Vec<RecentVerdict>,
    /// What could not be read (the report is then partial).
    pub errors: Vec<String>,
    /// How recent verdicts were bounded, in words.
    pub recent_bound: String,
}

/// Where a live run stands, from its record.
pub fn phase(record: &RunRecord) -> &'static str {
    if record.status == RunStatus::Finished || record.verdict.is_some() {
        return "finishing";
    }
    if record.status == RunStatus::Claimed {
        return "claimed";
    }
    if record.question.is_some() {
        return "asked";
    }
    let red = |s: &Option<crate::record::CheckSummary>| {
        s.as_ref().is_some_and(|c| c.state == PhaseState::Red)
    };
    let green = |s: &Option<crate::record::CheckSummary>| {
        s.as_ref()
            .is_some_and(|c| matches!(c.state, PhaseState::Green | PhaseState::Skipped))
    };
    if record.push.is_none() {
        return if record.fixes.is_empty() {
            "agent"
        } else {
            "fixing"
        };
    }
    if red(&record.ci) || red(&record.deploy) {
        return "fixing";
    }
    if green(&record.ci) {
        return "deploy";
    }
    "ci"
}

/// A live run's row. `record` is `None` when the locked issue has no readable record.
pub fn live_run(
    repo: &RepoName,
    issue: IssueNumber,
    issue_url: &str,
    record: Option<&RunRecord>,
    t3_web_url: &str,
    now: Timestamp,
) -> LiveRun {
    let Some(r) = record else {
        return LiveRun {
            repo: repo.to_string(),
            issue,
            run: String::new(),
            phase: "unknown".into(),
            age: "-".into(),
            age_secs: 0,
            spend_usd: 0.0,
            fix_attempts: 0,
            issue_url: issue_url.to_owned(),
            thread_url: String::new(),
            push_url: String::new(),
        };
    };
    let age_secs = (now - r.claimed_at).num_seconds().max(0);
    LiveRun {
        repo: repo.to_string(),
        issue,
        run: r.run.to_string(),
        phase: phase(r).into(),
        age: format_duration(std::time::Duration::from_secs(age_secs.unsigned_abs())),
        age_secs,
        spend_usd: r.spend_usd,
        fix_attempts: r.fix_attempts(),
        issue_url: issue_url.to_owned(),
        thread_url: if r.thread_id.is_empty() || t3_web_url.is_empty() {
            String::new()
        } else {
            ids::thread_url(t3_web_url, &r.thread_id)
        },
        push_url: r.push.as_ref().map(|p| p.url.clone()).unwrap_or_default(),
    }
}

/// A finished run's row, if its record holds a verdict.
pub fn recent_verdict(record: &RunRecord, issue_url: &str) -> Option<RecentVerdict> {
    let v = record.verdict.as_ref()?;
    Some(RecentVerdict {
        repo: record.repo.to_string(),
        issue: record.issue,
        run: record.run.to_string(),
        verdict: v.verdict.as_str().into(),
        reason: v.reason.clone(),
        at: v.at,
        spend_usd: record.spend_usd,
        issue_url: issue_url.to_owned(),
    })
}

impl FleetReport {
    /// Sorts live runs oldest first and keeps the `bound.verdicts` newest verdicts.
    pub fn new(
        now: Timestamp,
        mut live: Vec<LiveRun>,
        mut recent: Vec<RecentVerdict>,
        errors: Vec<String>,
        bound: RecentBound,
    ) -> FleetReport {
        live.sort_by(|a, b| {
            b.age_secs
                .cmp(&a.age_secs)
                .then_with(|| a.repo.cmp(&b.repo))
                .then(a.issue.cmp(&b.issue))
        });
        recent.sort_by(|a, b| {
            b.at.cmp(&a.at)
                .then_with(|| a.repo.cmp(&b.repo))
                .then(a.issue.cmp(&b.issue))
        });
        recent.truncate(bound.verdicts);
        FleetReport {
            now,
            live,
            recent,
            errors,
            recent_bound: format!(
                "the {} newest verdicts among the {} most recently updated issues per repo, updated in the last {} days",
                bound.verdicts, bound.issues_per_repo, bound.days
            ),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    pub fn render_text(&self) -> String {
        let mut out = format!("live runs ({}):\n", self.live.len());
        if self.live.is_empty() {
            out.push_str("  none\n");
        }
        for r in &self.live {
            out.push_str(&format!(
                "  {}#{}  {:<9}  age {:<8}  ${:.2}  fixes {}  {}\n",
                r.repo, r.issue, r.phase, r.age, r.spend_usd, r.fix_attempts, r.issue_url
            ));
            if !r.thread_url.is_empty() {
                out.push_str(&format!("      thread {}\n", r.thread_url));
            }
            if !r.push_url.is_empty() {
                out.push_str(&format!("      push   {}\n", r.push_url));
            }
        }
        out.push_str(&format!("recent verdicts ({}):\n", self.recent.len()));
        if self.recent.is_empty() {
            out.push_str("  none\n");
        }
        for v in &self.recent {
            out.push_str(&format!(
                "  {}#{}  {:<11}  {}  ${:.2}  {}  {}\n",
                v.repo,
                v.issue,
                v.verdict,
                v.at.format("%Y-%m-%d %H:%M"),
                v.spend_usd,
                v.reason.split_whitespace().collect::<Vec<_>>().join(" "),
                v.issue_url
            ));
        }
        out.push_str(&format!("({})\n", self.recent_bound));
        for e in &self.errors {
            out.push_str(&format!("error: {e}\n"));
        }
        out
    }
}
