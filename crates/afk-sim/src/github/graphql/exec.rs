//! Runs a validated selection against the simulated GitHub's state, the way GitHub's GraphQL
//! API resolves it: a repository or issue the caller cannot see is `null` with a `NOT_FOUND`
//! error naming its path (response keys, so aliases), and the rest of `data` is still answered
//! (partial results); a `blockedBy` node in a repo the caller cannot see is a `null` node
//! with its own `NOT_FOUND`.

use serde_json::{Map, Value, json};

use super::query::Sel;
use crate::github::model::{Issue, Repo};
use crate::github::render::time;
use crate::github::state::State;

/// What `rateLimit` answers for this call (after it was charged).
#[derive(Debug, Clone)]
pub struct RateView {
    pub cost: u64,
    pub limit: u64,
    pub remaining: u64,
    pub reset_at: String,
    pub node_count: u64,
}

pub struct Exec<'a> {
    pub st: &'a State,
    pub caller: &'a str,
    pub rate: RateView,
    pub errors: Vec<Value>,
}

fn object(sels: &[Sel], mut field: impl FnMut(&Sel) -> Value) -> Value {
    let mut m = Map::new();
    for sel in sels {
        let v = field(sel);
        m.insert(sel.key.clone(), v);
    }
    Value::Object(m)
}

fn with(path: &[Value], key: &str) -> Vec<Value> {
    let mut p = path.to_vec();
    p.push(json!(key));
    p
}

impl<'a> Exec<'a> {
    /// The `data` of the query.
    pub fn query(&mut self, sels: &[Sel]) -> Value {
        object(sels, |sel| {
            let path = vec![json!(sel.key)];
            match sel.name.as_str() {
                "repository" => {
                    let owner = sel.args.get("owner").and_then(Value::as_str).unwrap_or("");
                    let name = sel.args.get("name").and_then(Value::as_str).unwrap_or("");
                    let full = format!("{owner}/{name}");
                    match self.visible(&full) {
                        Some(r) => self.repository(r, &sel.children, &path),
                        None => self.not_found(
                            sel,
                            path,
                            format!("Could not resolve to a Repository with the name '{full}'."),
                        ),
                    }
                }
                "rateLimit" => self.rate_limit(&sel.children),
                _ => Value::Null,
            }
        })
    }

    fn visible(&self, full: &str) -> Option<&'a Repo> {
        self.st
            .repo(full)
            .filter(|r| !r.private || r.role_of(self.caller).is_some())
    }

    fn not_found(&mut self, sel: &Sel, path: Vec<Value>, message: String) -> Value {
        self.errors.push(json!({
            "type": "NOT_FOUND",
            "path": path,
            "locations": sel.location(),
            "message": message,
        }));
        Value::Null
    }

    fn rate_limit(&self, sels: &[Sel]) -> Value {
        let r = &self.rate;
        object(sels, |sel| match sel.name.as_str() {
            "cost" => json!(r.cost),
            "limit" => json!(r.limit),
            "remaining" => json!(r.remaining),
            "used" => json!(r.limit.saturating_sub(r.remaining)),
            "resetAt" => json!(r.reset_at),
            "nodeCount" => json!(r.node_count),
            _ => Value::Null,
        })
    }

    fn repository(&mut self, r: &'a Repo, sels: &[Sel], path: &[Value]) -> Value {
        object(sels, |sel| {
            let path = with(path, &sel.key);
            match sel.name.as_str() {
                "nameWithOwner" => json!(r.full_name()),
                "issue" => {
                    let number = sel.args.get("number").and_then(Value::as_u64);
                    // `Repository.issue` resolves issues only; a pull request's number is not
                    // one (that is `issueOrPullRequest`).
                    match number.and_then(|n| r.issues.get(&n)).filter(|i| !i.is_pr) {
                        Some(i) => self.issue(r, i, &sel.children, &path),
                        None => self.not_found(
                            sel,
                            path,
                            format!(
                                "Could not resolve to an Issue with the number of {}.",
                                number.unwrap_or(0)
                            ),
                        ),
                    }
                }
                _ => Value::Null,
            }
        })
    }

    fn issue(&mut self, r: &'a Repo, i: &'a Issue, sels: &[Sel], path: &[Value]) -> Value {
        object(sels, |sel| {
            let path = with(path, &sel.key);
            match sel.name.as_str() {
                "number" => json!(i.number),
                "state" => json!(if i.open { "OPEN" } else { "CLOSED" }),
                "lastEditedAt" => json!(i.body_edited_at.map(time)),
                "repository" => self.repository(r, &sel.children, &path),
                "blockedBy" => self.blocked_by(i, sel, &path),
                _ => Value::Null,
            }
        })
    }

    fn blocked_by(&mut self, i: &'a Issue, conn: &Sel, path: &[Value]) -> Value {
        let page = |k: &str| {
            conn.args
                .get(k)
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
        };
        let all = &i.blocked_by;
        let listed: Vec<&(String, u64)> = match (page("first"), page("last")) {
            (Some(n), _) => all.iter().take(n).collect(),
            (None, Some(n)) => all.iter().skip(all.len().saturating_sub(n)).collect(),
            (None, None) => Vec::new(),
        };
        object(&conn.children, |sel| match sel.name.as_str() {
            "totalCount" => json!(all.len()),
            "nodes" => {
                let mut nodes = Vec::new();
                for (k, (repo, n)) in listed.iter().enumerate() {
                    let seen = self
                        .visible(repo)
                        .and_then(|br| br.issues.get(n).map(|b| (br, b)));
                    let node_path = {
                        let mut p = with(path, &sel.key);
                        p.push(json!(k));
                        p
                    };
                    nodes.push(match seen {
                        Some((br, b)) => self.issue(br, b, &sel.children, &node_path),
                        None => self.not_found(
                            sel,
                            node_path,
                            "Could not resolve to a node with the global id.".to_owned(),
                        ),
                    });
                }
                Value::Array(nodes)
            }
            _ => Value::Null,
        })
    }
}
