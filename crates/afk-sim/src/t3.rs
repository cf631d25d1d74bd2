//! Simulator of T3 Code's orchestration HTTP API, strict and stateful, per the shared T3 wire
//! facts: version-dependent reads (`/snapshot`, `/shell`, `/threads/:id`), the SPA catch-all,
//! scoped bearer auth, strict dispatch validation, the decider's domain rules, `commandId`
//! idempotency, and turns that run on the simulated clock.
//!
//! Turns are evaluated lazily: every request first settles the world up to `sim.now()` (the
//! clock stands still until a test advances it), so a turn started at `t` is `running` from
//! `t + start_delay` and settles at `t + start_delay + duration`, unless scripted otherwise.
//! A scenario can run code when a turn completes through a [`TurnHook`] (e.g. push a commit to
//! the tracker simulator); hooks run after the T3 lock is released.

mod dispatch;
mod model;
mod routes;
mod seed;
mod wire;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::infra::lock;
use crate::world::World;

pub use routes::{control, router};
pub use seed::seed_history;

use model::{Project, Thread};

/// Which upstream release the simulator behaves like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum T3Version {
    /// The pilot's release: full `/snapshot` only; `/shell` and `/threads/:id` fall through to
    /// the web app (200 `text/html`).
    #[serde(rename = "0.0.27")]
    V0_0_27,
    /// `/shell`, `/threads/:id?turnLimit=N`, and a light `/snapshot` (no messages, activities
    /// or checkpoints); unique active `workspaceRoot`; server-side `createdAt`.
    #[default]
    #[serde(rename = "0.0.33")]
    V0_0_33,
    /// 0.0.33 plus the auto-archive janitor (`apps/server/src/autoArchive/AutoArchiveJanitor.ts`
    /// in T3 Code after 0.0.33; the release number is this simulator's label for it): every
    /// 10 minutes it archives threads settled longer than the server setting
    /// `autoArchiveSettledAfter` ([`State::auto_archive_after_secs`]). An archived thread leaves
    /// `/shell`, its detail answers 404, and `/snapshot` still lists it with `archivedAt`.
    #[serde(rename = "0.0.34")]
    V0_0_34,
}

impl T3Version {
    pub fn server_version(self) -> &'static str {
        match self {
            T3Version::V0_0_27 => "0.0.27",
            T3Version::V0_0_33 => "0.0.33",
            T3Version::V0_0_34 => "0.0.34",
        }
    }
    /// Newer than the pilot's 0.0.27 (every behaviour the simulator models for 0.0.29+).
    pub fn modern(self) -> bool {
        self != T3Version::V0_0_27
    }
    /// `/shell` and `/threads/:id` exist (v0.0.29+).
    pub fn has_shell(self) -> bool {
        self.modern()
    }
    /// `/snapshot` omits messages, activities and checkpoints (v0.0.32+).
    pub fn light_snapshot(self) -> bool {
        self.modern()
    }
    /// Settled threads are archived by the server's janitor.
    pub fn auto_archives(self) -> bool {
        self == T3Version::V0_0_34
    }
}

/// What a scripted turn does when its running time is up.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TurnOutcome {
    /// The turn completes (and the [`TurnHook`] runs).
    #[default]
    Complete,
    /// The provider fails: the turn ends in `error`, the session in `error` with this message.
    Error { message: String },
    /// The agent asks for approval (`approval.requested`) and waits for
    /// `thread.approval.respond`; then it runs again for the same duration and completes.
    AskApproval { summary: String },
    /// The agent asks a question (`user-input.requested`) and waits for
    /// `thread.user-input.respond`; then it runs again and completes.
    AskUserInput { question: String },
}

/// Token counts one turn adds to a thread, in all: the turn spreads them over its model
/// requests ([`ScriptedTurn::requests`]), one `context-window.updated` per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenCounts {
    pub input: u64,
    pub cached_input: u64,
    pub output: u64,
}

impl Default for TokenCounts {
    fn default() -> Self {
        TokenCounts {
            input: 24_000,
            cached_input: 18_000,
            output: 2_500,
        }
    }
}

/// The script of the next turn started on a thread.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptedTurn {
    #[serde(default)]
    pub outcome: TurnOutcome,
    /// Running time; absent = the thread's or the default duration.
    #[serde(default)]
    pub duration_secs: Option<i64>,
    /// Tokens the turn uses; absent = [`TokenCounts::default`].
    #[serde(default)]
    pub tokens: Option<TokenCounts>,
    /// Model requests the turn makes (each reported on its own, spread evenly over the running
    /// time); absent = [`DEFAULT_REQUESTS`].
    #[serde(default)]
    pub requests: Option<u32>,
}

/// Requests a turn makes when its script does not say: an agent turn is many small requests.
pub const DEFAULT_REQUESTS: u32 = 12;

/// Default turn timing on the simulated clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnTiming {
    /// From `thread.turn.start` to the session reporting `running` (until then `latestTurn`
    /// still describes the previous turn, as upstream).
    pub start_delay_secs: i64,
    /// From `running` to the outcome.
    pub duration_secs: i64,
}

impl Default for TurnTiming {
    fn default() -> Self {
        TurnTiming {
            start_delay_secs: 5,
            duration_secs: 600,
        }
    }
}

/// A turn that completed, as handed to the [`TurnHook`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnCompletion {
    pub project_id: String,
    pub thread_id: String,
    /// `thread.worktreePath ?? project.workspaceRoot` (the agent's cwd).
    pub worktree_path: String,
    pub branch: Option<String>,
    /// 1-based count of turns started on the thread.
    pub turn_number: u32,
    /// The user message that started the turn.
    pub message_text: String,
    pub completed_at: DateTime<Utc>,
}

/// Scenario code run when a turn completes, after the T3 lock is released.
pub type TurnHook = Arc<dyn Fn(&World, &TurnCompletion) + Send + Sync>;

/// How a received command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CommandOutcome {
    Accepted {
        sequence: u64,
    },
    /// A resend of a known `commandId`, answered with the original receipt.
    Replayed {
        sequence: u64,
    },
    /// 500 `orchestration_dispatch_failed`; `reason` is what upstream only logs.
    Rejected {
        reason: String,
    },
    /// 400 `invalid_command` (normalization failed).
    Invalid {
        reason: String,
    },
    /// 400 `HttpApiSchemaError`.
    Schema {
        message: String,
    },
    /// 401 or 403.
    Unauthorized {
        status: u16,
    },
}

/// One `POST /api/orchestration/dispatch` as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandRecord {
    /// `type`, when the body had one.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub command_id: Option<String>,
    pub body: serde_json::Value,
    pub outcome: CommandOutcome,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Receipt {
    Accepted { aggregate: String, sequence: u64 },
    Rejected { aggregate: String, reason: String },
}

/// Everything the simulated T3 server knows.
pub struct State {
    pub version: T3Version,
    pub timing: TurnTiming,
    /// bearer token -> granted scopes
    tokens: BTreeMap<String, BTreeSet<String>>,
    projects: Vec<Project>,
    project_index: HashMap<String, usize>,
    threads: Vec<Thread>,
    thread_index: HashMap<String, usize>,
    sequence: u64,
    receipts: HashMap<String, Receipt>,
    commands: Vec<CommandRecord>,
    scripts: HashMap<String, VecDeque<ScriptedTurn>>,
    durations: HashMap<String, i64>,
    hook: Option<TurnHook>,
    traces: u64,
    updated_at: Option<DateTime<Utc>>,
    /// The server setting `autoArchiveSettledAfter` (0.0.34): `None` (upstream's default) never
    /// archives.
    pub auto_archive_after_secs: Option<i64>,
    /// When the janitor last swept.
    last_archive_sweep: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("version", &self.version)
            .field("projects", &self.projects.len())
            .field("threads", &self.threads.len())
            .field("sequence", &self.sequence)
            .field("commands", &self.commands.len())
            .field("hook", &self.hook.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for State {
    fn default() -> Self {
        State::new(T3Version::default())
    }
}

/// The scopes afk needs.
pub const READ_SCOPE: &str = "orchestration:read";
pub const OPERATE_SCOPE: &str = "orchestration:operate";

impl State {
    pub fn new(version: T3Version) -> State {
        State {
            version,
            timing: TurnTiming::default(),
            tokens: BTreeMap::new(),
            projects: Vec::new(),
            project_index: HashMap::new(),
            threads: Vec::new(),
            thread_index: HashMap::new(),
            sequence: 0,
            receipts: HashMap::new(),
            commands: Vec::new(),
            scripts: HashMap::new(),
            durations: HashMap::new(),
            hook: None,
            traces: 0,
            auto_archive_after_secs: None,
            last_archive_sweep: None,
            updated_at: None,
        }
    }
    pub fn set_version(&mut self, version: T3Version) {
        self.version = version;
    }
    /// Grants a bearer token these scopes (replacing earlier grants of the same token).
    pub fn add_token(&mut self, token: &str, scopes: &[&str]) {
        self.tokens.insert(
            token.to_owned(),
            scopes.iter().map(|s| (*s).to_owned()).collect(),
        );
    }
    pub fn revoke_token(&mut self, token: &str) {
        self.tokens.remove(token);
    }
    /// Queues the script of the next turn started on `thread_id` (the thread need not exist yet).
    pub fn script_next_turn(&mut self, thread_id: &str, turn: ScriptedTurn) {
        self.scripts
            .entry(thread_id.to_owned())
            .or_default()
            .push_back(turn);
    }
    /// Running time of every unscripted turn on `thread_id`.
    pub fn set_turn_duration(&mut self, thread_id: &str, secs: i64) {
        self.durations.insert(thread_id.to_owned(), secs.max(0));
    }
    pub fn set_turn_hook(&mut self, hook: TurnHook) {
        self.hook = Some(hook);
    }
    /// The hook `set_turn_hook` installed, if any (to wrap it).
    pub fn turn_hook(&self) -> Option<TurnHook> {
        self.hook.clone()
    }
    /// Every dispatch received, in order.
    pub fn commands(&self) -> &[CommandRecord] {
        &self.commands
    }
    /// Ids of every thread the server knows, deleted ones included, in creation order.
    pub fn thread_ids(&self) -> Vec<String> {
        self.threads.iter().map(|t| t.id.clone()).collect()
    }
    /// Ids of every project, deleted ones included.
    pub fn project_ids(&self) -> Vec<String> {
        self.projects.iter().map(|p| p.id.clone()).collect()
    }
    /// The event-store sequence of the last event.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }
    /// Whether the thread is archived (it then leaves `/shell`).
    pub fn is_archived(&self, thread_id: &str) -> bool {
        self.thread(thread_id)
            .is_some_and(|t| t.archived_at.is_some())
    }
    /// Number of turns started on a thread (0 when unknown).
    pub fn turns_started(&self, thread_id: &str) -> u32 {
        self.thread(thread_id).map_or(0, |t| t.turns_started)
    }
    fn thread(&self, id: &str) -> Option<&Thread> {
        self.thread_index.get(id).and_then(|&i| self.threads.get(i))
    }
    fn next_trace(&mut self) -> String {
        self.traces += 1;
        format!("{:016x}", self.traces.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
}

/// Settles every turn up to the simulated `now` and runs the turn hooks for turns that
/// completed. Scenarios call this to fire hooks without a request; every T3 request does it too.
pub fn settle(world: &World) {
    let now = world.sim.now();
    let (hook, done) = {
        let mut st = lock(&world.t3);
        let done = st.settle(now);
        (st.hook.clone(), done)
    };
    run_hooks(world, hook, &done);
}

fn run_hooks(world: &World, hook: Option<TurnHook>, done: &[TurnCompletion]) {
    if let Some(hook) = hook {
        for c in done {
            hook(world, c);
        }
    }
}

#[cfg(test)]
mod tests;
