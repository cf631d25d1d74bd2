//! The T3 client against the T3 simulator, on both modelled versions: detection, the one fleet
//! read, thread detail, the dispatch sequence, idempotency, and every kind of refusal.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use afk_core::evidence::{PendingRequest, TokenUsage, TurnState};
use afk_remotes::error::ErrorKind;
use afk_remotes::http::{RetryPolicy, SecretFile};
use afk_remotes::t3::{
    CreateProject, CreateThread, Environment, FleetSource, ModelSelection, RuntimeMode, StartTurn,
    T3, T3Rejection, rejection,
};
use afk_sim::infra::{FaultAction, FaultRule, Remote, Sim};
use afk_sim::server::{Running, start};
use afk_sim::t3::{
    DEFAULT_REQUESTS, OPERATE_SCOPE, READ_SCOPE, ScriptedTurn, T3Version, TokenCounts,
    TurnCompletion, TurnOutcome,
};
use afk_sim::world::World;
use chrono::{DateTime, Utc};

const TOKEN: &str = "t3-token-operate-7f3a";

struct Harness {
    running: Running,
    dir: tempfile::TempDir,
    t3: T3,
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(10),
        deadline: None,
        default_rate_limit_wait: Duration::from_millis(10),
        max_body_bytes: afk_remotes::http::DEFAULT_MAX_BODY_BYTES,
    }
}

async fn harness(version: T3Version) -> Harness {
    let world = World::new(Sim::default());
    {
        let mut st = world.t3.lock().expect("t3 state");
        st.set_version(version);
        st.add_token(TOKEN, &[READ_SCOPE, OPERATE_SCOPE]);
        st.add_token("read-only-token", &[READ_SCOPE]);
    }
    let running = start(world).await.expect("simulators start");
    let dir = tempfile::tempdir().expect("temp dir");
    let t3 = client(&running, &dir, "token", TOKEN);
    Harness { running, dir, t3 }
}

fn client(running: &Running, dir: &tempfile::TempDir, name: &str, token: &str) -> T3 {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("{token}\n")).expect("token file");
    T3::new(running.url(Remote::T3), SecretFile::new(path), policy()).expect("client")
}

impl Harness {
    fn now(&self) -> DateTime<Utc> {
        self.running.world.sim.now()
    }
    fn advance(&self, secs: i64) {
        self.running.world.sim.clock.advance_secs(secs);
    }
    fn state(&self) -> std::sync::MutexGuard<'_, afk_sim::t3::State> {
        self.running.world.t3.lock().expect("t3 state")
    }
    fn requests(&self, path: &str) -> Vec<afk_sim::infra::RequestRecord> {
        self.running
            .world
            .sim
            .requests()
            .into_iter()
            .filter(|r| r.remote == Remote::T3 && r.path.contains(path))
            .collect()
    }
    fn root(&self, name: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).expect("dir");
        p.to_string_lossy().into_owned()
    }

    fn project(&self, id: &str, root: &str, command_id: &str) -> CreateProject {
        CreateProject {
            command_id: command_id.into(),
            project_id: id.into(),
            title: "svc-api".into(),
            workspace_root: root.into(),
            create_workspace_root_if_missing: false,
            created_at: self.now(),
        }
    }
    fn thread(&self, id: &str, project: &str, command_id: &str) -> CreateThread {
        CreateThread {
            command_id: command_id.into(),
            thread_id: id.into(),
            project_id: project.into(),
            title: "fix flaky test".into(),
            model: ModelSelection {
                instance_id: "claudeAgent".into(),
                model: "claude-sonnet-4-6".into(),
                options: Vec::new(),
            },
            runtime_mode: RuntimeMode::FullAccess,
            branch: format!("afk/{id}"),
            worktree_path: self.root(&format!("wt-{id}")),
            created_at: self.now(),
        }
    }
    fn turn(&self, thread: &str, command_id: &str, text: &str) -> StartTurn {
        StartTurn {
            command_id: command_id.into(),
            thread_id: thread.into(),
            message_id: format!("{command_id}-msg"),
            text: text.into(),
            runtime_mode: RuntimeMode::FullAccess,
            model: None,
            created_at: self.now(),
        }
    }

    /// project + thread `t1` + a first turn; returns the thread's creation receipt sequence.
    async fn dispatch_run(&self) -> u64 {
        let root = self.root("repo");
        self.t3
            .create_project(&self.project("p1", &root, "c-project"))
            .await
            .expect("project.create");
        let seq = self
            .t3
            .create_thread(&self.thread("t1", "p1", "c-thread"))
            .await
            .expect("thread.create")
            .sequence;
        self.t3
            .start_turn(&self.turn("t1", "c-turn-1", "Fix the flaky test"))
            .await
            .expect("thread.turn.start");
        seq
    }
}

#[tokio::test]
async fn environment_tells_the_versions_apart() {
    for (version, shell, light) in [
        (T3Version::V0_0_27, false, false),
        (T3Version::V0_0_33, true, true),
    ] {
        let h = harness(version).await;
        let env = h.t3.environment().await.expect("environment");
        assert_eq!(env.server_version, version.server_version());
        assert_eq!((env.has_shell, env.light_snapshot), (shell, light));
        // No credential is needed (or sent) for the well-known document.
        assert!(h.requests("/.well-known/t3/environment")[0].status == 200);
    }
}

#[tokio::test]
async fn full_dispatch_sequence_runs_a_turn_to_completion() {
    let h = harness(T3Version::V0_0_33).await;
    let seen: Arc<Mutex<Vec<TurnCompletion>>> = Arc::default();
    let sink = seen.clone();
    h.state().set_turn_hook(Arc::new(move |_world, c| {
        sink.lock().expect("sink").push(c.clone());
    }));
    let env = h.t3.environment().await.expect("environment");
    h.dispatch_run().await;

    let body = &h.requests("/api/orchestration/dispatch")[1].body;
    let sent: serde_json::Value = serde_json::from_str(body).expect("json body");
    assert_eq!(sent["branch"], "afk/t1");
    assert_eq!(sent["interactionMode"], "default");
    assert!(
        sent["createdAt"]
            .as_str()
            .is_some_and(|s| s.ends_with(".000Z"))
    );

    // Requested, not yet running: latestTurn still describes the previous (no) turn.
    let fleet = h.t3.fleet(&env).await.expect("fleet");
    assert_eq!(fleet.source, FleetSource::Shell);
    let t = fleet.thread("t1").expect("thread in the shell");
    assert_eq!(t.latest_turn, None);
    assert_eq!(t.session_status.as_deref(), Some("starting"));
    assert!(t.latest_user_message_at.is_some());
    assert_eq!(t.branch.as_deref(), Some("afk/t1"));

    h.advance(5);
    let fleet = h.t3.fleet(&env).await.expect("fleet");
    let turn = fleet
        .thread("t1")
        .and_then(|t| t.latest_turn.clone())
        .expect("turn");
    assert_eq!(turn.state, TurnState::Running);
    assert_eq!(fleet.running_threads(), 1);
    assert!(seen.lock().expect("sink").is_empty());

    h.advance(600);
    let fleet = h.t3.fleet(&env).await.expect("fleet");
    let t = fleet.thread("t1").expect("thread");
    assert_eq!(
        t.latest_turn.as_ref().map(|t| t.state),
        Some(TurnState::Completed)
    );
    assert_eq!(t.session_status.as_deref(), Some("ready"));
    assert_eq!(fleet.running_threads(), 0);
    let done = seen.lock().expect("sink").clone();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].thread_id, "t1");
    assert_eq!(done[0].turn_number, 1);
    assert_eq!(done[0].message_text, "Fix the flaky test");
    assert!(done[0].worktree_path.ends_with("wt-t1"));
    assert_eq!(done[0].branch.as_deref(), Some("afk/t1"));

    let detail =
        h.t3.thread_detail("t1")
            .await
            .expect("detail")
            .expect("present");
    assert!(detail.has_message("c-turn-1-msg"));
    assert_eq!(
        detail.latest_turn.map(|t| t.state),
        Some(TurnState::Completed)
    );
    assert!(
        h.requests("/api/orchestration/threads/t1")[0]
            .query
            .contains("turnLimit=1")
    );
}

#[tokio::test]
async fn interrupt_and_delete() {
    let h = harness(T3Version::V0_0_33).await;
    let env = h.t3.environment().await.expect("environment");
    h.dispatch_run().await;
    h.advance(10);
    h.t3.interrupt("t1", "c-interrupt", h.now())
        .await
        .expect("interrupt");
    let fleet = h.t3.fleet(&env).await.expect("fleet");
    let turn = fleet
        .thread("t1")
        .and_then(|t| t.latest_turn.clone())
        .expect("turn");
    assert_eq!(turn.state, TurnState::Interrupted);

    h.t3.delete_thread("t1", "c-delete").await.expect("delete");
    assert!(
        h.t3.fleet(&env)
            .await
            .expect("fleet")
            .thread("t1")
            .is_none()
    );
    assert_eq!(h.t3.thread_detail("t1").await.expect("detail"), None);
    assert_eq!(h.t3.thread_detail("never-was").await.expect("detail"), None);
    // A deleted id stays reserved.
    let err =
        h.t3.create_thread(&h.thread("t1", "p1", "c-thread-again"))
            .await
            .expect_err("reserved");
    assert!(matches!(
        rejection(&err),
        T3Rejection::DispatchRejected { .. }
    ));
}

#[tokio::test]
async fn full_snapshot_on_0_0_27_carries_history_and_deleted_threads() {
    let h = harness(T3Version::V0_0_27).await;
    let env = h.t3.environment().await.expect("environment");
    h.dispatch_run().await;
    h.advance(700);
    h.t3.create_thread(&h.thread("t2", "p1", "c-thread-2"))
        .await
        .expect("second thread");
    h.t3.delete_thread("t2", "c-delete-2")
        .await
        .expect("delete");

    let fleet = h.t3.fleet(&env).await.expect("fleet");
    assert_eq!(fleet.source, FleetSource::FullSnapshot);
    assert_eq!(h.requests("/api/orchestration/snapshot").len(), 1);
    assert!(h.requests("/api/orchestration/shell").is_empty());
    let t1 = fleet.thread("t1").expect("t1");
    assert_eq!(
        t1.latest_turn.as_ref().map(|t| t.state),
        Some(TurnState::Completed)
    );
    assert_eq!(t1.pending_approval, Some(false));
    assert_eq!(t1.message_ids.len(), 2, "user and assistant message");
    assert!(fleet.thread("t2").expect("deleted thread listed").deleted);
    assert!(fleet.snapshot_sequence >= 5);
    let detail = fleet
        .detail_from_snapshot("t1")
        .expect("detail from snapshot");
    assert!(detail.has_message("c-turn-1-msg"));
    assert_eq!(
        sums(&detail.tokens),
        (u64::from(DEFAULT_REQUESTS), TokenCounts::default())
    );
    assert!(fleet.project_for_root(&h.root("repo")).is_some());

    // There is no thread detail over HTTP before 0.0.29: refused locally, nothing sent.
    let err =
        h.t3.thread_detail("t1")
            .await
            .expect_err("no detail on 0.0.27");
    assert!(matches!(err.kind, ErrorKind::Local(_)), "{err}");
    assert!(h.requests("/api/orchestration/threads").is_empty());
}

#[tokio::test]
async fn the_web_apps_html_is_never_taken_for_data() {
    let h = harness(T3Version::V0_0_27).await;
    // A client that wrongly believes the server has /shell gets the SPA page (200 text/html).
    let wrong = Environment::from_version("0.0.33").expect("version");
    let err = h.t3.fleet(&wrong).await.expect_err("html is not a fleet");
    assert!(
        matches!(&err.kind, ErrorKind::Decode(d) if d.contains("text/html")),
        "{err}"
    );
    assert_eq!(h.requests("/api/orchestration/shell")[0].status, 200);

    // Environment read while the server was 0.0.33, then downgraded: detail gets HTML too.
    let h = harness(T3Version::V0_0_33).await;
    h.t3.environment().await.expect("environment");
    h.state().set_version(T3Version::V0_0_27);
    let err =
        h.t3.thread_detail("t1")
            .await
            .expect_err("html is not a thread");
    assert!(
        matches!(&err.kind, ErrorKind::Decode(d) if d.contains("text/html")),
        "{err}"
    );
}

/// How many request snapshots, and their counters summed.
fn sums(tokens: &[TokenUsage]) -> (u64, TokenCounts) {
    let mut sum = TokenCounts {
        input: 0,
        cached_input: 0,
        output: 0,
    };
    for t in tokens {
        sum.input += t.input;
        sum.cached_input += t.cached_input;
        sum.output += t.output;
    }
    (tokens.len() as u64, sum)
}

#[tokio::test]
async fn pending_approval_is_derived_on_0_0_27_and_read_on_0_0_33() {
    for version in [T3Version::V0_0_27, T3Version::V0_0_33] {
        let h = harness(version).await;
        h.state().script_next_turn(
            "t1",
            ScriptedTurn {
                outcome: TurnOutcome::AskApproval {
                    summary: "Run `git push --force`?".into(),
                },
                duration_secs: Some(60),
                tokens: None,
                requests: None,
            },
        );
        let env = h.t3.environment().await.expect("environment");
        h.dispatch_run().await;
        h.advance(5 + 60);
        let fleet = h.t3.fleet(&env).await.expect("fleet");
        let t = fleet.thread("t1").expect("thread");
        assert_eq!(t.pending_approval, Some(true), "{version:?}");
        assert_eq!(t.pending_user_input, Some(false), "{version:?}");
        assert_eq!(
            fleet.running_threads(),
            1,
            "waiting on a person still counts as busy"
        );
        let detail = match version {
            T3Version::V0_0_27 => fleet.detail_from_snapshot("t1"),
            _ => h.t3.thread_detail("t1").await.expect("detail"),
        }
        .expect("detail");
        assert_eq!(
            detail.pending,
            Some(PendingRequest::Approval {
                summary: "Run `git push --force`?".into()
            })
        );
    }
}

#[tokio::test]
async fn a_runs_spend_is_the_sum_of_its_requests_seen_while_it_runs() {
    let pricing = afk_core::config::Pricing {
        input: 3.0,
        output: 15.0,
        cached_input: 0.3,
    };
    for version in [T3Version::V0_0_27, T3Version::V0_0_33] {
        let h = harness(version).await;
        // 200 requests over 600 s: 3M input (2M of it cached) and 200k output in all:
        // 1M × $3 + 2M × $0.30 + 0.2M × $15 = $6.60.
        h.state().script_next_turn(
            "t1",
            ScriptedTurn {
                duration_secs: Some(600),
                tokens: Some(TokenCounts {
                    input: 3_000_000,
                    cached_input: 2_000_000,
                    output: 200_000,
                }),
                requests: Some(200),
                ..ScriptedTurn::default()
            },
        );
        let env = h.t3.environment().await.expect("environment");
        h.dispatch_run().await;
        // Half way: the first 100 requests are there, each on its own.
        h.advance(5 + 300);
        let mid = read_detail(&h, &env).await;
        assert_eq!(mid.tokens.len(), 100, "{version:?}");
        let turns = afk_core::spend::estimate_turns(&mid.tokens, &pricing);
        assert_eq!(afk_core::spend::total(&turns), (3.3, 100), "{version:?}");
        // The last snapshot read as a running total (afk's old reading) is 6 cents.
        let last = mid.tokens.last().expect("a request");
        assert_eq!((last.input, last.output), (15_000, 1_000));
        h.advance(300);
        let done = read_detail(&h, &env).await;
        let turns = afk_core::spend::estimate_turns(&done.tokens, &pricing);
        assert_eq!(afk_core::spend::total(&turns), (6.6, 200), "{version:?}");
    }
}

/// Thread detail as afk reads it on this server: over HTTP, or from the full snapshot.
async fn read_detail(h: &Harness, env: &Environment) -> afk_remotes::t3::ThreadDetail {
    if env.has_shell {
        h.t3.thread_detail("t1").await.expect("detail")
    } else {
        h.t3.fleet(env)
            .await
            .expect("fleet")
            .detail_from_snapshot("t1")
    }
    .expect("detail")
}

#[tokio::test]
async fn pending_question_and_tokens_from_thread_detail() {
    for version in [T3Version::V0_0_27, T3Version::V0_0_33] {
        let h = harness(version).await;
        let env = h.t3.environment().await.expect("environment");
        let second = TokenCounts {
            input: 1000,
            cached_input: 500,
            output: 100,
        };
        {
            let mut st = h.state();
            st.script_next_turn("t1", ScriptedTurn::default());
            st.script_next_turn(
                "t1",
                ScriptedTurn {
                    outcome: TurnOutcome::AskUserInput {
                        question: "Which DB should I use?".into(),
                    },
                    duration_secs: Some(30),
                    tokens: Some(second),
                    requests: Some(4),
                },
            );
        }
        h.dispatch_run().await;
        h.advance(700);
        h.t3.start_turn(&h.turn("t1", "c-turn-2", "Now the second part"))
            .await
            .expect("second turn");
        h.advance(5 + 30);
        let fleet = h.t3.fleet(&env).await.expect("fleet");
        let t = fleet.thread("t1").expect("thread");
        assert_eq!(t.pending_user_input, Some(true), "{version:?}");
        assert_eq!(t.pending_approval, Some(false), "{version:?}");
        let detail = match version {
            T3Version::V0_0_27 => fleet.detail_from_snapshot("t1"),
            _ => h.t3.thread_detail("t1").await.expect("detail"),
        }
        .expect("detail");
        assert_eq!(
            detail.pending,
            Some(PendingRequest::UserInput {
                question: "Which DB should I use?".into()
            })
        );
        // One snapshot per request; on 0.0.33 the window only has the second turn's.
        let first = TokenCounts::default();
        let both = TokenCounts {
            input: first.input + second.input,
            cached_input: first.cached_input + second.cached_input,
            output: first.output + second.output,
        };
        let expected = match version {
            T3Version::V0_0_27 => (u64::from(DEFAULT_REQUESTS) + 4, both),
            _ => (4, second),
        };
        assert_eq!(sums(&detail.tokens), expected, "{version:?}");
        // Only totalProcessedTokens is cumulative: the thread's input and output so far.
        assert_eq!(
            detail.tokens.last().and_then(|t| t.total_processed),
            Some(both.input + both.output),
            "{version:?}"
        );
        let last = detail.tokens.last().expect("a request");
        assert_eq!(last.turn_id.as_deref(), Some("turn-t1-2"), "{version:?}");
        assert_eq!((last.input, last.output), (250, 25), "{version:?}");
        assert!(detail.has_message("c-turn-2-msg"));
        assert_eq!(
            detail.has_message("c-turn-1-msg"),
            version == T3Version::V0_0_27
        );
    }
}

#[tokio::test]
async fn resending_a_command_returns_the_original_receipt() {
    let h = harness(T3Version::V0_0_33).await;
    let seq = h.dispatch_run().await;
    let again =
        h.t3.create_thread(&h.thread("t1", "p1", "c-thread"))
            .await
            .expect("resend is answered");
    assert_eq!(again.sequence, seq);
    assert_eq!(h.state().thread_ids(), vec!["t1".to_owned()]);
    let turn_again =
        h.t3.start_turn(&h.turn("t1", "c-turn-1", "Fix the flaky test"))
            .await
            .expect("turn resend");
    assert!(turn_again.sequence > seq);
    assert_eq!(h.state().turns_started("t1"), 1, "no second agent turn");
}

#[tokio::test]
async fn a_new_command_id_for_an_existing_thread_is_a_rejection_not_retried() {
    let h = harness(T3Version::V0_0_33).await;
    h.dispatch_run().await;
    let before = h.requests("/api/orchestration/dispatch").len();
    let err =
        h.t3.create_thread(&h.thread("t1", "p1", "c-thread-other"))
            .await
            .expect_err("duplicate thread");
    let T3Rejection::DispatchRejected { trace_id } = rejection(&err) else {
        panic!("expected a dispatch rejection, got {err}");
    };
    assert!(!trace_id.is_empty());
    assert!(err.to_string().contains(&trace_id), "{err}");
    assert_eq!(
        h.requests("/api/orchestration/dispatch").len(),
        before + 1,
        "not retried"
    );
    // The same rejected command fails again.
    let err =
        h.t3.create_thread(&h.thread("t1", "p1", "c-thread-other"))
            .await
            .expect_err("still rejected");
    assert!(matches!(
        rejection(&err),
        T3Rejection::DispatchRejected { .. }
    ));
    // And a turn on a thread that does not exist (bootstrap would be ignored anyway).
    let err =
        h.t3.start_turn(&h.turn("nope", "c-turn-x", "hi"))
            .await
            .expect_err("unknown thread");
    assert!(matches!(
        rejection(&err),
        T3Rejection::DispatchRejected { .. }
    ));
}

#[tokio::test]
async fn schema_mismatches_are_reported_as_such() {
    // `auto` only exists from 0.0.29.
    let h = harness(T3Version::V0_0_27).await;
    h.dispatch_run().await;
    let mut turn = h.turn("t1", "c-turn-auto", "x");
    turn.runtime_mode = RuntimeMode::Auto;
    let err = h.t3.start_turn(&turn).await.expect_err("schema");
    let T3Rejection::Schema(message) = rejection(&err) else {
        panic!("expected a schema rejection, got {err}");
    };
    assert!(message.contains("runtimeMode"), "{message}");

    // A turn.start without runtimeMode, as the simulator answers it, reaches the client as a
    // schema rejection too.
    let raw = reqwest::Client::new()
        .post(format!(
            "{}/api/orchestration/dispatch",
            h.running.url(Remote::T3)
        ))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({
            "type": "thread.turn.start", "commandId": "c-raw", "threadId": "t1",
            "message": {"messageId": "m", "role": "user", "text": "x", "attachments": []},
            "interactionMode": "default", "createdAt": "2026-06-01T09:00:00.000Z"
        }))
        .send()
        .await
        .expect("raw dispatch");
    assert_eq!(raw.status().as_u16(), 400);
    let body = raw.text().await.expect("body");
    h.running.world.sim.add_fault(FaultRule {
        remote: Some(Remote::T3),
        method: Some("POST".into()),
        path: Some("/dispatch".into()),
        skip: 0,
        times: Some(1),
        action: FaultAction::Status {
            status: 400,
            body: Some(body),
            headers: Default::default(),
        },
        seen: 0,
    });
    let err =
        h.t3.start_turn(&h.turn("t1", "c-turn-2", "x"))
            .await
            .expect_err("schema");
    assert_eq!(
        rejection(&err),
        T3Rejection::Schema("Missing key at [\"runtimeMode\"]".into())
    );
}

#[tokio::test]
async fn a_missing_workspace_root_is_an_invalid_command() {
    let h = harness(T3Version::V0_0_33).await;
    let missing = h.dir.path().join("does-not-exist");
    let err =
        h.t3.create_project(&h.project("p1", &missing.to_string_lossy(), "c-p"))
            .await
            .expect_err("no such root");
    assert_eq!(rejection(&err), T3Rejection::InvalidCommand);
    assert!(err.to_string().contains("workspaceRoot"), "{err}");
    assert!(!missing.exists());
}

#[tokio::test]
async fn one_active_project_per_workspace_root_from_0_0_29() {
    for (version, second_ok) in [(T3Version::V0_0_27, true), (T3Version::V0_0_33, false)] {
        let h = harness(version).await;
        let root = h.root("repo");
        h.t3.create_project(&h.project("p1", &root, "c-p1"))
            .await
            .expect("first");
        let second = h.t3.create_project(&h.project("p2", &root, "c-p2")).await;
        assert_eq!(second.is_ok(), second_ok, "{version:?}");
    }
}

#[tokio::test]
async fn a_missing_scope_is_named_with_the_fix() {
    let h = harness(T3Version::V0_0_33).await;
    let reader = client(&h.running, &h.dir, "reader", "read-only-token");
    let env = reader.environment().await.expect("environment");
    reader.fleet(&env).await.expect("reading is allowed");
    let err = reader
        .create_project(&h.project("p1", &h.root("repo"), "c-p"))
        .await
        .expect_err("operate scope missing");
    assert_eq!(
        rejection(&err),
        T3Rejection::MissingScope("orchestration:operate".into())
    );
    let shown = err.to_string();
    assert!(
        shown.contains("orchestration:operate") && shown.contains("mint a token"),
        "{shown}"
    );
    assert!(h.state().project_ids().is_empty());
}

#[tokio::test]
async fn a_bad_token_is_unauthenticated_and_never_shown() {
    let h = harness(T3Version::V0_0_33).await;
    let secret = "wrong-secret-0b5e9d";
    let bad = client(&h.running, &h.dir, "bad", secret);
    let env = bad.environment().await.expect("environment needs no token");
    let err = bad.fleet(&env).await.expect_err("refused");
    assert_eq!(rejection(&err), T3Rejection::Unauthenticated);
    let err2 = bad
        .create_project(&h.project("p1", &h.root("repo"), "c-p"))
        .await
        .expect_err("refused");
    for e in [&err, &err2] {
        assert!(!e.to_string().contains(secret), "{e}");
        assert!(!format!("{e:?}").contains(secret), "{e:?}");
        assert!(e.to_string().contains("token file"), "{e}");
    }
    // The token file is read per request: fixing the file fixes the client.
    std::fs::write(h.dir.path().join("bad"), TOKEN).expect("rewrite");
    bad.fleet(&env).await.expect("the new token is used");
}

#[tokio::test]
async fn a_lost_dispatch_response_is_retried_safely() {
    let h = harness(T3Version::V0_0_33).await;
    let root = h.root("repo");
    h.t3.create_project(&h.project("p1", &root, "c-project"))
        .await
        .expect("project");
    h.running.world.sim.add_fault(FaultRule {
        remote: Some(Remote::T3),
        method: Some("POST".into()),
        path: Some("/api/orchestration/dispatch".into()),
        skip: 0,
        times: Some(1),
        action: FaultAction::DropAfter,
        seen: 0,
    });
    let receipt =
        h.t3.create_thread(&h.thread("t1", "p1", "c-thread"))
            .await
            .expect("the retry gets the original receipt");
    let st = h.state();
    assert_eq!(st.thread_ids(), vec!["t1".to_owned()]);
    let outcomes: Vec<String> = st
        .commands()
        .iter()
        .filter(|c| c.command_id.as_deref() == Some("c-thread"))
        .map(|c| format!("{:?}", c.outcome))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            format!("Accepted {{ sequence: {} }}", receipt.sequence),
            format!("Replayed {{ sequence: {} }}", receipt.sequence)
        ]
    );
}

#[tokio::test]
async fn a_plain_server_error_is_retried_but_a_rejection_is_not() {
    let h = harness(T3Version::V0_0_33).await;
    h.running.world.sim.add_fault(FaultRule {
        remote: Some(Remote::T3),
        method: Some("POST".into()),
        path: Some("/dispatch".into()),
        skip: 0,
        times: Some(1),
        action: FaultAction::Status {
            status: 500,
            body: Some(
                r#"{"_tag":"EnvironmentInternalError","code":"internal_error","reason":"orchestration_snapshot_failed","traceId":"x"}"#
                    .into(),
            ),
            headers: Default::default(),
        },
        seen: 0,
    });
    h.t3.create_project(&h.project("p1", &h.root("repo"), "c-p"))
        .await
        .expect("retried after a transient 500");
    assert_eq!(h.requests("/dispatch").len(), 2);
    assert_eq!(h.state().project_ids(), vec!["p1".to_owned()]);
}

#[tokio::test]
async fn reused_command_id_on_another_aggregate_returns_the_old_receipt() {
    // A trap of 0.0.27 (and 0.0.33): the server answers, but nothing is created.
    let h = harness(T3Version::V0_0_27).await;
    let seq = h.dispatch_run().await;
    let r =
        h.t3.create_thread(&h.thread("t2", "p1", "c-thread"))
            .await
            .expect("answered");
    assert_eq!(r.sequence, seq);
    assert_eq!(h.state().thread_ids(), vec!["t1".to_owned()]);
}

#[tokio::test]
async fn a_seeded_fleet_history_reads_in_one_request() {
    let h = harness(T3Version::V0_0_27).await;
    afk_sim::t3::seed_history(&mut h.state(), 300, 50, 200);
    let env = h.t3.environment().await.expect("environment");
    let fleet = h.t3.fleet(&env).await.expect("fleet");
    assert_eq!(h.requests("/api/orchestration").len(), 1);
    assert_eq!(fleet.threads.len(), 300);
    let visible = |i: usize| i % 100 != 99 && i % 37 != 36;
    let expected_running = (0..300).filter(|i| i % 10 == 3 && visible(*i)).count();
    assert_eq!(fleet.running_threads(), expected_running);
    let pending: Vec<&str> = fleet
        .threads
        .iter()
        .filter(|t| t.pending_approval == Some(true))
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(
        pending,
        [
            "bench-thread-00007",
            "bench-thread-00057",
            "bench-thread-00107",
            "bench-thread-00157",
            "bench-thread-00207",
            "bench-thread-00257"
        ]
    );
    assert_eq!(fleet.threads.iter().filter(|t| t.deleted).count(), 3);
    let t = fleet.thread("bench-thread-00000").expect("thread");
    assert_eq!(t.message_ids.len(), 50);
    let per = TokenCounts::default();
    assert_eq!(
        sums(&t.tokens),
        (
            25,
            TokenCounts {
                input: per.input * 25,
                cached_input: per.cached_input * 25,
                output: per.output * 25,
            }
        )
    );
}

#[tokio::test]
async fn newer_t3_archives_a_settled_thread_which_is_then_read_from_the_snapshot() {
    let h = harness(T3Version::V0_0_34).await;
    h.state().auto_archive_after_secs = Some(3_600);
    let env = h.t3.environment().await.expect("environment");
    assert_eq!(env.server_version, "0.0.34");
    h.dispatch_run().await;
    // A second thread whose turn runs for a day: a running thread is never archived.
    h.t3.create_thread(&h.thread("t2", "p1", "c-thread-2"))
        .await
        .expect("t2");
    h.state().set_turn_duration("t2", 86_400);
    h.t3.start_turn(&h.turn("t2", "c-turn-t2", "A long job"))
        .await
        .expect("t2 turn");
    h.advance(5 + 600);
    let fleet = h.t3.fleet(&env).await.expect("fleet");
    assert!(fleet.thread("t1").is_some(), "settled, not archived yet");
    // An hour of quiet later (and the janitor's next 10-minute sweep) t1 is archived.
    h.advance(3_600 + 600);
    let fleet = h.t3.fleet(&env).await.expect("fleet");
    assert!(
        fleet.thread("t1").is_none(),
        "archived threads leave /shell"
    );
    assert!(fleet.thread("t2").is_some(), "a running thread stays");
    assert_eq!(h.t3.thread_detail("t1").await.expect("404 is None"), None);
    let snapshot = h.t3.snapshot_fleet(&env).await.expect("snapshot");
    assert_eq!(snapshot.source, FleetSource::LightSnapshot);
    let t1 = snapshot.thread("t1").expect("the snapshot still lists it");
    assert!(t1.archived && !t1.deleted);
    let settled = t1.settled_view();
    assert_eq!(
        settled.latest_turn.as_ref().map(|t| t.state),
        Some(TurnState::Completed)
    );
    assert!(!settled.is_running());
    // A deleted thread is deleted in the snapshot too (afk calls that one missing).
    h.t3.delete_thread("t2", "c-delete-t2")
        .await
        .expect("delete");
    let snapshot = h.t3.snapshot_fleet(&env).await.expect("snapshot");
    assert!(snapshot.thread("t2").expect("listed").deleted);
}

#[tokio::test]
async fn without_the_setting_or_before_0_0_34_nothing_is_archived() {
    for (version, setting) in [(T3Version::V0_0_34, None), (T3Version::V0_0_33, Some(60))] {
        let h = harness(version).await;
        h.state().auto_archive_after_secs = setting;
        let env = h.t3.environment().await.expect("environment");
        h.dispatch_run().await;
        h.advance(5 + 600 + 86_400);
        let fleet = h.t3.fleet(&env).await.expect("fleet");
        assert!(fleet.thread("t1").is_some(), "{version:?}");
    }
}
