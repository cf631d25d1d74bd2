//! Text shown in public (the status comment and the run record it carries) reduced to what a
//! reader needs: no local paths, no URLs beyond their host, nothing that looks like a secret.
//! The full text stays in afk's logs and plan.

/// Longest public reason kept, in characters.
const MAX_PUBLIC_CHARS: usize = 300;

/// `text` on one line, with absolute paths replaced by `<path>`, URLs cut to `scheme://host`,
/// and long token-like words (letters and digits mixed, 20+ characters) by `<redacted>`.
pub fn public_text(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<String> = flat.split_whitespace().map(public_word).collect();
    let joined = words.join(" ");
    let mut out: String = joined.chars().take(MAX_PUBLIC_CHARS).collect();
    if joined.chars().count() > MAX_PUBLIC_CHARS {
        out.push('…');
    }
    out
}

fn public_word(word: &str) -> String {
    let lead: String = word
        .chars()
        .take_while(|c| matches!(c, '(' | '[' | '{' | '"' | '\'' | '`' | '<'))
        .collect();
    let core = &word[lead.len()..];
    if let Some(i) = core.find("://") {
        let host_end = core[i + 3..]
            .find(['/', '?', '#', '"', '\'', ')', ']', '`', '>', ','])
            .map_or(core.len(), |j| i + 3 + j);
        let host = &core[..host_end];
        let host = match host.rfind('@') {
            Some(at) => format!("{}{}", &core[..i + 3], &host[at + 1..]),
            None => host.to_owned(),
        };
        return format!("{lead}{host}");
    }
    if core.starts_with('/') && core.len() > 1 || core.starts_with("~/") || core.contains(":\\") {
        return format!("{lead}<path>");
    }
    if looks_secret(core) {
        return format!("{lead}<redacted>");
    }
    word.to_owned()
}

/// A long run of token characters mixing letters and digits (API tokens, keys, hashes of
/// credentials). Git SHAs are 40 hex digits: they are kept, they are public.
fn looks_secret(word: &str) -> bool {
    let token: String = word
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '=' | '.'))
        .collect();
    let long = token.chars().count() >= 20;
    let letters = token.chars().any(|c| c.is_ascii_alphabetic());
    let digits = token.chars().any(|c| c.is_ascii_digit());
    let sha = token.len() == 40 && token.chars().all(|c| c.is_ascii_hexdigit());
    long && letters && digits && !sha
}

/// A bounded, single-line excerpt of a remote's text for a message: control characters
/// blanked, at most 200 characters (then `…`), trimmed.
pub fn excerpt(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_urls_and_secrets_are_removed() {
        let raw = "git failed (exit 128): fatal: /data/afk/repos/acme__shop/.git: bad object; \
                   see https://user:pw@t3.example.org/api/x?token=abc and ghp_ABCDEF1234567890abcdef1234 \
                   in ~/secrets (C:\\afk\\x)";
        let out = public_text(raw);
        assert!(!out.contains("/data"), "{out}");
        assert!(!out.contains("token="), "{out}");
        assert!(!out.contains("pw@"), "{out}");
        assert!(!out.contains("ghp_"), "{out}");
        assert!(!out.contains("~/"), "{out}");
        assert!(!out.contains("C:\\"), "{out}");
        assert!(out.contains("https://t3.example.org"), "{out}");
        assert!(
            out.starts_with("git failed (exit 128): fatal: <path>"),
            "{out}"
        );
    }

    #[test]
    fn ordinary_words_and_shas_stay() {
        let text = "t3 answered 500 on POST /api/orchestration/dispatch";
        assert_eq!(public_text(text), "t3 answered 500 on POST <path>");
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            public_text(&format!("pushed {sha}")),
            format!("pushed {sha}")
        );
        assert_eq!(public_text("a\nb\tc"), "a b c");
    }
}
