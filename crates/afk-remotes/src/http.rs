//! A small HTTP layer over reqwest shared by the JSON remotes: base URL, auth from a secret file
//! re-read on every request, and every request sent through the one retry executor
//! ([`retry::run`]): bounded retries with backoff for transient faults, and rate limits
//! (`retry-after`, `x-ratelimit-remaining: 0` + `x-ratelimit-reset`) honoured within the tick
//! deadline.

pub mod retry;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};

use crate::error::{ErrorKind, RemoteError, Result, excerpt};
pub use retry::Verdict;

/// Success and every client error but 429: for remotes whose 4xx bodies the client reads
/// itself, while the shared retry executor still waits out 429 (and retries 5xx).
pub const CLIENT_ERRORS_BUT_429: [u16; 100] = {
    let mut a = [200u16; 100];
    let mut i = 0;
    while i < 100 {
        let s = 400 + i as u16;
        a[i] = if s == 429 { 200 } else { s };
        i += 1;
    }
    a
};

/// A secret held in a file (a mounted Secret), read fresh each time it is used.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretFile(PathBuf);

impl std::fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretFile({})", self.0.display())
    }
}

impl SecretFile {
    pub fn new(path: impl Into<PathBuf>) -> SecretFile {
        SecretFile(path.into())
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// The secret, trimmed. The error names the file, never its content.
    pub fn read(&self, remote: &'static str) -> Result<String> {
        let text = std::fs::read_to_string(&self.0).map_err(|e| {
            RemoteError::new(
                remote,
                "read secret",
                ErrorKind::Local(format!(
                    "cannot read the secret file {} ({}); check the mounted Secret",
                    self.0.display(),
                    e.kind()
                )),
            )
        })?;
        let secret = text.trim().to_owned();
        if secret.is_empty() {
            return Err(RemoteError::new(
                remote,
                "read secret",
                ErrorKind::Local(format!(
                    "the secret file {} is empty; check the mounted Secret",
                    self.0.display()
                )),
            ));
        }
        Ok(secret)
    }
}

/// How a remote wants its credential.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    /// `Authorization: Bearer <secret>`
    Bearer(SecretFile),
    /// `Authorization: token <secret>` (Forgejo)
    Token(SecretFile),
}

/// Retry and time budget for one client.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Resends after the first try, for transient faults and rate limits alike.
    pub max_retries: u32,
    /// First backoff; doubled each retry.
    pub backoff: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Nothing is sent, and no wait is started, past this instant (the tick deadline).
    pub deadline: Option<Instant>,
    /// First wait for a rate limit without a `retry-after`/reset hint, doubled for each
    /// further one in the same request. GitHub asks for at least a minute
    /// ([`crate::github::SECONDARY_RATE_LIMIT_WAIT`]); tests shorten it.
    pub default_rate_limit_wait: Duration,
    /// Largest response body read, in bytes ([`read_capped`]); a larger one fails the request.
    pub max_body_bytes: u64,
}

/// The body cap when none is configured: 32 MiB, far above any tracker, CI or doorbell page.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 32 << 20;

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(30),
            deadline: None,
            default_rate_limit_wait: Duration::from_secs(5),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    Json(serde_json::Value),
    Text(String),
    Form(Vec<(String, String)>),
}

/// A response that arrived with a status the caller accepts.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Decodes the body as JSON, insisting on a JSON content type where one is given (T3's
    /// catch-all answers unknown paths with 200 `text/html`).
    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        remote: &'static str,
        request: &str,
    ) -> Result<T> {
        if let Some(ct) = self.header("content-type")
            && !ct.contains("json")
        {
            return Err(RemoteError::new(
                remote,
                request,
                ErrorKind::Decode(format!("expected JSON, got content-type {ct}")),
            ));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            RemoteError::new(
                remote,
                request,
                ErrorKind::Decode(format!("{e} in {}", excerpt(&self.body))),
            )
        })
    }
}

/// One remote's HTTP client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    remote: &'static str,
    base: String,
    auth: Auth,
    policy: RetryPolicy,
    client: reqwest::Client,
}

/// A request as the caller describes it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: Method,
    /// Path (and query) appended to the base URL.
    pub path: &'a str,
    pub body: Option<Body>,
    pub headers: Vec<(&'static str, String)>,
    /// Statuses that count as an answer (others become errors).
    pub accept: &'a [u16],
    /// Safe to resend when the first try may have reached the remote (GET, PUT, DELETE, and
    /// POSTs made idempotent by the remote, like T3 commands with a fixed `commandId`).
    pub idempotent: bool,
}

impl<'a> Request<'a> {
    pub fn get(path: &'a str) -> Request<'a> {
        Request {
            method: Method::GET,
            path,
            body: None,
            headers: Vec::new(),
            accept: &[200],
            idempotent: true,
        }
    }
    pub fn new(method: Method, path: &'a str, body: Option<Body>) -> Request<'a> {
        let idempotent = method != Method::POST && method != Method::PATCH;
        Request {
            method,
            path,
            body,
            headers: Vec::new(),
            accept: &[200, 201, 204],
            idempotent,
        }
    }
    pub fn accept(mut self, accept: &'a [u16]) -> Self {
        self.accept = accept;
        self
    }
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl HttpClient {
    pub fn new(
        remote: &'static str,
        base: &str,
        auth: Auth,
        policy: RetryPolicy,
    ) -> Result<HttpClient> {
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("afk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RemoteError::new(remote, "client", ErrorKind::Local(e.to_string())))?;
        Ok(HttpClient {
            remote,
            base: base.trim_end_matches('/').to_owned(),
            auth,
            policy,
            client,
        })
    }

    pub fn remote(&self) -> &'static str {
        self.remote
    }
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `METHOD /path` without the query (queries may hold tokens on some remotes).
    pub fn describe(method: &Method, path: &str) -> String {
        let p = path.split('?').next().unwrap_or(path);
        format!("{method} {p}")
    }

    /// Sends with retries; returns the first response with an accepted status. Anything else
    /// is judged by [`judge_status`]: a rate limit is waited out, a server error resent (when
    /// the request is idempotent), any other status is the error.
    pub async fn send(&self, req: Request<'_>) -> Result<Response> {
        let accept = req.accept;
        let what = Self::describe(&req.method, req.path);
        self.send_with(req, |resp| {
            if accept.contains(&resp.status) {
                Verdict::Done(resp)
            } else {
                judge_status(self.remote, &what, resp)
            }
        })
        .await
    }

    /// Sends through the retry executor with the caller's own judgement of each answer
    /// (`req.accept` is not consulted): for remotes whose error bodies say whether a resend
    /// can help. A failure to get an answer at all is judged by [`judge_failure`].
    pub async fn send_with<T>(
        &self,
        req: Request<'_>,
        judge: impl Fn(Response) -> Verdict<T>,
    ) -> Result<T> {
        let what = Self::describe(&req.method, req.path);
        let (req, what, judge) = (&req, &what, &judge);
        retry::run(
            &self.policy,
            self.remote,
            what,
            req.idempotent,
            || async move {
                match self.send_once(req).await {
                    Ok(resp) => judge(resp),
                    Err(kind) => judge_failure(RemoteError::new(self.remote, what.as_str(), kind)),
                }
            },
        )
        .await
    }

    async fn send_once(&self, req: &Request<'_>) -> std::result::Result<Response, ErrorKind> {
        let url = format!("{}{}", self.base, req.path);
        let mut rb = self.client.request(req.method.clone(), &url);
        match &self.auth {
            Auth::None => {}
            Auth::Bearer(s) => {
                let secret = s.read(self.remote).map_err(|e| e.kind)?;
                rb = rb.header("authorization", sensitive(&format!("Bearer {secret}"))?);
            }
            Auth::Token(s) => {
                let secret = s.read(self.remote).map_err(|e| e.kind)?;
                rb = rb.header("authorization", sensitive(&format!("token {secret}"))?);
            }
        }
        for (k, v) in &req.headers {
            rb = rb.header(*k, v);
        }
        rb = match &req.body {
            None => rb,
            Some(Body::Json(v)) => rb.json(v),
            Some(Body::Text(t)) => rb.body(t.clone()),
            Some(Body::Form(f)) => rb.form(f),
        };
        let resp = rb.send().await.map_err(classify)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = read_capped(resp, self.policy.max_body_bytes).await?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// Reads a response body of at most `limit` bytes, for every client: a `Content-Length` above
/// the limit fails before a byte is read, and a body streamed without one (or longer than it
/// said) fails as soon as the running total passes the limit, so a hostile or broken remote
/// can never grow the process past the cap.
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    limit: u64,
) -> std::result::Result<bytes::Bytes, ErrorKind> {
    const KNOBS: &str = "network.max_response_mib; network.t3_max_response_mib for T3";
    let too_large = |what: String| ErrorKind::Decode(format!("{what} ({KNOBS})"));
    let announced = resp.content_length();
    if let Some(n) = announced
        && n > limit
    {
        return Err(too_large(format!(
            "the answer announced {n} bytes (Content-Length), over this remote's {limit}-byte cap; it was not read"
        )));
    }
    let capacity = announced.unwrap_or(0).min(limit).min(8 << 20);
    let mut body = bytes::BytesMut::with_capacity(usize::try_from(capacity).unwrap_or(0));
    while let Some(chunk) = resp.chunk().await.map_err(classify)? {
        let total = body.len() as u64 + chunk.len() as u64;
        if total > limit {
            return Err(too_large(format!(
                "the answer passed this remote's {limit}-byte cap; reading stopped there"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The default judgement of an answer the caller did not accept: a rate limit ([`rate_limit`])
/// is waited out, a server error (5xx) is transient, anything else fails the request.
pub fn judge_status<T>(remote: &'static str, request: &str, resp: Response) -> Verdict<T> {
    let limit = rate_limit(&resp);
    let error = RemoteError::new(
        remote,
        request,
        ErrorKind::Status {
            status: resp.status,
            detail: excerpt(&resp.body),
        },
    );
    match limit {
        Some(RateLimit { wait }) => Verdict::RateLimited { wait, error },
        None if resp.status >= 500 => Verdict::Transient(error),
        None => Verdict::Failed(error),
    }
}

/// The judgement of a try that got no answer: an unusable answer (too large, unreadable) or a
/// local fault (a secret file that cannot be read) would be the same on a resend; a timeout or
/// a lost connection is transient.
pub fn judge_failure<T>(error: RemoteError) -> Verdict<T> {
    match error.kind {
        ErrorKind::Decode(_) | ErrorKind::Local(_) => Verdict::Failed(error),
        _ => Verdict::Transient(error),
    }
}

fn sensitive(v: &str) -> std::result::Result<HeaderValue, ErrorKind> {
    let mut h = HeaderValue::from_str(v).map_err(|_| {
        ErrorKind::Local("the secret holds characters not allowed in a header".into())
    })?;
    h.set_sensitive(true);
    Ok(h)
}

/// Maps a reqwest failure to a kind, without its URL (which could carry a token in a query).
pub(crate) fn classify(e: reqwest::Error) -> ErrorKind {
    if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_decode() {
        ErrorKind::Decode("body could not be read".into())
    } else {
        let e = e.without_url();
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        ErrorKind::Transport(msg)
    }
}

/// A rate-limited answer: how long the remote asked to wait, if it said (`None`: the policy's
/// unhinted wait applies, see [`retry::run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub wait: Option<Duration>,
}

/// Whether an answer is a rate limit, and how long it asks to wait: 429 (with or without
/// `retry-after`), or 403 with `retry-after` or `x-ratelimit-remaining: 0`. `retry-after` is
/// honoured as given, and an exhausted budget waits for `x-ratelimit-reset`.
pub fn rate_limit(resp: &Response) -> Option<RateLimit> {
    let retry_after = resp
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let exhausted = resp.header("x-ratelimit-remaining").map(str::trim) == Some("0");
    let reset_wait = resp
        .header("x-ratelimit-reset")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|reset| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            Duration::from_secs(u64::try_from(reset - now).unwrap_or(0).max(1))
        });
    let wait = match resp.status {
        429 => retry_after.or(if exhausted { reset_wait } else { None }),
        403 if retry_after.is_some() => retry_after,
        403 if exhausted => reset_wait,
        _ => return None,
    };
    Some(RateLimit { wait })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&'static str, String)]) -> Response {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).expect("header"));
        }
        Response {
            status,
            headers: map,
            body: bytes::Bytes::from_static(b"{\"message\":\"no\"}"),
        }
    }

    fn epoch_secs() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs()
    }

    #[test]
    fn rate_limits_say_how_long_when_the_remote_does() {
        let wait = |status, headers: &[(&'static str, String)]| {
            rate_limit(&answer(status, headers)).map(|l| l.wait)
        };
        assert_eq!(
            wait(429, &[]),
            Some(None),
            "a bare 429 waits the unhinted wait"
        );
        assert_eq!(
            wait(429, &[("retry-after", "7".into())]),
            Some(Some(Duration::from_secs(7)))
        );
        assert_eq!(
            wait(403, &[("retry-after", "3".into())]),
            Some(Some(Duration::from_secs(3)))
        );
        let reset = (epoch_secs() + 120).to_string();
        let exhausted = [
            ("x-ratelimit-remaining", "0".to_owned()),
            ("x-ratelimit-reset", reset),
        ];
        let Some(Some(until_reset)) = wait(403, &exhausted) else {
            panic!("an exhausted budget waits for its reset");
        };
        assert!(
            (Duration::from_secs(115)..=Duration::from_secs(120)).contains(&until_reset),
            "{until_reset:?}"
        );
        assert_eq!(
            wait(403, &[("x-ratelimit-remaining", "0".into())]),
            Some(None)
        );
        assert_eq!(wait(403, &[("x-ratelimit-remaining", "10".into())]), None);
        assert_eq!(wait(403, &[]), None, "a plain 403 is a refusal");
        assert_eq!(wait(503, &[("retry-after", "5".into())]), None);
    }

    #[test]
    fn unaccepted_statuses_and_failures_are_judged_for_the_executor() {
        let judged = |status, headers: &[(&'static str, String)]| match judge_status::<()>(
            "sim",
            "GET /x",
            answer(status, headers),
        ) {
            Verdict::Done(()) => "done",
            Verdict::Transient(e) => {
                assert_eq!(
                    (e.remote, e.request.as_str(), e.status()),
                    ("sim", "GET /x", Some(status))
                );
                "transient"
            }
            Verdict::RateLimited { .. } => "rate limited",
            Verdict::Failed(e) => {
                assert_eq!(e.status(), Some(status));
                "failed"
            }
        };
        assert_eq!(judged(429, &[]), "rate limited");
        assert_eq!(judged(502, &[]), "transient");
        assert_eq!(judged(500, &[]), "transient");
        assert_eq!(judged(404, &[]), "failed");
        assert_eq!(judged(403, &[]), "failed");
        let failure = |kind| match judge_failure::<()>(RemoteError::new("sim", "GET /x", kind)) {
            Verdict::Transient(_) => "transient",
            Verdict::Failed(_) => "failed",
            _ => "other",
        };
        assert_eq!(failure(ErrorKind::Timeout), "transient");
        assert_eq!(failure(ErrorKind::Transport("reset".into())), "transient");
        assert_eq!(failure(ErrorKind::Decode("too large".into())), "failed");
        assert_eq!(failure(ErrorKind::Local("no secret".into())), "failed");
    }
}
