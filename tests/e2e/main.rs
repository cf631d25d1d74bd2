//! End-to-end: the built `afk-poll` and `afk-watch` binaries against the simulators.

mod adversarial;
mod adversarial_hardening;
mod adversarial_isolation;
mod adversarial_vetting;
mod budget;
mod cache;
mod crash;
mod github_app;
mod harness;
mod housekeeping;
mod lifecycle;
mod operator;
mod operator_views;
mod safety;
mod t3_outage;
mod wire_forges;
