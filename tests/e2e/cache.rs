//! The GitHub conditional-request cache on the workspace volume, seen from outside: a later
//! poll on an unchanged fleet answers its reads with free `304`s and decides exactly the same;
//! a cache cut at any byte (a tick killed mid-write without the rename), a leftover temporary
//! file, a file others could write, or a file written for another identity costs only
//! requests.

use std::path::{Path, PathBuf};

use afk_remotes::github::EtagStore;
use afk_sim::driver::{Tick, TickOptions, TickRun};
use afk_sim::github::Actor;
use afk_sim::infra::{Remote, RequestRecord, lock};
use afk_sim::scenario::{BOT, MAINTAINER, OUTSIDER};
use serde_json::Value;

use crate::harness::{Harness, plan, sane};

/// The decisions of a plan: what it dispatches, skips (and why), the effects and the errors.
fn decisions(run: &TickRun) -> Value {
    let p = plan(run);
    serde_json::json!({
        "dispatch": p["dispatch"],
        "skipped": p["skipped"],
        "effects": p["effects"],
        "errors": p["errors"],
    })
}

/// GitHub GETs of a log: (answered 304, answered otherwise).
fn github_gets(log: &[RequestRecord]) -> (usize, usize) {
    // `GET /rate_limit` is free (GitHub's docs) and never cached: not a read of the fleet.
    let gets: Vec<_> = log
        .iter()
        .filter(|r| r.remote == Remote::Github && r.method == "GET" && r.path != "/rate_limit")
        .collect();
    let free = gets.iter().filter(|r| r.status == 304).count();
    (free, gets.len() - free)
}

/// "landed" plus issues every poll reads and skips: one labelled by an outsider (events and
/// the labeller's permission read each time) and one blocked by an open issue.
async fn fleet() -> Harness {
    let h = Harness::new("landed").await;
    let (repo, _) = h.repo();
    let now = h.world.sim.now();
    {
        let mut gh = lock(&h.world.github);
        let untrusted = gh
            .add_issue(&repo, "Untrusted", Some("do it"), MAINTAINER, false, now)
            .expect("issue");
        gh.label_issue(
            &repo,
            untrusted,
            "ready-for-agent",
            Actor::user(OUTSIDER),
            now,
        )
        .expect("label");
        let tracking = gh
            .add_issue(&repo, "Tracking", None, MAINTAINER, false, now)
            .expect("issue");
        let blocked = gh
            .add_issue(
                &repo,
                "Blocked",
                Some(&format!("Blocked by #{tracking}")),
                MAINTAINER,
                false,
                now,
            )
            .expect("issue");
        gh.label_issue(
            &repo,
            blocked,
            "ready-for-agent",
            Actor::user(MAINTAINER),
            now,
        )
        .expect("label");
    }
    h
}

/// One poll; its log and its run.
async fn poll(h: &Harness, opts: TickOptions) -> (TickRun, Vec<RequestRecord>) {
    let mark = h.world.sim.log_len();
    let run = h.tick_with(Tick::Poll, opts).await;
    sane(&run);
    (run, h.requests()[mark..].to_vec())
}

fn cache_dir(h: &Harness) -> PathBuf {
    h.setup.dir.join("workspace").join("afk-cache")
}

/// The poll's cache for an identity.
fn store(h: &Harness, login: &str) -> EtagStore {
    EtagStore::new(
        &h.setup.dir.join("workspace"),
        &h.url(Remote::Github),
        &[("bot_login", login)],
        "poll",
    )
}

/// The poll's cache file for an identity.
fn poll_cache(h: &Harness, login: &str) -> PathBuf {
    store(h, login).path().to_path_buf()
}

/// A fleet whose first poll dispatched #1 and whose second saw the result: nothing changes
/// from here on while the clock stands still.
async fn settled() -> (Harness, TickRun) {
    let h = fleet().await;
    let (first, _) = poll(&h, TickOptions::default()).await;
    assert_eq!(crate::harness::dispatched(plan(&first)), vec![1]);
    let (second, _) = poll(&h, TickOptions::default()).await;
    (h, second)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_later_poll_on_an_unchanged_fleet_reads_free_304s_and_decides_the_same() {
    let (h, _) = settled().await;
    let file = poll_cache(&h, BOT);
    assert!(
        file.exists(),
        "the poll saved its cache at {}",
        file.display()
    );

    let (warm, warm_log) = poll(&h, TickOptions::default()).await;
    let (free, costed) = github_gets(&warm_log);
    // The repo is busy with #1, so a scheduled poll reads only its two listings (lazy
    // vetting); both are free.
    assert!(free >= 2, "both listings answered 304: {free}");
    assert_eq!(costed, 0, "every GitHub GET of an unchanged fleet is a 304");
    eprintln!("warm poll: {free} GitHub GETs answered 304, {costed} at full cost");

    // The same tick without the cache: every read at full cost, the same decisions.
    std::fs::remove_dir_all(cache_dir(&h)).expect("removes the cache");
    let (cold, cold_log) = poll(&h, TickOptions::default()).await;
    assert_eq!(github_gets(&cold_log), (0, free + costed));
    assert_eq!(decisions(&warm), decisions(&cold));

    // A dry run reads the cache and writes nothing, this file included.
    let saved = std::fs::read(&file).expect("the cold poll saved again");
    for secret in crate::harness::SECRETS {
        assert!(
            !String::from_utf8_lossy(&saved).contains(secret),
            "the cache holds a secret"
        );
    }
    std::fs::remove_file(&file).expect("removes");
    let dry = TickOptions {
        dry_run: true,
        ..TickOptions::default()
    };
    let (_, dry_log) = poll(&h, dry.clone()).await;
    assert_eq!(github_gets(&dry_log).0, 0, "no cache file: no 304");
    assert!(!file.exists(), "a dry run saved no cache");
    std::fs::write(&file, &saved).expect("restores");
    let (_, dry_log) = poll(&h, dry).await;
    // The listings come from the cache; a dry run also reads every issue's deep facts, which
    // the scheduled polls never cached (lazy vetting), at full cost.
    assert_eq!(github_gets(&dry_log).0, free, "a dry run reads the cache");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cache_cut_at_any_byte_costs_requests_and_never_changes_a_decision() {
    let (h, _) = settled().await;
    let file = poll_cache(&h, BOT);
    let whole = std::fs::read(&file).expect("the saved cache");
    let (baseline, log) = poll(&h, TickOptions::default()).await;
    let (free, _) = github_gets(&log);
    assert!(free > 0);
    // Cut points across the header, the entries and the very end.
    let mut cuts: Vec<usize> = (0..16).map(|i| i * whole.len() / 16).collect();
    cuts.extend([1, 40, whole.len() - 1]);
    if let Some(nl) = whole.iter().position(|b| *b == b'\n') {
        cuts.extend([nl, nl + 1, nl + 2]);
    }
    for cut in cuts {
        std::fs::write(&file, &whole[..cut]).expect("cuts the file");
        let (run, log) = poll(&h, TickOptions::default()).await;
        assert_eq!(
            decisions(&run),
            decisions(&baseline),
            "cut at {cut} of {}",
            whole.len()
        );
        assert_eq!(
            github_gets(&log).0,
            0,
            "cut at {cut}: nothing of it was used"
        );
        assert_eq!(
            store(&h, BOT).load().len(),
            free,
            "cut at {cut}: the tick saved a whole cache again, one entry per read"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn leftovers_foreign_files_and_loose_modes_cost_only_requests() {
    use std::os::unix::fs::PermissionsExt;
    let (h, baseline) = settled().await;
    let file = poll_cache(&h, BOT);

    // A temporary file of a tick killed before its rename: never read, removed by the save.
    let mut tmp = file.clone().into_os_string();
    tmp.push(".tmp-4242-0");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, &std::fs::read(&file).expect("reads")[..100]).expect("writes");
    let (run, log) = poll(&h, TickOptions::default()).await;
    assert_eq!(decisions(&run), decisions(&baseline));
    assert!(github_gets(&log).0 > 0, "the complete file is used");
    assert!(!tmp.exists(), "the leftover was removed");

    // A file others could write (T3's agent shares the group) is refused, with a warning.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).expect("chmod");
    let (run, log) = poll(&h, TickOptions::default()).await;
    assert_eq!(decisions(&run), decisions(&baseline));
    assert_eq!(github_gets(&log).0, 0, "a group-writable cache is not used");
    assert!(
        run.stderr.contains("conditional-request cache ignored")
            && run.stderr.contains("writable by group"),
        "{}",
        run.stderr
    );

    // A symlink planted in place of the file is refused too.
    let planted = h.setup.dir.join("planted.json");
    std::fs::rename(&file, &planted).expect("moves");
    std::os::unix::fs::symlink(&planted, &file).expect("symlink");
    let (_, log) = poll(&h, TickOptions::default()).await;
    assert_eq!(github_gets(&log).0, 0, "a symlinked cache is not used");
    assert!(
        !std::fs::symlink_metadata(&file)
            .expect("a file")
            .file_type()
            .is_symlink(),
        "the save replaced the symlink, never wrote through it"
    );

    // The cache of afk's identity, under another identity's name: not used.
    let other = "another-bot";
    let config = std::fs::read_to_string(&h.setup.config_path).expect("config");
    let other_config = h.setup.dir.join("other-identity.toml");
    std::fs::write(
        &other_config,
        config.replace(
            &format!("bot_login = \"{BOT}\""),
            &format!("bot_login = \"{other}\""),
        ),
    )
    .expect("writes");
    let foreign = poll_cache(&h, other);
    assert_ne!(foreign, file);
    std::fs::copy(&file, &foreign).expect("copies");
    let (run, log) = poll_with_config(&h, &other_config, TickOptions::default()).await;
    assert_eq!(
        github_gets(&log).0,
        0,
        "a cache written for {BOT} is not used as {other}"
    );
    assert!(
        run.stderr.contains("another GitHub identity"),
        "{}",
        run.stderr
    );
}

/// One poll with another config file.
async fn poll_with_config(
    h: &Harness,
    config: &Path,
    opts: TickOptions,
) -> (TickRun, Vec<RequestRecord>) {
    let mark = h.world.sim.log_len();
    let run = afk_sim::driver::run_tick(
        &h.bins,
        Tick::Poll,
        config,
        h.world.sim.now(),
        &TickOptions { json: true, ..opts },
    )
    .await
    .expect("tick runs");
    sane(&run);
    (run, h.requests()[mark..].to_vec())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quiet_watch_reads_free_304s_from_its_own_cache() {
    let (h, _) = settled().await;
    let mark = h.world.sim.log_len();
    let first = h.tick(Tick::Watch).await;
    sane(&first);
    let mid = h.world.sim.log_len();
    let quiet = h.tick(Tick::Watch).await;
    sane(&quiet);
    let log = h.requests();
    let (free_first, _) = github_gets(&log[mark..mid]);
    let (free, costed) = github_gets(&log[mid..]);
    assert_eq!(
        free_first, 0,
        "the watch keeps its own file: nothing cached yet"
    );
    assert!(free > 0, "the quiet watch revalidated its reads");
    assert_eq!(costed, 0, "nothing changed, so nothing cost rate limit");
    assert_eq!(decisions(&first), decisions(&quiet));
    eprintln!("quiet watch: {free} GitHub GETs answered 304, {costed} at full cost");
}
