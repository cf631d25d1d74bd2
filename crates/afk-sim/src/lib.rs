//! Strict loopback simulators of every remote afk talks to, plus the demo and the bench.
//!
//! Each remote lives in its own module with its own state and router; [`world::World`] holds them
//! all so scripted behaviour can cross remotes (an agent's turn pushing a commit that CI then
//! checks). [`server::start`] serves every remote on its own loopback port, instrumented by
//! [`infra`], plus the `/__sim/*` control endpoints.

pub mod bench;
pub mod demo;
pub mod driver;
pub mod forgejo;
pub mod github;
pub mod infra;
pub mod kube;
pub mod ntfy;
pub mod pushgateway;
pub mod scenario;
pub mod server;
pub mod slack;
pub mod t3;
pub mod woodpecker;
pub mod world;
