//! Architecture invariants, checked on the source text (the way rust-analyzer's `tidy` test
//! reads its own tree): no module cycles inside `crates/afk` and the two ticks are leaves;
//! afk-core's sources and dependencies do no I/O and read no clock; every effect kind appears
//! in the plan, in its text and its JSON rendering.
//!
//! Each check runs on the real tree, and on small synthetic inputs that break it, so a check
//! that could no longer fail is seen failing here first.

mod core_io;
mod modules;
mod plan;
mod source;
