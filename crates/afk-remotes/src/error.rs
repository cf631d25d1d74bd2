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
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out.trim().to_owned()
}

pub type Result<T, E = RemoteError> = std::result::Result<T, E>;
