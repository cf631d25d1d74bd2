//! The plan as operators read it (text) and as tools read it (JSON).

use afk_core::effect::{DispatchSpec, Effect, Notice, WorktreeRemoval};
use afk_core::evidence::CloseReason;
use afk_core::model::{RepoName, RunId};
use afk_core::plan::{
    Decision, DispatchEntry, ErrorEntry, Plan, RunEntry, SkipEntry, SkipReason, TickKind,
    render_text,
};
use afk_core::record::Channel;

use crate::fixtures::{repo, run_id};

const SECRET_PROMPT: &str = "FULL PROMPT TEXT THAT MUST NOT BE PRINTED";

fn other() -> RepoName {
    "octo/api".parse().expect("repo")
}

fn poll_plan() -> Plan {
    let run = run_id();
    let mut plan = Plan::new(TickKind::Poll, true, false);
    plan.dispatch.push(DispatchEntry {
        repo: repo(),
        issue: 42,
        run: run.clone(),
        reason: "best eligible issue of octo/shop (priority 1, ready since 2025-03-01 08:00 UTC)"
            .to_owned(),
    });
    plan.skipped = vec![
        SkipEntry {
            repo: Some(repo()),
            issue: Some(43),
            reason: SkipReason::UntrustedLabeler,
            detail: "labelled by mallory (read)\n\u{1b}[31mFAKE LINE".to_owned(),
        },
        SkipEntry {
            repo: Some(other()),
            issue: None,
            reason: SkipReason::RepoPaused,
            detail: "migrating CI".to_owned(),
        },
        SkipEntry {
            repo: Some(repo()),
            issue: Some(44),
            reason: SkipReason::LowerPriority,
            detail: "lost the repo's slot to #42".to_owned(),
        },
    ];
    plan.effects = vec![
        Effect::AddLabel {
            repo: repo(),
            issue: 42,
            label: "agent-in-progress".to_owned(),
        },
        Effect::UpsertStatusComment {
            repo: repo(),
            issue: 42,
            run: run.clone(),
            comment_id: None,
            body: "x".repeat(1234),
        },
        Effect::Dispatch {
            repo: repo(),
            issue: 42,
            run: run.clone(),
            spec: Box::new(DispatchSpec {
                branch: run.branch(),
                worktree: "/data/afk/worktrees/octo__shop/octo__shop-42-1".to_owned(),
                default_branch: Some("main".to_owned()),
                project_id: "afk-octo__shop".to_owned(),
                project_title: "octo/shop".to_owned(),
                project_root: "/data/afk/repos/octo__shop".to_owned(),
                thread_id: "afk-octo__shop-42-1".to_owned(),
                thread_title: "octo/shop#42".to_owned(),
                message_id: "afk-octo__shop-42-1-msg-1".to_owned(),
                project_command_id: "afk-octo__shop-42-1-project-create-a1".to_owned(),
                thread_command_id: "afk-octo__shop-42-1-thread-create-a1".to_owned(),
                turn_command_id: "afk-octo__shop-42-1-turn-1-a1".to_owned(),
                prompt: SECRET_PROMPT.to_owned(),
            }),
        },
    ];
    plan
}

fn watch_plan() -> Plan {
    let run = run_id();
    let mut plan = Plan::new(TickKind::Watch, false, true);
    plan.runs = vec![
        RunEntry {
            repo: repo(),
            issue: 42,
            run: Some(run.clone()),
            phase: "ci".to_owned(),
            decision: Decision::FixForward,
            reason: "CI red (e2e), agent idle, attempt 2 of 5".to_owned(),
            spend_usd: None,
        },
        RunEntry {
            repo: other(),
            issue: 7,
            run: None,
            phase: "orphan".to_owned(),
            decision: Decision::Released,
            reason: "lock label without a readable run record".to_owned(),
            spend_usd: None,
        },
    ];
    plan.effects = vec![
        Effect::StartTurn {
            repo: repo(),
            issue: 42,
            run: run.clone(),
            thread_id: "afk-octo__shop-42-1".to_owned(),
            command_id: "afk-octo__shop-42-1-fix-2".to_owned(),
            message_id: "afk-octo__shop-42-1-msg-fix-2".to_owned(),
            prompt: SECRET_PROMPT.to_owned(),
        },
        Effect::UpsertStatusComment {
            repo: repo(),
            issue: 42,
            run: run.clone(),
            comment_id: Some(991),
            body: "y".repeat(2048),
        },
        Effect::Interrupt {
            repo: repo(),
            issue: 42,
            run: run.clone(),
            thread_id: "afk-octo__shop-42-1".to_owned(),
            command_id: "afk-octo__shop-42-1-interrupt-verdict".to_owned(),
        },
        Effect::RemoveLabel {
            repo: other(),
            issue: 7,
            label: "agent-in-progress".to_owned(),
        },
        Effect::PostComment {
            repo: other(),
            issue: 7,
            body: "Released an orphan lock.".to_owned(),
        },
        Effect::CloseIssue {
            repo: repo(),
            issue: 42,
            reason: CloseReason::Completed,
        },
        Effect::ReopenIssue {
            repo: repo(),
            issue: 42,
        },
        Effect::RemoveWorktree {
            repo: repo(),
            run: run.clone(),
            worktree: "/data/afk/worktrees/octo__shop/octo__shop-42-1".to_owned(),
            reason: WorktreeRemoval::Done,
        },
        Effect::RemoveWorktree {
            repo: other(),
            run: RunId::new(other(), 3, 1),
            worktree: "/data/afk/worktrees/octo__api/octo__api-3-1".to_owned(),
            reason: WorktreeRemoval::Evicted,
        },
        Effect::RemovePartialClone {
            repo: other(),
            run: RunId::new(other(), 5, 2),
            path: "/data/afk/worktrees/octo__api/octo__api-5-2.partial".to_owned(),
        },
        Effect::RemoveCacheDir {
            path: "/data/afk/cache/cargo".to_owned(),
        },
        Effect::Notify {
            repo: repo(),
            issue: 42,
            run: run.clone(),
            channel: Channel::Ntfy,
            notice: Notice {
                title: "octo/shop#42 frozen".to_owned(),
                message: "long markdown".to_owned(),
                priority: 5,
                tags: vec!["rotating_light".to_owned()],
                click: "https://github.com/octo/shop/issues/42".to_owned(),
                thread_url: "https://t3.example.test/threads/afk-octo__shop-42-1".to_owned(),
            },
        },
    ];
    plan.errors = vec![
        ErrorEntry {
            public: None,
            repo: Some(other()),
            issue: None,
            run: None,
            error: "github: GET /repos/octo/api/issues timed out after 3 attempts".to_owned(),
        },
        ErrorEntry {
            public: None,
            repo: None,
            issue: None,
            run: None,
            error: "t3: fleet read failed".to_owned(),
        },
    ];
    plan
}

#[test]
fn text_plans_match_snapshots() {
    insta::assert_snapshot!("plan_text_poll", render_text(&poll_plan()));
    insta::assert_snapshot!("plan_text_watch", render_text(&watch_plan()));
    insta::assert_snapshot!(
        "plan_text_empty",
        render_text(&Plan::new(TickKind::Poll, true, true))
    );
}

#[test]
fn json_plans_match_snapshots() {
    insta::assert_snapshot!("plan_json_poll", poll_plan().to_json());
    insta::assert_snapshot!("plan_json_watch", watch_plan().to_json());
}

#[test]
fn text_plan_is_concise_and_safe_for_a_terminal() {
    let text = render_text(&poll_plan());
    assert!(text.starts_with("afk poll tick · dry run (nothing was written) · kill switch off\n"));
    assert!(!text.contains(SECRET_PROMPT), "prompts are never printed");
    assert!(text.contains("(prompt 41 chars)"));
    assert!(text.contains("new comment (1234 chars)"));
    assert!(!text.contains('\u{1b}'));
    assert!(!text.lines().any(|l| l.starts_with("FAKE LINE")));
    // Skips are grouped by repo: both octo/shop skips sit under one heading.
    assert_eq!(text.matches("\n  octo/shop\n").count(), 1);
    let shop = text.find("\n  octo/shop\n").expect("shop group");
    let api = text.find("\n  octo/api\n").expect("api group");
    assert!(api < shop, "groups are ordered by repo name");
    assert!(text[shop..].contains("#44  lower-priority"));

    let watch = render_text(&watch_plan());
    assert!(watch.contains("kill switch ON"));
    assert!(!watch.contains(SECRET_PROMPT));
    assert!(watch.contains("octo/api#7  run (no record)  phase orphan  → released"));
    assert!(watch.contains("edit comment 991 (2048 chars)"));
    assert!(watch.contains("tick: t3: fleet read failed"));
}

#[test]
fn json_plan_has_the_documented_shape() {
    let v: serde_json::Value = serde_json::from_str(&poll_plan().to_json()).expect("json");
    for key in [
        "tick",
        "dry_run",
        "kill_switch",
        "dispatch",
        "skipped",
        "runs",
        "effects",
        "errors",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["tick"], "poll");
    assert_eq!(v["dispatch"][0]["run"], "octo__shop-42-1");
    assert_eq!(v["skipped"][0]["reason"], "untrusted-labeler");
    assert!(v["skipped"][1].get("issue").is_none());
    assert_eq!(v["effects"][0]["kind"], "add-label");
    assert_eq!(v["effects"][0]["label"], "agent-in-progress");
    let back: Plan = serde_json::from_value(v).expect("round trip");
    assert_eq!(back, poll_plan());
}

#[test]
fn the_json_line_is_one_line_and_the_same_plan() {
    for plan in [poll_plan(), watch_plan()] {
        let line = plan.to_json_line();
        assert!(!line.contains('\n'), "one line: {line}");
        let back: Plan = serde_json::from_str(&line).expect("json");
        assert_eq!(back, plan);
    }
}

#[test]
fn warnings_are_listed_only_when_there_are_some() {
    let plan = poll_plan();
    let v: serde_json::Value = serde_json::from_str(&plan.to_json_line()).expect("json");
    assert!(v.get("warnings").is_none(), "absent when empty");
    assert!(!render_text(&plan).contains("Warnings"));

    let mut warned = poll_plan();
    warned
        .warnings
        .push("config section [repos.\"octo/helo\"] is unused\nFAKE LINE".to_owned());
    let v: serde_json::Value = serde_json::from_str(&warned.to_json_line()).expect("json");
    assert_eq!(
        v["warnings"][0],
        "config section [repos.\"octo/helo\"] is unused\nFAKE LINE"
    );
    let text = render_text(&warned);
    assert!(
        text.contains(
            "Warnings (1):\n  config section [repos.\"octo/helo\"] is unused FAKE LINE\n"
        )
    );
    let back: Plan = serde_json::from_value(v).expect("round trip");
    assert_eq!(back, warned);
}
