//! The raw shape of the config file: private structs that refuse unknown keys, and the mapping
//! of TOML and serde errors to [`ConfigError`]s that name the key path.
//!
//! Every field is optional or plain here; defaults and value checks are applied afterwards,
//! where the key path is known for the error message.

use serde::Deserialize;

use super::check::{MAX_ECHO, bounded, shown};
use super::{ConfigError, TrackerKind};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) kill_switch: Option<bool>,
    pub(super) allowlist: Option<Vec<String>>,
    pub(super) max_in_flight: Option<u32>,
    pub(super) t3_max_busy_threads: Option<u32>,
    pub(super) trusted_bots: Option<Vec<String>>,
    pub(super) labels: Option<RawLabels>,
    pub(super) limits: Option<RawLimits>,
    pub(super) tracker: Option<RawTracker>,
    pub(super) t3: Option<RawT3>,
    pub(super) workspace: Option<RawWorkspace>,
    pub(super) pricing: Option<RawPricing>,
    pub(super) notify: Option<RawNotify>,
    pub(super) ci: Option<RawCi>,
    pub(super) kube: Option<RawKube>,
    pub(super) network: Option<RawNetwork>,
    pub(super) metrics: Option<RawMetrics>,
    /// Kept untyped so each repo's section is read on its own, with its key in every error.
    pub(super) repos: Option<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLabels {
    pub(super) ready: Option<String>,
    pub(super) in_progress: Option<String>,
    pub(super) human: Option<String>,
    pub(super) priority_patterns: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) fix_forward_max_attempts: Option<u32>,
    pub(super) fix_forward_window: Option<String>,
    pub(super) max_budget_usd: Option<f64>,
    pub(super) max_run_duration: Option<String>,
    pub(super) ci_timeout: Option<String>,
    pub(super) max_dispatch_attempts: Option<u32>,
    pub(super) tick_deadline: Option<String>,
    pub(super) t3_outage_page_after: Option<String>,
    pub(super) rate_limit_reserve_percent: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTracker {
    pub(super) kind: TrackerKind,
    pub(super) api_url: Option<String>,
    pub(super) token_file: Option<String>,
    pub(super) app_id: Option<u64>,
    pub(super) installation_id: Option<u64>,
    pub(super) private_key_file: Option<String>,
    pub(super) bot_login: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawT3 {
    pub(super) base_url: String,
    pub(super) token_file: String,
    pub(super) web_url: String,
    pub(super) model: Option<RawModel>,
    pub(super) runtime_mode: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModel {
    pub(super) instance_id: String,
    pub(super) model: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkspace {
    pub(super) root: Option<String>,
    pub(super) clone_url_template: Option<String>,
    pub(super) send_tracker_token: Option<bool>,
    pub(super) retain_days: Option<u32>,
    pub(super) evict_above_percent: Option<u8>,
    pub(super) cache_dirs: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPricing {
    pub(super) input: Option<f64>,
    pub(super) output: Option<f64>,
    pub(super) cached_input: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    pub(super) ntfy: Option<RawNtfy>,
    pub(super) slack: Option<RawSlack>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNtfy {
    pub(super) url: String,
    pub(super) topic: String,
    pub(super) token_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSlack {
    pub(super) webhook_url_file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCi {
    pub(super) woodpecker: Option<RawWoodpecker>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWoodpecker {
    pub(super) api_url: String,
    pub(super) token_file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKube {
    pub(super) context: Option<String>,
    pub(super) api_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    pub(super) allow_insecure_http: Option<bool>,
    pub(super) max_response_mib: Option<u32>,
    pub(super) t3_max_response_mib: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) pushgateway_url: Option<String>,
    pub(super) job: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRepo {
    pub(super) default_branch: Option<String>,
    pub(super) ci: Option<Vec<String>>,
    pub(super) deploy: Option<RawDeploy>,
    pub(super) paused: Option<bool>,
    pub(super) pause_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeploy {
    pub(super) namespace: String,
    pub(super) deployment: String,
    pub(super) container: String,
    /// Image tag template (`{sha}`, `{short_sha}`).
    pub(super) tag: Option<String>,
    pub(super) short_sha_len: Option<i64>,
    /// Pod template annotation holding the full commit SHA.
    pub(super) revision_annotation: Option<String>,
}

pub(super) fn read_toml(text: &str) -> Result<RawConfig, ConfigError> {
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

/// One `[repos."owner/name"]` section, read on its own so every error carries `path`.
pub(super) fn read_repo(value: toml::Value, path: &str) -> Result<RawRepo, ConfigError> {
    RawRepo::deserialize(value).map_err(|e| serde_error(&e, path))
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
pub(super) fn key_segment(key: &str) -> String {
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
}
