//! Simulator of the woodpecker remote (see shared remotes facts); strict about request shapes.

use std::sync::Arc;

use axum::Router;

use crate::world::World;

/// Everything this simulated remote knows.
#[derive(Debug, Default)]
pub struct State {}

/// The remote's API as afk sees it.
pub fn router(_world: Arc<World>) -> Router {
    Router::new()
}

/// Test and scenario control endpoints under `/__sim/woodpecker/`.
pub fn control(_world: Arc<World>) -> Router {
    Router::new()
}
