//! The prompts afk gives the agent (SPEC §3 "The prompt"): the standing issue-implementer rules
//! with the issue as delimited data, and the fix-forward prompt.

use crate::evidence::Check;
use crate::model::{IssueNumber, Login, RunId};

/// The issue as afk hands it to the agent. Comments must already be filtered to trusted authors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueText {
    pub number: IssueNumber,
    pub title: String,
    pub body: String,
    pub trusted_comments: Vec<(Login, String)>,
}

/// Where the agent works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkContext {
    pub worktree: String,
    pub branch: String,
    pub default_branch: String,
}

/// The first turn's prompt.
pub fn issue_prompt(run: &RunId, issue: &IssueText, work: &WorkContext) -> String {
    format!(
        "Implement issue #{} in {} (run {run}) in {} on branch {}, then push to {}.\n\n{}\n\n{}\n",
        issue.number,
        run.repo(),
        work.worktree,
        work.branch,
        work.default_branch,
        issue.title,
        issue.body
    )
}

/// A corrective turn's prompt after red CI or a failed rollout.
pub fn fix_forward_prompt(
    run: &RunId,
    sha: &str,
    failing: &[Check],
    attempt: u32,
    max: u32,
) -> String {
    let names: Vec<&str> = failing.iter().map(|c| c.name.as_str()).collect();
    format!(
        "Commit {sha} of run {run} is red ({}). Fix forward (attempt {attempt} of {max}).",
        names.join(", ")
    )
}
