//! Every kind of effect appears in the plan, in its text and its JSON rendering.

use std::collections::BTreeSet;

use afk_core::effect::{DispatchSpec, Effect, Notice, WorktreeRemoval};
use afk_core::evidence::CloseReason;
use afk_core::model::{RepoName, RunId};
use afk_core::plan::{Plan, TickKind, render_text};
use afk_core::record::Channel;

use crate::source::{code_only, crate_dir, first_ident};

/// The variants of `enum Effect` as written in afk-core's `effect.rs`.
fn effect_variants(src: &str) -> Vec<String> {
    let code = code_only(src);
    let Some(start) = code.find("pub enum Effect {") else {
        return Vec::new();
    };
    let body = &code[start + "pub enum Effect {".len()..];
    let mut depth = 0usize;
    let mut variants = Vec::new();
    let mut token = String::new();
    for ch in body.chars() {
        match ch {
            '{' | '(' => {
                if depth == 0 {
                    variants.extend(first_ident(&token));
                }
                depth += 1;
                token.clear();
            }
            '}' | ')' if depth == 0 => {
                variants.extend(first_ident(&token));
                break;
            }
            '}' | ')' => {
                depth -= 1;
                token.clear();
            }
            ',' if depth == 0 => {
                variants.extend(first_ident(&token));
                token.clear();
            }
            // An attribute (`#[serde(…)]`) names no variant.
            '#' | ']' if depth == 0 => token.clear(),
            _ if depth == 0 => token.push(ch),
            _ => {}
        }
    }
    variants.retain(|v| v.chars().next().is_some_and(char::is_uppercase));
    variants
}

fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn repo() -> RepoName {
    "octo/shop".parse().expect("repo")
}

fn run() -> RunId {
    RunId::new(repo(), 42, 1)
}

/// One effect of every kind. A new kind of effect gets its sample here.
fn one_of_each() -> Vec<Effect> {
    let (repo, run) = (repo(), run());
    vec![
        Effect::AddLabel {
            repo: repo.clone(),
            issue: 42,
            label: "agent-in-progress".into(),
        },
        Effect::RemoveLabel {
            repo: repo.clone(),
            issue: 42,
            label: "ready-for-agent".into(),
        },
        Effect::UpsertStatusComment {
            repo: repo.clone(),
            issue: 42,
            run: run.clone(),
            comment_id: Some(7001),
            body: "status".into(),
        },
        Effect::PostComment {
            repo: repo.clone(),
            issue: 42,
            body: "released".into(),
        },
        Effect::CloseIssue {
            repo: repo.clone(),
            issue: 42,
            reason: CloseReason::Completed,
        },
        Effect::ReopenIssue {
            repo: repo.clone(),
            issue: 42,
        },
        Effect::Dispatch {
            repo: repo.clone(),
            issue: 42,
            run: run.clone(),
            spec: Box::new(DispatchSpec {
                branch: run.branch(),
                worktree: "/data/afk/worktrees/octo__shop/run".into(),
                default_branch: Some("main".into()),
                project_id: "afk-octo__shop".into(),
                project_title: "octo/shop".into(),
                project_root: "/data/afk/mirrors/octo__shop.git".into(),
                thread_id: "afk-thread".into(),
                thread_title: "#42".into(),
                message_id: "message".into(),
                project_command_id: "project".into(),
                thread_command_id: "thread".into(),
                turn_command_id: "turn".into(),
                prompt: "Add a basket.".into(),
            }),
        },
        Effect::StartTurn {
            repo: repo.clone(),
            issue: 42,
            run: run.clone(),
            thread_id: "afk-thread".into(),
            command_id: "fix-1".into(),
            message_id: "fix-1-message".into(),
            prompt: "CI is red.".into(),
        },
        Effect::Interrupt {
            repo: repo.clone(),
            issue: 42,
            run: run.clone(),
            thread_id: "afk-thread".into(),
            command_id: "interrupt".into(),
        },
        Effect::RemoveWorktree {
            repo: repo.clone(),
            run: run.clone(),
            worktree: "/data/afk/worktrees/octo__shop/run".into(),
            reason: WorktreeRemoval::Evicted,
        },
        Effect::RetainWorktree {
            repo: repo.clone(),
            run: run.clone(),
            worktree: "/data/afk/worktrees/octo__shop/run".into(),
            since: chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("time"),
        },
        Effect::RemovePartialClone {
            repo: repo.clone(),
            run: run.clone(),
            path: "/data/afk/worktrees/octo__shop/run.partial".into(),
        },
        Effect::RemoveCacheDir {
            path: "/data/afk/cache/cargo".into(),
        },
        Effect::Notify {
            repo,
            issue: 42,
            run,
            channel: Channel::Ntfy,
            notice: Notice {
                title: "done".into(),
                message: "landed".into(),
                priority: 2,
                tags: Vec::new(),
                click: "https://github.com/octo/shop/issues/42".into(),
                thread_url: "https://t3.example.org/t/afk-thread".into(),
            },
        },
    ]
}

/// What is wrong with how `plan` shows `effects` (one of each of `variants`); empty when each
/// kind has a line in the text and an entry with its `kind` in the JSON.
fn missing_from_plan(variants: &[String], effects: &[Effect]) -> Vec<String> {
    let mut found = Vec::new();
    let sampled: BTreeSet<String> = effects.iter().map(|e| e.kind().to_owned()).collect();
    for v in variants {
        if !sampled.contains(&kebab(v)) {
            found.push(format!(
                "Effect::{v} has no sample in one_of_each (add one so the plan is checked)"
            ));
        }
    }
    let mut plan = Plan::new(TickKind::Watch, false, false);
    plan.effects = effects.to_vec();
    let text = render_text(&plan);
    let json: serde_json::Value =
        serde_json::from_str(&plan.to_json_line()).expect("the plan is JSON");
    let kinds: Vec<&str> = json["effects"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["kind"].as_str()).collect())
        .unwrap_or_default();
    for (i, e) in effects.iter().enumerate() {
        let kind = e.kind();
        if kind != kebab(&variant_name(e)) {
            found.push(format!(
                "Effect::{} is named {kind} in the plan",
                variant_name(e)
            ));
        }
        if !text.lines().any(|l| l.starts_with(&format!("  {kind}  "))) {
            found.push(format!("the text plan has no line for {kind}"));
        }
        if kinds.get(i) != Some(&kind) {
            found.push(format!("the JSON plan has no entry of kind {kind}"));
        }
    }
    let back: Plan = serde_json::from_value(json).expect("the JSON plan reads back");
    if back.effects != effects {
        found.push("the JSON plan does not read back to the same effects".into());
    }
    found
}

/// The variant's name as `Debug` prints it.
fn variant_name(e: &Effect) -> String {
    format!("{e:?}")
        .chars()
        .take_while(|c| c.is_alphanumeric())
        .collect()
}

#[test]
fn every_effect_kind_appears_in_the_text_and_json_plan() {
    let src = std::fs::read_to_string(crate_dir("afk-core").join("src").join("effect.rs"))
        .expect("read afk-core's effect.rs");
    let variants = effect_variants(&src);
    assert!(
        variants.len() >= 11 && variants.iter().any(|v| v == "Notify"),
        "the Effect enum was read: {variants:?}"
    );
    let found = missing_from_plan(&variants, &one_of_each());
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_plan_check_catches_a_kind_without_a_sample() {
    let src = "pub enum Effect {\n    /// A doc.\n    AddLabel { repo: RepoName },\n    #[serde(rename = \"x\")]\n    Archive(String),\n    Notify {\n        notice: Notice,\n    },\n}\nimpl Effect {}";
    assert_eq!(effect_variants(src), ["AddLabel", "Archive", "Notify"]);
    let samples: Vec<Effect> = one_of_each()
        .into_iter()
        .filter(|e| e.kind() != "notify")
        .collect();
    let found = missing_from_plan(&effect_variants(src), &samples);
    assert_eq!(
        found,
        [
            "Effect::Archive has no sample in one_of_each (add one so the plan is checked)",
            "Effect::Notify has no sample in one_of_each (add one so the plan is checked)",
        ]
    );
}
