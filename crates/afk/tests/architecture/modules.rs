//! crates/afk: no module cycles, and the two ticks are leaves nothing else imports.

use std::collections::{BTreeMap, BTreeSet};

use crate::source::{code_only, crate_dir, first_ident, rust_files};

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
