//! Serves every simulated remote on its own loopback port, plus the control endpoints.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::infra::{Remote, control_router, instrument};
use crate::world::World;
use crate::{forgejo, github, kube, ntfy, pushgateway, slack, t3, woodpecker};

/// The simulators, listening.
pub struct Running {
    pub world: Arc<World>,
    /// Base URL of the `/__sim/*` control endpoints, e.g. `http://127.0.0.1:41234`.
    pub control_url: String,
    /// Base URL of each remote (no trailing slash).
    pub urls: BTreeMap<Remote, String>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    pub fn url(&self, remote: Remote) -> &str {
        self.urls.get(&remote).map(String::as_str).unwrap_or("")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn remote_router(world: &Arc<World>, remote: Remote) -> Router {
    let w = world.clone();
    match remote {
        Remote::Github => github::router(w),
        Remote::Forgejo => forgejo::router(w),
        Remote::T3 => t3::router(w),
        Remote::Woodpecker => woodpecker::router(w),
        Remote::Kube => kube::router(w),
        Remote::Ntfy => ntfy::router(w),
        Remote::Slack => slack::router(w),
        Remote::Pushgateway => pushgateway::router(w),
    }
}

fn remote_control(world: &Arc<World>) -> Router {
    Router::new()
        .merge(github::control(world.clone()))
        .merge(forgejo::control(world.clone()))
        .merge(t3::control(world.clone()))
        .merge(woodpecker::control(world.clone()))
        .merge(kube::control(world.clone()))
        .merge(ntfy::control(world.clone()))
        .merge(slack::control(world.clone()))
        .merge(pushgateway::control(world.clone()))
}

async fn serve(listener: TcpListener, router: Router) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "simulator listener stopped");
        }
    })
}

/// Binds every remote and the control endpoints on 127.0.0.1 with OS-chosen ports.
pub async fn start(world: Arc<World>) -> std::io::Result<Running> {
    let mut urls = BTreeMap::new();
    let mut tasks = Vec::new();
    for remote in Remote::ALL {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        urls.insert(remote, format!("http://{}", listener.local_addr()?));
        let due = world.clone();
        let router = remote_router(&world, remote).layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let world = due.clone();
                async move {
                    world.run_due();
                    next.run(req).await
                }
            },
        ));
        let router = instrument(world.sim.clone(), remote, router);
        tasks.push(serve(listener, router).await);
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let control_url = format!("http://{}", listener.local_addr()?);
    let control = control_router(world.sim.clone()).merge(remote_control(&world));
    tasks.push(serve(listener, control).await);
    Ok(Running {
        world,
        control_url,
        urls,
        tasks,
    })
}
