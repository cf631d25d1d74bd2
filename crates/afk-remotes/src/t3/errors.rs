//! T3's typed error bodies (`_tag`, `reason`, `requiredScope`, `traceId`) turned into
//! [`RemoteError`]s an operator can act on, and back into a [`T3Rejection`] for the ticks.
//!
//! The detail of an [`ErrorKind::Status`] from T3 reads
//! `<_tag> reason=<r> requiredScope=<s> traceId=<t> — <what to do>`: the part before ` — ` is
//! machine-readable (tokens without spaces), the rest is for people.

use std::borrow::Cow;

use serde::Deserialize;

use crate::error::{ErrorKind, RemoteError, excerpt};

use super::REMOTE;

/// What T3 said no to, as the ticks need to tell apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum T3Rejection {
    /// 400 `HttpApiSchemaError`: the command does not match this T3 version's schema.
    Schema(String),
    /// 400 `EnvironmentRequestInvalidError` (`invalid_command`): normalization failed, e.g. the
    /// project's `workspaceRoot` is not a directory on the T3 host.
    InvalidCommand,
    /// 401 `EnvironmentAuthInvalidError`: missing or invalid credential.
    Unauthenticated,
    /// 403 `EnvironmentScopeRequiredError`: the token lacks this scope.
    MissingScope(String),
    /// 404 `EnvironmentResourceNotFoundError`.
    NotFound,
    /// 500 `orchestration_dispatch_failed`: a domain rejection (duplicate id, unknown thread or
    /// project, …). Resending the same command fails again; the reason is only in T3's log.
    DispatchRejected { trace_id: String },
    /// 500 `orchestration_snapshot_failed`.
    SnapshotFailed,
    /// Anything else (transport, timeouts, other statuses, other remotes).
    Other,
}

const SCHEMA_TEXT: &str = "T3 refused the command's shape (is afk older or newer than this T3?): ";

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct ErrorBody<'a> {
    #[serde(rename = "_tag", borrow, default)]
    pub tag: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub required_scope: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub trace_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub message: Option<Cow<'a, str>>,
}

impl ErrorBody<'_> {
    pub fn parse(body: &[u8]) -> Option<ErrorBody<'_>> {
        serde_json::from_slice::<ErrorBody<'_>>(body)
            .ok()
            .filter(|b| b.tag.is_some())
    }
    pub fn is_dispatch_rejection(&self) -> bool {
        self.tag.as_deref() == Some("EnvironmentInternalError")
            && self.reason.as_deref() == Some("orchestration_dispatch_failed")
    }
}

/// A token safe to put in the machine-readable part (no spaces, bounded).
fn token(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .take(120)
        .collect()
}

fn one_line(s: &str) -> String {
    let line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(400)
        .collect();
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The error for a non-success answer from T3. `token_file` names where the credential comes
/// from (a path, never the secret).
pub(super) fn status_error(
    request: &str,
    status: u16,
    body: &[u8],
    token_file: &str,
) -> RemoteError {
    let detail = match ErrorBody::parse(body) {
        None => excerpt(body),
        Some(b) => describe(status, &b, token_file),
    };
    RemoteError::new(REMOTE, request, ErrorKind::Status { status, detail })
}

fn describe(status: u16, b: &ErrorBody<'_>, token_file: &str) -> String {
    let tag = b.tag.as_deref().unwrap_or("");
    let mut head = token(tag);
    for (k, v) in [
        ("reason", &b.reason),
        ("requiredScope", &b.required_scope),
        ("traceId", &b.trace_id),
    ] {
        if let Some(v) = v {
            head.push_str(&format!(" {k}={}", token(v)));
        }
    }
    let reason = b.reason.as_deref().unwrap_or("");
    let trace = b.trace_id.as_deref().unwrap_or("-");
    let text = match tag {
        "HttpApiSchemaError" => {
            format!(
                "{SCHEMA_TEXT}{}",
                one_line(b.message.as_deref().unwrap_or(""))
            )
        }
        "EnvironmentRequestInvalidError" => {
            "T3 could not normalize the command (invalid_command); \
            check that the project's workspaceRoot exists as a directory on the T3 host"
                .to_owned()
        }
        "EnvironmentAuthInvalidError" => format!(
            "T3 refused the credential ({}); mint a token (`t3 auth session issue`) and put it \
             in the token file {token_file}",
            if reason.is_empty() {
                "auth_invalid"
            } else {
                reason
            }
        ),
        "EnvironmentScopeRequiredError" => {
            let scope = b.required_scope.as_deref().unwrap_or("?");
            format!(
                "the T3 token lacks the scope {scope}; mint a token with it (`t3 auth session \
                 issue`, or pair with scope=orchestration:read orchestration:operate) and put it \
                 in the token file {token_file}"
            )
        }
        "EnvironmentResourceNotFoundError" => {
            "not found on T3 (missing, deleted or archived)".to_owned()
        }
        "EnvironmentInternalError" if reason == "orchestration_dispatch_failed" => format!(
            "T3 rejected the command (a domain rule: duplicate id, unknown thread or project, …); \
             resending it fails again; the reason is in the T3 server log under traceId {trace}"
        ),
        "EnvironmentInternalError" if reason == "orchestration_snapshot_failed" => format!(
            "T3 could not build its read model; check the T3 server log under traceId {trace}"
        ),
        _ => format!("T3 answered HTTP {status} ({tag})"),
    };
    format!("{head} — {text}")
}

/// What T3 said no to, read back from an error this client returned.
pub fn rejection(err: &RemoteError) -> T3Rejection {
    if err.remote != REMOTE {
        return T3Rejection::Other;
    }
    let ErrorKind::Status { status, detail } = &err.kind else {
        return T3Rejection::Other;
    };
    let (head, text) = detail.split_once(" — ").unwrap_or((detail.as_str(), ""));
    let mut words = head.split(' ');
    let tag = words.next().unwrap_or("");
    let field = |name: &str| {
        head.split(' ')
            .skip(1)
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
    };
    match tag {
        "HttpApiSchemaError" => {
            T3Rejection::Schema(text.strip_prefix(SCHEMA_TEXT).unwrap_or(text).to_owned())
        }
        "EnvironmentRequestInvalidError" => T3Rejection::InvalidCommand,
        "EnvironmentAuthInvalidError" => T3Rejection::Unauthenticated,
        "EnvironmentScopeRequiredError" => {
            T3Rejection::MissingScope(field("requiredScope").unwrap_or_default())
        }
        "EnvironmentResourceNotFoundError" => T3Rejection::NotFound,
        "EnvironmentInternalError" => match field("reason").as_deref() {
            Some("orchestration_dispatch_failed") => T3Rejection::DispatchRejected {
                trace_id: field("traceId").unwrap_or_default(),
            },
            Some("orchestration_snapshot_failed") => T3Rejection::SnapshotFailed,
            _ => T3Rejection::Other,
        },
        _ => match status {
            401 => T3Rejection::Unauthenticated,
            404 => T3Rejection::NotFound,
            _ => T3Rejection::Other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, body: &str) -> RemoteError {
        status_error(
            "POST /api/orchestration/dispatch",
            status,
            body.as_bytes(),
            "/run/t3-token",
        )
    }

    #[test]
    fn typed_bodies_round_trip_to_rejections() {
        let e = err(
            403,
            r#"{"_tag":"EnvironmentScopeRequiredError","code":"insufficient_scope","requiredScope":"orchestration:operate","traceId":"t1"}"#,
        );
        assert_eq!(
            rejection(&e),
            T3Rejection::MissingScope("orchestration:operate".into())
        );
        let shown = e.to_string();
        assert!(
            shown.contains("lacks the scope orchestration:operate"),
            "{shown}"
        );
        assert!(shown.contains("mint a token"), "{shown}");

        let e = err(
            500,
            r#"{"_tag":"EnvironmentInternalError","code":"internal_error","reason":"orchestration_dispatch_failed","traceId":"abc"}"#,
        );
        assert_eq!(
            rejection(&e),
            T3Rejection::DispatchRejected {
                trace_id: "abc".into()
            }
        );

        let e = err(
            400,
            r#"{"_tag":"HttpApiSchemaError","message":"Missing key\n  at [\"runtimeMode\"]"}"#,
        );
        assert_eq!(
            rejection(&e),
            T3Rejection::Schema(r#"Missing key at ["runtimeMode"]"#.into())
        );

        let e = err(502, "<html>bad gateway</html>");
        assert_eq!(rejection(&e), T3Rejection::Other);
    }
}
