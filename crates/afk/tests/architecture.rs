//! Architecture invariants, checked on the source text (the way rust-analyzer's `tidy` test
//! reads its own tree): no module cycles inside `crates/afk` and the two ticks are leaves;
//! afk-core's sources and dependencies do no I/O and read no clock; every effect kind appears
//! in the plan, in its text and its JSON rendering.
//!
//! Each check runs on the real tree, and on small synthetic inputs that break it, so a check
//! that could no longer fail is seen failing here first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use afk_core::effect::{DispatchSpec, Effect, Notice};
use afk_core::evidence::CloseReason;
use afk_core::model::{RepoName, RunId};
use afk_core::plan::{Plan, TickKind, render_text};
use afk_core::record::Channel;

// ---------------------------------------------------------------------------------------------
// Reading sources.

fn crate_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates/")
        .join(name)
}

/// Every `.rs` file under `dir`, with its path relative to `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                let rel = path
                    .strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

/// The source with comments, string and char literals blanked out (newlines kept), so that
/// only code is checked: a doc comment may say "no tokio".
fn code_only(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && matches!(next, Some('"' | '#'))
            && !chars
                .get(i.wrapping_sub(1))
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            // A raw string: r"…", r#"…"#, …
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                match chars.get(j) {
                    None => break,
                    Some('"') if (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    Some(&ch) => {
                        out.push(blank(ch));
                        j += 1;
                    }
                }
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    out.push(blank(ch));
                }
                i += 1;
            }
            out.push_str("\"\"");
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\u{1F600}'); a lifetime has no closing quote.
            let mut j = i + 1;
            if chars.get(j) == Some(&'\\') {
                j += 1;
            }
            while j < chars.len() && chars[j] != '\'' && chars[j] != '\n' {
                j += 1;
            }
            out.push_str("' '");
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// 1. crates/afk: no module cycles; the ticks are leaves.

/// The module a file of `crates/afk/src` belongs to (`tick.rs` → `tick`, `foo/bar.rs` →
/// `foo`); `None` for the crate root and the binaries.
fn module_of(rel: &str) -> Option<String> {
    if rel == "lib.rs" || rel == "main.rs" || rel.starts_with("bin/") {
        return None;
    }
    let first = rel.split('/').next()?;
    Some(first.trim_end_matches(".rs").to_owned())
}

/// The modules of this crate a piece of code names through `crate::…` (`use crate::a::X`,
/// `crate::b::f()`, `use crate::{c, d::Y}`).
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `afk_crate::`
        }
        let rest_trim = rest.trim_start();
        if let Some(group) = rest_trim.strip_prefix('{') {
            // `crate::{a::X, b, c::{..}}`: the first segment of each top-level entry.
            let mut depth = 0usize;
            let mut entry = String::new();
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.extend(first_ident(&entry));
                        entry.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    entry.push(ch);
                }
            }
            out.extend(first_ident(&entry));
        } else {
            out.extend(first_ident(rest_trim));
        }
    }
    out
}

fn first_ident(s: &str) -> Option<String> {
    let id: String = s
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!id.is_empty() && id != "self").then_some(id)
}

/// The module import graph: module → the modules of the same crate it uses.
fn import_graph(files: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, _) in files {
        if let Some(m) = module_of(rel) {
            graph.entry(m).or_default();
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for (rel, text) in files {
        let Some(m) = module_of(rel) else { continue };
        let refs = crate_refs(&code_only(text));
        let edges = graph.entry(m.clone()).or_default();
        edges.extend(refs.into_iter().filter(|r| *r != m && modules.contains(r)));
    }
    graph
}

/// Every cycle of the graph, each as the path `a -> b -> a` (one per strongly connected set).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
        found: &mut Vec<String>,
    ) {
        marks.insert(node.to_owned(), Mark::Open);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            match marks.get(next.as_str()) {
                Some(Mark::Open) => {
                    let start = stack.iter().position(|s| s == next).unwrap_or(0);
                    let mut path = stack[start..].to_vec();
                    path.push(next.clone());
                    found.push(path.join(" -> "));
                }
                Some(Mark::Done) => {}
                None => visit(next, graph, marks, stack, found),
            }
        }
        stack.pop();
        marks.insert(node.to_owned(), Mark::Done);
    }
    let mut marks = BTreeMap::new();
    let mut found = Vec::new();
    for node in graph.keys() {
        if !marks.contains_key(node.as_str()) {
            visit(node, graph, &mut marks, &mut Vec::new(), &mut found);
        }
    }
    found
}

/// The ticks: nothing else in the crate (but its root) may use them.
const TICKS: [&str; 2] = ["poll", "watch"];

fn tick_importers(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut found = Vec::new();
    for (module, edges) in graph {
        for tick in TICKS {
            if edges.contains(tick) {
                found.push(format!("{module} uses the tick {tick}"));
            }
        }
    }
    found
}

#[test]
fn afk_modules_form_no_cycle_and_the_ticks_are_leaves() {
    let files = rust_files(&crate_dir("afk").join("src"));
    let graph = import_graph(&files);
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "module cycles in crates/afk (give the shared part its own module below both):\n{}",
        found.join("\n")
    );
    let found = tick_importers(&graph);
    assert!(
        found.is_empty(),
        "the ticks import only what lies below them; move what is shared out of the tick:\n{}",
        found.join("\n")
    );
    // The graph really was read (an empty one would pass vacuously).
    for (from, to) in [
        ("poll", "dispatch"),
        ("watch", "dispatch"),
        ("watch", "fleet"),
        ("dispatch", "tick"),
        ("tick", "apply"),
    ] {
        assert!(
            graph.get(from).is_some_and(|e| e.contains(to)),
            "expected {from} to use {to}; the graph: {graph:?}"
        );
    }
}

fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
        .collect()
}

#[test]
fn the_cycle_check_catches_direct_grouped_and_path_uses() {
    let graph = import_graph(&files(&[
        ("lib.rs", "pub mod a; pub mod b; use crate::a::X;"),
        ("a.rs", "use crate::{b::Y, tick};\nfn f() {}"),
        ("b.rs", "fn g() { crate::a::f(); }"),
        (
            "tick.rs",
            "//! says crate::a in a comment only\nconst S: &str = \"crate::b\";",
        ),
    ]));
    assert_eq!(cycles(&graph), ["a -> b -> a"]);
    assert!(
        graph["tick"].is_empty(),
        "comments and strings are not uses"
    );
    assert!(!graph.contains_key("lib"), "the root declares the modules");

    let graph = import_graph(&files(&[
        ("a.rs", "use crate::b;"),
        ("b/mod.rs", "use crate::c::Z;"),
        ("b/inner.rs", "use super::x;"),
        ("c.rs", "use crate::a as first;"),
    ]));
    assert_eq!(cycles(&graph), ["a -> b -> c -> a"]);

    let graph = import_graph(&files(&[
        ("dispatch.rs", "use crate::tick::Tick;"),
        ("fleet.rs", "use crate::watch::RunReport;"),
        ("watch.rs", "use crate::dispatch::resume;"),
    ]));
    assert_eq!(cycles(&graph), Vec::<String>::new());
    assert_eq!(tick_importers(&graph), ["fleet uses the tick watch"]);
}

// ---------------------------------------------------------------------------------------------
// 2. afk-core: no I/O, no clock, in its sources and its manifest.

/// Code that does I/O or reads a clock, and what it is.
const CORE_BANNED: [(&str, &str); 14] = [
    ("tokio", "an async runtime"),
    ("reqwest", "an HTTP client"),
    ("std::fs", "the filesystem"),
    ("std::net", "sockets"),
    ("std::process", "processes"),
    ("std::env", "the environment"),
    ("SystemTime", "the system clock"),
    ("Instant::now", "the monotonic clock"),
    ("Utc::now", "the clock"),
    ("Local::now", "the clock"),
    ("TcpStream", "sockets"),
    ("TcpListener", "sockets"),
    ("UdpSocket", "sockets"),
    ("ToSocketAddrs", "name resolution"),
];

/// What afk-core may take from `std::net`: addresses are values, parsed without I/O.
const NET_VALUES: [&str; 6] = [
    "IpAddr",
    "Ipv4Addr",
    "Ipv6Addr",
    "SocketAddr",
    "SocketAddrV4",
    "SocketAddrV6",
];

/// Whether `rest` (what follows `std::net`) names only an address type.
fn net_value(rest: &str) -> bool {
    let Some(name) = rest.strip_prefix("::").and_then(first_ident) else {
        return false;
    };
    NET_VALUES.contains(&name.as_str())
}

/// `std::{fs, net}` grouped imports, spelled out as paths.
const STD_GROUPED: [&str; 4] = ["fs", "net", "process", "env"];

fn io_in_source(rel: &str, src: &str) -> Vec<String> {
    let code = code_only(src);
    let mut found = Vec::new();
    for (line_no, line) in code.lines().enumerate() {
        for (needle, what) in CORE_BANNED {
            let mut from = 0;
            while let Some(at) = line[from..].find(needle) {
                let start = from + at;
                let end = start + needle.len();
                let boundary_before = line[..start]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                let boundary_after = line[end..]
                    .chars()
                    .next()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                let address = needle == "std::net" && net_value(&line[end..]);
                if boundary_before && boundary_after && !address {
                    found.push(format!("{rel}:{}: {needle} ({what})", line_no + 1));
                }
                from = end;
            }
        }
    }
    // `use std::{fs, …}` (possibly over several lines).
    let mut rest = code.as_str();
    while let Some(at) = rest.find("std::{") {
        let group = &rest[at + "std::{".len()..];
        let inner = group.split('}').next().unwrap_or("");
        for name in inner.split(',').filter_map(first_ident) {
            if STD_GROUPED.contains(&name.as_str()) {
                found.push(format!("{rel}: std::{{{name}}} ({})", "I/O"));
            }
        }
        rest = group;
    }
    found
}

/// Crates of afk-core's `[dependencies]` (not dev) that do I/O.
fn io_in_manifest(manifest: &str) -> Vec<String> {
    let mut section = String::new();
    let mut found = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        if !(section == "[dependencies]"
            || section.starts_with("[target.") && section.ends_with(".dependencies]"))
        {
            continue;
        }
        let name = line
            .split(['=', '.', ' '])
            .next()
            .unwrap_or("")
            .trim_matches('"');
        if [
            "tokio",
            "reqwest",
            "hyper",
            "kube",
            "axum",
            "mio",
            "afk-remotes",
        ]
        .contains(&name)
        {
            found.push(format!("afk-core's [dependencies] name {name}"));
        }
    }
    found
}

#[test]
fn afk_core_sources_and_manifest_do_no_io_and_read_no_clock() {
    let core = crate_dir("afk-core");
    let sources = rust_files(&core.join("src"));
    assert!(
        sources.iter().any(|(p, _)| p == "machine.rs") && sources.len() > 20,
        "afk-core's sources were read"
    );
    let mut found: Vec<String> = sources
        .iter()
        .flat_map(|(rel, text)| io_in_source(rel, text))
        .collect();
    let manifest =
        std::fs::read_to_string(core.join("Cargo.toml")).expect("read afk-core's Cargo.toml");
    found.extend(io_in_manifest(&manifest));
    assert!(
        found.is_empty(),
        "afk-core must do no I/O and read no clock (take `now` and facts as arguments; do I/O \
         in crates/afk):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_io_check_catches_code_and_spares_comments_and_strings() {
    let src = "//! no tokio here, no std::fs either\n\
               use std::fs::read;\n\
               fn f() { let _ = std::time::SystemTime::now(); }\n\
               const S: &str = \"reqwest\";\n\
               fn g() { let _ = std::time::Instant::now(); }\n\
               use std::{collections::BTreeMap,\n    net};\n\
               fn h() { tokio::spawn(async {}); }\n\
               fn my_tokio_like() {}\n\
               fn ok(h: &str) -> bool { h.parse::<std::net::IpAddr>().is_ok() }\n\
               fn bad() { let _ = std::net::TcpStream::connect(\"x:1\"); }\n";
    let found = io_in_source("x.rs", src);
    assert_eq!(
        found,
        [
            "x.rs:2: std::fs (the filesystem)",
            "x.rs:3: SystemTime (the system clock)",
            "x.rs:5: Instant::now (the monotonic clock)",
            "x.rs:8: tokio (an async runtime)",
            "x.rs:11: std::net (sockets)",
            "x.rs:11: TcpStream (sockets)",
            "x.rs: std::{net} (I/O)",
        ]
    );
    let manifest = "[dependencies]\nchrono.workspace = true\ntokio = \"1\"\n\n[dev-dependencies]\nreqwest = \"0.12\"\n";
    assert_eq!(
        io_in_manifest(manifest),
        ["afk-core's [dependencies] name tokio"]
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Every effect kind appears in the plan (text and JSON).

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
