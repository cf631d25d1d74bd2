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
pub const NOW: &str = "AFK_NOW";
/// Log filter, overriding `-v`/`-q` (standard tracing syntax).
pub const RUST_LOG: &str = "RUST_LOG";
