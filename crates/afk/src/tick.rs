//! What both ticks share: the tick's read-only context, applying a run's effects in order,
//! and the error entries that name the repo, issue and run they belong to.

use afk_core::applied::{AppliedEffect, Outcome};
use afk_core::config::Config;
use afk_core::effect::Effect;
use afk_core::model::{Login, RepoName, RunId, Timestamp};
use afk_core::plan::ErrorEntry;
use afk_remotes::error::{ErrorKind, RemoteError};
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
                return Err(failed(ctx, effect, &e));
            }
            tracing::info!(repo = %ctx.repo, issue = ctx.issue, run = ctx.run_field(), effect = effect.kind(), "applied");
        }
        Ok(())
    }
}

/// How applying a step went, effect by effect, and the errors to report.
pub struct Step {
    /// Every effect of the step with its outcome, in order (what the core decides over next).
    pub applied: Vec<AppliedEffect>,
    /// The failure that stopped the step, if one did.
    pub failure: Option<ErrorEntry>,
    /// Doorbells that were not delivered (the step went on past them).
    pub undelivered: Vec<ErrorEntry>,
}

impl Step {
    /// The effects that were tried (applied, failed or not delivered), in order.
    pub fn tried(&self) -> impl Iterator<Item = &Effect> {
        self.applied
            .iter()
            .filter(|a| a.outcome != Outcome::NotAttempted)
            .map(|a| &a.effect)
    }
}

impl Tick<'_> {
    /// Applies a step's effects in order and reports how each went. The first failure stops
    /// the step (the effects after it are not attempted); a doorbell that is not delivered
    /// does not stop it, and is classified as refused for good or retried later. Not for a
    /// dry run: the caller applies nothing then.
    pub async fn apply_step(
        &self,
        effects: &[Effect],
        comment_id: &mut Option<u64>,
        ctx: &ErrCtx,
    ) -> Step {
        let applier = self.applier();
        let mut step = Step {
            applied: Vec::with_capacity(effects.len()),
            failure: None,
            undelivered: Vec::new(),
        };
        for effect in effects {
            let outcome = if step.failure.is_some() {
                Outcome::NotAttempted
            } else {
                match applier.apply(effect, comment_id).await {
                    Ok(()) => {
                        tracing::info!(repo = %ctx.repo, issue = ctx.issue, run = ctx.run_field(), effect = effect.kind(), "applied");
                        Outcome::Applied
                    }
                    Err(e) => match effect {
                        Effect::Notify { channel, .. } => {
                            let refused = doorbell_refused(&e);
                            let next = if refused {
                                "given up: the channel refused it; fix its configuration"
                            } else {
                                "retried next tick"
                            };
                            tracing::warn!(repo = %ctx.repo, issue = ctx.issue, run = ctx.run_field(), effect = effect.kind(), error = %e, "doorbell not delivered");
                            step.undelivered.push(ctx.error(format!(
                                "doorbell {channel:?} not delivered ({next}): {e}"
                            )));
                            Outcome::Undelivered { refused }
                        }
                        _ => {
                            let entry = failed(ctx, effect, &e);
                            let public = entry.public.clone();
                            step.failure = Some(entry);
                            Outcome::Failed { public }
                        }
                    },
                }
            };
            step.applied.push(AppliedEffect {
                effect: effect.clone(),
                outcome,
            });
        }
        step
    }
}

/// Whether a doorbell's channel refused a message for good: a 4xx other than 429, a channel
/// that is not configured, or an answer afk cannot read. Anything else (429, 5xx, a timeout, a
/// dropped connection) may pass on a later tick.
pub fn doorbell_refused(e: &RemoteError) -> bool {
    match &e.kind {
        ErrorKind::Status { status, .. } => (400..500).contains(status) && *status != 429,
        ErrorKind::Local(_) | ErrorKind::Decode(_) => true,
        _ => false,
    }
}

/// The error entry of an effect that failed: the full error for the plan and the logs, and a
/// sanitised reason for the public status comment.
fn failed(ctx: &ErrCtx, effect: &Effect, e: &RemoteError) -> ErrorEntry {
    tracing::warn!(repo = %ctx.repo, issue = ctx.issue, run = ctx.run_field(), effect = effect.kind(), error = %e, "effect failed");
    let mut entry = ctx.error(format!("{} failed: {e}", effect.kind()));
    entry.public = Some(format!("{} failed: {}", effect.kind(), e.public_summary()));
    entry
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
