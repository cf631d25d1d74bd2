//! The ntfy doorbell: one JSON publish to the server's root URL per notice.
//!
//! The JSON form carries the topic in the body (`POST /`, not `POST /<topic>`), markdown on,
//! the priority (1..=5), tags, the issue link as `click` and the T3 thread as a `view` action.
//! ntfy's errors are JSON `{"code","http","error"}`; they are turned into a message that says
//! what to check. ntfy answers 429 without a `Retry-After`, so a rate limit is retried after
//! the policy's `default_rate_limit_wait`, at most `max_retries` times and never past the tick
//! deadline, and then reported as rate limited (the run record retries it on a later tick).
//! A publish is not resent after a server error or a lost answer: that could ring twice.

use afk_core::effect::Notice;
use serde::Deserialize;

use crate::error::{ErrorKind, RemoteError, Result, excerpt};
use crate::http::{
    Auth, Body, CLIENT_ERRORS_BUT_429, HttpClient, Request, RetryPolicy, SecretFile,
};

const REMOTE: &str = "ntfy";

/// Longest message ntfy keeps as a message (longer bodies would become an attachment).
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// ntfy client for one topic.
#[derive(Debug, Clone)]
pub struct Ntfy {
    http: HttpClient,
    topic: String,
    token: Option<SecretFile>,
}

#[derive(Deserialize)]
struct WireError {
    code: u32,
    #[serde(default)]
    error: String,
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let marker = "…";
    let mut end = max.saturating_sub(marker.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{marker}", &text[..end])
}

impl Ntfy {
    /// `url` is the server root (e.g. `https://ntfy.example.org`); `token` an access token.
    pub fn new(
        url: &str,
        topic: &str,
        token: Option<SecretFile>,
        policy: RetryPolicy,
    ) -> Result<Self> {
        let auth = match &token {
            Some(t) => Auth::Bearer(t.clone()),
            None => Auth::None,
        };
        Ok(Ntfy {
            http: HttpClient::new(REMOTE, url, auth, policy)?,
            topic: topic.to_owned(),
            token,
        })
    }

    /// The JSON body published for `notice`.
    pub fn payload(&self, notice: &Notice) -> serde_json::Value {
        let mut body = serde_json::json!({
            "topic": self.topic,
            "title": notice.title,
            "message": truncate(&notice.message, MAX_MESSAGE_BYTES),
            "markdown": true,
            "priority": if notice.priority == 0 { 3 } else { notice.priority.min(5) },
            "tags": notice.tags,
        });
        if !notice.click.is_empty() {
            body["click"] = notice.click.clone().into();
        }
        if !notice.thread_url.is_empty() {
            body["actions"] = serde_json::json!([{
                "action": "view",
                "label": "Open T3 thread",
                "url": notice.thread_url,
            }]);
        }
        body
    }

    /// Publishes one notice.
    pub async fn publish(&self, notice: &Notice) -> Result<()> {
        let req = Request::new(
            reqwest::Method::POST,
            "/",
            Some(Body::Json(self.payload(notice))),
        )
        .accept(&CLIENT_ERRORS_BUT_429)
        .idempotent(false);
        let resp = self.http.send(req).await?;
        if resp.status == 200 {
            tracing::debug!(remote = REMOTE, topic = %self.topic, "published");
            return Ok(());
        }
        let detail = match serde_json::from_slice::<WireError>(&resp.body) {
            Ok(e) => format!(
                "ntfy error {}: {}{}",
                e.code,
                e.error,
                self.hint(resp.status)
            ),
            Err(_) => format!("{}{}", excerpt(&resp.body), self.hint(resp.status)),
        };
        Err(RemoteError::new(
            REMOTE,
            "POST /",
            ErrorKind::Status {
                status: resp.status,
                detail,
            },
        ))
    }

    /// Read-only reachability probe (the preflight check): `GET /v1/health` (ntfy answers
    /// `{"healthy":true}` without auth), then, when a token is configured, `GET /v1/account`
    /// with it (401 when the server does not know the token). Publishes nothing.
    pub async fn probe(&self) -> Result<()> {
        #[derive(Deserialize)]
        struct Health {
            healthy: bool,
        }
        let resp = self.http.send(Request::get("/v1/health")).await?;
        let health: Health = resp.json(REMOTE, "GET /v1/health")?;
        if !health.healthy {
            return Err(RemoteError::new(
                REMOTE,
                "GET /v1/health",
                ErrorKind::Status {
                    status: resp.status,
                    detail: "the server reports itself unhealthy".into(),
                },
            ));
        }
        if self.token.is_some() {
            let resp = self
                .http
                .send(Request::get("/v1/account").accept(&CLIENT_ERRORS_BUT_429))
                .await?;
            if resp.status != 200 {
                return Err(RemoteError::new(
                    REMOTE,
                    "GET /v1/account",
                    ErrorKind::Status {
                        status: resp.status,
                        detail: format!("{}{}", excerpt(&resp.body), self.hint(resp.status)),
                    },
                ));
            }
        }
        Ok(())
    }

    fn hint(&self, status: u16) -> String {
        match (status, &self.token) {
            (401, Some(t)) => format!(
                " (the server does not know the access token; check {})",
                t.path().display()
            ),
            (401 | 403, None) => format!(
                " (topic {:?} needs an access token; configure notify.ntfy.token_file)",
                self.topic
            ),
            (403, Some(t)) => format!(
                " (the token in {} may not publish to topic {:?}; check the server's access rules)",
                t.path().display(),
                self.topic
            ),
            (400, _) => format!(" (publishing to topic {:?})", self.topic),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_utf8_and_the_limit() {
        let long = "é".repeat(3000);
        let t = truncate(&long, MAX_MESSAGE_BYTES);
        assert!(t.len() <= MAX_MESSAGE_BYTES);
        assert!(t.ends_with('…'));
        assert_eq!(truncate("short", 10), "short");
    }

    #[test]
    fn answers_cover_client_errors_but_not_rate_limits() {
        assert!(CLIENT_ERRORS_BUT_429.contains(&200));
        assert!(CLIENT_ERRORS_BUT_429.contains(&400));
        assert!(CLIENT_ERRORS_BUT_429.contains(&499));
        assert!(!CLIENT_ERRORS_BUT_429.contains(&429));
        assert!(!CLIENT_ERRORS_BUT_429.contains(&500));
    }
}
