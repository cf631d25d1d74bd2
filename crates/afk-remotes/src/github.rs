//! The GitHub tracker and CI client.

/// GitHub client (transport, auth, the operations afk needs).
#[derive(Debug, Clone)]
pub struct GitHub {}
