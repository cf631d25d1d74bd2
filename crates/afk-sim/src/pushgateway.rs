//! Simulator of a Prometheus Pushgateway's push API, strict the way the real one is.
//!
//! Behaviour modelled on the Pushgateway's README ("API") and its handlers:
//! - `PUT /metrics/job/<job>{/<label>/<value>}` replaces every metric of the group identified
//!   by the grouping key; `POST` replaces only the metrics with the same names as pushed ones;
//!   `DELETE` removes the group. Success is `200 OK` (an empty `PUT` empties the group).
//! - The body is the Prometheus text exposition format (0.0.4). Anything the text parser
//!   refuses is `400 Bad Request`: malformed lines, invalid metric or label names, values that
//!   are not floats, a second `TYPE` line for a family or one after its samples, a label name
//!   given twice, the same series twice. Samples carrying a timestamp are refused (400) since
//!   Pushgateway 1.0, and so are samples whose labels contradict the grouping key.
//! - Grouping-key label names must be valid label names; a label without a value (a segment left over) is 404.
//!
//! Every accepted push is recorded for the tests (method, grouping key, parsed samples).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use crate::infra::lock;
use crate::world::World;

/// One parsed sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// One accepted push.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    pub method: String,
    /// `job` first, then the other grouping labels in path order.
    pub grouping: Vec<(String, String)>,
    pub samples: Vec<Sample>,
}

/// Everything this simulated remote knows.
#[derive(Debug, Default)]
pub struct State {
    /// Current metrics per grouping key.
    pub groups: BTreeMap<Vec<(String, String)>, Vec<Sample>>,
    /// Every accepted push, oldest first.
    pub pushes: Vec<Push>,
}

/// Every accepted push so far.
pub fn pushes(state: &State) -> Vec<Push> {
    state.pushes.clone()
}

fn valid_metric_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(v: &str) -> Option<f64> {
    match v {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => v.parse::<f64>().ok(),
    }
}

/// Parses `{a="x",b="y"}` at the start of `s`; returns the labels and the rest.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s.strip_prefix('{').ok_or("expected {")?;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("expected = in a label pair")?;
        let name = rest[..eq].trim();
        if !valid_label_name(name) || name.starts_with("__") {
            return Err(format!("invalid label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .trim_start()
            .strip_prefix('"')
            .ok_or("expected a quoted label value")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    _ => return Err("invalid escape in a label value".into()),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name:?} given twice"));
        }
        rest = rest[end + 1..].trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("expected , or } after a label".into());
        }
    }
}

/// The text format, as the Pushgateway's parser reads it.
pub fn parse_text(body: &str) -> Result<Vec<Sample>, String> {
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut seen_family: Vec<String> = Vec::new();
    let mut samples: Vec<Sample> = Vec::new();
    for (n, line) in body.lines().enumerate() {
        let at = |e: String| format!("text format parsing error in line {}: {e}", n + 1);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut parts = comment.split_whitespace();
            match parts.next() {
                Some("TYPE") => {
                    let name = parts
                        .next()
                        .ok_or_else(|| at("TYPE without a name".into()))?;
                    let kind = parts
                        .next()
                        .ok_or_else(|| at("TYPE without a type".into()))?;
                    if !valid_metric_name(name) {
                        return Err(at(format!("invalid metric name {name:?}")));
                    }
                    if !matches!(
                        kind,
                        "counter" | "gauge" | "histogram" | "summary" | "untyped"
                    ) {
                        return Err(at(format!("unknown metric type {kind:?}")));
                    }
                    if typed.contains_key(name) || seen_family.iter().any(|f| f == name) {
                        return Err(at(format!(
                            "second TYPE line for metric name {name:?}, or TYPE reported after samples"
                        )));
                    }
                    typed.insert(name.to_owned(), kind.to_owned());
                }
                Some("HELP") => {
                    let name = parts
                        .next()
                        .ok_or_else(|| at("HELP without a name".into()))?;
                    if !valid_metric_name(name) {
                        return Err(at(format!("invalid metric name {name:?}")));
                    }
                }
                _ => {}
            }
            continue;
        }
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .ok_or_else(|| at("a sample without a value".into()))?;
        let name = &line[..name_end];
        if !valid_metric_name(name) {
            return Err(at(format!("invalid metric name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let mut fields = rest.split_whitespace();
        let value = fields
            .next()
            .ok_or_else(|| at("a sample without a value".into()))?;
        let value =
            parse_value(value).ok_or_else(|| at(format!("expected a float, got {value:?}")))?;
        if fields.next().is_some() {
            return Err(at("pushed metrics must not carry timestamps".into()));
        }
        if samples.iter().any(|s| s.name == name && s.labels == labels) {
            return Err(at(format!("the series {name}{labels:?} was pushed twice")));
        }
        if !seen_family.iter().any(|f| f == name) {
            seen_family.push(name.to_owned());
        }
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    Ok(samples)
}

fn bad(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, format!("{msg}\n")).into_response()
}

async fn push(
    AxState(w): AxState<Arc<World>>,
    method: Method,
    Path(rest): Path<String>,
    body: Bytes,
) -> Response {
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if segments.len().is_multiple_of(2) {
        return (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    }
    let mut grouping = vec![("job".to_owned(), segments[0].to_owned())];
    for pair in segments[1..].chunks(2) {
        if !valid_label_name(pair[0]) || pair[0] == "job" {
            return bad(format!("improper label name {:?}", pair[0]));
        }
        grouping.push((pair[0].to_owned(), pair[1].to_owned()));
    }
    let mut st = lock(&w.pushgateway);
    if method == Method::DELETE {
        st.groups.remove(&grouping);
        return StatusCode::ACCEPTED.into_response();
    }
    if method != Method::PUT && method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed\n").into_response();
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return bad("the body is not UTF-8".into());
    };
    let samples = match parse_text(text) {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    for s in &samples {
        for (k, v) in &grouping {
            if s.labels.get(k).is_some_and(|x| x != v) {
                return bad(format!(
                    "pushed metric {} has label {k}={:?}, which contradicts the grouping key",
                    s.name,
                    s.labels.get(k).cloned().unwrap_or_default()
                ));
            }
        }
    }
    let group = st.groups.entry(grouping.clone()).or_default();
    if method == Method::PUT {
        *group = samples.clone();
    } else {
        group.retain(|old| !samples.iter().any(|s| s.name == old.name));
        group.extend(samples.iter().cloned());
    }
    st.pushes.push(Push {
        method: method.to_string(),
        grouping,
        samples,
    });
    StatusCode::OK.into_response()
}

/// The remote's API as afk sees it.
pub fn router(world: Arc<World>) -> Router {
    Router::new()
        .route("/metrics/job/{*rest}", any(push))
        .with_state(world)
}

/// No control endpoints: tests read [`State::pushes`] directly.
pub fn control(world: Arc<World>) -> Router {
    Router::new().with_state(world)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_parses() {
        let s = parse_text(
            "# HELP afk_x Help.\n# TYPE afk_x gauge\nafk_x{tick=\"poll\",reason=\"a\\\"b\"} 2\nafk_y 1.5\n# EOF\n",
        )
        .expect("parses");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].labels.get("reason").map(String::as_str), Some("a\"b"));
        assert!((s[1].value - 1.5).abs() < f64::EPSILON);
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for bad in [
            "afk_x{tick=\"poll\"}\n",
            "afk_x one\n",
            "9afk 1\n",
            "afk_x{tick=poll} 1\n",
            "afk_x{a=\"1\",a=\"2\"} 1\n",
            "afk_x 1 1700000000000\n",
            "# TYPE afk_x gauge\n# TYPE afk_x gauge\n",
            "afk_x 1\n# TYPE afk_x gauge\n",
            "# TYPE afk_x speedometer\n",
            "afk_x 1\nafk_x 2\n",
        ] {
            assert!(parse_text(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
