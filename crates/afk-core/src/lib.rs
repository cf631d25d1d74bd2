//! afk-core: every decision afk takes, and no I/O.
//!
//! A tick is gather → decide → apply. Adapters gather facts ([`facts`], [`evidence`]); this
//! crate turns them, with the [`config`], the run [`record`] and `now` (always an argument), into
//! a [`plan`] of [`effect`]s; the tick applies them. Nothing here opens a socket or a file or
//! reads a clock (an architecture test keeps it that way).

pub mod applied;
pub mod blockers;
pub mod budget;
pub mod ci;
pub mod claim;
pub mod comment;
pub mod config;
pub mod effect;
pub mod evidence;
pub mod facts;
pub mod housekeeping;
pub mod ids;
pub mod lazy;
pub mod machine;
pub mod model;
pub mod notice;
pub mod plan;
pub mod policy;
pub mod preflight;
pub mod prompt;
pub mod public;
pub mod record;
pub mod report;
pub mod rollout;
pub mod spend;
pub mod vetting;
