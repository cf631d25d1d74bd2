//! The one error type of afk-remotes: which remote, which request, what went wrong.
//!
//! Messages name the remote and the request (method and path, never a query string that could
//! hold a token, never a header) so an operator knows what to check. No secret is ever part of
//! an error.

use std::time::Duration;

/// What went wrong talking to a remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The remote answered with an unexpected status. `detail` is a bounded excerpt of the
    /// body (or the remote's typed error tag).
    Status { status: u16, detail: String },
    /// Rate limited and the wait would pass the tick deadline.
    RateLimited { retry_after: Option<Duration> },
    /// No answer within the timeout.
    Timeout,
    /// Connection refused, reset or dropped.
    Transport(String),
    /// The answer did not have the documented shape.
    Decode(String),
    /// A local failure: a secret file that cannot be read, a git command that failed, …
    Local(String),
    /// The request was refused before it was sent (e.g. the tick deadline passed).
    Deadline,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{remote}: {request}: {}", describe(.kind))]
pub struct RemoteError {
    pub remote: &'static str,
    /// `METHOD /path` (no query, no host).
    pub request: String,
    pub kind: ErrorKind,
}

impl RemoteError {
    pub fn new(remote: &'static str, request: impl Into<String>, kind: ErrorKind) -> RemoteError {
        RemoteError {
            remote,
            request: request.into(),
            kind,
        }
    }
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            ErrorKind::Status { status, .. } => Some(status),
            _ => None,
        }
    }
    /// A short reason fit for a public place (the status comment): the remote, the kind of
    /// failure and the operation, never a body excerpt, a local detail, a path or a query. The
    /// full error belongs in the logs.
    pub fn public_summary(&self) -> String {
        let what = match &self.kind {
            ErrorKind::Status { status, .. } => format!("answered HTTP {status}"),
            ErrorKind::RateLimited { .. } => "was rate limited".to_owned(),
            ErrorKind::Timeout => "did not answer in time".to_owned(),
            ErrorKind::Transport(_) => "could not be reached".to_owned(),
            ErrorKind::Decode(_) => "gave an answer afk could not use".to_owned(),
            ErrorKind::Local(_) => "failed".to_owned(),
            ErrorKind::Deadline => "was not asked: the tick deadline passed".to_owned(),
        };
        match public_operation(&self.request) {
            Some(op) => format!("{} {op} {what}", self.remote),
            None => format!("{} {what}", self.remote),
        }
    }
    /// Worth retrying on a later tick (transient), as opposed to a request that is wrong.
    pub fn is_transient(&self) -> bool {
        match &self.kind {
            ErrorKind::Status { status, .. } => *status >= 500 || *status == 429,
            ErrorKind::RateLimited { .. }
            | ErrorKind::Timeout
            | ErrorKind::Transport(_)
            | ErrorKind::Deadline => true,
            ErrorKind::Decode(_) | ErrorKind::Local(_) => false,
        }
    }
}

/// The operation of a request without paths, ids or queries: `POST /api/orchestration/dispatch`
/// → `POST dispatch`, `git -C /data/x fetch` → `fetch`, `t3 project.create` → `project.create`.
fn public_operation(request: &str) -> Option<String> {
    let words: Vec<&str> = request.split_whitespace().collect();
    let plain = |w: &&str| {
        !w.starts_with(['-', '/', '~', '.'])
            && !w.contains("://")
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    let first = *words.first()?;
    if first.chars().all(|c| c.is_ascii_uppercase()) && first.len() <= 7 {
        let path = words
            .get(1)
            .map_or("", |p| p.split('?').next().unwrap_or(""));
        let last = path
            .split('/')
            .rev()
            .find(|s| !s.is_empty() && !s.chars().all(|c| c.is_ascii_digit()))
            .filter(|s| plain(s) && s.len() <= 40);
        return Some(match last {
            Some(seg) => format!("{first} {seg}"),
            None => first.to_owned(),
        });
    }
    let skip = usize::from(words.len() > 1);
    words
        .iter()
        .skip(skip)
        .find(|w| plain(w))
        .map(|w| (*w).to_owned())
}

fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::Status { status, detail } if detail.is_empty() => format!("HTTP {status}"),
        ErrorKind::Status { status, detail } => format!("HTTP {status}: {detail}"),
        ErrorKind::RateLimited {
            retry_after: Some(d),
        } => format!(
            "rate limited; retry after {}s, past this tick's deadline: not decided this tick, the next tick continues",
            d.as_secs()
        ),
        ErrorKind::RateLimited { retry_after: None } => {
            "rate limited: not decided this tick, the next tick continues".to_owned()
        }
        ErrorKind::Timeout => "timed out".to_owned(),
        ErrorKind::Transport(e) => format!("connection failed: {e}"),
        ErrorKind::Decode(e) => format!("unexpected response shape: {e}"),
        ErrorKind::Local(e) => e.clone(),
        ErrorKind::Deadline => "not sent: the tick deadline has passed".to_owned(),
    }
}

/// A bounded, single-line excerpt of a response body for error messages.
pub fn excerpt(body: &[u8]) -> String {
    afk_core::public::excerpt(&String::from_utf8_lossy(body))
}

pub type Result<T, E = RemoteError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_summaries_hold_no_body_path_or_query() {
        let e = RemoteError::new(
            "t3",
            "POST /api/orchestration/dispatch",
            ErrorKind::Status {
                status: 500,
                detail: "boom at /srv/t3/state.db token=sk-live-abc123def456ghi789".into(),
            },
        );
        assert_eq!(e.public_summary(), "t3 POST dispatch answered HTTP 500");
        let e = RemoteError::new(
            "git",
            "git -C /data/afk/repos/acme__shop.git",
            ErrorKind::Local("git failed: fatal: /data/afk/x".into()),
        );
        assert_eq!(e.public_summary(), "git failed");
        let e = RemoteError::new("git", "git fetch --quiet", ErrorKind::Local("fatal".into()));
        assert_eq!(e.public_summary(), "git fetch failed");
        let e = RemoteError::new(
            "github",
            "GET /repos/o/r/issues/12?page=2",
            ErrorKind::Timeout,
        );
        assert_eq!(
            e.public_summary(),
            "github GET issues did not answer in time"
        );
    }
}
