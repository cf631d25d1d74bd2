//! The afk configuration: types, defaults shipped closed, parsing and validation.
//!
//! The file is TOML; `AFK_KILL_SWITCH` and `AFK_ALLOWLIST` override the two safety gates. The
//! environment is passed in as data, so this module reads nothing itself.
//!
//! Shipped closed: with no file and no environment the kill switch is ON and the allowlist is
//! EMPTY. Anything unparseable fails closed with a [`ConfigError`] naming the key,
//! the value and what was expected.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::RepoName;

mod check;
mod parse;
mod raw;

pub use parse::parse;

/// A complete, commented example config (every key), shipped closed: it parses,
/// and with it afk stays inert until a person flips the kill switch and enrolls repos.
pub const EXAMPLE_TOML: &str = include_str!("config/example.toml");

/// `runtime_mode` values T3 accepts.
pub const RUNTIME_MODES: [&str; 4] = [
    "approval-required",
    "auto-accept-edits",
    "full-access",
    "auto",
];

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
    /// Bot logins allowed to arm issues; every other bot is untrusted. Listing afk's own
    /// `tracker.bot_login` here has no effect: afk's account never arms an issue.
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
    /// `[network]`: plain-HTTP policy and response size caps.
    pub network: NetworkConfig,
    /// `None`: no metrics are pushed.
    pub metrics: Option<MetricsConfig>,
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
    /// How long T3 may stay unreachable (as the watch tick sees it) before the fleet is paged
    /// once with a `t3-unreachable` doorbell.
    pub t3_outage_page_after: Duration,
    /// The share of the tracker token's rate-limit budget (percent, 0 to 90) kept for
    /// everything else that uses the same token: at or below it a tick stops gathering
    /// (GitHub only; Forgejo reports no budget).
    pub rate_limit_reserve_percent: u32,
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
    /// An http(s) URL, stored without a trailing `/`.
    pub api_url: String,
    pub auth: TrackerAuth,
    /// The account afk comments as; only its comments are trusted to hold run records (for a
    /// GitHub App, `<app-slug>[bot]`).
    pub bot_login: String,
}

/// How afk authenticates to the tracker: `token_file`, or (GitHub only) a GitHub App's
/// `app_id`, `installation_id` and `private_key_file`.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackerAuth {
    /// A token (a personal access token on GitHub) in a file.
    Token { token_file: PathBuf },
    /// A GitHub App installation: tokens are minted from the App's private key (PEM).
    GithubApp {
        app_id: u64,
        installation_id: u64,
        private_key_file: PathBuf,
    },
}

impl TrackerConfig {
    /// The token file, when the tracker uses one (not for a GitHub App).
    pub fn token_file(&self) -> Option<&std::path::Path> {
        match &self.auth {
            TrackerAuth::Token { token_file } => Some(token_file),
            TrackerAuth::GithubApp { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelSelection {
    pub instance_id: String,
    pub model: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct T3Config {
    /// An http(s) URL, stored without a trailing `/`.
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
    /// Whether git gets the tracker token for clones and fetches: `workspace.send_tracker_token`
    /// when set, else only when the clone host is the tracker's own host (for GitHub,
    /// `github.com` for `api.github.com`).
    pub send_tracker_token: bool,
    pub retain_days: u32,
    pub evict_above_percent: u8,
    /// Folders eviction may empty, relative to `root` (absolute entries inside the root are
    /// stored relative to it).
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
    /// An http(s) URL, stored without a trailing `/`.
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
    /// An http(s) URL, stored without a trailing `/`.
    pub api_url: String,
    pub token_file: PathBuf,
}

/// `[network]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// `http://` allowed for URLs that carry a secret even when the host is neither loopback
    /// nor a Kubernetes Service name (off by default).
    pub allow_insecure_http: bool,
    /// Largest answer read from any remote but T3, in MiB (a larger body fails the request).
    pub max_response_mib: u32,
    /// Largest answer read from T3, in MiB: its fleet read (a full `/snapshot` before 0.0.32)
    /// grows with the server's history (477 MB for 5 000 busy threads).
    pub t3_max_response_mib: u32,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            allow_insecure_http: false,
            max_response_mib: 32,
            t3_max_response_mib: 512,
        }
    }
}

impl NetworkConfig {
    /// [`NetworkConfig::max_response_mib`] in bytes.
    pub fn max_response_bytes(&self) -> u64 {
        u64::from(self.max_response_mib) << 20
    }
    /// [`NetworkConfig::t3_max_response_mib`] in bytes.
    pub fn t3_max_response_bytes(&self) -> u64 {
        u64::from(self.t3_max_response_mib) << 20
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct KubeConfig {
    pub context: Option<String>,
    /// A plain, unauthenticated API URL (`kubectl proxy`, a local simulator) instead of the
    /// in-cluster or kubeconfig credentials.
    pub api_url: Option<String>,
}

/// The Prometheus Pushgateway each tick pushes its metrics to.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// An http(s) URL, stored without a trailing `/`.
    pub pushgateway_url: String,
    /// The `job` grouping label (default `afk`); each binary pushes its own group
    /// (`/metrics/job/<job>/tick/<poll|watch>`).
    pub job: String,
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
    /// How the rollout shows the pushed commit (`tag`/`short_sha_len`/`revision_annotation` in
    /// the `deploy` table; the full SHA in the image tag when none is set).
    #[serde(default)]
    pub image_match: ImageMatch,
}

/// How afk tells that a Deployment runs the pushed commit, from what the Deployment API shows
/// (the pod template's images and annotations; an image's own labels are inside the registry's
/// image config and are not visible without pulling it).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ImageMatch {
    /// The container's image tag contains the full commit SHA, not next to other hex digits
    /// (`app:<sha>`, `app:main-<sha>`).
    #[default]
    FullSha,
    /// The container's image tag is exactly this template with `{sha}` (the full SHA) and
    /// `{short_sha}` (its first `short_len` hex digits) filled in, e.g. `sha-{short_sha}`.
    Tag { template: String, short_len: usize },
    /// The pod template annotation `key` (e.g. `org.opencontainers.image.revision`, set by the
    /// deploy tooling) holds the full commit SHA. The only mode that works with images pinned
    /// by digest.
    Annotation { key: String },
}

/// git's default abbreviation length.
pub const DEFAULT_SHORT_SHA_LEN: usize = 7;

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

/// Why a configuration was refused. Every message names the key path (or environment variable)
/// and the offending value, and says what is expected; values are bounded to 120 characters.
/// The config never holds secrets (only paths to files holding them), so echoing is safe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file is not TOML at all.
    #[error("the config file is not valid TOML (line {line}, column {column}): {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// A key afk does not know (a typo must never be silently ignored).
    #[error("unknown config key `{key}`: {expected}")]
    UnknownKey { key: String, expected: String },
    /// A required key is absent.
    #[error("config key `{key}` is missing: {expected}")]
    Missing { key: String, expected: String },
    /// A value that cannot be read as its key's type (e.g. a string where a boolean belongs,
    /// an unknown `tracker.kind`); `detail` names the value.
    #[error("config key `{key}` cannot be read: {detail}")]
    Malformed { key: String, detail: String },
    /// A value of the right type that fails validation. `value` is already quoted and bounded.
    #[error("config key `{key}` = {value} is invalid: expected {expected}")]
    Invalid {
        key: String,
        value: String,
        expected: String,
    },
    /// An environment override that cannot be read (`var` may carry an entry index).
    #[error("environment variable {var}={value} is invalid: expected {expected}")]
    Env {
        var: String,
        value: String,
        expected: String,
    },
    /// A section needed to act is absent (see [`Config::armed`]).
    #[error("config section [{section}] is missing: {why}")]
    MissingSection { section: &'static str, why: String },
}

impl ConfigError {
    /// The key path or environment variable the error is about (`""` for a syntax error).
    pub fn key(&self) -> &str {
        match self {
            ConfigError::Syntax { .. } => "",
            ConfigError::UnknownKey { key, .. }
            | ConfigError::Missing { key, .. }
            | ConfigError::Malformed { key, .. }
            | ConfigError::Invalid { key, .. } => key,
            ConfigError::Env { var, .. } => var,
            ConfigError::MissingSection { section, .. } => section,
        }
    }
}

/// The sections afk needs once it acts, borrowed from a [`Config`] that has them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Armed<'a> {
    pub tracker: &'a TrackerConfig,
    pub t3: &'a T3Config,
}

impl Config {
    /// The configuration with no file and no environment: kill switch ON, allowlist EMPTY, every
    /// documented default, no tracker or T3 (afk is inert).
    pub fn default_closed() -> Config {
        Config {
            kill_switch: true,
            allowlist: Vec::new(),
            max_in_flight: 3,
            t3_max_busy_threads: 8,
            trusted_bots: Vec::new(),
            labels: Labels {
                ready: "ready-for-agent".to_owned(),
                in_progress: "agent-in-progress".to_owned(),
                human: "ready-for-human".to_owned(),
                priority_patterns: vec!["priority:{n}".to_owned(), "P{n}".to_owned()],
            },
            limits: Limits {
                fix_forward_max_attempts: 5,
                fix_forward_window: Duration::from_secs(60 * 60),
                max_budget_usd: 100.0,
                max_run_duration: Duration::from_secs(4 * 60 * 60),
                ci_timeout: Duration::from_secs(60 * 60),
                max_dispatch_attempts: 3,
                tick_deadline: Duration::from_secs(4 * 60),
                t3_outage_page_after: Duration::from_secs(30 * 60),
                rate_limit_reserve_percent: 20,
            },
            tracker: None,
            t3: None,
            workspace: WorkspaceConfig {
                root: PathBuf::from("/data/afk"),
                clone_url_template: "https://github.com/{repo}.git".to_owned(),
                send_tracker_token: false,
                retain_days: 14,
                evict_above_percent: 85,
                cache_dirs: Vec::new(),
            },
            pricing: Pricing {
                input: 3.0,
                output: 15.0,
                cached_input: 0.3,
            },
            notify: NotifyConfig::default(),
            woodpecker: None,
            kube: None,
            network: NetworkConfig::default(),
            metrics: None,
            repos: BTreeMap::new(),
        }
    }

    /// Both gates open: the kill switch is off and at least one repo is enrolled.
    pub fn gates_open(&self) -> bool {
        !self.kill_switch && !self.allowlist.is_empty()
    }

    /// Whether `repo` is in the allowlist. Owner and name compare ASCII case-insensitively, as
    /// GitHub and Forgejo do.
    pub fn is_enrolled(&self, repo: &RepoName) -> bool {
        self.allowlist.iter().any(|r| same_repo(r, repo))
    }

    /// Settings that are accepted but are probably not what the operator meant, one sentence
    /// each: a `[repos."owner/name"]` section for a repo the allowlist (file or
    /// `AFK_ALLOWLIST`) does not enrol, whose settings are therefore never used. Returned as
    /// data: the binaries log each one and list them in the plan's `warnings`.
    pub fn warnings(&self) -> Vec<String> {
        self.repos
            .keys()
            .filter(|repo| !self.is_enrolled(repo))
            .map(|repo| {
                format!(
                    "config section [repos.\"{repo}\"] is for a repo that is not in the allowlist, \
                     so its settings are unused: check the repo's spelling, or enrol it in \
                     `allowlist` (or {ENV_ALLOWLIST})"
                )
            })
            .collect()
    }

    /// The repo's `[repos."owner/name"]` section, or the defaults when it has none.
    pub fn repo(&self, repo: &RepoName) -> RepoConfig {
        self.repos
            .iter()
            .find(|(name, _)| same_repo(name, repo))
            .map(|(_, section)| section.clone())
            .unwrap_or_default()
    }

    /// Where `repo`'s CI verdict comes from: its section's `ci` list, or the tracker's own
    /// default (`github-checks` for GitHub, `forgejo-status` for Forgejo); empty without a
    /// tracker.
    pub fn ci_providers(&self, repo: &RepoName) -> Vec<CiProvider> {
        let listed = self.repo(repo).ci;
        if !listed.is_empty() {
            return listed;
        }
        match self.tracker.as_ref().map(|t| t.kind) {
            Some(TrackerKind::Github) => vec![CiProvider::GithubChecks],
            Some(TrackerKind::Forgejo) => vec![CiProvider::ForgejoStatus],
            None => Vec::new(),
        }
    }

    /// The `[tracker]` and `[t3]` sections, or an error naming the one that is missing. The
    /// binaries call this before any I/O whenever they are about to talk to a remote.
    pub fn armed(&self) -> Result<Armed<'_>, ConfigError> {
        let context = if self.gates_open() {
            format!(
                "the kill switch is off and {} repo(s) are enrolled, so afk needs it to act",
                self.allowlist.len()
            )
        } else {
            "afk needs it to talk to its remotes".to_owned()
        };
        let tracker = self
            .tracker
            .as_ref()
            .ok_or_else(|| ConfigError::MissingSection {
                section: "tracker",
                why: format!(
                    "{context}; add kind, api_url, token_file (or, for a GitHub App, app_id, installation_id and private_key_file) and bot_login"
                ),
            })?;
        let t3 = self
            .t3
            .as_ref()
            .ok_or_else(|| ConfigError::MissingSection {
                section: "t3",
                why: format!("{context}; add base_url, token_file and web_url"),
            })?;
        Ok(Armed { tracker, t3 })
    }
}

fn same_repo(a: &RepoName, b: &RepoName) -> bool {
    a.owner().eq_ignore_ascii_case(b.owner()) && a.name().eq_ignore_ascii_case(b.name())
}

impl CiProvider {
    /// The kebab-case name used in the config (`github-checks`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            CiProvider::GithubChecks => "github-checks",
            CiProvider::GithubStatus => "github-status",
            CiProvider::GithubActions => "github-actions",
            CiProvider::ForgejoStatus => "forgejo-status",
            CiProvider::ForgejoActions => "forgejo-actions",
            CiProvider::Woodpecker => "woodpecker",
        }
    }

    /// Every provider, in config-name order.
    pub const ALL: [CiProvider; 6] = [
        CiProvider::GithubChecks,
        CiProvider::GithubStatus,
        CiProvider::GithubActions,
        CiProvider::ForgejoStatus,
        CiProvider::ForgejoActions,
        CiProvider::Woodpecker,
    ];

    /// The tracker kind the provider belongs to; `None` for forge-neutral ones (Woodpecker).
    pub fn tracker_kind(self) -> Option<TrackerKind> {
        match self {
            CiProvider::GithubChecks | CiProvider::GithubStatus | CiProvider::GithubActions => {
                Some(TrackerKind::Github)
            }
            CiProvider::ForgejoStatus | CiProvider::ForgejoActions => Some(TrackerKind::Forgejo),
            CiProvider::Woodpecker => None,
        }
    }
}

impl TrackerKind {
    /// The name used in the config (`github`, `forgejo`).
    pub fn as_str(self) -> &'static str {
        match self {
            TrackerKind::Github => "github",
            TrackerKind::Forgejo => "forgejo",
        }
    }
}
