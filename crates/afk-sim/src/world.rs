//! The simulated world: the shared infrastructure plus every remote's state.
//!
//! Lock order, when a handler needs more than one remote's state: github, forgejo, t3,
//! woodpecker, kube, ntfy, slack (the order of the fields).

use std::sync::{Arc, Mutex};

use crate::infra::Sim;
use crate::{forgejo, github, kube, ntfy, slack, t3, woodpecker};

#[derive(Debug, Default)]
pub struct World {
    pub sim: Arc<Sim>,
    pub github: Mutex<github::State>,
    pub forgejo: Mutex<forgejo::State>,
    pub t3: Mutex<t3::State>,
    pub woodpecker: Mutex<woodpecker::State>,
    pub kube: Mutex<kube::State>,
    pub ntfy: Mutex<ntfy::State>,
    pub slack: Mutex<slack::State>,
}

impl World {
    pub fn new(sim: Sim) -> Arc<World> {
        Arc::new(World {
            sim: Arc::new(sim),
            ..World::default()
        })
    }
}
