//! `Blocked by #N` / `Blocked by owner/repo#N` references in an issue body.
//!
//! A reference that names a repo in a form afk cannot validate is kept as unresolvable, so the
//! issue stays blocked (fail closed) and the plan says why.

use crate::model::{IssueNumber, RepoName};

/// One reference found in a body.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum BlockerRef {
    /// `#N` (same repo) or `owner/repo#N`.
    Issue { repo: RepoName, number: IssueNumber },
    /// Something after "Blocked by" that is not a valid reference, as written (bounded).
    Malformed(String),
}

impl BlockerRef {
    /// As shown to people: `#12`, `owner/repo#12`.
    pub fn display(&self, home: &RepoName) -> String {
        match self {
            BlockerRef::Issue { repo, number } if repo == home => format!("#{number}"),
            BlockerRef::Issue { repo, number } => format!("{repo}#{number}"),
            BlockerRef::Malformed(s) => s.clone(),
        }
    }
}

const KEY: &str = "blocked by";

/// Every reference after a "Blocked by" (case-insensitive; also "blocked-by:"), deduplicated,
/// in order of first appearance. A list like `Blocked by #1, #2 and o/r#3` yields all three.
pub fn blocker_refs(body: &str, home: &RepoName) -> Vec<BlockerRef> {
    let mut out: Vec<BlockerRef> = Vec::new();
    for line in body.lines() {
        let lower = line.to_ascii_lowercase().replace("blocked-by", KEY);
        let mut from = 0;
        while let Some(pos) = lower[from..].find(KEY) {
            let start = from + pos + KEY.len();
            // Byte offsets agree: to_ascii_lowercase and the replacement keep lengths.
            let tail = line.get(start..).unwrap_or("");
            for r in parse_list(tail, home) {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
            from = start;
        }
    }
    out
}

/// Parses `: #1, #2 and owner/repo#3.` up to the first word that is not a reference.
fn parse_list(tail: &str, home: &RepoName) -> Vec<BlockerRef> {
    let mut out = Vec::new();
    let cleaned = tail.trim_start_matches([':', ' ', '\t']);
    for raw in cleaned.split([',', ' ', '\t', ';']) {
        let token = raw
            .trim()
            .trim_end_matches(['.', ')', ']'])
            .trim_start_matches(['(', '[']);
        if token.is_empty() || token.eq_ignore_ascii_case("and") || token.eq_ignore_ascii_case("or")
        {
            continue;
        }
        match parse_one(token, home) {
            Some(r) => out.push(r),
            None if out.is_empty() && token.contains('#') => {
                out.push(BlockerRef::Malformed(token.chars().take(80).collect()));
                break;
            }
            None => break,
        }
    }
    if out.is_empty() && !cleaned.trim().is_empty() {
        let shown: String = cleaned.trim().chars().take(80).collect();
        out.push(BlockerRef::Malformed(shown));
    }
    out
}

fn parse_one(token: &str, home: &RepoName) -> Option<BlockerRef> {
    let (repo_part, num) = token.rsplit_once('#')?;
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: IssueNumber = num.parse().ok().filter(|n| *n > 0)?;
    if repo_part.is_empty() {
        return Some(BlockerRef::Issue {
            repo: home.clone(),
            number,
        });
    }
    Some(match repo_part.parse::<RepoName>() {
        Ok(repo) => BlockerRef::Issue { repo, number },
        Err(_) => BlockerRef::Malformed(token.chars().take(80).collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> RepoName {
        "o/r".parse().expect("repo")
    }

    fn issue(repo: &str, n: u64) -> BlockerRef {
        BlockerRef::Issue {
            repo: repo.parse().expect("repo"),
            number: n,
        }
    }

    #[test]
    fn finds_same_repo_and_cross_repo_references() {
        let body = "Intro\nBlocked by #12\nblocked by other/lib#3, #14 and #12.\n";
        assert_eq!(
            blocker_refs(body, &home()),
            vec![issue("o/r", 12), issue("other/lib", 3), issue("o/r", 14)]
        );
    }

    #[test]
    fn accepts_blocked_by_with_colon_and_hyphen() {
        assert_eq!(
            blocker_refs("Blocked-by: #7", &home()),
            vec![issue("o/r", 7)]
        );
        assert_eq!(
            blocker_refs("BLOCKED BY (#8)", &home()),
            vec![issue("o/r", 8)]
        );
    }

    #[test]
    fn stops_at_prose_after_the_list() {
        assert_eq!(
            blocker_refs("Blocked by #5 until the release ships #6", &home()),
            vec![issue("o/r", 5)]
        );
    }

    #[test]
    fn unparseable_references_are_kept_so_they_block() {
        let refs = blocker_refs("Blocked by ../../etc#1", &home());
        assert!(
            matches!(refs.as_slice(), [BlockerRef::Malformed(_)]),
            "{refs:?}"
        );
        let refs = blocker_refs("Blocked by the database migration", &home());
        assert!(
            matches!(refs.as_slice(), [BlockerRef::Malformed(_)]),
            "{refs:?}"
        );
    }

    #[test]
    fn no_reference_no_blocker() {
        assert!(blocker_refs("Nothing blocks this. Not blocked.", &home()).is_empty());
        assert_eq!(issue("o/r", 3).display(&home()), "#3");
        assert_eq!(issue("x/y", 3).display(&home()), "x/y#3");
    }
}
