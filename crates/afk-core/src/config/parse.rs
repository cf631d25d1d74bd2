//! Reading the config: TOML into private raw structs (unknown keys refused), then validation
//! into [`Config`], then the environment overrides of the two safety gates.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{
    CiProvider, Config, ConfigError, DeployTarget, ENV_ALLOWLIST, ENV_KILL_SWITCH, KubeConfig,
    ModelSelection, NtfyConfig, RUNTIME_MODES, RepoConfig, SlackConfig, T3Config, TrackerConfig,
    TrackerKind, WoodpeckerConfig,
};
use crate::model::{RepoName, parse_duration};

/// At most this many characters of a refused value are echoed in an error.
const MAX_ECHO: usize = 120;

/// Reads the configuration.
///
/// `toml_text` is the file's content (`None`: no file, every default, shipped closed); `env`
/// looks up environment variables (only [`ENV_KILL_SWITCH`] and [`ENV_ALLOWLIST`] are read), and
/// an override that is set wins over the file.
pub fn parse(
    toml_text: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let raw = match toml_text {
        Some(text) => read_toml(text)?,
        None => RawConfig::default(),
    };
    let mut config = validate(raw)?;
    if let Some(value) = env(ENV_KILL_SWITCH) {
        config.kill_switch = env_kill_switch(&value)?;
    }
    if let Some(value) = env(ENV_ALLOWLIST) {
        config.allowlist = env_allowlist(&value)?;
    }
    Ok(config)
}

// ---------------------------------------------------------------------------------------------
// Raw shape of the file. Every field is optional here; defaults and requirements are applied in
// `validate`, where the key path is known for the error message.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    kill_switch: Option<bool>,
    allowlist: Option<Vec<String>>,
    max_in_flight: Option<u32>,
    t3_max_busy_threads: Option<u32>,
    trusted_bots: Option<Vec<String>>,
    labels: Option<RawLabels>,
    limits: Option<RawLimits>,
    tracker: Option<RawTracker>,
    t3: Option<RawT3>,
    workspace: Option<RawWorkspace>,
    pricing: Option<RawPricing>,
    notify: Option<RawNotify>,
    ci: Option<RawCi>,
    kube: Option<RawKube>,
    /// Kept untyped so each repo's section is read on its own, with its key in every error.
    repos: Option<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabels {
    ready: Option<String>,
    in_progress: Option<String>,
    human: Option<String>,
    priority_patterns: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    fix_forward_max_attempts: Option<u32>,
    fix_forward_window: Option<String>,
    max_budget_usd: Option<f64>,
    max_run_duration: Option<String>,
    ci_timeout: Option<String>,
    max_dispatch_attempts: Option<u32>,
    tick_deadline: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTracker {
    kind: TrackerKind,
    api_url: Option<String>,
    token_file: String,
    bot_login: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawT3 {
    base_url: String,
    token_file: String,
    web_url: String,
    model: Option<RawModel>,
    runtime_mode: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    instance_id: String,
    model: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkspace {
    root: Option<String>,
    clone_url_template: Option<String>,
    retain_days: Option<u32>,
    evict_above_percent: Option<u8>,
    cache_dirs: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPricing {
    input: Option<f64>,
    output: Option<f64>,
    cached_input: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    ntfy: Option<RawNtfy>,
    slack: Option<RawSlack>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNtfy {
    url: String,
    topic: String,
    token_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlack {
    webhook_url_file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCi {
    woodpecker: Option<RawWoodpecker>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWoodpecker {
    api_url: String,
    token_file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKube {
    context: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepo {
    default_branch: Option<String>,
    ci: Option<Vec<String>>,
    deploy: Option<RawDeploy>,
    paused: Option<bool>,
    pause_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeploy {
    namespace: String,
    deployment: String,
    container: String,
}

// ---------------------------------------------------------------------------------------------
// TOML and serde errors, turned into errors that name the key path.

fn read_toml(text: &str) -> Result<RawConfig, ConfigError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let (line, column) = e
            .span()
            .map(|span| line_and_column(text, span.start))
            .unwrap_or((1, 1));
        ConfigError::Syntax {
            line,
            column,
            message: bounded(&e.message().replace('\n', "; "), 3 * MAX_ECHO),
        }
    })?;
    RawConfig::deserialize(table).map_err(|e| serde_error(&e, ""))
}

/// 1-based line and column (in characters) of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Maps an error from deserializing a TOML value (not text: such errors carry no source
/// excerpt) under `prefix`. toml renders the keys leading to the failure as a last line
/// ``in `a.b` ``; serde names a missing or unknown field in its message.
fn serde_error(e: &toml::de::Error, prefix: &str) -> ConfigError {
    let rendered = e.to_string();
    let inner = rendered
        .trim_end()
        .rsplit_once("\nin `")
        .and_then(|(_, keys)| keys.strip_suffix('`'))
        .unwrap_or("");
    let at = join_path(prefix, inner);
    let message = e.message();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let expected = expected.trim_start_matches(',').trim();
        let expected = if expected.is_empty() {
            "it is not a config key".to_owned()
        } else {
            format!("{}; check the spelling", bounded(expected, 3 * MAX_ECHO))
        };
        return ConfigError::UnknownKey {
            key: join_path(&at, &key_segment(field)),
            expected,
        };
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split_once('`').map_or(rest, |(f, _)| f);
        return ConfigError::Missing {
            key: join_path(&at, field),
            expected: "this key is required in its section".to_owned(),
        };
    }
    // serde names the raw structs in "expected struct RawX"; people wrote a table.
    let detail = match message.find("expected struct Raw") {
        Some(i) => format!("{}expected a table", &message[..i]),
        None => message.to_owned(),
    };
    ConfigError::Malformed {
        key: if at.is_empty() {
            "(top level)".to_owned()
        } else {
            at
        },
        detail: bounded(&detail, 3 * MAX_ECHO),
    }
}

fn join_path(prefix: &str, key: &str) -> String {
    match (prefix.is_empty(), key.is_empty()) {
        (true, _) => key.to_owned(),
        (_, true) => prefix.to_owned(),
        _ => format!("{prefix}.{key}"),
    }
}

/// A key as it is written in a TOML path: bare when it can be, quoted otherwise.
fn key_segment(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_owned()
    } else {
        shown(key)
    }
}

/// A value as echoed in an error: quoted, escaped and bounded.
fn shown(value: &str) -> String {
    format!("{:?}", bounded(value, MAX_ECHO))
}

fn bounded(value: &str, max: usize) -> String {
    if value.chars().count() <= max {
        value.to_owned()
    } else {
        let mut out: String = value.chars().take(max).collect();
        out.push('…');
        out
    }
}

fn invalid(key: &str, value: &str, expected: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        value: shown(value),
        expected: expected.into(),
    }
}

fn invalid_number(key: &str, value: impl std::fmt::Display, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        value: bounded(&value.to_string(), MAX_ECHO),
        expected: expected.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Validation.

fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let mut c = Config::default_closed();
    if let Some(v) = raw.kill_switch {
        c.kill_switch = v;
    }
    if let Some(entries) = raw.allowlist {
        c.allowlist = allowlist(
            &entries,
            |i| format!("allowlist[{i}]"),
            |k, v, e| invalid(k, v, e),
        )?;
    }
    if let Some(v) = raw.max_in_flight {
        c.max_in_flight = at_least_one("max_in_flight", v)?;
    }
    if let Some(v) = raw.t3_max_busy_threads {
        c.t3_max_busy_threads = at_least_one("t3_max_busy_threads", v)?;
    }
    if let Some(bots) = raw.trusted_bots {
        c.trusted_bots = bots
            .iter()
            .enumerate()
            .map(|(i, b)| login(&format!("trusted_bots[{i}]"), b))
            .collect::<Result<_, _>>()?;
    }
    if let Some(l) = raw.labels {
        labels(&mut c, l)?;
    }
    if let Some(l) = raw.limits {
        limits(&mut c, l)?;
    }
    if let Some(t) = raw.tracker {
        c.tracker = Some(tracker(t)?);
    }
    if let Some(t) = raw.t3 {
        c.t3 = Some(t3(t)?);
    }
    if let Some(w) = raw.workspace {
        workspace(&mut c, w)?;
    }
    if let Some(p) = raw.pricing {
        let price = |key: &str, v: Option<f64>, default: f64| match v {
            Some(v) if !v.is_finite() || v < 0.0 => Err(invalid_number(
                key,
                v,
                "a finite price in USD per million tokens, 0 or more",
            )),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        c.pricing.input = price("pricing.input", p.input, c.pricing.input)?;
        c.pricing.output = price("pricing.output", p.output, c.pricing.output)?;
        c.pricing.cached_input = price(
            "pricing.cached_input",
            p.cached_input,
            c.pricing.cached_input,
        )?;
    }
    if let Some(n) = raw.notify {
        if let Some(ntfy) = n.ntfy {
            c.notify.ntfy = Some(NtfyConfig {
                url: http_url("notify.ntfy.url", &ntfy.url)?,
                topic: ntfy_topic("notify.ntfy.topic", &ntfy.topic)?,
                token_file: ntfy
                    .token_file
                    .map(|f| secret_file("notify.ntfy.token_file", &f))
                    .transpose()?,
            });
        }
        if let Some(slack) = n.slack {
            c.notify.slack = Some(SlackConfig {
                webhook_url_file: secret_file(
                    "notify.slack.webhook_url_file",
                    &slack.webhook_url_file,
                )?,
            });
        }
    }
    if let Some(w) = raw.ci.and_then(|ci| ci.woodpecker) {
        c.woodpecker = Some(WoodpeckerConfig {
            api_url: http_url("ci.woodpecker.api_url", &w.api_url)?,
            token_file: secret_file("ci.woodpecker.token_file", &w.token_file)?,
        });
    }
    if let Some(k) = raw.kube {
        let context = match k.context {
            Some(ctx) if ctx.trim().is_empty() || ctx.chars().any(char::is_control) => {
                return Err(invalid(
                    "kube.context",
                    &ctx,
                    "the name of a kubeconfig context (omit the key for the current one)",
                ));
            }
            other => other,
        };
        c.kube = Some(KubeConfig { context });
    }
    if let Some(repos) = raw.repos {
        for (key, value) in repos {
            let (name, section) = repo_section(&c, &key, value)?;
            if let Some(existing) = c.repos.keys().find(|r| super::same_repo(r, &name)) {
                return Err(invalid(
                    &format!("repos.{}", key_segment(&key)),
                    &key,
                    format!(
                        "one section per repo; this one repeats [repos.{}]",
                        shown(&existing.to_string())
                    ),
                ));
            }
            c.repos.insert(name, section);
        }
    }
    Ok(c)
}

fn repo_expected(why: &str) -> String {
    format!(
        "a repo as owner/name ({})",
        why.strip_prefix("expected ").unwrap_or(why)
    )
}

fn invalid_env(var: &str, value: &str, expected: String) -> ConfigError {
    ConfigError::Env {
        var: var.to_owned(),
        value: shown(value),
        expected,
    }
}

/// Validates allowlist entries: each a [`RepoName`], none listed twice (case-insensitively, as
/// the forges compare them).
fn allowlist(
    entries: &[String],
    key: impl Fn(usize) -> String,
    refuse: fn(&str, &str, String) -> ConfigError,
) -> Result<Vec<RepoName>, ConfigError> {
    let mut out: Vec<RepoName> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let repo: RepoName = entry.parse().map_err(|e: crate::model::InvalidValue| {
            refuse(&key(i), entry, repo_expected(e.why))
        })?;
        if let Some(first) = out.iter().position(|r| super::same_repo(r, &repo)) {
            return Err(refuse(
                &key(i),
                entry,
                format!("each repo listed once, but it is already {}", key(first)),
            ));
        }
        out.push(repo);
    }
    Ok(out)
}

fn env_kill_switch(value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ConfigError::Env {
            var: ENV_KILL_SWITCH.to_owned(),
            value: shown(value),
            expected: "true or false (or 1 or 0)".to_owned(),
        }),
    }
}

fn env_allowlist(value: &str) -> Result<Vec<RepoName>, ConfigError> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    let entries: Vec<String> = value.split(',').map(|e| e.trim().to_owned()).collect();
    allowlist(&entries, |i| format!("{ENV_ALLOWLIST}[{i}]"), invalid_env)
}

fn at_least_one(key: &str, v: u32) -> Result<u32, ConfigError> {
    if v == 0 {
        Err(invalid_number(key, v, "a whole number of at least 1"))
    } else {
        Ok(v)
    }
}

fn duration(key: &str, raw: &str) -> Result<Duration, ConfigError> {
    parse_duration(raw).map_err(|e| {
        invalid(
            key,
            raw,
            format!(
                "a duration like \"90s\", \"60m\", \"4h\" or \"1h30m\" ({})",
                e.why
            ),
        )
    })
}

fn labels(c: &mut Config, l: RawLabels) -> Result<(), ConfigError> {
    for (key, value, slot) in [
        ("labels.ready", l.ready, &mut c.labels.ready),
        (
            "labels.in_progress",
            l.in_progress,
            &mut c.labels.in_progress,
        ),
        ("labels.human", l.human, &mut c.labels.human),
    ] {
        if let Some(v) = value {
            *slot = label(key, &v)?;
        }
    }
    let names = [
        ("labels.ready", &c.labels.ready),
        ("labels.in_progress", &c.labels.in_progress),
        ("labels.human", &c.labels.human),
    ];
    for (i, (key, value)) in names.iter().enumerate() {
        if let Some((other, _)) = names[..i]
            .iter()
            .find(|(_, v)| v.eq_ignore_ascii_case(value))
        {
            return Err(invalid(
                key,
                value,
                format!("a label different from {other} (the three labels must be distinct)"),
            ));
        }
    }
    if let Some(patterns) = l.priority_patterns {
        c.labels.priority_patterns = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let key = format!("labels.priority_patterns[{i}]");
                let p = label(&key, p)?;
                if p.matches("{n}").count() != 1 {
                    return Err(invalid(
                        &key,
                        &p,
                        "a label pattern with exactly one {n} placeholder, e.g. \"priority:{n}\"",
                    ));
                }
                Ok(p)
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

/// A tracker label: non-empty, at most 50 characters (GitHub's limit), no commas (label lists
/// are comma-separated in the APIs), no control characters or surrounding spaces.
fn label(key: &str, v: &str) -> Result<String, ConfigError> {
    let ok = !v.is_empty()
        && v.chars().count() <= 50
        && v.trim() == v
        && !v.contains(',')
        && !v.chars().any(char::is_control);
    if ok {
        Ok(v.to_owned())
    } else {
        Err(invalid(
            key,
            v,
            "a non-empty label of at most 50 characters, without commas, control characters or surrounding spaces",
        ))
    }
}

fn limits(c: &mut Config, l: RawLimits) -> Result<(), ConfigError> {
    let m = &mut c.limits;
    if let Some(v) = l.fix_forward_max_attempts {
        m.fix_forward_max_attempts = at_least_one("limits.fix_forward_max_attempts", v)?;
    }
    if let Some(v) = l.max_dispatch_attempts {
        m.max_dispatch_attempts = at_least_one("limits.max_dispatch_attempts", v)?;
    }
    if let Some(v) = l.max_budget_usd {
        if !v.is_finite() || v <= 0.0 {
            return Err(invalid_number(
                "limits.max_budget_usd",
                v,
                "a finite amount in USD greater than 0",
            ));
        }
        m.max_budget_usd = v;
    }
    for (key, value, slot) in [
        (
            "limits.fix_forward_window",
            l.fix_forward_window,
            &mut m.fix_forward_window,
        ),
        (
            "limits.max_run_duration",
            l.max_run_duration,
            &mut m.max_run_duration,
        ),
        ("limits.ci_timeout", l.ci_timeout, &mut m.ci_timeout),
        (
            "limits.tick_deadline",
            l.tick_deadline,
            &mut m.tick_deadline,
        ),
    ] {
        if let Some(v) = value {
            *slot = duration(key, &v)?;
        }
    }
    Ok(())
}

fn tracker(t: RawTracker) -> Result<TrackerConfig, ConfigError> {
    let api_url = match (t.api_url, t.kind) {
        (Some(url), _) => http_url("tracker.api_url", &url)?,
        (None, TrackerKind::Github) => "https://api.github.com".to_owned(),
        (None, TrackerKind::Forgejo) => {
            return Err(ConfigError::Missing {
                key: "tracker.api_url".to_owned(),
                expected:
                    "a Forgejo tracker needs its API URL, e.g. \"https://git.example.org/api/v1\""
                        .to_owned(),
            });
        }
    };
    Ok(TrackerConfig {
        kind: t.kind,
        api_url,
        token_file: secret_file("tracker.token_file", &t.token_file)?,
        bot_login: login("tracker.bot_login", &t.bot_login)?,
    })
}

/// A tracker login: GitHub and Forgejo names, including GitHub App bots (`name[bot]`).
fn login(key: &str, v: &str) -> Result<String, ConfigError> {
    let ok = !v.is_empty()
        && v.len() <= 100
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '[' | ']'));
    if ok {
        Ok(v.to_owned())
    } else {
        Err(invalid(
            key,
            v,
            "a tracker login: ASCII letters, digits, '-', '_', '.' (and '[bot]' for app bots)",
        ))
    }
}

fn t3(t: RawT3) -> Result<T3Config, ConfigError> {
    let defaults = ModelSelection {
        instance_id: "claudeAgent".to_owned(),
        model: "claude-sonnet-4-6".to_owned(),
    };
    let model = match t.model {
        None => defaults,
        Some(m) => ModelSelection {
            instance_id: instance_id("t3.model.instance_id", &m.instance_id)?,
            model: model_name("t3.model.model", &m.model)?,
        },
    };
    let runtime_mode = match t.runtime_mode {
        None => "full-access".to_owned(),
        Some(mode) if RUNTIME_MODES.contains(&mode.as_str()) => mode,
        Some(mode) => {
            return Err(invalid(
                "t3.runtime_mode",
                &mode,
                format!("one of {}", RUNTIME_MODES.join(", ")),
            ));
        }
    };
    Ok(T3Config {
        base_url: http_url("t3.base_url", &t.base_url)?,
        token_file: secret_file("t3.token_file", &t.token_file)?,
        web_url: http_url("t3.web_url", &t.web_url)?,
        model,
        runtime_mode,
    })
}

/// `^[a-zA-Z][a-zA-Z0-9_-]*$`, at most 64 characters.
fn instance_id(key: &str, v: &str) -> Result<String, ConfigError> {
    let mut chars = v.chars();
    let ok = v.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(v.to_owned())
    } else {
        Err(invalid(
            key,
            v,
            "a T3 provider instance id: a letter, then letters, digits, '_' or '-' (at most 64)",
        ))
    }
}

fn model_name(key: &str, v: &str) -> Result<String, ConfigError> {
    let ok =
        !v.is_empty() && v.len() <= 200 && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(v.to_owned())
    } else {
        Err(invalid(
            key,
            v,
            "a model name without spaces, e.g. \"claude-sonnet-4-6\"",
        ))
    }
}

fn workspace(c: &mut Config, w: RawWorkspace) -> Result<(), ConfigError> {
    let ws = &mut c.workspace;
    if let Some(root) = w.root {
        let path = absolute_path(
            "workspace.root",
            &root,
            "an absolute directory path without '..', other than /",
        )?;
        if path.parent().is_none() {
            return Err(invalid(
                "workspace.root",
                &root,
                "an absolute directory path without '..', other than /",
            ));
        }
        ws.root = path;
    }
    if let Some(t) = w.clone_url_template {
        ws.clone_url_template = clone_url_template("workspace.clone_url_template", &t)?;
    }
    if let Some(d) = w.retain_days {
        ws.retain_days = at_least_one("workspace.retain_days", d)?;
    }
    if let Some(p) = w.evict_above_percent {
        if !(1..=100).contains(&p) {
            return Err(invalid_number(
                "workspace.evict_above_percent",
                p,
                "a percentage from 1 to 100",
            ));
        }
        ws.evict_above_percent = p;
    }
    if let Some(dirs) = w.cache_dirs {
        let root = ws.root.clone();
        ws.cache_dirs = dirs
            .iter()
            .enumerate()
            .map(|(i, d)| cache_dir(&format!("workspace.cache_dirs[{i}]"), d, &root))
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

fn cache_dir(key: &str, raw: &str, root: &Path) -> Result<PathBuf, ConfigError> {
    let expected = || {
        format!(
            "a folder under workspace.root: a relative path without '..', or an absolute path inside {}",
            root.display()
        )
    };
    let path = Path::new(raw);
    let clean = !raw.is_empty()
        && !raw.chars().any(char::is_control)
        && !path.components().any(|c| c == Component::ParentDir);
    if !clean {
        return Err(invalid(key, raw, expected()));
    }
    let relative = if path.is_absolute() {
        path.strip_prefix(root)
            .map_err(|_| invalid(key, raw, expected()))?
    } else {
        path
    };
    let relative: PathBuf = relative
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    let only_normal = Path::new(raw).components().all(|c| {
        matches!(
            c,
            Component::Normal(_) | Component::CurDir | Component::RootDir
        )
    });
    if relative.as_os_str().is_empty() || !only_normal {
        // Empty means the root itself: eviction would empty the whole workspace.
        return Err(invalid(key, raw, expected()));
    }
    Ok(relative)
}

fn clone_url_template(key: &str, t: &str) -> Result<String, ConfigError> {
    let expected =
        "a clone URL containing {repo} (replaced by owner/name), without credentials or spaces";
    if !t.contains("{repo}") || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(key, t, expected));
    }
    let lower = t.to_ascii_lowercase();
    for scheme in ["https://", "http://"] {
        if lower.starts_with(scheme) {
            let authority = t[scheme.len()..]
                .split(['/', '?', '#'])
                .next()
                .unwrap_or("");
            if authority.contains('@') || authority.is_empty() {
                return Err(invalid(key, t, expected));
            }
        }
    }
    Ok(t.to_owned())
}

/// An absolute path to a file holding one secret.
fn secret_file(key: &str, raw: &str) -> Result<PathBuf, ConfigError> {
    absolute_path(
        key,
        raw,
        "an absolute path without '..' to a file holding the secret (e.g. a mounted Secret)",
    )
}

fn absolute_path(key: &str, raw: &str, expected: &str) -> Result<PathBuf, ConfigError> {
    let path = Path::new(raw);
    let ok = !raw.chars().any(char::is_control)
        && path.is_absolute()
        && !path.components().any(|c| c == Component::ParentDir);
    if ok {
        Ok(path.to_path_buf())
    } else {
        Err(invalid(key, raw, expected))
    }
}

/// An http(s) base URL with a host, no credentials, query or fragment; stored without a
/// trailing `/`.
fn http_url(key: &str, raw: &str) -> Result<String, ConfigError> {
    let refuse = |why: &str| invalid(key, raw, format!("an http(s) URL with a host ({why})"));
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refuse("no spaces or control characters"));
    }
    let lower = raw.to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &raw["https://".len()..]
    } else if lower.starts_with("http://") {
        &raw["http://".len()..]
    } else {
        return Err(refuse("the scheme must be http:// or https://"));
    };
    if rest.contains(['?', '#']) {
        return Err(refuse("a base URL takes no query or fragment"));
    }
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return Err(refuse(
            "credentials do not belong in the config; use the *_file keys",
        ));
    }
    let port = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err(refuse("a malformed IPv6 host"));
        };
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(refuse("a malformed IPv6 host"));
        }
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(refuse("a malformed IPv6 host")),
        };
        port
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !host_ok {
            return Err(refuse("the host is missing or malformed"));
        }
        port
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err() {
            return Err(refuse("the port must be a number from 0 to 65535"));
        }
    }
    let trimmed = raw.trim_end_matches('/');
    Ok(trimmed.to_owned())
}

/// An ntfy topic: ntfy accepts letters, digits, `-` and `_`, up to 64 characters.
fn ntfy_topic(key: &str, v: &str) -> Result<String, ConfigError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(v.to_owned())
    } else {
        Err(invalid(
            key,
            v,
            "an ntfy topic: 1 to 64 ASCII letters, digits, '-' or '_'",
        ))
    }
}

fn repo_section(
    c: &Config,
    key: &str,
    value: toml::Value,
) -> Result<(RepoName, RepoConfig), ConfigError> {
    let path = format!("repos.{}", key_segment(key));
    let name: RepoName = key.parse().map_err(|e: crate::model::InvalidValue| {
        invalid(
            &path,
            key,
            format!("a section key naming {}", repo_expected(e.why)),
        )
    })?;
    let raw = RawRepo::deserialize(value).map_err(|e| serde_error(&e, &path))?;
    let mut section = RepoConfig::default();
    if let Some(branch) = raw.default_branch {
        section.default_branch = Some(branch_name(&format!("{path}.default_branch"), &branch)?);
    }
    if let Some(ci) = raw.ci {
        for (i, entry) in ci.iter().enumerate() {
            let key = format!("{path}.ci[{i}]");
            let provider = ci_provider(c, &key, entry)?;
            if section.ci.contains(&provider) {
                return Err(invalid(&key, entry, "each CI provider listed once"));
            }
            section.ci.push(provider);
        }
    }
    if let Some(d) = raw.deploy {
        let at = |field: &str| format!("{path}.deploy.{field}");
        section.deploy = Some(DeployTarget {
            namespace: dns_label(&at("namespace"), &d.namespace)?,
            deployment: dns_subdomain(&at("deployment"), &d.deployment)?,
            container: dns_label(&at("container"), &d.container)?,
        });
    }
    section.paused = raw.paused.unwrap_or(false);
    if let Some(reason) = raw.pause_reason {
        if reason.chars().count() > 500 {
            return Err(invalid(
                &format!("{path}.pause_reason"),
                &reason,
                "a short reason of at most 500 characters",
            ));
        }
        section.pause_reason = reason;
    }
    Ok((name, section))
}

fn ci_provider(c: &Config, key: &str, entry: &str) -> Result<CiProvider, ConfigError> {
    let names: Vec<&str> = CiProvider::ALL.iter().map(|p| p.as_str()).collect();
    let provider = CiProvider::ALL
        .into_iter()
        .find(|p| p.as_str() == entry)
        .ok_or_else(|| invalid(key, entry, format!("one of {}", names.join(", "))))?;
    if let (Some(needs), Some(tracker)) = (provider.tracker_kind(), &c.tracker) {
        if needs != tracker.kind {
            let fitting: Vec<&str> = CiProvider::ALL
                .iter()
                .filter(|p| p.tracker_kind().is_none_or(|k| k == tracker.kind))
                .map(|p| p.as_str())
                .collect();
            return Err(invalid(
                key,
                entry,
                format!(
                    "a CI provider that fits tracker.kind = \"{}\": one of {}",
                    tracker.kind.as_str(),
                    fitting.join(", ")
                ),
            ));
        }
    }
    if provider == CiProvider::Woodpecker && c.woodpecker.is_none() {
        return Err(invalid(
            key,
            entry,
            "a [ci.woodpecker] section (api_url, token_file) to read Woodpecker from; add it or pick another provider",
        ));
    }
    Ok(provider)
}

/// A branch name safe to pass to git: `[A-Za-z0-9._/-]`, no `..`, no leading `-` or `/`.
fn branch_name(key: &str, v: &str) -> Result<String, ConfigError> {
    let ok = !v.is_empty()
        && v.len() <= 255
        && !v.starts_with(['-', '/', '.'])
        && !v.ends_with(['/', '.'])
        && !v.contains("..")
        && !v.contains("//")
        && !v.ends_with(".lock")
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(v.to_owned())
    } else {
        Err(invalid(
            key,
            v,
            "a branch name of ASCII letters, digits, '-', '_', '.', '/' (no '..', not starting with '-')",
        ))
    }
}

/// An RFC 1123 label (Kubernetes namespaces and container names).
fn dns_label(key: &str, v: &str) -> Result<String, ConfigError> {
    if is_dns_label(v) {
        Ok(v.to_owned())
    } else {
        Err(invalid(
            key,
            v,
            "a DNS-1123 label: 1 to 63 lowercase letters, digits or '-', starting and ending with a letter or digit",
        ))
    }
}

/// An RFC 1123 subdomain (Kubernetes deployment names).
fn dns_subdomain(key: &str, v: &str) -> Result<String, ConfigError> {
    if v.len() <= 253 && v.split('.').all(is_dns_label) {
        Ok(v.to_owned())
    } else {
        Err(invalid(
            key,
            v,
            "a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', at most 253 characters",
        ))
    }
}

fn is_dns_label(v: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !v.is_empty()
        && v.len() <= 63
        && v.chars().all(|c| alnum(c) || c == '-')
        && v.starts_with(alnum)
        && v.ends_with(alnum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        assert_eq!(line_and_column("a = 1\nbé = x", 10), (2, 4));
        assert_eq!(line_and_column("x", 0), (1, 1));
    }

    #[test]
    fn keys_are_quoted_only_when_needed() {
        assert_eq!(key_segment("ci"), "ci");
        assert_eq!(key_segment("o/r"), "\"o/r\"");
        assert_eq!(join_path("", "a"), "a");
        assert_eq!(join_path("a", ""), "a");
        assert_eq!(join_path("a", "b"), "a.b");
    }

    #[test]
    fn echoed_values_are_bounded() {
        let long = "x".repeat(500);
        let s = shown(&long);
        assert!(s.chars().count() < MAX_ECHO + 5, "{s}");
    }

    #[test]
    fn urls_need_http_and_a_host() {
        for ok in [
            "https://api.github.com",
            "http://127.0.0.1:8080",
            "http://t3-afk.t3-afk.svc:3773/",
            "https://git.example.org/api/v1",
            "http://[::1]:9000",
        ] {
            assert!(http_url("k", ok).is_ok(), "{ok}");
        }
        assert_eq!(
            http_url("k", "https://a.example/api/").ok().as_deref(),
            Some("https://a.example/api")
        );
        for bad in [
            "",
            "api.github.com",
            "ftp://x",
            "https://",
            "https:///path",
            "https://user:pw@host",
            "https://host:port",
            "https://host:99999",
            "https://ho st",
            "https://host/?q=1",
            "http://[zz]",
        ] {
            assert!(http_url("k", bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn cache_dirs_stay_inside_the_root() {
        let root = Path::new("/data/afk");
        let ok = |raw: &str| cache_dir("k", raw, root).ok();
        assert_eq!(ok("cache/cargo"), Some(PathBuf::from("cache/cargo")));
        assert_eq!(ok("/data/afk/cache"), Some(PathBuf::from("cache")));
        for bad in [
            "",
            ".",
            "../x",
            "a/../../x",
            "/tmp/x",
            "/data/afk",
            "/data/afkx/y",
        ] {
            assert!(ok(bad).is_none(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn kubernetes_names_follow_dns_1123() {
        assert!(is_dns_label("app-1"));
        for bad in ["", "App", "-a", "a-", "a_b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad:?}");
        }
        assert!(dns_subdomain("k", "web.v2").is_ok());
        assert!(dns_subdomain("k", "web..v2").is_err());
    }

    #[test]
    fn branch_names_are_safe_for_git() {
        for ok in ["main", "master", "release/1.2", "dev_x"] {
            assert!(branch_name("k", ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-x", "a..b", "a b", "a;b", "/a", "a/", "a.lock", "$(id)",
        ] {
            assert!(branch_name("k", bad).is_err(), "{bad:?}");
        }
    }
}
