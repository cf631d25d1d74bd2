//! Architecture invariant: **afk-core does no I/O and reads no clock.** Its normal (non-dev)
//! dependency closure holds no async runtime, HTTP, socket or Kubernetes crate, none of afk's
//! I/O crates, and chrono without the `clock`/`now` features.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::process::Command;

use serde_json::{Value, json};

/// Crates that would let the core open sockets, run async I/O or talk to a remote.
const BANNED: [&str; 10] = [
    "tokio",
    "reqwest",
    "hyper",
    "octocrab",
    "kube",
    "axum",
    "mio",
    "socket2",
    "tokio-util",
    "kube-client",
];

/// afk's own crates that do I/O; the core must not depend on them.
const IO_CRATES: [&str; 3] = ["afk-remotes", "afk", "afk-sim"];

/// chrono features that read the system clock (`Utc::now`, `Local`).
const CLOCK_FEATURES: [&str; 2] = ["clock", "now"];

const CORE: &str = "afk-core";

/// Every way `cargo metadata` output shows the core breaking the invariant; empty when it holds.
fn violations(meta: &Value) -> Result<Vec<String>, String> {
    let packages: BTreeMap<&str, &Value> = array(meta, "packages")?
        .iter()
        .filter_map(|p| Some((p.get("id")?.as_str()?, p)))
        .collect();
    let nodes: BTreeMap<&str, &Value> =
        array(meta.get("resolve").unwrap_or(&Value::Null), "nodes")?
            .iter()
            .filter_map(|n| Some((n.get("id")?.as_str()?, n)))
            .collect();
    let name_of = |id| name_in(&packages, id);
    let core = array(meta, "workspace_members")?
        .iter()
        .filter_map(Value::as_str)
        .find(|id| name_of(id) == CORE)
        .ok_or("afk-core is not a workspace member in the metadata")?;

    // Breadth-first over non-dev edges, remembering how each crate was reached.
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut seen: BTreeSet<&str> = BTreeSet::from([core]);
    let mut queue = VecDeque::from([core]);
    while let Some(id) = queue.pop_front() {
        for dep in normal_deps(nodes.get(id).copied()) {
            if seen.insert(dep) {
                parent.insert(dep, id);
                queue.push_back(dep);
            }
        }
    }
    let path_to = |id| path_in(&packages, &parent, id);

    let mut found = Vec::new();
    for &id in &seen {
        let name = name_of(id);
        if BANNED.contains(&name) {
            found.push(format!("afk-core depends on {name} ({})", path_to(id)));
        }
        if id != core && IO_CRATES.contains(&name) {
            found.push(format!(
                "afk-core depends on afk's I/O crate {name} ({})",
                path_to(id)
            ));
        }
    }

    // chrono: the features requested by every crate of the closure that depends on it.
    for &id in &seen {
        let Some(chrono) = normal_deps(nodes.get(id).copied()).find(|d| name_of(d) == "chrono")
        else {
            continue;
        };
        let package = packages.get(id).copied().unwrap_or(&Value::Null);
        let mut requested: Vec<String> = Vec::new();
        for decl in package
            .get("dependencies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|d| d.get("name").and_then(Value::as_str) == Some("chrono"))
            .filter(|d| d.get("kind").and_then(Value::as_str) != Some("dev"))
        {
            requested.extend(strings(decl.get("features")));
            if decl.get("uses_default_features").and_then(Value::as_bool) != Some(false) {
                requested.push("default".to_owned());
            }
        }
        // Features of the depending crate that switch on chrono features (`chrono/clock`).
        let own_features = package.get("features");
        for feature in strings(nodes.get(id).and_then(|n| n.get("features"))) {
            for entry in strings(own_features.and_then(|f| f.get(&feature))) {
                if let Some(f) = entry
                    .strip_prefix("chrono/")
                    .or_else(|| entry.strip_prefix("chrono?/"))
                {
                    requested.push(f.to_owned());
                }
            }
        }
        let table = packages.get(chrono).and_then(|p| p.get("features"));
        let enabled = expand_features(table, requested);
        for clock in CLOCK_FEATURES {
            if enabled.contains(clock) {
                found.push(format!(
                    "chrono is built with the `{clock}` feature for {} ({}); the core must not read a clock",
                    name_of(id),
                    path_to(id)
                ));
            }
        }
    }
    Ok(found)
}

fn name_in<'a>(packages: &BTreeMap<&'a str, &'a Value>, id: &'a str) -> &'a str {
    packages
        .get(id)
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .unwrap_or(id)
}

/// `afk-core -> a -> b`: how the walk reached `id`.
fn path_in<'a>(
    packages: &BTreeMap<&'a str, &'a Value>,
    parent: &BTreeMap<&'a str, &'a str>,
    mut id: &'a str,
) -> String {
    let mut chain = vec![name_in(packages, id)];
    while let Some(p) = parent.get(id) {
        chain.push(name_in(packages, p));
        id = p;
    }
    chain.reverse();
    chain.join(" -> ")
}

fn array<'a>(v: &'a Value, key: &str) -> Result<&'a Vec<Value>, String> {
    v.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("cargo metadata has no `{key}` array"))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// Package ids a resolve node depends on through a normal or build edge (not dev-only).
fn normal_deps(node: Option<&Value>) -> impl Iterator<Item = &str> {
    node.and_then(|n| n.get("deps"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|d| {
            d.get("dep_kinds")
                .and_then(Value::as_array)
                .is_some_and(|kinds| {
                    kinds
                        .iter()
                        .any(|k| k.get("kind").and_then(Value::as_str) != Some("dev"))
                })
        })
        .filter_map(|d| d.get("pkg").and_then(Value::as_str))
}

/// The closure of `requested` under a package's `[features]` table.
fn expand_features(table: Option<&Value>, requested: Vec<String>) -> BTreeSet<String> {
    let mut enabled = BTreeSet::new();
    let mut work = requested;
    while let Some(f) = work.pop() {
        if !enabled.insert(f.clone()) {
            continue;
        }
        for entry in strings(table.and_then(|t| t.get(&f))) {
            if !entry.starts_with("dep:") && !entry.contains('/') {
                work.push(entry);
            }
        }
    }
    enabled
}

#[test]
fn afk_core_does_no_io_and_reads_no_clock() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest_dir = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(&cargo)
        .current_dir(manifest_dir)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(format!("{manifest_dir}/Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let found = violations(&meta).expect("readable metadata");
    assert!(
        found.is_empty(),
        "architecture violations:\n{}",
        found.join("\n")
    );

    // The walk really covered the core's dependencies (an empty walk would pass vacuously).
    let names: BTreeSet<&str> = array(&meta, "packages")
        .expect("packages")
        .iter()
        .filter_map(|p| p.get("name").and_then(Value::as_str))
        .collect();
    assert!(names.contains("chrono") && names.contains("toml"));
}

// ---------------------------------------------------------------------------------------------
// The checker itself, against synthetic metadata: it must catch what it claims to catch.

/// One package: (name, features table, declared deps as (name, kind, features, default)).
struct Pkg {
    name: &'static str,
    features: Value,
    deps: Vec<(&'static str, Option<&'static str>, Vec<&'static str>, bool)>,
    enabled: Vec<&'static str>,
}

fn pkg(name: &'static str) -> Pkg {
    Pkg {
        name,
        features: json!({}),
        deps: Vec::new(),
        enabled: Vec::new(),
    }
}

impl Pkg {
    fn dep(mut self, name: &'static str, kind: Option<&'static str>) -> Pkg {
        self.deps.push((name, kind, Vec::new(), false));
        self
    }
    fn dep_with(mut self, name: &'static str, features: Vec<&'static str>, default: bool) -> Pkg {
        self.deps.push((name, None, features, default));
        self
    }
}

fn id(name: &str) -> String {
    format!("registry+https://example.invalid#{name}@1.0.0")
}

fn chrono() -> Pkg {
    Pkg {
        features: json!({
            "default": ["clock", "std", "oldtime", "wasmbind"],
            "clock": ["winapi", "iana-time-zone", "now"],
            "now": ["std"],
            "std": ["alloc"],
            "alloc": [],
            "serde": ["dep:serde"],
        }),
        ..pkg("chrono")
    }
}

fn metadata(pkgs: Vec<Pkg>) -> Value {
    let packages: Vec<Value> = pkgs
        .iter()
        .map(|p| {
            json!({
                "id": id(p.name),
                "name": p.name,
                "features": p.features,
                "dependencies": p.deps.iter().map(|(n, kind, features, default)| json!({
                    "name": n, "kind": kind, "features": features,
                    "uses_default_features": default, "optional": false,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let nodes: Vec<Value> = pkgs
        .iter()
        .map(|p| {
            json!({
                "id": id(p.name),
                "features": p.enabled,
                "deps": p.deps.iter().map(|(n, kind, _, _)| json!({
                    "name": n.replace('-', "_"), "pkg": id(n),
                    "dep_kinds": [{"kind": kind, "target": null}],
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "packages": packages,
        "workspace_members": [id(CORE)],
        "resolve": {"nodes": nodes, "root": null},
    })
}

fn check(pkgs: Vec<Pkg>) -> Vec<String> {
    violations(&metadata(pkgs)).expect("synthetic metadata is readable")
}

#[test]
fn checker_accepts_a_pure_core() {
    let found = check(vec![
        pkg(CORE)
            .dep_with("chrono", vec!["std", "serde", "alloc"], false)
            .dep("serde", None)
            .dep("tokio", Some("dev")),
        chrono(),
        pkg("serde"),
        pkg("tokio").dep("mio", None),
        pkg("mio"),
    ]);
    assert_eq!(found, Vec::<String>::new(), "dev-dependencies may do I/O");
}

#[test]
fn checker_catches_an_io_crate_even_transitively() {
    let found = check(vec![
        pkg(CORE).dep("helper", None),
        pkg("helper").dep("reqwest", None),
        pkg("reqwest").dep("hyper", Some("build")),
        pkg("hyper"),
    ]);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].contains("afk-core -> helper -> reqwest -> hyper")
            || found[1].contains("afk-core -> helper -> reqwest -> hyper"),
        "{found:?}"
    );
    for banned in [
        "tokio",
        "mio",
        "socket2",
        "axum",
        "kube",
        "octocrab",
        "tokio-util",
    ] {
        let found = check(vec![pkg(CORE).dep(banned, None), pkg(banned)]);
        assert_eq!(found.len(), 1, "{banned} must be caught: {found:?}");
        assert!(found[0].contains(banned), "{found:?}");
    }
}

#[test]
fn checker_catches_a_dependency_on_afk_io_crates() {
    for internal in IO_CRATES {
        let found = check(vec![pkg(CORE).dep(internal, None), pkg(internal)]);
        assert_eq!(found.len(), 1, "{internal} must be caught: {found:?}");
        assert!(found[0].contains(internal), "{found:?}");
    }
}

#[test]
fn checker_catches_chrono_with_a_clock() {
    // Default features include `clock`.
    let found = check(vec![pkg(CORE).dep_with("chrono", vec![], true), chrono()]);
    assert!(found.iter().any(|f| f.contains("`clock`")), "{found:?}");
    // `now` asked for explicitly.
    let found = check(vec![
        pkg(CORE).dep_with("chrono", vec!["now"], false),
        chrono(),
    ]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("`now`"), "{found:?}");
    // Through another crate of the closure, by one of its enabled features.
    let found = check(vec![
        pkg(CORE).dep("helper", None),
        Pkg {
            features: json!({"time": ["chrono/clock"]}),
            enabled: vec!["time"],
            ..pkg("helper").dep_with("chrono", vec![], false)
        },
        chrono(),
    ]);
    assert!(
        found
            .iter()
            .any(|f| f.contains("`clock`") && f.contains("helper")),
        "{found:?}"
    );
}
