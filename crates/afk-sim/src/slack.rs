//! Simulator of Slack incoming webhooks: `POST /services/T…/B…/<secret>`,
//! success is 200 with the plain-text body `ok`, errors are plain-text codes (`no_service`,
//! `invalid_payload`, `no_text`, `invalid_blocks`, …), and a rate limit answers 429 with
//! `Retry-After`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::infra::lock;
use crate::world::World;

/// Longest text of a section block.
const MAX_SECTION_TEXT: usize = 3000;
/// Most blocks per message.
const MAX_BLOCKS: usize = 50;

/// One configured webhook.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hook {
    /// When set, every post answers this status and plain-text code instead of `ok`
    /// (e.g. `(404, "no_service")`, `(403, "invalid_token")`, `(410, "channel_is_archived")`).
    pub error: Option<(u16, String)>,
}

/// One accepted post.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Post {
    /// The webhook path it was posted to.
    pub hook: String,
    pub text: String,
    pub blocks: Vec<Value>,
    /// Simulated time, Unix seconds.
    pub at: i64,
}

/// Everything this simulated remote knows.
#[derive(Debug, Default)]
pub struct State {
    /// Webhooks by path (`/services/T…/B…/…`).
    pub hooks: BTreeMap<String, Hook>,
    /// The next this-many posts get 429 with `Retry-After: retry_after_secs`.
    pub rate_limited: u32,
    pub retry_after_secs: u64,
    pub posts: Vec<Post>,
}

/// Every post accepted so far, oldest first.
pub fn posts(state: &State) -> Vec<Post> {
    state.posts.clone()
}

/// Registers a webhook and returns its path; the full webhook URL is the Slack sim's base URL
/// followed by this path.
pub fn add_hook(world: &World, team: &str, bot: &str, secret: &str) -> String {
    let path = format!("/services/{team}/{bot}/{secret}");
    lock(&world.slack)
        .hooks
        .insert(path.clone(), Hook::default());
    path
}

/// Makes a webhook fail with a status and code (`None`: back to normal). Unknown paths are
/// ignored.
pub fn set_hook_error(world: &World, path: &str, error: Option<(u16, &str)>) {
    if let Some(h) = lock(&world.slack).hooks.get_mut(path) {
        h.error = error.map(|(s, c)| (s, c.to_owned()));
    }
}

/// The next `times` posts are rate limited with `Retry-After: retry_after_secs`.
pub fn rate_limit(world: &World, times: u32, retry_after_secs: u64) {
    let mut st = lock(&world.slack);
    st.rate_limited = times;
    st.retry_after_secs = retry_after_secs;
}

fn code(status: u16, code: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = (status, code.to_owned()).into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html"),
    );
    r
}

fn check_blocks(blocks: &[Value]) -> Result<(), &'static str> {
    if blocks.len() > MAX_BLOCKS {
        return Err("invalid_blocks");
    }
    for b in blocks {
        let kind = b
            .get("type")
            .and_then(Value::as_str)
            .ok_or("invalid_blocks")?;
        match kind {
            "section" => {
                let text = b.get("text").ok_or("invalid_blocks")?;
                let ttype = text.get("type").and_then(Value::as_str);
                let body = text.get("text").and_then(Value::as_str);
                match (ttype, body) {
                    (Some("mrkdwn" | "plain_text"), Some(t))
                        if !t.is_empty() && t.chars().count() <= MAX_SECTION_TEXT => {}
                    _ => return Err("invalid_blocks"),
                }
            }
            "divider" | "context" | "header" | "actions" | "image" => {}
            _ => return Err("invalid_blocks"),
        }
    }
    Ok(())
}

async fn post_hook(
    AxState(world): AxState<Arc<World>>,
    Path((team, bot, secret)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let path = format!("/services/{team}/{bot}/{secret}");
    let mut st = lock(&world.slack);
    let Some(hook) = st.hooks.get(&path).cloned() else {
        return code(404, "no_service");
    };
    if let Some((status, c)) = hook.error {
        return code(status, &c);
    }
    if st.rate_limited > 0 {
        st.rate_limited -= 1;
        let mut r = code(429, "rate_limited");
        if let Ok(v) = HeaderValue::from_str(&st.retry_after_secs.to_string()) {
            r.headers_mut().insert("retry-after", v);
        }
        return r;
    }
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(&body) else {
        return code(400, "invalid_payload");
    };
    let text = match obj.get("text") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return code(400, "invalid_payload"),
    };
    let blocks = match obj.get("blocks") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return code(400, "invalid_blocks"),
    };
    if text.trim().is_empty() && blocks.is_empty() {
        return code(400, "no_text");
    }
    if let Err(c) = check_blocks(&blocks) {
        return code(400, c);
    }
    let at = world.sim.now().timestamp();
    st.posts.push(Post {
        hook: path,
        text,
        blocks,
        at,
    });
    code(200, "ok")
}

async fn unknown() -> Response {
    code(404, "no_service")
}

/// The remote's API as afk sees it.
pub fn router(world: Arc<World>) -> Router {
    Router::new()
        .route("/services/{team}/{bot}/{secret}", post(post_hook))
        .fallback(unknown)
        .with_state(world)
}

#[derive(Deserialize)]
struct NewHook {
    team: String,
    bot: String,
    secret: String,
}

#[derive(Deserialize)]
struct HookError {
    path: String,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Deserialize)]
struct Limit {
    times: u32,
    retry_after_secs: u64,
}

/// Test and scenario control endpoints under `/__sim/slack/`: `GET posts`,
/// `POST hooks {team, bot, secret}` → `{path}`, `POST hook-error {path, status?, code?}`
/// (both absent: clear), `POST rate-limit {times, retry_after_secs}`.
pub fn control(world: Arc<World>) -> Router {
    Router::new()
        .route(
            "/__sim/slack/posts",
            get(|AxState(w): AxState<Arc<World>>| async move { Json(posts(&lock(&w.slack))) }),
        )
        .route(
            "/__sim/slack/hooks",
            post(
                |AxState(w): AxState<Arc<World>>, Json(h): Json<NewHook>| async move {
                    Json(serde_json::json!({"path": add_hook(&w, &h.team, &h.bot, &h.secret)}))
                },
            ),
        )
        .route(
            "/__sim/slack/hook-error",
            post(
                |AxState(w): AxState<Arc<World>>, Json(e): Json<HookError>| async move {
                    let err = match (e.status, e.code.as_deref()) {
                        (Some(s), Some(c)) => Some((s, c)),
                        _ => None,
                    };
                    set_hook_error(&w, &e.path, err);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/__sim/slack/rate-limit",
            post(
                |AxState(w): AxState<Arc<World>>, Json(l): Json<Limit>| async move {
                    rate_limit(&w, l.times, l.retry_after_secs);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(world)
}
