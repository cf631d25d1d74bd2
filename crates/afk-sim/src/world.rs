//! The simulated world: the shared infrastructure plus every remote's state, and actions
//! scheduled on the simulated clock (CI finishing some minutes after a push, a rollout starting
//! once CI is green).
//!
//! Lock order, when a handler needs more than one remote's state: github, forgejo, t3,
//! woodpecker, kube, ntfy, slack, pushgateway (the order of the fields). Scheduled actions run with no lock
//! held.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::infra::{Sim, lock};
use crate::{forgejo, github, kube, ntfy, pushgateway, slack, t3, woodpecker};

/// Scenario code to run once the simulated clock reaches a time.
pub type Action = Box<dyn FnOnce(&World) + Send>;

#[derive(Default)]
pub struct World {
    pub sim: Arc<Sim>,
    pub github: Mutex<github::State>,
    pub forgejo: Mutex<forgejo::State>,
    pub t3: Mutex<t3::State>,
    pub woodpecker: Mutex<woodpecker::State>,
    pub kube: Mutex<kube::State>,
    pub ntfy: Mutex<ntfy::State>,
    pub slack: Mutex<slack::State>,
    pub pushgateway: Mutex<pushgateway::State>,
    scheduled: Mutex<Vec<(DateTime<Utc>, u64, Action)>>,
    next_action: Mutex<u64>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("now", &self.sim.now())
            .finish_non_exhaustive()
    }
}

impl World {
    pub fn new(sim: Sim) -> Arc<World> {
        Arc::new(World {
            sim: Arc::new(sim),
            ..World::default()
        })
    }

    /// Runs `action` once the simulated clock reaches `at` (checked before every request).
    pub fn schedule(&self, at: DateTime<Utc>, action: Action) {
        let mut n = lock(&self.next_action);
        *n += 1;
        lock(&self.scheduled).push((at, *n, action));
    }

    /// Runs every action that is due, oldest first (actions may schedule more).
    pub fn run_due(&self) {
        loop {
            let now = self.sim.now();
            let next = {
                let mut queue = lock(&self.scheduled);
                let due = queue
                    .iter()
                    .enumerate()
                    .filter(|(_, (at, _, _))| *at <= now)
                    .min_by_key(|(_, (at, seq, _))| (*at, *seq))
                    .map(|(i, _)| i);
                due.map(|i| queue.remove(i))
            };
            match next {
                Some((_, _, action)) => action(self),
                None => return,
            }
        }
    }
}
