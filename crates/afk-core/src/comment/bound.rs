//! Keeping the status comment under the tracker's size limit (GitHub refuses a comment body over
//! 65,536 characters with a 422). The visible part is bounded where it is rendered; the record
//! block carries whole texts from outside (the agent's question, every failing check, errors),
//! so a record too large to fit is compacted before it is rendered: long texts are cut and long
//! lists shortened, in two steps, the second dropping the lists altogether.
//!
//! Compaction only touches what the comment shows. Ids, timestamps, the pushed commit's sha,
//! the number of fix-forward attempts and the doorbell bookkeeping stay exact, so the state
//! machine decides on a compacted record as it would on the whole one. (With check lists cut,
//! the loop guard no longer sees "the same checks failed again" and the attempts limit stops
//! the run instead.) Compaction is deterministic, so a quiet tick still renders the same bytes.

use crate::evidence::Check;
use crate::record::RunRecord;

/// The largest comment body afk writes: GitHub's limit, with room to spare.
pub const COMMENT_MAX_CHARS: usize = 60_000;

/// A link longer than this is not kept.
const URL_MAX: usize = 400;

/// How much one step keeps, in characters of the record's JSON (after escaping).
struct Budget {
    question: usize,
    error: usize,
    reason: usize,
    detail: usize,
    /// Checks kept per list (failing names per fix-forward attempt too); 0 drops the lists.
    checks: usize,
    name: usize,
    url: usize,
}

const STEPS: [Budget; 2] = [
    Budget {
        question: 4_000,
        error: 1_000,
        reason: 2_000,
        detail: 600,
        checks: 10,
        name: 200,
        url: URL_MAX,
    },
    Budget {
        question: 1_000,
        error: 500,
        reason: 1_000,
        detail: 300,
        checks: 0,
        name: 0,
        url: 0,
    },
];

/// Renders with `render`, compacting the record step by step until the body fits.
pub(super) fn render_bounded(record: &RunRecord, render: impl Fn(&RunRecord) -> String) -> String {
    let mut body = render(record);
    for budget in &STEPS {
        if body.chars().count() <= COMMENT_MAX_CHARS {
            break;
        }
        body = render(&compact(record, budget));
    }
    body
}

fn compact(record: &RunRecord, b: &Budget) -> RunRecord {
    let mut r = record.clone();
    if let Some(q) = r.question.as_mut() {
        q.kind = clip(&q.kind, 100);
        q.text = clip(&q.text, b.question);
    }
    if let Some(e) = r.dispatch_error.as_mut() {
        *e = clip(e, b.error);
    }
    if let Some(v) = r.verdict.as_mut() {
        v.reason = clip(&v.reason, b.reason);
    }
    if let Some(p) = r.push.as_mut()
        && cost(&p.url) > URL_MAX
    {
        p.url.clear();
    }
    for summary in [r.ci.as_mut(), r.deploy.as_mut()].into_iter().flatten() {
        summary.detail = clip(&summary.detail, b.detail);
        summary.checks = shorten(
            &summary.checks,
            b,
            |c| Check {
                name: clip(&c.name, b.name),
                url: c.url.clone().filter(|u| cost(u) <= b.url),
            },
            |name| Check { name, url: None },
        );
    }
    for fix in &mut r.fixes {
        fix.failing = shorten(&fix.failing, b, |n| clip(n, b.name), |n| n);
    }
    r
}

/// The first `b.checks` items, each cut by `cut`; then one made by `note` from a line saying
/// how many were left out. With `b.checks == 0`, nothing.
fn shorten<T>(
    items: &[T],
    b: &Budget,
    cut: impl Fn(&T) -> T,
    note: impl Fn(String) -> T,
) -> Vec<T> {
    if b.checks == 0 {
        return Vec::new();
    }
    let mut kept: Vec<T> = items.iter().take(b.checks).map(cut).collect();
    if items.len() > b.checks {
        let n = items.len() - b.checks;
        kept.push(note(format!(
            "(and {n} more, not kept: the comment has a size limit)"
        )));
    }
    kept
}

/// What a character costs in the record block: serde_json's escapes, then the block's own
/// (`<`, `>`, `&` and every non-ASCII UTF-16 unit become `\uXXXX`).
fn char_cost(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\t' | '\r' | '\u{8}' | '\u{c}' => 2,
        '<' | '>' | '&' => 6,
        c if c.is_ascii_control() => 6,
        c if c.is_ascii() => 1,
        c => 6 * c.len_utf16(),
    }
}

fn cost(s: &str) -> usize {
    s.chars().map(char_cost).sum()
}

/// `s` cut to at most `budget` characters of record JSON, marked with `…` when cut.
fn clip(s: &str, budget: usize) -> String {
    if cost(s) <= budget {
        return s.to_owned();
    }
    let room = budget.saturating_sub(char_cost('…'));
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        used += char_cost(c);
        if used > room {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_counts_escaped_characters() {
        assert_eq!(clip("short", 10), "short");
        let cut = clip(&"<".repeat(100), 60);
        assert!(cost(&cut) <= 60, "{cut}");
        assert!(cut.ends_with('…'));
        let emoji = clip(&"🦀".repeat(100), 60);
        assert!(cost(&emoji) <= 60, "{emoji}");
    }
}
