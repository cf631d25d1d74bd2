//! The deploy files (deploy/) agree with afk: the shipped config parses with afk's own parser
//! and ships closed, the example overlay arms exactly the repo it enrols, and every path the
//! config names is one the CronJobs that read it mount.

use std::path::{Path, PathBuf};

use afk_core::config::{Config, parse};
use afk_core::model::RepoName;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    let path = repo_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn parse_with(rel: &str, env: &[(&str, &str)]) -> Config {
    let text = read(rel);
    let lookup = |k: &str| {
        env.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| (*v).to_owned())
    };
    parse(Some(&text), &lookup).unwrap_or_else(|e| panic!("{rel} does not parse: {e}"))
}

const BASE_CONFIG: &str = "deploy/base/config.toml";
const OVERLAY_CONFIG: &str = "deploy/overlays/example/config.toml";
const CRONJOBS: &str = "deploy/base/cronjobs.yaml";
/// The overlay's CronJob patch (AFK_KILL_SWITCH=false), as afk reads it.
const ARMED_ENV: &[(&str, &str)] = &[("AFK_KILL_SWITCH", "false")];

/// The one source of every shipped config: afk-core's example config.
const EXAMPLE_CONFIG: &str = "crates/afk-core/src/config/example.toml";
/// Set to write the derived configs instead of comparing them.
const REGENERATE: &str = "AFK_REGENERATE_CONFIGS";

const BASE_HEADER: &str = "\
# The afk config the deploy/ base ships (rendered into the ConfigMap afk-config, mounted at
# /etc/afk/config.toml). It is afk-core's example config, SHIPPED CLOSED: the kill switch is on
# and the allowlist is empty, so afk-poll does no I/O and afk-watch has nothing to watch.
# Enrol repos and arm afk in an overlay (see deploy/overlays/example and docs/operations.md).
# Generated from crates/afk-core/src/config/example.toml: edit that file, then run
# `AFK_REGENERATE_CONFIGS=1 cargo test -p afk --test deploy`.
#
";

const OVERLAY_HEADER: &str = "\
# The example overlay's afk config: the base's config plus ONE enrolled repo. Together with the
# AFK_KILL_SWITCH=false patch in kustomization.yaml this ARMS afk for that repo.
# Generated from crates/afk-core/src/config/example.toml: edit that file, then run
# `AFK_REGENERATE_CONFIGS=1 cargo test -p afk --test deploy`.
#
";

/// Where the example's per-repo section starts; the deploy configs replace it.
const EXAMPLE_REPO_SECTION: &str = "\n[repos.\"owner/name\"]";

const OVERLAY_REPO_SECTION: &str = "
# The enrolled repo: CI to wait for and the Deployment its pushes roll out to (Keel updates it to
# the pushed commit's SHA-tagged image). The overlay's Role (rbac-deploy-target.yaml) lets afk
# `get` this one Deployment, by name.
[repos.\"example-org/example-app\"]
default_branch = \"main\"
ci = [\"github-checks\"]
deploy = { namespace = \"app\", deployment = \"example-app\", container = \"app\" }
paused = false
pause_reason = \"\"
";

/// `text` with `old` (which must occur exactly once) replaced by `new`.
fn replace_once(text: &str, old: &str, new: &str) -> String {
    assert_eq!(
        text.matches(old).count(),
        1,
        "{EXAMPLE_CONFIG} must hold exactly one {old:?}"
    );
    text.replacen(old, new, 1)
}

/// The example config up to (without) its per-repo section.
fn example_without_repo_section() -> String {
    let example = read(EXAMPLE_CONFIG);
    let cut = example
        .find(EXAMPLE_REPO_SECTION)
        .unwrap_or_else(|| panic!("{EXAMPLE_CONFIG} lacks {EXAMPLE_REPO_SECTION:?}"));
    example[..cut].to_owned()
}

/// The two deploy configs, derived from the example config.
fn derived_configs() -> [(&'static str, String); 2] {
    let body = example_without_repo_section();
    let base = format!("{BASE_HEADER}{body}");
    let overlay = replace_once(
        &body,
        "kill_switch = true                 # env AFK_KILL_SWITCH=true|false overrides\n",
        "kill_switch = true                 # the file stays closed; the CronJobs set AFK_KILL_SWITCH=false (kustomization.yaml)\n",
    );
    let overlay = replace_once(
        &overlay,
        "allowlist = []                     # env AFK_ALLOWLIST=\"owner/a,owner/b\" overrides; entries are owner/name\n",
        "allowlist = [\"example-org/example-app\"]   # the enrolled repo; env AFK_ALLOWLIST overrides\n",
    );
    let overlay = format!("{OVERLAY_HEADER}{overlay}{OVERLAY_REPO_SECTION}");
    [(BASE_CONFIG, base), (OVERLAY_CONFIG, overlay)]
}

#[test]
fn the_deploy_configs_are_generated_from_the_example_config() {
    let regenerate = std::env::var_os(REGENERATE).is_some();
    for (rel, want) in derived_configs() {
        if regenerate {
            let path = repo_root().join(rel);
            std::fs::write(&path, &want)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            continue;
        }
        assert!(
            read(rel) == want,
            "{rel} is not what {EXAMPLE_CONFIG} generates; edit the example, then run \
             `{REGENERATE}=1 cargo test -p afk --test deploy` and commit the result"
        );
    }
}

#[test]
fn the_shipped_configs_carry_no_warning() {
    for rel in [BASE_CONFIG, OVERLAY_CONFIG] {
        let config = parse_with(rel, &[]);
        assert!(
            config.warnings().is_empty(),
            "{rel}: {:?}",
            config.warnings()
        );
    }
}

fn enrolled() -> RepoName {
    "example-org/example-app"
        .parse()
        .unwrap_or_else(|e| panic!("bad repo name: {e:?}"))
}

#[test]
fn the_base_config_ships_closed() {
    let config = parse_with(BASE_CONFIG, &[]);
    assert!(
        config.kill_switch,
        "the base must ship with the kill switch on"
    );
    assert!(config.allowlist.is_empty(), "the base must enrol no repo");
    assert!(!config.gates_open());
    // Turning the kill switch off alone must still leave afk inert: the allowlist is the second gate.
    let half_armed = parse_with(BASE_CONFIG, ARMED_ENV);
    assert!(!half_armed.kill_switch);
    assert!(
        !half_armed.gates_open(),
        "an empty allowlist must keep afk inert"
    );
}

#[test]
fn the_example_overlay_arms_exactly_its_enrolled_repo() {
    let file_only = parse_with(OVERLAY_CONFIG, &[]);
    assert!(
        file_only.kill_switch,
        "the overlay's file stays closed; only the CronJob env arms afk"
    );
    let armed = parse_with(OVERLAY_CONFIG, ARMED_ENV);
    assert!(armed.gates_open());
    assert_eq!(armed.allowlist, vec![enrolled()]);
    armed
        .armed()
        .unwrap_or_else(|e| panic!("the overlay lacks a section afk needs once armed: {e}"));
    let target = armed
        .repo(&enrolled())
        .deploy
        .unwrap_or_else(|| panic!("the enrolled repo has no deploy target"));
    let rbac = read("deploy/overlays/example/rbac-deploy-target.yaml");
    assert!(
        rbac.contains(&format!("namespace: {}\n", target.namespace)),
        "no Role grants rollout reads in the deploy target's namespace {:?}",
        target.namespace
    );
    let kustomization = read("deploy/overlays/example/kustomization.yaml");
    assert!(kustomization.contains("name: AFK_KILL_SWITCH\n          value: \"false\""));
}

/// Every secret file the config names, with its key name.
fn secret_files(config: &Config) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(t) = &config.tracker {
        files.push(match &t.auth {
            afk_core::config::TrackerAuth::Token { token_file } => token_file.clone(),
            afk_core::config::TrackerAuth::GithubApp {
                private_key_file, ..
            } => private_key_file.clone(),
        });
    }
    if let Some(t) = &config.t3 {
        files.push(t.token_file.clone());
    }
    if let Some(n) = &config.notify.ntfy {
        files.extend(n.token_file.clone());
    }
    if let Some(s) = &config.notify.slack {
        files.push(s.webhook_url_file.clone());
    }
    if let Some(w) = &config.woodpecker {
        files.push(w.token_file.clone());
    }
    files
}

#[test]
fn every_path_in_the_configs_is_mounted_by_the_cronjobs() {
    let cronjobs = read(CRONJOBS);
    for rel in [BASE_CONFIG, OVERLAY_CONFIG] {
        let config = parse_with(rel, ARMED_ENV);
        let files = secret_files(&config);
        assert_eq!(files.len(), 5, "{rel}: expected all five secret files");
        for file in files {
            assert_eq!(
                file.parent(),
                Some(Path::new("/var/run/secrets/afk")),
                "{rel}: {} is not in the mounted Secret",
                file.display()
            );
            let key = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_else(|| panic!("{rel}: {} has no file name", file.display()));
            // afk-poll reads only the tracker's and T3's secrets; afk-watch reads them all.
            let readers = if matches!(key, "tracker-token" | "t3-token") {
                2
            } else {
                1
            };
            assert_eq!(
                cronjobs.matches(&format!("- key: {key}\n")).count(),
                readers,
                "{rel}: Secret key {key} must be mounted by each CronJob that reads it, and only there"
            );
        }
        let root = format!("mountPath: {}\n", config.workspace.root.display());
        assert_eq!(
            cronjobs.matches(&root).count(),
            2,
            "{rel}: both CronJobs must mount the workspace at {}",
            config.workspace.root.display()
        );
    }
    assert_eq!(
        cronjobs
            .matches("name: AFK_CONFIG\n                  value: /etc/afk/config.toml\n")
            .count(),
        2
    );
    assert_eq!(cronjobs.matches("mountPath: /etc/afk\n").count(), 2);
    let kustomization = read("deploy/base/kustomization.yaml");
    assert!(kustomization.contains("- config.toml"));
}

#[test]
fn the_operations_guide_documents_every_skip_reason_and_decision() {
    use afk_core::plan::{Decision, SkipReason};
    let guide = read("docs/operations.md");
    for reason in SkipReason::ALL {
        // The serialized name is the documented one.
        let json = serde_json::to_value(reason).unwrap_or_default();
        assert_eq!(json, reason.as_str());
        let row = format!("| `{}` |", reason.as_str());
        assert!(
            guide.contains(&row),
            "docs/operations.md has no row for skip reason {row}"
        );
    }
    for decision in Decision::ALL {
        let json = serde_json::to_value(decision).unwrap_or_default();
        assert_eq!(json, decision.as_str());
        let row = format!("| `{}` |", decision.as_str());
        assert!(
            guide.contains(&row),
            "docs/operations.md has no row for decision {row}"
        );
    }
}
