//! The GitHub tracker and CI client: issues, label events, collaborator permissions, comments,
//! commits and CI results over the REST API, plus batched GraphQL queries for body edit times
//! and native blockers (`graphql`).
//!
//! It sends through octocrab's transport and auth (a token file, or a GitHub App installation)
//! but reads every answer with afk's own wire models (`wire`): octocrab's models reject real
//! values (`write` permission, new timeline event names) and its comment edit uses POST.

mod auth;
mod budget;
mod etag;
mod etag_store;
mod extras;
mod graphql;
mod probe;
mod transport;
mod wire;

use afk_core::config::CiProvider;
use afk_core::evidence::CloseReason;
use afk_core::facts::Permission;
use afk_core::model::{IssueNumber, RepoName, Timestamp};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde_json::{Value, json};

use crate::error::{ErrorKind, RemoteError, Result};
use crate::http::{RetryPolicy, SecretFile};
use crate::tracker::{CiSignal, Comment, Commit, Issue, IssueState, LabelChange};

pub use auth::{GitHubApp, GitHubAuth};
pub use etag::EtagCache;
pub use etag_store::EtagStore;
pub use graphql::{GraphqlCost, MAX_ISSUES_PER_QUERY};
use transport::{Answer, REMOTE, Transport};
use wire::{
    CheckRuns, CombinedStatus, WireComment, WireCommit, WireIssue, WirePermission, WorkflowRuns,
};

/// The first wait after a secondary rate limit without `retry-after` (a 403/429 without
/// reset hint): GitHub's docs ("Rate limits for the REST API", "Exceeding the rate limit") ask
/// for at least one minute, then exponentially longer waits. Give it to the client as
/// [`RetryPolicy::default_rate_limit_wait`]; a wait past the tick's deadline fails the request
/// as rate limited and the next tick continues.
pub const SECONDARY_RATE_LIMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// GitHub client (transport, auth, the operations afk needs). Clones share the ETag cache, the
/// request counters, the GraphQL points spent and what was learnt about the server's GraphQL
/// schema.
#[derive(Debug, Clone)]
pub struct GitHub {
    http: Transport,
    /// Set once the server refused `Issue.blockedBy` as an unknown field: later queries leave
    /// it out (learnt once per client, that is once per tick).
    no_blocked_by: Arc<AtomicBool>,
    /// GraphQL points this client spent (one client per tick).
    graphql_cost: Arc<Mutex<GraphqlCost>>,
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
            graphql_cost: Arc::new(Mutex::new(GraphqlCost::default())),
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

    /// Starts from a persisted conditional-request cache (see [`EtagStore`]).
    pub fn with_etag_cache(self, cache: EtagCache) -> GitHub {
        self.http.set_etag_cache(cache);
        self
    }

    /// A snapshot of the conditional-request cache, to persist for the next tick.
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

    /// GraphQL queries sent and the points they cost (from each answer's `rateLimit`), and
    /// the newest `remaining`: what this client (tick) spent of the separate GraphQL budget.
    pub fn graphql_cost(&self) -> GraphqlCost {
        self.graphql_cost
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
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
