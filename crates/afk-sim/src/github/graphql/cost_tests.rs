//! The cost model against the worked examples of GitHub's docs ("Rate limits and query limits
//! for the GraphQL API"), and the limits it enforces.

use serde_json::{Value, json};

use super::*;
use crate::github::graphql::query::parse;
use crate::github::graphql::schema::{PAGE_ARGS, Row, Schema};

/// The slice of GitHub's schema the docs' examples use.
const DOCS: &[Row] = &[
    ("Query", "viewer", "User", Kind::Object, &[]),
    (
        "Query",
        "repository",
        "Repository",
        Kind::Object,
        &["owner!", "name!"],
    ),
    ("User", "login", "String", Kind::Leaf, &[]),
    (
        "User",
        "repositories",
        "RepositoryConnection",
        Kind::Connection,
        PAGE_ARGS,
    ),
    (
        "User",
        "followers",
        "FollowerConnection",
        Kind::Connection,
        PAGE_ARGS,
    ),
    (
        "RepositoryConnection",
        "edges",
        "RepositoryEdge",
        Kind::List,
        &[],
    ),
    ("RepositoryEdge", "node", "Repository", Kind::Object, &[]),
    ("Repository", "id", "ID", Kind::Leaf, &[]),
    ("Repository", "name", "String", Kind::Leaf, &[]),
    (
        "Repository",
        "issues",
        "IssueConnection",
        Kind::Connection,
        &["first", "last", "labels", "states"],
    ),
    (
        "Repository",
        "pullRequests",
        "PullRequestConnection",
        Kind::Connection,
        PAGE_ARGS,
    ),
    ("IssueConnection", "totalCount", "Int", Kind::Leaf, &[]),
    ("IssueConnection", "edges", "IssueEdge", Kind::List, &[]),
    ("IssueConnection", "nodes", "Issue", Kind::List, &[]),
    ("IssueEdge", "node", "Issue", Kind::Object, &[]),
    ("Issue", "id", "ID", Kind::Leaf, &[]),
    ("Issue", "number", "Int", Kind::Leaf, &[]),
    ("Issue", "title", "String", Kind::Leaf, &[]),
    ("Issue", "bodyHTML", "HTML", Kind::Leaf, &[]),
    (
        "Issue",
        "labels",
        "LabelConnection",
        Kind::Connection,
        PAGE_ARGS,
    ),
    (
        "Issue",
        "comments",
        "IssueCommentConnection",
        Kind::Connection,
        PAGE_ARGS,
    ),
    ("LabelConnection", "edges", "LabelEdge", Kind::List, &[]),
    ("LabelConnection", "nodes", "Label", Kind::List, &[]),
    ("LabelEdge", "node", "Label", Kind::Object, &[]),
    ("Label", "id", "ID", Kind::Leaf, &[]),
    ("Label", "name", "String", Kind::Leaf, &[]),
    (
        "PullRequestConnection",
        "edges",
        "PullRequestEdge",
        Kind::List,
        &[],
    ),
    ("PullRequestEdge", "node", "PullRequest", Kind::Object, &[]),
    ("PullRequest", "title", "String", Kind::Leaf, &[]),
    (
        "PullRequest",
        "comments",
        "IssueCommentConnection",
        Kind::Connection,
        PAGE_ARGS,
    ),
    (
        "IssueCommentConnection",
        "edges",
        "IssueCommentEdge",
        Kind::List,
        &[],
    ),
    (
        "IssueCommentEdge",
        "node",
        "IssueComment",
        Kind::Object,
        &[],
    ),
    ("IssueComment", "bodyHTML", "HTML", Kind::Leaf, &[]),
    ("FollowerConnection", "edges", "UserEdge", Kind::List, &[]),
    ("UserEdge", "node", "User", Kind::Object, &[]),
];

fn docs() -> Schema {
    Schema {
        rows: DOCS,
        without: &[],
    }
}

fn analysed(schema: &Schema, q: &str) -> Result<Analysis, Vec<Value>> {
    let sels = parse(q, &Value::Null, None).expect("the query parses");
    analyse(schema, "Query", &sels)
}

#[test]
fn the_docs_score_example_costs_51_points() {
    // "This query requires 5,101 requests to fulfill ... the final score of the query: 51".
    let q = "query { viewer { login repositories(first: 100) { edges { node { id
        issues(first: 50) { edges { node { id labels(first: 60) { edges { node { id name } } } } } } } } } } }";
    let a = analysed(&docs(), q).expect("valid");
    assert_eq!(a.requests, 5_101);
    assert_eq!(a.cost(), 51);
}

#[test]
fn the_docs_node_examples_count_550_and_22060_nodes() {
    let simple = "query { viewer { repositories(first: 50) { edges { repository: node { name
        issues(first: 10) { totalCount edges { node { title bodyHTML } } } } } } } }";
    assert_eq!(analysed(&docs(), simple).expect("valid").nodes, 550);
    let complex = "query { viewer { repositories(first: 50) { edges { repository: node { name
        pullRequests(first: 20) { edges { pullRequest: node { title comments(first: 10) { edges { comment: node { bodyHTML } } } } } }
        issues(first: 20) { totalCount edges { issue: node { title bodyHTML comments(first: 10) { edges { comment: node { bodyHTML } } } } } } } } }
        followers(first: 10) { edges { follower: node { login } } } } }";
    let a = analysed(&docs(), complex).expect("valid");
    assert_eq!(a.nodes, 22_060);
    // 1 (repositories) + 50 (pull requests) + 1,000 (their comments) + 50 (issues)
    // + 1,000 (their comments) + 1 (followers) = 2,102 requests: 21 points.
    assert_eq!((a.requests, a.cost()), (2_102, 21));
}

#[test]
fn a_call_without_connections_costs_the_minimum_of_one_point() {
    let a = analysed(&docs(), "{ viewer { login } }").expect("valid");
    assert_eq!((a.requests, a.nodes, a.cost()), (0, 0, 1));
    // 149 requests round down to 1, 150 up to 2.
    assert_eq!(
        Analysis {
            requests: 149,
            nodes: 0
        }
        .cost(),
        1
    );
    assert_eq!(
        Analysis {
            requests: 150,
            nodes: 0
        }
        .cost(),
        2
    );
}

#[test]
fn a_call_over_500000_nodes_is_refused() {
    let q = "{ viewer { repositories(first: 100) { edges { node {
        issues(first: 100) { edges { node { labels(first: 51) { edges { node { name } } } } } } } } } } }";
    let errors = analysed(&docs(), q).expect_err("over the node limit");
    assert_eq!(errors[0]["type"], "MAX_NODE_LIMIT_EXCEEDED");
    assert!(
        errors[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("labels") && m.contains("500000")),
        "{errors:?}"
    );
    // 100 + 10,000 + 480,000 = 490,100 nodes.
    let at_limit = q.replace("first: 51", "first: 48");
    assert!(analysed(&docs(), &at_limit).is_ok());
}

#[test]
fn connections_need_a_page_bound_within_1_to_100() {
    let missing = "{ viewer { repositories { edges { node { name } } } } }";
    let errors = analysed(&docs(), missing).expect_err("no first or last");
    assert_eq!(errors[0]["type"], "MISSING_PAGINATION_BOUNDARIES");
    assert_eq!(
        errors[0]["path"],
        json!(["query", "viewer", "repositories"])
    );
    // Counting needs no page.
    let count = "{ repository(owner: \"o\", name: \"r\") { issues { totalCount } } }";
    assert!(analysed(&docs(), count).is_ok());
    let big = "{ viewer { repositories(last: 101) { edges { node { name } } } } }";
    assert_eq!(
        analysed(&docs(), big).expect_err("101")[0]["type"],
        "EXCESSIVE_PAGINATION"
    );
    let zero = "{ viewer { repositories(first: 0) { edges { node { name } } } } }";
    assert!(analysed(&docs(), zero).is_err());
    let both = "{ viewer { repositories(first: 1, last: 1) { edges { node { name } } } } }";
    assert!(analysed(&docs(), both).is_err());
}

#[test]
fn unknown_fields_and_arguments_are_refused_like_github() {
    let q = "{ repository(owner: \"o\", name: \"r\") { issue(number: 1) { lastEditedAt blockedBy(first: 5) { totalCount } } } }";
    let schema = Schema::github(true);
    let errors = analysed(&schema, q).expect_err("no blockedBy");
    assert_eq!(
        errors[0]["extensions"],
        json!({"code": "undefinedField", "typeName": "Issue", "fieldName": "blockedBy"})
    );
    assert_eq!(
        errors[0]["path"],
        json!(["query", "repository", "issue", "blockedBy"])
    );
    assert!(analysed(&Schema::github(false), q).is_ok());
    let arg = "{ repository(owner: \"o\", name: \"r\", x: 1) { nameWithOwner } }";
    assert_eq!(
        analysed(&schema, arg).expect_err("x")[0]["extensions"]["code"],
        "argumentNotAccepted"
    );
    let required = "{ repository(owner: \"o\") { nameWithOwner } }";
    assert_eq!(
        analysed(&schema, required).expect_err("name")[0]["extensions"]["code"],
        "missingRequiredArguments"
    );
    let bare = "{ repository(owner: \"o\", name: \"r\") }";
    assert!(analysed(&schema, bare).is_err());
}

/// A batched listing of afk's two labels over `repos` repos, the way a GraphQL poll would read
/// them: per repo the ready issues (open) and the locked ones, each with its labels.
fn listing(repos: usize) -> String {
    let mut q = String::from("query {");
    for k in 0..repos {
        q.push_str(&format!(
            " r{k}: repository(owner: \"o\", name: \"r{k}\") {{
              ready: issues(first: 100, labels: [\"ready-for-agent\"], states: [OPEN]) {{ totalCount nodes {{ number title labels(first: 20) {{ nodes {{ name }} }} }} }}
              locked: issues(first: 100, labels: [\"afk-in-progress\"]) {{ totalCount nodes {{ number labels(first: 20) {{ nodes {{ name }} }} }} }} }}"
        ));
    }
    q.push_str(" }");
    q
}

#[test]
fn a_batched_listing_costs_about_two_points_per_repo_every_tick() {
    // The figures docs/performance.md quotes ("GraphQL or REST").
    let fifty = analysed(&docs(), &listing(50)).expect("50 repos fit one call");
    assert_eq!(
        (fifty.requests, fifty.nodes, fifty.cost()),
        (10_100, 210_000, 101)
    );
    let errors = analysed(&docs(), &listing(200)).expect_err("200 repos pass the node limit");
    assert_eq!(errors[0]["type"], "MAX_NODE_LIMIT_EXCEEDED");
    let half = analysed(&docs(), &listing(100)).expect("100 repos fit one call");
    assert_eq!((half.nodes, half.cost()), (420_000, 202));
}
