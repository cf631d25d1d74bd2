//! Tests of the persisted conditional-request cache: real files, modes, symlinks and links.

use std::os::unix::fs::PermissionsExt;

use super::*;

fn store(root: &Path, login: &str) -> EtagStore {
    EtagStore::new(
        root,
        "https://api.github.com",
        &[("bot_login", login)],
        "poll",
    )
}

fn filled() -> EtagCache {
    let mut c = EtagCache::new();
    for i in 0..20 {
        c.put(
            &format!("https://api.github.com/repos/o/r/issues?page={i}"),
            Some(format!("W/\"{i:016x}\"")),
            None,
            Some("<https://api.github.com/x?page=2>; rel=\"next\"".into()),
            format!("[{{\"number\":{i},\"title\":\"t\"}}]"),
        );
    }
    c
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn a_saved_cache_loads_back_from_an_afk_only_folder() {
    let root = tempfile::tempdir().expect("tempdir");
    let s = store(root.path(), "afk-bot");
    assert!(s.load().is_empty(), "no folder yet: empty");
    let c = filled();
    s.save(&c).expect("saves");
    assert_eq!(s.load(), c);
    assert_eq!(mode(&root.path().join(DIR)), 0o700);
    assert_eq!(mode(s.path()), 0o600);
    let text = std::fs::read_to_string(s.path()).expect("reads");
    assert!(text.starts_with("{\"format\":\"afk-github-etag-cache\",\"version\":1,"));
    s.save(&EtagCache::new()).expect("saves again");
    assert!(s.load().is_empty(), "a save replaces the file");
}

#[test]
fn every_truncation_and_a_flipped_byte_load_as_empty() {
    let root = tempfile::tempdir().expect("tempdir");
    let s = store(root.path(), "afk-bot");
    s.save(&filled()).expect("saves");
    let whole = std::fs::read(s.path()).expect("reads");
    for cut in 0..whole.len() {
        std::fs::write(s.path(), &whole[..cut]).expect("writes");
        assert!(s.load().is_empty(), "truncated at {cut} of {}", whole.len());
    }
    let mut flipped = whole.clone();
    let at = whole.len() - 10;
    flipped[at] ^= 0x01;
    std::fs::write(s.path(), &flipped).expect("writes");
    assert!(s.load().is_empty(), "a flipped byte fails the checksum");
    std::fs::write(s.path(), &whole).expect("writes");
    assert_eq!(s.load(), filled(), "the whole file loads");
}

#[test]
fn an_unknown_version_or_format_is_ignored() {
    let root = tempfile::tempdir().expect("tempdir");
    let s = store(root.path(), "afk-bot");
    s.save(&filled()).expect("saves");
    let text = std::fs::read_to_string(s.path()).expect("reads");
    std::fs::write(s.path(), text.replacen("\"version\":1", "\"version\":2", 1)).expect("w");
    assert!(s.load().is_empty());
    std::fs::write(s.path(), text.replacen(FORMAT, "something-else", 1)).expect("w");
    assert!(s.load().is_empty());
    std::fs::write(s.path(), "not json at all\n{}").expect("w");
    assert!(s.load().is_empty());
}

#[test]
fn another_identity_neither_shares_the_file_nor_reads_it() {
    let root = tempfile::tempdir().expect("tempdir");
    let mine = store(root.path(), "afk-bot");
    let theirs = store(root.path(), "other-bot");
    let enterprise = EtagStore::new(
        root.path(),
        "https://ghe.example/api/v3",
        &[("bot_login", "afk-bot")],
        "poll",
    );
    let watch = EtagStore::new(
        root.path(),
        "https://api.github.com",
        &[("bot_login", "afk-bot")],
        "watch",
    );
    assert_ne!(mine.path(), theirs.path());
    assert_ne!(mine.path(), enterprise.path());
    assert_ne!(
        mine.path(),
        watch.path(),
        "poll and watch keep separate files"
    );
    mine.save(&filled()).expect("saves");
    std::fs::copy(mine.path(), theirs.path()).expect("copies");
    chmod(theirs.path(), 0o600);
    assert!(
        theirs.load().is_empty(),
        "written for afk-bot, not other-bot"
    );
    assert!(!mine.load().is_empty());
}

#[test]
fn files_and_folders_others_could_write_are_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let s = store(root.path(), "afk-bot");
    let dir = root.path().join(DIR);
    s.save(&filled()).expect("saves");

    chmod(s.path(), 0o620);
    assert!(s.load().is_empty(), "a group-writable file is refused");
    chmod(s.path(), 0o602);
    assert!(s.load().is_empty(), "an other-writable file is refused");
    chmod(s.path(), 0o644);
    assert!(
        !s.load().is_empty(),
        "readable by others is not a forgery risk"
    );

    chmod(&dir, 0o770);
    assert!(s.load().is_empty(), "a group-writable folder is refused");
    assert!(s.save(&filled()).is_err(), "and not written into");
    chmod(&dir, 0o755);
    assert!(!s.load().is_empty());
    s.save(&filled()).expect("saves");
    assert_eq!(mode(&dir), 0o700, "a save tightens afk's own folder");
}

#[test]
fn symlinks_and_hard_links_are_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let s = store(root.path(), "afk-bot");
    s.save(&filled()).expect("saves");
    let elsewhere = root.path().join("elsewhere.json");
    std::fs::rename(s.path(), &elsewhere).expect("moves");
    std::os::unix::fs::symlink(&elsewhere, s.path()).expect("symlink");
    assert!(s.load().is_empty(), "a symlinked file is refused");
    std::fs::remove_file(s.path()).expect("rm");

    std::fs::hard_link(&elsewhere, s.path()).expect("hard link");
    assert!(
        s.load().is_empty(),
        "a file with another hard link is refused"
    );
    std::fs::remove_file(&elsewhere).expect("rm");
    assert!(!s.load().is_empty(), "one link left: afk's own file again");

    let dir = root.path().join(DIR);
    let real = root.path().join("real-dir");
    std::fs::rename(&dir, &real).expect("moves");
    std::os::unix::fs::symlink(&real, &dir).expect("symlink");
    assert!(s.load().is_empty(), "a symlinked folder is refused");
    assert!(s.save(&filled()).is_err(), "and not written through");
}

#[test]
fn a_file_owned_by_another_uid_is_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let s = store(root.path(), "afk-bot");
    s.save(&filled()).expect("saves");
    let me = rustix::process::geteuid().as_raw();
    if me == 0 {
        // As root: hand the real file to another uid, as T3's agent would own one it planted.
        std::os::unix::fs::chown(s.path(), Some(65533), None).expect("chown");
        assert!(s.load().is_empty(), "a file of uid 65533 is refused");
        std::os::unix::fs::chown(s.path(), Some(0), None).expect("chown");
        assert!(!s.load().is_empty());
        std::os::unix::fs::chown(root.path().join(DIR), Some(65533), None).expect("chown");
        assert!(s.load().is_empty(), "a folder of uid 65533 is refused");
    } else {
        // Not root: a root-owned regular file stands for another uid's.
        let meta = std::fs::symlink_metadata("/etc/passwd").expect("a root-owned file");
        let why = refusal(&meta, false).expect("refused");
        assert!(why.contains("owned by uid 0"), "{why}");
    }
}

#[test]
fn a_leftover_temporary_file_is_never_read_and_is_removed_by_the_next_save() {
    let root = tempfile::tempdir().expect("tempdir");
    let s = store(root.path(), "afk-bot");
    s.save(&filled()).expect("saves");
    let mut tmp = s.path().as_os_str().to_owned();
    tmp.push(".tmp-4242-0");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, b"{\"half\":").expect("writes");
    assert_eq!(s.load(), filled(), "the complete file is what loads");
    s.save(&EtagCache::new()).expect("saves");
    assert!(!tmp.exists(), "the leftover is gone");
}
