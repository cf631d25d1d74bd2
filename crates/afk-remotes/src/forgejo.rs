//! The Forgejo tracker and CI client.

/// Forgejo client (transport, auth, the operations afk needs).
#[derive(Debug, Clone)]
pub struct Forgejo {}
