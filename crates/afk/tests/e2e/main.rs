//! End-to-end: the built `afk-poll` and `afk-watch` binaries against the simulators.

mod adversarial;
mod crash;
mod harness;
mod lifecycle;
mod operator;
mod safety;
