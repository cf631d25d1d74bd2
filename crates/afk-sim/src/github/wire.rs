//! What every simulated GitHub response shares: authentication, the primary rate-limit budget
//! and its headers, secondary-limit throttling, ETags with `304 Not Modified`, error bodies and
//! `Link` pagination.

#![allow(
    clippy::result_large_err,
    reason = "handlers return early with the finished error response"
)]

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::model::RateBudget;
use crate::infra::lock;
use crate::world::World;

const DOCS: &str = "https://docs.github.com/rest";

/// The login the request's token belongs to.
#[derive(Debug, Clone)]
pub struct Caller(pub String);

pub fn json_response(status: StatusCode, v: &Value) -> Response {
    let mut resp = (status, v.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// GitHub's `basic-error` body.
pub fn message(status: StatusCode, msg: &str) -> Response {
    json_response(
        status,
        &json!({"message": msg, "documentation_url": DOCS, "status": status.as_u16().to_string()}),
    )
}

pub fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not Found")
}

/// 422 `validation-error` with one entry in `errors`.
pub fn validation(resource: &str, field: &str, code: &str) -> Response {
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({
            "message": "Validation Failed",
            "errors": [{"resource": resource, "field": field, "code": code}],
            "documentation_url": DOCS,
            "status": "422",
        }),
    )
}

/// 422 `validation-error` with a custom message in its one entry.
pub fn validation_message(resource: &str, field: &str, msg: &str) -> Response {
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({
            "message": "Validation Failed",
            "errors": [{"resource": resource, "field": field, "code": "custom", "message": msg}],
            "documentation_url": DOCS,
            "status": "422",
        }),
    )
}

/// 422 for a body that does not match the operation's schema.
pub fn invalid_request(why: &str) -> Response {
    message(
        StatusCode::UNPROCESSABLE_ENTITY,
        &format!("Invalid request.\n\n{why}"),
    )
}

/// Parses a JSON request body; GitHub answers 400 to malformed JSON.
pub fn parse_body(bytes: &[u8]) -> Result<Value, Response> {
    serde_json::from_slice(bytes)
        .map_err(|_| message(StatusCode::BAD_REQUEST, "Problems parsing JSON"))
}

/// One page of `items` per `per_page` (default 30, at most 100) and `page` (from 1), with the
/// `Link` header GitHub would send (`next`/`last` unless on the last page, `first`/`prev`
/// unless on the first).
pub fn paginate(
    items: Vec<Value>,
    query: &BTreeMap<String, String>,
    uri: &Uri,
    headers: &HeaderMap,
) -> (Vec<Value>, Option<String>) {
    let per_page = query
        .get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(30)
        .min(100);
    let page = query
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1);
    let total = items.len();
    let last = total.div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let raw = uri.query().unwrap_or("");
    let link = |n: usize, rel: &str| {
        let mut params: Vec<&str> = raw
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("page="))
            .collect();
        let page_param = format!("page={n}");
        params.push(&page_param);
        format!(
            "<http://{host}{}?{}>; rel=\"{rel}\"",
            uri.path(),
            params.join("&")
        )
    };
    let mut rels = Vec::new();
    if page < last {
        rels.push(link(page + 1, "next"));
        rels.push(link(last, "last"));
    }
    if page > 1 {
        rels.push(link(1, "first"));
        rels.push(link((page - 1).min(last), "prev"));
    }
    let header = if rels.is_empty() {
        None
    } else {
        Some(rels.join(", "))
    };
    (slice, header)
}

/// A JSON 200 with an optional `Link` header.
pub fn with_link(v: &Value, link: Option<String>) -> Response {
    let mut resp = json_response(StatusCode::OK, v);
    if let Some(l) = link.and_then(|l| HeaderValue::try_from(l).ok()) {
        resp.headers_mut().insert(header::LINK, l);
    }
    resp
}

fn rate_headers(resp: &mut Response, rate: &RateBudget, resource: &'static str) {
    let h = resp.headers_mut();
    let pairs = [
        ("x-ratelimit-limit", rate.limit.to_string()),
        ("x-ratelimit-remaining", rate.remaining.to_string()),
        (
            "x-ratelimit-used",
            (rate.limit - rate.remaining.min(rate.limit)).to_string(),
        ),
        ("x-ratelimit-reset", rate.reset.to_string()),
        ("x-ratelimit-resource", resource.to_owned()),
    ];
    for (k, v) in pairs {
        if let Ok(v) = HeaderValue::try_from(v) {
            h.insert(k, v);
        }
    }
}

/// The budget a request counts against: GraphQL points or REST requests.
fn budget(st: &super::State, graphql: bool) -> &RateBudget {
    if graphql { &st.graphql_rate } else { &st.rate }
}

fn etag_of(bytes: &[u8]) -> String {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    format!("W/\"{:016x}\"", h.finish())
}

fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let bare = |s: &str| s.trim().trim_start_matches("W/").to_owned();
    if_none_match
        .split(',')
        .any(|c| c.trim() == "*" || bare(c) == bare(etag))
}

fn rate_limited(rate: &RateBudget, resource: &'static str) -> Response {
    let mut resp = message(
        StatusCode::FORBIDDEN,
        "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.",
    );
    rate_headers(&mut resp, rate, resource);
    resp
}

/// The caller behind a bearer token that is not a personal token: an App installation's bot
/// (GitHub, "Authenticating as a GitHub App installation"), within the installation's repos
/// (another repo is hidden: 404), never `/user` (403, "Resource not accessible by
/// integration", as GitHub answers an installation token there); an expired installation token
/// is "Bad credentials"; an App's JWT is for the `/app` endpoints only (403 as well).
fn installation_caller(
    st: &super::state::State,
    token: &str,
    path: &str,
) -> Result<String, Response> {
    use super::apps::{Apps, TokenCheck};
    const NOT_FOR_INTEGRATION: &str = "Resource not accessible by integration";
    match st.apps.check_token(token) {
        TokenCheck::Valid(access) => {
            if path == "/user" {
                return Err(message(StatusCode::FORBIDDEN, NOT_FOR_INTEGRATION));
            }
            let repo = path
                .strip_prefix("/repos/")
                .and_then(|rest| {
                    let mut parts = rest.splitn(3, '/');
                    Some(format!("{}/{}", parts.next()?, parts.next()?))
                })
                .map(|r| r.to_ascii_lowercase());
            match repo {
                Some(r) if !access.repos.is_empty() && !access.repos.contains(&r) => {
                    Err(not_found())
                }
                _ => Ok(access.login),
            }
        }
        TokenCheck::Expired => Err(message(StatusCode::UNAUTHORIZED, "Bad credentials")),
        TokenCheck::Unknown if Apps::looks_like_jwt(token) && st.apps.verify_jwt(token).is_ok() => {
            Err(message(StatusCode::FORBIDDEN, NOT_FOR_INTEGRATION))
        }
        TokenCheck::Unknown => Err(message(StatusCode::UNAUTHORIZED, "Bad credentials")),
    }
}

/// Authentication, throttling, the primary budget and conditional requests for every API call.
pub async fn gate(State(world): State<Arc<World>>, mut req: Request, next: Next) -> Response {
    let now = world.sim.now();
    let graphql = req.uri().path() == "/graphql";
    let resource = if graphql { "graphql" } else { "core" };
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|a| {
            a.strip_prefix("Bearer ")
                .or_else(|| a.strip_prefix("bearer "))
                .or_else(|| a.strip_prefix("token "))
                .unwrap_or("")
                .trim()
                .to_owned()
        });
    let is_get = req.method() == Method::GET;
    // `GET /rate_limit` costs nothing and answers even with the budget spent (see the handler).
    let free = is_get && req.uri().path() == "/rate_limit";
    let conditional = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // The `/app` endpoints authenticate with the App's JWT, checked by their handler.
    let path = req.uri().path().to_owned();
    if path == "/app" || path.starts_with("/app/") {
        return next.run(req).await;
    }
    let (exhausted, scopes) = {
        let mut st = lock(&world.github);
        let scopes = token.as_ref().and_then(|t| st.token_scopes.get(t).cloned());
        let login = match token {
            None => return message(StatusCode::UNAUTHORIZED, "Requires authentication"),
            Some(t) => match st.tokens.get(&t) {
                Some(l) => l.clone(),
                None => match installation_caller(&st, &t, &path) {
                    Ok(login) => login,
                    Err(mut refused) => {
                        if refused.status() == StatusCode::FORBIDDEN {
                            rate_headers(&mut refused, &st.rate, resource);
                        }
                        return refused;
                    }
                },
            },
        };
        st.rate.refresh(now);
        st.graphql_rate.refresh(now);
        if st.throttle_requests > 0 {
            st.throttle_requests -= 1;
            let mut resp = message(
                StatusCode::TOO_MANY_REQUESTS,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
            rate_headers(&mut resp, budget(&st, graphql), resource);
            if let Ok(v) = HeaderValue::try_from(st.throttle_retry_after.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return resp;
        }
        // A GraphQL call is priced and refused by the endpoint itself (its cost is known
        // only once the query is read): HTTP 200 with a `RATE_LIMITED` error.
        let exhausted = !graphql && st.rate.remaining == 0;
        if exhausted && !free && !(is_get && conditional.is_some()) {
            return rate_limited(&st.rate, resource);
        }
        req.extensions_mut().insert(Caller(login));
        (exhausted, scopes)
    };

    let resp = next.run(req).await;
    let (mut parts, body) = resp.into_parts();
    // Classic tokens get their scopes on every authenticated answer (GitHub REST docs,
    // "Scopes for OAuth apps": `X-OAuth-Scopes`).
    if let Some(v) = scopes.and_then(|s| HeaderValue::try_from(s).ok()) {
        parts.headers.insert("x-oauth-scopes", v);
    }
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let mut st = lock(&world.github);
    if is_get && parts.status == StatusCode::OK {
        let etag = etag_of(&bytes);
        if conditional
            .as_deref()
            .is_some_and(|c| etag_matches(c, &etag))
        {
            let mut resp = StatusCode::NOT_MODIFIED.into_response();
            if let Ok(v) = HeaderValue::try_from(etag) {
                resp.headers_mut().insert(header::ETAG, v);
            }
            rate_headers(&mut resp, &st.rate, resource);
            return resp;
        }
        if let Ok(v) = HeaderValue::try_from(etag) {
            parts.headers.insert(header::ETAG, v);
        }
    }
    if exhausted && !free {
        return rate_limited(&st.rate, resource);
    }
    if !graphql && !free {
        st.rate.charge(1);
    }
    let mut resp = Response::from_parts(parts, Body::from(bytes));
    rate_headers(&mut resp, budget(&st, graphql), resource);
    resp
}
