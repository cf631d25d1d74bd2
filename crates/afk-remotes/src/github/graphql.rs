//! afk's GitHub GraphQL reads: the issue extras (body edit time and native blockers) of many
//! issues across repos in one query, with aliases (`r0: repository(...) { i12: issue(number:
//! 12) { ... } }`), and the points each query cost (`rateLimit { cost remaining resetAt }`).
//!
//! GitHub's limits ("Rate limits and query limits for the GraphQL API"): every connection
//! takes `first`/`last` within 1-100, a call requests at most 500,000 nodes, and a call costs
//! the requests needed for each connection / 100, rounded, at least 1 point. Here the only
//! connection is `blockedBy(first: 50)`, one request per issue, so a query of at most
//! [`MAX_ISSUES_PER_QUERY`] = 100 issues costs 1 point and requests at most 5,000 nodes.

use std::collections::BTreeMap;

use afk_core::model::{IssueNumber, RepoName, Timestamp};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::tracker::{IssueExtras, LinkedBlocker};

/// Issues per query: 100 `blockedBy` connections are 100 requests, which GitHub's cost model
/// prices at 1 point (149 would still round to 1; 100 keeps a margin and a round number).
pub const MAX_ISSUES_PER_QUERY: usize = 100;

/// The `blockedBy` selection: 50 blockers listed per issue; more are counted as unlisted
/// (they block).
const BLOCKED_BY: &str =
    "blockedBy(first: 50) { totalCount nodes { number state repository { nameWithOwner } } }";

/// One query over a chunk of distinct issues, and where each issue sits in the answer.
#[derive(Debug)]
pub struct Batch {
    pub body: Value,
    /// `(repo alias, issue alias)` for each issue of the chunk, in order.
    keys: Vec<(String, String)>,
}

/// Builds the query for `items` (distinct, at most [`MAX_ISSUES_PER_QUERY`]). Owners and
/// names travel as variables (`$o0`, `$n0`), never spliced into the text.
pub fn batch(items: &[(RepoName, IssueNumber)], with_blocked_by: bool) -> Batch {
    let mut repos: Vec<&RepoName> = Vec::new();
    let mut keys = Vec::with_capacity(items.len());
    let mut per_repo: BTreeMap<usize, Vec<IssueNumber>> = BTreeMap::new();
    for (repo, number) in items {
        let k = match repos.iter().position(|r| *r == repo) {
            Some(k) => k,
            None => {
                repos.push(repo);
                repos.len() - 1
            }
        };
        per_repo.entry(k).or_default().push(*number);
        keys.push((format!("r{k}"), format!("i{number}")));
    }
    let fields = if with_blocked_by {
        format!("lastEditedAt {BLOCKED_BY}")
    } else {
        "lastEditedAt".to_owned()
    };
    let mut decls = Vec::new();
    let mut selections = Vec::new();
    let mut variables = Map::new();
    for (k, repo) in repos.iter().enumerate() {
        decls.push(format!("$o{k}: String!, $n{k}: String!"));
        variables.insert(format!("o{k}"), json!(repo.owner()));
        variables.insert(format!("n{k}"), json!(repo.name()));
        let issues: Vec<String> = per_repo
            .get(&k)
            .into_iter()
            .flatten()
            .map(|n| format!("i{n}: issue(number: {n}) {{ {fields} }}"))
            .collect();
        selections.push(format!(
            "r{k}: repository(owner: $o{k}, name: $n{k}) {{ {} }}",
            issues.join(" ")
        ));
    }
    let query = format!(
        "query({}) {{ {} rateLimit {{ cost remaining resetAt }} }}",
        decls.join(", "),
        selections.join(" ")
    );
    Batch {
        body: json!({"query": query, "variables": variables}),
        keys,
    }
}

/// One GraphQL error. GitHub marks an unknown field with `extensions.code: "undefinedField"`
/// (and `typeName`, `fieldName`), and an object the token cannot see with `type: "NOT_FOUND"`
/// and the `path` (response keys) of the `null` it left in `data`.
#[derive(Debug, Deserialize)]
struct GraphqlError {
    message: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    path: Vec<Value>,
    #[serde(default)]
    extensions: Option<Value>,
}

impl GraphqlError {
    fn undefined_field(&self, type_name: &str, field: &str) -> bool {
        let ext = |k: &str| {
            self.extensions
                .as_ref()
                .and_then(|e| e.get(k))
                .and_then(Value::as_str)
        };
        ext("code") == Some("undefinedField")
            && ext("typeName") == Some(type_name)
            && ext("fieldName") == Some(field)
    }

    fn describe(&self) -> String {
        match &self.kind {
            Some(kind) => format!("{kind}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

/// A GraphQL answer: `data` (possibly partial) and `errors`.
#[derive(Debug, Deserialize)]
pub struct Answer {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    errors: Vec<GraphqlError>,
}

/// What `rateLimit` said about the query.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    pub cost: u64,
    pub remaining: u64,
    pub reset_at: Timestamp,
}

/// The extras of each issue of the batch, in order: `Err` names why GitHub did not answer for
/// that issue (the others are still good).
pub type PerIssue = Vec<Result<IssueExtras, String>>;

impl Answer {
    /// Whether the server's schema lacks `Issue.<field>` (the whole query was refused).
    pub fn lacks_issue_field(&self, field: &str) -> bool {
        self.errors
            .iter()
            .any(|e| e.undefined_field("Issue", field))
    }

    /// `rateLimit` of the answer, when the server reported it (GitHub Enterprise Server with
    /// rate limiting off answers `null`).
    pub fn rate_limit(&self) -> Option<RateLimit> {
        let v = self.data.as_ref()?.get("rateLimit")?;
        serde_json::from_value(v.clone()).ok()
    }

    /// Reads each issue of `batch`. An error that names one issue (or one repo) fails that
    /// issue (those issues) only; a `NOT_FOUND` for one of an issue's `blockedBy` nodes is a
    /// hidden blocker of that issue (it blocks), not an error. An error that names nothing
    /// the batch asked, or no `data` at all, fails the whole batch (`Err`).
    pub fn read(self, batch: &Batch) -> Result<PerIssue, String> {
        let mut per_issue: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        let mut whole = Vec::new();
        for e in &self.errors {
            let at: Vec<&str> = e.path.iter().filter_map(Value::as_str).collect();
            let node_of_blocked_by = e.path.len() == 5
                && at.len() == 4
                && at[2] == "blockedBy"
                && at[3] == "nodes"
                && e.path[4].is_u64()
                && e.kind.as_deref() == Some("NOT_FOUND");
            match at.as_slice() {
                ["rateLimit", ..] => {}
                [repo, ..] if batch.keys.iter().any(|(r, _)| r == repo) => {
                    if node_of_blocked_by {
                        continue;
                    }
                    let issue = at.get(1).copied();
                    for key in batch
                        .keys
                        .iter()
                        .filter(|(r, i)| r == repo && issue.is_none_or(|issue| issue == i.as_str()))
                    {
                        per_issue.entry(key.clone()).or_default().push(e.describe());
                    }
                    if issue.is_some_and(|i| !batch.keys.iter().any(|(r, k)| r == repo && k == i)) {
                        whole.push(e.describe());
                    }
                }
                _ => whole.push(e.describe()),
            }
        }
        if !whole.is_empty() {
            return Err(format!("GraphQL errors: {}", whole.join("; ")));
        }
        let data = self
            .data
            .ok_or_else(|| "the GraphQL answer has no data".to_owned())?;
        let mut out = Vec::with_capacity(batch.keys.len());
        for key in &batch.keys {
            if let Some(errors) = per_issue.get(key) {
                out.push(Err(format!("GraphQL errors: {}", errors.join("; "))));
                continue;
            }
            let (repo, issue) = key;
            let value = data.get(repo).and_then(|r| r.get(issue));
            match value {
                None | Some(Value::Null) => out.push(Err(format!(
                    "GitHub answered no {repo}.{issue} and gave no reason"
                ))),
                Some(v) => {
                    let parsed: GraphqlIssue = serde_json::from_value(v.clone())
                        .map_err(|e| format!("{repo}.{issue}: {e}"))?;
                    out.push(Ok(parsed.into_extras()));
                }
            }
        }
        Ok(out)
    }
}

/// `repository.issue` of afk's query.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphqlIssue {
    #[serde(default)]
    last_edited_at: Option<Timestamp>,
    /// `None` only when the query did not ask (a server without issue dependencies).
    #[serde(default)]
    blocked_by: Option<GraphqlBlockers>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphqlBlockers {
    total_count: u64,
    /// `null` for a blocker the token cannot see.
    nodes: Vec<Option<GraphqlBlocker>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphqlBlocker {
    number: u64,
    /// `OPEN` or `CLOSED`; anything but `CLOSED` blocks.
    state: String,
    repository: GraphqlRepo,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphqlRepo {
    name_with_owner: String,
}

impl GraphqlIssue {
    fn into_extras(self) -> IssueExtras {
        // A server without issue dependencies still reports `lastEditedAt`: the body edit time
        // is known either way.
        let Some(blocked_by) = self.blocked_by else {
            return IssueExtras {
                body_edited_at: self.last_edited_at,
                body_edit_time_known: true,
                ..IssueExtras::default()
            };
        };
        let listed = u64::try_from(blocked_by.nodes.len()).unwrap_or(u64::MAX);
        let hidden = blocked_by.nodes.iter().filter(|n| n.is_none()).count();
        IssueExtras {
            body_edited_at: self.last_edited_at,
            body_edit_time_known: true,
            unlisted_blockers: blocked_by.total_count.saturating_sub(listed),
            hidden_blockers: u64::try_from(hidden).unwrap_or(u64::MAX),
            linked_blockers: blocked_by
                .nodes
                .into_iter()
                .flatten()
                .map(|b| LinkedBlocker {
                    repo: b.repository.name_with_owner,
                    number: b.number,
                    open: b.state != "CLOSED",
                })
                .collect(),
            unreadable: None,
        }
    }
}

/// GraphQL points spent by one client (one tick), from the answers' `rateLimit`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphqlCost {
    /// Queries sent (each is one POST).
    pub queries: u64,
    /// Points the answers reported as this query's `cost`, summed.
    pub points: u64,
    /// Queries whose answer did not report its cost (refused ones, or a server with rate
    /// limiting off).
    pub unpriced_queries: u64,
    /// `remaining` of the newest answer that reported it.
    pub remaining: Option<u64>,
    /// `resetAt` of the newest answer that reported it.
    pub reset_at: Option<Timestamp>,
}

impl GraphqlCost {
    pub fn record(&mut self, rate: Option<&RateLimit>) {
        self.queries += 1;
        match rate {
            Some(r) => {
                self.points += r.cost;
                self.remaining = Some(r.remaining);
                self.reset_at = Some(r.reset_at);
            }
            None => self.unpriced_queries += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(s: &str) -> RepoName {
        s.parse().expect("repo name")
    }

    #[test]
    fn issues_of_one_repo_share_its_alias_and_names_travel_as_variables() {
        let items = [
            (repo("acme/app"), 3),
            (repo("other/lib"), 7),
            (repo("acme/app"), 12),
        ];
        let b = batch(&items, true);
        let q = b.body["query"].as_str().expect("query");
        assert!(q.contains("r0: repository(owner: $o0, name: $n0) { i3: issue(number: 3)"));
        assert!(q.contains("i12: issue(number: 12)"));
        assert!(q.contains("r1: repository(owner: $o1, name: $n1) { i7: issue(number: 7)"));
        assert!(q.contains("rateLimit { cost remaining resetAt }"));
        assert_eq!(b.body["variables"]["n1"], "lib");
        assert_eq!(
            b.keys,
            vec![
                ("r0".into(), "i3".into()),
                ("r1".into(), "i7".into()),
                ("r0".into(), "i12".into())
            ]
        );
        assert!(
            !batch(&items, false).body["query"]
                .as_str()
                .expect("q")
                .contains("blockedBy")
        );
    }

    #[test]
    fn an_error_naming_one_issue_fails_that_issue_only() {
        let b = batch(
            &[(repo("a/b"), 1), (repo("a/b"), 2), (repo("c/d"), 3)],
            true,
        );
        let answer: Answer = serde_json::from_value(json!({
            "data": {
                "r0": {"i1": null, "i2": {"lastEditedAt": null, "blockedBy": {"totalCount": 1, "nodes": [null]}}},
                "r1": null,
                "rateLimit": {"cost": 1, "remaining": 4999, "resetAt": "2026-01-01T00:00:00Z"}
            },
            "errors": [
                {"type": "NOT_FOUND", "path": ["r0", "i1"], "message": "Could not resolve to an Issue with the number of 1."},
                {"type": "NOT_FOUND", "path": ["r0", "i2", "blockedBy", "nodes", 0], "message": "hidden"},
                {"type": "NOT_FOUND", "path": ["r1"], "message": "Could not resolve to a Repository with the name 'c/d'."}
            ]
        }))
        .expect("answer");
        assert_eq!(answer.rate_limit().map(|r| r.cost), Some(1));
        let got = answer.read(&b).expect("partial answer");
        assert!(got[0].as_ref().is_err_and(|e| e.contains("number of 1")));
        assert_eq!(got[1].as_ref().map(|x| x.hidden_blockers), Ok(1));
        assert!(got[2].as_ref().is_err_and(|e| e.contains("c/d")));
    }

    #[test]
    fn an_error_naming_nothing_asked_fails_the_batch() {
        let b = batch(&[(repo("a/b"), 1)], true);
        for errors in [
            json!([{"message": "Something went wrong"}]),
            json!([{"type": "NOT_FOUND", "path": ["r9"], "message": "?"}]),
            json!([{"type": "NOT_FOUND", "path": ["r0", "i2"], "message": "?"}]),
        ] {
            let answer: Answer = serde_json::from_value(json!({
                "data": {"r0": {"i1": {"lastEditedAt": null, "blockedBy": {"totalCount": 0, "nodes": []}}}},
                "errors": errors,
            }))
            .expect("answer");
            assert!(answer.read(&b).is_err(), "{errors}");
        }
        let empty: Answer = serde_json::from_value(json!({})).expect("answer");
        assert!(empty.read(&b).is_err());
    }
}
