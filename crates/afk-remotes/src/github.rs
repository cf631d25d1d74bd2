//! The GitHub tracker and CI client: issues, label events, collaborator permissions, comments,
//! commits and CI results over the REST API (plus one GraphQL query for body edits).
//!
//! It sends through octocrab's transport and auth (a token file, or a GitHub App installation)
//! but reads every answer with afk's own wire models (`wire`): octocrab's models reject real
//! values (`write` permission, new timeline event names) and its comment edit uses POST.

mod auth;
mod etag;
mod probe;
mod transport;
mod wire;

use afk_core::config::CiProvider;
use afk_core::evidence::CloseReason;
use afk_core::facts::Permission;
use afk_core::model::{IssueNumber, RepoName, Timestamp};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde_json::{Value, json};

use crate::error::{ErrorKind, RemoteError, Result};
use crate::http::{RetryPolicy, SecretFile};
use crate::tracker::{CiSignal, Comment, Commit, Issue, IssueExtras, IssueState, LabelChange};

pub use auth::{GitHubApp, GitHubAuth};
pub use etag::EtagCache;
use transport::{Answer, REMOTE, Transport};
use wire::{
    CheckRuns, CombinedStatus, GraphqlAnswer, WireComment, WireCommit, WireIssue, WirePermission,
    WorkflowRuns,
};

/// The first wait after a secondary rate limit without `retry-after` (a 403/429 without
/// reset hint): GitHub's docs ("Rate limits for the REST API", "Exceeding the rate limit") ask
/// for at least one minute, then exponentially longer waits. Give it to the client as
/// [`RetryPolicy::default_rate_limit_wait`]; a wait past the tick's deadline fails the request
/// as rate limited and the next tick continues.
pub const SECONDARY_RATE_LIMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The one GraphQL query afk sends: the body's last edit and the native blockers.
const EXTRAS_QUERY: &str = "query($owner: String!, $name: String!, $number: Int!) { repository(owner: $owner, name: $name) { issue(number: $number) { lastEditedAt blockedBy(first: 50) { totalCount nodes { number state repository { nameWithOwner } } } } } }";

/// The same without `blockedBy`, for servers whose schema has no issue dependencies (GitHub
/// Enterprise Server versions before them answer the full query with an `undefinedField`
/// error and no data).
const EXTRAS_QUERY_NO_BLOCKED_BY: &str = "query($owner: String!, $name: String!, $number: Int!) { repository(owner: $owner, name: $name) { issue(number: $number) { lastEditedAt } } }";

/// GitHub client (transport, auth, the operations afk needs). Clones share the ETag cache, the
/// request counters and what was learnt about the server's GraphQL schema.
#[derive(Debug, Clone)]
pub struct GitHub {
    http: Transport,
    /// Set once the server refused `Issue.blockedBy` as an unknown field: later queries leave
    /// it out (learnt once per client, that is once per tick).
    no_blocked_by: Arc<AtomicBool>,
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

fn repo_path(repo: &RepoName) -> String {
    format!("/repos/{}/{}", enc(repo.owner()), enc(repo.name()))
}

fn local(request: impl Into<String>, why: impl Into<String>) -> RemoteError {
    RemoteError::new(REMOTE, request, ErrorKind::Local(why.into()))
}

fn json_array(page: &Answer) -> Result<Vec<Value>> {
    page.json()
}

impl GitHub {
    /// `api_url`: `https://api.github.com` or a GitHub Enterprise `https://host/api/v3`.
    /// The token is read from its file for every request.
    pub fn new(api_url: &str, token: SecretFile, policy: RetryPolicy) -> Result<GitHub> {
        GitHub::with_auth(api_url, GitHubAuth::Token(token), policy)
    }

    /// A client with either credential. Building it reads no secret and sends nothing: an
    /// App's private key is read, and its installation token minted, by the first request.
    pub fn with_auth(api_url: &str, auth: GitHubAuth, policy: RetryPolicy) -> Result<GitHub> {
        Ok(GitHub {
            http: Transport::new(api_url, auth, policy)?,
            no_blocked_by: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The configured credential.
    pub fn auth(&self) -> &GitHubAuth {
        self.http.auth()
    }

    /// For a GitHub App: mints (or reuses) the installation token and says so; `false` for a
    /// token file. The token itself never leaves the client.
    pub async fn installation_token_ready(&self) -> Result<bool> {
        self.http.installation_token_ready().await
    }

    /// The App's current installation token, for git over HTTPS to the tracker's own host
    /// (the workspace puts it in git's environment, never in an argument or a log).
    pub(crate) async fn installation_token_for_git(&self) -> Result<String> {
        self.http.installation_token_for_git().await
    }

    /// Starts from a persisted ETag cache.
    pub fn with_etag_cache(self, cache: EtagCache) -> GitHub {
        self.http.set_etag_cache(cache);
        self
    }

    /// A snapshot of the ETag cache, to persist for the next tick.
    pub fn etag_cache(&self) -> EtagCache {
        self.http.etag_cache()
    }

    /// Requests answered with anything but `304 Not Modified`: the ones that cost primary
    /// rate limit (retries included).
    pub fn requests_made(&self) -> u64 {
        self.http.requests_made()
    }

    /// Conditional requests answered `304 Not Modified` (free of primary rate limit).
    pub fn requests_not_modified(&self) -> u64 {
        self.http.not_modified()
    }

    pub fn api_url(&self) -> &str {
        self.http.api()
    }

    /// Issues carrying `label` in `state`, all pages. Pull requests come back too, flagged
    /// `is_pull_request`.
    pub async fn list_issues(
        &self,
        repo: &RepoName,
        label: &str,
        state: IssueState,
    ) -> Result<Vec<Issue>> {
        let path = format!("{}/issues", repo_path(repo));
        if label.contains(',') {
            return Err(local(
                format!("GET {path}"),
                format!(
                    "the label {label:?} holds a comma, which GitHub's labels filter cannot express"
                ),
            ));
        }
        let first = format!(
            "{path}?state={}&labels={}&per_page=100",
            state.as_str(),
            enc(label)
        );
        let items: Vec<WireIssue> = self.http.get_all(&first, |p| p.json()).await?;
        Ok(items.into_iter().map(WireIssue::into_issue).collect())
    }

    /// The most recent `labeled` event for `label` on the issue, with its actor and the newest
    /// `renamed` event (title change) after it. GitHub does not document the order of
    /// `/events`, so every page is read (the last first, stepping back, the first one reused)
    /// and both are found by `created_at`, then by id, never by position.
    pub async fn latest_labeling(
        &self,
        repo: &RepoName,
        number: IssueNumber,
        label: &str,
    ) -> Result<Option<LabelChange>> {
        let first_url = format!("{}/issues/{number}/events?per_page=100", repo_path(repo));
        let first = self.http.get(&first_url, &[200]).await?;
        let mut found: Vec<(u64, LabelChange)> = Vec::new();
        // `Some(None)`: a `renamed` event whose time cannot be read (counted as after).
        let mut renames: Vec<Option<Timestamp>> = Vec::new();
        let mut collect = |page: &Answer| -> Result<()> {
            for item in json_array(page)?.iter() {
                if let Some(labeling) = wire::labeling(item, label) {
                    found.push(labeling);
                } else if let Some(at) = wire::renamed_at(item) {
                    renames.push(at);
                }
            }
            Ok(())
        };
        collect(&first)?;
        if let Some(last_url) = first.links.last.clone() {
            let mut page = self.http.get(&last_url, &[200]).await?;
            let mut pages = 2usize;
            loop {
                collect(&page)?;
                let Some(prev) = page.links.prev.clone() else {
                    break;
                };
                if page.links.first.as_deref() == Some(prev.as_str()) {
                    // The previous page is the first one, already read.
                    break;
                }
                pages += 1;
                if pages > 1000 {
                    return Err(RemoteError::new(
                        REMOTE,
                        page.request.clone(),
                        ErrorKind::Decode("more than 1000 pages of events; giving up".into()),
                    ));
                }
                page = self.http.get(&prev, &[200]).await?;
            }
        }
        let Some((_, mut change)) = found
            .into_iter()
            .max_by(|(ia, a), (ib, b)| a.at.cmp(&b.at).then(ia.cmp(ib)))
        else {
            return Ok(None);
        };
        // A rename at the labelling's own second counts as after it (fail closed).
        change.title_changed_after = renames
            .into_iter()
            .map(|at| at.unwrap_or(change.at))
            .filter(|at| *at >= change.at)
            .max();
        Ok(Some(change))
    }

    /// The login's permission on the repo. A 403 (the token lacks push access) or 404 (no
    /// such user, or no access) is an untrusted `Unknown`, not an error. A 403 that is a rate
    /// limit (see the transport) never gets here as an answer: it is waited out, or it is a
    /// `RateLimited` error and the labeller is not judged this tick.
    pub async fn permission(&self, repo: &RepoName, login: &str) -> Result<Permission> {
        let path = format!(
            "{}/collaborators/{}/permission",
            repo_path(repo),
            enc(login)
        );
        let answer = self.http.get(&path, &[200, 403, 404]).await?;
        Ok(match answer.status {
            200 => answer.json::<WirePermission>()?.into_permission(),
            403 => Permission::Unknown(format!(
                "GitHub refused the permission lookup for {login} on {repo} (403); afk's token needs push access to the repo"
            )),
            _ => Permission::Unknown(format!(
                "GitHub knows no user {login} with access to {repo} (404)"
            )),
        })
    }

    /// When the issue body was last edited (GraphQL `lastEditedAt`; `None` if never) and the
    /// issues it is blocked by (`blockedBy`, GitHub's native dependencies, at most 50 per
    /// issue), in one GraphQL query.
    ///
    /// A server whose schema has no `Issue.blockedBy` (older GitHub Enterprise Server) answers
    /// with an `undefinedField` error: the first such answer is logged once, naming the
    /// server, and this and every later query of this client go without it (body `Blocked by`
    /// references still count). A blocker the token cannot see comes back as a `null` node
    /// with a `NOT_FOUND` error: it is counted in [`IssueExtras::hidden_blockers`] (it blocks),
    /// not an error.
    pub async fn issue_extras(&self, repo: &RepoName, number: IssueNumber) -> Result<IssueExtras> {
        if !self.no_blocked_by.load(Ordering::SeqCst) {
            let gql = self.extras_query(repo, number, EXTRAS_QUERY).await?;
            if !gql.lacks_issue_field("blockedBy") {
                return self.extras_from(gql, repo, number, "lastEditedAt, blockedBy");
            }
            if !self.no_blocked_by.swap(true, Ordering::SeqCst) {
                tracing::warn!(
                    remote = REMOTE,
                    server = %self.http.api(),
                    "the GitHub server at {} has no issue dependencies in its GraphQL schema \
                     (Issue.blockedBy is unknown); native \"blocked by\" links are not read \
                     this tick, body \"Blocked by\" references still are",
                    self.http.api()
                );
            }
        }
        let gql = self
            .extras_query(repo, number, EXTRAS_QUERY_NO_BLOCKED_BY)
            .await?;
        self.extras_from(gql, repo, number, "lastEditedAt")
    }

    async fn extras_query(
        &self,
        repo: &RepoName,
        number: IssueNumber,
        query: &str,
    ) -> Result<GraphqlAnswer> {
        let body = json!({
            "query": query,
            "variables": {"owner": repo.owner(), "name": repo.name(), "number": number},
        });
        let url = self.http.graphql_url();
        let answer = self
            .http
            .send(Method::POST, &url, Some(&body), &[200], true)
            .await?;
        answer.json()
    }

    fn extras_from(
        &self,
        gql: GraphqlAnswer,
        repo: &RepoName,
        number: IssueNumber,
        fields: &str,
    ) -> Result<IssueExtras> {
        let what = format!(
            "{} ({repo}#{number} {fields})",
            self.http.describe(&Method::POST, &self.http.graphql_url())
        );
        if let Some(errors) = gql.errors() {
            return Err(RemoteError::new(
                REMOTE,
                what,
                ErrorKind::Status {
                    status: 200,
                    detail: format!("GraphQL errors: {errors}"),
                },
            ));
        }
        let issue = gql
            .data
            .and_then(|mut d| d.pointer_mut("/repository/issue").map(Value::take))
            .filter(|i| !i.is_null())
            .ok_or_else(|| {
                RemoteError::new(
                    REMOTE,
                    what.clone(),
                    ErrorKind::Decode("no repository.issue in the GraphQL answer".into()),
                )
            })?;
        serde_json::from_value::<wire::GraphqlIssue>(issue)
            .map(wire::GraphqlIssue::into_extras)
            .map_err(|e| RemoteError::new(REMOTE, what, ErrorKind::Decode(e.to_string())))
    }

    /// One issue (or pull request); `None` when it does not exist (404) or was deleted (410).
    pub async fn issue(&self, repo: &RepoName, number: IssueNumber) -> Result<Option<Issue>> {
        let path = format!("{}/issues/{number}", repo_path(repo));
        let answer = self.http.get(&path, &[200, 404, 410]).await?;
        if answer.status != 200 {
            return Ok(None);
        }
        Ok(Some(answer.json::<WireIssue>()?.into_issue()))
    }

    pub async fn default_branch(&self, repo: &RepoName) -> Result<String> {
        #[derive(serde::Deserialize)]
        struct RepoInfo {
            default_branch: String,
        }
        let answer = self.http.get(&repo_path(repo), &[200]).await?;
        Ok(answer.json::<RepoInfo>()?.default_branch)
    }

    /// Adds labels (no request for an empty list: GitHub refuses one).
    pub async fn add_labels(
        &self,
        repo: &RepoName,
        number: IssueNumber,
        labels: &[String],
    ) -> Result<()> {
        if labels.is_empty() {
            return Ok(());
        }
        let path = format!("{}/issues/{number}/labels", repo_path(repo));
        let body = json!({ "labels": labels });
        self.http
            .send(Method::POST, &path, Some(&body), &[200], true)
            .await
            .map(drop)
    }

    /// Removes a label; a label that is already gone (404) is success.
    pub async fn remove_label(
        &self,
        repo: &RepoName,
        number: IssueNumber,
        label: &str,
    ) -> Result<()> {
        let path = format!("{}/issues/{number}/labels/{}", repo_path(repo), enc(label));
        self.http
            .send(Method::DELETE, &path, None, &[200, 204, 404], true)
            .await
            .map(drop)
    }

    /// Every comment on the issue, oldest first.
    pub async fn list_comments(
        &self,
        repo: &RepoName,
        number: IssueNumber,
    ) -> Result<Vec<Comment>> {
        let first = format!("{}/issues/{number}/comments?per_page=100", repo_path(repo));
        let items: Vec<WireComment> = self.http.get_all(&first, |p| p.json()).await?;
        Ok(items.into_iter().map(WireComment::into_comment).collect())
    }

    /// Creates a comment. Not retried once it may have reached GitHub (it would duplicate).
    pub async fn create_comment(
        &self,
        repo: &RepoName,
        number: IssueNumber,
        body: &str,
    ) -> Result<Comment> {
        let path = format!("{}/issues/{number}/comments", repo_path(repo));
        let answer = self
            .http
            .send(
                Method::POST,
                &path,
                Some(&json!({ "body": body })),
                &[201],
                false,
            )
            .await?;
        Ok(answer.json::<WireComment>()?.into_comment())
    }

    /// Replaces a comment's body (PATCH; safe to repeat).
    pub async fn edit_comment(&self, repo: &RepoName, comment_id: u64, body: &str) -> Result<()> {
        let path = format!("{}/issues/comments/{comment_id}", repo_path(repo));
        self.http
            .send(
                Method::PATCH,
                &path,
                Some(&json!({ "body": body })),
                &[200],
                true,
            )
            .await
            .map(drop)
    }

    pub async fn close_issue(
        &self,
        repo: &RepoName,
        number: IssueNumber,
        reason: CloseReason,
    ) -> Result<()> {
        let mut body = json!({ "state": "closed" });
        if let Some(r) = wire::state_reason(&reason) {
            body["state_reason"] = json!(r);
        }
        self.patch_issue(repo, number, &body).await
    }

    pub async fn reopen_issue(&self, repo: &RepoName, number: IssueNumber) -> Result<()> {
        self.patch_issue(repo, number, &json!({ "state": "open" }))
            .await
    }

    async fn patch_issue(&self, repo: &RepoName, number: IssueNumber, body: &Value) -> Result<()> {
        let path = format!("{}/issues/{number}", repo_path(repo));
        self.http
            .send(Method::PATCH, &path, Some(body), &[200], true)
            .await
            .map(drop)
    }

    /// Commits on `branch` since `since`, newest first, all pages. An empty repository (409)
    /// has none.
    pub async fn commits_since(
        &self,
        repo: &RepoName,
        branch: &str,
        since: Timestamp,
    ) -> Result<Vec<Commit>> {
        let path = format!("{}/commits", repo_path(repo));
        let since = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let first = format!(
            "{path}?sha={}&since={}&per_page=100",
            enc(branch),
            enc(&since)
        );
        let head = self.http.get(&first, &[200, 409]).await?;
        if head.status == 409 {
            return Ok(Vec::new());
        }
        let mut items: Vec<WireCommit> = head.json()?;
        if let Some(next) = head.links.next {
            items.extend(self.http.get_all::<WireCommit>(&next, |p| p.json()).await?);
        }
        Ok(items
            .into_iter()
            .filter_map(WireCommit::into_commit)
            .collect())
    }

    /// CI results for a commit from one GitHub provider. An empty list means nothing has
    /// reported yet.
    pub async fn ci_signals(
        &self,
        repo: &RepoName,
        sha: &str,
        provider: CiProvider,
    ) -> Result<Vec<CiSignal>> {
        let base = repo_path(repo);
        match provider {
            CiProvider::GithubChecks => {
                let first = format!("{base}/commits/{}/check-runs?per_page=100", enc(sha));
                let pages = self
                    .http
                    .get_all(&first, |p| Ok(p.json::<CheckRuns>()?.signals()))
                    .await?;
                Ok(pages)
            }
            CiProvider::GithubStatus => {
                let first = format!("{base}/commits/{}/status?per_page=100", enc(sha));
                self.http
                    .get_all(&first, |p| Ok(p.json::<CombinedStatus>()?.signals()))
                    .await
            }
            CiProvider::GithubActions => {
                let first = format!("{base}/actions/runs?head_sha={}&per_page=100", enc(sha));
                let mut runs = self
                    .http
                    .get_all(&first, |p| Ok(p.json::<WorkflowRuns>()?.runs()))
                    .await?;
                // A workflow re-run for the same commit: only the newest run of each counts.
                runs.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
                let mut out: Vec<CiSignal> = Vec::new();
                for (_, signal) in runs {
                    if !out.iter().any(|s| s.name == signal.name) {
                        out.push(signal);
                    }
                }
                Ok(out)
            }
            other => Err(local(
                format!("ci {other:?}"),
                format!("{other:?} is not a GitHub provider; check the repo's ci list"),
            )),
        }
    }
}
