//! The Slack doorbell: one incoming-webhook post per notice.
//!
//! The webhook URL is a secret (whoever has it can post): it is read from its file on every
//! post, and no error or log ever shows it; requests are described as `POST slack webhook`.
//! Success is HTTP 200 with the plain-text body `ok`; anything else is an error. Slack's errors
//! are plain-text codes, turned into a message that says what to check. A 429 is waited out
//! for its `Retry-After` when that fits in the tick deadline. A post is not resent after a
//! server error or a lost answer: that could post twice.

use afk_core::effect::Notice;

use crate::error::{ErrorKind, RemoteError, Result, excerpt};
use crate::http::{
    Auth, Body, CLIENT_ERRORS_BUT_429, HttpClient, Request, RetryPolicy, SecretFile,
};

const REMOTE: &str = "slack";
/// How every request is described in errors: the URL itself is the secret.
const REQUEST: &str = "POST slack webhook";
/// Longest text Slack accepts in one section block.
const MAX_SECTION_CHARS: usize = 3000;
/// Sections of message text at most (Slack allows 50 blocks; a doorbell is short anyway).
const MAX_MESSAGE_SECTIONS: usize = 20;

/// Slack incoming-webhook client.
#[derive(Debug, Clone)]
pub struct Slack {
    webhook_url_file: SecretFile,
    policy: RetryPolicy,
}

/// Escapes the three characters Slack's mrkdwn reserves and turns the Markdown afk renders
/// (`**bold**`, `[text](url)`) into mrkdwn (`*bold*`, `<url|text>`).
pub fn mrkdwn(markdown: &str) -> String {
    let escaped = markdown
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace("**", "*");
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped.as_str();
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let link = after.find("](").and_then(|close| {
            let url_part = &after[close + 2..];
            url_part
                .find(')')
                .map(|end| (&after[..close], &url_part[..end], close + 2 + end + 1))
        });
        match link {
            Some((text, url, used))
                if !text.contains('[') && !url.contains(char::is_whitespace) =>
            {
                out.push_str(&rest[..open]);
                out.push_str(&format!("<{url}|{text}>"));
                rest = &after[used..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn section(text: &str) -> serde_json::Value {
    serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

/// Cuts `text` into pieces of at most [`MAX_SECTION_CHARS`] characters, preferring line breaks.
fn chunks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut count = 0usize;
    for line in text.split_inclusive('\n') {
        for c in line.chars() {
            if count == MAX_SECTION_CHARS {
                out.push(std::mem::take(&mut current));
                count = 0;
            }
            current.push(c);
            count += 1;
        }
        if count > MAX_SECTION_CHARS * 3 / 4 {
            out.push(std::mem::take(&mut current));
            count = 0;
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out.retain(|c| !c.trim().is_empty());
    out
}

fn hint(code: &str, file: &SecretFile) -> String {
    let file = file.path().display();
    match code {
        "no_service" | "no_team" | "invalid_token" | "action_prohibited" | "no_service_id" => {
            format!(
                " (the webhook was removed, disabled or revoked, or the URL is wrong; check the URL in {file})"
            )
        }
        "channel_not_found" | "channel_is_archived" | "posting_to_general_channel_denied" => {
            format!(
                " (the webhook's channel is gone, archived or closed to it; create a new webhook and put its URL in {file})"
            )
        }
        "invalid_payload" | "no_text" | "invalid_blocks" | "user_not_found" => {
            " (Slack refused the message afk built)".to_owned()
        }
        _ => String::new(),
    }
}

impl Slack {
    /// `webhook_url_file` holds the incoming-webhook URL (a secret, re-read on every post).
    pub fn new(webhook_url_file: SecretFile, policy: RetryPolicy) -> Result<Self> {
        Ok(Slack {
            webhook_url_file,
            policy,
        })
    }

    /// The JSON body posted for `notice`.
    pub fn payload(notice: &Notice) -> serde_json::Value {
        let mut blocks = vec![section(&format!("*{}*", mrkdwn(&notice.title)))];
        blocks.extend(
            chunks(&mrkdwn(&notice.message))
                .iter()
                .take(MAX_MESSAGE_SECTIONS)
                .map(|c| section(c)),
        );
        let mut links = Vec::new();
        if !notice.click.is_empty() {
            links.push(format!("<{}|Issue>", notice.click));
        }
        if !notice.thread_url.is_empty() {
            links.push(format!("<{}|T3 thread>", notice.thread_url));
        }
        if !links.is_empty() {
            blocks.push(section(&links.join(" · ")));
        }
        serde_json::json!({"text": notice.title, "blocks": blocks})
    }

    fn err(kind: ErrorKind) -> RemoteError {
        RemoteError::new(REMOTE, REQUEST, kind)
    }

    /// What the preflight check can know without posting: the webhook file is readable and
    /// holds an https URL. Returns whether its host is Slack's (`hooks.slack.com`); the URL
    /// itself is a secret and is never returned.
    pub fn check_webhook_file(&self) -> Result<bool> {
        let url = self.webhook_url_file.read(REMOTE)?;
        let parsed = url::Url::parse(&url).map_err(|_| {
            Self::err(ErrorKind::Local(format!(
                "the file {} does not hold a URL; check the mounted Secret",
                self.webhook_url_file.path().display()
            )))
        })?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(Self::err(ErrorKind::Local(format!(
                "the file {} does not hold an http(s) webhook URL; check the mounted Secret",
                self.webhook_url_file.path().display()
            ))));
        }
        Ok(parsed.scheme() == "https" && parsed.host_str() == Some("hooks.slack.com"))
    }

    /// Posts one notice.
    pub async fn post(&self, notice: &Notice) -> Result<()> {
        let url = self.webhook_url_file.read(REMOTE).map_err(|mut e| {
            e.request = REQUEST.to_owned();
            e
        })?;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(Self::err(ErrorKind::Local(format!(
                "the file {} does not hold an http(s) webhook URL; check the mounted Secret",
                self.webhook_url_file.path().display()
            ))));
        }
        // The URL is the secret: plain http only to this machine (a local relay or simulator).
        if url.starts_with("http://") && !loopback_url(&url) {
            return Err(Self::err(ErrorKind::Local(format!(
                "the file {} holds a plain http:// webhook URL for a host other than loopback, which would send the webhook secret in clear; use https://",
                self.webhook_url_file.path().display()
            ))));
        }
        // The whole URL is the base and the path is empty, so the shared layer never puts the
        // secret path into a log line or an error.
        let http = HttpClient::new(REMOTE, &url, Auth::None, self.policy.clone())?;
        let req = Request::new(
            reqwest::Method::POST,
            "",
            Some(Body::Json(Self::payload(notice))),
        )
        .accept(&CLIENT_ERRORS_BUT_429)
        .idempotent(false);
        let resp = http.send(req).await.map_err(|mut e| {
            e.request = REQUEST.to_owned();
            e
        })?;
        let body = String::from_utf8_lossy(&resp.body);
        let code = body.trim();
        match resp.status {
            200 if code == "ok" => {
                tracing::debug!(remote = REMOTE, "posted");
                Ok(())
            }
            200 => Err(Self::err(ErrorKind::Decode(format!(
                "expected the body `ok`, got {:?}",
                excerpt(&resp.body)
            )))),
            status => Err(Self::err(ErrorKind::Status {
                status,
                detail: format!(
                    "{}{}",
                    excerpt(&resp.body),
                    hint(code, &self.webhook_url_file)
                ),
            })),
        }
    }
}

/// Whether an `http://` URL's host is loopback (`localhost`, 127.0.0.0/8, `::1`).
fn loopback_url(url: &str) -> bool {
    let rest = url.get("http://".len()..).unwrap_or("");
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_mrkdwn() {
        assert_eq!(
            mrkdwn("**done** see [the issue](https://x/1) & <tag>"),
            "*done* see <https://x/1|the issue> &amp; &lt;tag&gt;"
        );
        assert_eq!(mrkdwn("a [b] c"), "a [b] c");
        assert_eq!(mrkdwn("[x](has space)"), "[x](has space)");
    }

    #[test]
    fn long_messages_are_split_into_sections_slack_accepts() {
        let text = "line of text\n".repeat(1000);
        let parts = chunks(&text);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_SECTION_CHARS));
        assert_eq!(parts.concat(), text);
        let one = "x".repeat(MAX_SECTION_CHARS * 2 + 5);
        let parts = chunks(&one);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), one);
    }
}
