//! Validated domain primitives: repo names, run ids, logins, timestamps, durations.
//!
//! Everything here is checked once at the edge (config parse, remote response) so the rest of
//! afk can rely on it: a `RepoName` can never hold a path-traversal, a `RunId` always parses back
//! into its repo, issue and attempt number.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, always UTC. The core never reads a clock: `now` is passed in.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// An issue number on the tracker (GitHub `number`, Forgejo `index`).
pub type IssueNumber = u64;

/// Why a string was refused as a domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is invalid: {why}")]
pub struct InvalidValue {
    pub what: &'static str,
    pub value: String,
    pub why: &'static str,
}

impl InvalidValue {
    fn new(what: &'static str, value: &str, why: &'static str) -> Self {
        // Never echo more than a bounded prefix of hostile input.
        let value: String = value.chars().take(120).collect();
        InvalidValue { what, value, why }
    }
}

const MAX_OWNER_LEN: usize = 40;
const MAX_NAME_LEN: usize = 100;

/// `owner/name` of a repository on the tracker.
///
/// Owner: ASCII letters, digits, `-`, `_`, `.`; name: the same. Neither may be `.` or `..`,
/// start with `.` or `-` (owner) or contain `__` (the slug separator), so the slug
/// `owner__name` is unambiguous and no name can escape a directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoName {
    owner: String,
    name: String,
}

impl RepoName {
    pub fn owner(&self) -> &str {
        &self.owner
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    /// `owner__name`: the filesystem- and id-safe form used in paths and run ids.
    pub fn slug(&self) -> String {
        format!("{}__{}", self.owner, self.name)
    }
    /// Inverse of [`RepoName::slug`].
    pub fn from_slug(slug: &str) -> Result<RepoName, InvalidValue> {
        let (owner, name) = slug
            .split_once("__")
            .ok_or_else(|| InvalidValue::new("repo slug", slug, "expected owner__name"))?;
        RepoName::new(owner, name)
    }
    pub fn new(owner: &str, name: &str) -> Result<RepoName, InvalidValue> {
        let full = format!("{owner}/{name}");
        check_segment("repo owner", owner, MAX_OWNER_LEN, &full)?;
        check_segment("repo name", name, MAX_NAME_LEN, &full)?;
        if owner.starts_with('.') {
            return Err(InvalidValue::new(
                "repo",
                &full,
                "the owner may not start with '.'",
            ));
        }
        if owner.ends_with('_') || name.starts_with('_') {
            return Err(InvalidValue::new(
                "repo",
                &full,
                "an owner may not end and a name may not start with '_' (ambiguous slug)",
            ));
        }
        Ok(RepoName {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }
}

fn check_segment(
    what: &'static str,
    seg: &str,
    max: usize,
    full: &str,
) -> Result<(), InvalidValue> {
    if seg.is_empty() {
        return Err(InvalidValue::new(
            what,
            full,
            "must be owner/name with both parts non-empty",
        ));
    }
    if seg.len() > max {
        return Err(InvalidValue::new(what, full, "is too long"));
    }
    if seg == "." || seg == ".." {
        return Err(InvalidValue::new(what, full, "'.' and '..' are not names"));
    }
    if seg.starts_with('-') {
        return Err(InvalidValue::new(what, full, "may not start with '-'"));
    }
    if seg.contains("__") {
        return Err(InvalidValue::new(what, full, "may not contain '__'"));
    }
    if !seg
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(InvalidValue::new(
            what,
            full,
            "only ASCII letters, digits, '-', '_' and '.' are allowed",
        ));
    }
    Ok(())
}

impl FromStr for RepoName {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(owner), Some(name), None) => RepoName::new(owner, name),
            _ => Err(InvalidValue::new(
                "repo",
                s,
                "expected exactly one '/' (owner/name)",
            )),
        }
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

impl Serialize for RepoName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RepoName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One run of one issue: `<owner>__<name>-<issue>-<n>`, `n` counting runs of that issue from 1.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId {
    repo: RepoName,
    issue: IssueNumber,
    attempt: u32,
}

impl RunId {
    pub fn new(repo: RepoName, issue: IssueNumber, attempt: u32) -> RunId {
        RunId {
            repo,
            issue,
            attempt: attempt.max(1),
        }
    }
    pub fn repo(&self) -> &RepoName {
        &self.repo
    }
    pub fn issue(&self) -> IssueNumber {
        self.issue
    }
    /// `n`: 1 for the first run of an issue, 2 for the next, …
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
    /// The branch the agent works on: `afk/<issue>-<run id>`.
    pub fn branch(&self) -> String {
        format!("afk/{}-{}", self.issue, self)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.repo.slug(), self.issue, self.attempt)
    }
}

impl FromStr for RunId {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidValue::new("run id", s, "expected <owner>__<name>-<issue>-<n>");
        let (rest, attempt) = s.rsplit_once('-').ok_or_else(bad)?;
        let (slug, issue) = rest.rsplit_once('-').ok_or_else(bad)?;
        let attempt: u32 = parse_decimal(attempt).ok_or_else(bad)?;
        let issue: u64 = parse_decimal(issue).ok_or_else(bad)?;
        if attempt == 0 || issue == 0 {
            return Err(bad());
        }
        Ok(RunId {
            repo: RepoName::from_slug(slug)?,
            issue,
            attempt,
        })
    }
}

fn parse_decimal<T: FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

impl Serialize for RunId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RunId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A tracker account name, compared case-insensitively (GitHub and Forgejo logins are).
#[derive(Debug, Clone, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Login(String);

impl Login {
    pub fn new(s: impl Into<String>) -> Login {
        Login(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Login {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The longest duration any setting may hold: a year. Longer values are mistakes, and bounding
/// them keeps every later `Instant + duration` and timestamp arithmetic far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// Parses `"90s"`, `"60m"`, `"4h"`, `"1d"` and sums like `"1h30m"`. Zero, empty and anything
/// above [`MAX_DURATION`] are refused; the arithmetic is checked, so no input panics.
pub fn parse_duration(s: &str) -> Result<Duration, InvalidValue> {
    let bad = |why| InvalidValue::new("duration", s, why);
    let t = s.trim();
    if t.is_empty() {
        return Err(bad("empty; use e.g. \"90s\", \"60m\", \"4h\""));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad("unknown unit; use s, m, h or d")),
        };
        if digits.is_empty() {
            return Err(bad("a number must precede each unit"));
        }
        let n: u64 = digits.parse().map_err(|_| bad("too large; at most 365d"))?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .filter(|v| *v <= MAX_DURATION.as_secs())
            .ok_or_else(|| bad("too large; at most 365d"))?;
    }
    if !digits.is_empty() {
        return Err(bad("missing unit after the number; use s, m, h or d"));
    }
    if total == 0 {
        return Err(bad("must be greater than zero"));
    }
    Ok(Duration::from_secs(total))
}

/// Renders a duration the way `parse_duration` reads it, largest units first (`"1h30m"`).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// `to - from` as a std duration, zero when `to` is earlier.
pub fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    (to - from).to_std().unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_accept_ordinary_names() {
        for ok in [
            "octo/hello",
            "my-org/svc.api",
            "a/.github",
            "forge_user/x_y",
            "O/R-1",
        ] {
            let r: RepoName = ok.parse().expect(ok);
            assert_eq!(r.to_string(), ok);
            assert_eq!(RepoName::from_slug(&r.slug()).expect("slug"), r);
        }
    }

    #[test]
    fn repo_names_refuse_traversal_and_injection() {
        for bad in [
            "",
            "o",
            "o/",
            "/r",
            "o/r/x",
            "../r",
            "o/..",
            "o/.",
            "o/r;rm -rf",
            "o/r x",
            "o/$(id)",
            "o\\r",
            "-o/r",
            "o/-r",
            ".o/r",
            "o/a__b",
            "o_/r",
            "o/_r",
            "o/r\n",
            "ö/r",
        ] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn run_ids_round_trip() {
        let r: RepoName = "my-org/svc.api".parse().expect("repo");
        let id = RunId::new(r.clone(), 42, 3);
        assert_eq!(id.to_string(), "my-org__svc.api-42-3");
        let back: RunId = id.to_string().parse().expect("parse");
        assert_eq!(back, id);
        assert_eq!(back.repo(), &r);
        assert_eq!(id.branch(), "afk/42-my-org__svc.api-42-3");
        for bad in [
            "o__r-42",
            "o__r-x-1",
            "o__r-1-0",
            "or-1-1",
            "o__r-01-1",
            "o__r-+1-1",
            "o__r-1-",
        ] {
            assert!(bad.parse::<RunId>().is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("90s").expect("90s"), Duration::from_secs(90));
        assert_eq!(
            parse_duration("60m").expect("60m"),
            Duration::from_secs(3600)
        );
        assert_eq!(
            parse_duration("1h30m").expect("1h30m"),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_duration("2d").expect("2d"),
            Duration::from_secs(172_800)
        );
        for bad in [
            "",
            "0s",
            "10",
            "m",
            "5x",
            "-5m",
            "1.5h",
            "99999999999999999999d",
            "200000000000000d",
            "366d",
            "365d1s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(parse_duration("365d").expect("365d"), MAX_DURATION);
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(59)), "59s");
    }

    #[test]
    fn logins_compare_case_insensitively() {
        assert_eq!(Login::new("Alice"), Login::new("alice"));
        assert_ne!(Login::new("alice"), Login::new("alice2"));
    }
}
