//! Applies the core's effects, one at a time and in order, and the idempotent dispatch
//! procedure.

use afk_core::config::Config;
use afk_core::effect::{DispatchSpec, Effect};
use afk_core::model::{RunId, Timestamp};
use afk_core::record::Channel;
use afk_remotes::error::{ErrorKind, RemoteError};
use afk_remotes::t3::{CreateProject, CreateThread, Fleet, ModelSelection, RuntimeMode, StartTurn};

use crate::remotes::Remotes;

/// Everything an effect needs to be applied.
pub struct Applier<'a> {
    pub config: &'a Config,
    pub remotes: &'a Remotes,
    /// T3's fleet as read at the start of the tick (what exists already).
    pub fleet: &'a Fleet,
    pub now: Timestamp,
}

fn local(request: &str, msg: String) -> RemoteError {
    RemoteError::new("afk", request.to_owned(), ErrorKind::Local(msg))
}

impl Applier<'_> {
    /// Applies one effect. `comment_id` is the run's status comment: filled in when the
    /// effect creates it, used when a later effect edits it.
    pub async fn apply(
        &self,
        effect: &Effect,
        comment_id: &mut Option<u64>,
    ) -> Result<(), RemoteError> {
        let tracker = &self.remotes.tracker;
        match effect {
            Effect::AddLabel { repo, issue, label } => {
                // afk's own labels exist in the repo before the first one is relied on (on
                // Forgejo an add of a missing label is silently dropped).
                let labels = &self.config.labels;
                let ours = [
                    labels.ready.clone(),
                    labels.in_progress.clone(),
                    labels.human.clone(),
                ];
                tracker.ensure_labels(repo, &ours).await?;
                tracker
                    .add_labels(repo, *issue, std::slice::from_ref(label))
                    .await
            }
            Effect::RemoveLabel { repo, issue, label } => {
                tracker.remove_label(repo, *issue, label).await
            }
            Effect::UpsertStatusComment {
                repo,
                issue,
                comment_id: target,
                body,
                ..
            } => match target.or(*comment_id) {
                Some(id) => tracker.edit_comment(repo, id, body).await,
                None => {
                    let created = tracker.create_comment(repo, *issue, body).await?;
                    *comment_id = Some(created.id);
                    Ok(())
                }
            },
            Effect::PostComment { repo, issue, body } => {
                tracker.create_comment(repo, *issue, body).await.map(|_| ())
            }
            Effect::CloseIssue {
                repo,
                issue,
                reason,
            } => tracker.close_issue(repo, *issue, *reason).await,
            Effect::ReopenIssue { repo, issue } => tracker.reopen_issue(repo, *issue).await,
            Effect::Dispatch { run, spec, .. } => self.dispatch(run, spec).await,
            Effect::StartTurn {
                thread_id,
                command_id,
                message_id,
                prompt,
                ..
            } => {
                let cmd = StartTurn {
                    command_id: command_id.clone(),
                    thread_id: thread_id.clone(),
                    message_id: message_id.clone(),
                    text: prompt.clone(),
                    runtime_mode: self.runtime_mode()?,
                    model: None,
                    created_at: self.now,
                };
                self.remotes.t3.start_turn(&cmd).await.map(|_| ())
            }
            Effect::Interrupt {
                thread_id,
                command_id,
                ..
            } => self
                .remotes
                .t3
                .interrupt(thread_id, command_id, self.now)
                .await
                .map(|_| ()),
            Effect::RemoveWorktree { run, .. } => {
                self.remotes
                    .workspaces
                    .remove_worktree(run, &run.branch())
                    .await
            }
            Effect::RetainWorktree { run, since, .. } => {
                self.remotes.workspaces.mark_retained(run, *since).await
            }
            Effect::RemovePartialClone { run, .. } => {
                self.remotes.workspaces.remove_partial_clone(run).await
            }
            Effect::RemoveCacheDir { path } => {
                self.remotes
                    .workspaces
                    .remove_cache_dir(std::path::Path::new(path))
                    .await
            }
            Effect::Notify {
                channel, notice, ..
            } => match channel {
                Channel::Ntfy => match &self.remotes.ntfy {
                    Some(n) => n.publish(notice).await,
                    None => Err(local(
                        "notify ntfy",
                        "[notify.ntfy] is not configured".into(),
                    )),
                },
                Channel::Slack => match &self.remotes.slack {
                    Some(s) => s.post(notice).await,
                    None => Err(local(
                        "notify slack",
                        "[notify.slack] is not configured".into(),
                    )),
                },
            },
        }
    }

    fn runtime_mode(&self) -> Result<RuntimeMode, RemoteError> {
        let mode = self
            .config
            .t3
            .as_ref()
            .map(|t| t.runtime_mode.as_str())
            .unwrap_or("full-access");
        Ok(match mode {
            "approval-required" => RuntimeMode::ApprovalRequired,
            "auto-accept-edits" => RuntimeMode::AutoAcceptEdits,
            "auto" => RuntimeMode::Auto,
            "full-access" => RuntimeMode::FullAccess,
            other => {
                return Err(local(
                    "t3 runtime mode",
                    format!("unknown runtime_mode {other:?}"),
                ));
            }
        })
    }

    fn model(&self) -> Result<ModelSelection, RemoteError> {
        let t3 = self
            .config
            .t3
            .as_ref()
            .ok_or_else(|| local("t3", "[t3] is not configured".into()))?;
        Ok(ModelSelection {
            instance_id: t3.model.instance_id.clone(),
            model: t3.model.model.clone(),
            options: Vec::new(),
        })
    }

    /// The idempotent dispatch: ensure the worktree, the project, the thread and the first
    /// turn, skipping whatever T3 already has (a retry after a crash resends nothing twice).
    async fn dispatch(&self, run: &RunId, spec: &DispatchSpec) -> Result<(), RemoteError> {
        let repo = run.repo();
        let workspaces = &self.remotes.workspaces;
        let default_branch = match &spec.default_branch {
            Some(b) => b.clone(),
            None => {
                workspaces.prepare_checkout(repo).await?;
                workspaces.default_branch(repo).await?
            }
        };
        workspaces
            .ensure_worktree(run, &spec.branch, &default_branch)
            .await?;

        let t3 = &self.remotes.t3;
        match self.fleet.project(&spec.project_id) {
            Some(p) if p.deleted => {
                return Err(local(
                    "t3 project.create",
                    format!(
                        "T3 project {} was deleted and its id cannot be reused; restore it in T3 or remove the deleted project",
                        spec.project_id
                    ),
                ));
            }
            Some(_) => {}
            None => {
                if let Some(other) = self.fleet.project_for_root(&spec.project_root) {
                    return Err(local(
                        "t3 project.create",
                        format!(
                            "T3 project {} already uses {}; afk needs its own project {} for {repo} (delete or re-root the other one)",
                            other.id, spec.project_root, spec.project_id
                        ),
                    ));
                }
                let cmd = CreateProject {
                    command_id: spec.project_command_id.clone(),
                    project_id: spec.project_id.clone(),
                    title: spec.project_title.clone(),
                    workspace_root: spec.project_root.clone(),
                    create_workspace_root_if_missing: false,
                    created_at: self.now,
                };
                t3.create_project(&cmd).await?;
            }
        }

        let existing = self.fleet.thread(&spec.thread_id);
        match existing {
            Some(t) if t.deleted || t.archived => {
                return Err(local(
                    "t3 thread.create",
                    format!(
                        "T3 thread {} was deleted or archived before its first turn",
                        spec.thread_id
                    ),
                ));
            }
            Some(_) => {}
            None => {
                let cmd = CreateThread {
                    command_id: spec.thread_command_id.clone(),
                    thread_id: spec.thread_id.clone(),
                    project_id: spec.project_id.clone(),
                    title: spec.thread_title.clone(),
                    model: self.model()?,
                    runtime_mode: self.runtime_mode()?,
                    branch: spec.branch.clone(),
                    worktree_path: spec.worktree.clone(),
                    created_at: self.now,
                };
                t3.create_thread(&cmd).await?;
            }
        }

        let turn_started = existing.is_some_and(|t| {
            t.latest_turn.is_some()
                || t.latest_user_message_at.is_some()
                || t.message_ids.iter().any(|m| m == &spec.message_id)
        });
        if !turn_started {
            let cmd = StartTurn {
                command_id: spec.turn_command_id.clone(),
                thread_id: spec.thread_id.clone(),
                message_id: spec.message_id.clone(),
                text: spec.prompt.clone(),
                runtime_mode: self.runtime_mode()?,
                model: Some(self.model()?),
                created_at: self.now,
            };
            t3.start_turn(&cmd).await?;
        }
        Ok(())
    }
}
