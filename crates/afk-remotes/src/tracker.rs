//! What afk reads from and writes to an issue tracker, independent of the forge.
//!
//! [`Tracker`] is a closed set of backends (GitHub, Forgejo); both return these types, so the
//! ticks never see a forge's wire format.

use afk_core::config::CiProvider;
use afk_core::evidence::CloseReason;
use afk_core::facts::{Activity, Permission};
use afk_core::model::{IssueNumber, Login, RepoName, Timestamp};

use crate::error::Result;

use crate::forgejo::Forgejo;
use crate::github::GitHub;

/// An issue (or, on list endpoints, a pull request) as afk needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub number: IssueNumber,
    pub title: String,
    /// Empty when the forge says `null`.
    pub body: String,
    pub open: bool,
    pub close_reason: Option<CloseReason>,
    pub labels: Vec<String>,
    pub is_pull_request: bool,
    pub author: Login,
    pub html_url: String,
    pub updated_at: Timestamp,
    /// Number of comments, when the forge reports it (lets a tick skip listing none).
    pub comments: Option<u64>,
}

/// Which issues a listing returns, by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueState {
    Open,
    Closed,
    All,
}

impl IssueState {
    /// The `state` query value both forges use.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueState::Open => "open",
            IssueState::Closed => "closed",
            IssueState::All => "all",
        }
    }
}

/// A label being added to or removed from an issue.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelChange {
    pub label: String,
    pub added: bool,
    pub actor: Login,
    pub actor_is_bot: bool,
    pub at: Timestamp,
    /// For the labelling [`Tracker::latest_labeling`] returns: the newest title change the
    /// forge recorded after it (GitHub `renamed` event, Forgejo `change_title` entry).
    pub title_changed_after: Option<Timestamp>,
    /// For the labelling [`Tracker::latest_labeling`] returns, where the forge shows no body
    /// edit time (Forgejo): every timeline entry recorded after it, to explain `updated_at`.
    pub activity_after: Vec<Activity>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    pub id: u64,
    pub author: Login,
    pub body: String,
    pub created_at: Timestamp,
}

impl From<&Comment> for afk_core::comment::CommentFacts {
    /// What the core reads of a comment to find a run's record.
    fn from(c: &Comment) -> Self {
        afk_core::comment::CommentFacts {
            id: c.id,
            author: c.author.clone(),
            body: c.body.clone(),
        }
    }
}

/// A commit on a branch.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub sha: String,
    pub message: String,
    pub html_url: String,
    pub committed_at: Timestamp,
}

pub use afk_core::evidence::{CiSignal, SignalState};

/// What the forge says about an issue beyond its listing, read only for issues a trusted
/// person armed: when the body was last edited, and the forge's own "blocked by" links.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IssueExtras {
    /// `None`: never edited, or the forge cannot tell (see `body_edit_time_known`).
    pub body_edited_at: Option<Timestamp>,
    /// Whether the forge reports a body edit time at all (GitHub does; Forgejo does not, so
    /// its `updated_at` is the edit evidence).
    pub body_edit_time_known: bool,
    /// Issues the forge records as blocking this one (native issue dependencies).
    pub linked_blockers: Vec<LinkedBlocker>,
    /// Linked blockers the answer did not list (past its page): unknown, so they block.
    pub unlisted_blockers: u64,
    /// Linked blockers the forge listed but afk's token cannot see (GitHub: a `null` node with
    /// a `NOT_FOUND` error): unknown, so they block.
    pub hidden_blockers: u64,
    /// Set when a batched read answered for other issues but not this one (GitHub: an error
    /// naming this issue, e.g. `NOT_FOUND` for an issue deleted or transferred since it was
    /// listed): why, naming the remote and the issue. Nothing else is known, so such an issue
    /// also counts one hidden blocker and no known body edit time: a reader that looks only
    /// at the blockers still cannot arm it.
    pub unreadable: Option<String>,
}

impl IssueExtras {
    /// The extras of an issue the forge did not answer for (see [`IssueExtras::unreadable`]).
    pub fn unreadable(why: String) -> IssueExtras {
        IssueExtras {
            hidden_blockers: 1,
            unreadable: Some(why),
            ..IssueExtras::default()
        }
    }
}

/// One native "blocked by" link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedBlocker {
    /// `owner/name` as the forge spells it.
    pub repo: String,
    pub number: IssueNumber,
    pub open: bool,
}

/// The account a tracker token authenticates as.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub login: String,
    /// The token's classic OAuth scopes when the forge reports them (GitHub classic tokens);
    /// `None` when it does not (fine-grained and app tokens, Forgejo).
    pub scopes: Option<Vec<String>>,
}

/// The tracker backends.
#[derive(Debug, Clone)]
pub enum Tracker {
    GitHub(GitHub),
    Forgejo(Forgejo),
}

impl Tracker {
    /// Issues with `label` in `state` (pull requests included, flagged).
    pub async fn list_issues(
        &self,
        repo: &RepoName,
        label: &str,
        state: IssueState,
    ) -> Result<Vec<Issue>> {
        match self {
            Tracker::GitHub(c) => c.list_issues(repo, label, state).await,
            Tracker::Forgejo(c) => c.list_issues(repo, label, state).await,
        }
    }

    /// The most recent addition of `label` to the issue, with its actor and what the timeline
    /// recorded after it (title changes; on Forgejo every later entry).
    pub async fn latest_labeling(
        &self,
        repo: &RepoName,
        number: IssueNumber,
        label: &str,
    ) -> Result<Option<LabelChange>> {
        match self {
            Tracker::GitHub(c) => c.latest_labeling(repo, number, label).await,
            Tracker::Forgejo(c) => c.latest_labeling(repo, number, label).await,
        }
    }

    /// A person's permission on the repo; anything unclear is `Unknown` (untrusted).
    pub async fn permission(&self, repo: &RepoName, login: &str) -> Result<Permission> {
        match self {
            Tracker::GitHub(c) => c.permission(repo, login).await,
            Tracker::Forgejo(c) => c.permission(repo, login).await,
        }
    }

    /// The account the token authenticates as (read-only; the preflight check).
    pub async fn whoami(&self) -> Result<Account> {
        match self {
            Tracker::GitHub(c) => c.whoami().await,
            Tracker::Forgejo(c) => c.whoami().await,
        }
    }

    /// Every label the repo has (read-only; the preflight check).
    pub async fn repo_labels(&self, repo: &RepoName) -> Result<Vec<String>> {
        match self {
            Tracker::GitHub(c) => c.repo_labels(repo).await,
            Tracker::Forgejo(c) => c.repo_labels(repo).await,
        }
    }

    /// At most `limit` issues of any state updated since `since`, most recently updated first
    /// (one page, read-only; the fleet report).
    pub async fn recently_updated(
        &self,
        repo: &RepoName,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<Issue>> {
        match self {
            Tracker::GitHub(c) => c.recently_updated(repo, since, limit).await,
            Tracker::Forgejo(c) => c.recently_updated(repo, since, limit).await,
        }
    }

    /// The body's last edit and the native blockers, where the forge has them.
    pub async fn issue_extras(&self, repo: &RepoName, number: IssueNumber) -> Result<IssueExtras> {
        match self {
            Tracker::GitHub(c) => c.issue_extras(repo, number).await,
            Tracker::Forgejo(c) => c.issue_extras(repo, number).await,
        }
    }

    /// [`Tracker::issue_extras`] of many issues, in the order given (GitHub: one GraphQL
    /// query per 100 issues, across repos; Forgejo: one read per issue). An issue the forge
    /// did not answer for while it answered for others comes back
    /// [`IssueExtras::unreadable`]; a failure of the whole read is an error.
    pub async fn issue_extras_many(
        &self,
        items: &[(RepoName, IssueNumber)],
    ) -> Result<Vec<IssueExtras>> {
        match self {
            Tracker::GitHub(c) => c.issue_extras_many(items).await,
            Tracker::Forgejo(c) => {
                let mut out = Vec::with_capacity(items.len());
                for (repo, number) in items {
                    out.push(c.issue_extras(repo, *number).await?);
                }
                Ok(out)
            }
        }
    }

    /// The primary rate-limit budget seen so far this tick, per resource (GitHub; Forgejo
    /// reports none, so the budget guard is inactive there).
    pub fn rate_budgets(&self) -> Vec<afk_core::budget::RateBudget> {
        match self {
            Tracker::GitHub(c) => c.rate_budgets(),
            Tracker::Forgejo(_) => Vec::new(),
        }
    }

    /// Reads the budget without spending it (GitHub `GET /rate_limit`; nothing on Forgejo).
    pub async fn read_rate_limit(&self) -> Result<()> {
        match self {
            Tracker::GitHub(c) => c.read_rate_limit().await,
            Tracker::Forgejo(_) => Ok(()),
        }
    }

    /// One issue; `None` when it does not exist or cannot be seen.
    pub async fn issue(&self, repo: &RepoName, number: IssueNumber) -> Result<Option<Issue>> {
        match self {
            Tracker::GitHub(c) => c.issue(repo, number).await,
            Tracker::Forgejo(c) => c.issue(repo, number).await,
        }
    }

    /// The repo's default branch.
    pub async fn default_branch(&self, repo: &RepoName) -> Result<String> {
        match self {
            Tracker::GitHub(c) => c.default_branch(repo).await,
            Tracker::Forgejo(c) => c.default_branch(repo).await,
        }
    }

    /// Makes sure the repo has each of `names`, creating missing ones, once per repo per
    /// client. Forgejo drops unknown names from a label add, so they must exist first;
    /// GitHub creates a label the first time it is added, so nothing is done there.
    pub async fn ensure_labels(&self, repo: &RepoName, names: &[String]) -> Result<()> {
        match self {
            Tracker::GitHub(_) => Ok(()),
            Tracker::Forgejo(c) => c.ensure_labels(repo, names).await,
        }
    }

    /// Adds labels (idempotent; on Forgejo, checked against the labels the issue then has).
    pub async fn add_labels(
        &self,
        repo: &RepoName,
        number: IssueNumber,
        labels: &[String],
    ) -> Result<()> {
        match self {
            Tracker::GitHub(c) => c.add_labels(repo, number, labels).await,
            Tracker::Forgejo(c) => c.add_labels(repo, number, labels).await,
        }
    }

    /// Removes a label; already gone is success.
    pub async fn remove_label(
        &self,
        repo: &RepoName,
        number: IssueNumber,
        label: &str,
    ) -> Result<()> {
        match self {
            Tracker::GitHub(c) => c.remove_label(repo, number, label).await,
            Tracker::Forgejo(c) => c.remove_label(repo, number, label).await,
        }
    }

    /// Every comment, oldest first.
    pub async fn list_comments(
        &self,
        repo: &RepoName,
        number: IssueNumber,
    ) -> Result<Vec<Comment>> {
        match self {
            Tracker::GitHub(c) => c.list_comments(repo, number).await,
            Tracker::Forgejo(c) => c.list_comments(repo, number).await,
        }
    }

    /// Creates a comment (never resent: a lost answer is reconciled by a later tick).
    pub async fn create_comment(
        &self,
        repo: &RepoName,
        number: IssueNumber,
        body: &str,
    ) -> Result<Comment> {
        match self {
            Tracker::GitHub(c) => c.create_comment(repo, number, body).await,
            Tracker::Forgejo(c) => c.create_comment(repo, number, body).await,
        }
    }

    /// Edits a comment in place.
    pub async fn edit_comment(&self, repo: &RepoName, comment_id: u64, body: &str) -> Result<()> {
        match self {
            Tracker::GitHub(c) => c.edit_comment(repo, comment_id, body).await,
            Tracker::Forgejo(c) => c.edit_comment(repo, comment_id, body).await,
        }
    }

    /// Closes the issue.
    pub async fn close_issue(
        &self,
        repo: &RepoName,
        number: IssueNumber,
        reason: CloseReason,
    ) -> Result<()> {
        match self {
            Tracker::GitHub(c) => c.close_issue(repo, number, reason).await,
            Tracker::Forgejo(c) => c.close_issue(repo, number, reason).await,
        }
    }

    /// Reopens the issue.
    pub async fn reopen_issue(&self, repo: &RepoName, number: IssueNumber) -> Result<()> {
        match self {
            Tracker::GitHub(c) => c.reopen_issue(repo, number).await,
            Tracker::Forgejo(c) => c.reopen_issue(repo, number).await,
        }
    }

    /// Commits on `branch` since `since`, newest first.
    pub async fn commits_since(
        &self,
        repo: &RepoName,
        branch: &str,
        since: Timestamp,
    ) -> Result<Vec<Commit>> {
        match self {
            Tracker::GitHub(c) => c.commits_since(repo, branch, since).await,
            Tracker::Forgejo(c) => c.commits_since(repo, branch, since).await,
        }
    }

    /// The CI signals of one provider for a commit.
    pub async fn ci_signals(
        &self,
        repo: &RepoName,
        sha: &str,
        provider: CiProvider,
    ) -> Result<Vec<CiSignal>> {
        match self {
            Tracker::GitHub(c) => c.ci_signals(repo, sha, provider).await,
            Tracker::Forgejo(c) => c.ci_signals(repo, sha, provider).await,
        }
    }
}

/// How a permission lookup turned out; anything but a clear grant is untrusted.
pub fn permission_from_str(s: &str) -> Permission {
    match s {
        "owner" => Permission::Owner,
        "admin" => Permission::Admin,
        "maintain" => Permission::Maintain,
        "write" => Permission::Write,
        "triage" => Permission::Triage,
        "read" => Permission::Read,
        "none" => Permission::None,
        other => Permission::Unknown(other.to_owned()),
    }
}
