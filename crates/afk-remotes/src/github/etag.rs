//! The ETag cache behind GitHub conditional requests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Remembered GET answers by URL, so a repeated read can send `If-None-Match` and take a
/// `304 Not Modified` (which costs no primary rate limit) as "unchanged". Serializable so a
/// tick can persist it between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtagCache {
    entries: BTreeMap<String, CachedPage>,
    /// Use counter for least-recently-used eviction.
    #[serde(default)]
    clock: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CachedPage {
    etag: String,
    #[serde(default)]
    link: Option<String>,
    body: String,
    #[serde(default)]
    used: u64,
}

impl EtagCache {
    /// Entries kept at most; the least recently used go first.
    pub const MAX_ENTRIES: usize = 4096;

    pub fn new() -> EtagCache {
        EtagCache::default()
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn etag(&self, url: &str) -> Option<String> {
        self.entries.get(url).map(|e| e.etag.clone())
    }

    pub(super) fn take(&mut self, url: &str) -> Option<(String, Option<String>)> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(url).map(|e| {
            e.used = clock;
            (e.body.clone(), e.link.clone())
        })
    }

    pub(super) fn put(&mut self, url: &str, etag: String, link: Option<String>, body: String) {
        self.clock += 1;
        self.entries.insert(
            url.to_owned(),
            CachedPage {
                etag,
                link,
                body,
                used: self.clock,
            },
        );
        while self.entries.len() > Self::MAX_ENTRIES {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.entries.remove(&k),
                None => break,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_evicts_the_least_recently_used() {
        let mut c = EtagCache::new();
        for i in 0..EtagCache::MAX_ENTRIES {
            c.put(&format!("u{i}"), format!("e{i}"), None, "[]".into());
        }
        assert!(
            c.take("u0").is_some(),
            "u0 is used again, so u1 is now the oldest"
        );
        c.put("new", "e".into(), None, "[]".into());
        assert_eq!(c.len(), EtagCache::MAX_ENTRIES);
        assert_eq!(c.etag("u0").as_deref(), Some("e0"));
        assert!(c.etag("u1").is_none());
        assert!(c.etag("new").is_some());
    }
}
