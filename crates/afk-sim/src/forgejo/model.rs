//! The simulated Forgejo's data and the rules that change it, free of HTTP.
//!
//! Every operation returns an [`ApiError`] carrying the status the real service answers with
//! (404 for an unknown repo or issue, 403 without the needed access, 422 for a request that
//! names something that does not exist), so the HTTP layer only renders.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// A refusal with the status and message Forgejo would send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn not_found() -> ApiError {
        ApiError::new(404, "The target couldn't be found.")
    }
    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(422, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

/// An account on the simulated instance.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: u64,
    pub login: String,
    /// Site administrator (may query every permission).
    pub is_admin: bool,
}

/// A repository label.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub id: u64,
    pub name: String,
    pub color: String,
}

/// One timeline entry of an issue (Forgejo keeps comments and events in one table).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: u64,
    /// `comment`, `label`, `close`, `reopen`, `commit_ref`, …
    pub kind: String,
    pub user: String,
    /// For `label`: `"1"` added, `""` removed. For `comment`: the text.
    pub body: String,
    /// For `label`: the label's id.
    pub label: Option<u64>,
    /// For `change_title`: the old and the new title (`old_title`, `new_title`).
    pub titles: Option<(String, String)>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An issue or a pull request (they share the index sequence, as on Forgejo).
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub id: u64,
    pub index: u64,
    pub title: String,
    pub body: String,
    pub open: bool,
    /// Label ids, in the order they were added.
    pub labels: Vec<u64>,
    pub author: String,
    pub pull_request: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub timeline: Vec<Event>,
    /// Issues this one depends on (native dependencies): `(owner/name, index)`.
    pub depends_on: Vec<(String, u64)>,
}

impl Issue {
    pub fn comment_count(&self) -> usize {
        self.timeline.iter().filter(|e| e.kind == "comment").count()
    }
}

/// A commit on a branch.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub sha: String,
    pub message: String,
    pub author: String,
    pub at: DateTime<Utc>,
}

/// A commit status as reported by CI (`status` is Forgejo's key).
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub id: u64,
    pub context: String,
    /// `pending|success|error|failure|warning|skipped`
    pub status: String,
    pub target_url: String,
    pub description: String,
    pub creator: String,
    pub created_at: DateTime<Utc>,
}

/// The commit status values Forgejo accepts.
pub const STATUS_VALUES: [&str; 6] = [
    "pending", "success", "error", "failure", "warning", "skipped",
];

/// The Forgejo Actions run states.
pub const RUN_STATUS_VALUES: [&str; 8] = [
    "unknown",
    "waiting",
    "running",
    "success",
    "failure",
    "cancelled",
    "skipped",
    "blocked",
];

/// A Forgejo Actions workflow run.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRun {
    pub id: u64,
    pub index_in_repo: u64,
    pub workflow_id: String,
    pub title: String,
    pub status: String,
    pub commit_sha: String,
    pub event: String,
    pub prettyref: String,
    pub trigger_user: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// A repository and everything in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Repo {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub default_branch: String,
    pub private: bool,
    /// Lowercased login → `read|write|admin`.
    pub collaborators: BTreeMap<String, String>,
    pub labels: Vec<Label>,
    pub issues: BTreeMap<u64, Issue>,
    /// Branch → commits, oldest first.
    pub branches: BTreeMap<String, Vec<Commit>>,
    /// Commit SHA → statuses, oldest first.
    pub statuses: BTreeMap<String, Vec<Status>>,
    pub runs: Vec<ActionRun>,
}

impl Repo {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
    pub fn label_by_name(&self, name: &str) -> Option<&Label> {
        self.labels.iter().find(|l| l.name == name)
    }
    pub fn label_by_id(&self, id: u64) -> Option<&Label> {
        self.labels.iter().find(|l| l.id == id)
    }
    pub fn issue_mut(&mut self, index: u64) -> ApiResult<&mut Issue> {
        self.issues.get_mut(&index).ok_or_else(ApiError::not_found)
    }
    /// The commit a ref names: a branch's head, or a full SHA as given.
    pub fn resolve_ref(&self, reference: &str) -> Option<String> {
        if let Some(head) = self.branches.get(reference).and_then(|c| c.last()) {
            return Some(head.sha.clone());
        }
        let is_sha = reference.len() == 40 && reference.bytes().all(|b| b.is_ascii_hexdigit());
        is_sha.then(|| reference.to_ascii_lowercase())
    }
    /// The latest status of every context for a commit, ordered by context's first report.
    pub fn latest_statuses(&self, sha: &str) -> Vec<&Status> {
        let mut latest: Vec<&Status> = Vec::new();
        for s in self.statuses.get(sha).into_iter().flatten() {
            match latest.iter_mut().find(|l| l.context == s.context) {
                Some(slot) => *slot = s,
                None => latest.push(s),
            }
        }
        latest
    }
}

/// How much a caller may do on a repo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    None,
    Read,
    Write,
    Admin,
    Owner,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::None => "none",
            Access::Read => "read",
            Access::Write => "write",
            Access::Admin => "admin",
            Access::Owner => "owner",
        }
    }
    pub fn parse(s: &str) -> Option<Access> {
        match s {
            "none" => Some(Access::None),
            "read" => Some(Access::Read),
            "write" => Some(Access::Write),
            "admin" => Some(Access::Admin),
            "owner" => Some(Access::Owner),
            _ => None,
        }
    }
}

/// Everything the simulated Forgejo knows.
#[derive(Debug, Default)]
pub struct State {
    /// Lowercased login → user.
    pub users: BTreeMap<String, User>,
    /// Access token → lowercased login.
    pub tokens: BTreeMap<String, String>,
    /// Lowercased `owner/name` → repo.
    pub repos: BTreeMap<String, Repo>,
    next_id: u64,
}

fn key(s: &str) -> String {
    s.to_ascii_lowercase()
}

impl State {
    /// A fresh id, unique across every kind of object.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Creates the user if missing; returns its login as stored.
    pub fn ensure_user(&mut self, login: &str) -> String {
        if let Some(u) = self.users.get(&key(login)) {
            return u.login.clone();
        }
        let id = self.next_id();
        self.users.insert(
            key(login),
            User {
                id,
                login: login.to_owned(),
                is_admin: false,
            },
        );
        login.to_owned()
    }

    pub fn user(&self, login: &str) -> Option<&User> {
        self.users.get(&key(login))
    }

    /// The login an `Authorization` token belongs to.
    pub fn login_for_token(&self, token: &str) -> Option<String> {
        let k = self.tokens.get(token)?;
        self.users.get(k).map(|u| u.login.clone())
    }

    pub fn repo(&self, full: &str) -> Option<&Repo> {
        self.repos.get(&key(full))
    }

    pub fn repo_mut(&mut self, full: &str) -> ApiResult<&mut Repo> {
        self.repos
            .get_mut(&key(full))
            .ok_or_else(ApiError::not_found)
    }

    /// What `login` may do on the repo, as the permission endpoint reports it.
    pub fn access(&self, repo: &Repo, login: &str) -> Access {
        if repo.owner.eq_ignore_ascii_case(login) {
            return Access::Owner;
        }
        if self.user(login).is_some_and(|u| u.is_admin) {
            return Access::Admin;
        }
        if let Some(p) = repo
            .collaborators
            .get(&key(login))
            .and_then(|p| Access::parse(p))
        {
            return p;
        }
        if repo.private {
            Access::None
        } else {
            Access::Read
        }
    }

    /// The repo for a caller that needs at least `need`: 404 when the caller cannot see it
    /// (as Forgejo hides private repos), 403 when it can see but not change it.
    pub fn authorize(&mut self, full: &str, caller: &str, need: Access) -> ApiResult<&mut Repo> {
        let have = match self.repo(full) {
            Some(r) => self.access(r, caller),
            None => return Err(ApiError::not_found()),
        };
        if have < Access::Read {
            return Err(ApiError::not_found());
        }
        if have < need {
            return Err(ApiError::new(
                403,
                format!(
                    "user {caller} does not have {} access to {full}",
                    need.as_str()
                ),
            ));
        }
        self.repo_mut(full)
    }

    /// Adds labels (by id or name) to an issue on behalf of `actor`, recording a timeline
    /// `label` event (`body: "1"`) for each label that was not already there.
    pub fn add_labels(
        &mut self,
        full: &str,
        index: u64,
        refs: &[LabelRef],
        actor: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<Vec<Label>> {
        let mut ids = Vec::new();
        {
            let repo = self.repo_mut(full)?;
            repo.issue_mut(index)?;
            for r in refs {
                let label = match r {
                    LabelRef::Id(id) => repo.label_by_id(*id),
                    LabelRef::Name(n) => repo.label_by_name(n),
                };
                // Forgejo resolves names with `GetLabelIDsInRepoByNames` and ids with
                // `GetLabelsByIDs`, both of which leave out what the repo does not have: an
                // unknown label is dropped silently and the request still succeeds
                // (routers/api/v1/repo/issue_label.go, `prepareForReplaceOrAdd`).
                if let Some(l) = label {
                    ids.push(l.id);
                }
            }
        }
        let mut event_ids = Vec::new();
        for _ in &ids {
            event_ids.push(self.next_id());
        }
        let repo = self.repo_mut(full)?;
        let issue = repo.issue_mut(index)?;
        for (label, event_id) in ids.into_iter().zip(event_ids) {
            if issue.labels.contains(&label) {
                continue;
            }
            issue.labels.push(label);
            issue
                .timeline
                .push(label_event(event_id, actor, label, true, now));
            issue.updated_at = now;
        }
        let on_issue = issue.labels.clone();
        Ok(on_issue
            .iter()
            .filter_map(|id| repo.label_by_id(*id).cloned())
            .collect())
    }

    /// Removes one label (by id or name): 422 when the repo has no such label, 404 when the
    /// issue does not carry it.
    pub fn remove_label(
        &mut self,
        full: &str,
        index: u64,
        label: &LabelRef,
        actor: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<()> {
        let event_id = self.next_id();
        let repo = self.repo_mut(full)?;
        repo.issue_mut(index)?;
        let id = match label {
            LabelRef::Id(id) => repo.label_by_id(*id),
            LabelRef::Name(n) => repo.label_by_name(n),
        }
        .map(|l| l.id)
        .ok_or_else(|| {
            ApiError::unprocessable(format!("label does not exist [{}]", label.describe()))
        })?;
        let issue = repo.issue_mut(index)?;
        let Some(pos) = issue.labels.iter().position(|l| *l == id) else {
            return Err(ApiError::not_found());
        };
        issue.labels.remove(pos);
        issue
            .timeline
            .push(label_event(event_id, actor, id, false, now));
        issue.updated_at = now;
        Ok(())
    }

    /// Opens or closes an issue, recording a `close`/`reopen` event when the state changes.
    pub fn set_open(
        &mut self,
        full: &str,
        index: u64,
        open: bool,
        actor: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<()> {
        let event_id = self.next_id();
        let issue = self.repo_mut(full)?.issue_mut(index)?;
        if issue.open == open {
            return Ok(());
        }
        issue.open = open;
        issue.closed_at = if open { None } else { Some(now) };
        issue.updated_at = now;
        issue.timeline.push(Event {
            id: event_id,
            kind: if open { "reopen" } else { "close" }.to_owned(),
            user: actor.to_owned(),
            body: String::new(),
            label: None,
            titles: None,
            created_at: now,
            updated_at: now,
        });
        Ok(())
    }

    /// Edits an issue's title and/or body as `actor`, the way Forgejo's `EditIssue` does:
    /// a new title goes through `issue_service.ChangeTitle`, which records a `change_title`
    /// timeline entry with `old_title`/`new_title` (`issues_model.ChangeIssueTitle`), and
    /// creating it moves the issue's `updated_unix` (`updateCommentInfos` ends with
    /// `UpdateIssueCols(…, "updated_unix")`); a new body goes through `ChangeIssueContent`,
    /// which records no timeline entry (only content history, not in the API) but moves
    /// `updated_unix` (an xorm `updated` column, set by `UpdateIssueCols(…, "content")`).
    /// An unchanged title records nothing.
    pub fn edit_issue(
        &mut self,
        full: &str,
        index: u64,
        title: Option<&str>,
        body: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<()> {
        let event_id = self.next_id();
        let issue = self.repo_mut(full)?.issue_mut(index)?;
        if let Some(t) = title
            && t != issue.title
        {
            let old = std::mem::replace(&mut issue.title, t.to_owned());
            issue.timeline.push(Event {
                id: event_id,
                kind: "change_title".to_owned(),
                user: actor.to_owned(),
                body: String::new(),
                label: None,
                titles: Some((old, t.to_owned())),
                created_at: now,
                updated_at: now,
            });
            issue.updated_at = now;
        }
        if let Some(b) = body {
            issue.body = b.to_owned();
            issue.updated_at = now;
        }
        Ok(())
    }

    /// Appends a comment; returns its id.
    pub fn add_comment(
        &mut self,
        full: &str,
        index: u64,
        author: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<u64> {
        let id = self.next_id();
        let issue = self.repo_mut(full)?.issue_mut(index)?;
        issue.timeline.push(Event {
            id,
            kind: "comment".to_owned(),
            user: author.to_owned(),
            body: body.to_owned(),
            label: None,
            titles: None,
            created_at: now,
            updated_at: now,
        });
        issue.updated_at = now;
        Ok(id)
    }

    /// Finds a comment anywhere in the repo: (issue index, position in its timeline).
    pub fn find_comment(&self, full: &str, id: u64) -> ApiResult<(u64, usize)> {
        let repo = self.repo(full).ok_or_else(ApiError::not_found)?;
        repo.issues
            .values()
            .find_map(|i| {
                i.timeline
                    .iter()
                    .position(|e| e.id == id && e.kind == "comment")
                    .map(|pos| (i.index, pos))
            })
            .ok_or_else(ApiError::not_found)
    }
}

/// A label named in a request: a numeric id or a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelRef {
    Id(u64),
    Name(String),
}

impl LabelRef {
    fn describe(&self) -> String {
        match self {
            LabelRef::Id(id) => format!("id: {id}"),
            LabelRef::Name(n) => format!("name: {n}"),
        }
    }
}

fn label_event(id: u64, actor: &str, label: u64, added: bool, now: DateTime<Utc>) -> Event {
    Event {
        id,
        kind: "label".to_owned(),
        user: actor.to_owned(),
        body: if added { "1" } else { "" }.to_owned(),
        label: Some(label),
        titles: None,
        created_at: now,
        updated_at: now,
    }
}

/// The issue numbers a commit message closes in `full` with Forgejo's closing keywords
/// (`close[sd]`, `fix(es|ed)`, `resolve[sd]`, case-insensitive, optional `:`), followed by
/// `#N` or `owner/name#N` naming this repo.
pub fn closing_references(message: &str, full: &str) -> Vec<u64> {
    const KEYWORDS: [&str; 9] = [
        "close", "closes", "closed", "fix", "fixes", "fixed", "resolve", "resolves", "resolved",
    ];
    let words: Vec<&str> = message.split_whitespace().collect();
    let mut out = Vec::new();
    for pair in words.windows(2) {
        let word = pair[0]
            .trim_start_matches(['(', '['])
            .trim_end_matches(':')
            .to_ascii_lowercase();
        if !KEYWORDS.contains(&word.as_str()) {
            continue;
        }
        let Some((repo_part, number)) = pair[1].split_once('#') else {
            continue;
        };
        if !repo_part.is_empty() && !repo_part.eq_ignore_ascii_case(full) {
            continue;
        }
        let digits: String = number.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse::<u64>()
            && !out.contains(&n)
        {
            out.push(n);
        }
    }
    out
}

/// A deterministic, git-looking 40-hex SHA for the `n`th simulated commit.
pub fn fake_sha(seed: &str, n: u64) -> String {
    let mut out = String::with_capacity(40);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ n;
    for round in 0u64..3 {
        for b in seed.bytes().chain(round.to_le_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out.truncate(40);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_keywords_follow_forgejo() {
        assert_eq!(closing_references("feat: x\n\nCloses #42", "o/r"), vec![42]);
        assert_eq!(closing_references("fix: y (fixes #7)", "o/r"), vec![7]);
        assert_eq!(
            closing_references("Resolved: o/r#3, closes other/r#4", "o/r"),
            vec![3]
        );
        assert!(closing_references("refs #42; see #43", "o/r").is_empty());
    }

    #[test]
    fn fake_shas_are_distinct_hex() {
        let a = fake_sha("o/r main x", 1);
        let b = fake_sha("o/r main x", 2);
        assert_eq!(a.len(), 40);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
