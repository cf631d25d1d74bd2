//! Simulator of an ntfy server's publish API: the JSON form POSTed to the root
//! URL and the text form POSTed or PUT to `/<topic>` with `X-*` headers, optional or required
//! access tokens, ntfy's JSON error bodies, and a rate limit that answers 429 without any
//! `Retry-After` (ntfy never sends one).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::infra::lock;
use crate::world::World;

/// Longest message body stored as a message (ntfy turns longer bodies into attachments, which
/// afk never sends, so the simulator refuses them).
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// One published message, in the shape ntfy answers with and stores.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Message {
    pub id: String,
    pub time: i64,
    pub expires: i64,
    pub event: String,
    pub topic: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    pub message: String,
    /// 1..=5; 0 (omitted) means the default, 3.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: u8,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub click: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

fn is_zero(p: &u8) -> bool {
    *p == 0
}

/// Which topics a token may publish to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    All,
    Topics(BTreeSet<String>),
}

/// Everything this simulated remote knows.
#[derive(Debug, Default)]
pub struct State {
    /// Anonymous publishing is refused (403 40301) when set.
    pub require_auth: bool,
    /// Known access tokens.
    pub tokens: BTreeMap<String, Access>,
    /// The next this-many publishes get 429 42901 (no `Retry-After`).
    pub rate_limited: u32,
    pub messages: Vec<Message>,
    next_id: u64,
}

/// Every message published so far, oldest first.
pub fn messages(state: &State) -> Vec<Message> {
    state.messages.clone()
}

/// Requires a token for every publish.
pub fn require_auth(world: &World, yes: bool) {
    lock(&world.ntfy).require_auth = yes;
}

/// Adds an access token allowed to publish to `topics` (empty: every topic).
pub fn add_token(world: &World, token: &str, topics: &[&str]) {
    let access = if topics.is_empty() {
        Access::All
    } else {
        Access::Topics(topics.iter().map(|t| (*t).to_owned()).collect())
    };
    lock(&world.ntfy).tokens.insert(token.to_owned(), access);
}

/// The next `times` publishes are rate limited.
pub fn rate_limit(world: &World, times: u32) {
    lock(&world.ntfy).rate_limited = times;
}

fn error(code: u32, http: u16, msg: &str) -> Response {
    let status = StatusCode::from_u16(http).unwrap_or(StatusCode::BAD_REQUEST);
    let body = serde_json::json!({
        "code": code,
        "http": http,
        "error": msg,
        "link": "https://ntfy.sh/docs/publish/",
    });
    (status, Json(body)).into_response()
}

/// A refused publish: ntfy's error code, HTTP status and message.
#[derive(Debug)]
struct Rejected(u32, u16, &'static str);

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        error(self.0, self.1, self.2)
    }
}

/// A publish, whichever form it came in.
#[derive(Debug, Default)]
struct Publish {
    topic: String,
    title: String,
    message: String,
    priority: u8,
    tags: Vec<String>,
    click: String,
    markdown: bool,
    actions: Vec<Value>,
}

fn valid_topic(t: &str) -> bool {
    (1..=64).contains(&t.len())
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn parse_priority(v: &str) -> Option<u8> {
    match v.trim().to_ascii_lowercase().as_str() {
        "" => Some(0),
        "1" | "min" => Some(1),
        "2" | "low" => Some(2),
        "3" | "default" => Some(3),
        "4" | "high" => Some(4),
        "5" | "max" | "urgent" => Some(5),
        _ => None,
    }
}

fn check_actions(actions: &[Value]) -> Result<(), Rejected> {
    for a in actions {
        let kind = a.get("action").and_then(Value::as_str).unwrap_or("");
        let label = a.get("label").and_then(Value::as_str).unwrap_or("");
        let url = a.get("url").and_then(Value::as_str).unwrap_or("");
        let ok = match kind {
            "view" | "http" => !label.is_empty() && !url.is_empty(),
            "broadcast" => !label.is_empty(),
            _ => false,
        };
        if !ok {
            return Err(Rejected(
                40018,
                400,
                "invalid request: actions invalid (action, label and url required)",
            ));
        }
    }
    Ok(())
}

fn from_json(body: &[u8]) -> Result<Publish, Rejected> {
    let invalid = || {
        Rejected(
            40017,
            400,
            "invalid request: request body must be message JSON",
        )
    };
    let v: Value = serde_json::from_slice(body).map_err(|_| invalid())?;
    let obj = v.as_object().ok_or_else(invalid)?;
    let text = |k: &str| -> Result<String, Rejected> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(invalid()),
        }
    };
    let topic = text("topic")?;
    let priority = match obj.get("priority") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(p @ 0..=5) => p as u8,
            _ => return Err(Rejected(40007, 400, "invalid request: priority invalid")),
        },
        Some(_) => return Err(Rejected(40007, 400, "invalid request: priority invalid")),
    };
    let tags = match obj.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| t.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid()),
    };
    let markdown = match obj.get("markdown") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid()),
    };
    let actions = match obj.get("actions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(Rejected(40018, 400, "invalid request: actions invalid")),
    };
    Ok(Publish {
        topic,
        title: text("title")?,
        message: text("message")?,
        priority,
        tags,
        click: text("click")?,
        markdown,
        actions,
    })
}

fn header_or_query(
    headers: &HeaderMap,
    query: &BTreeMap<String, String>,
    names: &[&str],
) -> Option<String> {
    for n in names {
        if let Some(v) = headers.get(*n).and_then(|v| v.to_str().ok()) {
            return Some(v.to_owned());
        }
        if let Some(v) = query.get(&n.to_ascii_lowercase()) {
            return Some(v.clone());
        }
    }
    None
}

fn from_text(
    topic: String,
    headers: &HeaderMap,
    query: &BTreeMap<String, String>,
    body: &[u8],
) -> Result<Publish, Rejected> {
    let message = String::from_utf8(body.to_vec())
        .map_err(|_| Rejected(40011, 400, "invalid request: message must be UTF-8 encoded"))?;
    let priority = match header_or_query(headers, query, &["x-priority", "priority", "prio", "p"]) {
        None => 0,
        Some(v) => {
            parse_priority(&v).ok_or(Rejected(40007, 400, "invalid request: priority invalid"))?
        }
    };
    let tags = header_or_query(headers, query, &["x-tags", "tags", "tag", "ta"])
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let markdown = header_or_query(headers, query, &["x-markdown", "markdown", "md"])
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
        || headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/markdown"));
    Ok(Publish {
        topic,
        title: header_or_query(headers, query, &["x-title", "title", "t", "ti"])
            .unwrap_or_default(),
        message,
        priority,
        tags,
        click: header_or_query(headers, query, &["x-click", "click"]).unwrap_or_default(),
        markdown,
        actions: Vec::new(),
    })
}

/// Authenticates and stores a publish; the shared tail of both forms.
fn publish(world: &World, headers: &HeaderMap, p: Publish) -> Response {
    if !valid_topic(&p.topic) {
        return error(40009, 400, "invalid request: topic invalid");
    }
    let mut st = lock(&world.ntfy);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match auth {
        Some(h) => {
            let Some(token) = h.strip_prefix("Bearer ") else {
                return error(40101, 401, "unauthorized");
            };
            match st.tokens.get(token) {
                None => return error(40101, 401, "unauthorized"),
                Some(Access::Topics(t)) if !t.contains(&p.topic) => {
                    return error(40301, 403, "forbidden");
                }
                Some(_) => {}
            }
        }
        None if st.require_auth => return error(40301, 403, "forbidden"),
        None => {}
    }
    if st.rate_limited > 0 {
        st.rate_limited -= 1;
        return error(42901, 429, "limit reached: too many requests");
    }
    if p.message.len() > MAX_MESSAGE_BYTES {
        return error(
            41301,
            413,
            "limit reached: message too large (would become an attachment)",
        );
    }
    if let Err(r) = check_actions(&p.actions) {
        return r.into_response();
    }
    let now = world.sim.now().timestamp();
    st.next_id += 1;
    let msg = Message {
        id: format!("sim{:09}", st.next_id),
        time: now,
        expires: now + 12 * 3600,
        event: "message".to_owned(),
        topic: p.topic,
        title: p.title,
        message: if p.message.is_empty() {
            "triggered".to_owned()
        } else {
            p.message
        },
        priority: p.priority,
        tags: p.tags,
        click: p.click,
        actions: p.actions,
        content_type: p.markdown.then(|| "text/markdown".to_owned()),
    };
    st.messages.push(msg.clone());
    Json(msg).into_response()
}

async fn publish_json(
    AxState(world): AxState<Arc<World>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match from_json(&body) {
        Ok(p) => publish(&world, &headers, p),
        Err(r) => r.into_response(),
    }
}

async fn publish_text(
    AxState(world): AxState<Arc<World>>,
    Path(topic): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match from_text(topic, &headers, &q, &body) {
        Ok(p) => publish(&world, &headers, p),
        Err(r) => r.into_response(),
    }
}

async fn unknown(method: Method) -> Response {
    if method == Method::GET {
        error(40401, 404, "page not found")
    } else {
        error(40500, 405, "method not allowed")
    }
}

/// `GET /v1/health`: ntfy's health endpoint, open without auth (`{"healthy":true}`).
async fn health() -> Response {
    Json(serde_json::json!({"healthy": true})).into_response()
}

/// `GET /v1/account`: the caller's account. ntfy checks the `Authorization` header before
/// routing: an unknown token is 401 40101; no header is the anonymous account `*`.
async fn account(AxState(w): AxState<Arc<World>>, headers: HeaderMap) -> Response {
    let st = lock(&w.ntfy);
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    let username = match auth {
        None => "*",
        Some(h) => match h.strip_prefix("Bearer ") {
            Some(t) if st.tokens.contains_key(t) => "afk",
            _ => return error(40101, 401, "unauthorized"),
        },
    };
    Json(serde_json::json!({"username": username, "role": "user"})).into_response()
}

/// The remote's API as afk sees it.
pub fn router(world: Arc<World>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/account", get(account))
        .route("/", post(publish_json).put(publish_json))
        .route("/{topic}", post(publish_text).put(publish_text))
        .fallback(unknown)
        .with_state(world)
}

#[derive(Deserialize)]
struct NewToken {
    token: String,
    #[serde(default)]
    topics: Vec<String>,
}

#[derive(Deserialize)]
struct Times {
    times: u32,
}

#[derive(Deserialize)]
struct Required {
    required: bool,
}

/// Test and scenario control endpoints under `/__sim/ntfy/`: `GET messages`,
/// `POST tokens {token, topics}`, `POST auth {required}`, `POST rate-limit {times}`.
pub fn control(world: Arc<World>) -> Router {
    Router::new()
        .route(
            "/__sim/ntfy/messages",
            get(|AxState(w): AxState<Arc<World>>| async move { Json(messages(&lock(&w.ntfy))) }),
        )
        .route(
            "/__sim/ntfy/tokens",
            post(
                |AxState(w): AxState<Arc<World>>, Json(t): Json<NewToken>| async move {
                    let topics: Vec<&str> = t.topics.iter().map(String::as_str).collect();
                    add_token(&w, &t.token, &topics);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/__sim/ntfy/auth",
            post(
                |AxState(w): AxState<Arc<World>>, Json(r): Json<Required>| async move {
                    require_auth(&w, r.required);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/__sim/ntfy/rate-limit",
            post(
                |AxState(w): AxState<Arc<World>>, Json(t): Json<Times>| async move {
                    rate_limit(&w, t.times);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(world)
}
