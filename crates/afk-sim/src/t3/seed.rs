//! A large, realistic fleet history for the T3 read-cost bench: many threads, each with a
//! history of user turns, assistant replies, tool activity, token usage and approvals.

use std::borrow::Cow;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::model::{
    Activity, Checkpoint, Message, Payload, Project, Session, Shared, Thread, Ts, Turn, TurnState,
};
use super::{State, TokenCounts};

const USER_TEXT: &str = "Fix the flaky integration test in `tests/api.rs`: it fails about one run in \
ten with \"connection reset\". Keep the fix small, run the suite twice, and push to main when green.";
const ASSISTANT_TEXT: &str = "I found the cause: the test server is started on a fixed port and a \
previous run may still hold it.\n\nChanges:\n- bind to port 0 and read the chosen port back\n- wait \
for readiness instead of sleeping 200 ms\n\nThe suite passed twice locally (142 tests, 0 failures). \
Pushed as `fix: bind test server to an ephemeral port`.";
const TOOL_INPUT: &str =
    "{\"command\":\"cargo test --workspace -- --test-threads 4\",\"cwd\":\"/srv/wt\"}";

fn seed_base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// Adds `threads` threads (in projects of 50) with `messages` messages and `activities`
/// activities each, as a long-lived server accumulates them. Deterministic. Some threads are
/// running, waiting on an approval, archived or deleted, so every fleet fact has
/// examples.
pub fn seed_history(state: &mut State, threads: usize, messages: usize, activities: usize) {
    let base = seed_base();
    let user_text: Shared = Shared::from(USER_TEXT);
    let assistant_text: Shared = Shared::from(ASSISTANT_TEXT);
    let tool_input: Shared = Shared::from(TOOL_INPUT);
    let model = serde_json::json!({"instanceId": "claudeAgent", "model": "claude-sonnet-4-6"});
    let offset = state.threads().len();
    for i in offset..offset + threads {
        let project_id = format!("bench-project-{}", i / 50);
        if state.project(&project_id).is_none() {
            state.push_project(Project {
                id: project_id.clone(),
                title: format!("bench repo {}", i / 50),
                workspace_root: format!("/srv/bench/repo-{}", i / 50),
                created_at: Ts(base),
                updated_at: Ts(base),
                deleted_at: None,
            });
        }
        let created = base + TimeDelta::minutes(i as i64);
        let mut t = Thread::new(
            format!("bench-thread-{i:05}"),
            project_id,
            format!("bench issue {i}"),
            model.clone(),
            "full-access".into(),
            "default".into(),
            created,
        );
        t.branch = Some(format!("afk/bench-{i}"));
        t.worktree_path = Some(format!("/srv/bench/wt/{i}"));
        let turns = messages.div_ceil(2).max(1);
        let per_turn = activities.div_ceil(turns);
        let mut written_msgs = 0;
        let mut written_acts = 0;
        let mut seq = state.sequence();
        for n in 1..=turns {
            let at = created + TimeDelta::minutes(10 * n as i64);
            let turn_id: Shared = Shared::from(format!("turn-{}-{n}", t.id));
            t.turns_started = n as u32;
            if written_msgs < messages {
                t.messages
                    .push(message(&t.id, "user", &user_text, &turn_id, at, n));
                written_msgs += 1;
            }
            let mut k = 0;
            while k < per_turn && written_acts < activities {
                seq += 1;
                let act_at = at + TimeDelta::seconds(k as i64 + 1);
                let last = k + 1 == per_turn || written_acts + 1 == activities;
                let (tone, kind, summary, payload) = if last {
                    context_window(&mut t.tokens_total)
                } else if k % 40 == 1 && k + 2 < per_turn {
                    approval(&t.id, n, k, "approval.requested")
                } else if k % 40 == 2 && k + 1 < per_turn {
                    approval(&t.id, n, k - 1, "approval.resolved")
                } else if k % 2 == 0 {
                    tool("tool.started", &tool_input)
                } else {
                    tool("tool.completed", &tool_input)
                };
                t.activities.push(Activity {
                    id: format!("act-{}-{}", t.id, written_acts + 1),
                    tone,
                    kind,
                    summary,
                    payload,
                    turn_id: Some(turn_id.clone()),
                    sequence: seq,
                    created_at: Ts(act_at),
                    turn_no: n as u32,
                });
                written_acts += 1;
                k += 1;
            }
            let running = n == turns && i % 10 == 3;
            let done = at + TimeDelta::minutes(8);
            let assistant_id = format!("{turn_id}-assistant");
            if written_msgs < messages && !running {
                let mut m = message(&t.id, "assistant", &assistant_text, &turn_id, done, n);
                m.id = assistant_id.clone();
                t.messages.push(m);
                written_msgs += 1;
            }
            if !running {
                t.checkpoints.push(Checkpoint {
                    turn_id: turn_id.clone(),
                    checkpoint_turn_count: n as u32,
                    checkpoint_ref: format!("refs/t3/checkpoints/{}/turn/{n}", t.id),
                    status: "ready",
                    files: [],
                    assistant_message_id: Some(assistant_id.clone()),
                    completed_at: Ts(done),
                });
            }
            t.latest_turn = Some(Turn {
                turn_id: turn_id.clone(),
                state: if running {
                    TurnState::Running
                } else {
                    TurnState::Completed
                },
                requested_at: Ts(at),
                started_at: Some(Ts(at)),
                completed_at: (!running).then_some(Ts(done)),
                assistant_message_id: (!running).then_some(assistant_id),
            });
            t.session = Some(Session {
                thread_id: t.id.clone(),
                status: if running { "running" } else { "ready" },
                provider_name: Some("claudeAgent"),
                runtime_mode: "full-access".into(),
                active_turn_id: running.then(|| turn_id.clone()),
                last_error: None,
                updated_at: Ts(done),
            });
            t.updated_at = Ts(done);
        }
        if i % 50 == 7 {
            let (tone, kind, summary, payload) = approval(&t.id, turns, 0, "approval.requested");
            let n = t.activities.len() + 1;
            t.activities.push(Activity {
                id: format!("act-{}-{n}", t.id),
                tone,
                kind,
                summary,
                payload,
                turn_id: None,
                sequence: seq,
                created_at: t.updated_at,
                turn_no: turns as u32,
            });
        }
        if i % 100 == 99 {
            t.deleted_at = Some(t.updated_at);
        } else if i % 37 == 36 {
            t.archived_at = Some(t.updated_at);
        }
        let at = t.updated_at.0;
        state.push_thread(t);
        for _ in 0..seq.saturating_sub(state.sequence()) {
            state.bump(at);
        }
    }
}

fn message(
    thread: &str,
    role: &'static str,
    text: &Shared,
    turn_id: &Shared,
    at: DateTime<Utc>,
    n: usize,
) -> Message {
    Message {
        id: format!("msg-{thread}-{role}-{n}"),
        role,
        text: text.clone(),
        turn_id: Some(turn_id.clone()),
        streaming: false,
        created_at: Ts(at),
        updated_at: Ts(at),
        turn_no: n as u32,
    }
}

type ActivityParts = (&'static str, &'static str, Cow<'static, str>, Payload);

fn tool(kind: &'static str, input: &Shared) -> ActivityParts {
    (
        "tool",
        kind,
        Cow::Borrowed("Ran cargo test"),
        Payload::Tool {
            tool_name: "Bash",
            input: input.clone(),
        },
    )
}

fn approval(thread: &str, turn: usize, k: usize, kind: &'static str) -> ActivityParts {
    let request_id = format!("req-{thread}-{turn}-{k}");
    if kind == "approval.requested" {
        (
            "approval",
            kind,
            Cow::Borrowed("Run `git push origin HEAD:main`?"),
            Payload::Approval {
                request_id,
                request_kind: "command",
                detail: "git push origin HEAD:main".into(),
            },
        )
    } else {
        (
            "info",
            kind,
            Cow::Borrowed("Approval resolved"),
            Payload::Resolved {
                request_id,
                decision: Some("accept".into()),
            },
        )
    }
}

/// One request's usage (per-request counters, cumulative `totalProcessedTokens`, as T3).
fn context_window(total: &mut TokenCounts) -> ActivityParts {
    let turn = TokenCounts::default();
    total.input += turn.input;
    total.cached_input += turn.cached_input;
    total.output += turn.output;
    (
        "info",
        "context-window.updated",
        Cow::Borrowed("Context window updated"),
        Payload::ContextWindow {
            used_tokens: turn.input,
            total_processed_tokens: total.input + total.output,
            max_tokens: 200_000,
            input_tokens: turn.input,
            cached_input_tokens: turn.cached_input,
            output_tokens: turn.output,
            last_input_tokens: turn.input,
            last_cached_input_tokens: turn.cached_input,
            last_output_tokens: turn.output,
        },
    )
}
