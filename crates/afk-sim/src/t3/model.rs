//! The simulated T3 read model and its mechanics: projects, threads, messages, activities,
//! and turns that progress on the simulated clock.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::{ScriptedTurn, State, TokenCounts, TurnCompletion, TurnOutcome};

/// Shared immutable text (turn ids, message bodies repeated across a seeded fleet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared(Arc<str>);

impl Shared {
    pub fn from(s: impl Into<Arc<str>>) -> Shared {
        Shared(s.into())
    }
}

impl std::ops::Deref for Shared {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Shared {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A timestamp serialized as upstream does (`DateTime.formatIso`: milliseconds, `Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ts(pub DateTime<Utc>);

impl Serialize for Ts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.format("%Y-%m-%dT%H:%M:%S%.3fZ"))
    }
}

#[derive(Debug, Clone)]
pub struct Project {
    pub id: String,
    pub title: String,
    pub workspace_root: String,
    pub created_at: Ts,
    pub updated_at: Ts,
    pub deleted_at: Option<Ts>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TurnState {
    Running,
    Interrupted,
    Completed,
    Error,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Turn {
    pub turn_id: Shared,
    pub state: TurnState,
    pub requested_at: Ts,
    pub started_at: Option<Ts>,
    pub completed_at: Option<Ts>,
    pub assistant_message_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub thread_id: String,
    pub status: &'static str,
    pub provider_name: Option<&'static str>,
    pub runtime_mode: String,
    pub active_turn_id: Option<Shared>,
    pub last_error: Option<String>,
    pub updated_at: Ts,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub role: &'static str,
    pub text: Shared,
    pub turn_id: Option<Shared>,
    pub streaming: bool,
    pub created_at: Ts,
    pub updated_at: Ts,
    /// Turns started on the thread when this was written (for `turnLimit` windows).
    #[serde(skip)]
    pub turn_no: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Question {
    pub id: String,
    pub header: &'static str,
    pub question: String,
    pub options: Vec<QuestionOption>,
    pub multi_select: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuestionOption {
    pub label: String,
    pub description: String,
}

/// An activity payload (upstream's `payload: unknown`), in the shapes the kinds carry.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
pub enum Payload {
    Approval {
        request_id: String,
        request_kind: &'static str,
        detail: String,
    },
    UserInput {
        request_id: String,
        questions: Vec<Question>,
    },
    Resolved {
        request_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        decision: Option<String>,
    },
    ContextWindow {
        used_tokens: u64,
        total_processed_tokens: u64,
        max_tokens: u64,
        input_tokens: u64,
        cached_input_tokens: u64,
        output_tokens: u64,
        last_input_tokens: u64,
        last_cached_input_tokens: u64,
        last_output_tokens: u64,
    },
    Tool {
        tool_name: &'static str,
        input: Shared,
    },
    Error {
        message: String,
    },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    pub id: String,
    pub tone: &'static str,
    pub kind: &'static str,
    pub summary: Cow<'static, str>,
    pub payload: Payload,
    pub turn_id: Option<Shared>,
    pub sequence: u64,
    pub created_at: Ts,
    #[serde(skip)]
    pub turn_no: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub turn_id: Shared,
    pub checkpoint_turn_count: u32,
    pub checkpoint_ref: String,
    pub status: &'static str,
    pub files: [(); 0],
    pub assistant_message_id: Option<String>,
    pub completed_at: Ts,
}

/// Where the running turn of a thread is.
#[derive(Debug, Clone)]
pub enum Phase {
    /// Requested; the session reports `running` at this instant.
    Pending { start_at: DateTime<Utc> },
    /// Running; the scripted outcome happens at this instant.
    Running { until: DateTime<Utc> },
    /// Waiting for an answer to this request id.
    Waiting { request_id: String },
}

#[derive(Debug, Clone)]
pub struct ActiveTurn {
    pub turn_id: Shared,
    pub number: u32,
    pub text: Shared,
    pub requested_at: DateTime<Utc>,
    pub phase: Phase,
    pub script: ScriptedTurn,
    pub duration: i64,
    /// Requests reported so far (one `context-window.updated` each).
    pub requests_reported: u32,
    /// When the session first reported the turn running (requests are spread from here).
    pub running_since: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct Thread {
    pub id: String,
    pub project_id: String,
    pub title: String,
    pub model_selection: serde_json::Value,
    pub runtime_mode: String,
    pub interaction_mode: String,
    pub branch: Option<String>,
    pub worktree_path: Option<String>,
    pub latest_turn: Option<Turn>,
    pub created_at: Ts,
    pub updated_at: Ts,
    pub archived_at: Option<Ts>,
    pub deleted_at: Option<Ts>,
    pub messages: Vec<Message>,
    pub activities: Vec<Activity>,
    pub checkpoints: Vec<Checkpoint>,
    pub session: Option<Session>,
    pub active: Option<ActiveTurn>,
    pub turns_started: u32,
    pub tokens_total: TokenCounts,
}

impl Thread {
    pub fn new(
        id: String,
        project_id: String,
        title: String,
        model_selection: serde_json::Value,
        runtime_mode: String,
        interaction_mode: String,
        at: DateTime<Utc>,
    ) -> Thread {
        Thread {
            id,
            project_id,
            title,
            model_selection,
            runtime_mode,
            interaction_mode,
            branch: None,
            worktree_path: None,
            latest_turn: None,
            created_at: Ts(at),
            updated_at: Ts(at),
            archived_at: None,
            deleted_at: None,
            messages: Vec::new(),
            activities: Vec::new(),
            checkpoints: Vec::new(),
            session: None,
            active: None,
            turns_started: 0,
            tokens_total: TokenCounts {
                input: 0,
                cached_input: 0,
                output: 0,
            },
        }
    }

    /// Open approval requests, oldest first: `(requestId, summary)`.
    pub fn pending_approvals(&self) -> Vec<(&str, &str)> {
        self.pending("approval.requested", "approval.resolved")
    }
    /// Open user-input requests, oldest first.
    pub fn pending_user_input(&self) -> Vec<(&str, &str)> {
        self.pending("user-input.requested", "user-input.resolved")
    }
    fn pending(&self, opened: &str, resolved: &str) -> Vec<(&str, &str)> {
        let mut open: Vec<(&str, &str)> = Vec::new();
        for a in &self.activities {
            let id = match &a.payload {
                Payload::Approval { request_id, .. }
                | Payload::UserInput { request_id, .. }
                | Payload::Resolved { request_id, .. } => request_id.as_str(),
                _ => continue,
            };
            if a.kind == opened {
                open.push((id, &a.summary));
            } else if a.kind == resolved {
                open.retain(|(r, _)| *r != id);
            }
        }
        open
    }
    pub fn latest_user_message_at(&self) -> Option<Ts> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.created_at)
    }
    pub fn is_visible(&self) -> bool {
        self.deleted_at.is_none() && self.archived_at.is_none()
    }
}

impl State {
    pub(super) fn bump(&mut self, at: DateTime<Utc>) -> u64 {
        self.sequence += 1;
        self.updated_at = Some(self.updated_at.map_or(at, |u| u.max(at)));
        self.sequence
    }

    pub(super) fn updated_at(&self) -> Ts {
        Ts(self.updated_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH))
    }

    pub(super) fn project(&self, id: &str) -> Option<&Project> {
        self.project_index
            .get(id)
            .and_then(|&i| self.projects.get(i))
    }

    pub(super) fn thread_mut(&mut self, id: &str) -> Option<&mut Thread> {
        let i = *self.thread_index.get(id)?;
        self.threads.get_mut(i)
    }

    pub(super) fn push_project(&mut self, p: Project) {
        self.project_index.insert(p.id.clone(), self.projects.len());
        self.projects.push(p);
    }

    pub(super) fn push_thread(&mut self, t: Thread) {
        self.thread_index.insert(t.id.clone(), self.threads.len());
        self.threads.push(t);
    }

    pub(super) fn projects(&self) -> &[Project] {
        &self.projects
    }
    pub(super) fn threads(&self) -> &[Thread] {
        &self.threads
    }
    pub(super) fn thread_ref(&self, id: &str) -> Option<&Thread> {
        self.thread(id)
    }

    pub(super) fn projects_mut(&mut self) -> &mut Vec<Project> {
        &mut self.projects
    }

    /// Starts a turn: records the user message and a pending turn start.
    pub(super) fn start_turn(
        &mut self,
        thread_id: &str,
        message_id: &str,
        text: &str,
        message_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<u64> {
        let script = self
            .scripts
            .get_mut(thread_id)
            .and_then(|q| q.pop_front())
            .unwrap_or_default();
        let duration = script
            .duration_secs
            .or_else(|| self.durations.get(thread_id).copied())
            .unwrap_or(self.timing.duration_secs)
            .max(0);
        let start_delay = self.timing.start_delay_secs.max(0);
        let seq = self.bump(now);
        let t = self.thread_mut(thread_id)?;
        t.turns_started += 1;
        let number = t.turns_started;
        let turn_id: Shared = Shared::from(format!("turn-{}-{number}", t.id));
        let text: Shared = Shared::from(text);
        t.messages.push(Message {
            id: message_id.to_owned(),
            role: "user",
            text: text.clone(),
            turn_id: Some(turn_id.clone()),
            streaming: false,
            created_at: Ts(message_at),
            updated_at: Ts(message_at),
            turn_no: number,
        });
        t.session = Some(Session {
            thread_id: t.id.clone(),
            status: "starting",
            provider_name: Some("claudeAgent"),
            runtime_mode: t.runtime_mode.clone(),
            active_turn_id: None,
            last_error: None,
            updated_at: Ts(now),
        });
        t.updated_at = Ts(now);
        t.active = Some(ActiveTurn {
            turn_id,
            number,
            text,
            requested_at: now,
            phase: Phase::Pending {
                start_at: now + TimeDelta::seconds(start_delay),
            },
            script,
            duration,
            requests_reported: 0,
            running_since: None,
        });
        Some(seq)
    }

    /// Progresses every active turn up to `now`; returns the turns that completed.
    pub(super) fn settle(&mut self, now: DateTime<Utc>) -> Vec<TurnCompletion> {
        let mut done = Vec::new();
        let active: Vec<usize> = self
            .threads
            .iter()
            .enumerate()
            .filter(|(_, t)| t.active.is_some())
            .map(|(i, _)| i)
            .collect();
        for i in active {
            while let Some(step) = self.next_step(i, now) {
                if let Some(c) = self.apply_step(i, step) {
                    done.push(c);
                }
            }
        }
        self.auto_archive(now);
        done
    }

    /// The auto-archive janitor of 0.0.34 (T3 Code `apps/server/src/autoArchive/
    /// AutoArchiveJanitor.ts`): with `autoArchiveSettledAfter` set, it sweeps every 10 minutes
    /// (`AUTO_ARCHIVE_POLL_INTERVAL`) and archives each thread that is not archived, has no
    /// pending approval or question, whose session is not `starting`/`running`, and whose last
    /// activity (latest user message, or the latest turn's requested/started/completed time;
    /// no thread here carries a `settledOverride`) is at least that long ago. The simulator
    /// sweeps when it is next asked anything at or after the sweep's time.
    fn auto_archive(&mut self, now: DateTime<Utc>) {
        let Some(after) = self
            .auto_archive_after_secs
            .filter(|_| self.version.auto_archives())
        else {
            return;
        };
        if self
            .last_archive_sweep
            .is_some_and(|l| now < l + TimeDelta::minutes(10))
        {
            return;
        }
        self.last_archive_sweep = Some(now);
        let window = TimeDelta::seconds(after.max(0));
        let mut archived = Vec::new();
        for t in &self.threads {
            if t.archived_at.is_some() || t.deleted_at.is_some() {
                continue;
            }
            if !t.pending_approvals().is_empty() || !t.pending_user_input().is_empty() {
                continue;
            }
            let status = t.session.as_ref().map(|s| s.status);
            if matches!(status, Some("starting" | "running")) || t.active.is_some() {
                continue;
            }
            let turn = t.latest_turn.as_ref();
            let last = [
                t.latest_user_message_at().map(|m| m.0),
                turn.map(|l| l.requested_at.0),
                turn.and_then(|l| l.started_at.map(|s| s.0)),
                turn.and_then(|l| l.completed_at.map(|c| c.0)),
            ]
            .into_iter()
            .flatten()
            .max();
            if last.is_some_and(|l| now - l >= window) {
                archived.push(t.id.clone());
            }
        }
        for id in archived {
            // `thread.archive` with a server-minted command id: an event like any other.
            self.bump(now);
            if let Some(t) = self.thread_mut(&id) {
                t.archived_at = Some(Ts(now));
                t.updated_at = Ts(now);
            }
        }
    }

    fn next_step(&self, i: usize, now: DateTime<Utc>) -> Option<Step> {
        let a = self.threads.get(i)?.active.as_ref()?;
        match &a.phase {
            Phase::Pending { start_at } if *start_at <= now => Some(Step::Start(*start_at)),
            Phase::Running { until } => match a.next_request_at() {
                Some(at) if at <= now && at < *until => Some(Step::Request(at)),
                _ if *until <= now => Some(Step::Outcome(*until)),
                _ => None,
            },
            _ => None,
        }
    }

    fn apply_step(&mut self, i: usize, step: Step) -> Option<TurnCompletion> {
        let at = match step {
            Step::Start(at) | Step::Request(at) | Step::Outcome(at) => at,
        };
        let seq = self.bump(at);
        let workspace_root = {
            let pid = &self.threads.get(i)?.project_id;
            self.project(pid).map(|p| p.workspace_root.clone())
        };
        let t = self.threads.get_mut(i)?;
        let a = t.active.clone()?;
        match step {
            Step::Start(at) => {
                t.latest_turn = Some(Turn {
                    turn_id: a.turn_id.clone(),
                    state: TurnState::Running,
                    requested_at: Ts(a.requested_at),
                    started_at: Some(Ts(at)),
                    completed_at: None,
                    assistant_message_id: None,
                });
                t.set_session("running", Some(a.turn_id.clone()), None, at);
                if let Some(active) = t.active.as_mut() {
                    active.phase = Phase::Running {
                        until: at + TimeDelta::seconds(a.duration),
                    };
                    active.running_since.get_or_insert(at);
                }
                None
            }
            Step::Request(at) => {
                let next = a.requests_reported + 1;
                t.report_requests(next, at, seq);
                None
            }
            Step::Outcome(at) => {
                t.record_tokens(at, seq);
                t.outcome(&a, at, seq, workspace_root)
            }
        }
    }
}

impl Thread {
    fn outcome(
        &mut self,
        a: &ActiveTurn,
        at: DateTime<Utc>,
        seq: u64,
        workspace_root: Option<String>,
    ) -> Option<TurnCompletion> {
        let t = self;
        match &a.script.outcome {
            TurnOutcome::Complete => {
                t.finish(a, TurnState::Completed, None, at, seq);
                Some(TurnCompletion {
                    project_id: t.project_id.clone(),
                    thread_id: t.id.clone(),
                    worktree_path: t
                        .worktree_path
                        .clone()
                        .or(workspace_root)
                        .unwrap_or_default(),
                    branch: t.branch.clone(),
                    turn_number: a.number,
                    message_text: a.text.to_string(),
                    completed_at: at,
                })
            }
            TurnOutcome::Error { message } => {
                t.push_activity(
                    a,
                    "error",
                    "runtime.error",
                    Cow::Owned(message.clone()),
                    Payload::Error {
                        message: message.clone(),
                    },
                    at,
                    seq,
                );
                t.finish(a, TurnState::Error, Some(message.clone()), at, seq);
                None
            }
            TurnOutcome::AskApproval { summary } => {
                let request_id = format!("req-{}-{}", a.turn_id, t.activities.len() + 1);
                t.push_activity(
                    a,
                    "approval",
                    "approval.requested",
                    Cow::Owned(summary.clone()),
                    Payload::Approval {
                        request_id: request_id.clone(),
                        request_kind: "command",
                        detail: summary.clone(),
                    },
                    at,
                    seq,
                );
                t.wait(request_id);
                None
            }
            TurnOutcome::AskUserInput { question } => {
                let request_id = format!("req-{}-{}", a.turn_id, t.activities.len() + 1);
                t.push_activity(
                    a,
                    "info",
                    "user-input.requested",
                    Cow::Owned(question.clone()),
                    Payload::UserInput {
                        request_id: request_id.clone(),
                        questions: vec![Question {
                            id: question.clone(),
                            header: "Question",
                            question: question.clone(),
                            options: vec![QuestionOption {
                                label: "Yes".into(),
                                description: "Go ahead".into(),
                            }],
                            multi_select: false,
                        }],
                    },
                    at,
                    seq,
                );
                t.wait(request_id);
                None
            }
        }
    }
}

impl State {
    /// Ends the thread's active turn as interrupted (interrupt, session stop, delete).
    pub(super) fn interrupt_turn(
        &mut self,
        thread_id: &str,
        session_status: &'static str,
        now: DateTime<Utc>,
    ) {
        let seq = self.sequence;
        let Some(t) = self.thread_mut(thread_id) else {
            return;
        };
        let had_active = t.active.is_some();
        if let Some(a) = t.active.clone() {
            t.finish(&a, TurnState::Interrupted, None, now, seq);
        }
        if t.session.is_some() && (had_active || session_status == "stopped") {
            t.set_session(session_status, None, None, now);
        }
    }

    /// Answers an open request; the turn runs again for its duration, then completes.
    pub(super) fn answer(
        &mut self,
        thread_id: &str,
        request_id: &str,
        resolved_kind: &'static str,
        decision: Option<String>,
        now: DateTime<Utc>,
        seq: u64,
    ) {
        let Some(t) = self.thread_mut(thread_id) else {
            return;
        };
        let waiting = t.active.as_ref().is_some_and(
            |a| matches!(&a.phase, Phase::Waiting { request_id: r } if r == request_id),
        );
        let Some(a) = t.active.clone().filter(|_| waiting) else {
            // Upstream accepts the command; the provider then fails to find the request.
            let a = ActiveTurnRef::none();
            t.push_activity_raw(
                a,
                "error",
                "provider.request.respond.failed",
                Cow::Owned(format!("Unknown pending request {request_id}")),
                Payload::Error {
                    message: format!("Unknown pending request {request_id}"),
                },
                now,
                seq,
            );
            return;
        };
        let summary = if resolved_kind == "approval.resolved" {
            "Approval resolved"
        } else {
            "User input submitted"
        };
        t.push_activity(
            &a,
            "info",
            resolved_kind,
            Cow::Borrowed(summary),
            Payload::Resolved {
                request_id: request_id.to_owned(),
                decision,
            },
            now,
            seq,
        );
        if let Some(active) = t.active.as_mut() {
            active.script.outcome = TurnOutcome::Complete;
            active.phase = Phase::Running {
                until: now + TimeDelta::seconds(a.duration),
            };
        }
    }
}

enum Step {
    Start(DateTime<Utc>),
    /// The next model request reports its usage.
    Request(DateTime<Utc>),
    Outcome(DateTime<Utc>),
}

impl ActiveTurn {
    fn requests(&self) -> u32 {
        self.script
            .requests
            .unwrap_or(super::DEFAULT_REQUESTS)
            .max(1)
    }

    /// When the next request reports: request k of n at `k/n` of the running time (the last
    /// one with the outcome).
    fn next_request_at(&self) -> Option<DateTime<Utc>> {
        let n = self.requests();
        let since = self.running_since?;
        if self.requests_reported >= n {
            return None;
        }
        let k = i64::from(self.requests_reported + 1);
        let millis = self.duration.max(0) * 1_000 * k / i64::from(n);
        Some(since + TimeDelta::milliseconds(millis))
    }
}

/// The turn an activity belongs to (none for thread-level activities).
struct ActiveTurnRef {
    turn_id: Option<Shared>,
}

impl ActiveTurnRef {
    fn none() -> ActiveTurnRef {
        ActiveTurnRef { turn_id: None }
    }
}

impl Thread {
    fn set_session(
        &mut self,
        status: &'static str,
        active_turn_id: Option<Shared>,
        last_error: Option<String>,
        at: DateTime<Utc>,
    ) {
        self.session = Some(Session {
            thread_id: self.id.clone(),
            status,
            provider_name: Some("claudeAgent"),
            runtime_mode: self.runtime_mode.clone(),
            active_turn_id,
            last_error,
            updated_at: Ts(at),
        });
        self.updated_at = Ts(at);
    }

    /// Reports the active turn's requests up to the `upto`-th, one `context-window.updated`
    /// each, as T3 projects a provider's usage report (`thread.token-usage.updated` →
    /// `context-window.updated` in `ProviderRuntimeIngestion.ts`): `inputTokens` (cached part
    /// included), `cachedInputTokens`, `outputTokens` and their `last*` twins describe that one
    /// request (Claude: `lastClaudeUsageIteration`; Codex: `tokenUsage.last`); only
    /// `totalProcessedTokens` is the thread's running total.
    fn report_requests(&mut self, upto: u32, at: DateTime<Utc>, seq: u64) {
        let Some(a) = self.active.clone() else {
            return;
        };
        let n = a.requests();
        let upto = upto.min(n);
        let turn = a.script.tokens.unwrap_or_default();
        for k in a.requests_reported + 1..=upto {
            let share = |v: u64| {
                let base = v / u64::from(n);
                if k == n {
                    v - base * u64::from(n - 1)
                } else {
                    base
                }
            };
            let request = TokenCounts {
                input: share(turn.input),
                cached_input: share(turn.cached_input),
                output: share(turn.output),
            };
            let total = &mut self.tokens_total;
            total.input += request.input;
            total.cached_input += request.cached_input;
            total.output += request.output;
            let processed = total.input + total.output;
            self.push_activity(
                &a,
                "info",
                "context-window.updated",
                Cow::Borrowed("Context window updated"),
                Payload::ContextWindow {
                    used_tokens: request.input,
                    total_processed_tokens: processed,
                    max_tokens: 200_000,
                    input_tokens: request.input,
                    cached_input_tokens: request.cached_input,
                    output_tokens: request.output,
                    last_input_tokens: request.input,
                    last_cached_input_tokens: request.cached_input,
                    last_output_tokens: request.output,
                },
                at,
                seq,
            );
        }
        if let Some(active) = self.active.as_mut() {
            active.requests_reported = active.requests_reported.max(upto);
        }
    }

    /// Reports every request of the active turn not reported yet (the turn's outcome).
    fn record_tokens(&mut self, at: DateTime<Utc>, seq: u64) {
        self.report_requests(u32::MAX, at, seq);
    }

    fn wait(&mut self, request_id: String) {
        if let Some(active) = self.active.as_mut() {
            active.phase = Phase::Waiting { request_id };
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push_activity(
        &mut self,
        a: &ActiveTurn,
        tone: &'static str,
        kind: &'static str,
        summary: Cow<'static, str>,
        payload: Payload,
        at: DateTime<Utc>,
        seq: u64,
    ) {
        let r = ActiveTurnRef {
            turn_id: Some(a.turn_id.clone()),
        };
        self.push_activity_raw(r, tone, kind, summary, payload, at, seq);
    }

    #[allow(clippy::too_many_arguments)]
    fn push_activity_raw(
        &mut self,
        r: ActiveTurnRef,
        tone: &'static str,
        kind: &'static str,
        summary: Cow<'static, str>,
        payload: Payload,
        at: DateTime<Utc>,
        seq: u64,
    ) {
        let n = self.activities.len() + 1;
        self.activities.push(Activity {
            id: format!("act-{}-{n}", self.id),
            tone,
            kind,
            summary,
            payload,
            turn_id: r.turn_id,
            sequence: seq,
            created_at: Ts(at),
            turn_no: self.turns_started,
        });
        self.updated_at = Ts(at);
    }

    /// Settles the active turn: latest turn state, session, and for a turn that ran to the end
    /// the assistant message, the token usage and a checkpoint.
    fn finish(
        &mut self,
        a: &ActiveTurn,
        state: TurnState,
        error: Option<String>,
        at: DateTime<Utc>,
        seq: u64,
    ) {
        let started_at = match (&a.phase, &self.latest_turn) {
            (Phase::Pending { .. }, _) => None,
            (_, Some(t)) if t.turn_id == a.turn_id => t.started_at,
            _ => None,
        };
        let mut assistant_message_id = None;
        if state != TurnState::Interrupted {
            self.record_tokens(at, seq);
        }
        if state == TurnState::Completed {
            let id = format!("{}-assistant", a.turn_id);
            self.messages.push(Message {
                id: id.clone(),
                role: "assistant",
                text: Shared::from(format!("Finished: {}", first_line(&a.text))),
                turn_id: Some(a.turn_id.clone()),
                streaming: false,
                created_at: Ts(at),
                updated_at: Ts(at),
                turn_no: self.turns_started,
            });
            self.checkpoints.push(Checkpoint {
                turn_id: a.turn_id.clone(),
                checkpoint_turn_count: a.number,
                checkpoint_ref: format!("refs/t3/checkpoints/{}/turn/{}", self.id, a.number),
                status: "ready",
                files: [],
                assistant_message_id: Some(id.clone()),
                completed_at: Ts(at),
            });
            assistant_message_id = Some(id);
        }
        self.latest_turn = Some(Turn {
            turn_id: a.turn_id.clone(),
            state,
            requested_at: Ts(a.requested_at),
            started_at,
            completed_at: Some(Ts(at)),
            assistant_message_id,
        });
        let status = match state {
            TurnState::Error => "error",
            _ => "ready",
        };
        self.set_session(status, None, error, at);
        self.active = None;
    }
}

fn first_line(text: &str) -> &str {
    let line = text.lines().next().unwrap_or("");
    match line.char_indices().nth(80) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}
