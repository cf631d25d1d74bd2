//! The GitHub conditional-request cache kept on the workspace volume between ticks, so an
//! unchanged listing or timeline costs a free `304 Not Modified` on every later tick too.
//!
//! Where: `<workspace.root>/afk-cache/github-<key>-<tick>.json`. The folder is afk's alone
//! (created `0700`); the volume is shared with T3, whose agent runs untrusted code as another
//! uid in the same group, and a cache the agent could write would let it forge what afk
//! believes GitHub said (a trusted labelling, say). So a folder or file that is a symlink, is
//! not owned by afk's uid, is writable by group or others, or (a file) has other hard links
//! is refused on load: logged as a warning, and the tick starts with an empty cache.
//!
//! Keyed per identity: GitHub answers differ by who asks (what a token may see, its
//! permissions), so one identity's answers never serve another. `<key>` is a SHA-256 over the
//! API base URL and the configured identity (the bot login, a GitHub App's ids); never over the
//! token, which is neither stored nor hashed. The file holds API answers only (validators,
//! `Link` headers and bodies), never a request header.
//!
//! One file per tick kind: `afk-poll` and `afk-watch` may run at the same time, and each only
//! ever replaces its own file, so neither loses the other's update.
//!
//! Crash safety: a save writes a fresh temporary file in the same folder, fsyncs it, renames it
//! over the cache file and fsyncs the folder, so the file is always one complete save. The
//! first line is a header (format, version, identity key, entry count, SHA-256 of the rest);
//! a missing, truncated, corrupt, foreign or unknown-version file is ignored with a warning and
//! costs only requests, never a decision: an entry is only replayed when GitHub answers `304`
//! to its validator. A temporary file left by a killed tick is never read, and is removed by
//! the next save.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};

use super::etag::EtagCache;

/// The cache folder under the workspace root.
pub const DIR: &str = "afk-cache";
/// The file format's name and version, in every file's header.
const FORMAT: &str = "afk-github-etag-cache";
const VERSION: u32 = 1;
/// Largest file read: the entries' bound plus room for the JSON framing.
const MAX_FILE_BYTES: u64 = (EtagCache::MAX_BYTES as u64) * 2 + 1024 * 1024;
const TMP_MARK: &str = ".tmp-";

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    identity: String,
    entries: usize,
    sha256: String,
}

/// Where one tick kind keeps its cache for one GitHub identity.
#[derive(Debug, Clone)]
pub struct EtagStore {
    dir: PathBuf,
    file: PathBuf,
    identity: String,
}

fn hex_sha256(bytes: &[u8]) -> String {
    digest(&SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why a folder or file is not afk's own: a symlink, another owner, group/other write, or
/// (files) more than one link.
fn refusal(meta: &std::fs::Metadata, is_dir: bool) -> Option<String> {
    let uid = rustix::process::geteuid().as_raw();
    if meta.file_type().is_symlink() {
        return Some("it is a symlink".into());
    }
    if is_dir != meta.is_dir() || (!is_dir && !meta.is_file()) {
        return Some(format!(
            "it is not a {}",
            if is_dir { "folder" } else { "regular file" }
        ));
    }
    if meta.uid() != uid {
        return Some(format!(
            "it is owned by uid {}, not afk's uid {uid}",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "it is writable by group or others (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    if !is_dir && meta.nlink() != 1 {
        return Some(format!("it has {} hard links", meta.nlink()));
    }
    None
}

impl EtagStore {
    /// The store of `tick` (`poll`, `watch`) for the GitHub API at `api_url` as `identity`
    /// (name/value pairs of the configured identity, e.g. `bot_login`; never a secret).
    pub fn new(
        workspace_root: &Path,
        api_url: &str,
        identity: &[(&str, &str)],
        tick: &str,
    ) -> EtagStore {
        let mut parts = vec![("api_url", api_url.trim_end_matches('/'))];
        parts.extend_from_slice(identity);
        let canonical = serde_json::to_string(&parts).unwrap_or_default();
        let identity = hex_sha256(format!("{FORMAT}\n{canonical}").as_bytes());
        let dir = workspace_root.join(DIR);
        let tick: String = tick.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let file = dir.join(format!("github-{}-{tick}.json", &identity[..16]));
        EtagStore {
            dir,
            file,
            identity,
        }
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The saved cache, or an empty one (with a warning saying why, unless there is simply
    /// no file yet). Never fails: a cache that cannot be used costs only requests.
    pub fn load(&self) -> EtagCache {
        match self.read() {
            Ok(Some(cache)) => {
                tracing::debug!(remote = "github", path = %self.file.display(), entries = cache.len(), "conditional-request cache loaded");
                cache
            }
            Ok(None) => EtagCache::new(),
            Err(why) => {
                tracing::warn!(remote = "github", path = %self.file.display(), why = %why, "conditional-request cache ignored; starting empty (this costs only requests)");
                EtagCache::new()
            }
        }
    }

    fn read(&self) -> Result<Option<EtagCache>, String> {
        match std::fs::symlink_metadata(&self.dir) {
            Ok(meta) => {
                if let Some(why) = refusal(&meta, true) {
                    return Err(format!(
                        "the folder {} is refused: {why}",
                        self.dir.display()
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot inspect {}: {e}", self.dir.display())),
        }
        let before = match std::fs::symlink_metadata(&self.file) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot inspect the file: {e}")),
        };
        if let Some(why) = refusal(&before, false) {
            return Err(format!("the file is refused: {why}"));
        }
        let file = File::open(&self.file).map_err(|e| format!("cannot open the file: {e}"))?;
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot inspect the file: {e}"))?;
        if meta.dev() != before.dev() || meta.ino() != before.ino() {
            return Err("the file was replaced while it was opened".into());
        }
        if let Some(why) = refusal(&meta, false) {
            return Err(format!("the file is refused: {why}"));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(format!(
                "the file holds {} bytes, more than a cache can ({MAX_FILE_BYTES})",
                meta.len()
            ));
        }
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read the file: {e}"))?;
        self.decode(&bytes).map(Some)
    }

    fn decode(&self, bytes: &[u8]) -> Result<EtagCache, String> {
        let newline = bytes
            .iter()
            .position(|b| *b == b'\n')
            .ok_or("no header line (a truncated file?)")?;
        let (head, payload) = (&bytes[..newline], &bytes[newline + 1..]);
        let header: Header =
            serde_json::from_slice(head).map_err(|e| format!("the header does not parse ({e})"))?;
        if header.format != FORMAT {
            return Err(format!("not a cache file (format {:?})", header.format));
        }
        if header.version != VERSION {
            return Err(format!(
                "written in format version {}, this afk reads version {VERSION}",
                header.version
            ));
        }
        if header.identity != self.identity {
            return Err(
                "written for another GitHub identity (api_url or account): not used".into(),
            );
        }
        if header.sha256 != hex_sha256(payload) {
            return Err("its checksum does not match (a truncated or corrupt file)".into());
        }
        let cache: EtagCache = serde_json::from_slice(payload)
            .map_err(|e| format!("the entries do not parse ({e})"))?;
        if cache.len() != header.entries {
            return Err(format!(
                "it holds {} usable entries, its header says {}",
                cache.len(),
                header.entries
            ));
        }
        Ok(cache)
    }

    /// Replaces the cache file with `cache`, atomically (temporary file, fsync, rename, folder
    /// fsync). Creates the folder (`0700`) if needed, and refuses to write into one that is
    /// not afk's own. The error says what to check; it costs only requests next tick.
    pub fn save(&self, cache: &EtagCache) -> Result<(), String> {
        self.prepare_dir()?;
        self.remove_leftovers();
        let payload = serde_json::to_vec(cache).map_err(|e| format!("cannot encode: {e}"))?;
        let header = Header {
            format: FORMAT.into(),
            version: VERSION,
            identity: self.identity.clone(),
            entries: cache.len(),
            sha256: hex_sha256(&payload),
        };
        let mut bytes = serde_json::to_vec(&header).map_err(|e| format!("cannot encode: {e}"))?;
        bytes.push(b'\n');
        bytes.extend_from_slice(&payload);
        let tmp = self.tmp_path();
        let written = (|| -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, &self.file)?;
            File::open(&self.dir)?.sync_all()
        })();
        written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!(
                "cannot write {}: {e} (check that afk's uid can write the folder)",
                self.file.display()
            )
        })
    }

    /// Creates the folder `0700`, or checks the one there is afk's own and tightens it to
    /// `0700` (a folder others could write may hold anything: refused, not repaired).
    fn prepare_dir(&self) -> Result<(), String> {
        match std::fs::DirBuilder::new().mode(0o700).create(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(format!(
                    "cannot create {}: {e} (check workspace.root exists and afk's uid can write it)",
                    self.dir.display()
                ));
            }
        }
        let meta = std::fs::symlink_metadata(&self.dir)
            .map_err(|e| format!("cannot inspect {}: {e}", self.dir.display()))?;
        if let Some(why) = refusal(&meta, true) {
            return Err(format!(
                "the folder {} is refused: {why}; remove it and afk recreates it",
                self.dir.display()
            ));
        }
        if meta.mode() & 0o777 != 0o700 {
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot set the mode of {}: {e}", self.dir.display()))?;
        }
        Ok(())
    }

    fn tmp_path(&self) -> PathBuf {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut p = self.file.as_os_str().to_owned();
        p.push(format!("{TMP_MARK}{}-{n}", std::process::id()));
        PathBuf::from(p)
    }

    /// Removes temporary files of this cache file left by a tick that died before its rename.
    fn remove_leftovers(&self) {
        let Some(name) = self.file.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        let prefix = format!("{name}{TMP_MARK}");
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
#[path = "etag_store_tests.rs"]
mod tests;
