//! Every environment variable afk reads, in one place.

/// Path of the TOML config (same as `--config`).
pub const CONFIG: &str = "AFK_CONFIG";
/// `true` or `false` (same as `--dry-run`): a Job created from a CronJob can be made a dry run.
pub const DRY_RUN: &str = "AFK_DRY_RUN";
/// `true` or `false` (same as `--inert`): run without a config file, on purpose.
pub const INERT: &str = "AFK_INERT";
/// `text` or `json` (same as `--output`).
pub const OUTPUT: &str = "AFK_OUTPUT";
/// `json` or `text` (same as `--log-format`).
pub const LOG_FORMAT: &str = "AFK_LOG_FORMAT";
/// Overrides the kill switch (see afk-core config).
pub const KILL_SWITCH: &str = afk_core::config::ENV_KILL_SWITCH;
/// Overrides the allowlist (see afk-core config).
pub const ALLOWLIST: &str = afk_core::config::ENV_ALLOWLIST;
/// Requests in flight at once per tick (same as `--concurrency`); 1 = sequential.
pub const CONCURRENCY: &str = "AFK_CONCURRENCY";
/// Pins the tick's clock to an RFC 3339 instant. For simulation and replay only: the
/// simulators' clock stands still until advanced, and the ticks must agree with it.
///
/// A pinned clock decides what is stale, what times out and which needs-human worktree may be
/// evicted, so it is honoured only under an explicit opt-in a deployment cannot set by
/// accident: [`SIMULATION`] must be exactly `1` and [`KUBERNETES_SERVICE_HOST`] must be unset
/// (every pod has it). Otherwise a set `AFK_NOW` is a usage error (exit 2, nothing done). When
/// honoured, the tick logs a warning and the plan shows the pinned instant (`pinned_now`).
pub const NOW: &str = "AFK_NOW";
/// `1` = this process runs against the simulators; the only way [`NOW`] is honoured.
pub const SIMULATION: &str = "AFK_SIMULATION";
/// Set by Kubernetes in every container: a pinned clock is refused when it is present.
pub const KUBERNETES_SERVICE_HOST: &str = "KUBERNETES_SERVICE_HOST";
/// Log filter, overriding `-v`/`-q` (standard tracing syntax).
pub const RUST_LOG: &str = "RUST_LOG";
