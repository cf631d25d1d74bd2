//! What every simulated remote shares: the simulated clock, the request log, injected latency
//! and per-route fault injection, and the `/__sim/*` control endpoints.
//!
//! Every remote is served on its own loopback port through [`instrument`], which records each
//! request and applies the fault rules before the remote's own handler sees it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// The remotes afk talks to, as named in the request log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Remote {
    Github,
    Forgejo,
    T3,
    Woodpecker,
    Kube,
    Ntfy,
    Slack,
    Pushgateway,
}

impl Remote {
    pub const ALL: [Remote; 8] = [
        Remote::Github,
        Remote::Forgejo,
        Remote::T3,
        Remote::Woodpecker,
        Remote::Kube,
        Remote::Ntfy,
        Remote::Slack,
        Remote::Pushgateway,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Remote::Github => "github",
            Remote::Forgejo => "forgejo",
            Remote::T3 => "t3",
            Remote::Woodpecker => "woodpecker",
            Remote::Kube => "kube",
            Remote::Ntfy => "ntfy",
            Remote::Slack => "slack",
            Remote::Pushgateway => "pushgateway",
        }
    }
}

/// The simulated clock. It stands still until advanced, so a scenario is deterministic:
/// turns complete and CI finishes only when a test or the demo moves time forward.
#[derive(Debug)]
pub struct Clock {
    base: DateTime<Utc>,
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn starting_at(base: DateTime<Utc>) -> Clock {
        Clock {
            base,
            offset_ms: AtomicI64::new(0),
        }
    }
    pub fn now(&self) -> DateTime<Utc> {
        self.base + chrono::TimeDelta::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
    pub fn advance_secs(&self, secs: i64) {
        self.offset_ms
            .fetch_add(secs.saturating_mul(1000), Ordering::SeqCst);
    }
}

impl Default for Clock {
    /// A fixed, recognisable start: 2026-06-01T09:00:00Z.
    fn default() -> Clock {
        let base = Utc
            .with_ymd_and_hms(2026, 6, 1, 9, 0, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        Clock::starting_at(base)
    }
}

/// One request as the simulators saw it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestRecord {
    /// Monotonic, from 1, across all remotes.
    pub seq: u64,
    pub remote: Remote,
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    /// Real milliseconds since the simulators started.
    pub at_ms: u64,
    /// The request body as text (bounded), so tests can check what was sent.
    pub body: String,
    /// The fault that was applied, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

impl RequestRecord {
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }
}

/// What to do to a request that matches a [`FaultRule`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FaultAction {
    /// Answer with this status (and body/headers) without reaching the remote.
    Status {
        status: u16,
        #[serde(default)]
        body: Option<String>,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
    /// Wait this long, then serve normally.
    Delay { ms: u64 },
    /// Close the connection without an answer; the remote never sees the request.
    DropBefore,
    /// Let the remote apply the request, then close the connection without an answer
    /// (the response is lost: the nasty case for idempotency).
    DropAfter,
    /// Never answer (the connection stays open): lets a test kill the client mid-tick.
    Hold,
    /// Answer `status` with a JSON content type and a body of `bytes` filler bytes streamed in
    /// 64 KiB chunks as the client reads them, without a `Content-Length` (chunked, as a
    /// proxy or a runaway server sends it), or with `content_length` announced instead (which
    /// may lie: hyper then cuts the connection when the real body ends). Bytes actually handed
    /// to the connection are counted in [`Sim::streamed_bytes`], so a test can show a client
    /// stopped reading at its cap.
    HugeBody {
        status: u16,
        bytes: u64,
        #[serde(default)]
        content_length: Option<u64>,
    },
}

/// Applies `action` to requests matching all the given filters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FaultRule {
    #[serde(default)]
    pub remote: Option<Remote>,
    #[serde(default)]
    pub method: Option<String>,
    /// Matches when the request path contains this text.
    #[serde(default)]
    pub path: Option<String>,
    /// Let this many matching requests through before the fault applies.
    #[serde(default)]
    pub skip: u64,
    /// Apply to this many matching requests after `skip`; absent = every one.
    #[serde(default)]
    pub times: Option<u64>,
    pub action: FaultAction,
    /// Matching requests seen so far (maintained by the simulator).
    #[serde(default)]
    pub seen: u64,
}

impl FaultRule {
    fn matches(&self, remote: Remote, method: &str, path: &str) -> bool {
        self.remote.is_none_or(|r| r == remote)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path.as_deref().is_none_or(|p| path.contains(p))
    }
    /// Counts the request and says whether the action applies to it.
    fn fires(&mut self) -> bool {
        self.seen += 1;
        let n = self.seen;
        n > self.skip && self.times.is_none_or(|t| n <= self.skip + t)
    }
}

/// State shared by every simulated remote and the control endpoints.
#[derive(Debug)]
pub struct Sim {
    pub clock: Clock,
    started: Instant,
    seq: AtomicU64,
    latency_ms: AtomicU64,
    log: Mutex<Vec<RequestRecord>>,
    faults: Mutex<Vec<FaultRule>>,
    streamed: Arc<AtomicU64>,
}

impl Default for Sim {
    fn default() -> Self {
        Sim::new(Clock::default())
    }
}

/// Locks a mutex, recovering from poisoning: a simulator keeps serving after a handler panic
/// (drop faults panic on purpose).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

const BODY_LOG_LIMIT: usize = 256 * 1024;
const BODY_READ_LIMIT: usize = 16 * 1024 * 1024;

/// Panic payload used to drop a connection; silenced by the panic hook.
const DROP_MARKER: &str = "afk-sim: dropping connection on purpose";

impl Sim {
    pub fn new(clock: Clock) -> Sim {
        silence_drop_panics();
        Sim {
            clock,
            started: Instant::now(),
            seq: AtomicU64::new(0),
            latency_ms: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            streamed: Arc::new(AtomicU64::new(0)),
        }
    }
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.log).clone()
    }
    pub fn reset_log(&self) {
        lock(&self.log).clear();
    }
    pub fn set_latency_ms(&self, ms: u64) {
        self.latency_ms.store(ms, Ordering::SeqCst);
    }
    pub fn add_fault(&self, rule: FaultRule) {
        lock(&self.faults).push(rule);
    }
    /// Number of requests logged so far (a mark for [`Sim::held_since`]).
    pub fn log_len(&self) -> usize {
        lock(&self.log).len()
    }
    /// Whether a request logged after `mark` was held by a `Hold` fault.
    pub fn held_since(&self, mark: usize) -> bool {
        lock(&self.log)
            .iter()
            .skip(mark)
            .any(|r| r.fault.as_deref() == Some("Hold"))
    }
    /// Body bytes handed to connections by `HugeBody` faults so far.
    pub fn streamed_bytes(&self) -> u64 {
        self.streamed.load(Ordering::SeqCst)
    }
    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    /// The action of the first rule that fires for this request, if any.
    fn fault_for(&self, remote: Remote, method: &str, path: &str) -> Option<FaultAction> {
        let mut faults = lock(&self.faults);
        for rule in faults.iter_mut() {
            if rule.matches(remote, method, path) && rule.fires() {
                return Some(rule.action.clone());
            }
        }
        None
    }

    fn record(&self, mut rec: RequestRecord) {
        rec.at_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        lock(&self.log).push(rec);
    }
}

fn silence_drop_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if msg != Some(DROP_MARKER) {
                previous(info);
            }
        }));
    });
}

/// Wraps a remote's router with logging, latency and fault injection.
pub fn instrument(sim: Arc<Sim>, remote: Remote, router: Router) -> Router {
    router.layer(middleware::from_fn(move |req: Request, next: Next| {
        let sim = sim.clone();
        async move { observe(sim, remote, req, next).await }
    }))
}

async fn observe(sim: Arc<Sim>, remote: Remote, req: Request, next: Next) -> Response {
    let seq = sim.seq.fetch_add(1, Ordering::SeqCst) + 1;
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_READ_LIMIT)
        .await
        .unwrap_or_else(|_| Bytes::new());
    let logged_body =
        String::from_utf8_lossy(&bytes[..bytes.len().min(BODY_LOG_LIMIT)]).into_owned();
    let mut rec = RequestRecord {
        seq,
        remote,
        method: method.clone(),
        path: path.clone(),
        query,
        status: 0,
        at_ms: 0,
        body: logged_body,
        fault: None,
    };

    let latency = sim.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }

    let fault = sim.fault_for(remote, &method, &path);
    rec.fault = fault.as_ref().map(|f| format!("{f:?}"));
    let req = Request::from_parts(parts, Body::from(bytes));
    match fault {
        None => {}
        Some(FaultAction::Status {
            status,
            body,
            headers,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            rec.status = status.as_u16();
            sim.record(rec);
            return fault_response(status, body, &headers);
        }
        Some(FaultAction::Delay { ms }) => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        Some(FaultAction::DropBefore) => {
            sim.record(rec);
            std::panic::panic_any(DROP_MARKER);
        }
        Some(FaultAction::DropAfter) => {
            let resp = next.run(req).await;
            rec.status = resp.status().as_u16();
            sim.record(rec);
            drop(resp);
            std::panic::panic_any(DROP_MARKER);
        }
        Some(FaultAction::Hold) => {
            sim.record(rec);
            return std::future::pending::<Response>().await;
        }
        Some(FaultAction::HugeBody {
            status,
            bytes,
            content_length,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            rec.status = status.as_u16();
            sim.record(rec);
            return huge_body(status, bytes, content_length, sim.streamed.clone());
        }
    }
    let resp = next.run(req).await;
    rec.status = resp.status().as_u16();
    sim.record(rec);
    resp
}

/// A body of `bytes` filler bytes produced chunk by chunk as the connection takes them (hyper
/// polls the stream only when it can write), each chunk counted in `streamed` when produced.
fn huge_body(
    status: StatusCode,
    bytes: u64,
    content_length: Option<u64>,
    streamed: Arc<AtomicU64>,
) -> Response {
    const CHUNK: u64 = 64 * 1024;
    let chunks = futures::stream::unfold(0u64, move |sent| {
        let streamed = streamed.clone();
        async move {
            if sent >= bytes {
                return None;
            }
            let n = CHUNK.min(bytes - sent);
            streamed.fetch_add(n, Ordering::SeqCst);
            let chunk = Bytes::from(vec![b' '; usize::try_from(n).unwrap_or(0)]);
            Some((Ok::<Bytes, std::io::Error>(chunk), sent + n))
        }
    });
    let mut resp = Response::new(Body::from_stream(chunks));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(n) = content_length {
        h.insert(axum::http::header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    resp
}

fn fault_response(
    status: StatusCode,
    body: Option<String>,
    headers: &BTreeMap<String, String>,
) -> Response {
    let is_json = body
        .as_deref()
        .is_none_or(|b| b.trim_start().starts_with(['{', '[']));
    let body = body.unwrap_or_else(|| {
        serde_json::json!({"message": "simulated fault", "status": status.as_u16()}).to_string()
    });
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    if is_json {
        h.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            h.insert(k, v);
        }
    }
    resp
}

#[derive(Deserialize)]
struct Advance {
    seconds: i64,
}

#[derive(Deserialize)]
struct Latency {
    ms: u64,
}

/// `/__sim/*`: the request log, the clock, latency and faults.
pub fn control_router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/__sim/requests", get(|State(s): State<Arc<Sim>>| async move { Json(s.requests()) }))
        .route(
            "/__sim/reset-log",
            post(|State(s): State<Arc<Sim>>| async move {
                s.reset_log();
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/__sim/advance",
            post(|State(s): State<Arc<Sim>>, Json(a): Json<Advance>| async move {
                if a.seconds < 0 {
                    return (StatusCode::BAD_REQUEST, "seconds must be >= 0").into_response();
                }
                s.clock.advance_secs(a.seconds);
                Json(serde_json::json!({"now": s.now()})).into_response()
            }),
        )
        .route(
            "/__sim/clock",
            get(|State(s): State<Arc<Sim>>| async move { Json(serde_json::json!({"now": s.now()})) }),
        )
        .route(
            "/__sim/latency",
            post(|State(s): State<Arc<Sim>>, Json(l): Json<Latency>| async move {
                s.set_latency_ms(l.ms);
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/__sim/faults",
            post(|State(s): State<Arc<Sim>>, Json(r): Json<FaultRule>| async move {
                s.add_fault(r);
                StatusCode::NO_CONTENT
            })
            .delete(|State(s): State<Arc<Sim>>| async move {
                s.clear_faults();
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(sim)
}
