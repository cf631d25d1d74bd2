//! The orchestration commands afk sends to T3, with caller-chosen ids (afk-core `ids`), and
//! their wire bodies (`POST /api/orchestration/dispatch`).

use afk_core::model::Timestamp;
use serde_json::{Value, json};

/// `ModelSelection`: a provider instance (e.g. `claudeAgent`), a model slug, and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSelection {
    pub instance_id: String,
    pub model: String,
    /// e.g. `effort = "high"`; sent in the canonical `[{id, value}]` form.
    pub options: Vec<ModelOption>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOption {
    pub id: String,
    pub value: ModelOptionValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelOptionValue {
    Text(String),
    Flag(bool),
}

impl ModelSelection {
    fn to_json(&self) -> Value {
        let mut v = json!({"instanceId": self.instance_id, "model": self.model});
        if !self.options.is_empty() {
            v["options"] = self
                .options
                .iter()
                .map(|o| match &o.value {
                    ModelOptionValue::Text(t) => json!({"id": o.id, "value": t}),
                    ModelOptionValue::Flag(b) => json!({"id": o.id, "value": b}),
                })
                .collect();
        }
        v
    }
}

/// `runtimeMode`. `Auto` exists from T3 0.0.29.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeMode {
    ApprovalRequired,
    AutoAcceptEdits,
    Auto,
    FullAccess,
}

impl RuntimeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeMode::ApprovalRequired => "approval-required",
            RuntimeMode::AutoAcceptEdits => "auto-accept-edits",
            RuntimeMode::Auto => "auto",
            RuntimeMode::FullAccess => "full-access",
        }
    }
}

/// `project.create`. T3 needs `workspace_root` to exist on its host unless
/// `create_workspace_root_if_missing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateProject {
    pub command_id: String,
    pub project_id: String,
    pub title: String,
    pub workspace_root: String,
    pub create_workspace_root_if_missing: bool,
    pub created_at: Timestamp,
}

/// `thread.create` for a worktree afk prepared itself (HTTP dispatch ignores `bootstrap`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateThread {
    pub command_id: String,
    pub thread_id: String,
    pub project_id: String,
    pub title: String,
    pub model: ModelSelection,
    pub runtime_mode: RuntimeMode,
    pub branch: String,
    pub worktree_path: String,
    pub created_at: Timestamp,
}

/// `thread.turn.start` on an existing thread. T3 runs it with the thread's stored runtime mode;
/// the field is still required on HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartTurn {
    pub command_id: String,
    pub thread_id: String,
    pub message_id: String,
    pub text: String,
    pub runtime_mode: RuntimeMode,
    /// Forwarded to the provider when set.
    pub model: Option<ModelSelection>,
    pub created_at: Timestamp,
}

/// `DateTime.formatIso`: `2026-08-22T12:00:00.000Z`.
pub(super) fn iso(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl CreateProject {
    pub(super) fn body(&self) -> Value {
        json!({
            "type": "project.create",
            "commandId": self.command_id,
            "projectId": self.project_id,
            "title": self.title,
            "workspaceRoot": self.workspace_root,
            "createWorkspaceRootIfMissing": self.create_workspace_root_if_missing,
            "defaultModelSelection": null,
            "createdAt": iso(self.created_at),
        })
    }
}

impl CreateThread {
    pub(super) fn body(&self) -> Value {
        json!({
            "type": "thread.create",
            "commandId": self.command_id,
            "threadId": self.thread_id,
            "projectId": self.project_id,
            "title": self.title,
            "modelSelection": self.model.to_json(),
            "runtimeMode": self.runtime_mode.as_str(),
            "interactionMode": "default",
            "branch": self.branch,
            "worktreePath": self.worktree_path,
            "createdAt": iso(self.created_at),
        })
    }
}

impl StartTurn {
    pub(super) fn body(&self) -> Value {
        let mut v = json!({
            "type": "thread.turn.start",
            "commandId": self.command_id,
            "threadId": self.thread_id,
            "message": {
                "messageId": self.message_id,
                "role": "user",
                "text": self.text,
                "attachments": [],
            },
            "runtimeMode": self.runtime_mode.as_str(),
            "interactionMode": "default",
            "createdAt": iso(self.created_at),
        });
        if let Some(m) = &self.model {
            v["modelSelection"] = m.to_json();
        }
        v
    }
}

pub(super) fn interrupt_body(thread_id: &str, command_id: &str, created_at: Timestamp) -> Value {
    json!({
        "type": "thread.turn.interrupt",
        "commandId": command_id,
        "threadId": thread_id,
        "createdAt": iso(created_at),
    })
}

pub(super) fn delete_body(thread_id: &str, command_id: &str) -> Value {
    json!({"type": "thread.delete", "commandId": command_id, "threadId": thread_id})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_use_milliseconds_and_z() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-08-22T12:00:00Z")
            .map(|t| t.with_timezone(&chrono::Utc))
            .expect("time");
        assert_eq!(iso(t), "2026-08-22T12:00:00.000Z");
    }
}
