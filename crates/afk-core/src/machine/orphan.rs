//! Locks with no usable run record behind them: released with a
//! comment, or handed to a human when afk's own record cannot be read.

use crate::config::Config;
use crate::effect::Effect;
use crate::model::{IssueNumber, RepoName};
use crate::plan::Decision;

/// Why a locked issue has no usable run record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrphanKind {
    /// No comment by afk's account carries a run record.
    NoRecord,
    /// afk's own newest record comment is corrupt, of an unknown version, or not this issue's.
    Unreadable { comment_id: u64, detail: String },
}

/// What to do about a locked issue without a usable record.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "the repair's effects must be applied (or printed by --dry-run)"]
pub struct OrphanOutcome {
    pub decision: Decision,
    pub reason: String,
    pub effects: Vec<Effect>,
}

/// Repairs a lock that has no usable run record behind it, so no repo stays locked forever.
///
/// No record: the lock is released with a comment saying why. An unreadable record is never
/// guessed at: the issue goes to a human (comment, human label, ready and lock labels removed).
pub fn orphan_lock(
    repo: &RepoName,
    issue: IssueNumber,
    why: OrphanKind,
    config: &Config,
) -> OrphanOutcome {
    let labels = &config.labels;
    let label = |add: bool, name: &str| {
        if add {
            Effect::AddLabel {
                repo: repo.clone(),
                issue,
                label: name.to_owned(),
            }
        } else {
            Effect::RemoveLabel {
                repo: repo.clone(),
                issue,
                label: name.to_owned(),
            }
        }
    };
    let threads = format!("afk-{}-{issue}-", repo.slug());
    match why {
        OrphanKind::NoRecord => {
            let reason = format!(
                "the `{}` lock label is on {repo}#{issue} but no afk run record exists for it; \
                 afk released the lock so the repo is not blocked",
                labels.in_progress
            );
            let body = format!(
                "**afk** released an orphan lock: {reason}. Nothing else was changed. If an \
                 agent is still working on this issue, look for T3 threads named `{threads}*`."
            );
            OrphanOutcome {
                decision: Decision::Released,
                effects: vec![
                    Effect::PostComment {
                        repo: repo.clone(),
                        issue,
                        body,
                    },
                    label(false, &labels.in_progress),
                ],
                reason,
            }
        }
        OrphanKind::Unreadable { comment_id, detail } => {
            let reason = format!(
                "afk's run record in comment {comment_id} on {repo}#{issue} cannot be used \
                 ({detail}); afk does not guess at a run's state, so a person must look"
            );
            let body = format!(
                "**afk** needs a human: {reason}.\n\nafk handed the issue back (`{}` added, `{}` \
                 and `{}` removed) and left everything else as it was. No doorbell was rung: \
                 without a readable record afk cannot tell which run this was. An agent may \
                 still be running: look for T3 threads named `{threads}*`.",
                labels.human, labels.ready, labels.in_progress
            );
            OrphanOutcome {
                decision: Decision::NeedsHuman,
                effects: vec![
                    Effect::PostComment {
                        repo: repo.clone(),
                        issue,
                        body,
                    },
                    label(true, &labels.human),
                    label(false, &labels.ready),
                    label(false, &labels.in_progress),
                ],
                reason,
            }
        }
    }
}
