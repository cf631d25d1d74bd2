//! Checks of single config values (paths, URLs, names, durations), each returning an error that
//! names the key, echoes the value (bounded) and says what is expected.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::ConfigError;
use crate::model::parse_duration;

/// At most this many characters of a refused value are echoed in an error.
pub(super) const MAX_ECHO: usize = 120;

/// A value as echoed in an error: quoted, escaped and bounded.
pub(super) fn shown(value: &str) -> String {
    format!("{:?}", bounded(value, MAX_ECHO))
}

pub(super) fn bounded(value: &str, max: usize) -> String {
    if value.chars().count() <= max {
        value.to_owned()
    } else {
        let mut out: String = value.chars().take(max).collect();
        out.push('…');
        out
    }
}

pub(super) fn invalid(key: &str, value: &str, expected: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        value: shown(value),
        expected: expected.into(),
    }
}

pub(super) fn invalid_number(
    key: &str,
    value: impl std::fmt::Display,
    expected: &str,
) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        value: bounded(&value.to_string(), MAX_ECHO),
        expected: expected.to_owned(),
    }
}

pub(super) fn repo_expected(why: &str) -> String {
    format!(
        "a repo as owner/name ({})",
        why.strip_prefix("expected ").unwrap_or(why)
    )
}

pub(super) fn invalid_env(var: &str, value: &str, expected: String) -> ConfigError {
    ConfigError::Env {
        var: var.to_owned(),
        value: shown(value),
        expected,
    }
}

pub(super) fn at_least_one(key: &str, v: u32) -> Result<u32, ConfigError> {
    if v == 0 {
        Err(invalid_number(key, v, "a whole number of at least 1"))
    } else {
        Ok(v)
    }
}

/// A whole number from 1 to `max`.
pub(super) fn one_to(key: &str, v: u32, max: u32) -> Result<u32, ConfigError> {
    if (1..=max).contains(&v) {
        Ok(v)
    } else {
        Err(invalid_number(
            key,
            v,
            &format!("a whole number from 1 to {max}"),
        ))
    }
}

pub(super) fn duration(key: &str, raw: &str) -> Result<Duration, ConfigError> {
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

/// A tracker label: non-empty, at most 50 characters (GitHub's limit), no commas (label lists
/// are comma-separated in the APIs), no control characters or surrounding spaces.
pub(super) fn label(key: &str, v: &str) -> Result<String, ConfigError> {
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

/// A tracker login: GitHub and Forgejo names, including GitHub App bots (`name[bot]`).
pub(super) fn login(key: &str, v: &str) -> Result<String, ConfigError> {
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

/// `^[a-zA-Z][a-zA-Z0-9_-]*$`, at most 64 characters.
pub(super) fn instance_id(key: &str, v: &str) -> Result<String, ConfigError> {
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

pub(super) fn model_name(key: &str, v: &str) -> Result<String, ConfigError> {
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

pub(super) fn cache_dir(key: &str, raw: &str, root: &Path) -> Result<PathBuf, ConfigError> {
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

pub(super) fn clone_url_template(key: &str, t: &str) -> Result<String, ConfigError> {
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
pub(super) fn secret_file(key: &str, raw: &str) -> Result<PathBuf, ConfigError> {
    absolute_path(
        key,
        raw,
        "an absolute path without '..' to a file holding the secret (e.g. a mounted Secret)",
    )
}

pub(super) fn absolute_path(key: &str, raw: &str, expected: &str) -> Result<PathBuf, ConfigError> {
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
pub(super) fn http_url(key: &str, raw: &str) -> Result<String, ConfigError> {
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
        match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(refuse("a malformed IPv6 host")),
        }
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
    if port.is_some_and(|p| {
        p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err()
    }) {
        return Err(refuse("the port must be a number from 0 to 65535"));
    }
    let trimmed = raw.trim_end_matches('/');
    Ok(trimmed.to_owned())
}

/// The scheme and host (lowercase, IPv6 without brackets) of a `scheme://host[:port]/…` URL.
pub(super) fn scheme_and_host(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    if host.is_empty() {
        return None;
    }
    Some((scheme.to_ascii_lowercase(), host.to_ascii_lowercase()))
}

/// Hosts where plain `http://` keeps a secret off open networks: loopback (`localhost`,
/// 127.0.0.0/8, `::1`) and Kubernetes Service names (`*.svc`, `*.svc.cluster.local`), whose
/// traffic stays on the cluster network (T3 is usually reached that way, as in the example config).
pub(super) fn plain_http_ok(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
        || host.ends_with(".svc")
        || host.ends_with(".svc.cluster.local")
}

/// Every URL that carries a secret (a token header, or the token git sends) must be
/// `https://`, unless its host is loopback or a Kubernetes Service ([`plain_http_ok`]). Called
/// only when `allow_insecure_http` is off; the error names the key.
pub(super) fn plain_http_refused(c: &super::Config) -> Result<(), ConfigError> {
    let mut urls: Vec<(&str, &str)> = Vec::new();
    if let Some(t) = &c.tracker {
        urls.push(("tracker.api_url", &t.api_url));
    }
    if let Some(t) = &c.t3 {
        urls.push(("t3.base_url", &t.base_url));
    }
    urls.push((
        "workspace.clone_url_template",
        &c.workspace.clone_url_template,
    ));
    if let Some(w) = &c.woodpecker {
        urls.push(("ci.woodpecker.api_url", &w.api_url));
    }
    if let Some(n) = &c.notify.ntfy {
        urls.push(("notify.ntfy.url", &n.url));
    }
    for (key, url) in urls {
        if let Some((scheme, host)) = scheme_and_host(url)
            && scheme == "http"
            && !plain_http_ok(&host)
        {
            return Err(invalid(
                key,
                url,
                "an https:// URL: this one carries a secret, which plain http:// sends in clear \
                 (http:// is accepted only for a loopback host, a Kubernetes Service name \
                 (*.svc), or with network.allow_insecure_http = true)",
            ));
        }
    }
    Ok(())
}

/// Whether a clone URL points at the tracker's own host, the only host that may get the
/// tracker token by default. GitHub serves its API on `api.github.com` and git on
/// `github.com`; GitHub Enterprise and Forgejo serve both on one host (and port).
pub(super) fn same_git_host(api_url: &str, clone_url_template: &str) -> bool {
    let authority = |u: &str| -> Option<(String, String)> {
        let (scheme, rest) = u.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return None;
        }
        let a = rest.split(['/', '?', '#']).next().unwrap_or("");
        (!a.is_empty() && !a.contains('@')).then(|| (scheme, a.to_ascii_lowercase()))
    };
    let (Some((_, api)), Some((_, clone))) = (authority(api_url), authority(clone_url_template))
    else {
        return false;
    };
    api == clone || (api == "api.github.com" && clone == "github.com")
}

/// An ntfy topic: ntfy accepts letters, digits, `-` and `_`, up to 64 characters.
pub(super) fn ntfy_topic(key: &str, v: &str) -> Result<String, ConfigError> {
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

/// A branch name safe to pass to git: `[A-Za-z0-9._/-]`, no `..`, no leading `-` or `/`.
pub(super) fn branch_name(key: &str, v: &str) -> Result<String, ConfigError> {
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
pub(super) fn dns_label(key: &str, v: &str) -> Result<String, ConfigError> {
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
pub(super) fn dns_subdomain(key: &str, v: &str) -> Result<String, ConfigError> {
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

pub(super) fn is_dns_label(v: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !v.is_empty()
        && v.len() <= 63
        && v.chars().all(|c| alnum(c) || c == '-')
        && v.starts_with(alnum)
        && v.ends_with(alnum)
}

/// An image tag template: tag characters (`[A-Za-z0-9_.-]`) around `{sha}` and/or
/// `{short_sha}`, at least one of them, at most 128 characters once filled in.
pub(super) fn tag_template(key: &str, v: &str) -> Result<String, ConfigError> {
    let expected = "an image tag template using {sha} or {short_sha}, e.g. \"sha-{short_sha}\" \
                    (other characters: letters, digits, '_', '.', '-')";
    let mut rest = v;
    let mut placeholders = 0;
    let mut literal = String::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("{sha}") {
            placeholders += 1;
            literal.push_str(&"0".repeat(40));
            rest = r;
        } else if let Some(r) = rest.strip_prefix("{short_sha}") {
            placeholders += 1;
            literal.push_str(&"0".repeat(40));
            rest = r;
        } else {
            let c = rest.chars().next().unwrap_or_default();
            if !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
                return Err(invalid(key, v, expected));
            }
            literal.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    let first_ok = literal
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if placeholders == 0 || !first_ok || literal.len() > 128 {
        return Err(invalid(key, v, expected));
    }
    Ok(v.to_owned())
}

/// A Kubernetes annotation key: an optional DNS-subdomain prefix and `/`, then a name of 1 to
/// 63 characters (alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric).
pub(super) fn annotation_key(key: &str, v: &str) -> Result<String, ConfigError> {
    let (prefix, name) = match v.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, v),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .next_back()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| {
        p.len() <= 253
            && p.split('.')
                .all(|l| is_dns_label(&l.to_ascii_lowercase()) && l == l.to_ascii_lowercase())
    });
    if name_ok && prefix_ok {
        Ok(v.to_owned())
    } else {
        Err(invalid(
            key,
            v,
            "a Kubernetes annotation key, e.g. \"org.opencontainers.image.revision\"",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
