//! `POST /api/orchestration/dispatch`: strict schema decoding of the command envelope, the
//! normalizer (workspace roots checked on this machine), `commandId` idempotency and the
//! decider's domain rules.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::model::{Project, Thread, Ts};
use super::{CommandOutcome, CommandRecord, Receipt, State, T3Version};

/// A decoded command (only what the simulator acts on).
#[derive(Debug, Clone)]
pub enum Command {
    ProjectCreate {
        project_id: String,
        title: String,
        workspace_root: String,
        create_if_missing: bool,
    },
    ProjectDelete {
        project_id: String,
        force: bool,
    },
    ThreadCreate {
        thread_id: String,
        project_id: String,
        title: String,
        model_selection: Value,
        runtime_mode: String,
        interaction_mode: String,
        branch: Option<String>,
        worktree_path: Option<String>,
    },
    TurnStart {
        thread_id: String,
        message_id: String,
        text: String,
        created_at: String,
    },
    TurnInterrupt {
        thread_id: String,
    },
    ApprovalRespond {
        thread_id: String,
        request_id: String,
        decision: String,
    },
    UserInputRespond {
        thread_id: String,
        request_id: String,
    },
    RuntimeModeSet {
        thread_id: String,
        mode: String,
    },
    InteractionModeSet {
        thread_id: String,
        mode: String,
    },
    MetaUpdate {
        thread_id: String,
        title: Option<String>,
        branch: Option<Option<String>>,
        worktree_path: Option<Option<String>>,
    },
    SessionStop {
        thread_id: String,
    },
    Delete {
        thread_id: String,
    },
    Archive {
        thread_id: String,
    },
    Unarchive {
        thread_id: String,
    },
}

impl Command {
    /// The aggregate the command targets (idempotency is keyed by `commandId` per aggregate).
    fn aggregate(&self) -> String {
        match self {
            Command::ProjectCreate { project_id, .. }
            | Command::ProjectDelete { project_id, .. } => {
                format!("project:{project_id}")
            }
            Command::ThreadCreate { thread_id, .. }
            | Command::TurnStart { thread_id, .. }
            | Command::TurnInterrupt { thread_id }
            | Command::ApprovalRespond { thread_id, .. }
            | Command::UserInputRespond { thread_id, .. }
            | Command::RuntimeModeSet { thread_id, .. }
            | Command::InteractionModeSet { thread_id, .. }
            | Command::MetaUpdate { thread_id, .. }
            | Command::SessionStop { thread_id }
            | Command::Delete { thread_id }
            | Command::Archive { thread_id }
            | Command::Unarchive { thread_id } => format!("thread:{thread_id}"),
        }
    }
}

/// How the dispatch endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Sequence(u64),
    /// 400 `HttpApiSchemaError`.
    Schema(String),
    /// 400 `EnvironmentRequestInvalidError` / `invalid_command`.
    Invalid,
    /// 500 `EnvironmentInternalError` / `orchestration_dispatch_failed`.
    Rejected,
}

type Decoded<T> = Result<T, String>;

fn field<'a>(o: &'a Map<String, Value>, key: &str) -> Decoded<&'a Value> {
    o.get(key)
        .ok_or_else(|| format!("Missing key\n  at [\"{key}\"]"))
}

fn type_name(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) => format!("{s:?}"),
        other => {
            let s = other.to_string();
            if s.len() > 40 {
                format!("{}…", &s[..40])
            } else {
                s
            }
        }
    }
}

fn expected(what: &str, key: &str, v: &Value) -> String {
    format!("Expected {what}, got {}\n  at [\"{key}\"]", type_name(v))
}

fn string(o: &Map<String, Value>, key: &str) -> Decoded<String> {
    match field(o, key)? {
        Value::String(s) => Ok(s.clone()),
        v => Err(expected("string", key, v)),
    }
}

/// A trimmed, non-empty string (ids, titles).
fn trimmed(o: &Map<String, Value>, key: &str) -> Decoded<String> {
    let s = string(o, key)?;
    let t = s.trim();
    if t.is_empty() {
        return Err(format!(
            "Expected a non empty string, got {s:?}\n  at [\"{key}\"]"
        ));
    }
    Ok(t.to_owned())
}

/// A key that must be present; `null` allowed.
fn nullable(o: &Map<String, Value>, key: &str) -> Decoded<Option<String>> {
    match field(o, key)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        v => Err(expected("string | null", key, v)),
    }
}

fn optional_bool(o: &Map<String, Value>, key: &str) -> Decoded<bool> {
    match o.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(expected("boolean", key, v)),
    }
}

fn literal(o: &Map<String, Value>, key: &str, allowed: &[&str]) -> Decoded<String> {
    match field(o, key)? {
        Value::String(s) if allowed.contains(&s.as_str()) => Ok(s.clone()),
        v => Err(expected(
            &allowed
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(" | "),
            key,
            v,
        )),
    }
}

fn runtime_modes(version: T3Version) -> &'static [&'static str] {
    match version {
        T3Version::V0_0_27 => &["approval-required", "auto-accept-edits", "full-access"],
        T3Version::V0_0_33 | T3Version::V0_0_34 => &[
            "approval-required",
            "auto-accept-edits",
            "auto",
            "full-access",
        ],
    }
}

const INTERACTION_MODES: &[&str] = &["default", "plan"];

fn is_slug(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `ModelSelection` = `{instanceId, model, options?}` or the legacy `{provider, model}`.
fn model_selection(v: &Value, key: &str) -> Decoded<Value> {
    let Value::Object(o) = v else {
        return Err(expected("ModelSelection", key, v));
    };
    let instance = match (o.get("instanceId"), o.get("provider")) {
        (Some(Value::String(s)), _) | (None, Some(Value::String(s))) => s,
        (Some(v), _) => return Err(expected("string", &format!("{key}\"][\"instanceId"), v)),
        (None, _) => return Err(format!("Missing key\n  at [\"{key}\"][\"instanceId\"]")),
    };
    if !is_slug(instance) {
        return Err(format!(
            "Expected a provider instance slug, got {instance:?}\n  at [\"{key}\"][\"instanceId\"]"
        ));
    }
    match o.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => {}
        Some(v) => {
            return Err(expected(
                "a non empty string",
                &format!("{key}\"][\"model"),
                v,
            ));
        }
        None => return Err(format!("Missing key\n  at [\"{key}\"][\"model\"]")),
    }
    match o.get("options") {
        None | Some(Value::Array(_)) | Some(Value::Object(_)) => {}
        Some(v) => return Err(expected("options", &format!("{key}\"][\"options"), v)),
    }
    Ok(v.clone())
}

fn message(o: &Map<String, Value>) -> Decoded<(String, String)> {
    let Value::Object(m) = field(o, "message")? else {
        return Err(expected("message", "message", &o["message"]));
    };
    let id = trimmed(m, "messageId").map_err(|e| e.replace("at [", "at [\"message\"]["))?;
    literal(m, "role", &["user"]).map_err(|e| e.replace("at [", "at [\"message\"]["))?;
    let text = string(m, "text").map_err(|e| e.replace("at [", "at [\"message\"]["))?;
    match field(m, "attachments").map_err(|e| e.replace("at [", "at [\"message\"]["))? {
        Value::Array(items) => {
            for (i, a) in items.iter().enumerate() {
                let ok = a.as_object().is_some_and(|a| {
                    a.get("type") == Some(&Value::String("image".into()))
                        && ["name", "mimeType", "dataUrl"]
                            .iter()
                            .all(|k| a.get(*k).is_some_and(Value::is_string))
                        && a.get("sizeBytes").is_some_and(Value::is_u64)
                });
                if !ok {
                    return Err(format!(
                        "Expected an image attachment\n  at [\"message\"][\"attachments\"][{i}]"
                    ));
                }
            }
        }
        v => return Err(expected("array", "message\"][\"attachments", v)),
    }
    Ok((id, text))
}

/// Decodes the envelope the way the HTTP API schema does.
pub fn decode(body: &Value, version: T3Version) -> Decoded<(String, Command)> {
    let Value::Object(o) = body else {
        return Err(format!(
            "Expected ClientOrchestrationCommand, got {}",
            type_name(body)
        ));
    };
    let kind = string(o, "type")?;
    let command_id = trimmed(o, "commandId")?;
    let modern = version.modern();
    let cmd = match kind.as_str() {
        "project.create" => {
            string(o, "createdAt")?;
            if let Some(v) = o.get("defaultModelSelection")
                && !v.is_null()
            {
                model_selection(v, "defaultModelSelection")?;
            }
            Command::ProjectCreate {
                project_id: trimmed(o, "projectId")?,
                title: trimmed(o, "title")?,
                workspace_root: trimmed(o, "workspaceRoot")?,
                create_if_missing: optional_bool(o, "createWorkspaceRootIfMissing")?,
            }
        }
        "project.delete" => Command::ProjectDelete {
            project_id: trimmed(o, "projectId")?,
            force: optional_bool(o, "force")?,
        },
        "thread.create" => {
            string(o, "createdAt")?;
            let interaction_mode = if o.contains_key("interactionMode") {
                literal(o, "interactionMode", INTERACTION_MODES)?
            } else {
                "default".to_owned()
            };
            Command::ThreadCreate {
                thread_id: trimmed(o, "threadId")?,
                project_id: trimmed(o, "projectId")?,
                title: trimmed(o, "title")?,
                model_selection: model_selection(field(o, "modelSelection")?, "modelSelection")?,
                runtime_mode: literal(o, "runtimeMode", runtime_modes(version))?,
                interaction_mode,
                branch: nullable(o, "branch")?,
                worktree_path: nullable(o, "worktreePath")?,
            }
        }
        "thread.turn.start" => {
            let thread_id = trimmed(o, "threadId")?;
            let (message_id, text) = message(o)?;
            if let Some(v) = o.get("modelSelection") {
                model_selection(v, "modelSelection")?;
            }
            literal(o, "runtimeMode", runtime_modes(version))?;
            literal(o, "interactionMode", INTERACTION_MODES)?;
            if let Some(v) = o.get("bootstrap")
                && !v.is_object()
            {
                return Err(expected("bootstrap", "bootstrap", v));
            }
            Command::TurnStart {
                thread_id,
                message_id,
                text,
                created_at: string(o, "createdAt")?,
            }
        }
        "thread.turn.interrupt" => {
            string(o, "createdAt")?;
            Command::TurnInterrupt {
                thread_id: trimmed(o, "threadId")?,
            }
        }
        "thread.approval.respond" => {
            string(o, "createdAt")?;
            Command::ApprovalRespond {
                thread_id: trimmed(o, "threadId")?,
                request_id: trimmed(o, "requestId")?,
                decision: literal(
                    o,
                    "decision",
                    &["accept", "acceptForSession", "decline", "cancel"],
                )?,
            }
        }
        "thread.user-input.respond" => {
            string(o, "createdAt")?;
            if !field(o, "answers")?.is_object() {
                return Err(expected("object", "answers", &o["answers"]));
            }
            Command::UserInputRespond {
                thread_id: trimmed(o, "threadId")?,
                request_id: trimmed(o, "requestId")?,
            }
        }
        "thread.runtime-mode.set" => {
            string(o, "createdAt")?;
            Command::RuntimeModeSet {
                thread_id: trimmed(o, "threadId")?,
                mode: literal(o, "runtimeMode", runtime_modes(version))?,
            }
        }
        "thread.interaction-mode.set" => {
            string(o, "createdAt")?;
            Command::InteractionModeSet {
                thread_id: trimmed(o, "threadId")?,
                mode: literal(o, "interactionMode", INTERACTION_MODES)?,
            }
        }
        "thread.meta.update" => {
            let opt_nullable = |k: &str| {
                if o.contains_key(k) {
                    nullable(o, k).map(Some)
                } else {
                    Ok(None)
                }
            };
            Command::MetaUpdate {
                thread_id: trimmed(o, "threadId")?,
                title: if o.contains_key("title") {
                    Some(trimmed(o, "title")?)
                } else {
                    None
                },
                branch: opt_nullable("branch")?,
                worktree_path: opt_nullable("worktreePath")?,
            }
        }
        "thread.session.stop" => {
            string(o, "createdAt")?;
            if modern {
                optional_bool(o, "onlyIfSettled")?;
            }
            Command::SessionStop {
                thread_id: trimmed(o, "threadId")?,
            }
        }
        "thread.delete" => Command::Delete {
            thread_id: trimmed(o, "threadId")?,
        },
        "thread.archive" => Command::Archive {
            thread_id: trimmed(o, "threadId")?,
        },
        "thread.unarchive" => Command::Unarchive {
            thread_id: trimmed(o, "threadId")?,
        },
        "project.meta.update" | "thread.checkpoint.revert" => {
            return Err(format!(
                "the simulator does not model {kind:?}\n  at [\"type\"]"
            ));
        }
        "thread.settle" | "thread.unsettle" | "thread.snooze" | "thread.unsnooze"
        | "thread.pin" | "thread.unpin" | "thread.pin.reorder"
            if modern =>
        {
            return Err(format!(
                "the simulator does not model {kind:?}\n  at [\"type\"]"
            ));
        }
        other => {
            return Err(format!(
                "Expected a known command type, got {other:?}\n  at [\"type\"]"
            ));
        }
    };
    Ok((command_id, cmd))
}

/// Upstream normalization of a workspace root: expand `~`, make absolute.
fn normalize_root(root: &str) -> PathBuf {
    let expanded = match root.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(root),
    };
    std::path::absolute(&expanded).unwrap_or(expanded)
}

impl State {
    /// Handles one dispatch body; records it; returns the answer.
    pub(super) fn dispatch(&mut self, body: &Value, now: DateTime<Utc>) -> Answer {
        let kind = body.get("type").and_then(Value::as_str).map(str::to_owned);
        let command_id = body
            .get("commandId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let (answer, outcome) = self.dispatch_inner(body, now);
        self.commands.push(CommandRecord {
            kind,
            command_id,
            body: body.clone(),
            outcome,
            at: now,
        });
        answer
    }

    fn dispatch_inner(&mut self, body: &Value, now: DateTime<Utc>) -> (Answer, CommandOutcome) {
        let (command_id, mut cmd) = match decode(body, self.version) {
            Ok(c) => c,
            Err(message) => {
                return (
                    Answer::Schema(message.clone()),
                    CommandOutcome::Schema { message },
                );
            }
        };
        // The normalizer runs before the engine (so before idempotency).
        if let Command::ProjectCreate {
            workspace_root,
            create_if_missing,
            ..
        } = &mut cmd
        {
            let path = normalize_root(workspace_root);
            if !path.is_dir() {
                let made =
                    *create_if_missing && !path.exists() && std::fs::create_dir_all(&path).is_ok();
                if !made {
                    let reason = format!("workspace root {} is not a directory", path.display());
                    return (Answer::Invalid, CommandOutcome::Invalid { reason });
                }
            }
            *workspace_root = path.to_string_lossy().into_owned();
        }
        let aggregate = cmd.aggregate();
        match self.receipts.get(&command_id) {
            // Same aggregate, or (up to v0.0.33) a different one: the original receipt.
            Some(Receipt::Accepted {
                sequence,
                aggregate: first,
            }) => {
                if *first != aggregate {
                    tracing::debug!(%command_id, %first, %aggregate, "commandId reused on another aggregate; old receipt returned");
                }
                return (
                    Answer::Sequence(*sequence),
                    CommandOutcome::Replayed {
                        sequence: *sequence,
                    },
                );
            }
            Some(Receipt::Rejected { reason, .. }) => {
                return (
                    Answer::Rejected,
                    CommandOutcome::Rejected {
                        reason: reason.clone(),
                    },
                );
            }
            None => {}
        }
        match self.decide(cmd, now) {
            Ok(sequence) => {
                self.receipts.insert(
                    command_id,
                    Receipt::Accepted {
                        aggregate,
                        sequence,
                    },
                );
                (
                    Answer::Sequence(sequence),
                    CommandOutcome::Accepted { sequence },
                )
            }
            Err(reason) => {
                tracing::debug!(%reason, "simulated T3 rejected a command");
                self.receipts.insert(
                    command_id,
                    Receipt::Rejected {
                        aggregate,
                        reason: reason.clone(),
                    },
                );
                (Answer::Rejected, CommandOutcome::Rejected { reason })
            }
        }
    }

    fn live_thread(&self, id: &str) -> Result<&Thread, String> {
        match self.thread_ref(id) {
            Some(t) if t.deleted_at.is_none() => Ok(t),
            Some(_) => Err(format!("Thread '{id}' has been deleted.")),
            None => Err(format!("Thread '{id}' does not exist.")),
        }
    }

    fn decide(&mut self, cmd: Command, now: DateTime<Utc>) -> Result<u64, String> {
        match cmd {
            Command::ProjectCreate {
                project_id,
                title,
                workspace_root,
                ..
            } => {
                if self.project(&project_id).is_some() {
                    return Err(format!("Project '{project_id}' already exists."));
                }
                if self.version.modern()
                    && self.projects().iter().any(|p| {
                        p.deleted_at.is_none()
                            && Path::new(&p.workspace_root) == Path::new(&workspace_root)
                    })
                {
                    return Err(format!(
                        "A project already uses workspace root '{workspace_root}'."
                    ));
                }
                self.push_project(Project {
                    id: project_id,
                    title,
                    workspace_root,
                    created_at: Ts(now),
                    updated_at: Ts(now),
                    deleted_at: None,
                });
                Ok(self.bump(now))
            }
            Command::ProjectDelete { project_id, force } => {
                match self.project(&project_id) {
                    Some(p) if p.deleted_at.is_none() => {}
                    _ => return Err(format!("Project '{project_id}' does not exist.")),
                }
                let active: Vec<String> = self
                    .threads()
                    .iter()
                    .filter(|t| t.project_id == project_id && t.deleted_at.is_none())
                    .map(|t| t.id.clone())
                    .collect();
                if !active.is_empty() && !force {
                    return Err(format!("Project '{project_id}' is not empty."));
                }
                for id in active {
                    self.delete_thread(&id, now);
                }
                if let Some(p) = self.projects_mut().iter_mut().find(|p| p.id == project_id) {
                    p.deleted_at = Some(Ts(now));
                    p.updated_at = Ts(now);
                }
                Ok(self.bump(now))
            }
            Command::ThreadCreate {
                thread_id,
                project_id,
                title,
                model_selection,
                runtime_mode,
                interaction_mode,
                branch,
                worktree_path,
            } => {
                match self.project(&project_id) {
                    Some(p) if p.deleted_at.is_none() => {}
                    _ => return Err(format!("Project '{project_id}' does not exist.")),
                }
                if self.thread_ref(&thread_id).is_some() {
                    return Err(format!(
                        "Thread '{thread_id}' already exists and cannot be created twice."
                    ));
                }
                let mut t = Thread::new(
                    thread_id,
                    project_id,
                    title,
                    model_selection,
                    runtime_mode,
                    interaction_mode,
                    now,
                );
                t.branch = branch;
                t.worktree_path = worktree_path;
                self.push_thread(t);
                Ok(self.bump(now))
            }
            Command::TurnStart {
                thread_id,
                message_id,
                text,
                created_at,
            } => {
                let t = self.live_thread(&thread_id)?;
                if t.active.is_some() {
                    return Err(format!(
                        "Thread '{thread_id}' already has a turn in progress."
                    ));
                }
                // Since v0.0.29 the server overwrites createdAt with its receive time.
                let message_at = match self.version {
                    T3Version::V0_0_27 => chrono::DateTime::parse_from_rfc3339(&created_at)
                        .map(|d| d.with_timezone(&Utc))
                        .unwrap_or(now),
                    T3Version::V0_0_33 | T3Version::V0_0_34 => now,
                };
                self.start_turn(&thread_id, &message_id, &text, message_at, now)
                    .ok_or_else(|| format!("Thread '{thread_id}' does not exist."))
            }
            Command::TurnInterrupt { thread_id } => {
                self.live_thread(&thread_id)?;
                let seq = self.bump(now);
                self.interrupt_turn(&thread_id, "ready", now);
                Ok(seq)
            }
            Command::ApprovalRespond {
                thread_id,
                request_id,
                decision,
            } => {
                self.live_thread(&thread_id)?;
                let seq = self.bump(now);
                self.answer(
                    &thread_id,
                    &request_id,
                    "approval.resolved",
                    Some(decision),
                    now,
                    seq,
                );
                Ok(seq)
            }
            Command::UserInputRespond {
                thread_id,
                request_id,
            } => {
                self.live_thread(&thread_id)?;
                let seq = self.bump(now);
                self.answer(
                    &thread_id,
                    &request_id,
                    "user-input.resolved",
                    None,
                    now,
                    seq,
                );
                Ok(seq)
            }
            Command::RuntimeModeSet { thread_id, mode } => {
                self.live_thread(&thread_id)?;
                self.update_thread(&thread_id, now, |t| t.runtime_mode = mode)
            }
            Command::InteractionModeSet { thread_id, mode } => {
                self.live_thread(&thread_id)?;
                self.update_thread(&thread_id, now, |t| t.interaction_mode = mode)
            }
            Command::MetaUpdate {
                thread_id,
                title,
                branch,
                worktree_path,
            } => {
                self.live_thread(&thread_id)?;
                self.update_thread(&thread_id, now, |t| {
                    if let Some(title) = title {
                        t.title = title;
                    }
                    if let Some(b) = branch {
                        t.branch = b;
                    }
                    if let Some(w) = worktree_path {
                        t.worktree_path = w;
                    }
                })
            }
            Command::SessionStop { thread_id } => {
                self.live_thread(&thread_id)?;
                let seq = self.bump(now);
                self.interrupt_turn(&thread_id, "stopped", now);
                Ok(seq)
            }
            Command::Delete { thread_id } => {
                if self.thread_ref(&thread_id).is_none() {
                    return Err(format!("Thread '{thread_id}' does not exist."));
                }
                self.delete_thread(&thread_id, now);
                Ok(self.bump(now))
            }
            Command::Archive { thread_id } => {
                self.live_thread(&thread_id)?;
                self.update_thread(&thread_id, now, |t| t.archived_at = Some(Ts(now)))
            }
            Command::Unarchive { thread_id } => {
                self.live_thread(&thread_id)?;
                self.update_thread(&thread_id, now, |t| t.archived_at = None)
            }
        }
    }

    fn update_thread(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
        f: impl FnOnce(&mut Thread),
    ) -> Result<u64, String> {
        let t = self
            .thread_mut(id)
            .ok_or_else(|| format!("Thread '{id}' does not exist."))?;
        f(t);
        t.updated_at = Ts(now);
        Ok(self.bump(now))
    }

    /// `thread.deleted`; a reactor then stops the provider session.
    fn delete_thread(&mut self, id: &str, now: DateTime<Utc>) {
        self.interrupt_turn(id, "stopped", now);
        if let Some(t) = self.thread_mut(id) {
            t.deleted_at = Some(Ts(now));
            t.updated_at = Ts(now);
        }
    }
}
