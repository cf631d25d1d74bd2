//! Tick metrics for Prometheus, pushed to a Pushgateway at the end of every tick when
//! `[metrics] pushgateway_url` is set.
//!
//! The exposition text is written by `prometheus-client` (the Prometheus project's Rust
//! client). Every metric is a gauge describing the tick that just ran, in one group per binary:
//! `PUT <pushgateway_url>/metrics/job/<job>/tick/<poll|watch>` replaces the group, so a
//! metric absent from this tick (a skip reason that did not occur) does not linger. Labels stay
//! low-cardinality: tick, repo, phase, decision, skip reason, remote; never issue titles.
//!
//! A push is best effort: a failure is logged and never changes the tick's outcome. `--dry-run`
//! pushes nothing (it writes nothing anywhere), and neither does the kill-switch poll (no
//! network I/O at all).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use afk_core::config::MetricsConfig;
use afk_core::plan::{Plan, TickKind};
use afk_remotes::http::{Auth, Body, HttpClient, Method, Request, RetryPolicy};
use prometheus_client::encoding::text::encode_registry;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// The remotes an error message can be attributed to (errors start with `<remote>: `).
const REMOTES: [&str; 8] = [
    "github",
    "forgejo",
    "t3",
    "woodpecker",
    "kube",
    "ntfy",
    "slack",
    "git",
];

/// What one tick measured besides its plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TickStats {
    pub duration: Duration,
    /// Unix seconds when the tick ended.
    pub finished_at: i64,
    /// GitHub requests that cost primary rate limit (`None` on Forgejo).
    pub github_requests: Option<u64>,
    /// GitHub requests answered 304 (free).
    pub github_not_modified: Option<u64>,
    /// GitHub GraphQL points the tick spent (its queries' `rateLimit.cost`; `None` on Forgejo).
    pub github_graphql_points: Option<u64>,
    /// GitHub GraphQL points left in the hour after the tick's last priced query.
    pub github_graphql_remaining: Option<u64>,
    /// GitHub GraphQL queries the tick sent (counted in `github_requests` too).
    pub github_graphql_queries: Option<u64>,
}

impl TickStats {
    /// The tick's GitHub rate-limit cost: REST requests not answered 304, plus GraphQL points
    /// (a GraphQL query is priced in points from its own budget, not as a request).
    pub fn rate_limit_cost(&self) -> Option<u64> {
        let requests = self.github_requests?;
        let queries = self.github_graphql_queries.unwrap_or(0);
        let points = self.github_graphql_points.unwrap_or(0);
        Some(requests.saturating_sub(queries) + points)
    }
}

fn tick_name(tick: TickKind) -> &'static str {
    match tick {
        TickKind::Poll => "poll",
        TickKind::Watch => "watch",
    }
}

/// The remote an error belongs to: the first `<remote>: ` in it, at the start or after a
/// space (remote errors read `<remote>: <request>: …`, maybe after some context); `other`
/// when none.
pub fn error_remote(error: &str) -> &'static str {
    REMOTES
        .into_iter()
        .filter_map(|r| {
            let tag = format!("{r}: ");
            if error.starts_with(&tag) {
                return Some((0, r));
            }
            error.find(&format!(" {tag}")).map(|i| (i + 1, r))
        })
        .min_by_key(|(i, _)| *i)
        .map_or("other", |(_, r)| r)
}

fn gauge_family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let f = Family::<Labels, Gauge>::default();
    registry.register(name, help, f.clone());
    f
}

fn float_gauge(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, FloatGauge> {
    let f = Family::<Labels, FloatGauge>::default();
    registry.register(name, help, f.clone());
    f
}

fn count<K: Ord>(keys: impl Iterator<Item = K>) -> BTreeMap<K, i64> {
    let mut m = BTreeMap::new();
    for k in keys {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

/// The exposition text (Prometheus text format) for one tick.
pub fn render(plan: &Plan, stats: &TickStats) -> String {
    let tick = tick_name(plan.tick);
    let l = |pairs: &[(&str, &str)]| -> Labels {
        std::iter::once(("tick".to_owned(), tick.to_owned()))
            .chain(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            )
            .collect()
    };
    let mut r = Registry::default();
    float_gauge(
        &mut r,
        "afk_tick_duration_seconds",
        "Wall time of the last tick",
    )
    .get_or_create(&l(&[]))
    .set(stats.duration.as_secs_f64());
    gauge_family(
        &mut r,
        "afk_tick_last_run_timestamp_seconds",
        "Unix time the last tick ended",
    )
    .get_or_create(&l(&[]))
    .set(stats.finished_at);
    gauge_family(
        &mut r,
        "afk_tick_failed",
        "1 when the last tick reported an error (exit 1), else 0",
    )
    .get_or_create(&l(&[]))
    .set(i64::from(!plan.errors.is_empty()));
    gauge_family(
        &mut r,
        "afk_kill_switch",
        "1 when the kill switch was on for the last tick",
    )
    .get_or_create(&l(&[]))
    .set(i64::from(plan.kill_switch));
    let dispatches = gauge_family(
        &mut r,
        "afk_dispatches",
        "Issues the last poll dispatched, by repo",
    );
    for (repo, n) in count(plan.dispatch.iter().map(|d| d.repo.to_string())) {
        dispatches.get_or_create(&l(&[("repo", &repo)])).set(n);
    }
    let skips = gauge_family(
        &mut r,
        "afk_skips",
        "Issues or repos the last tick skipped, by reason",
    );
    for (reason, n) in count(plan.skipped.iter().map(|s| s.reason.as_str())) {
        skips.get_or_create(&l(&[("reason", reason)])).set(n);
    }
    let runs = gauge_family(
        &mut r,
        "afk_runs",
        "Live runs the last watch looked at, by phase and decision (a verdict is a decision)",
    );
    for ((phase, decision), n) in count(
        plan.runs
            .iter()
            .map(|e| (e.phase.clone(), e.decision.as_str())),
    ) {
        runs.get_or_create(&l(&[("phase", &phase), ("decision", decision)]))
            .set(n);
    }
    let spend = float_gauge(
        &mut r,
        "afk_run_spend_usd",
        "Spend so far in USD of each run the last watch looked at, from its record",
    );
    for e in &plan.runs {
        if let (Some(usd), Some(run)) = (e.spend_usd, &e.run) {
            let (repo, issue, run) = (e.repo.to_string(), e.issue.to_string(), run.to_string());
            spend
                .get_or_create(&l(&[("repo", &repo), ("issue", &issue), ("run", &run)]))
                .set(usd);
        }
    }
    let errors = gauge_family(
        &mut r,
        "afk_errors",
        "Errors the last tick reported, by remote",
    );
    for (remote, n) in count(plan.errors.iter().map(|e| error_remote(&e.error))) {
        errors.get_or_create(&l(&[("remote", remote)])).set(n);
    }
    if let Some(n) = stats.github_requests {
        gauge_family(
            &mut r,
            "afk_github_requests",
            "GitHub requests the last tick made that cost primary rate limit",
        )
        .get_or_create(&l(&[]))
        .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    if let Some(n) = stats.github_not_modified {
        gauge_family(
            &mut r,
            "afk_github_not_modified",
            "GitHub conditional requests the last tick made that were answered 304 (free)",
        )
        .get_or_create(&l(&[]))
        .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    if let Some(n) = stats.rate_limit_cost() {
        gauge_family(
            &mut r,
            "afk_github_rate_limit_cost",
            "Rate limit the last tick spent: GitHub REST requests not answered 304, plus GraphQL \
             points",
        )
        .get_or_create(&l(&[]))
        .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    if let Some(b) = &plan.rate_limit {
        let labels = l(&[("resource", &b.resource)]);
        gauge_family(
            &mut r,
            "afk_github_rate_limit_remaining",
            "GitHub primary rate limit left at the end of the last tick (the tightest resource)",
        )
        .get_or_create(&labels)
        .set(i64::try_from(b.remaining).unwrap_or(i64::MAX));
        gauge_family(
            &mut r,
            "afk_github_rate_limit_limit",
            "GitHub primary rate limit per window (the tightest resource)",
        )
        .get_or_create(&labels)
        .set(i64::try_from(b.limit).unwrap_or(i64::MAX));
        gauge_family(
            &mut r,
            "afk_github_rate_limit_reserve_reached",
            "1 when the last tick stopped at the rate-limit reserve",
        )
        .get_or_create(&l(&[]))
        .set(i64::from(b.reserve_reached));
    }
    for (name, help, value) in [
        (
            "afk_github_graphql_points",
            "GitHub GraphQL points the last tick spent (its own budget, apart from REST requests)",
            stats.github_graphql_points,
        ),
        (
            "afk_github_graphql_remaining",
            "GitHub GraphQL points left in the hour after the last tick's last query",
            stats.github_graphql_remaining,
        ),
    ] {
        if let Some(n) = value {
            gauge_family(&mut r, name, help)
                .get_or_create(&l(&[]))
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
    let mut text = String::new();
    if let Err(e) = encode_registry(&mut text, &r) {
        tracing::warn!(error = %e, "cannot encode the metrics");
        return String::new();
    }
    text
}

/// Pushes the tick's metrics (PUT: replaces this binary's group). Logs and swallows failures.
pub async fn push(config: &MetricsConfig, plan: &Plan, stats: &TickStats) {
    let text = render(plan, stats);
    if text.is_empty() {
        return;
    }
    let policy = RetryPolicy {
        max_retries: 1,
        ..RetryPolicy::default()
    };
    let client = match HttpClient::new("pushgateway", &config.pushgateway_url, Auth::None, policy) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "metrics not pushed");
            return;
        }
    };
    let path = format!("/metrics/job/{}/tick/{}", config.job, tick_name(plan.tick));
    let req = Request::new(Method::PUT, &path, Some(Body::Text(text)))
        .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
        .accept(&[200, 202])
        .idempotent(true);
    match client.send(req).await {
        Ok(_) => tracing::debug!(path = %path, "metrics pushed"),
        Err(e) => {
            tracing::warn!(error = %e, "metrics not pushed; the tick's own work is unaffected")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use afk_core::plan::{ErrorEntry, SkipEntry, SkipReason};

    #[test]
    fn errors_are_attributed_by_their_remote_prefix() {
        assert_eq!(
            error_remote("github: GET /repos/a/b/issues: HTTP 502"),
            "github"
        );
        assert_eq!(
            error_remote("t3: GET /api/orchestration/shell: timeout"),
            "t3"
        );
        assert_eq!(
            error_remote("no run was decided: t3: GET /api/orchestration/shell: HTTP 503"),
            "t3"
        );
        assert_eq!(error_remote("the tick deadline (5m) passed"), "other");
    }

    #[test]
    fn a_plan_becomes_labelled_gauges() {
        let mut plan = Plan::new(TickKind::Poll, false, false);
        for _ in 0..2 {
            plan.skipped.push(SkipEntry {
                repo: None,
                issue: Some(1),
                reason: SkipReason::KillSwitch,
                detail: String::new(),
            });
        }
        plan.errors.push(ErrorEntry {
            public: None,
            repo: None,
            issue: None,
            run: None,
            error: "github: GET /x: HTTP 500".into(),
        });
        let text = render(
            &plan,
            &TickStats {
                duration: Duration::from_millis(1500),
                finished_at: 1_700_000_000,
                github_requests: Some(12),
                github_not_modified: None,
                github_graphql_points: Some(3),
                github_graphql_remaining: None,
                github_graphql_queries: Some(2),
            },
        );
        assert!(text.contains("# TYPE afk_tick_failed gauge"), "{text}");
        assert!(text.contains("afk_tick_failed{tick=\"poll\"} 1"), "{text}");
        assert!(
            text.contains("afk_tick_duration_seconds{tick=\"poll\"} 1.5"),
            "{text}"
        );
        assert!(
            text.contains("afk_skips{tick=\"poll\",reason=\"kill-switch\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("afk_errors{tick=\"poll\",remote=\"github\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("afk_github_requests{tick=\"poll\"} 12"),
            "{text}"
        );
        assert!(!text.contains("afk_github_not_modified"), "{text}");
        assert!(
            text.contains("afk_github_rate_limit_cost{tick=\"poll\"} 13"),
            "{text}"
        );
        assert!(!text.contains("afk_github_rate_limit_remaining"), "{text}");
        assert!(
            text.contains("afk_github_graphql_points{tick=\"poll\"} 3"),
            "{text}"
        );
        assert!(!text.contains("afk_github_graphql_remaining"), "{text}");
    }

    #[test]
    fn each_run_s_spend_becomes_a_gauge() {
        let mut plan = Plan::new(TickKind::Watch, false, false);
        let run: afk_core::model::RunId = "acme__shop-7-1".parse().expect("run id");
        for (run, spend) in [(Some(run), Some(1.25)), (None, None)] {
            plan.runs.push(afk_core::plan::RunEntry {
                repo: "acme/shop".parse().expect("repo"),
                issue: 7,
                run,
                phase: "agent".into(),
                decision: afk_core::plan::Decision::Wait,
                reason: String::new(),
                spend_usd: spend,
            });
        }
        let stats = TickStats {
            duration: Duration::from_secs(1),
            finished_at: 1_700_000_000,
            github_requests: None,
            github_not_modified: None,
            github_graphql_points: None,
            github_graphql_remaining: None,
            github_graphql_queries: None,
        };
        let text = render(&plan, &stats);
        let line = "afk_run_spend_usd{tick=\"watch\",repo=\"acme/shop\",issue=\"7\",run=\"acme__shop-7-1\"} 1.25";
        assert!(text.contains(line), "{line} in {text}");
        assert_eq!(text.matches("afk_run_spend_usd{").count(), 1, "{text}");
    }

    #[test]
    fn the_rate_limit_budget_becomes_gauges() {
        let mut plan = Plan::new(TickKind::Watch, false, false);
        plan.rate_limit = Some(afk_core::budget::BudgetStatus {
            resource: "core".into(),
            limit: 5000,
            remaining: 900,
            reset: chrono::DateTime::from_timestamp(1_700_003_600, 0).expect("time"),
            reserve: 1000,
            reserve_reached: true,
        });
        let stats = TickStats {
            duration: Duration::from_secs(1),
            finished_at: 1_700_000_000,
            github_requests: Some(3),
            github_not_modified: Some(1),
            github_graphql_points: None,
            github_graphql_remaining: None,
            github_graphql_queries: None,
        };
        let text = render(&plan, &stats);
        for line in [
            "afk_github_rate_limit_remaining{tick=\"watch\",resource=\"core\"} 900",
            "afk_github_rate_limit_limit{tick=\"watch\",resource=\"core\"} 5000",
            "afk_github_rate_limit_reserve_reached{tick=\"watch\"} 1",
            "afk_github_rate_limit_cost{tick=\"watch\"} 3",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
