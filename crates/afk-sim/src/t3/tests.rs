//! Strictness tests of the T3 simulator: what it refuses, in which order, and how each version
//! answers, over real loopback HTTP.

use serde_json::{Value, json};

use super::*;
use crate::infra::{Remote, Sim};
use crate::server::{Running, start};

const RW: &str = "rw-token";
const RO: &str = "ro-token";

async fn serve(version: T3Version) -> (Running, tempfile_free::Dir) {
    let world = World::new(Sim::default());
    {
        let mut st = lock(&world.t3);
        st.set_version(version);
        st.add_token(RW, &[READ_SCOPE, OPERATE_SCOPE]);
        st.add_token(RO, &[READ_SCOPE]);
    }
    (
        start(world).await.expect("start"),
        tempfile_free::Dir::new(),
    )
}

/// A scratch directory removed on drop (afk-sim has no tempfile dependency).
mod tempfile_free {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let p = std::env::temp_dir().join(format!("afk-sim-t3-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p).expect("scratch dir");
            Dir(p)
        }
        pub fn path(&self, name: &str) -> String {
            let p = self.0.join(name);
            std::fs::create_dir_all(&p).expect("dir");
            p.to_string_lossy().into_owned()
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

struct Reply {
    status: u16,
    content_type: String,
    body: Value,
    text: String,
}

async fn send(
    r: &Running,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Reply {
    let url = format!("{}{path}", r.url(Remote::T3));
    let client = reqwest::Client::new();
    let mut req = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_owned());
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        content_type,
        body,
        text,
    }
}

async fn dispatch(r: &Running, body: Value) -> Reply {
    send(
        r,
        "POST",
        "/api/orchestration/dispatch",
        Some(RW),
        Some(&body.to_string()),
    )
    .await
}

fn project(id: &str, root: &str, cmd: &str) -> Value {
    json!({"type": "project.create", "commandId": cmd, "projectId": id, "title": "svc",
           "workspaceRoot": root, "createdAt": "2026-06-01T09:00:00.000Z"})
}

fn thread(id: &str, cmd: &str) -> Value {
    json!({"type": "thread.create", "commandId": cmd, "threadId": id, "projectId": "p",
           "title": "t", "modelSelection": {"instanceId": "claudeAgent", "model": "claude-sonnet-4-6"},
           "runtimeMode": "full-access", "interactionMode": "default", "branch": "b",
           "worktreePath": "/tmp", "createdAt": "2026-06-01T09:00:00.000Z"})
}

fn turn(thread: &str, cmd: &str) -> Value {
    json!({"type": "thread.turn.start", "commandId": cmd, "threadId": thread,
           "message": {"messageId": format!("{cmd}-m"), "role": "user", "text": "go", "attachments": []},
           "runtimeMode": "full-access", "interactionMode": "default",
           "createdAt": "2026-06-01T09:00:00.000Z"})
}

async fn setup_thread(r: &Running, dir: &tempfile_free::Dir) {
    assert_eq!(
        dispatch(r, project("p", &dir.path("repo"), "c1"))
            .await
            .status,
        200
    );
    assert_eq!(dispatch(r, thread("t", "c2")).await.status, 200);
}

fn without(mut v: Value, key: &str) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove(key);
    }
    v
}

#[tokio::test]
async fn auth_is_checked_before_the_payload() {
    let (r, _d) = serve(T3Version::V0_0_33).await;
    let garbage = Some("{not json");
    let a = send(&r, "POST", "/api/orchestration/dispatch", None, garbage).await;
    assert_eq!(
        (a.status, a.body["reason"].as_str()),
        (401, Some("missing_credential"))
    );
    let b = send(
        &r,
        "POST",
        "/api/orchestration/dispatch",
        Some("nope"),
        garbage,
    )
    .await;
    assert_eq!(
        (b.status, b.body["reason"].as_str()),
        (401, Some("invalid_credential"))
    );
    let c = send(&r, "POST", "/api/orchestration/dispatch", Some(RO), garbage).await;
    assert_eq!(c.status, 403);
    assert_eq!(c.body["requiredScope"], "orchestration:operate");
    let d = send(&r, "POST", "/api/orchestration/dispatch", Some(RW), garbage).await;
    assert_eq!(
        (d.status, d.body["_tag"].as_str()),
        (400, Some("HttpApiSchemaError"))
    );
    let e = send(&r, "GET", "/api/orchestration/shell", None, None).await;
    assert_eq!(e.status, 401);
    let env = send(&r, "GET", "/.well-known/t3/environment", None, None).await;
    assert_eq!(env.body["serverVersion"], "0.0.33");
}

#[tokio::test]
async fn dispatch_schema_is_strict() {
    let (r, dir) = serve(T3Version::V0_0_33).await;
    setup_thread(&r, &dir).await;
    let cases = [
        json!({"type": "thread.explode", "commandId": "x"}),
        without(turn("t", "c3"), "runtimeMode"),
        without(turn("t", "c3"), "interactionMode"),
        without(thread("t2", "c3"), "branch"),
        without(thread("t2", "c3"), "createdAt"),
        without(turn("t", "c3"), "commandId"),
        json!({"type": "thread.create", "commandId": "c3", "threadId": 7}),
        {
            let mut t = turn("t", "c3");
            t["message"]["role"] = json!("assistant");
            t
        },
        {
            let mut t = thread("t2", "c3");
            t["modelSelection"] = json!({"instanceId": "9bad", "model": "m"});
            t
        },
        json!({"type": "thread.delete", "commandId": "   ", "threadId": "t"}),
    ];
    for case in cases {
        let a = dispatch(&r, case.clone()).await;
        assert_eq!(a.status, 400, "{case}");
        assert_eq!(a.body["_tag"], "HttpApiSchemaError", "{case}");
    }
    assert_eq!(lock(&r.world.t3).thread_ids(), vec!["t".to_owned()]);
}

#[tokio::test]
async fn domain_rules_and_idempotency() {
    let (r, dir) = serve(T3Version::V0_0_33).await;
    let missing = format!("{}/nope", dir.path("x"));
    let a = dispatch(&r, project("p", &missing, "c0")).await;
    assert_eq!(
        (a.status, a.body["reason"].as_str()),
        (400, Some("invalid_command"))
    );
    let mut create = project("p", &missing, "c0b");
    create["createWorkspaceRootIfMissing"] = json!(true);
    assert_eq!(dispatch(&r, create).await.status, 200);
    assert!(std::path::Path::new(&missing).is_dir());

    let t = dispatch(&r, thread("t", "c2")).await;
    assert_eq!(t.status, 200);
    let again = dispatch(&r, thread("t", "c2")).await;
    assert_eq!(again.body, t.body, "same commandId, same receipt");
    let dup = dispatch(&r, thread("t", "c3")).await;
    assert_eq!(
        (dup.status, dup.body["reason"].as_str()),
        (500, Some("orchestration_dispatch_failed"))
    );
    assert_eq!(
        dispatch(&r, thread("t", "c3")).await.status,
        500,
        "a rejection stays one"
    );

    let mut boot = turn("ghost", "c4");
    boot["bootstrap"] = json!({"createThread": {"projectId": "p", "title": "x"}});
    assert_eq!(
        dispatch(&r, boot).await.status,
        500,
        "bootstrap is ignored over HTTP"
    );
    assert!(lock(&r.world.t3).thread_ref("ghost").is_none());

    let orphan = json!({"type": "thread.create", "commandId": "c5", "threadId": "t9", "projectId": "nope",
        "title": "t", "modelSelection": {"instanceId": "codex", "model": "gpt"}, "runtimeMode": "full-access",
        "branch": null, "worktreePath": null, "createdAt": "x"});
    assert_eq!(dispatch(&r, orphan).await.status, 500);

    assert_eq!(
        dispatch(
            &r,
            json!({"type": "thread.delete", "commandId": "d1", "threadId": "t"})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        dispatch(
            &r,
            json!({"type": "thread.delete", "commandId": "d2", "threadId": "t"})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        dispatch(&r, thread("t", "c6")).await.status,
        500,
        "deleted ids stay reserved"
    );
    let outcomes: Vec<&str> = lock(&r.world.t3)
        .commands()
        .iter()
        .map(|c| match c.outcome {
            CommandOutcome::Accepted { .. } => "accepted",
            CommandOutcome::Replayed { .. } => "replayed",
            CommandOutcome::Rejected { .. } => "rejected",
            CommandOutcome::Invalid { .. } => "invalid",
            CommandOutcome::Schema { .. } => "schema",
            CommandOutcome::Unauthorized { .. } => "unauthorized",
        })
        .collect();
    assert_eq!(
        outcomes[..4],
        ["invalid", "accepted", "accepted", "replayed"]
    );
}

#[tokio::test]
async fn version_0_0_27_serves_only_the_full_snapshot() {
    let (r, dir) = serve(T3Version::V0_0_27).await;
    setup_thread(&r, &dir).await;
    assert_eq!(dispatch(&r, turn("t", "c3")).await.status, 200);
    r.world.sim.clock.advance_secs(1000);
    for path in [
        "/api/orchestration/shell",
        "/api/orchestration/threads/t",
        "/api/anything",
    ] {
        let a = send(&r, "GET", path, Some(RW), None).await;
        assert_eq!(a.status, 200, "{path}");
        assert!(a.content_type.starts_with("text/html"), "{path}");
        assert!(a.text.contains("<html"));
    }
    let s = send(&r, "GET", "/api/orchestration/snapshot", Some(RO), None).await;
    assert_eq!(s.content_type, "application/json");
    let t = &s.body["threads"][0];
    assert_eq!(t["messages"].as_array().map(Vec::len), Some(2));
    assert_eq!(t["checkpoints"].as_array().map(Vec::len), Some(1));
    assert_eq!(t["latestTurn"]["state"], "completed");
    // v0.0.27 keeps the client's createdAt on the message.
    assert_eq!(t["messages"][0]["createdAt"], "2026-06-01T09:00:00.000Z");
    let turn_auto = {
        let mut v = turn("t", "c9");
        v["runtimeMode"] = json!("auto");
        v
    };
    assert_eq!(
        dispatch(&r, turn_auto).await.status,
        400,
        "`auto` is newer than 0.0.27"
    );
}

#[tokio::test]
async fn version_0_0_33_serves_shell_detail_windows_and_a_light_snapshot() {
    let (r, dir) = serve(T3Version::V0_0_33).await;
    setup_thread(&r, &dir).await;
    for n in 1..=3 {
        assert_eq!(
            dispatch(&r, turn("t", &format!("turn-{n}"))).await.status,
            200
        );
        r.world.sim.clock.advance_secs(1000);
    }
    let snap = send(&r, "GET", "/api/orchestration/snapshot", Some(RO), None).await;
    let t = &snap.body["threads"][0];
    assert_eq!(t["messages"], json!([]));
    assert_eq!(t["activities"], json!([]));
    assert_eq!(t["latestTurn"]["state"], "completed");

    let shell = send(&r, "GET", "/api/orchestration/shell", Some(RO), None).await;
    assert_eq!(shell.body["threads"][0]["hasPendingApprovals"], false);
    assert!(shell.body["threads"][0].get("messages").is_none());

    let full = send(&r, "GET", "/api/orchestration/threads/t", Some(RO), None).await;
    assert_eq!(
        full.body["thread"]["messages"].as_array().map(Vec::len),
        Some(6)
    );
    let last = send(
        &r,
        "GET",
        "/api/orchestration/threads/t?turnLimit=1",
        Some(RO),
        None,
    )
    .await;
    let msgs = &last.body["thread"]["messages"];
    assert_eq!(msgs.as_array().map(Vec::len), Some(2));
    assert_eq!(msgs[0]["id"], "turn-3-m");
    assert_eq!(last.body["page"]["hasMore"], true);
    let cursor = last.body["page"]["beforeCursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let older = send(
        &r,
        "GET",
        &format!("/api/orchestration/threads/t?turnLimit=1&beforeCursor={cursor}"),
        Some(RO),
        None,
    )
    .await;
    assert_eq!(older.body["thread"]["messages"][0]["id"], "turn-2-m");
    let bad = send(
        &r,
        "GET",
        "/api/orchestration/threads/t?turnLimit=0",
        Some(RO),
        None,
    )
    .await;
    assert_eq!(bad.status, 400);
    let missing = send(&r, "GET", "/api/orchestration/threads/zzz", Some(RO), None).await;
    assert_eq!(
        (missing.status, missing.body["reason"].as_str()),
        (404, Some("thread_not_found"))
    );

    assert_eq!(
        dispatch(
            &r,
            json!({"type": "thread.archive", "commandId": "a", "threadId": "t"})
        )
        .await
        .status,
        200
    );
    let shell = send(&r, "GET", "/api/orchestration/shell", Some(RO), None).await;
    assert_eq!(
        shell.body["threads"],
        json!([]),
        "archived threads leave the shell"
    );
    let gone = send(&r, "GET", "/api/orchestration/threads/t", Some(RO), None).await;
    assert_eq!(gone.status, 404);
}

#[tokio::test]
async fn turns_follow_the_clock_and_scripts() {
    let (r, dir) = serve(T3Version::V0_0_33).await;
    setup_thread(&r, &dir).await;
    lock(&r.world.t3).script_next_turn(
        "t",
        ScriptedTurn {
            outcome: TurnOutcome::Error {
                message: "provider crashed".into(),
            },
            duration_secs: Some(10),
            tokens: None,
            requests: None,
        },
    );
    assert_eq!(dispatch(&r, turn("t", "c3")).await.status, 200);
    let phase = |r: &Running| {
        let st = lock(&r.world.t3);
        st.thread_ref("t").map(|t| {
            (
                t.latest_turn.as_ref().map(|l| l.state),
                t.session.as_ref().map(|s| s.status),
            )
        })
    };
    settle(&r.world);
    assert_eq!(
        phase(&r),
        Some((None, Some("starting"))),
        "the clock stands still"
    );
    r.world.sim.clock.advance_secs(5);
    settle(&r.world);
    assert_eq!(
        phase(&r),
        Some((Some(model::TurnState::Running), Some("running")))
    );
    r.world.sim.clock.advance_secs(10);
    settle(&r.world);
    assert_eq!(
        phase(&r),
        Some((Some(model::TurnState::Error), Some("error")))
    );
    let snap = send(&r, "GET", "/api/orchestration/shell", Some(RO), None).await;
    assert_eq!(
        snap.body["threads"][0]["session"]["lastError"],
        "provider crashed"
    );
}

#[test]
fn seeded_history_has_the_requested_shape() {
    let mut st = State::new(T3Version::V0_0_27);
    seed_history(&mut st, 120, 50, 200);
    let doc: Value = serde_json::from_slice(&wire::snapshot(&st)).expect("json");
    let threads = doc["threads"].as_array().expect("threads");
    assert_eq!(threads.len(), 120);
    assert_eq!(threads[0]["messages"].as_array().map(Vec::len), Some(50));
    assert_eq!(threads[0]["activities"].as_array().map(Vec::len), Some(200));
    let deleted = threads.iter().filter(|t| !t["deletedAt"].is_null()).count();
    assert_eq!(deleted, 1);
    let pending = st
        .threads()
        .iter()
        .filter(|t| !t.pending_approvals().is_empty())
        .count();
    assert_eq!(pending, 3, "threads 7, 57, 107");
    assert!(doc["snapshotSequence"].as_u64().is_some_and(|s| s > 0));
}
