//! Clients for every remote afk talks to, one module per remote, plus git workspaces.
//!
//! Wire structs stay private to their module; each client returns afk's own types and a
//! [`error::RemoteError`] that names the remote and the request.

pub mod error;
pub mod forgejo;
pub mod github;
pub mod http;
pub mod kube;
pub mod ntfy;
pub mod slack;
pub mod t3;
pub mod tracker;
pub mod woodpecker;
pub mod workspace;
