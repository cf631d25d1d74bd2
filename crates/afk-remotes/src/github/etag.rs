//! The cache behind GitHub conditional requests: each GET answer's validators (`ETag`,
//! `Last-Modified`) and body by URL, bounded in entries and bytes, least recently used first
//! out.
//!
//! GitHub's REST docs ("Best practices for using the REST API", "Use conditional requests if
//! appropriate"): most endpoints return an `etag` header and many a `last-modified` header;
//! sent back as `If-None-Match` / `If-Modified-Since`, an unchanged resource is answered
//! `304 Not Modified`, and such a request "does not count against your primary rate limit"
//! when it was made with an `Authorization` header.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a repeated GET sends to be answered `304 Not Modified` when nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Validator {
    /// `If-None-Match`: preferred whenever the server gave an `ETag`.
    ETag(String),
    /// `If-Modified-Since`: only for answers that carried no `ETag`.
    LastModified(String),
}

/// Remembered GET answers by URL. Serializable so a tick can persist it between runs (see
/// `etag_store`); deserializing re-applies the bounds and drops entries without a validator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Stored", into = "Stored")]
pub struct EtagCache {
    entries: BTreeMap<String, CachedPage>,
    /// Use counter for least-recently-used eviction.
    clock: u64,
    /// Sum of [`CachedPage::cost`] over the entries.
    bytes: usize,
}

/// The serialized shape (the byte count is recomputed on load, never trusted).
#[derive(Serialize, Deserialize)]
struct Stored {
    entries: BTreeMap<String, CachedPage>,
    #[serde(default)]
    clock: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CachedPage {
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    last_modified: Option<String>,
    #[serde(default)]
    link: Option<String>,
    body: String,
    #[serde(default)]
    used: u64,
}

impl CachedPage {
    /// Bytes the entry accounts for: its URL, its strings and a fixed overhead.
    fn cost(&self, url: &str) -> usize {
        64 + url.len()
            + self.body.len()
            + self.etag.as_ref().map_or(0, String::len)
            + self.last_modified.as_ref().map_or(0, String::len)
            + self.link.as_ref().map_or(0, String::len)
    }
}

impl From<Stored> for EtagCache {
    fn from(s: Stored) -> EtagCache {
        let mut cache = EtagCache {
            entries: BTreeMap::new(),
            clock: s.clock,
            bytes: 0,
        };
        for (url, page) in s.entries {
            if page.etag.is_none() && page.last_modified.is_none() {
                continue;
            }
            cache.clock = cache.clock.max(page.used);
            cache.bytes += page.cost(&url);
            cache.entries.insert(url, page);
        }
        cache.evict();
        cache
    }
}

impl From<EtagCache> for Stored {
    fn from(c: EtagCache) -> Stored {
        Stored {
            entries: c.entries,
            clock: c.clock,
        }
    }
}

impl EtagCache {
    /// Entries kept at most; the least recently used go first. A tick reads its resources in
    /// the same order every time, so a cache smaller than one tick's reads is evicted before it
    /// is reused and answers nothing: sized for a 2,000-repo fleet (two listings per repo plus
    /// the timelines, permissions and blockers its poll vets, about 20,000 entries).
    pub const MAX_ENTRIES: usize = 65_536;
    /// Bytes kept at most (bodies, URLs and validators); the least recently used go first. A
    /// single answer larger than this is not kept at all.
    pub const MAX_BYTES: usize = 256 * 1024 * 1024;

    pub fn new() -> EtagCache {
        EtagCache::default()
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Bytes the entries account for (see [`EtagCache::MAX_BYTES`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The validator to send for `url`: its `ETag`, else its `Last-Modified`.
    pub(super) fn validator(&self, url: &str) -> Option<Validator> {
        let page = self.entries.get(url)?;
        match (&page.etag, &page.last_modified) {
            (Some(e), _) => Some(Validator::ETag(e.clone())),
            (None, Some(lm)) => Some(Validator::LastModified(lm.clone())),
            (None, None) => None,
        }
    }

    /// The remembered body and `Link` header of `url`, marking it used.
    pub(super) fn take(&mut self, url: &str) -> Option<(String, Option<String>)> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(url).map(|e| {
            e.used = clock;
            (e.body.clone(), e.link.clone())
        })
    }

    /// Remembers an answer; without any validator there is nothing to remember (and an older
    /// entry for the URL is dropped, since it no longer describes the resource).
    pub(super) fn put(
        &mut self,
        url: &str,
        etag: Option<String>,
        last_modified: Option<String>,
        link: Option<String>,
        body: String,
    ) {
        self.remove(url);
        if etag.is_none() && last_modified.is_none() {
            return;
        }
        self.clock += 1;
        let page = CachedPage {
            etag,
            last_modified,
            link,
            body,
            used: self.clock,
        };
        let cost = page.cost(url);
        if cost > Self::MAX_BYTES {
            return;
        }
        self.bytes += cost;
        self.entries.insert(url.to_owned(), page);
        self.evict();
    }

    /// Forgets `url`.
    pub(super) fn remove(&mut self, url: &str) {
        if let Some(old) = self.entries.remove(url) {
            self.bytes = self.bytes.saturating_sub(old.cost(url));
        }
    }

    /// Drops the least recently used entries until both bounds hold.
    fn evict(&mut self) {
        while self.entries.len() > Self::MAX_ENTRIES || self.bytes > Self::MAX_BYTES {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.remove(&k),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(c: &mut EtagCache, url: &str, etag: &str, body: &str) {
        c.put(url, Some(etag.into()), None, None, body.into());
    }

    #[test]
    fn the_cache_evicts_the_least_recently_used() {
        let mut c = EtagCache::new();
        for i in 0..EtagCache::MAX_ENTRIES {
            put(&mut c, &format!("u{i}"), &format!("e{i}"), "[]");
        }
        assert!(
            c.take("u0").is_some(),
            "u0 is used again, so u1 is now the oldest"
        );
        put(&mut c, "new", "e", "[]");
        assert_eq!(c.len(), EtagCache::MAX_ENTRIES);
        assert_eq!(c.validator("u0"), Some(Validator::ETag("e0".into())));
        assert!(c.validator("u1").is_none());
        assert!(c.validator("new").is_some());
    }

    #[test]
    fn the_cache_is_bounded_in_bytes() {
        let mut c = EtagCache::new();
        let body = "x".repeat(EtagCache::MAX_BYTES / 4);
        for i in 0..4 {
            put(&mut c, &format!("u{i}"), "e", &body);
        }
        assert_eq!(c.len(), 3, "four quarters plus overhead exceed the bound");
        assert!(c.validator("u0").is_none(), "the oldest went first");
        assert!(c.bytes() <= EtagCache::MAX_BYTES);
        put(&mut c, "huge", "e", &"y".repeat(EtagCache::MAX_BYTES));
        assert!(
            c.validator("huge").is_none(),
            "larger than the bound: not kept"
        );
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn last_modified_is_the_validator_only_without_an_etag() {
        let mut c = EtagCache::new();
        let lm = "Wed, 02 Dec 2026 08:00:00 GMT".to_owned();
        c.put("a", None, Some(lm.clone()), None, "{}".into());
        c.put(
            "b",
            Some("\"e\"".into()),
            Some(lm.clone()),
            None,
            "{}".into(),
        );
        assert_eq!(c.validator("a"), Some(Validator::LastModified(lm)));
        assert_eq!(c.validator("b"), Some(Validator::ETag("\"e\"".into())));
        c.put("b", None, None, None, "{}".into());
        assert!(
            c.validator("b").is_none(),
            "an answer without validators forgets the URL"
        );
    }

    #[test]
    fn a_round_trip_keeps_entries_and_recounts_bytes() {
        let mut c = EtagCache::new();
        put(&mut c, "u", "e", "[1]");
        c.put(
            "v",
            None,
            Some("Wed, 02 Dec 2026 08:00:00 GMT".into()),
            Some("<x>; rel=\"next\"".into()),
            "[2]".into(),
        );
        let text = serde_json::to_string(&c).expect("serializes");
        let back: EtagCache = serde_json::from_str(&text).expect("deserializes");
        assert_eq!(back, c);
        let tampered = r#"{"entries":{"u":{"body":"[]","used":1}},"clock":1}"#;
        let t: EtagCache = serde_json::from_str(tampered).expect("deserializes");
        assert!(t.is_empty(), "an entry without a validator is dropped");
    }
}
