//! Escaping for the status comment and the doorbell: outside text as inert markdown, afk's own
//! identifiers as code spans, links only to plain http(s) URLs.

use std::fmt::Write as _;

/// Outside text made safe for one line of markdown: invisible characters and HTML comments
/// removed, whitespace collapsed, at most `max_chars` characters (cut with `…`), markdown
/// punctuation backslash-escaped, `<`, `>`, `&` as entities (no HTML, no record-block forgery),
/// and `@` as the full-width `＠` so no one is mentioned.
pub fn escape_markdown(text: &str, max_chars: usize) -> String {
    let clean = crate::prompt::sanitize(text);
    let flat = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    escape_chars(&bound_chars(&flat, max_chars))
}

fn bound_chars(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_owned();
    }
    let mut cut: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn escape_chars(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '@' => out.push('＠'),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Outside text as a markdown block quote, line structure kept, bounded in characters and lines.
pub(crate) fn quote(text: &str, max_chars: usize, max_lines: usize) -> String {
    let clean = crate::prompt::sanitize(text);
    let bounded = bound_chars(clean.trim(), max_chars);
    let lines: Vec<&str> = bounded.lines().collect();
    let mut out = String::new();
    for line in lines.iter().take(max_lines) {
        let line = line.trim();
        if line.is_empty() {
            out.push_str(">\n");
            continue;
        }
        let mut escaped = escape_chars(line);
        // Keep a line from turning into a list, heading rule or numbered item.
        if escaped.starts_with(['-', '+', '=']) {
            escaped.insert(0, '\\');
        } else if let Some(pos) = escaped.find(|c: char| !c.is_ascii_digit())
            && pos > 0
            && escaped[pos..].starts_with(['.', ')'])
        {
            escaped.insert(pos, '\\');
        }
        let _ = writeln!(out, "> {escaped}");
    }
    if lines.len() > max_lines {
        let _ = writeln!(out, "> … ({} more lines)", lines.len() - max_lines);
    }
    out
}

/// A code span for afk-made identifiers (run id, branch, thread id). Anything but letters,
/// digits and a few path characters shows as `?`, so even a tampered value cannot end the span,
/// hold HTML or imitate the record block.
pub(crate) fn code(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .take(200)
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '+' | '=' | ',') {
                c
            } else {
                '?'
            }
        })
        .collect();
    format!("`{cleaned}`")
}

/// The first seven characters of a commit id, hex only.
pub fn short_sha(sha: &str) -> String {
    sha.chars()
        .filter(char::is_ascii_hexdigit)
        .take(7)
        .collect()
}

/// `url` if it is a plain http(s) URL that cannot break out of a markdown link; `(`, `)` and
/// quotes are percent-encoded.
pub fn safe_url(url: &str) -> Option<String> {
    let ok_scheme = url.starts_with("https://") || url.starts_with("http://");
    if !ok_scheme || url.len() > 2048 || url.chars().any(|c| !c.is_ascii_graphic()) {
        return None;
    }
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '(' | ')' | '<' | '>' | '"' | '\'' | '`' | '\\' | '[' | ']' => {
                let _ = write!(out, "%{:02X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// `2025-01-02 03:04 UTC`.
pub fn minute(t: crate::model::Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}
