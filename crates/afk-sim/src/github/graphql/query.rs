//! A GraphQL request turned into a plain selection tree: parsed with `graphql-parser`, its
//! variables resolved against the declared ones, every argument a JSON value. What the
//! simulator does not model (fragments, directives, mutations, subscriptions) is refused.

use std::collections::BTreeMap;

use graphql_parser::query::{
    Definition, Document, OperationDefinition, Selection, SelectionSet, Type, Value as GqlValue,
    parse_query,
};
use serde_json::{Map, Value, json};

/// One selected field: its response key (alias or name), its name, resolved arguments and
/// sub-selection.
#[derive(Debug, Clone, PartialEq)]
pub struct Sel {
    pub key: String,
    pub name: String,
    pub args: BTreeMap<String, Value>,
    pub children: Vec<Sel>,
    pub line: usize,
    pub column: usize,
}

impl Sel {
    pub fn location(&self) -> Value {
        json!([{"line": self.line, "column": self.column}])
    }
}

/// A GraphQL error without `path` (request-level).
pub fn error(message: impl Into<String>) -> Value {
    json!({"message": message.into(), "locations": []})
}

/// The selection of the one query operation in `text` (the named one when `operation` is
/// given), or the errors to answer.
pub fn parse(
    text: &str,
    variables: &Value,
    operation: Option<&str>,
) -> Result<Vec<Sel>, Vec<Value>> {
    let doc: Document<'_, &str> = parse_query(text).map_err(|e| vec![error(e.to_string())])?;
    let mut ops = Vec::new();
    for def in &doc.definitions {
        match def {
            Definition::Fragment(f) => {
                return Err(vec![error(format!(
                    "fragment {} : fragments are not modelled by this simulator",
                    f.name
                ))]);
            }
            Definition::Operation(op) => ops.push(op),
        }
    }
    fn named<'a>(op: &OperationDefinition<'a, &'a str>) -> Option<&'a str> {
        match op {
            OperationDefinition::Query(q) => q.name,
            OperationDefinition::Mutation(m) => m.name,
            OperationDefinition::Subscription(s) => s.name,
            OperationDefinition::SelectionSet(_) => None,
        }
    }
    let op = match operation {
        Some(name) => ops
            .into_iter()
            .find(|op| named(op) == Some(name))
            .ok_or_else(|| vec![error(format!("No operation named \"{name}\""))])?,
        None if ops.len() == 1 => ops[0],
        None => {
            return Err(vec![error(
                "An operation name is required when the document holds several operations",
            )]);
        }
    };
    let (defs, set) = match op {
        OperationDefinition::SelectionSet(s) => (Vec::new(), s),
        OperationDefinition::Query(q) => {
            if !q.directives.is_empty() {
                return Err(vec![error("directives are not modelled by this simulator")]);
            }
            (q.variable_definitions.iter().collect(), &q.selection_set)
        }
        OperationDefinition::Mutation(_) | OperationDefinition::Subscription(_) => {
            return Err(vec![error(
                "this simulator models GitHub's GraphQL queries only, not mutations or subscriptions",
            )]);
        }
    };
    let mut vars = BTreeMap::new();
    let mut errors = Vec::new();
    for d in defs {
        let given = variables.get(d.name).filter(|v| !v.is_null()).cloned();
        let value = match (given, &d.default_value) {
            (Some(v), _) => Some(v),
            (None, Some(default)) => Some(literal(default, &BTreeMap::new()).map_err(|e| vec![e])?),
            (None, None) => None,
        };
        match value {
            Some(v) => {
                vars.insert(d.name.to_owned(), v);
            }
            None if matches!(d.var_type, Type::NonNullType(_)) => errors.push(json!({
                "message": format!("Variable ${} of type {} was provided invalid value", d.name, d.var_type),
                "locations": [{"line": d.position.line, "column": d.position.column}],
                "extensions": {"value": null, "problems": [{"path": [], "explanation": "Expected value to not be null"}]},
            })),
            None => {
                vars.insert(d.name.to_owned(), Value::Null);
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    selection(set, &vars)
}

fn selection<'a>(
    set: &SelectionSet<'a, &'a str>,
    vars: &BTreeMap<String, Value>,
) -> Result<Vec<Sel>, Vec<Value>> {
    let mut out: Vec<Sel> = Vec::new();
    for item in &set.items {
        let field = match item {
            Selection::Field(f) => f,
            Selection::FragmentSpread(_) | Selection::InlineFragment(_) => {
                return Err(vec![error("fragments are not modelled by this simulator")]);
            }
        };
        if !field.directives.is_empty() {
            return Err(vec![error("directives are not modelled by this simulator")]);
        }
        let mut args = BTreeMap::new();
        for (name, value) in &field.arguments {
            args.insert(
                (*name).to_owned(),
                literal(value, vars).map_err(|e| vec![e])?,
            );
        }
        let sel = Sel {
            key: field.alias.unwrap_or(field.name).to_owned(),
            name: field.name.to_owned(),
            args,
            children: selection(&field.selection_set, vars)?,
            line: field.position.line,
            column: field.position.column,
        };
        if let Some(same) = out.iter().find(|s| s.key == sel.key) {
            // GraphQL's "fields can merge" rule; the simulator does not merge, it refuses.
            if same != &sel || sel.name != same.name {
                return Err(vec![json!({
                    "message": format!("Field '{}' has a field conflict: {} or {}?", sel.key, same.name, sel.name),
                    "locations": sel.location(),
                    "extensions": {"code": "fieldConflict", "fieldName": sel.key},
                })]);
            }
            continue;
        }
        out.push(sel);
    }
    Ok(out)
}

/// A literal or variable as JSON.
fn literal<'a>(
    value: &GqlValue<'a, &'a str>,
    vars: &BTreeMap<String, Value>,
) -> Result<Value, Value> {
    Ok(match value {
        GqlValue::Variable(name) => vars.get(*name).cloned().ok_or_else(|| {
            error(format!(
                "Variable ${name} is used by anonymous query but not declared"
            ))
        })?,
        GqlValue::Int(n) => n.as_i64().map_or(Value::Null, |n| json!(n)),
        GqlValue::Float(f) => json!(f),
        GqlValue::String(s) => json!(s),
        GqlValue::Boolean(b) => json!(b),
        GqlValue::Null => Value::Null,
        GqlValue::Enum(e) => json!(e),
        GqlValue::List(items) => Value::Array(
            items
                .iter()
                .map(|v| literal(v, vars))
                .collect::<Result<_, _>>()?,
        ),
        GqlValue::Object(fields) => {
            let mut m = Map::new();
            for (k, v) in fields {
                m.insert((*k).to_owned(), literal(v, vars)?);
            }
            Value::Object(m)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_variables_and_nesting_are_resolved() {
        let q = r#"query($o: String!, $n: Int = 3) { r0: repository(owner: $o, name: "x") { i3: issue(number: $n) { lastEditedAt } } }"#;
        let sels = parse(q, &json!({"o": "acme"}), None).expect("parses");
        assert_eq!(sels.len(), 1);
        assert_eq!(
            (sels[0].key.as_str(), sels[0].name.as_str()),
            ("r0", "repository")
        );
        assert_eq!(sels[0].args.get("owner"), Some(&json!("acme")));
        let issue = &sels[0].children[0];
        assert_eq!(
            (issue.key.as_str(), issue.args.get("number")),
            ("i3", Some(&json!(3)))
        );
    }

    #[test]
    fn missing_variables_fragments_and_mutations_are_refused() {
        let q = "query($o: String!) { repository(owner: $o, name: \"x\") { nameWithOwner } }";
        assert!(parse(q, &json!({}), None).is_err());
        assert!(
            parse(
                "{ repository(owner: $o, name: \"x\") { nameWithOwner } }",
                &json!({}),
                None
            )
            .is_err()
        );
        assert!(
            parse(
                "{ ...F } fragment F on Query { rateLimit { cost } }",
                &Value::Null,
                None
            )
            .is_err()
        );
        assert!(parse("mutation { addComment { id } }", &Value::Null, None).is_err());
        assert!(parse("{ repository(", &Value::Null, None).is_err());
    }
}
