//! The simulated GitHub GraphQL endpoint: it answers exactly the queries afk sends,
//! `repository(owner, name) { issue(number) { lastEditedAt } }`, optionally with
//! `blockedBy(first: N) { totalCount nodes { number state repository { nameWithOwner } } }`
//! (literal arguments or variables), and refuses anything else with a GraphQL error, the way an
//! unknown field would be.
//!
//! Like GitHub's GraphQL API, every answer is HTTP 200: a server set up without issue
//! dependencies (`graphql_without_blocked_by`, as on GitHub Enterprise Server versions before
//! them) refuses a query selecting `blockedBy` at validation, with no `data` and an error whose
//! `extensions` are `{code: "undefinedField", typeName: "Issue", fieldName: "blockedBy"}`; a
//! blocker in a repo the caller cannot see is a `null` node plus a `NOT_FOUND` error naming its
//! path, the rest of `data` still answered (GraphQL partial results).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::render::time;
use super::wire::{Caller, json_response, message};
use crate::infra::lock;
use crate::world::World;

fn gql_error(msg: &str) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"errors": [{"message": msg, "locations": []}]}),
    )
}

fn not_found(data: Value, path: &[&str], msg: &str) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"data": data, "errors": [{"type": "NOT_FOUND", "path": path, "message": msg}]}),
    )
}

/// Splits `k:v,k:v` into values, resolving `$variables` and literal strings/ints.
fn args(text: &str, vars: &Value) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    for pair in text.split(',') {
        let (k, v) = pair
            .split_once(':')
            .ok_or_else(|| format!("Parse error on \"{pair}\""))?;
        let value = if let Some(var) = v.strip_prefix('$') {
            vars.get(var)
                .cloned()
                .filter(|v| !v.is_null())
                .ok_or_else(|| format!("Variable ${var} was provided invalid value"))?
        } else if let Some(s) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            Value::String(s.to_owned())
        } else if let Ok(n) = v.parse::<u64>() {
            json!(n)
        } else {
            return Err(format!("Parse error on \"{v}\""));
        };
        out.insert(k.to_owned(), value);
    }
    Ok(out)
}

const UNSUPPORTED: &str = "This simulated GitHub GraphQL API answers only repository(owner:, name:) { issue(number:) { lastEditedAt [blockedBy(first:) { totalCount nodes { number state repository { nameWithOwner } } }] } }";

/// The `blockedBy` selection afk reads, without whitespace.
const BLOCKED_BY_FIELDS: &str = "{totalCountnodes{numberstaterepository{nameWithOwner}}}";

/// What a query asks: `(owner, name, number, blockedBy's first)`.
type Asked = (String, String, u64, Option<u64>);

/// The query's arguments, or the GraphQL error to answer.
fn parse(query: &str, vars: &Value) -> Result<Asked, String> {
    let q: String = query.chars().filter(|c| !c.is_whitespace()).collect();
    let start = q.find("{repository(").ok_or(UNSUPPORTED)?;
    let head = &q[..start];
    if !(head.is_empty() || head.starts_with("query")) {
        return Err(UNSUPPORTED.into());
    }
    let rest = &q[start + "{repository(".len()..];
    let (repo_args, rest) = rest.split_once(')').ok_or(UNSUPPORTED)?;
    let rest = rest.strip_prefix("{issue(").ok_or(UNSUPPORTED)?;
    let (issue_args, rest) = rest.split_once(')').ok_or(UNSUPPORTED)?;
    let fields = rest
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix("}}}"))
        .ok_or(UNSUPPORTED)?;
    let Some(more) = fields.strip_prefix("lastEditedAt") else {
        return Err(format!(
            "Field '{fields}' is not available on the simulated type 'Issue' (only lastEditedAt and blockedBy)"
        ));
    };
    let first = if more.is_empty() {
        None
    } else {
        let (blocked_args, selection) = more
            .strip_prefix("blockedBy(")
            .and_then(|m| m.split_once(')'))
            .ok_or_else(|| {
                format!("Field '{more}' is not available on the simulated type 'Issue'")
            })?;
        if selection != BLOCKED_BY_FIELDS {
            return Err(format!(
                "Selection '{selection}' on Field 'blockedBy' is not the one this simulator answers"
            ));
        }
        let first = args(blocked_args, vars)?
            .get("first")
            .and_then(Value::as_u64)
            .filter(|n| (1..=100).contains(n))
            .ok_or("Argument 'first' on Field 'blockedBy' must be between 1 and 100")?;
        Some(first)
    };
    let ra = args(repo_args, vars)?;
    let ia = args(issue_args, vars)?;
    let owner = ra
        .get("owner")
        .and_then(Value::as_str)
        .ok_or("Argument 'owner' on Field 'repository' has an invalid value")?;
    let name = ra
        .get("name")
        .and_then(Value::as_str)
        .ok_or("Argument 'name' on Field 'repository' has an invalid value")?;
    let number = ia
        .get("number")
        .and_then(Value::as_u64)
        .ok_or("Argument 'number' on Field 'issue' has an invalid value")?;
    Ok((owner.to_owned(), name.to_owned(), number, first))
}

pub async fn graphql(
    State(w): State<Arc<World>>,
    Extension(c): Extension<Caller>,
    body: Bytes,
) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return message(StatusCode::BAD_REQUEST, "Problems parsing JSON");
    };
    let Some(query) = v.get("query").and_then(Value::as_str) else {
        return gql_error("A query attribute must be specified and must be a string.");
    };
    let vars = v.get("variables").cloned().unwrap_or(Value::Null);
    let (owner, name, number, first) = match parse(query, &vars) {
        Ok(p) => p,
        Err(e) => return gql_error(&e),
    };
    let st = lock(&w.github);
    if first.is_some() && st.graphql_without_blocked_by {
        // A schema without issue dependencies refuses the whole query at validation, HTTP 200
        // and no `data` (GitHub's GraphQL: `undefinedField` in the error's extensions).
        let column = query.find("blockedBy").map_or(1, |i| i + 1);
        return json_response(
            StatusCode::OK,
            &json!({"errors": [{
                "path": ["query", "repository", "issue", "blockedBy"],
                "extensions": {"code": "undefinedField", "typeName": "Issue", "fieldName": "blockedBy"},
                "locations": [{"line": 1, "column": column}],
                "message": "Field 'blockedBy' doesn't exist on type 'Issue'",
            }]}),
        );
    }
    let full = format!("{owner}/{name}");
    let Some(r) = st
        .repo(&full)
        .filter(|r| !r.private || r.role_of(&c.0).is_some())
    else {
        return not_found(
            json!({"repository": null}),
            &["repository"],
            &format!("Could not resolve to a Repository with the name '{full}'."),
        );
    };
    let Some(i) = r.issues.get(&number) else {
        return not_found(
            json!({"repository": {"issue": null}}),
            &["repository", "issue"],
            &format!("Could not resolve to an issue or pull request with the number of {number}."),
        );
    };
    let mut issue = json!({"lastEditedAt": i.body_edited_at.map(time)});
    let mut errors = Vec::new();
    if let Some(first) = first {
        // A blocker in a repo the caller cannot see is a `null` node plus a `NOT_FOUND` error
        // naming its path; the rest of `data` is still answered (GraphQL partial results).
        let mut nodes = Vec::new();
        for (k, (repo, n)) in i
            .blocked_by
            .iter()
            .take(usize::try_from(first).unwrap_or(usize::MAX))
            .enumerate()
        {
            let seen = st
                .repo(repo)
                .filter(|br| !br.private || br.role_of(&c.0).is_some())
                .and_then(|br| br.issues.get(n));
            match seen {
                Some(b) => nodes.push(json!({
                    "number": n,
                    "state": if b.open { "OPEN" } else { "CLOSED" },
                    "repository": {"nameWithOwner": repo},
                })),
                None => {
                    nodes.push(Value::Null);
                    errors.push(json!({
                        "type": "NOT_FOUND",
                        "path": ["repository", "issue", "blockedBy", "nodes", k],
                        "locations": [{"line": 1, "column": 1}],
                        "message": "Could not resolve to a node with the global id.",
                    }));
                }
            }
        }
        issue["blockedBy"] = json!({"totalCount": i.blocked_by.len(), "nodes": nodes});
    }
    let mut answer = json!({"data": {"repository": {"issue": issue}}});
    if !errors.is_empty() {
        answer["errors"] = Value::Array(errors);
    }
    json_response(StatusCode::OK, &answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_literal_and_variable_queries() {
        let q =
            r#"query { repository(owner: "o", name: "r") { issue(number: 4) { lastEditedAt } } }"#;
        assert_eq!(
            parse(q, &Value::Null),
            Ok(("o".into(), "r".into(), 4, None))
        );
        let q = "query($owner:String!,$name:String!,$number:Int!){repository(owner:$owner,name:$name){issue(number:$number){lastEditedAt}}}";
        let vars = json!({"owner": "o", "name": "r", "number": 9});
        assert_eq!(parse(q, &vars), Ok(("o".into(), "r".into(), 9, None)));
        let q = "query($n:Int!){repository(owner:\"o\",name:\"r\"){issue(number:$n){lastEditedAt blockedBy(first: 50) { totalCount nodes { number state repository { nameWithOwner } } }}}}";
        assert_eq!(
            parse(q, &json!({"n": 2})),
            Ok(("o".into(), "r".into(), 2, Some(50)))
        );
        let wrong = q.replace("state", "title");
        assert!(parse(&wrong, &json!({"n": 2})).is_err());
        let too_many = q.replace("50", "101");
        assert!(parse(&too_many, &json!({"n": 2})).is_err());
        assert!(parse(q, &json!({"owner": "o"})).is_err());
        let other = r#"{ repository(owner:"o",name:"r") { issue(number:1) { title } } }"#;
        assert!(parse(other, &Value::Null).is_err());
        assert!(parse("{ viewer { login } }", &Value::Null).is_err());
    }
}
