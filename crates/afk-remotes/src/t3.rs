//! The T3 Code client: version detection, one fleet read per tick, thread detail, and the
//! orchestration commands afk dispatches (see the shared T3 wire facts).
//!
//! Traps this client handles:
//! - `/shell` and `/threads/:id` exist only from 0.0.29; on older servers unknown GET paths fall
//!   through to the web app, which answers 200 `text/html`, so every read insists on
//!   `content-type: application/json`.
//! - From 0.0.32 `/snapshot` has empty messages and activities; pending requests then come from
//!   `/shell` and token usage from thread detail.
//! - Commands are idempotent by `commandId` (a resend returns the original receipt), so transport
//!   faults and server errors are retried, except a 500 `orchestration_dispatch_failed`: that
//!   is a domain rejection which fails again on every resend ([`T3Rejection::DispatchRejected`]).

mod commands;
mod errors;
mod wire;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use afk_core::evidence::{PendingRequest, TokenUsage, TurnFacts, TurnState};
use afk_core::model::Timestamp;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde::Deserialize;

use crate::error::{ErrorKind, RemoteError, Result, excerpt};
use crate::http::{
    Auth, Body, HttpClient, Request, Response, RetryPolicy, SecretFile, Verdict, judge_status,
};

pub use commands::{
    CreateProject, CreateThread, ModelOption, ModelOptionValue, ModelSelection, RuntimeMode,
    StartTurn,
};
pub use errors::{T3Rejection, rejection};

use errors::{ErrorBody, status_error};
use wire::{DetailW, ReadModel, ThreadW};

const REMOTE: &str = "t3";
/// Statuses T3 answers with a typed body; judged here (`T3::call_with`) rather than in the HTTP
/// layer.
const ANSWERS: &[u16] = &[200, 400, 401, 403, 404, 500];

/// What `/.well-known/t3/environment` says about the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub server_version: String,
    /// `/shell` and `/threads/:id` exist (>= 0.0.29).
    pub has_shell: bool,
    /// `/snapshot` no longer carries messages, activities or checkpoints (>= 0.0.32).
    pub light_snapshot: bool,
}

/// `major.minor.patch` of a version string (`v` prefix and `-pre`/`+build` suffixes ignored;
/// missing parts read as 0).
fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.trim().trim_start_matches('v');
    let core = core.split(['-', '+']).next()?;
    let mut parts = core.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    Some((major, minor, patch))
}

impl Environment {
    /// From a `serverVersion`; `None` when it is not a version.
    pub fn from_version(server_version: &str) -> Option<Environment> {
        let v = parse_version(server_version)?;
        Some(Environment {
            server_version: server_version.to_owned(),
            has_shell: v >= (0, 0, 29),
            light_snapshot: v >= (0, 0, 32),
        })
    }
}

/// Which read a [`Fleet`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetSource {
    /// `/shell`: non-deleted, non-archived threads, with pending flags.
    Shell,
    /// A fully hydrated `/snapshot` (< 0.0.32): every thread, with derived pending requests,
    /// token usage and message ids.
    FullSnapshot,
    /// A light `/snapshot` (>= 0.0.32 without `/shell`): no pending facts.
    LightSnapshot,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectInfo {
    pub id: String,
    pub workspace_root: String,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ThreadInfo {
    pub id: String,
    pub project_id: String,
    pub branch: Option<String>,
    pub worktree_path: Option<String>,
    pub deleted: bool,
    pub archived: bool,
    /// `None` until the first turn runs (T3 records a pending start first).
    pub latest_turn: Option<TurnFacts>,
    pub session_status: Option<String>,
    pub session_error: Option<String>,
    /// `None` when the read cannot tell (a light snapshot).
    pub pending_approval: Option<bool>,
    pub pending_user_input: Option<bool>,
    pub latest_user_message_at: Option<Timestamp>,
    /// Only from a full snapshot; empty otherwise.
    pub message_ids: Vec<String>,
    /// Only from a full snapshot: the open request afk would show (approval first).
    pub pending: Option<PendingRequest>,
    /// Only from a full snapshot (empty otherwise): see [`ThreadDetail::tokens`].
    pub tokens: Vec<TokenUsage>,
}

impl ThreadInfo {
    /// An archived thread as afk judges it: present and settled, with what T3 last showed. T3
    /// archives only threads that are not running (the janitor skips `starting`/`running`
    /// sessions); a turn still marked running is read as interrupted, since nothing runs it.
    pub fn settled_view(&self) -> ThreadInfo {
        let mut t = self.clone();
        if let Some(turn) = t.latest_turn.as_mut()
            && turn.state == TurnState::Running
        {
            turn.state = TurnState::Interrupted;
        }
        if matches!(t.session_status.as_deref(), Some("starting" | "running")) {
            t.session_status = Some("stopped".to_owned());
        }
        t
    }

    /// Running (session running or latest turn running) and visible.
    pub fn is_running(&self) -> bool {
        !self.deleted
            && !self.archived
            && (self.session_status.as_deref() == Some("running")
                || self
                    .latest_turn
                    .as_ref()
                    .is_some_and(|t| t.state == TurnState::Running))
    }
}

/// The whole fleet from one read.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    pub projects: Vec<ProjectInfo>,
    pub threads: Vec<ThreadInfo>,
    pub snapshot_sequence: u64,
    pub source: FleetSource,
}

impl Fleet {
    /// Threads T3 is busy with (the capacity valve; counts human threads too).
    pub fn running_threads(&self) -> usize {
        self.threads.iter().filter(|t| t.is_running()).count()
    }
    pub fn thread(&self, id: &str) -> Option<&ThreadInfo> {
        self.threads.iter().find(|t| t.id == id)
    }
    pub fn project(&self, id: &str) -> Option<&ProjectInfo> {
        self.projects.iter().find(|p| p.id == id)
    }
    /// A live (non-deleted) project using this workspace root.
    pub fn project_for_root(&self, workspace_root: &str) -> Option<&ProjectInfo> {
        let want = workspace_root.trim_end_matches('/');
        self.projects
            .iter()
            .find(|p| !p.deleted && p.workspace_root.trim_end_matches('/') == want)
    }
    /// The facts thread detail would give, for servers without `/threads/:id` (< 0.0.29):
    /// `Some` only for a full snapshot that has the thread.
    pub fn detail_from_snapshot(&self, thread_id: &str) -> Option<ThreadDetail> {
        if self.source != FleetSource::FullSnapshot {
            return None;
        }
        let t = self.thread(thread_id)?;
        Some(ThreadDetail {
            latest_turn: t.latest_turn.clone(),
            pending: t.pending.clone(),
            tokens: t.tokens.clone(),
            message_ids: t.message_ids.clone(),
        })
    }
}

/// What one thread's detail says.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadDetail {
    pub latest_turn: Option<TurnFacts>,
    /// An open approval (its summary) or, failing that, an open question (its text).
    pub pending: Option<PendingRequest>,
    /// Every `context-window.updated` activity in the read, oldest first: one model request's
    /// counters each (not running totals; only `totalProcessedTokens` is cumulative). The core
    /// prices them ([`afk_core::spend`]). On >= 0.0.32 the read is windowed to the latest turn.
    pub tokens: Vec<TokenUsage>,
    /// Ids of the messages in the read (on >= 0.0.32 only the latest turn's window).
    pub message_ids: Vec<String>,
}

impl ThreadDetail {
    pub fn has_message(&self, id: &str) -> bool {
        self.message_ids.iter().any(|m| m == id)
    }
}

/// T3's receipt for an accepted command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Receipt {
    /// Event-store sequence of the command's last event; reads at or after it reflect it.
    pub sequence: u64,
}

/// Path-segment encoding for ids.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The T3 Code client.
#[derive(Debug, Clone)]
pub struct T3 {
    http: HttpClient,
    anonymous: HttpClient,
    token_file: SecretFile,
    environment: Arc<Mutex<Option<Environment>>>,
}

impl T3 {
    pub fn new(base_url: &str, token: SecretFile, policy: RetryPolicy) -> Result<T3> {
        let parsed = url::Url::parse(base_url).map_err(|e| {
            RemoteError::new(
                REMOTE,
                "client",
                ErrorKind::Local(format!(
                    "t3.base_url {base_url:?} is not a URL ({e}); check the config"
                )),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(RemoteError::new(
                REMOTE,
                "client",
                ErrorKind::Local(format!("t3.base_url {base_url:?} must be http or https")),
            ));
        }
        Ok(T3 {
            http: HttpClient::new(
                REMOTE,
                base_url,
                Auth::Bearer(token.clone()),
                policy.clone(),
            )?,
            anonymous: HttpClient::new(REMOTE, base_url, Auth::None, policy)?,
            token_file: token,
            environment: Arc::new(Mutex::new(None)),
        })
    }

    /// `GET /.well-known/t3/environment` (no credential sent).
    pub async fn environment(&self) -> Result<Environment> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct EnvW {
            server_version: String,
        }
        let path = "/.well-known/t3/environment";
        let resp = self.call(&self.anonymous, Request::get(path)).await?;
        let what = HttpClient::describe(&Method::GET, path);
        let body = self.expect_json(&what, &resp)?;
        let env: EnvW = decode(&what, body)?;
        let env = Environment::from_version(&env.server_version).ok_or_else(|| {
            RemoteError::new(
                REMOTE,
                what.clone(),
                ErrorKind::Decode(format!(
                    "serverVersion {:?} is not a version; is this a T3 Code server?",
                    excerpt(env.server_version.as_bytes())
                )),
            )
        })?;
        *self.environment.lock().unwrap_or_else(|p| p.into_inner()) = Some(env.clone());
        Ok(env)
    }

    /// The environment read last (read now if none was).
    pub async fn cached_environment(&self) -> Result<Environment> {
        let cached = self
            .environment
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match cached {
            Some(env) => Ok(env),
            None => self.environment().await,
        }
    }

    /// The whole fleet in one read: `/shell` when the server has it, else `/snapshot`.
    pub async fn fleet(&self, env: &Environment) -> Result<Fleet> {
        let (path, source) = match (env.has_shell, env.light_snapshot) {
            (true, _) => ("/api/orchestration/shell", FleetSource::Shell),
            (false, false) => ("/api/orchestration/snapshot", FleetSource::FullSnapshot),
            (false, true) => ("/api/orchestration/snapshot", FleetSource::LightSnapshot),
        };
        let what = HttpClient::describe(&Method::GET, path);
        let resp = self.call(&self.http, Request::get(path)).await?;
        let body = self.expect_json(&what, &resp)?;
        let started = Instant::now();
        let model: ReadModel<'_> = decode(&what, body)?;
        let fleet = fleet_from(model, source);
        tracing::debug!(
            remote = REMOTE,
            request = %what,
            bytes = body.len(),
            threads = fleet.threads.len(),
            parse_ms = started.elapsed().as_millis() as u64,
            "fleet read"
        );
        Ok(fleet)
    }

    /// `GET /api/orchestration/snapshot` on a server with `/shell`, to find threads the shell
    /// does not list. Newer T3 archives settled threads on its own (the auto-archive janitor,
    /// `apps/server/src/autoArchive/AutoArchiveJanitor.ts`, after 0.0.33); an archived thread
    /// leaves `/shell` and its detail answers 404, but `/snapshot` lists every thread, archived
    /// and deleted ones too, with `archivedAt`, `deletedAt`, `latestTurn` and `session` (light
    /// from 0.0.32: no messages or activities). On a server without `/shell` the fleet read is
    /// this snapshot already.
    pub async fn snapshot_fleet(&self, env: &Environment) -> Result<Fleet> {
        let source = if env.light_snapshot {
            FleetSource::LightSnapshot
        } else {
            FleetSource::FullSnapshot
        };
        let path = "/api/orchestration/snapshot";
        let what = HttpClient::describe(&Method::GET, path);
        let resp = self.call(&self.http, Request::get(path)).await?;
        let body = self.expect_json(&what, &resp)?;
        let model: ReadModel<'_> = decode(&what, body)?;
        Ok(fleet_from(model, source))
    }

    /// `GET /api/orchestration/threads/:id` (`?turnLimit=1` from 0.0.32); `None` when the
    /// thread is missing, deleted or archived. Needs T3 >= 0.0.29; on older servers use
    /// [`Fleet::detail_from_snapshot`].
    pub async fn thread_detail(&self, thread_id: &str) -> Result<Option<ThreadDetail>> {
        let env = self.cached_environment().await?;
        let id = utf8_percent_encode(thread_id, SEGMENT).to_string();
        let path = if env.light_snapshot {
            format!("/api/orchestration/threads/{id}?turnLimit=1")
        } else {
            format!("/api/orchestration/threads/{id}")
        };
        let what = HttpClient::describe(&Method::GET, &path);
        if !env.has_shell {
            return Err(RemoteError::new(
                REMOTE,
                what,
                ErrorKind::Local(format!(
                    "T3 {} has no thread detail over HTTP (needs 0.0.29+); read the facts from the full snapshot",
                    env.server_version
                )),
            ));
        }
        let resp = self
            .call_with(&self.http, Request::get(&path), &[404])
            .await?;
        if resp.status == 404 {
            return Ok(None);
        }
        let body = self.expect_json(&what, &resp)?;
        let detail: DetailW<'_> = decode(&what, body)?;
        Ok(Some(detail_from(detail.thread)))
    }

    pub async fn create_project(&self, cmd: &CreateProject) -> Result<Receipt> {
        self.dispatch(cmd.body()).await
    }

    pub async fn create_thread(&self, cmd: &CreateThread) -> Result<Receipt> {
        self.dispatch(cmd.body()).await
    }

    pub async fn start_turn(&self, cmd: &StartTurn) -> Result<Receipt> {
        self.dispatch(cmd.body()).await
    }

    /// `thread.turn.interrupt` of the thread's running turn.
    pub async fn interrupt(
        &self,
        thread_id: &str,
        command_id: &str,
        created_at: Timestamp,
    ) -> Result<Receipt> {
        self.dispatch(commands::interrupt_body(thread_id, command_id, created_at))
            .await
    }

    /// `thread.delete` (T3 keeps the id reserved and leaves the worktree alone).
    pub async fn delete_thread(&self, thread_id: &str, command_id: &str) -> Result<Receipt> {
        self.dispatch(commands::delete_body(thread_id, command_id))
            .await
    }

    async fn dispatch(&self, body: serde_json::Value) -> Result<Receipt> {
        let path = "/api/orchestration/dispatch";
        let what = HttpClient::describe(&Method::POST, path);
        let kind = body["type"].as_str().unwrap_or("?").to_owned();
        let req = Request::new(Method::POST, path, Some(Body::Json(body))).idempotent(true);
        let resp = self.call(&self.http, req).await?;
        let body = self.expect_json(&what, &resp)?;
        let receipt: Receipt = decode(&what, body)?;
        tracing::info!(remote = REMOTE, command = %kind, sequence = receipt.sequence, "dispatched");
        Ok(receipt)
    }

    async fn call(&self, client: &HttpClient, req: Request<'_>) -> Result<Response> {
        self.call_with(client, req, &[]).await
    }

    /// Sends through the shared retry executor. A 500 that is not a domain rejection is
    /// resent; every other typed answer but 200 and the statuses in `pass` is a typed error;
    /// statuses T3 answers without a typed body get the HTTP layer's judgement (rate limits
    /// waited out, other server errors resent).
    async fn call_with(
        &self,
        client: &HttpClient,
        req: Request<'_>,
        pass: &[u16],
    ) -> Result<Response> {
        let what = HttpClient::describe(&req.method, req.path);
        let token_file = self.token_file.path().display().to_string();
        client
            .send_with(req, |resp| {
                if resp.status == 200 || pass.contains(&resp.status) {
                    return Verdict::Done(resp);
                }
                if !ANSWERS.contains(&resp.status) {
                    return judge_status(REMOTE, &what, resp);
                }
                let rejected =
                    ErrorBody::parse(&resp.body).is_some_and(|b| b.is_dispatch_rejection());
                let error = status_error(&what, resp.status, &resp.body, &token_file);
                if resp.status >= 500 && !rejected {
                    Verdict::Transient(error)
                } else {
                    Verdict::Failed(error)
                }
            })
            .await
    }

    /// The body, if the answer is JSON (T3's web app answers unknown paths with 200 HTML).
    fn expect_json<'r>(&self, what: &str, resp: &'r Response) -> Result<&'r [u8]> {
        let ct = resp.header("content-type").unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            let shown = if ct.is_empty() { "none" } else { ct };
            return Err(RemoteError::new(
                REMOTE,
                what,
                ErrorKind::Decode(format!(
                    "expected application/json, got content-type {shown}: the path is not an API \
                     route on this T3 (older than 0.0.29, or t3.base_url points at the web app)"
                )),
            ));
        }
        Ok(&resp.body)
    }
}

fn decode<'a, T: Deserialize<'a>>(what: &str, body: &'a [u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        RemoteError::new(
            REMOTE,
            what,
            ErrorKind::Decode(format!(
                "{e} (body starts: {})",
                excerpt(&body[..body.len().min(200)])
            )),
        )
    })
}

fn pending_of(t: &ThreadW<'_>) -> Option<PendingRequest> {
    let a = t.activities.as_ref()?;
    if let Some(r) = a.approvals.last() {
        return Some(PendingRequest::Approval {
            summary: r.text.to_string(),
        });
    }
    a.user_inputs.last().map(|r| PendingRequest::UserInput {
        question: r.text.to_string(),
    })
}

fn detail_from(mut t: ThreadW<'_>) -> ThreadDetail {
    ThreadDetail {
        latest_turn: t.latest_turn.as_ref().map(|l| l.facts()),
        pending: pending_of(&t),
        tokens: t
            .activities
            .as_mut()
            .map(|a| std::mem::take(&mut a.tokens))
            .unwrap_or_default(),
        message_ids: t
            .messages
            .map(|m| m.ids.into_iter().map(|id| id.into_owned()).collect())
            .unwrap_or_default(),
    }
}

fn fleet_from(model: ReadModel<'_>, source: FleetSource) -> Fleet {
    let full = source == FleetSource::FullSnapshot;
    let projects = model
        .projects
        .into_iter()
        .map(|p| ProjectInfo {
            id: p.id.into_owned(),
            workspace_root: p.workspace_root.map(|w| w.into_owned()).unwrap_or_default(),
            deleted: p.deleted_at.is_some(),
        })
        .collect();
    let threads = model
        .threads
        .into_iter()
        .map(|mut t| {
            let pending = if full { pending_of(&t) } else { None };
            let (pending_approval, pending_user_input) = match source {
                FleetSource::Shell => (t.has_pending_approvals, t.has_pending_user_input),
                FleetSource::FullSnapshot => {
                    let a = t.activities.as_ref();
                    (
                        Some(a.is_some_and(|a| !a.approvals.is_empty())),
                        Some(a.is_some_and(|a| !a.user_inputs.is_empty())),
                    )
                }
                FleetSource::LightSnapshot => (None, None),
            };
            let latest_user_message_at = match source {
                FleetSource::Shell => wire::timestamp(t.latest_user_message_at.as_deref()),
                _ => t.messages.as_ref().and_then(|m| m.latest_user_at),
            };
            ThreadInfo {
                latest_turn: t.latest_turn.as_ref().map(|l| l.facts()),
                session_status: t
                    .session
                    .as_ref()
                    .and_then(|s| s.status.as_deref().map(str::to_owned)),
                session_error: t
                    .session
                    .as_ref()
                    .and_then(|s| s.last_error.as_deref().map(str::to_owned)),
                pending_approval,
                pending_user_input,
                latest_user_message_at,
                tokens: match (full, t.activities.as_mut()) {
                    (true, Some(a)) => std::mem::take(&mut a.tokens),
                    _ => Vec::new(),
                },
                pending,
                message_ids: if full {
                    t.messages
                        .map(|m| m.ids.into_iter().map(|id| id.into_owned()).collect())
                        .unwrap_or_default()
                } else {
                    Vec::new()
                },
                id: t.id.into_owned(),
                project_id: t.project_id.map(|p| p.into_owned()).unwrap_or_default(),
                branch: t.branch.map(|b| b.into_owned()),
                worktree_path: t.worktree_path.map(|w| w.into_owned()),
                deleted: t.deleted_at.is_some(),
                archived: t.archived_at.is_some(),
            }
        })
        .collect();
    Fleet {
        projects,
        threads,
        snapshot_sequence: model.snapshot_sequence,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        let e = |v: &str| Environment::from_version(v).map(|e| (e.has_shell, e.light_snapshot));
        assert_eq!(e("0.0.27"), Some((false, false)));
        assert_eq!(e("0.0.29"), Some((true, false)));
        assert_eq!(e("v0.0.32-nightly.3"), Some((true, true)));
        assert_eq!(e("0.1"), Some((true, true)));
        assert_eq!(e("0.0.100"), Some((true, true)));
        assert_eq!(e("dev"), None);
    }

    #[test]
    fn full_snapshot_derives_pending_requests_and_tokens() {
        let doc = br#"{"snapshotSequence":9,"projects":[{"id":"p","workspaceRoot":"/r","deletedAt":null}],
          "threads":[{"id":"t","projectId":"p","archivedAt":null,"deletedAt":null,"session":null,
            "latestTurn":{"turnId":"u1","state":"running","requestedAt":"2026-06-01T09:00:00.000Z","completedAt":null},
            "messages":[{"id":"m\"1","role":"user","text":"hi","createdAt":"2026-06-01T09:00:00.000Z"}],
            "activities":[
              {"kind":"approval.requested","summary":"run rm?","payload":{"requestId":"a","x":[1,{"y":2}]}},
              {"kind":"approval.resolved","summary":"ok","payload":{"requestId":"a"}},
              {"kind":"tool.started","payload":"just text"},
              {"kind":"context-window.updated","turnId":"u1","payload":{"inputTokens":10,"cachedInputTokens":4.0,"outputTokens":3}},
              {"kind":"context-window.updated","payload":{"usedTokens":10,"maxTokens":200000}},
              {"kind":"user-input.requested","summary":"s","payload":{"requestId":"q","questions":[{"id":"Which DB?","question":"Which DB?","options":[]}]}},
              {"kind":"context-window.updated","turnId":null,"payload":{"lastOutputTokens":7,"totalProcessedTokens":40}}
            ]}]}"#;
        let model: ReadModel<'_> = decode("GET /x", doc).expect("decodes");
        let fleet = fleet_from(model, FleetSource::FullSnapshot);
        let t = fleet.thread("t").expect("thread");
        assert_eq!(t.pending_approval, Some(false));
        assert_eq!(t.pending_user_input, Some(true));
        assert_eq!(
            t.pending,
            Some(PendingRequest::UserInput {
                question: "Which DB?".into()
            })
        );
        // Each snapshot is one request, kept in order; the core sums them.
        assert_eq!(
            t.tokens,
            vec![
                TokenUsage {
                    input: 10,
                    cached_input: 4,
                    output: 3,
                    total_processed: None,
                    turn_id: Some("u1".into()),
                },
                TokenUsage {
                    input: 0,
                    cached_input: 0,
                    output: 7,
                    total_processed: Some(40),
                    turn_id: None,
                },
            ]
        );
        assert_eq!(t.message_ids, vec!["m\"1".to_owned()]);
        assert_eq!(fleet.running_threads(), 1);
    }
}
