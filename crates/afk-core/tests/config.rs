//! The config as operators meet it: shipped closed, the documented example, env overrides of the
//! two gates, and one clear error (naming key and value) per kind of bad input.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use afk_core::config::{
    self, CiProvider, Config, ConfigError, DeployTarget, EXAMPLE_TOML, ImageMatch, KubeConfig,
    Labels, Limits, ModelSelection, NotifyConfig, NtfyConfig, Pricing, RepoConfig, SlackConfig,
    T3Config, TrackerAuth, TrackerConfig, TrackerKind, WoodpeckerConfig, WorkspaceConfig,
};
use afk_core::model::RepoName;
use proptest::prelude::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn with_env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    config::parse(Some(text), &no_env)
}

fn refused(text: &str) -> ConfigError {
    match parse(text) {
        Ok(c) => panic!("config must be refused, got {c:?}\n---\n{text}"),
        Err(e) => e,
    }
}

/// The message names the key and the value (as people will read it in the log).
fn assert_names(err: &ConfigError, key: &str, value: &str) {
    let msg = err.to_string();
    assert!(
        msg.contains(key),
        "message must name the key {key:?}: {msg}"
    );
    assert!(
        msg.contains(value),
        "message must name the value {value:?}: {msg}"
    );
    assert!(
        msg.contains("expected"),
        "message must say what is expected: {msg}"
    );
}

fn repo(s: &str) -> RepoName {
    s.parse().expect("valid repo")
}

const GITHUB_TRACKER: &str = r#"
[tracker]
kind = "github"
token_file = "/run/secrets/tracker-token"
bot_login = "afk-bot"
"#;

const FORGEJO_TRACKER: &str = r#"
[tracker]
kind = "forgejo"
api_url = "https://git.example.org/api/v1"
token_file = "/run/secrets/tracker-token"
bot_login = "afk-bot"
"#;

const T3: &str = r#"
[t3]
base_url = "http://t3.afk.svc:3773"
token_file = "/run/secrets/t3-token"
web_url = "https://t3.example.org"
"#;

// ---------------------------------------------------------------------------------------------
// Shipped closed.

#[test]
fn no_file_and_no_env_is_shipped_closed_with_every_default() {
    let c = config::parse(None, &no_env).expect("defaults parse");
    assert_eq!(c, Config::default_closed());
    assert!(c.kill_switch, "the kill switch ships ON");
    assert!(c.allowlist.is_empty(), "the allowlist ships EMPTY");
    assert!(!c.gates_open());
    assert_eq!(c.max_in_flight, 3);
    assert_eq!(c.t3_max_busy_threads, 8);
    assert!(c.trusted_bots.is_empty());
    assert_eq!(
        c.labels,
        Labels {
            ready: "ready-for-agent".into(),
            in_progress: "agent-in-progress".into(),
            human: "ready-for-human".into(),
            priority_patterns: vec!["priority:{n}".into(), "P{n}".into()],
        }
    );
    assert_eq!(
        c.limits,
        Limits {
            fix_forward_max_attempts: 5,
            fix_forward_window: Duration::from_secs(3600),
            max_budget_usd: 100.0,
            max_run_duration: Duration::from_secs(4 * 3600),
            ci_timeout: Duration::from_secs(3600),
            max_dispatch_attempts: 3,
            tick_deadline: Duration::from_secs(240),
            t3_outage_page_after: Duration::from_secs(30 * 60),
            rate_limit_reserve_percent: 20,
        }
    );
    assert_eq!(c.workspace.root, PathBuf::from("/data/afk"));
    assert_eq!(
        c.workspace.clone_url_template,
        "https://github.com/{repo}.git"
    );
    assert_eq!(c.workspace.retain_days, 14);
    assert_eq!(c.workspace.evict_above_percent, 85);
    assert_eq!(
        c.pricing,
        Pricing {
            input: 3.0,
            output: 15.0,
            cached_input: 0.3
        }
    );
    assert_eq!(c.tracker, None);
    assert_eq!(c.t3, None);
    assert!(
        c.armed().is_err(),
        "an inert config has nothing to act with"
    );
}

#[test]
fn an_empty_file_is_the_same_as_no_file() {
    assert_eq!(parse("").expect("empty"), Config::default_closed());
    assert_eq!(
        parse("# only a comment\n").expect("comment"),
        Config::default_closed()
    );
}

#[test]
fn t3_defaults_fill_the_model_and_runtime_mode() {
    let c = parse(T3).expect("t3 only");
    let t3 = c.t3.expect("t3");
    assert_eq!(
        t3.model,
        ModelSelection {
            instance_id: "claudeAgent".into(),
            model: "claude-sonnet-4-6".into()
        }
    );
    assert_eq!(t3.runtime_mode, "full-access");
}

#[test]
fn the_shipped_example_parses_and_is_closed() {
    let c = parse(EXAMPLE_TOML).expect("the example parses");
    assert!(c.kill_switch);
    assert!(c.allowlist.is_empty());
    assert!(!c.gates_open());
    // It documents every section.
    assert!(c.tracker.is_some() && c.t3.is_some());
    assert!(c.notify.ntfy.is_some() && c.notify.slack.is_some());
    assert!(c.woodpecker.is_some() && c.kube.is_some());
    assert_eq!(c.repos.len(), 1);
    // Every documented key is present in it.
    for key in [
        "kill_switch",
        "allowlist",
        "max_in_flight",
        "t3_max_busy_threads",
        "trusted_bots",
        "priority_patterns",
        "fix_forward_max_attempts",
        "fix_forward_window",
        "max_budget_usd",
        "max_run_duration",
        "ci_timeout",
        "max_dispatch_attempts",
        "tick_deadline",
        "t3_outage_page_after",
        "rate_limit_reserve_percent",
        "bot_login",
        "web_url",
        "instance_id",
        "runtime_mode",
        "clone_url_template",
        "retain_days",
        "evict_above_percent",
        "cache_dirs",
        "cached_input",
        "topic",
        "webhook_url_file",
        "context",
        "default_branch",
        "deploy",
        "paused",
        "pause_reason",
    ] {
        assert!(EXAMPLE_TOML.contains(key), "the example lacks {key}");
    }
}

/// The documented example config (every key, as operators see it), verbatim.
const DOCUMENTED_EXAMPLE: &str = r#"
kill_switch = true                 # env AFK_KILL_SWITCH=true|false overrides
allowlist = []                     # env AFK_ALLOWLIST="owner/a,owner/b" overrides; entries are owner/name
max_in_flight = 3
t3_max_busy_threads = 8
trusted_bots = []                  # bot logins allowed to arm issues (default none)

[labels]
ready = "ready-for-agent"
in_progress = "agent-in-progress"
human = "ready-for-human"
priority_patterns = ["priority:{n}", "P{n}"]

[limits]
fix_forward_max_attempts = 5
fix_forward_window = "60m"
max_budget_usd = 100.0
max_run_duration = "4h"
ci_timeout = "60m"
max_dispatch_attempts = 3
tick_deadline = "4m"

[tracker]
kind = "github"                    # "github" | "forgejo"
api_url = "https://api.github.com" # for forgejo: "https://git.example.org/api/v1"
token_file = "/var/run/secrets/afk/tracker-token"
bot_login = "afk-bot"              # the account afk comments as; only its comments hold run records

[t3]
base_url = "http://t3-afk.t3-afk.svc:3773"
token_file = "/var/run/secrets/afk/t3-token"
web_url = "https://t3.example.org"  # for deep links in comments and the doorbell
model = { instance_id = "claudeAgent", model = "claude-sonnet-4-6" }
runtime_mode = "full-access"

[workspace]
root = "/data/afk"                 # same mount path in T3's pod
clone_url_template = "https://github.com/{repo}.git"
retain_days = 14
evict_above_percent = 85
cache_dirs = []

[pricing]                          # USD per million tokens, for the spend estimate
input = 3.0
output = 15.0
cached_input = 0.3

[notify.ntfy]                      # optional
url = "https://ntfy.example.org"
topic = "afk"
token_file = "/var/run/secrets/afk/ntfy-token"

[notify.slack]                     # optional
webhook_url_file = "/var/run/secrets/afk/slack-webhook"

[ci.woodpecker]                    # optional, used by repos whose ci = "woodpecker"
api_url = "https://ci.example.org/api"
token_file = "/var/run/secrets/afk/woodpecker-token"

[kube]                             # optional; in-cluster config by default, or KUBECONFIG
# context = "..."

[repos."owner/name"]               # per-repo settings, optional
default_branch = "master"          # default: the forge's default branch
ci = ["github-checks"]             # any of: github-checks, github-status, github-actions, forgejo-status, forgejo-actions, woodpecker
deploy = { namespace = "app", deployment = "app", container = "app" }   # omit: no deploy phase
paused = false
pause_reason = ""
"#;

#[test]
fn the_interfaces_example_parses_to_the_documented_values() {
    let c = parse(DOCUMENTED_EXAMPLE).expect("the documented example parses");
    let secret = |name: &str| PathBuf::from(format!("/var/run/secrets/afk/{name}"));
    let expected = Config {
        tracker: Some(TrackerConfig {
            kind: TrackerKind::Github,
            api_url: "https://api.github.com".into(),
            auth: TrackerAuth::Token {
                token_file: secret("tracker-token"),
            },
            bot_login: "afk-bot".into(),
        }),
        t3: Some(T3Config {
            base_url: "http://t3-afk.t3-afk.svc:3773".into(),
            token_file: secret("t3-token"),
            web_url: "https://t3.example.org".into(),
            model: ModelSelection {
                instance_id: "claudeAgent".into(),
                model: "claude-sonnet-4-6".into(),
            },
            runtime_mode: "full-access".into(),
        }),
        workspace: WorkspaceConfig {
            root: PathBuf::from("/data/afk"),
            clone_url_template: "https://github.com/{repo}.git".into(),
            send_tracker_token: true,
            retain_days: 14,
            evict_above_percent: 85,
            cache_dirs: vec![],
        },
        notify: NotifyConfig {
            ntfy: Some(NtfyConfig {
                url: "https://ntfy.example.org".into(),
                topic: "afk".into(),
                token_file: Some(secret("ntfy-token")),
            }),
            slack: Some(SlackConfig {
                webhook_url_file: secret("slack-webhook"),
            }),
        },
        woodpecker: Some(WoodpeckerConfig {
            api_url: "https://ci.example.org/api".into(),
            token_file: secret("woodpecker-token"),
        }),
        kube: Some(KubeConfig {
            context: None,
            api_url: None,
        }),
        repos: BTreeMap::from([(
            repo("owner/name"),
            RepoConfig {
                default_branch: Some("master".into()),
                ci: vec![CiProvider::GithubChecks],
                deploy: Some(DeployTarget {
                    namespace: "app".into(),
                    deployment: "app".into(),
                    container: "app".into(),
                    image_match: ImageMatch::FullSha,
                }),
                paused: false,
                pause_reason: String::new(),
            },
        )]),
        ..Config::default_closed()
    };
    assert_eq!(c, expected);
    assert!(c.armed().is_ok());
}

#[test]
fn every_knob_is_read_from_the_file() {
    let text = format!(
        r#"
kill_switch = false
allowlist = ["o/a", "o/b"]
max_in_flight = 5
t3_max_busy_threads = 2
trusted_bots = ["renovate[bot]"]
[labels]
ready = "afk: go"
in_progress = "afk: busy"
human = "afk: human"
priority_patterns = ["prio-{{n}}"]
[limits]
fix_forward_max_attempts = 2
fix_forward_window = "1h30m"
max_budget_usd = 12.5
max_run_duration = "2h"
ci_timeout = "90s"
max_dispatch_attempts = 1
tick_deadline = "3m"
[workspace]
root = "/srv/afk/"
clone_url_template = "git@git.example.org:{{repo}}.git"
retain_days = 3
evict_above_percent = 100
cache_dirs = ["cache/cargo", "/srv/afk/cache/npm"]
[pricing]
input = 0
output = 1
cached_input = 0.05
[kube]
context = "prod"
{FORGEJO_TRACKER}
[t3]
base_url = "http://t3.afk.svc:3773/"
token_file = "/run/secrets/t3-token"
web_url = "https://t3.example.org/"
model = {{ instance_id = "codex_2", model = "gpt-5" }}
runtime_mode = "auto-accept-edits"
[repos."o/a"]
ci = ["forgejo-actions"]
paused = true
pause_reason = "migrating"
"#
    );
    let c = parse(&text).expect("parses");
    assert!(!c.kill_switch);
    assert!(c.gates_open());
    assert_eq!(c.allowlist, vec![repo("o/a"), repo("o/b")]);
    assert_eq!((c.max_in_flight, c.t3_max_busy_threads), (5, 2));
    assert_eq!(c.trusted_bots, vec!["renovate[bot]".to_owned()]);
    assert_eq!(c.labels.ready, "afk: go");
    assert_eq!(c.labels.priority_patterns, vec!["prio-{n}".to_owned()]);
    assert_eq!(c.limits.fix_forward_window, Duration::from_secs(5400));
    assert_eq!(c.limits.ci_timeout, Duration::from_secs(90));
    assert_eq!(c.limits.max_budget_usd, 12.5);
    assert_eq!(c.workspace.root, PathBuf::from("/srv/afk/"));
    assert_eq!(
        c.workspace.cache_dirs,
        vec![PathBuf::from("cache/cargo"), PathBuf::from("cache/npm")]
    );
    assert_eq!(c.pricing.input, 0.0);
    assert_eq!(
        c.kube,
        Some(KubeConfig {
            context: Some("prod".into()),
            api_url: None,
        })
    );
    let t3 = c.t3.as_ref().expect("t3");
    assert_eq!(
        t3.base_url, "http://t3.afk.svc:3773",
        "trailing slash dropped"
    );
    assert_eq!(t3.web_url, "https://t3.example.org");
    assert_eq!(t3.model.instance_id, "codex_2");
    assert_eq!(t3.runtime_mode, "auto-accept-edits");
    let a = c.repo(&repo("o/a"));
    assert!(a.paused);
    assert_eq!(a.pause_reason, "migrating");
    assert_eq!(
        c.ci_providers(&repo("o/a")),
        vec![CiProvider::ForgejoActions]
    );
    assert_eq!(
        c.ci_providers(&repo("o/b")),
        vec![CiProvider::ForgejoStatus]
    );
}

// ---------------------------------------------------------------------------------------------
// Config methods.

#[test]
fn enrollment_and_per_repo_sections() {
    let text = format!(
        r#"
allowlist = ["Octo/Hello", "octo/world"]
{GITHUB_TRACKER}
[repos."octo/hello"]
default_branch = "main"
"#
    );
    let c = parse(&text).expect("parses");
    assert!(c.is_enrolled(&repo("Octo/Hello")));
    assert!(
        c.is_enrolled(&repo("octo/hello")),
        "forges compare names case-insensitively"
    );
    assert!(!c.is_enrolled(&repo("octo/other")));
    assert_eq!(
        c.repo(&repo("Octo/Hello")).default_branch.as_deref(),
        Some("main")
    );
    assert_eq!(c.repo(&repo("octo/world")), RepoConfig::default());
    assert_eq!(
        c.ci_providers(&repo("octo/world")),
        vec![CiProvider::GithubChecks]
    );
    assert!(
        Config::default_closed()
            .ci_providers(&repo("octo/world"))
            .is_empty()
    );
}

#[test]
fn a_repo_section_outside_the_allowlist_is_a_warning() {
    let text = format!(
        r#"
allowlist = ["octo/hello"]
{GITHUB_TRACKER}
[repos."Octo/Hello"]
default_branch = "main"
[repos."octo/helo"]
paused = true
"#
    );
    let c = parse(&text).expect("a warning is not an error");
    let warnings = c.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(r#"[repos."octo/helo"]"#),
        "{warnings:?}"
    );
    assert!(warnings[0].contains("allowlist"), "{warnings:?}");
    // Enrolling it through the environment silences the warning.
    let env = with_env(&[("AFK_ALLOWLIST", "octo/hello,octo/helo")]);
    let c = afk_core::config::parse(Some(&text), &env).expect("parses");
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    assert!(Config::default_closed().warnings().is_empty());
}

#[test]
fn armed_names_the_missing_section() {
    let env = with_env(&[("AFK_KILL_SWITCH", "false"), ("AFK_ALLOWLIST", "o/r")]);
    let bare = config::parse(None, &env).expect("parses");
    assert!(bare.gates_open());
    let err = bare.armed().expect_err("no tracker");
    assert!(matches!(
        err,
        ConfigError::MissingSection {
            section: "tracker",
            ..
        }
    ));
    let msg = err.to_string();
    assert!(
        msg.contains("[tracker]") && msg.contains("kill switch is off"),
        "{msg}"
    );

    let no_t3 = config::parse(Some(GITHUB_TRACKER), &env).expect("parses");
    let msg = no_t3.armed().expect_err("no t3").to_string();
    assert!(msg.contains("[t3]"), "{msg}");

    let full = config::parse(Some(&format!("{GITHUB_TRACKER}{T3}")), &env).expect("parses");
    let armed = full.armed().expect("armed");
    assert_eq!(armed.tracker.bot_login, "afk-bot");
    assert_eq!(armed.t3.base_url, "http://t3.afk.svc:3773");
}

// ---------------------------------------------------------------------------------------------
// Environment overrides of the two gates.

#[test]
fn env_overrides_win_over_the_file() {
    let text = r#"kill_switch = false
allowlist = ["o/file"]"#;
    for (value, expected) in [
        ("true", true),
        ("TRUE", true),
        ("1", true),
        ("False", false),
        ("0", false),
    ] {
        let c =
            config::parse(Some(text), &with_env(&[("AFK_KILL_SWITCH", value)])).expect("parses");
        assert_eq!(c.kill_switch, expected, "AFK_KILL_SWITCH={value}");
    }
    let c = config::parse(
        Some(text),
        &with_env(&[("AFK_ALLOWLIST", " o/a ,owner-2/b.c ")]),
    )
    .expect("parses");
    assert_eq!(c.allowlist, vec![repo("o/a"), repo("owner-2/b.c")]);
    let c = config::parse(Some(text), &with_env(&[("AFK_ALLOWLIST", "")])).expect("parses");
    assert!(
        c.allowlist.is_empty(),
        "an empty AFK_ALLOWLIST enrolls nothing"
    );
    let c = config::parse(Some(text), &no_env).expect("parses");
    assert_eq!(c.allowlist, vec![repo("o/file")]);
    assert!(!c.kill_switch);
    // Turning the switch off from the environment alone.
    let c = config::parse(None, &with_env(&[("AFK_KILL_SWITCH", "false")])).expect("parses");
    assert!(!c.kill_switch);
}

#[test]
fn kill_switch_maybe_in_the_environment_is_refused() {
    let err = config::parse(None, &with_env(&[("AFK_KILL_SWITCH", "maybe")]))
        .expect_err("maybe is not a boolean");
    assert_names(&err, "AFK_KILL_SWITCH", "maybe");
    for bad in ["", "yes", "on", "2", "t"] {
        assert!(
            config::parse(None, &with_env(&[("AFK_KILL_SWITCH", bad)])).is_err(),
            "AFK_KILL_SWITCH={bad:?} must be refused"
        );
    }
}

#[test]
fn malformed_entries_in_afk_allowlist_are_refused() {
    let err = config::parse(None, &with_env(&[("AFK_ALLOWLIST", "o/a,o/r;rm")]))
        .expect_err("shell metacharacters");
    assert_names(&err, "AFK_ALLOWLIST[1]", "o/r;rm");
    for bad in ["o/a,", "o/a,,o/b", "../x", "o/r/x", "o/a, o/a", "o/a O/b"] {
        assert!(
            config::parse(None, &with_env(&[("AFK_ALLOWLIST", bad)])).is_err(),
            "AFK_ALLOWLIST={bad:?} must be refused"
        );
    }
}

proptest! {
    #[test]
    fn any_allowlist_of_valid_repos_round_trips_through_afk_allowlist(
        raw in proptest::collection::vec(
            ("[a-zA-Z0-9][a-zA-Z0-9_.-]{0,12}", "[a-zA-Z0-9.][a-zA-Z0-9_.-]{0,20}", " {0,2}", " {0,2}"),
            0..8,
        )
    ) {
        let mut repos: Vec<RepoName> = Vec::new();
        let mut parts: Vec<String> = Vec::new();
        for (owner, name, pad_l, pad_r) in &raw {
            let Ok(r) = RepoName::new(owner, name) else { continue };
            if repos.iter().any(|x| x.to_string().eq_ignore_ascii_case(&r.to_string())) {
                continue;
            }
            parts.push(format!("{pad_l}{r}{pad_r}"));
            repos.push(r);
        }
        let joined = parts.join(",");
        let c = config::parse(None, &with_env(&[("AFK_ALLOWLIST", &joined)]))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&c.allowlist, &repos);
        // And the same list written back out parses to the same config.
        let rendered: Vec<String> = c.allowlist.iter().map(ToString::to_string).collect();
        let again = config::parse(None, &with_env(&[("AFK_ALLOWLIST", &rendered.join(","))]))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again.allowlist, repos);
    }
}

// ---------------------------------------------------------------------------------------------
// One error per bad input, naming the key and the value.

#[test]
fn kill_switch_maybe_in_the_file_is_refused() {
    let err = refused(r#"kill_switch = "maybe""#);
    assert_names(&err, "kill_switch", "maybe");
    assert_eq!(err.key(), "kill_switch");
    let err = refused("kill_switch = 0");
    assert_names(&err, "kill_switch", "0");
}

#[test]
fn unknown_top_level_key_is_refused() {
    let err = refused("kill_swich = false");
    assert!(matches!(&err, ConfigError::UnknownKey { key, .. } if key == "kill_swich"));
    assert_names(&err, "kill_swich", "kill_switch");
}

#[test]
fn unknown_nested_keys_are_refused_with_their_path() {
    for (text, key) in [
        (format!("{GITHUB_TRACKER}tokn = \"x\""), "tracker.tokn"),
        ("[labels]\nredy = \"x\"".to_owned(), "labels.redy"),
        (
            "[t3]\nbase_url = \"http://h\"\ntoken_file = \"/t\"\nweb_url = \"http://h\"\nmodel = { instance_id = \"a\", model = \"m\", effort = \"high\" }".to_owned(),
            "t3.model.effort",
        ),
        ("[notify.ntfy]\nurl = \"http://h\"\ntopic = \"t\"\nprio = 5".to_owned(), "notify.ntfy.prio"),
        ("[notify.email]\nto = \"x\"".to_owned(), "notify.email"),
        ("[ci.jenkins]\nurl = \"x\"".to_owned(), "ci.jenkins"),
        ("[kube]\nnamespace = \"x\"".to_owned(), "kube.namespace"),
        ("[repos.\"o/r\"]\nbranch = \"main\"".to_owned(), "repos.\"o/r\".branch"),
        (
            "[repos.\"o/r\"]\ndeploy = { namespace = \"a\", deployment = \"a\", container = \"a\", image = \"x\" }".to_owned(),
            "repos.\"o/r\".deploy.image",
        ),
    ] {
        let err = refused(&text);
        assert!(
            matches!(&err, ConfigError::UnknownKey { key: k, .. } if k == key),
            "expected unknown key {key}, got {err:?}"
        );
        assert!(err.to_string().contains(key), "{err}");
    }
}

#[test]
fn malformed_allowlist_entries_in_the_file_are_refused() {
    for (bad, index) in [
        ("../x", 1),
        ("o/r/x", 1),
        ("o/r;rm", 1),
        ("", 1),
        ("o/$(id)", 1),
    ] {
        let err = refused(&format!("allowlist = [\"o/a\", {bad:?}]"));
        assert_names(&err, &format!("allowlist[{index}]"), bad);
    }
    let err = refused(r#"allowlist = "o/a""#);
    assert_eq!(err.key(), "allowlist");
}

#[test]
fn duplicate_allowlist_entries_are_refused() {
    let err = refused(r#"allowlist = ["o/a", "o/b", "O/A"]"#);
    assert_names(&err, "allowlist[2]", "O/A");
    assert!(err.to_string().contains("allowlist[0]"), "{err}");
}

#[test]
fn malformed_repo_section_keys_are_refused() {
    for bad in ["../x", "o/r/x", "o/r;rm", "o r"] {
        let err = refused(&format!("[repos.{bad:?}]\npaused = true"));
        assert_names(&err, &format!("repos.{bad:?}"), bad);
    }
    let err = refused("[repos.o]\npaused = true");
    assert_names(&err, "repos.o", "\"o\"");
    let err = refused("[repos]\n\"o/r\" = 5");
    assert_eq!(err.key(), "repos.\"o/r\"");
    assert!(err.to_string().contains("expected a table"), "{err}");
    let err = refused("[repos.\"o/r\"]\n[repos.\"O/R\"]");
    assert!(err.to_string().contains("one section per repo"), "{err}");
}

#[test]
fn bad_durations_are_refused() {
    for (key, bad) in [
        ("ci_timeout", "60 minutes"),
        ("tick_deadline", "0s"),
        ("max_run_duration", "4"),
        ("fix_forward_window", "1.5h"),
        ("t3_outage_page_after", "0m"),
    ] {
        let err = refused(&format!("[limits]\n{key} = {bad:?}"));
        assert_names(&err, &format!("limits.{key}"), bad);
    }
    let err = refused("[limits]\nci_timeout = 60");
    assert_names(&err, "limits.ci_timeout", "60");
}

#[test]
fn absurd_durations_are_refused_naming_the_key() {
    for (key, bad) in [
        ("tick_deadline", "200000000000000d"),
        ("ci_timeout", "18446744073709551615s"),
        ("max_run_duration", "366d"),
        ("fix_forward_window", "8784h1s"),
    ] {
        let err = refused(&format!("[limits]\n{key} = {bad:?}"));
        assert_names(&err, &format!("limits.{key}"), bad);
        assert!(err.to_string().contains("at most 365d"), "{err}");
    }
}

proptest! {
    #[test]
    fn no_string_panics_the_duration_parser(s in "\\PC{0,40}|[0-9smhd]{1,60}") {
        if let Ok(d) = afk_core::model::parse_duration(&s) {
            prop_assert!(d > Duration::ZERO);
            prop_assert!(d <= afk_core::model::MAX_DURATION);
        }
    }
}

#[test]
fn a_ci_provider_of_the_other_forge_is_refused() {
    let err = refused(&format!(
        "{GITHUB_TRACKER}[repos.\"o/r\"]\nci = [\"github-checks\", \"forgejo-status\"]"
    ));
    assert_names(&err, "repos.\"o/r\".ci[1]", "forgejo-status");
    assert!(
        err.to_string().contains("github-actions"),
        "lists what fits: {err}"
    );
    let err = refused(&format!(
        "{FORGEJO_TRACKER}[repos.\"o/r\"]\nci = [\"github-actions\"]"
    ));
    assert_names(&err, "repos.\"o/r\".ci[0]", "github-actions");
    let err = refused(&format!(
        "{GITHUB_TRACKER}[repos.\"o/r\"]\nci = [\"travis\"]"
    ));
    assert_names(&err, "repos.\"o/r\".ci[0]", "travis");
    let err = refused(&format!(
        "{GITHUB_TRACKER}[repos.\"o/r\"]\nci = [\"github-checks\", \"github-checks\"]"
    ));
    assert_names(&err, "repos.\"o/r\".ci[1]", "github-checks");
}

#[test]
fn woodpecker_needs_its_section() {
    let err = refused(&format!(
        "{GITHUB_TRACKER}[repos.\"o/r\"]\nci = [\"woodpecker\"]"
    ));
    assert_names(&err, "repos.\"o/r\".ci[0]", "woodpecker");
    assert!(err.to_string().contains("[ci.woodpecker]"), "{err}");
    let ok = parse(&format!(
        "{FORGEJO_TRACKER}[ci.woodpecker]\napi_url = \"https://ci.example.org/api\"\ntoken_file = \"/w\"\n[repos.\"o/r\"]\nci = [\"woodpecker\"]"
    ))
    .expect("woodpecker with its section");
    assert_eq!(ok.ci_providers(&repo("o/r")), vec![CiProvider::Woodpecker]);
}

#[test]
fn relative_or_escaping_secret_files_are_refused() {
    let err = refused(
        "[tracker]\nkind = \"github\"\ntoken_file = \"secrets/token\"\nbot_login = \"afk-bot\"",
    );
    assert_names(&err, "tracker.token_file", "secrets/token");
    let err = refused("[notify.slack]\nwebhook_url_file = \"/run/../etc/shadow\"");
    assert_names(&err, "notify.slack.webhook_url_file", "/run/../etc/shadow");
    let err = refused("[ci.woodpecker]\napi_url = \"https://ci\"\ntoken_file = \"token\"");
    assert_names(&err, "ci.woodpecker.token_file", "token");
}

#[test]
fn bad_urls_are_refused() {
    let err = refused(
        "[tracker]\nkind = \"github\"\napi_url = \"api.github.com\"\ntoken_file = \"/t\"\nbot_login = \"b\"",
    );
    assert_names(&err, "tracker.api_url", "api.github.com");
    for (key, section, rest) in [
        (
            "base_url",
            "t3",
            "token_file = \"/t\"\nweb_url = \"https://w\"",
        ),
        (
            "web_url",
            "t3",
            "token_file = \"/t\"\nbase_url = \"https://w\"",
        ),
        ("url", "notify.ntfy", "topic = \"afk\""),
        ("api_url", "ci.woodpecker", "token_file = \"/t\""),
    ] {
        for bad in [
            "ftp://host",
            "https://",
            "https://user:pw@host",
            "file:///etc",
        ] {
            let err = refused(&format!("[{section}]\n{key} = {bad:?}\n{rest}"));
            assert_names(&err, &format!("{section}.{key}"), bad);
        }
    }
}

#[test]
fn zero_counts_are_refused() {
    let err = refused("max_in_flight = 0");
    assert_names(&err, "max_in_flight", "0");
    let err = refused("max_in_flight = -1");
    assert_names(&err, "max_in_flight", "-1");
    let err = refused("t3_max_busy_threads = 0");
    assert_names(&err, "t3_max_busy_threads", "0");
    for key in ["fix_forward_max_attempts", "max_dispatch_attempts"] {
        let err = refused(&format!("[limits]\n{key} = 0"));
        assert_names(&err, &format!("limits.{key}"), "0");
    }
}

#[test]
fn more_fix_forward_attempts_than_a_comment_can_hold_are_refused() {
    let err = refused("[limits]\nfix_forward_max_attempts = 101");
    assert_names(&err, "limits.fix_forward_max_attempts", "101");
    assert!(err.to_string().contains("1 to 100"), "{err}");
}

#[test]
fn bad_labels_are_refused() {
    let err = refused("[labels]\nready = \"\"");
    assert_names(&err, "labels.ready", "\"\"");
    let err = refused("[labels]\nhuman = \"a,b\"");
    assert_names(&err, "labels.human", "a,b");
    let err = refused("[labels]\nhuman = \"Ready-For-Agent\"");
    assert_names(&err, "labels.human", "Ready-For-Agent");
    assert!(err.to_string().contains("labels.ready"), "{err}");
    let err = refused("[labels]\npriority_patterns = [\"P{n}\", \"prio\"]");
    assert_names(&err, "labels.priority_patterns[1]", "prio");
    let err = refused("[labels]\npriority_patterns = [\"{n}-{n}\"]");
    assert_names(&err, "labels.priority_patterns[0]", "{n}-{n}");
}

#[test]
fn bad_limits_and_prices_are_refused() {
    let err = refused("[limits]\nmax_budget_usd = 0");
    assert_names(&err, "limits.max_budget_usd", "0");
    let err = refused("[limits]\nmax_budget_usd = nan");
    assert_names(&err, "limits.max_budget_usd", "NaN");
    let err = refused("[limits]\nmax_budget_usd = inf");
    assert_names(&err, "limits.max_budget_usd", "inf");
    let err = refused("[pricing]\noutput = -1.0");
    assert_names(&err, "pricing.output", "-1");
    let err = refused("[pricing]\ninput = \"3\"");
    assert_names(&err, "pricing.input", "3");
}

#[test]
fn bad_workspace_values_are_refused() {
    for bad in [101, 0] {
        let err = refused(&format!("[workspace]\nevict_above_percent = {bad}"));
        assert_names(&err, "workspace.evict_above_percent", &bad.to_string());
    }
    let err = refused("[workspace]\nevict_above_percent = 300");
    assert_names(&err, "workspace.evict_above_percent", "300");
    for bad in ["data/afk", "/data/../etc", "/"] {
        let err = refused(&format!("[workspace]\nroot = {bad:?}"));
        assert_names(&err, "workspace.root", bad);
    }
    let err = refused("[workspace]\nclone_url_template = \"https://github.com/o/r.git\"");
    assert_names(
        &err,
        "workspace.clone_url_template",
        "https://github.com/o/r.git",
    );
    let err = refused("[workspace]\nclone_url_template = \"https://x:tok@github.com/{repo}\"");
    assert_eq!(err.key(), "workspace.clone_url_template");
    for bad in ["../x", "/etc", ".", "a/../../b"] {
        let err = refused(&format!("[workspace]\ncache_dirs = [\"ok\", {bad:?}]"));
        assert_names(&err, "workspace.cache_dirs[1]", bad);
    }
}

#[test]
fn bad_t3_values_are_refused() {
    let t3 = |extra: &str| {
        format!(
            "[t3]\nbase_url = \"http://t\"\ntoken_file = \"/t\"\nweb_url = \"https://w\"\n{extra}"
        )
    };
    let err = refused(&t3("runtime_mode = \"yolo\""));
    assert_names(&err, "t3.runtime_mode", "yolo");
    assert!(err.to_string().contains("approval-required"), "{err}");
    for bad in ["1abc", "a b", "", "a/b", &"a".repeat(65)] {
        let err = refused(&t3(&format!(
            "model = {{ instance_id = {bad:?}, model = \"m\" }}"
        )));
        assert_names(&err, "t3.model.instance_id", bad);
    }
    let err = refused(&t3("model = { instance_id = \"claudeAgent\" }"));
    assert!(
        matches!(&err, ConfigError::Missing { key, .. } if key == "t3.model.model"),
        "{err:?}"
    );
    let err = refused("[t3]\nbase_url = \"http://t\"\ntoken_file = \"/t\"");
    assert!(
        matches!(&err, ConfigError::Missing { key, .. } if key == "t3.web_url"),
        "{err:?}"
    );
}

#[test]
fn bad_tracker_values_are_refused() {
    let err = refused("[tracker]\nkind = \"gitlab\"\ntoken_file = \"/t\"\nbot_login = \"b\"");
    assert_eq!(err.key(), "tracker.kind");
    assert!(
        err.to_string().contains("gitlab") && err.to_string().contains("forgejo"),
        "{err}"
    );
    let err = refused("[tracker]\nkind = \"forgejo\"\ntoken_file = \"/t\"\nbot_login = \"b\"");
    assert!(
        matches!(&err, ConfigError::Missing { key, .. } if key == "tracker.api_url"),
        "{err:?}"
    );
    let err = refused("[tracker]\nkind = \"github\"\ntoken_file = \"/t\"\nbot_login = \"a b\"");
    assert_names(&err, "tracker.bot_login", "a b");
    let err = refused("trusted_bots = [\"ok[bot]\", \"\"]");
    assert_names(&err, "trusted_bots[1]", "\"\"");
}

#[test]
fn bad_repo_sections_are_refused() {
    let deploy = |d: &str| format!("[repos.\"o/r\"]\ndeploy = {d}");
    let err = refused(&deploy(
        "{ namespace = \"App\", deployment = \"app\", container = \"app\" }",
    ));
    assert_names(&err, "repos.\"o/r\".deploy.namespace", "App");
    let err = refused(&deploy(
        "{ namespace = \"app\", deployment = \"app_1\", container = \"app\" }",
    ));
    assert_names(&err, "repos.\"o/r\".deploy.deployment", "app_1");
    let err = refused(&deploy(
        "{ namespace = \"app\", deployment = \"app\", container = \"-c\" }",
    ));
    assert_names(&err, "repos.\"o/r\".deploy.container", "-c");
    let err = refused(&deploy("{ namespace = \"app\", deployment = \"app\" }"));
    assert!(
        matches!(&err, ConfigError::Missing { key, .. } if key == "repos.\"o/r\".deploy.container"),
        "{err:?}"
    );
    let err = refused("[repos.\"o/r\"]\ndefault_branch = \"main; rm -rf /\"");
    assert_names(&err, "repos.\"o/r\".default_branch", "main; rm -rf /");
    let err = refused("[repos.\"o/r\"]\npaused = \"yes\"");
    assert_names(&err, "repos.\"o/r\".paused", "yes");
}

#[test]
fn syntax_errors_say_where() {
    let err = refused("kill_switch = false\nallowlist = [\"o/a\"\n");
    assert!(
        matches!(err, ConfigError::Syntax { line: 2 | 3, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("not valid TOML"), "{err}");
    let err = refused("kill_switch = true\nkill_switch = false");
    assert!(
        matches!(err, ConfigError::Syntax { line: 2, .. }),
        "{err:?}"
    );
}

#[test]
fn echoed_values_are_bounded() {
    let long = format!("o/{}", "x;".repeat(1000));
    let err = refused(&format!("allowlist = [{long:?}]"));
    assert!(err.to_string().len() < 400, "{err}");
    let err = config::parse(None, &with_env(&[("AFK_ALLOWLIST", &long)])).expect_err("bad");
    assert!(err.to_string().len() < 400, "{err}");
    let err = refused(&format!("kill_switch = {:?}", "maybe".repeat(500)));
    assert!(err.to_string().len() < 600, "{err}");
}

#[test]
fn kube_api_url_is_a_plain_url_and_excludes_a_context() {
    let c = parse("[kube]\napi_url = \"http://127.0.0.1:8001/\"\n").expect("parses");
    assert_eq!(
        c.kube.and_then(|k| k.api_url).as_deref(),
        Some("http://127.0.0.1:8001")
    );
    let err = parse("[kube]\napi_url = \"http://127.0.0.1:8001\"\ncontext = \"prod\"\n")
        .expect_err("both");
    assert!(err.to_string().contains("kube.api_url"), "{err}");
    let err = parse("[kube]\napi_url = \"ftp://x\"\n").expect_err("scheme");
    assert!(err.to_string().contains("kube.api_url"), "{err}");
}

fn deploy_of(extra: &str) -> Result<Config, ConfigError> {
    parse(&format!(
        "[repos.\"o/r\"]\ndeploy = {{ namespace = \"app\", deployment = \"web\", container = \"web\"{extra} }}\n"
    ))
}

#[test]
fn the_commit_to_image_match_is_per_repo_with_the_full_sha_as_default() {
    let m = |extra: &str| {
        deploy_of(extra)
            .expect("parses")
            .repo(&repo("o/r"))
            .deploy
            .expect("deploy")
            .image_match
    };
    assert_eq!(m(""), ImageMatch::FullSha);
    assert_eq!(
        m(", tag = \"sha-{short_sha}\""),
        ImageMatch::Tag {
            template: "sha-{short_sha}".into(),
            short_len: 7
        }
    );
    assert_eq!(
        m(", tag = \"{short_sha}\", short_sha_len = 12"),
        ImageMatch::Tag {
            template: "{short_sha}".into(),
            short_len: 12
        }
    );
    assert_eq!(
        m(", revision_annotation = \"org.opencontainers.image.revision\""),
        ImageMatch::Annotation {
            key: "org.opencontainers.image.revision".into()
        }
    );
}

#[test]
fn a_bad_image_match_is_refused_naming_its_key() {
    let key = |k: &str| format!("repos.\"o/r\".deploy.{k}");
    for (extra, k, value) in [
        (", tag = \"latest\"", "tag", "latest"),
        (", tag = \"v/{sha}\"", "tag", "v/{sha}"),
        (", tag = \"{commit}\"", "tag", "{commit}"),
        (", tag = \"{sha}\", short_sha_len = 3", "short_sha_len", "3"),
        (", short_sha_len = 8", "short_sha_len", "8"),
        (
            ", tag = \"{sha}\", revision_annotation = \"rev\"",
            "revision_annotation",
            "rev",
        ),
        (
            ", revision_annotation = \"-bad-\"",
            "revision_annotation",
            "-bad-",
        ),
        (
            ", revision_annotation = \"Ex.COM/rev\"",
            "revision_annotation",
            "Ex.COM/rev",
        ),
    ] {
        let err = deploy_of(extra).expect_err(extra);
        assert_names(&err, &key(k), value);
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets never travel over plain HTTP; the tracker token goes only to the tracker's git host.

#[test]
fn plain_http_for_a_url_that_carries_a_secret_is_refused_naming_the_key() {
    let cases = [
        (
            "tracker.api_url",
            "[tracker]\nkind = \"forgejo\"\napi_url = \"http://git.example.org/api/v1\"\ntoken_file = \"/t\"\nbot_login = \"b\"\n".to_owned(),
        ),
        (
            "t3.base_url",
            "[t3]\nbase_url = \"http://t3.example.org\"\ntoken_file = \"/t\"\nweb_url = \"https://w\"\n".to_owned(),
        ),
        (
            "workspace.clone_url_template",
            "[workspace]\nclone_url_template = \"http://git.example.org/{repo}.git\"\n".to_owned(),
        ),
        (
            "ci.woodpecker.api_url",
            "[ci.woodpecker]\napi_url = \"http://ci.example.org/api\"\ntoken_file = \"/t\"\n".to_owned(),
        ),
        (
            "notify.ntfy.url",
            "[notify.ntfy]\nurl = \"HTTP://ntfy.example.org\"\ntopic = \"afk\"\n".to_owned(),
        ),
    ];
    for (key, text) in &cases {
        let err = refused(text);
        assert_eq!(err.key(), *key, "{err}");
        assert!(err.to_string().contains("https://"), "{err}");
        assert!(err.to_string().contains("allow_insecure_http"), "{err}");
        // The explicit opt-in accepts it.
        let allowed = format!("[network]\nallow_insecure_http = true\n{text}");
        parse(&allowed).unwrap_or_else(|e| panic!("{key} with the opt-in: {e}"));
    }
}

#[test]
fn plain_http_to_loopback_or_a_cluster_service_is_accepted() {
    for host in [
        "127.0.0.1:3773",
        "127.8.9.10",
        "localhost:8080",
        "[::1]:3773",
        "t3.afk.svc:3773",
        "t3.afk.svc.cluster.local",
    ] {
        let text = format!(
            "[t3]\nbase_url = \"http://{host}\"\ntoken_file = \"/t\"\nweb_url = \"https://w\"\n"
        );
        parse(&text).unwrap_or_else(|e| panic!("{host}: {e}"));
    }
    for host in [
        "127.0.0.1.example.org",
        "localhost.example.org",
        "svc.example.org",
    ] {
        let text = format!(
            "[t3]\nbase_url = \"http://{host}\"\ntoken_file = \"/t\"\nweb_url = \"https://w\"\n"
        );
        assert_eq!(refused(&text).key(), "t3.base_url", "{host}");
    }
}

#[test]
fn the_tracker_token_goes_only_to_the_trackers_own_git_host() {
    let github = |clone: &str, extra: &str| {
        parse(&format!(
            "{GITHUB_TRACKER}[workspace]\nclone_url_template = {clone:?}\n{extra}"
        ))
        .expect("parses")
        .workspace
        .send_tracker_token
    };
    assert!(github("https://github.com/{repo}.git", ""));
    assert!(github("https://GitHub.com/{repo}", ""));
    assert!(!github("https://evil.example/{repo}.git", ""));
    assert!(!github("https://github.com.evil.example/{repo}.git", ""));
    assert!(!github("git@github.com:{repo}.git", ""));
    assert!(!github("file:///srv/git/{repo}.git", ""));
    // Explicit, either way.
    assert!(github(
        "https://mirror.example/{repo}.git",
        "send_tracker_token = true"
    ));
    assert!(!github(
        "https://github.com/{repo}.git",
        "send_tracker_token = false"
    ));
    let forgejo = |clone: &str| {
        parse(&format!(
            "{FORGEJO_TRACKER}[workspace]\nclone_url_template = {clone:?}\n"
        ))
        .expect("parses")
        .workspace
        .send_tracker_token
    };
    assert!(forgejo("https://git.example.org/{repo}.git"));
    assert!(!forgejo("https://git.example.org:8443/{repo}.git"));
    assert!(!forgejo("https://github.com/{repo}.git"));
    // No tracker, no token.
    assert!(!parse("").expect("empty").workspace.send_tracker_token);
}

#[test]
fn response_caps_are_bounded_and_named() {
    let c = parse("[network]\nmax_response_mib = 8\nt3_max_response_mib = 1024").expect("caps");
    assert_eq!(c.network.max_response_bytes(), 8 << 20);
    assert_eq!(c.network.t3_max_response_bytes(), 1024 << 20);
    for (key, bad) in [("max_response_mib", "0"), ("t3_max_response_mib", "4097")] {
        let err = refused(&format!("[network]\n{key} = {bad}"));
        assert_names(&err, &format!("network.{key}"), bad);
    }
}

#[test]
fn metrics_push_to_a_pushgateway_only_when_configured() {
    let none = parse("[metrics]\n").expect("an empty [metrics] parses");
    assert_eq!(none.metrics, None);
    let c =
        parse("[metrics]\npushgateway_url = \"http://pgw.monitoring:9091/\"\n").expect("parses");
    let m = c.metrics.expect("metrics configured");
    assert_eq!(m.pushgateway_url, "http://pgw.monitoring:9091");
    assert_eq!(m.job, "afk");
    let custom = parse("[metrics]\npushgateway_url = \"https://pgw\"\njob = \"afk-prod\"\n")
        .expect("parses");
    assert_eq!(custom.metrics.map(|m| m.job).as_deref(), Some("afk-prod"));
    for bad in [
        "[metrics]\npushgateway_url = \"pgw:9091\"\n",
        "[metrics]\npushgateway_url = \"http://pgw\"\njob = \"a/b\"\n",
        "[metrics]\npushgateway_url = \"http://pgw\"\nunknown = 1\n",
    ] {
        assert!(parse(bad).is_err(), "{bad:?} must be refused");
    }
}

#[test]
fn the_rate_limit_reserve_is_a_percentage_from_0_to_90() {
    let default = parse("").expect("empty config");
    assert_eq!(default.limits.rate_limit_reserve_percent, 20);
    for ok in [0, 35, 90] {
        let c = parse(&format!("[limits]\nrate_limit_reserve_percent = {ok}")).expect("valid");
        assert_eq!(c.limits.rate_limit_reserve_percent, ok);
    }
    let err = refused("[limits]\nrate_limit_reserve_percent = 91");
    assert_names(&err, "limits.rate_limit_reserve_percent", "91");
    assert!(
        refused("[limits]\nrate_limit_reserve_percent = -1")
            .to_string()
            .contains("rate_limit_reserve_percent")
    );
}

// --- GitHub App credentials -------------------------------------------------------------------

const APP_TRACKER: &str = "[tracker]\nkind = \"github\"\napp_id = 123\ninstallation_id = 456\nprivate_key_file = \"/var/run/secrets/afk/app-private-key\"\nbot_login = \"my-app[bot]\"";

#[test]
fn a_github_app_is_a_tracker_credential() {
    let c = parse(APP_TRACKER).expect("app tracker");
    let t = c.tracker.expect("tracker");
    assert_eq!(
        t.auth,
        TrackerAuth::GithubApp {
            app_id: 123,
            installation_id: 456,
            private_key_file: PathBuf::from("/var/run/secrets/afk/app-private-key"),
        }
    );
    assert_eq!(t.token_file(), None);
    assert_eq!(t.bot_login, "my-app[bot]");
}

#[test]
fn a_token_and_an_app_together_are_refused_naming_both() {
    let both = format!("{APP_TRACKER}\ntoken_file = \"/run/t\"");
    let msg = refused(&both).to_string();
    assert!(msg.contains("tracker.token_file"), "{msg}");
    assert!(
        msg.contains("app_id, installation_id and private_key_file"),
        "{msg}"
    );
}

#[test]
fn an_incomplete_app_or_no_credential_is_refused_naming_the_keys() {
    let no_key = APP_TRACKER.replace(
        "private_key_file = \"/var/run/secrets/afk/app-private-key\"\n",
        "",
    );
    let msg = refused(&no_key).to_string();
    assert!(msg.contains("tracker.private_key_file"), "{msg}");
    let no_installation = APP_TRACKER.replace("installation_id = 456\n", "");
    let msg = refused(&no_installation).to_string();
    assert!(msg.contains("tracker.installation_id"), "{msg}");
    let none = "[tracker]\nkind = \"github\"\nbot_login = \"afk-bot\"";
    let msg = refused(none).to_string();
    assert!(msg.contains("tracker.token_file"), "{msg}");
    assert!(msg.contains("app_id"), "{msg}");
    let zero = APP_TRACKER.replace("app_id = 123", "app_id = 0");
    assert_names(&refused(&zero), "tracker.app_id", "0");
    let relative = APP_TRACKER.replace("/var/run/secrets/afk/app-private-key", "key.pem");
    assert_names(&refused(&relative), "tracker.private_key_file", "key.pem");
}

#[test]
fn a_forgejo_tracker_takes_no_app() {
    let forgejo = APP_TRACKER.replace(
        "kind = \"github\"",
        "kind = \"forgejo\"\napi_url = \"https://git.example.org/api/v1\"",
    );
    let msg = refused(&forgejo).to_string();
    assert!(msg.contains("tracker.app_id"), "{msg}");
    assert!(msg.contains("github"), "{msg}");
}
