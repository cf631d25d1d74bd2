//! Deterministic ids and paths derived from a run id, so a retry after a crash resends exactly
//! the same T3 ids and command ids (T3 answers a repeated `commandId` with the original receipt
//! instead of starting a second agent) and finds the same worktree.

use crate::model::{RepoName, RunId};

/// T3 project of a repo: one per repo, created once.
pub fn project_id(repo: &RepoName) -> String {
    format!("afk-{}", repo.slug())
}

/// T3 thread of a run.
pub fn thread_id(run: &RunId) -> String {
    format!("afk-{run}")
}

/// The first turn's message id.
pub fn first_message_id(run: &RunId) -> String {
    format!("afk-{run}-msg-1")
}

/// `project.create` for a dispatch attempt. A command T3 rejected fails again when resent, so
/// each dispatch attempt gets its own id; the tick checks whether the project exists first.
pub fn project_command_id(run: &RunId, dispatch_attempt: u32) -> String {
    format!("afk-{run}-project-create-a{dispatch_attempt}")
}

/// `thread.create` for a dispatch attempt (the tick checks whether the thread exists first).
pub fn thread_command_id(run: &RunId, dispatch_attempt: u32) -> String {
    format!("afk-{run}-thread-create-a{dispatch_attempt}")
}

/// The first `thread.turn.start` for a dispatch attempt.
pub fn turn_command_id(run: &RunId, dispatch_attempt: u32) -> String {
    format!("afk-{run}-turn-1-a{dispatch_attempt}")
}

/// The `k`-th corrective turn (1-based): its command and message ids.
pub fn fix_turn_ids(run: &RunId, k: u32) -> (String, String) {
    (
        format!("afk-{run}-fix-{k}"),
        format!("afk-{run}-msg-fix-{k}"),
    )
}

/// Interrupting the run's agent; `why` is a short stable word (`verdict`, `override`, `budget`).
pub fn interrupt_command_id(run: &RunId, why: &str) -> String {
    format!("afk-{run}-interrupt-{why}")
}

/// The repo's persistent checkout under the workspace root (`repos/<owner>__<name>`).
pub fn checkout_path(root: &str, repo: &RepoName) -> String {
    format!("{}/repos/{}", root.trim_end_matches('/'), repo.slug())
}

/// The run's worktree under the workspace root (`worktrees/<owner>__<name>/<run id>`).
pub fn worktree_path(root: &str, run: &RunId) -> String {
    format!(
        "{}/worktrees/{}/{run}",
        root.trim_end_matches('/'),
        run.repo().slug()
    )
}

/// The T3 deep link shown to people.
pub fn thread_url(web_url: &str, thread_id: &str) -> String {
    format!("{}/{thread_id}", web_url.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct_per_step() {
        let run = RunId::new("o/r".parse().expect("repo"), 7, 2);
        assert_eq!(thread_id(&run), "afk-o__r-7-2");
        assert_eq!(
            worktree_path("/data/afk/", &run),
            "/data/afk/worktrees/o__r/o__r-7-2"
        );
        assert_eq!(
            checkout_path("/data/afk", run.repo()),
            "/data/afk/repos/o__r"
        );
        let ids = [
            project_command_id(&run, 1),
            thread_command_id(&run, 1),
            turn_command_id(&run, 1),
            turn_command_id(&run, 2),
            fix_turn_ids(&run, 1).0,
            interrupt_command_id(&run, "verdict"),
        ];
        let unique: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }
}
