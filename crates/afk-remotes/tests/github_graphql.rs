//! The GitHub client's batched GraphQL reads against the strict GitHub simulator: many issues
//! across repos in one POST, chunking, partial answers, the server without `blockedBy`, the
//! points each query cost; and the simulator's GraphQL endpoint as GitHub documents it
//! (rate-limit headers of the `graphql` resource, `rateLimit`, pagination and node limits).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use afk_core::model::RepoName;
use afk_remotes::github::{GitHub, MAX_ISSUES_PER_QUERY};
use afk_remotes::http::{RetryPolicy, SecretFile};
use afk_sim::github::{Actor, Role, State, rate_used};
use afk_sim::infra::{Clock, Remote, Sim, lock};
use afk_sim::server::{Running, start};
use afk_sim::world::World;
use serde_json::{Value, json};
use tempfile::NamedTempFile;

const TOKEN: &str = "ghp-sim-token-0123456789";
const BOT: &str = "afk-bot";

struct Env {
    running: Running,
    _token: NamedTempFile,
    gh: GitHub,
}

impl Env {
    async fn new(repos: &[&str]) -> Env {
        let world = World::new(Sim::new(Clock::starting_at(chrono::Utc::now())));
        {
            let mut st = lock(&world.github);
            st.add_token(TOKEN, BOT);
            for r in repos {
                st.add_repo(r, "main", false).expect("repo");
                st.set_collaborator(r, BOT, Role::Write)
                    .expect("collaborator");
            }
        }
        let running = start(world).await.expect("simulator");
        let mut token = NamedTempFile::new().expect("tempfile");
        writeln!(token, "{TOKEN}").expect("write token");
        let policy = RetryPolicy {
            max_retries: 3,
            backoff: Duration::from_millis(10),
            timeout: Duration::from_secs(5),
            deadline: None,
            default_rate_limit_wait: Duration::from_secs(1),
            max_body_bytes: afk_remotes::http::DEFAULT_MAX_BODY_BYTES,
        };
        let gh = GitHub::new(
            running.url(Remote::Github),
            SecretFile::new(token.path()),
            policy,
        )
        .expect("client");
        Env {
            running,
            _token: token,
            gh,
        }
    }

    fn world(&self) -> &Arc<World> {
        &self.running.world
    }

    fn with<T>(&self, f: impl FnOnce(&mut State, chrono::DateTime<chrono::Utc>) -> T) -> T {
        let now = self.world().sim.now();
        f(&mut lock(&self.world().github), now)
    }

    fn issue(&self, repo: &str, title: &str) -> u64 {
        self.with(|st, now| {
            st.add_issue(repo, title, Some("body"), "carol", false, now)
                .expect("issue")
        })
    }

    fn graphql_posts(&self) -> Vec<String> {
        self.world()
            .sim
            .requests()
            .into_iter()
            .filter(|r| r.remote == Remote::Github && r.path == "/graphql")
            .map(|r| r.body)
            .collect()
    }

    async fn post(&self, body: Value) -> (Value, reqwest::header::HeaderMap) {
        let resp = reqwest::Client::new()
            .post(format!("{}/graphql", self.running.url(Remote::Github)))
            .header("authorization", format!("bearer {TOKEN}"))
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 200, "GraphQL answers 200");
        let headers = resp.headers().clone();
        (resp.json().await.expect("json"), headers)
    }
}

fn name(s: &str) -> RepoName {
    s.parse().expect("repo name")
}

#[tokio::test]
async fn many_issues_across_repos_are_one_post_in_the_order_asked() {
    let env = Env::new(&["acme/app", "acme/lib", "other/site"]).await;
    let a = env.issue("acme/app", "a");
    let b = env.issue("acme/lib", "b");
    let c = env.issue("other/site", "c");
    let blocker = env.issue("acme/lib", "blocker");
    let edited = env.with(|st, now| {
        st.edit_body("acme/lib", b, "changed", now).expect("edit");
        st.block("other/site", c, ("acme/lib", blocker))
            .expect("block");
        now
    });
    let items = vec![
        (name("other/site"), c),
        (name("acme/app"), a),
        (name("acme/lib"), b),
        (name("other/site"), c),
    ];
    let got = env.gh.issue_extras_many(&items).await.expect("batch");
    assert_eq!(env.graphql_posts().len(), 1, "one query for all of them");
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], got[3], "a repeated issue gets the same answer");
    let linked: Vec<(String, u64, bool)> = got[0]
        .linked_blockers
        .iter()
        .map(|l| (l.repo.clone(), l.number, l.open))
        .collect();
    assert_eq!(linked, vec![("acme/lib".to_owned(), blocker, true)]);
    assert_eq!(got[1].body_edited_at, None);
    assert!(got[1].linked_blockers.is_empty());
    assert_eq!(
        got[2].body_edited_at.map(|t| t.timestamp()),
        Some(edited.timestamp())
    );
    assert!(
        got.iter()
            .all(|x| x.unreadable.is_none() && x.body_edit_time_known)
    );
    assert!(
        env.gh
            .issue_extras_many(&[])
            .await
            .expect("none")
            .is_empty()
    );
    assert_eq!(env.graphql_posts().len(), 1, "nothing asked, nothing sent");
}

#[tokio::test]
async fn more_issues_than_one_query_takes_are_chunked_and_priced() {
    let env = Env::new(&["acme/app", "acme/lib"]).await;
    let mut items = Vec::new();
    for k in 0..150 {
        let repo = if k % 2 == 0 { "acme/app" } else { "acme/lib" };
        items.push((name(repo), env.issue(repo, &format!("task {k}"))));
    }
    let before = rate_used(env.world());
    let got = env.gh.issue_extras_many(&items).await.expect("batch");
    assert_eq!(got.len(), 150);
    let posts = env.graphql_posts();
    assert_eq!(posts.len(), 2, "150 issues: two queries");
    for p in &posts {
        let issues = p.matches(": issue(number:").count();
        assert!(
            issues <= MAX_ISSUES_PER_QUERY,
            "{issues} issues in one query"
        );
    }
    // 100 blockedBy connections are 100 requests: 1 point; 50 are 50: rounded up to 1.
    let cost = env.gh.graphql_cost();
    assert_eq!(
        (cost.queries, cost.points, cost.unpriced_queries),
        (2, 2, 0)
    );
    assert_eq!(cost.remaining, Some(4998));
    assert!(cost.reset_at.is_some());
    let after = rate_used(env.world());
    assert_eq!(
        after.1 - before.1,
        2,
        "the simulator charged what the answers said"
    );
    assert_eq!(after.0, before.0, "GraphQL points are not REST requests");
}

#[tokio::test]
async fn a_missing_issue_or_repo_fails_only_its_own_issues() {
    let env = Env::new(&["acme/app"]).await;
    let ok = env.issue("acme/app", "fine");
    let hidden_blocked = env.issue("acme/app", "blocked by something secret");
    env.with(|st, now| {
        st.add_repo("acme/secret", "main", true)
            .expect("private repo");
        let secret = st
            .add_issue("acme/secret", "hidden", None, "carol", false, now)
            .expect("issue");
        st.block("acme/app", hidden_blocked, ("acme/secret", secret))
            .expect("block");
    });
    let items = vec![
        (name("acme/app"), ok),
        (name("acme/app"), 999),
        (name("acme/secret"), 1),
        (name("acme/app"), hidden_blocked),
    ];
    let got = env
        .gh
        .issue_extras_many(&items)
        .await
        .expect("partial data");
    assert_eq!(env.graphql_posts().len(), 1);
    assert_eq!(got[0].unreadable, None);
    assert_eq!(got[0].hidden_blockers, 0);
    let missing = got[1].unreadable.as_deref().expect("unreadable");
    assert!(
        missing.contains("acme/app#999") && missing.contains("Could not resolve"),
        "{missing}"
    );
    assert_eq!(
        got[1].hidden_blockers, 1,
        "an unreadable issue still blocks"
    );
    assert!(!got[1].body_edit_time_known);
    let private = got[2].unreadable.as_deref().expect("unreadable");
    assert!(private.contains("acme/secret#1"), "{private}");
    assert_eq!(
        (got[3].unreadable.as_deref(), got[3].hidden_blockers),
        (None, 1)
    );
}

#[tokio::test]
async fn a_server_without_blocked_by_is_asked_again_without_it_once_per_client() {
    let env = Env::new(&["acme/app", "acme/lib"]).await;
    let a = env.issue("acme/app", "a");
    let b = env.issue("acme/lib", "b");
    env.with(|st, _| st.graphql_without_blocked_by = true);
    let items = vec![(name("acme/app"), a), (name("acme/lib"), b)];
    let got = env.gh.issue_extras_many(&items).await.expect("fallback");
    assert!(
        got.iter()
            .all(|x| x.body_edit_time_known && x.unreadable.is_none())
    );
    let again = env.gh.issue_extras_many(&items).await.expect("fallback");
    assert_eq!(got, again);
    let posts = env.graphql_posts();
    assert_eq!(posts.len(), 3, "refused, fallback, then the fallback only");
    assert!(posts[0].contains("blockedBy"));
    assert!(!posts[1].contains("blockedBy") && !posts[2].contains("blockedBy"));
    let cost = env.gh.graphql_cost();
    assert_eq!(
        (cost.queries, cost.unpriced_queries, cost.points),
        (3, 1, 2),
        "the refused query reports no cost"
    );
}

#[tokio::test]
async fn the_endpoint_prices_queries_on_the_graphql_budget() {
    let env = Env::new(&["acme/app"]).await;
    let n = env.issue("acme/app", "x");
    let q = format!(
        "{{ repository(owner: \"acme\", name: \"app\") {{ issue(number: {n}) {{ blockedBy(first: 10) {{ totalCount }} }} }} rateLimit {{ cost limit remaining used resetAt nodeCount }} }}"
    );
    let rest_before = lock(&env.world().github).rate.remaining;
    let (body, headers) = env.post(json!({"query": q})).await;
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(h("x-ratelimit-resource").as_deref(), Some("graphql"));
    assert_eq!(h("x-ratelimit-remaining").as_deref(), Some("4999"));
    assert_eq!(h("x-ratelimit-used").as_deref(), Some("1"));
    let rate = &body["data"]["rateLimit"];
    assert_eq!(
        (
            &rate["cost"],
            &rate["limit"],
            &rate["remaining"],
            &rate["used"],
            &rate["nodeCount"]
        ),
        (&json!(1), &json!(5000), &json!(4999), &json!(1), &json!(10))
    );
    assert!(rate["resetAt"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(lock(&env.world().github).rate.remaining, rest_before);

    // No page bound on a listed connection, or one past 100: refused, like GitHub.
    let missing = q.replace(
        "blockedBy(first: 10) { totalCount }",
        "blockedBy { nodes { number } }",
    );
    let (body, _) = env.post(json!({"query": missing})).await;
    assert_eq!(body["errors"][0]["type"], "MISSING_PAGINATION_BOUNDARIES");
    assert!(body.get("data").is_none());
    let excessive = q.replace("first: 10", "first: 101");
    let (body, _) = env.post(json!({"query": excessive})).await;
    assert_eq!(body["errors"][0]["type"], "EXCESSIVE_PAGINATION");
    // Fields GitHub's Issue lacks.
    let (body, _) = env
        .post(json!({"query": q.replace("totalCount", "totalCount bogus")}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "undefinedField");
    assert_eq!(body["errors"][0]["extensions"]["fieldName"], "bogus");

    // Out of points: still HTTP 200, an error and no data.
    env.with(|st, _| st.graphql_rate.remaining = 0);
    let (body, headers) = env.post(json!({"query": q})).await;
    assert_eq!(body["errors"][0]["type"], "RATE_LIMITED");
    assert_eq!(
        headers
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok()),
        Some("0")
    );
}

#[tokio::test]
async fn many_repositories_in_one_query_resolve_by_alias() {
    let env = Env::new(&["acme/app", "acme/lib"]).await;
    let a = env.issue("acme/app", "a");
    env.with(|st, now| {
        st.set_open(
            "acme/app",
            a,
            Some("completed"),
            Actor::user("alice"),
            None,
            now,
        )
        .expect("close");
    });
    let q = format!(
        "query($o: String!) {{ one: repository(owner: $o, name: \"app\") {{ nameWithOwner x: issue(number: {a}) {{ number state repository {{ nameWithOwner }} }} }} two: repository(owner: $o, name: \"lib\") {{ nameWithOwner }} gone: repository(owner: $o, name: \"nope\") {{ nameWithOwner }} }}"
    );
    let (body, _) = env
        .post(json!({"query": q, "variables": {"o": "acme"}}))
        .await;
    assert_eq!(body["data"]["one"]["x"]["state"], "CLOSED");
    assert_eq!(
        body["data"]["one"]["x"]["repository"]["nameWithOwner"],
        "acme/app"
    );
    assert_eq!(body["data"]["two"]["nameWithOwner"], "acme/lib");
    assert_eq!(body["data"]["gone"], Value::Null);
    assert_eq!(body["errors"][0]["type"], "NOT_FOUND");
    assert_eq!(body["errors"][0]["path"], json!(["gone"]));
}
