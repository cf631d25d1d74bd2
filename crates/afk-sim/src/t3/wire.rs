//! The read models as T3 serializes them: `OrchestrationReadModel` (full or light),
//! `OrchestrationShellSnapshot`, `OrchestrationThreadDetailSnapshot`, and the environment
//! descriptor. Views borrow the state, so a large fleet is written without copying it.

use serde::Serialize;

use super::model::{Activity, Checkpoint, Message, Project, Session, Thread, Ts, Turn};
use super::{State, T3Version};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProjectView<'a> {
    id: &'a str,
    title: &'a str,
    workspace_root: &'a str,
    repository_identity: Option<()>,
    default_model_selection: Option<()>,
    scripts: [(); 0],
    created_at: Ts,
    updated_at: Ts,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_at: Option<Option<Ts>>,
}

fn project_view(p: &Project, with_deleted: bool) -> ProjectView<'_> {
    ProjectView {
        id: &p.id,
        title: &p.title,
        workspace_root: &p.workspace_root,
        repository_identity: None,
        default_model_selection: None,
        scripts: [],
        created_at: p.created_at,
        updated_at: p.updated_at,
        deleted_at: with_deleted.then_some(p.deleted_at),
    }
}

/// Thread scalars shared by every view.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Scalars<'a> {
    id: &'a str,
    project_id: &'a str,
    title: &'a str,
    model_selection: &'a serde_json::Value,
    runtime_mode: &'a str,
    interaction_mode: &'a str,
    branch: Option<&'a str>,
    worktree_path: Option<&'a str>,
    latest_turn: Option<&'a Turn>,
    created_at: Ts,
    updated_at: Ts,
    archived_at: Option<Ts>,
    session: Option<&'a Session>,
    /// v0.0.29+ only.
    #[serde(skip_serializing_if = "Option::is_none")]
    settled_override: Option<Option<()>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    settled_at: Option<Option<()>>,
}

fn scalars(t: &Thread, version: T3Version) -> Scalars<'_> {
    let modern = version.modern().then_some(None);
    Scalars {
        id: &t.id,
        project_id: &t.project_id,
        title: &t.title,
        model_selection: &t.model_selection,
        runtime_mode: &t.runtime_mode,
        interaction_mode: &t.interaction_mode,
        branch: t.branch.as_deref(),
        worktree_path: t.worktree_path.as_deref(),
        latest_turn: t.latest_turn.as_ref(),
        created_at: t.created_at,
        updated_at: t.updated_at,
        archived_at: t.archived_at,
        session: t.session.as_ref(),
        settled_override: modern,
        settled_at: modern,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThreadView<'a> {
    #[serde(flatten)]
    scalars: Scalars<'a>,
    deleted_at: Option<Ts>,
    messages: &'a [Message],
    proposed_plans: [(); 0],
    activities: &'a [Activity],
    checkpoints: &'a [Checkpoint],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ShellThreadView<'a> {
    #[serde(flatten)]
    scalars: Scalars<'a>,
    latest_user_message_at: Option<Ts>,
    has_pending_approvals: bool,
    has_pending_user_input: bool,
    has_actionable_proposed_plan: bool,
    background_liveness: Option<()>,
    plan_progress: Option<()>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Snapshot<P: Serialize, T: Serialize> {
    snapshot_sequence: u64,
    projects: Vec<P>,
    threads: Vec<T>,
    updated_at: Ts,
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialize a simulated T3 read model");
        b"{}".to_vec()
    })
}

/// `GET /api/orchestration/snapshot`: every project and thread, deleted ones included; fully
/// hydrated before v0.0.32, with empty messages/activities/checkpoints since.
pub fn snapshot(st: &State) -> Vec<u8> {
    let light = st.version.light_snapshot();
    let threads = st
        .threads()
        .iter()
        .map(|t| ThreadView {
            scalars: scalars(t, st.version),
            deleted_at: t.deleted_at,
            messages: if light { &[] } else { &t.messages },
            proposed_plans: [],
            activities: if light { &[] } else { &t.activities },
            checkpoints: if light { &[] } else { &t.checkpoints },
        })
        .collect();
    to_json(&Snapshot {
        snapshot_sequence: st.sequence(),
        projects: st
            .projects()
            .iter()
            .map(|p| project_view(p, true))
            .collect(),
        threads,
        updated_at: st.updated_at(),
    })
}

/// `GET /api/orchestration/shell`: non-deleted projects, non-deleted non-archived threads.
pub fn shell(st: &State) -> Vec<u8> {
    let threads = st
        .threads()
        .iter()
        .filter(|t| t.is_visible())
        .map(|t| ShellThreadView {
            scalars: scalars(t, st.version),
            latest_user_message_at: t.latest_user_message_at(),
            has_pending_approvals: !t.pending_approvals().is_empty(),
            has_pending_user_input: !t.pending_user_input().is_empty(),
            has_actionable_proposed_plan: false,
            background_liveness: None,
            plan_progress: None,
        })
        .collect();
    to_json(&Snapshot {
        snapshot_sequence: st.sequence(),
        projects: st
            .projects()
            .iter()
            .filter(|p| p.deleted_at.is_none())
            .map(|p| project_view(p, false))
            .collect(),
        threads,
        updated_at: st.updated_at(),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    before_cursor: Option<String>,
    has_more: bool,
    snapshot_sequence: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Detail<'a> {
    snapshot_sequence: u64,
    thread: ThreadView<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<Page>,
}

/// Which turns a detail read covers: `before` excludes turn numbers `>= before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub turn_limit: Option<u32>,
    pub before: Option<u32>,
}

/// `GET /api/orchestration/threads/:id`; `None` when the thread is missing, deleted or archived.
pub fn thread_detail(st: &State, id: &str, window: Window) -> Option<Vec<u8>> {
    let t = st.thread_ref(id).filter(|t| t.is_visible())?;
    // Turn numbers are 1-based; items written before the first turn carry 0.
    let end = window.before.map_or(t.turns_started, |b| {
        b.saturating_sub(1).min(t.turns_started)
    });
    let first = window
        .turn_limit
        .map_or(0, |n| end.saturating_sub(n.saturating_sub(1)).max(1));
    let lower = if first <= 1 { 0 } else { first };
    let range = |nos: &mut dyn Iterator<Item = u32>| {
        let nos: Vec<u32> = nos.collect();
        let a = nos.partition_point(|&n| n < lower);
        let b = nos.partition_point(|&n| n <= end).max(a);
        a..b
    };
    let msgs = range(&mut t.messages.iter().map(|m| m.turn_no));
    let acts = range(&mut t.activities.iter().map(|a| a.turn_no));
    let cps = range(&mut t.checkpoints.iter().map(|c| c.checkpoint_turn_count));
    let has_more = first > 1;
    let paged = window.turn_limit.is_some() || window.before.is_some();
    Some(to_json(&Detail {
        snapshot_sequence: st.sequence(),
        thread: ThreadView {
            scalars: scalars(t, st.version),
            deleted_at: t.deleted_at,
            messages: t.messages.get(msgs).unwrap_or(&[]),
            proposed_plans: [],
            activities: t.activities.get(acts).unwrap_or(&[]),
            checkpoints: t.checkpoints.get(cps).unwrap_or(&[]),
        },
        page: paged.then(|| Page {
            before_cursor: has_more.then(|| format!("turn:{first}")),
            has_more,
            snapshot_sequence: st.sequence(),
        }),
    }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Platform {
    os: &'static str,
    arch: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Environment {
    environment_id: &'static str,
    label: &'static str,
    platform: Platform,
    server_version: &'static str,
    capabilities: serde_json::Value,
}

/// `GET /.well-known/t3/environment`.
pub fn environment(version: T3Version) -> Vec<u8> {
    let capabilities = match version {
        T3Version::V0_0_27 => serde_json::json!({"repositoryIdentity": true}),
        T3Version::V0_0_33 | T3Version::V0_0_34 => serde_json::json!({
            "repositoryIdentity": true,
            "threadSettlement": true,
            "threadSnooze": true,
            "threadPinning": true,
            "threadPinReorder": true,
            "threadTitleRegeneration": true,
            "pullRequests": true,
            "serverSelfUpdate": false
        }),
    };
    to_json(&Environment {
        environment_id: "env-sim",
        label: "afk-sim",
        platform: Platform {
            os: "linux",
            arch: "x64",
        },
        server_version: version.server_version(),
        capabilities,
    })
}
