//! The simulated GitHub's data model: repos, issues, events, comments, commits, CI results
//! and the rate-limit budget.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// A login that acts on GitHub: a user, or a bot (optionally acting through an app).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub login: String,
    pub bot: bool,
    /// Set when the action was performed via a GitHub App (`performed_via_github_app`).
    pub app: Option<String>,
}

impl Actor {
    pub fn user(login: &str) -> Actor {
        Actor {
            login: login.to_owned(),
            bot: false,
            app: None,
        }
    }
    pub fn bot(login: &str) -> Actor {
        Actor {
            login: login.to_owned(),
            bot: true,
            app: None,
        }
    }
}

/// A collaborator's role on a repository (GitHub's built-in roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Maintain,
    Write,
    Triage,
    Read,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "maintain" => Some(Role::Maintain),
            "write" => Some(Role::Write),
            "triage" => Some(Role::Triage),
            "read" => Some(Role::Read),
            _ => None,
        }
    }
    /// `role_name` on the permission endpoint.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Maintain => "maintain",
            Role::Write => "write",
            Role::Triage => "triage",
            Role::Read => "read",
        }
    }
    /// The legacy `permission` value: maintain reads as write, triage as read.
    pub fn legacy(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Maintain | Role::Write => "write",
            Role::Triage | Role::Read => "read",
        }
    }
    pub fn can_push(self) -> bool {
        matches!(self, Role::Admin | Role::Maintain | Role::Write)
    }
}

/// One entry of an issue's event history (`/events`, `/timeline`).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: u64,
    /// `labeled`, `unlabeled`, `closed`, `reopened`, or any other name (also unknown ones).
    pub event: String,
    pub actor: Actor,
    pub created_at: DateTime<Utc>,
    pub label: Option<String>,
    pub commit_id: Option<String>,
    /// For `renamed`: the old and the new title (`rename: {from, to}`).
    pub rename: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    /// GraphQL `lastEditedAt`: set when the body is edited after creation.
    pub body_edited_at: Option<DateTime<Utc>>,
    /// Native "blocked by" links: `(owner/name, number)` of each blocking issue.
    pub blocked_by: Vec<(String, u64)>,
    pub open: bool,
    /// `completed`, `not_planned`, `duplicate`, `reopened` or none.
    pub state_reason: Option<String>,
    pub labels: Vec<String>,
    pub user: Actor,
    pub is_pr: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    /// Global across the simulated GitHub, like the real int64 ids.
    pub id: u64,
    pub issue: u64,
    pub user: Actor,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub sha: String,
    pub message: String,
    pub date: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckRun {
    pub id: u64,
    pub name: String,
    /// `queued`, `in_progress`, `completed`, `waiting`, `requested`, `pending`.
    pub status: String,
    /// Set once completed: `success`, `failure`, `neutral`, `cancelled`, `skipped`, …
    pub conclusion: Option<String>,
    pub started_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommitStatus {
    pub id: u64,
    pub context: String,
    /// `error`, `failure`, `pending`, `success`.
    pub state: String,
    pub target_url: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRun {
    pub id: u64,
    pub name: String,
    pub head_sha: String,
    pub head_branch: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Repo {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub default_branch: String,
    pub private: bool,
    /// Keyed by lowercase login.
    pub collaborators: BTreeMap<String, (String, Role)>,
    pub issues: BTreeMap<u64, Issue>,
    /// In creation (= id) order.
    pub comments: Vec<Comment>,
    /// Oldest first per branch.
    pub branches: BTreeMap<String, Vec<Commit>>,
    pub check_runs: BTreeMap<String, Vec<CheckRun>>,
    pub statuses: BTreeMap<String, Vec<CommitStatus>>,
    pub workflow_runs: Vec<WorkflowRun>,
}

impl Repo {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
    /// The caller's role: the owner is admin, collaborators have theirs.
    pub fn role_of(&self, login: &str) -> Option<Role> {
        if login.eq_ignore_ascii_case(&self.owner) {
            return Some(Role::Admin);
        }
        self.collaborators
            .get(&login.to_ascii_lowercase())
            .map(|(_, r)| *r)
    }
    /// A branch name or a sha, resolved to a commit sha.
    pub fn resolve_ref(&self, r: &str) -> String {
        match self.branches.get(r).and_then(|c| c.last()) {
            Some(head) => head.sha.clone(),
            None => r.to_owned(),
        }
    }
    pub(super) fn next_number(&self) -> u64 {
        self.issues.keys().next_back().copied().unwrap_or(0) + 1
    }
}

/// The primary rate-limit budget of the one simulated token holder class.
#[derive(Debug, Clone, PartialEq)]
pub struct RateBudget {
    pub limit: u64,
    pub remaining: u64,
    /// Epoch seconds when the window resets (from the simulated clock).
    pub reset: i64,
    /// Everything charged since the simulator started, across windows (what a tick cost).
    pub charged: u64,
}

impl Default for RateBudget {
    fn default() -> Self {
        RateBudget {
            limit: 5000,
            remaining: 5000,
            reset: 0,
            charged: 0,
        }
    }
}

impl RateBudget {
    /// Starts a new window when the old one has passed.
    pub fn refresh(&mut self, now: DateTime<Utc>) {
        if now.timestamp() >= self.reset {
            self.remaining = self.limit;
            self.reset = now.timestamp() + 3600;
        }
    }

    /// Spends `points` of the window (REST: one per request; GraphQL: the query's cost).
    pub fn charge(&mut self, points: u64) {
        self.remaining = self.remaining.saturating_sub(points);
        self.charged = self.charged.saturating_add(points);
    }
}
