//! The afk configuration (INTERFACES §2): types, defaults shipped closed, parsing and validation.
//!
//! The file is TOML; `AFK_KILL_SWITCH` and `AFK_ALLOWLIST` override the two safety gates. The
//! environment is passed in as data, so this module reads nothing itself.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::RepoName;

/// Env var overriding `kill_switch` (`true` or `false`).
pub const ENV_KILL_SWITCH: &str = "AFK_KILL_SWITCH";
/// Env var overriding `allowlist` (`owner/a,owner/b`; empty = none).
pub const ENV_ALLOWLIST: &str = "AFK_ALLOWLIST";

/// The whole configuration, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// ON by default: afk is inert until a person turns it off.
    pub kill_switch: bool,
    /// EMPTY by default: afk touches no repo until one is enrolled.
    pub allowlist: Vec<RepoName>,
    pub max_in_flight: u32,
    pub t3_max_busy_threads: u32,
    /// Bot logins allowed to arm issues; every other bot is untrusted.
    pub trusted_bots: Vec<String>,
    pub labels: Labels,
    pub limits: Limits,
    /// Absent only while afk is inert; required once armed (see [`Config::armed`]).
    pub tracker: Option<TrackerConfig>,
    pub t3: Option<T3Config>,
    pub workspace: WorkspaceConfig,
    pub pricing: Pricing,
    pub notify: NotifyConfig,
    pub woodpecker: Option<WoodpeckerConfig>,
    pub kube: Option<KubeConfig>,
    /// Per-repo settings, keyed by repo (a repo without a section uses the defaults).
    pub repos: BTreeMap<RepoName, RepoConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    pub ready: String,
    pub in_progress: String,
    pub human: String,
    /// Patterns with one `{n}` placeholder, e.g. `priority:{n}`, `P{n}`.
    pub priority_patterns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub fix_forward_max_attempts: u32,
    pub fix_forward_window: Duration,
    pub max_budget_usd: f64,
    pub max_run_duration: Duration,
    pub ci_timeout: Duration,
    pub max_dispatch_attempts: u32,
    pub tick_deadline: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackerKind {
    Github,
    Forgejo,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrackerConfig {
    pub kind: TrackerKind,
    pub api_url: String,
    pub token_file: PathBuf,
    /// The account afk comments as; only its comments are trusted to hold run records.
    pub bot_login: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelSelection {
    pub instance_id: String,
    pub model: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct T3Config {
    pub base_url: String,
    pub token_file: PathBuf,
    /// Base of the deep links to threads shown to people.
    pub web_url: String,
    pub model: ModelSelection,
    pub runtime_mode: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceConfig {
    pub root: PathBuf,
    /// `{repo}` is replaced by `owner/name`.
    pub clone_url_template: String,
    pub retain_days: u32,
    pub evict_above_percent: u8,
    pub cache_dirs: Vec<PathBuf>,
}

/// USD per million tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Pricing {
    pub input: f64,
    pub output: f64,
    pub cached_input: f64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct NotifyConfig {
    pub ntfy: Option<NtfyConfig>,
    pub slack: Option<SlackConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NtfyConfig {
    pub url: String,
    pub topic: String,
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SlackConfig {
    pub webhook_url_file: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WoodpeckerConfig {
    pub api_url: String,
    pub token_file: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct KubeConfig {
    pub context: Option<String>,
}

/// Where a repo's CI verdict comes from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum CiProvider {
    GithubChecks,
    GithubStatus,
    GithubActions,
    ForgejoStatus,
    ForgejoActions,
    Woodpecker,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeployTarget {
    pub namespace: String,
    pub deployment: String,
    pub container: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RepoConfig {
    /// `None`: the forge's default branch.
    pub default_branch: Option<String>,
    /// Empty: the tracker's own default (`github-checks` or `forgejo-status`).
    pub ci: Vec<CiProvider>,
    /// `None`: no deploy phase.
    pub deploy: Option<DeployTarget>,
    pub paused: bool,
    pub pause_reason: String,
}
