//! A simulated world, the real binaries, and helpers to run ticks and read what happened.

use std::sync::Arc;

use afk_core::comment::CommentFacts;
use afk_core::record::RunRecord;
use afk_sim::driver::{Binaries, Tick, TickOptions, TickRun, run_tick};
use afk_sim::infra::{FaultRule, RequestRecord, Sim, lock};
use afk_sim::scenario::{Setup, prepare};
use afk_sim::server::Running;
use afk_sim::world::World;
use serde_json::Value;

pub struct Harness {
    pub world: Arc<World>,
    _running: Running,
    pub setup: Setup,
    pub bins: Binaries,
    _dir: tempfile::TempDir,
}

pub fn bins() -> Binaries {
    afk_tests::binaries()
}

impl Harness {
    pub async fn new(scenario: &str) -> Harness {
        let world = World::new(Sim::default());
        let running = afk_sim::server::start(world.clone())
            .await
            .expect("simulators start");
        let dir = tempfile::tempdir().expect("tempdir");
        let setup = prepare(&world, &running, scenario, dir.path()).expect("scenario");
        Harness {
            world,
            _running: running,
            setup,
            bins: bins(),
            _dir: dir,
        }
    }

    /// The base URL a simulated remote listens on.
    pub fn url(&self, remote: afk_sim::infra::Remote) -> String {
        self._running.url(remote).to_owned()
    }

    pub fn repo(&self) -> (String, u64) {
        self.setup.repos.first().cloned().expect("a repo")
    }

    /// One tick with the JSON plan.
    pub async fn tick_with(&self, tick: Tick, opts: TickOptions) -> TickRun {
        let opts = TickOptions { json: true, ..opts };
        run_tick(
            &self.bins,
            tick,
            &self.setup.config_path,
            self.world.sim.now(),
            &opts,
        )
        .await
        .expect("tick runs")
    }

    pub async fn tick(&self, tick: Tick) -> TickRun {
        self.tick_with(tick, TickOptions::default()).await
    }

    /// One `--dry-run` tick with the JSON plan.
    pub async fn dry_run(&self, tick: Tick) -> TickRun {
        let opts = TickOptions {
            dry_run: true,
            ..TickOptions::default()
        };
        self.tick_with(tick, opts).await
    }

    /// Poll then watch, then move the clock on.
    pub async fn round(&self, step_secs: i64) -> (TickRun, TickRun) {
        let p = self.tick(Tick::Poll).await;
        let w = self.tick(Tick::Watch).await;
        self.world.sim.clock.advance_secs(step_secs);
        (p, w)
    }

    /// Rounds until the first issue's run has a verdict and its lock is gone.
    pub async fn run_to_verdict(&self, max_rounds: usize) -> RunRecord {
        let (repo, n) = self.repo();
        for _ in 0..max_rounds {
            let (p, w) = self.round(300).await;
            assert_ne!(p.code, Some(2), "poll: {}", p.stderr);
            assert_ne!(w.code, Some(2), "watch: {}", w.stderr);
            if let Some(r) = self.record(&repo, n)
                && r.verdict.is_some()
                && !self.has_label(&repo, n, "agent-in-progress")
            {
                return r;
            }
        }
        panic!(
            "no verdict after {max_rounds} rounds; record: {:?}",
            self.record(&repo, n)
        );
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.world.sim.requests()
    }

    pub fn reset_log(&self) {
        self.world.sim.reset_log();
    }

    pub fn fault(&self, rule: FaultRule) {
        self.world.sim.add_fault(rule);
    }

    pub fn comments(&self, repo: &str, n: u64) -> Vec<CommentFacts> {
        afk_sim::scenario::comments_of(&self.world, repo, n)
    }

    pub fn record(&self, repo: &str, n: u64) -> Option<RunRecord> {
        afk_sim::scenario::record_of(&self.world, repo, n).map(|(_, r)| r)
    }

    pub fn labels(&self, repo: &str, n: u64) -> Vec<String> {
        afk_sim::scenario::labels_of(&self.world, repo, n)
    }

    pub fn has_label(&self, repo: &str, n: u64, label: &str) -> bool {
        self.labels(repo, n).iter().any(|l| l == label)
    }

    pub fn issue_open(&self, repo: &str, n: u64) -> bool {
        afk_sim::scenario::is_open(&self.world, repo, n)
    }

    pub fn ntfy(&self) -> Vec<afk_sim::ntfy::Message> {
        afk_sim::ntfy::messages(&lock(&self.world.ntfy))
    }

    pub fn slack(&self) -> Vec<afk_sim::slack::Post> {
        afk_sim::slack::posts(&lock(&self.world.slack))
    }

    pub fn threads(&self) -> Vec<String> {
        lock(&self.world.t3).thread_ids()
    }
}

/// Writes (non-GET requests) in a log.
pub fn writes(log: &[RequestRecord]) -> Vec<&RequestRecord> {
    log.iter()
        .filter(|r| {
            r.is_write() && !(r.remote == afk_sim::infra::Remote::Github && r.path == "/graphql")
        })
        .collect()
}

pub fn plan(run: &TickRun) -> &Value {
    run.plan.as_ref().unwrap_or_else(|| {
        panic!(
            "{} printed no JSON plan; stderr:\n{}",
            run.tick.name(),
            run.stderr
        )
    })
}

/// Every secret the scenarios use.
pub const SECRETS: [&str; 5] = [
    afk_sim::scenario::TRACKER_TOKEN,
    afk_sim::scenario::T3_TOKEN,
    afk_sim::scenario::NTFY_TOKEN,
    afk_sim::scenario::SLACK_SECRET,
    afk_sim::scenario::WOODPECKER_TOKEN,
];

/// A tick that ended on its own, without a panic or a config error, and leaked nothing.
pub fn sane(run: &TickRun) {
    assert_no_secret(run);
    assert!(
        matches!(run.code, Some(0 | 1)),
        "{} exited {:?}: {}",
        run.tick.name(),
        run.code,
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

/// Panics if any secret appears in the tick's output.
pub fn assert_no_secret(run: &TickRun) {
    for s in SECRETS {
        assert!(
            !run.stdout.contains(s),
            "{} leaked a secret on stdout",
            run.tick.name()
        );
        assert!(
            !run.stderr.contains(s),
            "{} leaked a secret on stderr",
            run.tick.name()
        );
    }
}

impl Harness {
    /// The bodies of every `thread.turn.start` T3 accepted, as JSON text (the prompts).
    pub fn turn_starts(&self) -> Vec<String> {
        self.t3_commands("thread.turn.start")
    }

    /// The bodies of every T3 command of this kind, as JSON text.
    pub fn t3_commands(&self, kind: &str) -> Vec<String> {
        lock(&self.world.t3)
            .commands()
            .iter()
            .filter(|c| c.kind.as_deref() == Some(kind))
            .map(|c| c.body.to_string())
            .collect()
    }

    /// Panics if a secret is in any comment, request body (T3 commands included) or doorbell.
    pub fn assert_no_secret_anywhere(&self) {
        let repos: Vec<String> = self.setup.repos.iter().map(|(r, _)| r.clone()).collect();
        let gh = lock(&self.world.github);
        for repo in &repos {
            for c in gh
                .repo(repo)
                .map(|r| r.comments.clone())
                .unwrap_or_default()
            {
                for s in SECRETS {
                    assert!(!c.body.contains(s), "comment {} holds a secret", c.id);
                }
            }
        }
        drop(gh);
        for r in self.requests() {
            for s in SECRETS {
                assert!(
                    !r.body.contains(s),
                    "{} {} body holds a secret",
                    r.method,
                    r.path
                );
            }
        }
        for m in self.ntfy() {
            for s in SECRETS {
                assert!(
                    !m.message.contains(s) && !m.title.contains(s),
                    "ntfy holds a secret"
                );
            }
        }
        for p in self.slack() {
            for s in SECRETS {
                assert!(!p.text.contains(s), "slack holds a secret");
                assert!(
                    !format!("{:?}", p.blocks).contains(s),
                    "slack blocks hold a secret"
                );
            }
        }
    }
}

/// The reason an issue was skipped in a poll plan, if it was.
pub fn skip_reason(plan: &Value, issue: u64) -> Option<String> {
    plan["skipped"]
        .as_array()?
        .iter()
        .find(|s| s["issue"].as_u64() == Some(issue))
        .and_then(|s| s["reason"].as_str().map(str::to_owned))
}

/// The issues a poll plan dispatched.
pub fn dispatched(plan: &Value) -> Vec<u64> {
    plan["dispatch"]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d["issue"].as_u64()).collect())
        .unwrap_or_default()
}
