//! The GitHub tracker and CI client: issues, label events, collaborator permissions, comments,
//! commits and CI results over the REST API (plus one GraphQL query for body edits).
//!
//! Wire facts it is built against: the shared remotes notes, §A. It speaks HTTP itself (over
//! reqwest) rather than through octocrab, whose models reject real values (`write` permission,
//! new timeline event names) and which edits comments with POST.

mod etag;
mod probe;
mod transport;
mod wire;

use afk_core::config::CiProvider;
use afk_core::evidence::CloseReason;
use afk_core::facts::Permission;
use afk_core::model::{IssueNumber, RepoName, Timestamp};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde_json::{Value, json};

use crate::error::{ErrorKind, RemoteError, Result};
use crate::http::{RetryPolicy, SecretFile};
use crate::tracker::{CiSignal, Comment, Commit, Issue, IssueExtras, IssueState, LabelChange};

pub use etag::EtagCache;
use transport::{Answer, REMOTE, Transport};
use wire::{
    CheckRuns, CombinedStatus, GraphqlAnswer, WireComment, WireCommit, WireIssue, WirePermission,
    WorkflowRuns,
};

/// The one GraphQL query afk sends: the body's last edit and the native blockers.
const EXTRAS_QUERY: &str = "query($owner: String!, $name: String!, $number: Int!) { repository(owner: $owner, name: $name) { issue(number: $number) { lastEditedAt blockedBy(first: 50) { totalCount nodes { number state repository { nameWithOwner } } } } } }";

/// GitHub client (transport, auth, the operations afk needs). Clones share the ETag cache and
/// the request counters.
#[derive(Debug, Clone)]
pub struct GitHub {
    http: Transport,
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
        Ok(GitHub {
            http: Transport::new(api_url, token, policy)?,
        })
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

    /// The most recent `labeled` event for `label` on the issue, with its actor. Reads the
    /// last page of the events first (they come oldest first) and steps backwards.
    pub async fn latest_labeling(
        &self,
        repo: &RepoName,
        number: IssueNumber,
        label: &str,
    ) -> Result<Option<LabelChange>> {
        let first_url = format!("{}/issues/{number}/events?per_page=100", repo_path(repo));
        let first = self.http.get(&first_url, &[200]).await?;
        let find = |page: &Answer| -> Result<Option<LabelChange>> {
            let items = json_array(page)?;
            Ok(items.iter().rev().find_map(|i| wire::labeling(i, label)))
        };
        let Some(last_url) = first.links.last.clone() else {
            return find(&first);
        };
        let mut page = self.http.get(&last_url, &[200]).await?;
        let mut pages = 2usize;
        loop {
            if let Some(found) = find(&page)? {
                return Ok(Some(found));
            }
            let Some(prev) = page.links.prev.clone() else {
                return Ok(None);
            };
            if page.links.first.as_deref() == Some(prev.as_str()) {
                // The previous page is the first one, already read.
                return find(&first);
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

    /// The login's permission on the repo. A 403 (the token lacks push access) or 404 (no
    /// such user, or no access) is an untrusted `Unknown`, not an error.
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
    pub async fn issue_extras(&self, repo: &RepoName, number: IssueNumber) -> Result<IssueExtras> {
        let body = json!({
            "query": EXTRAS_QUERY,
            "variables": {"owner": repo.owner(), "name": repo.name(), "number": number},
        });
        let url = self.http.graphql_url();
        let answer = self
            .http
            .send(Method::POST, &url, Some(&body), &[200], true)
            .await?;
        let gql: GraphqlAnswer = answer.json()?;
        let what = format!(
            "{} ({repo}#{number} lastEditedAt, blockedBy)",
            answer.request
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
