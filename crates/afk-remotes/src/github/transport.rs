//! GitHub transport: requests sent through octocrab (its auth: a token re-read from its file
//! for every request, or a GitHub App installation token), each answer read with a size cap,
//! bounded retries for transient faults, rate limits honoured within the tick deadline,
//! conditional requests through an ETag cache, `Link` pagination, and a count of the requests
//! that cost primary rate limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::BodyExt;
use reqwest::Method;

use super::auth::{Clients, GitHubAuth, chain};
use super::budget::BudgetLog;
use super::etag::{EtagCache, Validator};
use crate::error::{ErrorKind, RemoteError, Result, excerpt};
use crate::http::retry::{self, Verdict};
use crate::http::{RateLimit, Response, RetryPolicy, judge_failure, judge_status};

pub(super) const REMOTE: &str = "github";

/// Pages of one listing followed at most (100 items each): a runaway `Link` chain is an error.
const MAX_PAGES: usize = 500;

/// The `Link` header's relations (absolute URLs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Links {
    pub next: Option<String>,
    pub prev: Option<String>,
    pub first: Option<String>,
    pub last: Option<String>,
}

impl Links {
    pub fn parse(header: Option<&str>) -> Links {
        let mut links = Links::default();
        for part in header.unwrap_or("").split(',') {
            let mut pieces = part.split(';');
            let Some(url) = pieces
                .next()
                .map(str::trim)
                .and_then(|u| u.strip_prefix('<'))
                .and_then(|u| u.strip_suffix('>'))
            else {
                continue;
            };
            for p in pieces {
                let Some(rel) = p.trim().strip_prefix("rel=") else {
                    continue;
                };
                for rel in rel.trim_matches('"').split_whitespace() {
                    let slot = match rel {
                        "next" => &mut links.next,
                        "prev" => &mut links.prev,
                        "first" => &mut links.first,
                        "last" => &mut links.last,
                        _ => continue,
                    };
                    *slot = Some(url.to_owned());
                }
            }
        }
        links
    }
}

/// An accepted answer (a 304 is turned back into the cached 200).
#[derive(Debug, Clone)]
pub(super) struct Answer {
    pub status: u16,
    pub body: Bytes,
    pub links: Links,
    /// `METHOD /path` of the request, for error messages.
    pub request: String,
    /// The `X-OAuth-Scopes` header (classic tokens only; `None` when absent or replayed).
    pub oauth_scopes: Option<String>,
}

impl Answer {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            RemoteError::new(
                REMOTE,
                self.request.clone(),
                ErrorKind::Decode(format!("{e} in {}", excerpt(&self.body))),
            )
        })
    }
}

#[derive(Debug)]
struct Counters {
    costed: AtomicU64,
    not_modified: AtomicU64,
}

#[derive(Debug, Clone)]
pub(super) struct Transport {
    api: String,
    origin: String,
    clients: Clients,
    policy: RetryPolicy,
    etags: Arc<Mutex<EtagCache>>,
    counters: Arc<Counters>,
    /// The primary budget the answers report (`x-ratelimit-*`), per resource.
    pub budgets: BudgetLog,
}

fn lock(m: &Mutex<EtagCache>) -> MutexGuard<'_, EtagCache> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Transport {
    pub fn new(api_url: &str, auth: GitHubAuth, policy: RetryPolicy) -> Result<Transport> {
        let local = |why: String| RemoteError::new(REMOTE, "client", ErrorKind::Local(why));
        let parsed = url::Url::parse(api_url).map_err(|e| {
            local(format!(
                "the GitHub api_url {api_url:?} is not a URL ({e}); check the tracker config"
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(local(format!(
                "the GitHub api_url {api_url:?} must be an http(s) URL with a host"
            )));
        }
        let origin = parsed.origin().ascii_serialization();
        let api = api_url.trim_end_matches('/').to_owned();
        Ok(Transport {
            clients: Clients::new(auth, &api, &origin),
            api,
            origin,
            policy,
            etags: Arc::new(Mutex::new(EtagCache::default())),
            counters: Arc::new(Counters {
                costed: AtomicU64::new(0),
                not_modified: AtomicU64::new(0),
            }),
            budgets: BudgetLog::default(),
        })
    }

    /// The GraphQL endpoint next to the REST base (`…/api/v3` on GitHub Enterprise Server).
    pub fn graphql_url(&self) -> String {
        match self.api.strip_suffix("/api/v3") {
            Some(host) => format!("{host}/api/graphql"),
            None => format!("{}/graphql", self.api),
        }
    }

    pub fn api(&self) -> &str {
        &self.api
    }

    pub fn auth(&self) -> &GitHubAuth {
        self.clients.auth()
    }

    pub async fn installation_token_ready(&self) -> Result<bool> {
        self.clients.installation_token_ready().await
    }

    pub async fn installation_token_for_git(&self) -> Result<String> {
        self.clients.installation_token().await
    }

    pub fn set_etag_cache(&self, cache: EtagCache) {
        *lock(&self.etags) = cache;
    }
    pub fn etag_cache(&self) -> EtagCache {
        lock(&self.etags).clone()
    }
    pub fn requests_made(&self) -> u64 {
        self.counters.costed.load(Ordering::SeqCst)
    }
    pub fn not_modified(&self) -> u64 {
        self.counters.not_modified.load(Ordering::SeqCst)
    }

    /// `METHOD /path` without host and query.
    pub fn describe(&self, method: &Method, url: &str) -> String {
        let path = url.strip_prefix(&self.origin).unwrap_or(url);
        let path = path.split('?').next().unwrap_or(path);
        format!("{method} {path}")
    }

    /// A path below the API base, or an absolute URL from a `Link` header (which must point
    /// at the same host: the token is never sent elsewhere).
    fn target(&self, method: &Method, path_or_url: &str) -> Result<String> {
        if path_or_url.starts_with('/') {
            return Ok(format!("{}{path_or_url}", self.api));
        }
        let same_origin = path_or_url
            .strip_prefix(&self.origin)
            .is_some_and(|rest| rest.starts_with('/'));
        if same_origin {
            Ok(path_or_url.to_owned())
        } else {
            Err(RemoteError::new(
                REMOTE,
                format!("{method} (pagination link)"),
                ErrorKind::Decode(
                    "a Link header points at another host; refusing to send the token there".into(),
                ),
            ))
        }
    }

    /// A GET, conditional when a validator for the URL is cached (see [`cacheable`]).
    pub async fn get(&self, path_or_url: &str, accept: &[u16]) -> Result<Answer> {
        self.send(Method::GET, path_or_url, None, accept, true)
            .await
    }

    /// Sends through the shared retry executor; rate limits are recognised before `accept` is
    /// consulted.
    pub async fn send(
        &self,
        method: Method,
        path_or_url: &str,
        body: Option<&serde_json::Value>,
        accept: &[u16],
        idempotent: bool,
    ) -> Result<Answer> {
        let url = self.target(&method, path_or_url)?;
        let what = self.describe(&method, &url);
        let (method, url, what) = (&method, url.as_str(), what.as_str());
        retry::run(&self.policy, REMOTE, what, idempotent, || async move {
            let conditional = cacheable(method, url);
            let validator = if conditional {
                lock(&self.etags).validator(url)
            } else {
                None
            };
            match self.send_once(method, url, body, validator.as_ref()).await {
                Ok(resp) => self.judge(url, what, conditional, validator.is_some(), accept, resp),
                Err(kind) => judge_failure(RemoteError::new(REMOTE, what, kind)),
            }
        })
        .await
    }

    /// One answer judged: counted (a 304 is free), a rate limit waited out, a 304 replayed from
    /// the cache, an accepted status taken, a server error resent.
    fn judge(
        &self,
        url: &str,
        what: &str,
        conditional: bool,
        had_validator: bool,
        accept: &[u16],
        resp: Response,
    ) -> Verdict<Answer> {
        self.budgets.note(&resp);
        if resp.status == 304 {
            self.counters.not_modified.fetch_add(1, Ordering::SeqCst);
        } else {
            self.counters.costed.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(RateLimit { wait }) = rate_limit(&resp) {
            let error = RemoteError::new(
                REMOTE,
                what,
                ErrorKind::Status {
                    status: resp.status,
                    detail: excerpt(&resp.body),
                },
            );
            return Verdict::RateLimited { wait, error };
        }
        if resp.status == 304 && had_validator {
            return match self.replay(url, what) {
                Ok(answer) => Verdict::Done(answer),
                Err(e) => Verdict::Failed(e),
            };
        }
        if accept.contains(&resp.status) {
            return Verdict::Done(self.accept(url, what.to_owned(), conditional, resp));
        }
        judge_status(REMOTE, what, resp)
    }

    fn replay(&self, url: &str, what: &str) -> Result<Answer> {
        match lock(&self.etags).take(url) {
            Some((body, link)) => Ok(Answer {
                status: 200,
                body: Bytes::from(body),
                links: Links::parse(link.as_deref()),
                request: what.to_owned(),
                oauth_scopes: None,
            }),
            None => Err(RemoteError::new(
                REMOTE,
                what,
                ErrorKind::Decode("304 Not Modified without a cached answer".into()),
            )),
        }
    }

    fn accept(&self, url: &str, what: String, cacheable: bool, resp: Response) -> Answer {
        let link = resp.header("link").map(str::to_owned);
        let oauth_scopes = resp.header("x-oauth-scopes").map(str::to_owned);
        if cacheable && resp.status == 200 {
            let etag = resp.header("etag").map(str::to_owned);
            let last_modified = strong_last_modified(&resp);
            match std::str::from_utf8(&resp.body) {
                Ok(body) => {
                    lock(&self.etags).put(url, etag, last_modified, link.clone(), body.to_owned())
                }
                Err(_) => lock(&self.etags).remove(url),
            }
        }
        Answer {
            status: resp.status,
            body: resp.body,
            links: Links::parse(link.as_deref()),
            request: what,
            oauth_scopes,
        }
    }

    /// One request through octocrab (`_get_with_headers`, `_post`, `_patch`, `_delete`) with
    /// the current credential, its answer read within the size cap and the request timeout.
    async fn send_once(
        &self,
        method: &Method,
        url: &str,
        body: Option<&serde_json::Value>,
        validator: Option<&Validator>,
    ) -> std::result::Result<Response, ErrorKind> {
        // `target` only hands out URLs on the API's origin; octocrab takes the path and query
        // (an absolute URL to a host other than api.github.com would go without credentials).
        let path = url.strip_prefix(&self.origin).unwrap_or(url).to_owned();
        let exchange = async {
            let crab = self.clients.for_path(&path).await?;
            let sent = match *method {
                Method::GET => {
                    let mut headers = http::HeaderMap::new();
                    let (name, value) = match validator {
                        Some(Validator::ETag(tag)) => (http::header::IF_NONE_MATCH, Some(tag)),
                        Some(Validator::LastModified(at)) => {
                            (http::header::IF_MODIFIED_SINCE, Some(at))
                        }
                        None => (http::header::IF_NONE_MATCH, None),
                    };
                    if let Some(v) = value.and_then(|v| http::HeaderValue::from_str(v).ok()) {
                        headers.insert(name, v);
                    }
                    crab._get_with_headers(path.as_str(), Some(headers)).await
                }
                Method::POST => crab._post(path.as_str(), body).await,
                Method::PATCH => crab._patch(path.as_str(), body).await,
                Method::DELETE => crab._delete(path.as_str(), body).await,
                ref other => {
                    return Err(ErrorKind::Local(format!(
                        "the GitHub client does not send {other} requests"
                    )));
                }
            };
            let resp = sent.map_err(send_error)?;
            let (parts, body) = resp.into_parts();
            let body = read_capped(
                parts.headers.get(http::header::CONTENT_LENGTH),
                body,
                self.policy.max_body_bytes,
            )
            .await?;
            Ok(Response {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.policy.timeout, exchange)
            .await
            .map_err(|_| ErrorKind::Timeout)?
    }

    /// Every item of a paginated listing, following `Link rel="next"`; `items` extracts one
    /// page's items from its JSON.
    pub async fn get_all<T>(
        &self,
        first: &str,
        items: impl Fn(&Answer) -> Result<Vec<T>>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut next = Some(first.to_owned());
        let mut pages = 0usize;
        while let Some(url) = next {
            pages += 1;
            let page = self.get(&url, &[200]).await?;
            if pages > MAX_PAGES {
                return Err(RemoteError::new(
                    REMOTE,
                    page.request,
                    ErrorKind::Decode(format!("more than {MAX_PAGES} pages; giving up")),
                ));
            }
            out.extend(items(&page)?);
            next = page.links.next;
        }
        Ok(out)
    }
}

/// The answer's `Last-Modified`, when it can serve as a validator. HTTP dates count whole
/// seconds, so a resource changed twice within one second keeps one `Last-Modified`: only a
/// `Last-Modified` at least 60 seconds before the answer's own `Date` is kept (RFC 9110,
/// "Comparison" of `Last-Modified`, §8.8.2.2: then it is a strong validator; the margin guards
/// against the two dates coming from different clocks). One that does not parse is not kept.
fn strong_last_modified(resp: &Response) -> Option<String> {
    let parse = |name: &str| {
        resp.header(name)
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v.trim()).ok())
    };
    let (modified, date) = (parse("last-modified")?, parse("date")?);
    let strong = modified + chrono::TimeDelta::seconds(60) <= date;
    strong.then(|| resp.header("last-modified").map(str::to_owned))?
}

/// Whether an answer is kept in the conditional-request cache and revalidated: every GET but
/// `GET /rate_limit`, which costs nothing (GitHub REST docs, "Rate limits": it "does not count
/// against your REST API rate limit") and must always be fresh.
fn cacheable(method: &Method, url: &str) -> bool {
    let path = url.split('?').next().unwrap_or(url);
    *method == Method::GET && !path.ends_with("/rate_limit")
}

/// A failed send: octocrab's error with its causes (never a header: the credential is not in
/// them), as a transport fault.
fn send_error(e: octocrab::Error) -> ErrorKind {
    match e {
        octocrab::Error::InvalidHeaderValue { .. } | octocrab::Error::Http { .. } => {
            ErrorKind::Local(format!("the request could not be built: {}", chain(&e)))
        }
        octocrab::Error::Uri { .. } | octocrab::Error::UriParse { .. } => {
            ErrorKind::Local(format!("the request URL is not valid: {}", chain(&e)))
        }
        other => ErrorKind::Transport(chain(&other)),
    }
}

/// Reads an answer of at most `limit` bytes: a `Content-Length` above the limit fails before a
/// byte is read, and a body streamed without one (or longer than it said) fails as soon as the
/// running total passes the limit.
async fn read_capped(
    announced: Option<&http::HeaderValue>,
    mut body: http_body_util::combinators::BoxBody<Bytes, octocrab::Error>,
    limit: u64,
) -> std::result::Result<Bytes, ErrorKind> {
    const KNOBS: &str = "network.max_response_mib";
    let too_large = |what: String| ErrorKind::Decode(format!("{what} ({KNOBS})"));
    let announced = announced
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = announced
        && n > limit
    {
        return Err(too_large(format!(
            "the answer announced {n} bytes (Content-Length), over this remote's {limit}-byte cap; it was not read"
        )));
    }
    let capacity = announced.unwrap_or(0).min(limit).min(8 << 20);
    let mut out = bytes::BytesMut::with_capacity(usize::try_from(capacity).unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ErrorKind::Transport(chain(&e)))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large(format!(
                "the answer passed this remote's {limit}-byte cap; reading stopped there"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// Whether an answer is one of GitHub's rate limits, and how long to wait before resending
/// (GitHub docs, "Rate limits for the REST API" / "Exceeding the rate limit"):
/// - `retry-after` is honoured; `x-ratelimit-remaining: 0` (a primary limit) waits until
///   `x-ratelimit-reset`;
/// - otherwise a 429, or a 403 whose message speaks of a rate limit, or a 403 without
///   GitHub's `x-ratelimit-*` headers (every API answer carries them; one without them did
///   not come from the API proper), is a secondary limit with no hint: the retry executor waits
///   the policy's unhinted wait (at least a minute in production), doubled on each repeat.
///
/// A plain 403 (with the headers, not about rate limits) is a real refusal.
fn rate_limit(resp: &Response) -> Option<RateLimit> {
    if let Some(limit) = crate::http::rate_limit(resp) {
        return Some(limit);
    }
    if resp.status != 403 {
        return None;
    }
    let says_so = String::from_utf8_lossy(&resp.body)
        .to_ascii_lowercase()
        .contains("rate limit");
    let headerless = resp.header("x-ratelimit-remaining").is_none();
    (says_so || headerless).then_some(RateLimit { wait: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_parse_every_relation() {
        let h = r#"<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=5>; rel="last", <https://api.github.com/x?page=1>; rel="first", <https://api.github.com/x?page=1>; rel="prev""#;
        let l = Links::parse(Some(h));
        assert_eq!(l.next.as_deref(), Some("https://api.github.com/x?page=2"));
        assert_eq!(l.last.as_deref(), Some("https://api.github.com/x?page=5"));
        assert_eq!(l.first.as_deref(), Some("https://api.github.com/x?page=1"));
        assert_eq!(l.prev.as_deref(), Some("https://api.github.com/x?page=1"));
        assert_eq!(Links::parse(None), Links::default());
    }

    #[test]
    fn graphql_sits_next_to_the_rest_base() {
        let t = |u: &str| {
            Transport::new(
                u,
                GitHubAuth::Token(crate::http::SecretFile::new("/nonexistent")),
                RetryPolicy::default(),
            )
        };
        assert_eq!(
            t("https://api.github.com").map(|t| t.graphql_url()).ok(),
            Some("https://api.github.com/graphql".to_owned())
        );
        assert_eq!(
            t("https://ghe.example/api/v3/")
                .map(|t| t.graphql_url())
                .ok(),
            Some("https://ghe.example/api/graphql".to_owned())
        );
        assert!(t("not a url").is_err());
    }
}
