//! Runs the real `afk-poll` / `afk-watch` binaries against the simulators, with the tick's clock
//! pinned to the simulated one. Shared by the demo, the bench and the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::infra::Sim;

/// Where the two binaries are.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub poll: PathBuf,
    pub watch: PathBuf,
}

impl Binaries {
    /// The two binaries in `dir` (they may not exist).
    pub fn in_dir(dir: &Path) -> Binaries {
        Binaries {
            poll: dir.join(format!("afk-poll{}", std::env::consts::EXE_SUFFIX)),
            watch: dir.join(format!("afk-watch{}", std::env::consts::EXE_SUFFIX)),
        }
    }

    fn exist(&self) -> bool {
        self.poll.is_file() && self.watch.is_file()
    }

    /// Finds the binaries for this executable. Run from a cargo target folder of the source
    /// tree (`cargo run -p afk-sim`, tests), they are built with cargo into the same folder
    /// first (always in a debug build, so the demo never runs stale binaries; in a release
    /// build only when missing). Installed (`cargo install`), they are looked for next to
    /// afk-sim, then on `PATH`.
    pub fn beside_current_exe() -> anyhow::Result<Binaries> {
        let exe = std::env::current_exe().context("cannot find the afk-sim executable")?;
        let dir = exe
            .parent()
            .map(Path::to_path_buf)
            .context("the afk-sim executable has no directory")?;
        // Test binaries live in target/<profile>/deps.
        let dir = if dir.ends_with("deps") {
            dir.parent().map(Path::to_path_buf).unwrap_or(dir)
        } else {
            dir
        };
        let beside = Binaries::in_dir(&dir);
        if let Some(manifest) = source_tree_manifest(&dir)
            && (cfg!(debug_assertions) || !beside.exist())
        {
            build_with_cargo(&manifest, &dir)?;
        }
        Binaries::find(&dir, std::env::var_os("PATH").as_deref())
    }

    /// The binaries next to `beside`, else in the first `PATH` folder holding both.
    pub fn find(beside: &Path, path: Option<&std::ffi::OsStr>) -> anyhow::Result<Binaries> {
        let here = Binaries::in_dir(beside);
        if here.exist() {
            return Ok(here);
        }
        if let Some(path) = path {
            for dir in std::env::split_paths(path) {
                let there = Binaries::in_dir(&dir);
                if there.exist() {
                    return Ok(there);
                }
            }
        }
        bail!(
            "cannot find afk-poll and afk-watch next to afk-sim ({}) or on PATH: install them \
             beside afk-sim with `cargo install --locked --path crates/afk` from the afk source \
             tree, or add the folder that holds them to PATH",
            beside.display()
        )
    }

    pub fn of(&self, tick: Tick) -> &Path {
        match tick {
            Tick::Poll => &self.poll,
            Tick::Watch => &self.watch,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    Poll,
    Watch,
}

impl Tick {
    pub fn name(self) -> &'static str {
        match self {
            Tick::Poll => "afk-poll",
            Tick::Watch => "afk-watch",
        }
    }
}

/// The workspace's `Cargo.toml` when `exe_dir` is a profile folder (`debug`, `release`) of a
/// cargo target folder and the source tree this afk-sim was built from is still there.
fn source_tree_manifest(exe_dir: &Path) -> Option<PathBuf> {
    let profile = exe_dir.file_name()?.to_str()?;
    if !matches!(profile, "debug" | "release") {
        return None;
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    manifest.is_file().then_some(manifest)
}

/// `cargo build` of afk-poll and afk-watch into the target folder holding `exe_dir`.
fn build_with_cargo(manifest: &Path, exe_dir: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "afk", "--bins", "--manifest-path"])
        .arg(manifest);
    if let Some(target) = exe_dir.parent() {
        cmd.arg("--target-dir").arg(target);
    }
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .context("cannot run cargo to build afk-poll and afk-watch")?;
    if !status.success() {
        bail!("building afk-poll and afk-watch failed ({status})");
    }
    Ok(())
}

/// How to run one tick.
#[derive(Debug, Clone, Default)]
pub struct TickOptions {
    pub dry_run: bool,
    /// `--output json` (the plan is then parsed into [`TickRun::plan`]).
    pub json: bool,
    /// Request concurrency (`--concurrency`); `None` = afk's default.
    pub concurrency: Option<u16>,
    /// Extra environment (e.g. `AFK_KILL_SWITCH`).
    pub env: Vec<(String, String)>,
    /// Kill the tick after this long.
    pub kill_after: Option<Duration>,
    /// Kill the tick as soon as the simulators hold one of its requests (a `Hold` fault): the
    /// crash sweep's "die right after the previous request".
    pub kill_when_held: Option<Arc<Sim>>,
    /// Measure the tick's peak resident memory ([`TickRun::peak_rss_kib`]). The tick then runs
    /// under GNU `time` (`/usr/bin/time -f %M`), which waits for it with `wait4` and reports
    /// the child's own `ru_maxrss`; ignored when a kill option is set (killing the wrapper
    /// would leave the tick running) or when `/usr/bin/time` is missing.
    pub measure_rss: bool,
}

/// GNU `time`, used to read a tick's peak resident memory.
const TIME: &str = "/usr/bin/time";

/// What one tick did.
#[derive(Debug, Clone)]
pub struct TickRun {
    pub tick: Tick,
    /// `None` when the tick was killed.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub plan: Option<Value>,
    pub wall: Duration,
    /// Peak resident memory of the tick process, when the platform reports it.
    pub peak_rss_kib: Option<u64>,
}

/// The environment of a binary run against the simulators: the clock pinned to the simulated
/// one (honoured only under the simulation opt-in and outside Kubernetes), and nothing from the
/// caller's environment that would change what the run does (gates, config, output, dry run).
pub fn simulation_env(
    cmd: &mut tokio::process::Command,
    now: chrono::DateTime<chrono::Utc>,
) -> &mut tokio::process::Command {
    cmd.env("AFK_NOW", now.to_rfc3339())
        .env("AFK_SIMULATION", "1")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("AFK_KILL_SWITCH")
        .env_remove("AFK_ALLOWLIST")
        .env_remove("AFK_CONFIG")
        .env_remove("AFK_OUTPUT")
        .env_remove("AFK_DRY_RUN")
        .env_remove("AFK_INERT")
        .env_remove("RUST_LOG")
        .env("KUBECONFIG", "/nonexistent/afk-sim-kubeconfig")
}

/// Runs one tick to completion (or until `kill_after`).
pub async fn run_tick(
    bins: &Binaries,
    tick: Tick,
    config: &Path,
    now: chrono::DateTime<chrono::Utc>,
    opts: &TickOptions,
) -> anyhow::Result<TickRun> {
    let rss_file = if opts.measure_rss
        && opts.kill_after.is_none()
        && opts.kill_when_held.is_none()
        && Path::new(TIME).exists()
    {
        Some(tempfile::NamedTempFile::new().context("cannot create a file for the peak RSS")?)
    } else {
        None
    };
    let mut cmd = match &rss_file {
        Some(f) => {
            let mut c = tokio::process::Command::new(TIME);
            c.args(["-f", "%M", "-o"]).arg(f.path()).arg(bins.of(tick));
            c
        }
        None => tokio::process::Command::new(bins.of(tick)),
    };
    cmd.arg("--config").arg(config);
    cmd.args(["--log-format", "json"]);
    if opts.dry_run {
        cmd.arg("--dry-run");
    }
    cmd.args(["--output", if opts.json { "json" } else { "text" }]);
    if let Some(c) = opts.concurrency {
        cmd.args(["--concurrency", &c.to_string()]);
    }
    simulation_env(&mut cmd, now)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", bins.of(tick).display()))?;
    let deadline = opts.kill_after.map(|d| started + d);
    let held = opts.kill_when_held.clone();
    let mark = held.as_ref().map_or(0, |sim| sim.log_len());
    let wait = child.wait_with_output();
    tokio::pin!(wait);
    let output = loop {
        tokio::select! {
            out = &mut wait => break Some(out?),
            () = tokio::time::sleep(Duration::from_millis(5)) => {
                let expired = deadline.is_some_and(|d| Instant::now() >= d);
                let was_held = held.as_ref().is_some_and(|sim| sim.held_since(mark));
                if expired || was_held {
                    // Dropping the wait kills the child (kill_on_drop).
                    break None;
                }
            }
        }
    };
    let wall = started.elapsed();
    let Some(output) = output else {
        return Ok(TickRun {
            tick,
            code: None,
            stdout: String::new(),
            stderr: String::new(),
            plan: None,
            wall,
            peak_rss_kib: None,
        });
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let plan = if opts.json {
        serde_json::from_str(&stdout).ok()
    } else {
        None
    };
    Ok(TickRun {
        tick,
        code: output.status.code(),
        stdout,
        stderr,
        plan,
        wall,
        peak_rss_kib: rss_file.as_ref().and_then(|f| read_peak_rss(f.path())),
    })
}

/// The last line GNU `time -f %M` wrote: the peak resident set in KiB.
fn read_peak_rss(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().rev().find_map(|l| l.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path) {
        for b in ["afk-poll", "afk-watch"] {
            std::fs::write(dir.join(format!("{b}{}", std::env::consts::EXE_SUFFIX)), "")
                .expect("write");
        }
    }

    #[test]
    fn binaries_are_found_beside_then_on_path_else_named_in_the_error() {
        let beside = tempfile::tempdir().expect("tempdir");
        let on_path = tempfile::tempdir().expect("tempdir");
        let empty = tempfile::tempdir().expect("tempdir");
        let path = std::env::join_paths([empty.path(), on_path.path()]).expect("a PATH value");

        let err = Binaries::find(beside.path(), Some(&path)).expect_err("nowhere yet");
        let msg = err.to_string();
        assert!(
            msg.contains("cargo install --locked --path crates/afk"),
            "{msg}"
        );
        assert!(msg.contains("PATH"), "{msg}");

        touch(on_path.path());
        let found = Binaries::find(beside.path(), Some(&path)).expect("on PATH");
        assert_eq!(found.poll, Binaries::in_dir(on_path.path()).poll);

        touch(beside.path());
        let found = Binaries::find(beside.path(), Some(&path)).expect("beside");
        assert_eq!(found.watch, Binaries::in_dir(beside.path()).watch);
        assert!(Binaries::find(beside.path(), None).is_ok());
    }

    #[test]
    fn only_a_cargo_profile_folder_is_built_into() {
        assert!(source_tree_manifest(Path::new("/usr/local/bin")).is_none());
        assert!(source_tree_manifest(Path::new("/home/me/.cargo/bin")).is_none());
    }
}
