//! Request plumbing for the simulated Forgejo API: authentication, the query string, Forgejo's
//! paging (`page`/`limit`, `X-Total-Count`, `Link`), JSON bodies and replies.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::json::Urls;
use super::model::{Access, ApiError, ApiResult, State as Forgejo};
use crate::infra::lock;
use crate::world::World;

/// Forgejo's default page size (`DEFAULT_PAGING_NUM`).
const DEFAULT_LIMIT: usize = 30;
/// Forgejo's `MAX_RESPONSE_ITEMS`.
pub(super) const MAX_LIMIT: usize = 50;

/// What every handler needs from the request.
pub(super) struct Ctx {
    world: Arc<World>,
    pub(super) headers: HeaderMap,
    uri: Uri,
}

impl FromRequestParts<Arc<World>> for Ctx {
    type Rejection = Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        world: &Arc<World>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Ctx {
            world: world.clone(),
            headers: parts.headers.clone(),
            uri: parts.uri.clone(),
        })
    }
}

/// A successful answer.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: Option<Value>,
    pub(super) headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub(super) fn ok(body: Value) -> Reply {
        Reply::with(200, body)
    }
    pub(super) fn with(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }
    /// A page of a listing with its paging headers ([`Paging::apply`]).
    pub(super) fn page(items: Vec<Value>, headers: Vec<(&'static str, String)>) -> Reply {
        Reply {
            headers,
            ..Reply::ok(Value::Array(items))
        }
    }
    pub(super) fn no_content() -> Reply {
        Reply {
            status: 204,
            body: None,
            headers: Vec::new(),
        }
    }
}

/// The caller, the clock and the URLs, for one request under the state lock.
pub(super) struct Call<'a> {
    pub(super) caller: String,
    pub(super) now: DateTime<Utc>,
    pub(super) urls: &'a Urls,
    pub(super) query: &'a Query,
    pub(super) uri: &'a Uri,
    headers: &'a HeaderMap,
}

impl Call<'_> {
    /// The repo `owner/repo` when the caller has `need` access to it (404 when it may not see
    /// it, 403 when it sees it without that access); its full name.
    pub(super) fn authorize(
        &self,
        st: &mut Forgejo,
        owner: &str,
        repo: &str,
        need: Access,
    ) -> ApiResult<String> {
        let full = full_name(owner, repo);
        st.authorize(&full, &self.caller, need)?;
        Ok(full)
    }

    /// The caller's access to the repo `full`.
    pub(super) fn access(&self, st: &Forgejo, full: &str) -> ApiResult<Access> {
        let r = st.repo(full).ok_or_else(ApiError::not_found)?;
        Ok(st.access(r, &self.caller))
    }

    /// The request's body as a JSON object ([`json_object`]).
    pub(super) fn json_object(&self, body: &Bytes) -> ApiResult<serde_json::Map<String, Value>> {
        json_object(self.headers, body)
    }
}

impl Ctx {
    fn urls(&self) -> Urls {
        let host = self
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        Urls {
            web: format!("http://{host}"),
        }
    }

    /// Authenticates, then runs `f` under the state lock and renders its answer.
    pub(super) fn run(
        self,
        f: impl FnOnce(&mut Forgejo, &Call<'_>) -> ApiResult<Reply>,
    ) -> Response {
        let urls = self.urls();
        let query = Query::parse(self.uri.query());
        let mut st = lock(&self.world.forgejo);
        let caller = match authenticate(&st, &self.headers) {
            Ok(c) => c,
            Err(e) => return error_response(&e, &urls.web),
        };
        let call = Call {
            caller,
            now: self.world.sim.now(),
            urls: &urls,
            query: &query,
            uri: &self.uri,
            headers: &self.headers,
        };
        match f(&mut st, &call) {
            Ok(reply) => render(reply),
            Err(e) => error_response(&e, &urls.web),
        }
    }
}

fn render(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut resp = match reply.body {
        Some(body) => (status, body.to_string()).into_response(),
        None => status.into_response(),
    };
    let h = resp.headers_mut();
    if reply.status != 204 {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=utf-8"),
        );
    }
    for (k, v) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    resp
}

pub(super) fn error_response(e: &ApiError, web: &str) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = if e.status == 404 {
        json!({"errors": [], "message": e.message, "url": format!("{web}/api/swagger")})
    } else {
        json!({"message": e.message, "url": format!("{web}/api/swagger")})
    };
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    resp
}

/// `Authorization: token <t>` or `Bearer <t>` of a known account. The token is never echoed.
fn authenticate(st: &Forgejo, headers: &HeaderMap) -> ApiResult<String> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::new(401, "token is required"))?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| ApiError::new(401, "invalid authorization header"))?;
    if !scheme.eq_ignore_ascii_case("token") && !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::new(401, "unsupported authorization scheme"));
    }
    st.login_for_token(token.trim())
        .ok_or_else(|| ApiError::new(401, "user does not exist [uid: 0, name: ]"))
}

/// The decoded query string.
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<&str>) -> Query {
        Query(
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub(super) fn one_of(&self, name: &str, allowed: &[&str]) -> ApiResult<Option<&str>> {
        match self.get(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) if allowed.contains(&v) => Ok(Some(v)),
            Some(v) => Err(ApiError::unprocessable(format!(
                "invalid {name} {v:?}: expected one of {}",
                allowed.join(", ")
            ))),
        }
    }
    pub(super) fn number(&self, name: &str) -> ApiResult<Option<usize>> {
        match self.get(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::unprocessable(format!("invalid {name} {v:?}: expected a number"))
            }),
        }
    }
    pub(super) fn boolean(&self, name: &str) -> ApiResult<()> {
        self.one_of(name, &["true", "false", "1", "0"]).map(|_| ())
    }
}

/// `page`/`limit` as Forgejo reads them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Paging {
    page: usize,
    limit: usize,
}

impl Paging {
    pub(super) fn from(q: &Query) -> ApiResult<Paging> {
        let page = q.number("page")?.unwrap_or(1).max(1);
        let limit = match q.number("limit")?.unwrap_or(0) {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        Ok(Paging { page, limit })
    }
    /// The page's slice of `all`, plus `X-Total-Count`, `X-HasMore` and `Link`.
    pub(super) fn apply<T: Clone>(
        self,
        all: &[T],
        call: &Call<'_>,
    ) -> (Vec<T>, Vec<(&'static str, String)>) {
        let total = all.len();
        let start = (self.page - 1).saturating_mul(self.limit).min(total);
        let end = start.saturating_add(self.limit).min(total);
        let last = total.div_ceil(self.limit).max(1);
        let mut links = Vec::new();
        let link = |page: usize, rel: &str| {
            let mut pairs: Vec<(String, String)> = call
                .query
                .0
                .iter()
                .filter(|(k, _)| k != "page")
                .cloned()
                .collect();
            pairs.push(("page".into(), page.to_string()));
            let q = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            format!("<{}{}?{q}>; rel=\"{rel}\"", call.urls.web, call.uri.path())
        };
        if self.page < last {
            links.push(link(self.page + 1, "next"));
            links.push(link(last, "last"));
        }
        if self.page > 1 {
            links.push(link(1, "first"));
            links.push(link((self.page - 1).min(last), "prev"));
        }
        let mut headers = vec![
            ("x-total-count", total.to_string()),
            ("x-hasmore", (end < total).to_string()),
        ];
        if !links.is_empty() {
            headers.push(("link", links.join(",")));
        }
        (all[start..end].to_vec(), headers)
    }
}

pub(super) fn full_name(owner: &str, repo: &str) -> String {
    format!("{owner}/{repo}")
}

pub(super) fn parse_index(s: &str) -> ApiResult<u64> {
    s.parse().map_err(|_| ApiError::not_found())
}

/// A JSON object body, as Forgejo's binding insists (422 otherwise).
pub(super) fn json_object(
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<serde_json::Map<String, Value>> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if !is_json {
        return Err(ApiError::unprocessable(
            "the request body must be JSON (Content-Type: application/json)",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::unprocessable(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::unprocessable(format!("invalid JSON: {e}"))),
    }
}

/// A required non-empty string field.
pub(super) fn required_string(
    obj: &serde_json::Map<String, Value>,
    field: &str,
) -> ApiResult<String> {
    match obj.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(ApiError::unprocessable(format!("[{field}]: Required")))
        }
        Some(_) => Err(ApiError::unprocessable(format!(
            "[{field}]: must be a string"
        ))),
    }
}
