//! Reading the config: TOML into the raw structs (unknown keys refused), validation into
//! [`Config`], then the environment overrides of the two safety gates.

use super::check::{
    absolute_path, at_least_one, branch_name, cache_dir, clone_url_template, dns_label,
    dns_subdomain, duration, http_url, instance_id, invalid, invalid_env, invalid_number, label,
    login, model_name, ntfy_topic, one_to, plain_http_refused, repo_expected, same_git_host,
    secret_file, shown,
};
use super::raw::{
    RawConfig, RawLabels, RawLimits, RawT3, RawTracker, RawWorkspace, key_segment, read_repo,
    read_toml,
};
use super::{
    CiProvider, Config, ConfigError, DEFAULT_SHORT_SHA_LEN, DeployTarget, ENV_ALLOWLIST,
    ENV_KILL_SWITCH, ImageMatch, KubeConfig, MetricsConfig, ModelSelection, NtfyConfig,
    RUNTIME_MODES, RepoConfig, SlackConfig, T3Config, TrackerAuth, TrackerConfig, TrackerKind,
    WoodpeckerConfig,
};
use crate::model::RepoName;

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

fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let mut c = Config::default_closed();
    if let Some(v) = raw.kill_switch {
        c.kill_switch = v;
    }
    if let Some(entries) = raw.allowlist {
        c.allowlist = allowlist(&entries, |i| format!("allowlist[{i}]"), invalid)?;
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
    if let Some(n) = raw.network {
        if let Some(v) = n.allow_insecure_http {
            c.network.allow_insecure_http = v;
        }
        if let Some(v) = n.max_response_mib {
            c.network.max_response_mib = one_to("network.max_response_mib", v, 4096)?;
        }
        if let Some(v) = n.t3_max_response_mib {
            c.network.t3_max_response_mib = one_to("network.t3_max_response_mib", v, 4096)?;
        }
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
    let send_tracker_token = raw.workspace.as_ref().and_then(|w| w.send_tracker_token);
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
        let api_url = match k.api_url {
            Some(u) => Some(http_url("kube.api_url", &u)?),
            None => None,
        };
        if api_url.is_some() && context.is_some() {
            return Err(invalid(
                "kube.api_url",
                api_url.as_deref().unwrap_or_default(),
                "either api_url (a plain API URL such as kubectl proxy) or context, not both",
            ));
        }
        c.kube = Some(KubeConfig { context, api_url });
    }
    if let Some(m) = raw.metrics
        && let Some(url) = m.pushgateway_url
    {
        let pushgateway_url = http_url("metrics.pushgateway_url", &url)?;
        let job = m.job.unwrap_or_else(|| "afk".to_owned());
        // A Pushgateway grouping-key value in the URL path: keep it a plain label value.
        if job.is_empty()
            || !job
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
        {
            return Err(invalid(
                "metrics.job",
                &job,
                "a job name of letters, digits, '-', '_' or '.' (default \"afk\")",
            ));
        }
        c.metrics = Some(MetricsConfig {
            pushgateway_url,
            job,
        });
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
    c.workspace.send_tracker_token = send_tracker_token.unwrap_or_else(|| {
        c.tracker
            .as_ref()
            .is_some_and(|t| same_git_host(&t.api_url, &c.workspace.clone_url_template))
    });
    if !c.network.allow_insecure_http {
        plain_http_refused(&c)?;
    }
    Ok(c)
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

fn limits(c: &mut Config, l: RawLimits) -> Result<(), ConfigError> {
    let m = &mut c.limits;
    if let Some(v) = l.fix_forward_max_attempts {
        // Every attempt stays in the run record, which must fit in one comment.
        m.fix_forward_max_attempts = one_to("limits.fix_forward_max_attempts", v, 100)?;
    }
    if let Some(v) = l.max_dispatch_attempts {
        m.max_dispatch_attempts = at_least_one("limits.max_dispatch_attempts", v)?;
    }
    if let Some(v) = l.rate_limit_reserve_percent {
        if v > 90 {
            return Err(invalid_number(
                "limits.rate_limit_reserve_percent",
                v,
                "a whole percentage from 0 to 90",
            ));
        }
        m.rate_limit_reserve_percent = v;
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
        (
            "limits.t3_outage_page_after",
            l.t3_outage_page_after,
            &mut m.t3_outage_page_after,
        ),
    ] {
        if let Some(v) = value {
            *slot = duration(key, &v)?;
        }
    }
    Ok(())
}

fn tracker(t: RawTracker) -> Result<TrackerConfig, ConfigError> {
    let api_url = match (t.api_url.clone(), t.kind) {
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
    let auth = tracker_auth(&t)?;
    Ok(TrackerConfig {
        kind: t.kind,
        api_url,
        auth,
        bot_login: login("tracker.bot_login", &t.bot_login)?,
    })
}

/// Exactly one credential: `token_file`, or all three GitHub App keys (GitHub only).
fn tracker_auth(t: &RawTracker) -> Result<TrackerAuth, ConfigError> {
    const BOTH: &str = "either token_file (a token) or app_id, installation_id and private_key_file (a GitHub App), not both";
    let app_keys = [
        ("tracker.app_id", t.app_id.is_some()),
        ("tracker.installation_id", t.installation_id.is_some()),
        ("tracker.private_key_file", t.private_key_file.is_some()),
    ];
    let any_app = app_keys.iter().any(|(_, set)| *set);
    match (&t.token_file, any_app) {
        (Some(file), true) => Err(ConfigError::Invalid {
            key: "tracker.token_file".to_owned(),
            value: format!("{} (with GitHub App keys set too)", shown(file)),
            expected: BOTH.to_owned(),
        }),
        (Some(file), false) => Ok(TrackerAuth::Token {
            token_file: secret_file("tracker.token_file", file)?,
        }),
        (None, false) => Err(ConfigError::Missing {
            key: "tracker.token_file".to_owned(),
            expected: BOTH.to_owned(),
        }),
        (None, true) => {
            if t.kind != TrackerKind::Github {
                return Err(ConfigError::Invalid {
                    key: "tracker.app_id".to_owned(),
                    value: format!("{} (on a forgejo tracker)", t.app_id.unwrap_or(0)),
                    expected: "token_file: GitHub App keys (app_id, installation_id, private_key_file) are for kind = \"github\"".to_owned(),
                });
            }
            if let Some((key, _)) = app_keys.iter().find(|(_, set)| !*set) {
                return Err(ConfigError::Missing {
                    key: (*key).to_owned(),
                    expected:
                        "a GitHub App needs app_id, installation_id and private_key_file together"
                            .to_owned(),
                });
            }
            let positive = |key: &str, v: Option<u64>| match v {
                Some(n) if n > 0 => Ok(n),
                other => Err(ConfigError::Invalid {
                    key: key.to_owned(),
                    value: format!("{}", other.unwrap_or(0)),
                    expected:
                        "a positive number (from the App's settings page or its installation URL)"
                            .to_owned(),
                }),
            };
            Ok(TrackerAuth::GithubApp {
                app_id: positive("tracker.app_id", t.app_id)?,
                installation_id: positive("tracker.installation_id", t.installation_id)?,
                private_key_file: secret_file(
                    "tracker.private_key_file",
                    t.private_key_file.as_deref().unwrap_or(""),
                )?,
            })
        }
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
    let raw = read_repo(value, &path)?;
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
        let image_match = image_match(&at, &d)?;
        section.deploy = Some(DeployTarget {
            namespace: dns_label(&at("namespace"), &d.namespace)?,
            deployment: dns_subdomain(&at("deployment"), &d.deployment)?,
            container: dns_label(&at("container"), &d.container)?,
            image_match,
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
    if let (Some(needs), Some(tracker)) = (provider.tracker_kind(), &c.tracker)
        && needs != tracker.kind
    {
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
    if provider == CiProvider::Woodpecker && c.woodpecker.is_none() {
        return Err(invalid(
            key,
            entry,
            "a [ci.woodpecker] section (api_url, token_file) to read Woodpecker from; add it or pick another provider",
        ));
    }
    Ok(provider)
}

/// `deploy.tag`, `deploy.short_sha_len` and `deploy.revision_annotation`: at most one way to
/// match, the full SHA in the tag when none is set.
fn image_match(
    at: &dyn Fn(&str) -> String,
    d: &super::raw::RawDeploy,
) -> Result<ImageMatch, ConfigError> {
    let short_len = match d.short_sha_len {
        None => DEFAULT_SHORT_SHA_LEN,
        Some(n) if (4..=40).contains(&n) => usize::try_from(n).unwrap_or(DEFAULT_SHORT_SHA_LEN),
        Some(n) => {
            return Err(invalid_number(
                &at("short_sha_len"),
                n,
                "a length of 4 to 40 hex digits (git's default is 7)",
            ));
        }
    };
    match (&d.tag, &d.revision_annotation) {
        (Some(_), Some(_)) => Err(invalid(
            &at("revision_annotation"),
            d.revision_annotation.as_deref().unwrap_or_default(),
            format!("either {} or this, not both", at("tag")),
        )),
        (Some(t), None) => Ok(ImageMatch::Tag {
            template: super::check::tag_template(&at("tag"), t)?,
            short_len,
        }),
        (None, Some(key)) => {
            if d.short_sha_len.is_some() {
                return Err(invalid_number(
                    &at("short_sha_len"),
                    short_len,
                    &format!(
                        "only with {} (a tag template using {{short_sha}})",
                        at("tag")
                    ),
                ));
            }
            Ok(ImageMatch::Annotation {
                key: super::check::annotation_key(&at("revision_annotation"), key)?,
            })
        }
        (None, None) => {
            if d.short_sha_len.is_some() {
                return Err(invalid_number(
                    &at("short_sha_len"),
                    short_len,
                    &format!(
                        "only with {} (a tag template using {{short_sha}})",
                        at("tag")
                    ),
                ));
            }
            Ok(ImageMatch::FullSha)
        }
    }
}
