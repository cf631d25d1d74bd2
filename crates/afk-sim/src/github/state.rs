//! The simulated GitHub's state and the seeding helpers scenarios and tests use.
//!
//! Every mutating helper takes `now` (the simulated clock) so timestamps are deterministic.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, TimeDelta, Utc};

use super::model::{
    Actor, CheckRun, Comment, Commit, CommitStatus, Event, Issue, RateBudget, Repo, Role,
    WorkflowRun,
};

/// Everything the simulated GitHub knows.
#[derive(Debug, Default)]
pub struct State {
    /// Token -> login of its owner.
    pub tokens: BTreeMap<String, String>,
    /// Token → its classic OAuth scopes (comma-separated), sent back as `X-OAuth-Scopes` on
    /// every answer; tokens without an entry are fine-grained (GitHub sends no such header).
    pub token_scopes: BTreeMap<String, String>,
    /// Keyed by `owner/name` in lowercase.
    pub repos: BTreeMap<String, Repo>,
    /// Lowercase logins GitHub knows (for the permission endpoint's 404).
    pub users: BTreeSet<String>,
    /// The REST API's primary budget (`x-ratelimit-resource: core`): one per request, a
    /// `304 Not Modified` free.
    pub rate: RateBudget,
    /// The GraphQL API's own budget (`x-ratelimit-resource: graphql`), in points: each query
    /// costs what GitHub's cost model says (see `graphql::cost`). GitHub's docs: 5,000 points
    /// per hour for a user, separate from the REST limit.
    pub graphql_rate: RateBudget,
    /// The next this many requests get 429 with `retry-after` (a secondary limit).
    pub throttle_requests: u64,
    pub throttle_retry_after: u64,
    /// `/events` answers newest first instead of oldest first. GitHub does not document the
    /// order of an issue's events, so a client must not rely on it; this lets a test check.
    pub events_newest_first: bool,
    /// Acts as a GitHub Enterprise Server whose GraphQL schema has no issue dependencies:
    /// a query selecting `Issue.blockedBy` fails as an unknown field.
    pub graphql_without_blocked_by: bool,
    /// Comment edits that arrived as POST instead of PATCH (GitHub accepts both).
    pub comment_edits_via_post: u64,
    /// GitHub Apps, their installations and installation tokens.
    pub apps: super::apps::Apps,
    next_id: u64,
}

fn key(repo: &str) -> String {
    repo.to_ascii_lowercase()
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        1000 + self.next_id
    }

    /// Lets `token` act as `login`.
    pub fn add_token(&mut self, token: &str, login: &str) {
        self.tokens.insert(token.to_owned(), login.to_owned());
        self.users.insert(login.to_ascii_lowercase());
    }

    /// Makes `token` a classic token with these scopes (e.g. `"repo, read:org"`).
    pub fn set_token_scopes(&mut self, token: &str, scopes: &str) {
        self.token_scopes
            .insert(token.to_owned(), scopes.to_owned());
    }

    pub fn add_user(&mut self, login: &str) {
        self.users.insert(login.to_ascii_lowercase());
    }

    /// Creates (or replaces) `owner/name` with no issues and no commits.
    pub fn add_repo(
        &mut self,
        repo: &str,
        default_branch: &str,
        private: bool,
    ) -> Result<(), anyhow::Error> {
        let (owner, name) = repo
            .split_once('/')
            .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
            .ok_or_else(|| anyhow!("repo {repo:?} is not owner/name"))?;
        let id = self.id();
        self.add_user(owner);
        self.repos.insert(
            key(repo),
            Repo {
                id,
                owner: owner.to_owned(),
                name: name.to_owned(),
                default_branch: default_branch.to_owned(),
                private,
                collaborators: BTreeMap::new(),
                issues: BTreeMap::new(),
                comments: Vec::new(),
                branches: BTreeMap::new(),
                check_runs: BTreeMap::new(),
                statuses: BTreeMap::new(),
                workflow_runs: Vec::new(),
            },
        );
        Ok(())
    }

    pub fn repo(&self, repo: &str) -> Option<&Repo> {
        self.repos.get(&key(repo))
    }

    pub fn repo_mut(&mut self, repo: &str) -> anyhow::Result<&mut Repo> {
        self.repos
            .get_mut(&key(repo))
            .ok_or_else(|| anyhow!("no simulated GitHub repo {repo}"))
    }

    pub fn issue_mut(&mut self, repo: &str, number: u64) -> anyhow::Result<&mut Issue> {
        self.repo_mut(repo)?
            .issues
            .get_mut(&number)
            .ok_or_else(|| anyhow!("no issue {repo}#{number}"))
    }

    /// Grants `login` a role on `repo`.
    pub fn set_collaborator(&mut self, repo: &str, login: &str, role: Role) -> anyhow::Result<()> {
        self.add_user(login);
        self.repo_mut(repo)?
            .collaborators
            .insert(login.to_ascii_lowercase(), (login.to_owned(), role));
        Ok(())
    }

    /// Opens an issue (or a pull request) and returns its number.
    pub fn add_issue(
        &mut self,
        repo: &str,
        title: &str,
        body: Option<&str>,
        author: &str,
        is_pr: bool,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        self.add_user(author);
        let r = self.repo_mut(repo)?;
        let number = r.next_number();
        r.issues.insert(
            number,
            Issue {
                number,
                title: title.to_owned(),
                body: body.map(str::to_owned),
                body_edited_at: None,
                blocked_by: Vec::new(),
                open: true,
                state_reason: None,
                labels: Vec::new(),
                user: Actor::user(author),
                is_pr,
                created_at: now,
                updated_at: now,
                closed_at: None,
                events: Vec::new(),
            },
        );
        Ok(number)
    }

    /// Records an event of any name (including ones a client may not know).
    pub fn add_event(
        &mut self,
        repo: &str,
        number: u64,
        event: &str,
        actor: Actor,
        label: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.add_user(&actor.login);
        let id = self.id();
        let issue = self.issue_mut(repo, number)?;
        issue.events.push(Event {
            id,
            event: event.to_owned(),
            actor,
            created_at: now,
            label: label.map(str::to_owned),
            commit_id: None,
            rename: None,
        });
        issue.updated_at = now;
        Ok(())
    }

    /// Adds `label` as `actor` (a `labeled` event); no event when it is already there.
    pub fn label_issue(
        &mut self,
        repo: &str,
        number: u64,
        label: &str,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let issue = self.issue_mut(repo, number)?;
        if issue.labels.iter().any(|l| l.eq_ignore_ascii_case(label)) {
            return Ok(false);
        }
        issue.labels.push(label.to_owned());
        self.add_event(repo, number, "labeled", actor, Some(label), now)?;
        Ok(true)
    }

    /// Removes `label` as `actor` (an `unlabeled` event); false when it was not there.
    pub fn unlabel_issue(
        &mut self,
        repo: &str,
        number: u64,
        label: &str,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let issue = self.issue_mut(repo, number)?;
        let Some(pos) = issue
            .labels
            .iter()
            .position(|l| l.eq_ignore_ascii_case(label))
        else {
            return Ok(false);
        };
        let name = issue.labels.remove(pos);
        self.add_event(repo, number, "unlabeled", actor, Some(&name), now)?;
        Ok(true)
    }

    /// Marks `number` as blocked by `blocker` (`owner/name`, number), a native dependency.
    pub fn block(&mut self, repo: &str, number: u64, blocker: (&str, u64)) -> anyhow::Result<()> {
        let exists = self
            .repo(blocker.0)
            .is_some_and(|r| r.issues.contains_key(&blocker.1));
        if !exists {
            anyhow::bail!("no issue {}#{} to block with", blocker.0, blocker.1);
        }
        let issue = self.issue_mut(repo, number)?;
        issue.blocked_by.push((blocker.0.to_owned(), blocker.1));
        Ok(())
    }

    /// Edits the issue body (sets GraphQL `lastEditedAt`).
    pub fn edit_body(
        &mut self,
        repo: &str,
        number: u64,
        body: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let issue = self.issue_mut(repo, number)?;
        issue.body = Some(body.to_owned());
        issue.body_edited_at = Some(now);
        issue.updated_at = now;
        Ok(())
    }

    /// Changes the issue title as `actor`. GitHub records a `renamed` issue event with
    /// `rename: {from, to}` (REST "Issue event types": renamed); the title is not user content,
    /// so GraphQL `lastEditedAt` (the body's edit history) does not move. An unchanged title
    /// records nothing.
    pub fn edit_title(
        &mut self,
        repo: &str,
        number: u64,
        title: &str,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.add_user(&actor.login);
        let id = self.id();
        let issue = self.issue_mut(repo, number)?;
        if issue.title == title {
            return Ok(());
        }
        let old = std::mem::replace(&mut issue.title, title.to_owned());
        issue.updated_at = now;
        issue.events.push(Event {
            id,
            event: "renamed".to_owned(),
            actor,
            created_at: now,
            label: None,
            commit_id: None,
            rename: Some((old, title.to_owned())),
        });
        Ok(())
    }

    /// Closes (`Some(reason)`) or reopens (`None`) an issue as `actor`.
    pub fn set_open(
        &mut self,
        repo: &str,
        number: u64,
        close_reason: Option<&str>,
        actor: Actor,
        commit_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let id = self.id();
        let issue = self.issue_mut(repo, number)?;
        let open = close_reason.is_none();
        if issue.open == open {
            return Ok(());
        }
        issue.open = open;
        issue.state_reason = Some(close_reason.unwrap_or("reopened").to_owned());
        issue.closed_at = if open { None } else { Some(now) };
        issue.updated_at = now;
        issue.events.push(Event {
            id,
            event: if open { "reopened" } else { "closed" }.to_owned(),
            actor,
            created_at: now,
            label: None,
            commit_id: commit_id.map(str::to_owned),
            rename: None,
        });
        Ok(())
    }

    /// Adds a comment and returns its (global) id.
    pub fn add_comment(
        &mut self,
        repo: &str,
        number: u64,
        author: Actor,
        body: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        self.add_user(&author.login);
        let id = self.id();
        let r = self.repo_mut(repo)?;
        let issue = r
            .issues
            .get_mut(&number)
            .ok_or_else(|| anyhow!("no issue {repo}#{number}"))?;
        issue.updated_at = now;
        r.comments.push(Comment {
            id,
            issue: number,
            user: author,
            body: body.to_owned(),
            created_at: now,
            updated_at: now,
        });
        Ok(id)
    }

    /// Appends a commit to `branch` (created if absent) without closing anything.
    pub fn add_commit(
        &mut self,
        repo: &str,
        branch: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<String> {
        let n = self.id();
        let r = self.repo_mut(repo)?;
        let sha = fake_sha(&r.full_name(), branch, message, n);
        r.branches
            .entry(branch.to_owned())
            .or_default()
            .push(Commit {
                sha: sha.clone(),
                message: message.to_owned(),
                date: now,
            });
        Ok(sha)
    }

    /// Pushes a commit to `branch`; on the default branch, closes the issues the message
    /// references with a closing keyword (`Closes #N`, `fixes #N`, `Resolved: #N`, …) as
    /// `completed`, the way GitHub does.
    pub fn push_commit(
        &mut self,
        repo: &str,
        branch: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<String> {
        let sha = self.add_commit(repo, branch, message, now)?;
        let r = self.repo_mut(repo)?;
        if branch != r.default_branch {
            return Ok(sha);
        }
        let actor = Actor::user(&r.owner);
        for number in closing_references(message) {
            let closable = self
                .repo(repo)
                .and_then(|r| r.issues.get(&number))
                .is_some_and(|i| i.open && !i.is_pr);
            if closable {
                self.set_open(
                    repo,
                    number,
                    Some("completed"),
                    actor.clone(),
                    Some(&sha),
                    now,
                )?;
            }
        }
        Ok(sha)
    }

    pub fn add_check_run(
        &mut self,
        repo: &str,
        sha: &str,
        name: &str,
        status: &str,
        conclusion: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        const STATUSES: [&str; 6] = [
            "queued",
            "in_progress",
            "completed",
            "waiting",
            "requested",
            "pending",
        ];
        if !STATUSES.contains(&status) {
            bail!("check run status {status:?} is not one of {STATUSES:?}");
        }
        let id = self.id();
        self.repo_mut(repo)?
            .check_runs
            .entry(sha.to_owned())
            .or_default()
            .push(CheckRun {
                id,
                name: name.to_owned(),
                status: status.to_owned(),
                conclusion: conclusion.map(str::to_owned),
                started_at: now,
            });
        Ok(id)
    }

    pub fn add_status(
        &mut self,
        repo: &str,
        sha: &str,
        context: &str,
        state: &str,
        target_url: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        if !["error", "failure", "pending", "success"].contains(&state) {
            bail!("status state {state:?} is not error, failure, pending or success");
        }
        let id = self.id();
        self.repo_mut(repo)?
            .statuses
            .entry(sha.to_owned())
            .or_default()
            .push(CommitStatus {
                id,
                context: context.to_owned(),
                state: state.to_owned(),
                target_url: target_url.map(str::to_owned),
                created_at: now,
            });
        Ok(id)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn add_workflow_run(
        &mut self,
        repo: &str,
        sha: &str,
        branch: &str,
        name: &str,
        status: &str,
        conclusion: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        let id = self.id();
        self.repo_mut(repo)?.workflow_runs.push(WorkflowRun {
            id,
            name: name.to_owned(),
            head_sha: sha.to_owned(),
            head_branch: branch.to_owned(),
            status: status.to_owned(),
            conclusion: conclusion.map(str::to_owned),
            created_at: now,
        });
        Ok(id)
    }

    /// Uses up the primary budget: every request until the reset gets 403 with
    /// `x-ratelimit-remaining: 0`. The reset is `reset_in_secs` from `now`.
    pub fn exhaust_rate_limit(&mut self, now: DateTime<Utc>, reset_in_secs: i64) {
        self.rate.remaining = 0;
        self.rate.reset = (now + TimeDelta::seconds(reset_in_secs)).timestamp();
    }

    /// The next `requests` requests get 429 with `retry-after: retry_after_secs`.
    pub fn throttle(&mut self, requests: u64, retry_after_secs: u64) {
        self.throttle_requests = requests;
        self.throttle_retry_after = retry_after_secs;
    }
}

/// Seeds through the shared world with the simulated clock (what scenarios call).
pub fn push_commit(
    world: &crate::world::World,
    repo: &str,
    branch: &str,
    message: &str,
) -> anyhow::Result<String> {
    let now = world.sim.now();
    crate::infra::lock(&world.github)
        .push_commit(repo, branch, message, now)
        .with_context(|| format!("pushing to {repo} {branch}"))
}

/// What the simulated GitHub has charged so far, never reset: `(rest, graphql)` — REST
/// requests that cost primary rate limit (a `304 Not Modified` is free) and GraphQL points.
/// Read it before and after a tick for what the tick cost.
pub fn rate_used(world: &crate::world::World) -> (u64, u64) {
    let st = crate::infra::lock(&world.github);
    (st.rate.charged, st.graphql_rate.charged)
}

/// Issue numbers referenced with a closing keyword, in order, without duplicates.
pub fn closing_references(message: &str) -> Vec<u64> {
    const KEYWORDS: [&str; 9] = [
        "close", "closes", "closed", "fix", "fixes", "fixed", "resolve", "resolves", "resolved",
    ];
    let words: Vec<&str> = message.split_whitespace().collect();
    let mut out = Vec::new();
    for pair in words.windows(2) {
        let kw = pair[0].trim_end_matches(':').to_ascii_lowercase();
        if !KEYWORDS.contains(&kw.as_str()) {
            continue;
        }
        let Some(rest) = pair[1].strip_prefix('#') else {
            continue;
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let trailing_ok = rest[digits.len()..]
            .chars()
            .all(|c| matches!(c, '.' | ',' | ';' | ')' | '!'));
        if let Ok(n) = digits.parse::<u64>()
            && trailing_ok
            && !out.contains(&n)
        {
            out.push(n);
        }
    }
    out
}

/// A deterministic 40-hex-digit id.
fn fake_sha(repo: &str, branch: &str, message: &str, n: u64) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let part = |salt: u64| {
        let mut h = DefaultHasher::new();
        (salt, repo, branch, message, n).hash(&mut h);
        h.finish()
    };
    format!("{:016x}{:016x}{:08x}", part(1), part(2), n & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_keywords_are_found_case_insensitively() {
        assert_eq!(closing_references("Fix the thing\n\nCloses #12"), vec![12]);
        assert_eq!(
            closing_references("fixes #3, RESOLVED: #4 and fixed #3."),
            vec![3, 4]
        );
        assert_eq!(
            closing_references("refs #5, see #6, closes #x"),
            Vec::<u64>::new()
        );
    }
}
