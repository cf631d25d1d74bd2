//! T3's fleet as a tick sees it: the one fleet read per tick, what stands in for it when T3
//! cannot be read, and a run's thread evidence from it (with `/snapshot` for threads `/shell`
//! no longer lists).

use afk_core::config::Config;
use afk_core::evidence::{PendingRequest, ThreadEvidence};
use afk_core::plan::ErrorEntry;
use afk_core::record::{RunRecord, RunStatus};
use afk_remotes::error::RemoteError;
use afk_remotes::t3::{Fleet, FleetSource, ThreadInfo};

use crate::remotes::Remotes;
use crate::tick::Tick;

/// Reads T3's environment and the whole fleet (one read per tick).
pub async fn read_fleet(remotes: &Remotes) -> Result<Fleet, RemoteError> {
    let env = remotes.t3.environment().await?;
    remotes.t3.fleet(&env).await
}

/// The tick's error when T3's fleet read failed: the runs are still watched, but nothing
/// that needs T3 is done.
pub fn t3_unreachable_error(config: &Config, e: &RemoteError) -> ErrorEntry {
    let url = config.t3.as_ref().map_or("", |t| t.base_url.as_str());
    crate::tick::error(
        None,
        None,
        format!(
            "T3 unreachable at {url}: {e}; every live run waits on T3 (check that the T3 server \
             runs and is reachable from afk-watch, and afk's T3 token)"
        ),
    )
}

/// Stands in for T3's fleet when it could not be read. Nothing is applied against it: with T3
/// unreachable the state machine emits no dispatch, turn or interrupt.
pub fn unreachable_fleet() -> Fleet {
    Fleet {
        projects: Vec::new(),
        threads: Vec::new(),
        snapshot_sequence: 0,
        source: FleetSource::Shell,
    }
}

/// The run's thread as T3 shows it; detail is read only when the thread is active or asks
/// something (token usage and questions live there). A thread T3 archived is present and
/// settled, never missing; only a deleted (or unknown) thread is missing.
pub async fn thread_evidence(
    tick: &Tick<'_>,
    record: &RunRecord,
) -> Result<ThreadEvidence, RemoteError> {
    if let Some(error) = &tick.t3_unreachable {
        return Ok(ThreadEvidence::Unreachable {
            error: error.clone(),
        });
    }
    let t = match tick.fleet.thread(&record.thread_id) {
        Some(t) => t,
        // Only a dispatched run is judged by its thread: a claimed one (whose thread may not
        // exist yet) or a finished one costs no snapshot read.
        None if record.status != RunStatus::Dispatched => return Ok(ThreadEvidence::Missing),
        None => return off_shell_thread(tick, &record.thread_id).await,
    };
    if t.deleted {
        return Ok(ThreadEvidence::Missing);
    }
    if t.archived {
        return Ok(archived_evidence(tick.fleet, t));
    }
    let asks = t.pending_approval == Some(true) || t.pending_user_input == Some(true);
    let detail = if let Some(d) = tick.fleet.detail_from_snapshot(&t.id) {
        Some(d)
    } else if record.status == RunStatus::Dispatched {
        // Token usage (the spend) and the agent's questions are only in thread detail.
        match tick.remotes.t3.thread_detail(&t.id).await? {
            Some(d) => Some(d),
            // Archived (or deleted) between the shell read and now: ask the snapshot.
            None => return off_shell_thread(tick, &t.id).await,
        }
    } else {
        None
    };
    let pending = match (&detail, asks) {
        (Some(d), _) if d.pending.is_some() => d.pending.clone(),
        (_, true) => Some(if t.pending_user_input == Some(true) {
            PendingRequest::UserInput {
                question: "(the agent asked a question; see the thread)".into(),
            }
        } else {
            PendingRequest::Approval {
                summary: "(the agent asked for an approval; see the thread)".into(),
            }
        }),
        _ => None,
    };
    Ok(ThreadEvidence::Present {
        latest_turn: detail
            .as_ref()
            .and_then(|d| d.latest_turn.clone())
            .or_else(|| t.latest_turn.clone()),
        session_status: t.session_status.clone(),
        session_error: t.session_error.clone(),
        pending,
        tokens: detail.map(|d| d.tokens).unwrap_or_default(),
    })
}

/// The evidence of a thread `/shell` does not list, from T3's snapshot (read once a tick):
/// archived (present and settled) or missing.
async fn off_shell_thread(tick: &Tick<'_>, thread_id: &str) -> Result<ThreadEvidence, RemoteError> {
    if tick.fleet.source != FleetSource::Shell {
        return Ok(ThreadEvidence::Missing);
    }
    let snapshot = tick
        .off_shell
        .get_or_try_init(|| async {
            let env = tick.remotes.t3.cached_environment().await?;
            tick.remotes.t3.snapshot_fleet(&env).await
        })
        .await?;
    Ok(match snapshot.thread(thread_id) {
        Some(t) if !t.deleted && t.archived => archived_evidence(snapshot, t),
        _ => ThreadEvidence::Missing,
    })
}

/// An archived thread: present and settled with what T3 last showed (its detail answers 404;
/// the spend already seen stays in the record). Newer T3 archives settled threads on its own.
fn archived_evidence(source: &Fleet, t: &ThreadInfo) -> ThreadEvidence {
    let settled = t.settled_view();
    // A full snapshot (< 0.0.32) still carries the activities: questions and token usage.
    let detail = source.detail_from_snapshot(&t.id);
    ThreadEvidence::Present {
        latest_turn: settled.latest_turn,
        session_status: settled.session_status,
        session_error: settled.session_error,
        pending: detail.as_ref().and_then(|d| d.pending.clone()),
        tokens: detail.map(|d| d.tokens).unwrap_or_default(),
    }
}
