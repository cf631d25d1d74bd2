//! The plan a tick prints: what it dispatched or skipped, what it decided for
//! each live run, the effects, and the errors. Serializes to exactly the documented JSON shape,
//! and renders as concise text for operators ([`render_text`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::effect::Effect;
use crate::evidence::CloseReason;
use crate::model::{IssueNumber, RepoName, RunId};
use crate::record::Channel;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TickKind {
    Poll,
    Watch,
}

impl TickKind {
    /// `poll` or `watch`, as in the plan's `tick` field.
    pub fn as_str(self) -> &'static str {
        match self {
            TickKind::Poll => "poll",
            TickKind::Watch => "watch",
        }
    }
}

/// Why an issue was not dispatched (stable kebab-case names: the plan's documented interface).
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
    /// A scheduled poll did not read the issue's deep facts: it could not win this tick.
    NotVetted,
    /// The tracker token's rate-limit budget is at the configured reserve.
    RateLimitReserve,
}

impl SkipReason {
    /// Every skip reason, in declaration order.
    pub const ALL: [SkipReason; 14] = [
        SkipReason::KillSwitch,
        SkipReason::NotAllowlisted,
        SkipReason::RepoPaused,
        SkipReason::NotAnIssue,
        SkipReason::HasHumanLabel,
        SkipReason::UntrustedLabeler,
        SkipReason::EditedAfterLabel,
        SkipReason::Blocked,
        SkipReason::RepoBusy,
        SkipReason::AtCapacity,
        SkipReason::T3Busy,
        SkipReason::LowerPriority,
        SkipReason::NotVetted,
        SkipReason::RateLimitReserve,
    ];

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
            SkipReason::NotVetted => "not-vetted",
            SkipReason::RateLimitReserve => "rate-limit-reserve",
        }
    }
}

/// What the state machine decided for a live run (stable names: the plan's documented interface).
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
    /// Every decision, in declaration order.
    pub const ALL: [Decision; 8] = [
        Decision::Wait,
        Decision::Done,
        Decision::FixForward,
        Decision::NeedsHuman,
        Decision::Frozen,
        Decision::ResumeDispatch,
        Decision::Hold,
        Decision::Released,
    ];

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
    /// The run's spend so far in USD, from its record (absent without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend_usd: Option<f64>,
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
    /// A short, sanitised reason fit for the public status comment (no body, path or query);
    /// never printed in the plan. `None`: only the generic reason may be shown.
    #[serde(skip)]
    pub public: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub tick: TickKind,
    pub dry_run: bool,
    pub kill_switch: bool,
    /// The tick's clock when it was pinned for simulation (`AFK_NOW`); absent on the real clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_now: Option<crate::model::Timestamp>,
    pub dispatch: Vec<DispatchEntry>,
    pub skipped: Vec<SkipEntry>,
    pub runs: Vec<RunEntry>,
    pub effects: Vec<Effect>,
    pub errors: Vec<ErrorEntry>,
    /// Configuration that is accepted but probably not what the operator meant (e.g. a
    /// `[repos."o/r"]` section for a repo that is not allowlisted). Absent when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The tracker's rate-limit budget as last seen this tick, and whether the reserve was
    /// reached. Absent where the tracker reports none (Forgejo) or nothing was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<crate::budget::BudgetStatus>,
}

impl Plan {
    pub fn new(tick: TickKind, dry_run: bool, kill_switch: bool) -> Plan {
        Plan {
            tick,
            dry_run,
            kill_switch,
            pinned_now: None,
            dispatch: Vec::new(),
            skipped: Vec::new(),
            runs: Vec::new(),
            effects: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            rate_limit: None,
        }
    }

    /// The plan as indented JSON, for people reading it.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| serialization_failed(&e))
    }

    /// The plan as ONE line of JSON (no newline inside), so a log collector reading the
    /// process's output line by line gets one JSON record per plan.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| serialization_failed(&e))
    }
}

fn serialization_failed(e: &serde_json::Error) -> String {
    serde_json::json!({ "errors": [{ "error": format!("the plan cannot be serialized: {e}") }] })
        .to_string()
}

/// Longest reason, detail or error shown per line of the text plan.
const MAX_TEXT_CHARS: usize = 300;

/// The plan as text for operators: a header (tick, dry run, kill switch), then dispatches,
/// skipped issues grouped by repo, runs, effects (one line each, prompts and comment bodies
/// summarised by their length, never shown) and errors. Outside text is reduced to one line
/// without control characters, so it cannot forge lines or drive the terminal.
pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    let tick = match plan.tick {
        TickKind::Poll => "poll",
        TickKind::Watch => "watch",
    };
    let mode = if plan.dry_run {
        "dry run (nothing was written)"
    } else {
        "applied"
    };
    let switch = if plan.kill_switch {
        "kill switch ON (no agent work)"
    } else {
        "kill switch off"
    };
    let _ = writeln!(out, "afk {tick} tick · {mode} · {switch}");
    if let Some(now) = plan.pinned_now {
        let _ = writeln!(
            out,
            "CLOCK PINNED to {} (simulation only)",
            now.to_rfc3339()
        );
    }

    if let Some(b) = &plan.rate_limit {
        let reached = if b.reserve_reached {
            " · RESERVE REACHED"
        } else {
            ""
        };
        let _ = writeln!(out, "{}{reached}", b.describe());
    }

    section(&mut out, "Dispatch", plan.dispatch.len());
    for d in &plan.dispatch {
        let _ = writeln!(
            out,
            "  {}#{}  run {}  — {}",
            d.repo,
            d.issue,
            d.run,
            one_line(&d.reason)
        );
    }

    section(&mut out, "Skipped", plan.skipped.len());
    let mut by_repo: BTreeMap<Option<&RepoName>, Vec<&SkipEntry>> = BTreeMap::new();
    for s in &plan.skipped {
        by_repo.entry(s.repo.as_ref()).or_default().push(s);
    }
    for (repo, entries) in by_repo {
        match repo {
            Some(repo) => {
                let _ = writeln!(out, "  {repo}");
            }
            None => out.push_str("  (every repo)\n"),
        }
        for s in entries {
            let what = s
                .issue
                .map_or_else(|| "(repo)".to_owned(), |n| format!("#{n}"));
            let _ = write!(out, "    {what}  {}", s.reason.as_str());
            if !s.detail.is_empty() {
                let _ = write!(out, "  — {}", one_line(&s.detail));
            }
            out.push('\n');
        }
    }

    section(&mut out, "Runs", plan.runs.len());
    for r in &plan.runs {
        let run = r
            .run
            .as_ref()
            .map_or_else(|| "(no record)".to_owned(), ToString::to_string);
        let _ = writeln!(
            out,
            "  {}#{}  run {run}  phase {}  → {}  — {}",
            r.repo,
            r.issue,
            one_line(&r.phase),
            r.decision.as_str(),
            one_line(&r.reason)
        );
    }

    section(&mut out, "Effects", plan.effects.len());
    for e in &plan.effects {
        let _ = writeln!(out, "  {}", effect_line(e));
    }

    section(&mut out, "Errors", plan.errors.len());
    for e in &plan.errors {
        let mut place = match (&e.repo, e.issue) {
            (Some(repo), Some(n)) => format!("{repo}#{n}"),
            (Some(repo), None) => repo.to_string(),
            (None, Some(n)) => format!("#{n}"),
            (None, None) => "tick".to_owned(),
        };
        if let Some(run) = &e.run {
            let _ = write!(place, " run {run}");
        }
        let _ = writeln!(out, "  {place}: {}", one_line(&e.error));
    }
    if !plan.warnings.is_empty() {
        section(&mut out, "Warnings", plan.warnings.len());
        for w in &plan.warnings {
            let _ = writeln!(out, "  {}", one_line(w));
        }
    }
    out
}

fn section(out: &mut String, name: &str, count: usize) {
    if count == 0 {
        let _ = writeln!(out, "{name}: none");
    } else {
        let _ = writeln!(out, "{name} ({count}):");
    }
}

/// One effect as one short line: kind, `repo#issue`, then what it carries in brief.
fn effect_line(effect: &Effect) -> String {
    let kind = effect.kind();
    match effect {
        Effect::AddLabel { repo, issue, label } | Effect::RemoveLabel { repo, issue, label } => {
            format!("{kind}  {repo}#{issue}  {}", one_line(label))
        }
        Effect::UpsertStatusComment {
            repo,
            issue,
            run,
            comment_id,
            body,
        } => {
            let target = comment_id.map_or_else(
                || "new comment".to_owned(),
                |id| format!("edit comment {id}"),
            );
            format!(
                "{kind}  {repo}#{issue}  run {run}  {target} ({} chars)",
                body.chars().count()
            )
        }
        Effect::PostComment { repo, issue, body } => {
            format!("{kind}  {repo}#{issue}  ({} chars)", body.chars().count())
        }
        Effect::CloseIssue {
            repo,
            issue,
            reason,
        } => {
            let reason = match reason {
                CloseReason::Completed => "completed",
                CloseReason::NotPlanned => "not planned",
                CloseReason::Duplicate => "duplicate",
                CloseReason::Unspecified => "no reason",
            };
            format!("{kind}  {repo}#{issue}  as {reason}")
        }
        Effect::ReopenIssue { repo, issue } => format!("{kind}  {repo}#{issue}"),
        Effect::Dispatch {
            repo,
            issue,
            run,
            spec,
        } => format!(
            "{kind}  {repo}#{issue}  run {run}  thread {}  branch {}  (prompt {} chars)",
            one_line(&spec.thread_id),
            one_line(&spec.branch),
            spec.prompt.chars().count()
        ),
        Effect::StartTurn {
            repo,
            issue,
            run,
            thread_id,
            command_id,
            prompt,
            ..
        } => format!(
            "{kind}  {repo}#{issue}  run {run}  thread {}  command {}  (prompt {} chars)",
            one_line(thread_id),
            one_line(command_id),
            prompt.chars().count()
        ),
        Effect::Interrupt {
            repo,
            issue,
            run,
            thread_id,
            ..
        } => format!(
            "{kind}  {repo}#{issue}  run {run}  thread {}",
            one_line(thread_id)
        ),
        Effect::RemoveWorktree {
            repo,
            run,
            worktree,
            reason,
        } => format!(
            "{kind}  {repo}  run {run}  {}  ({})",
            one_line(worktree),
            reason.as_str()
        ),
        Effect::RetainWorktree {
            repo,
            run,
            worktree,
            since,
        } => format!(
            "{kind}  {repo}  run {run}  {}  (since {})",
            one_line(worktree),
            since.to_rfc3339()
        ),
        Effect::RemovePartialClone { repo, run, path } => {
            format!("{kind}  {repo}  run {run}  {}", one_line(path))
        }
        Effect::RemoveCacheDir { path } => format!("{kind}  {}", one_line(path)),
        Effect::Notify {
            repo,
            issue,
            run,
            channel,
            notice,
        } => {
            let channel = match channel {
                Channel::Ntfy => "ntfy",
                Channel::Slack => "slack",
            };
            format!(
                "{kind}  {repo}#{issue}  run {run}  {channel}  \"{}\"  priority {}",
                one_line(&notice.title),
                notice.priority
            )
        }
    }
}

/// Outside text as one bounded line: invisible and control characters removed, whitespace
/// (newlines included) collapsed to single spaces.
fn one_line(text: &str) -> String {
    let clean = crate::prompt::sanitize(text);
    let flat = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= MAX_TEXT_CHARS {
        return flat;
    }
    let mut cut: String = flat.chars().take(MAX_TEXT_CHARS - 1).collect();
    cut.push('…');
    cut
}
