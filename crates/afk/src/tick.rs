//! What both ticks share: the tick's read-only context, applying a run's effects in order,
//! and the error entries that name the repo, issue and run they belong to.

use afk_core::config::Config;
use afk_core::effect::Effect;
use afk_core::model::{Login, RepoName, RunId, Timestamp};
use afk_core::plan::ErrorEntry;
use afk_remotes::error::RemoteError;
use afk_remotes::t3::Fleet;

use crate::apply::Applier;
use crate::remotes::Remotes;

/// Shared, read-only context of one tick.
pub struct Tick<'a> {
    pub config: &'a Config,
    pub remotes: &'a Remotes,
    pub fleet: &'a Fleet,
    /// T3's fleet read failed this tick (the error, for the runs' reasons): `fleet` is empty
    /// and every run's thread evidence says T3 is unreachable.
    pub t3_unreachable: Option<String>,
    /// `/snapshot`, read at most once a tick and only when a run's thread is not in `/shell`
    /// (archived threads leave it).
    pub off_shell: tokio::sync::OnceCell<Fleet>,
    pub now: Timestamp,
    pub dry_run: bool,
}

impl Tick<'_> {
    pub fn applier(&self) -> Applier<'_> {
        Applier {
            config: self.config,
            remotes: self.remotes,
            fleet: self.fleet,
            now: self.now,
        }
    }

    pub fn bot(&self) -> Login {
        Login::new(
            self.config
                .tracker
                .as_ref()
                .map(|t| t.bot_login.clone())
                .unwrap_or_default(),
        )
    }

    /// The repo's default branch: configured, or the forge's.
    pub async fn default_branch(&self, repo: &RepoName) -> Result<String, RemoteError> {
        match self.config.repo(repo).default_branch {
            Some(b) => Ok(b),
            None => self.remotes.tracker.default_branch(repo).await,
        }
    }

    /// Applies a run's effects in order, stopping at the first failure (the next tick resumes
    /// from what the tracker then shows). Dry-run applies nothing.
    pub async fn apply_all(
        &self,
        effects: &[Effect],
        comment_id: &mut Option<u64>,
        ctx: &ErrCtx,
    ) -> Result<(), ErrorEntry> {
        if self.dry_run {
            return Ok(());
        }
        let applier = self.applier();
        for effect in effects {
            if let Err(e) = applier.apply(effect, comment_id).await {
                tracing::warn!(repo = %ctx.repo, issue = ctx.issue, run = ctx.run_field(), effect = effect.kind(), error = %e, "effect failed");
                let mut entry = ctx.error(format!("{} failed: {e}", effect.kind()));
                entry.public = Some(format!("{} failed: {}", effect.kind(), e.public_summary()));
                return Err(entry);
            }
            tracing::info!(repo = %ctx.repo, issue = ctx.issue, run = ctx.run_field(), effect = effect.kind(), "applied");
        }
        Ok(())
    }
}

/// Names the repo, issue and run an error belongs to.
pub struct ErrCtx {
    pub repo: RepoName,
    pub issue: u64,
    pub run: Option<RunId>,
}

impl ErrCtx {
    pub fn error(&self, error: String) -> ErrorEntry {
        ErrorEntry {
            public: None,
            repo: Some(self.repo.clone()),
            issue: Some(self.issue),
            run: self.run.clone(),
            error,
        }
    }
    /// The run for a log field: absent (not `""`) when unknown.
    fn run_field(&self) -> Option<tracing::field::DisplayValue<&RunId>> {
        self.run.as_ref().map(tracing::field::display)
    }
}

/// An error of the tick, of a repo, or of one of its issues (no run known).
pub fn error(repo: Option<&RepoName>, issue: Option<u64>, error: String) -> ErrorEntry {
    ErrorEntry {
        public: None,
        repo: repo.cloned(),
        issue,
        run: None,
        error,
    }
}
