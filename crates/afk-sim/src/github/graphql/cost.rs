//! Validation and the cost model of GitHub's GraphQL API, as its docs ("Rate limits and query
//! limits for the GraphQL API", formerly "Rate limits and node limits for the GraphQL API")
//! state them:
//!
//! - "Node limit": every connection needs `first` or `last` (GitHub answers
//!   `MISSING_PAGINATION_BOUNDARIES` when a connection's `nodes` or `edges` are selected
//!   without one; `totalCount` alone needs none), each within 1-100 (`EXCESSIVE_PAGINATION`
//!   past 100), and a call may request at most 500,000 nodes: each connection requests its
//!   page size times the page sizes of the connections above it (`MAX_NODE_LIMIT_EXCEEDED`).
//! - "Predicting the point value of a query": add up the requests needed to fulfil each
//!   connection, assuming every one reaches its `first`/`last` (a connection costs one request
//!   per object it hangs from, that is the product of the page sizes above it), divide by 100
//!   and round to the nearest whole number; the minimum is 1 point.
//!
//! Unknown fields and arguments are schema validation errors with GitHub's `extensions`
//! (`undefinedField`, `argumentNotAccepted`, `missingRequiredArguments`, `selectionMismatch`).

use serde_json::{Value, json};

use super::query::Sel;
use super::schema::{Kind, Schema};

/// GitHub's node limit per call.
pub const NODE_LIMIT: u64 = 500_000;

/// The page size bound of `first`/`last`.
pub const MAX_PAGE: u64 = 100;

/// What a valid query asks of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Analysis {
    /// Requests needed to fulfil every connection.
    pub requests: u64,
    /// Nodes the query may return (the node limit's count).
    pub nodes: u64,
}

impl Analysis {
    /// The point value: requests / 100, rounded to the nearest whole number, at least 1.
    pub fn cost(&self) -> u64 {
        (self.requests.saturating_add(50) / 100).max(1)
    }
}

struct Walk<'s> {
    schema: &'s Schema,
    validation: Vec<Value>,
    pagination: Vec<Value>,
    requests: u64,
    nodes: u64,
    /// The first connection at which the running node count passed the limit.
    over_limit: Option<(String, u64, Value, Vec<String>)>,
}

/// Validates `sels` (the selection of `root`) and counts its requests and nodes; the errors
/// GitHub would answer instead otherwise (validation first, then pagination, then the node
/// limit).
pub fn analyse(schema: &Schema, root: &str, sels: &[Sel]) -> Result<Analysis, Vec<Value>> {
    let mut w = Walk {
        schema,
        validation: Vec::new(),
        pagination: Vec::new(),
        requests: 0,
        nodes: 0,
        over_limit: None,
    };
    let mut path = vec!["query".to_owned()];
    w.walk(root, sels, 1, &mut path);
    if !w.validation.is_empty() {
        return Err(w.validation);
    }
    if !w.pagination.is_empty() {
        return Err(w.pagination);
    }
    if let Some((field, total, locations, path)) = w.over_limit {
        return Err(vec![json!({
            "type": "MAX_NODE_LIMIT_EXCEEDED",
            "path": path,
            "locations": locations,
            "message": format!(
                "By the time this query traverses to the {field} connection, it is requesting up to {total} possible nodes which exceeds the maximum limit of {NODE_LIMIT}."
            ),
        })]);
    }
    Ok(Analysis {
        requests: w.requests,
        nodes: w.nodes,
    })
}

fn page_arg(sel: &Sel, name: &str) -> Result<Option<u64>, String> {
    match sel.args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            format!(
                "Argument '{name}' on Field '{}' has an invalid value ({v}). Expected type 'Int'.",
                sel.name
            )
        }),
    }
}

impl Walk<'_> {
    fn walk(&mut self, ty: &str, sels: &[Sel], parents: u64, path: &mut Vec<String>) {
        for sel in sels {
            path.push(sel.key.clone());
            self.field(ty, sel, parents, path);
            path.pop();
        }
    }

    fn field(&mut self, ty: &str, sel: &Sel, parents: u64, path: &mut Vec<String>) {
        let Some(def) = self.schema.field(ty, &sel.name) else {
            self.validation.push(json!({
                "path": path.clone(),
                "extensions": {"code": "undefinedField", "typeName": ty, "fieldName": sel.name},
                "locations": sel.location(),
                "message": format!("Field '{}' doesn't exist on type '{ty}'", sel.name),
            }));
            return;
        };
        for arg in sel.args.keys() {
            let accepted = def
                .args
                .iter()
                .any(|a| a.trim_end_matches('!') == arg.as_str());
            if !accepted {
                self.validation.push(json!({
                    "path": path.clone(),
                    "extensions": {"code": "argumentNotAccepted", "name": sel.name, "typeName": "Field", "argumentName": arg},
                    "locations": sel.location(),
                    "message": format!("Field '{}' doesn't accept argument '{arg}'", sel.name),
                }));
            }
        }
        let missing: Vec<&str> = def
            .args
            .iter()
            .filter_map(|a| a.strip_suffix('!'))
            .filter(|a| sel.args.get(*a).is_none_or(Value::is_null))
            .collect();
        if !missing.is_empty() {
            self.validation.push(json!({
                "path": path.clone(),
                "extensions": {"code": "missingRequiredArguments", "className": "Field", "name": sel.name, "arguments": missing.join(", ")},
                "locations": sel.location(),
                "message": format!("Field '{}' is missing required arguments: {}", sel.name, missing.join(", ")),
            }));
        }
        match (def.kind, sel.children.is_empty()) {
            (Kind::Leaf, false) => {
                self.validation.push(json!({
                    "path": path.clone(),
                    "extensions": {"code": "selectionMismatch", "nodeName": format!("field '{}'", sel.name), "typeName": def.ty},
                    "locations": sel.location(),
                    "message": format!("Selections can't be made on scalars (field '{}' returns {} but has selections [{}])",
                        sel.name, def.ty, sel.children.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")),
                }));
                return;
            }
            (Kind::Leaf, true) => return,
            (_, true) => {
                self.validation.push(json!({
                    "path": path.clone(),
                    "extensions": {"code": "selectionMismatch", "nodeName": format!("field '{}'", sel.name), "typeName": def.ty},
                    "locations": sel.location(),
                    "message": format!("Field must have selections (field '{}' returns {} but has no selections. Did you mean '{} {{ ... }}'?)", sel.name, def.ty, sel.name),
                }));
                return;
            }
            _ => {}
        }
        let below = if def.kind == Kind::Connection {
            let page = self.connection(sel, path);
            // One request per object the connection hangs from; its page for each of them.
            self.requests = self.requests.saturating_add(parents);
            let nodes = parents.saturating_mul(page);
            self.nodes = self.nodes.saturating_add(nodes);
            if self.nodes > NODE_LIMIT && self.over_limit.is_none() {
                self.over_limit =
                    Some((sel.name.clone(), self.nodes, sel.location(), path.clone()));
            }
            nodes
        } else {
            parents
        };
        self.walk(def.ty, &sel.children, below, path);
    }

    /// The connection's page size, recording its pagination errors.
    fn connection(&mut self, sel: &Sel, path: &[String]) -> u64 {
        let mut fail = |kind: Option<&str>, message: String| {
            let mut e = json!({"path": path, "locations": sel.location(), "message": message});
            if let Some(kind) = kind {
                e["type"] = json!(kind);
            }
            self.pagination.push(e);
        };
        let (first, last) = match (page_arg(sel, "first"), page_arg(sel, "last")) {
            (Ok(f), Ok(l)) => (f, l),
            (Err(e), _) | (_, Err(e)) => {
                fail(None, e);
                return 0;
            }
        };
        let lists = sel
            .children
            .iter()
            .any(|c| c.name == "nodes" || c.name == "edges");
        let name = &sel.name;
        match (first, last) {
            (Some(_), Some(_)) => {
                fail(
                    None,
                    format!(
                        "Passing both `first` and `last` to paginate the `{name}` connection is not supported."
                    ),
                );
                0
            }
            (None, None) if lists => {
                fail(
                    Some("MISSING_PAGINATION_BOUNDARIES"),
                    format!(
                        "You must provide a `first` or `last` value to properly paginate the `{name}` connection."
                    ),
                );
                0
            }
            (None, None) => 0,
            (Some(n), None) | (None, Some(n)) => {
                let arg = if first.is_some() { "first" } else { "last" };
                if n > MAX_PAGE {
                    fail(
                        Some("EXCESSIVE_PAGINATION"),
                        format!(
                            "Requesting {n} records on the `{name}` connection exceeds the `{arg}` limit of {MAX_PAGE} records."
                        ),
                    );
                } else if n < 1 {
                    fail(
                        None,
                        format!(
                            "Values of `first` and `last` must be within 1-{MAX_PAGE} on the `{name}` connection (got {n})."
                        ),
                    );
                }
                n
            }
        }
    }
}

#[cfg(test)]
#[path = "cost_tests.rs"]
mod tests;
