//! The Forgejo tracker and CI client (API v1; shared remotes facts §B).
//!
//! Same operations as the GitHub client, returning the forge-neutral types of
//! [`crate::tracker`]. Forgejo differences handled here:
//! - `labels=` on the issue list is ORed, and names the repo does not have are dropped (an
//!   unknown label filters nothing), so the exact label is checked again client-side; pull
//!   requests are excluded with `type=issues` and again client-side.
//! - Pages are `page` + `limit` (the server caps `limit`, 50 by default, maybe lower): paging
//!   follows `Link rel="next"`, else `X-Total-Count`, else stops at a short page.
//! - Label changes are timeline items `type: "label"` whose `body` is `"1"` (added) or `""`
//!   (removed); the account is not marked as a bot in the API. The timeline's `X-Total-Count`
//!   counts only the page served and it sends no `Link`
//!   (`routers/api/v1/repo/issue_comment.go`, `ListIssueCommentsAndTimeline`), so it is read
//!   until an empty page.
//! - Adding labels by name drops names the repo lacks and still answers 200 with the issue's
//!   labels (`GetLabelIDsInRepoByNames`): afk's labels are created up front, once per repo per
//!   tick, and every add is checked against the labels in the answer.
//! - The permission endpoint answers only repo admins (and users asking about themselves):
//!   a 403 becomes an untrusted [`Permission::Unknown`] telling the operator what to grant.
//! - Forgejo keeps no API-visible body edit time: [`Forgejo::issue_extras`] says so, and the
//!   edit evidence is the issue's `updated_at` (which a body edit moves, see
//!   `issues_model.ChangeIssueContent` → `UpdateIssueCols`, an xorm `updated` column) beside the
//!   timeline entries after the labelling (every entry moves it too: `updateCommentInfos` ends
//!   with `UpdateIssueCols(…, "updated_unix")`). Title changes are `change_title` entries.
//! - Closing has no reason; a closed issue reads back as [`CloseReason::Unspecified`].

mod ci;
mod probe;
mod wire;

use afk_core::config::CiProvider;
use afk_core::evidence::{CiSignal, CloseReason};
use afk_core::facts::Permission;
use afk_core::model::{IssueNumber, RepoName, Timestamp};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::{ErrorKind, RemoteError, Result};
use crate::http::{Auth, Body, HttpClient, Request, Response, RetryPolicy, SecretFile};
use crate::tracker::{
    Comment, Commit, Issue, IssueExtras, IssueState, LabelChange, LinkedBlocker,
    permission_from_str,
};

/// The remote's name in errors and logs.
pub(crate) const REMOTE: &str = "forgejo";

/// The colour of the labels afk creates (Forgejo requires one).
const LABEL_COLOR: &str = "#ededed";

/// Page size asked for (Forgejo's default `MAX_RESPONSE_ITEMS`).
const PAGE_LIMIT: usize = 50;

/// Refuse to walk more pages than this for one list (50 × 400 = 20,000 items).
const MAX_PAGES: usize = 400;

/// Characters escaped in a path segment (names, logins, refs).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// Forgejo client (transport, auth, the operations afk needs). Clones share the record of
/// the repos whose labels were already checked.
#[derive(Debug, Clone)]
pub struct Forgejo {
    http: HttpClient,
    /// `owner/name` of the repos where [`Forgejo::ensure_labels`] found or created afk's
    /// labels during this client's life (one tick).
    labels_ensured: Arc<Mutex<BTreeSet<String>>>,
}

/// What a page says about the next one.
struct PageInfo {
    /// `Link` carries `rel="next"` (`None`: no `Link` header at all).
    link_next: Option<bool>,
    /// `X-Total-Count` or the body's `total_count`.
    total: Option<u64>,
}

impl PageInfo {
    fn from(resp: &Response, body_total: Option<u64>) -> PageInfo {
        PageInfo {
            link_next: resp.header("link").map(|l| l.contains("rel=\"next\"")),
            total: resp
                .header("x-total-count")
                .and_then(|v| v.trim().parse().ok())
                .or(body_total),
        }
    }
    /// Whether another page should be fetched after seeing `seen` items, the last page `got`.
    fn more(&self, got: usize, seen: usize) -> bool {
        if got == 0 {
            return false;
        }
        if let Some(next) = self.link_next {
            return next;
        }
        if let Some(total) = self.total {
            return (seen as u64) < total;
        }
        got >= PAGE_LIMIT
    }
}

fn ensured(m: &Mutex<BTreeSet<String>>) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{path}?{q}")
}

impl Forgejo {
    /// A client for the API at `api_url` (`https://git.example.org/api/v1`), authenticating
    /// with `Authorization: token <t>` read fresh from `token` on every request.
    pub fn new(api_url: &str, token: SecretFile, policy: RetryPolicy) -> Result<Forgejo> {
        let bad = |why: String| RemoteError::new(REMOTE, "configure", ErrorKind::Local(why));
        let url = url::Url::parse(api_url).map_err(|e| {
            bad(format!(
                "the Forgejo api_url {api_url:?} is not a URL ({e}); expected e.g. https://git.example.org/api/v1"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(format!(
                "the Forgejo api_url {api_url:?} must be http(s), e.g. https://git.example.org/api/v1"
            )));
        }
        if !url.path().trim_end_matches('/').ends_with("/api/v1") {
            return Err(bad(format!(
                "the Forgejo api_url {api_url:?} must end with /api/v1, e.g. https://git.example.org/api/v1"
            )));
        }
        let http = HttpClient::new(REMOTE, api_url, Auth::Token(token), policy)?;
        Ok(Forgejo {
            http,
            labels_ensured: Arc::new(Mutex::new(BTreeSet::new())),
        })
    }

    fn repo_path(repo: &RepoName) -> String {
        format!("/repos/{}/{}", segment(repo.owner()), segment(repo.name()))
    }

    fn decode<T: DeserializeOwned>(resp: &Response, path: &str) -> Result<T> {
        resp.json(REMOTE, &HttpClient::describe(&Method::GET, path))
    }

    /// GETs `path` page by page (`limit`/`page` appended to `query`), decoding each page with
    /// `items`, until the pages end or `stop` returns true for an item (which is dropped,
    /// with everything after it).
    async fn paged<T>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        items: impl Fn(&Response, &str) -> Result<(Vec<T>, Option<u64>)>,
        mut stop: impl FnMut(&T) -> bool,
    ) -> Result<Vec<T>> {
        let mut all = Vec::new();
        let mut seen = 0usize;
        let limit = PAGE_LIMIT.to_string();
        for page in 1..=MAX_PAGES {
            let page_s = page.to_string();
            let mut pairs = query.to_vec();
            pairs.push(("limit", &limit));
            pairs.push(("page", &page_s));
            let full = with_query(path, &pairs);
            let resp = self.http.send(Request::get(&full)).await?;
            let (batch, body_total) = items(&resp, &full)?;
            let info = PageInfo::from(&resp, body_total);
            let got = batch.len();
            seen += got;
            for item in batch {
                if stop(&item) {
                    return Ok(all);
                }
                all.push(item);
            }
            if !info.more(got, seen) {
                return Ok(all);
            }
        }
        Err(RemoteError::new(
            REMOTE,
            HttpClient::describe(&Method::GET, path),
            ErrorKind::Local(format!(
                "more than {MAX_PAGES} pages of {PAGE_LIMIT}; refusing to read further"
            )),
        ))
    }

    /// Issues (not pull requests) carrying exactly `label`, in the given state.
    pub async fn list_issues(
        &self,
        repo: &RepoName,
        label: &str,
        state: IssueState,
    ) -> Result<Vec<Issue>> {
        let path = format!("{}/issues", Self::repo_path(repo));
        let query = [
            ("state", state.as_str()),
            ("type", "issues"),
            ("labels", label),
        ];
        let wire = self
            .paged(
                &path,
                &query,
                |resp, p| Ok((Self::decode::<Vec<wire::WireIssue>>(resp, p)?, None)),
                |_| false,
            )
            .await?;
        let request = HttpClient::describe(&Method::GET, &path);
        let mut out = Vec::new();
        for w in wire {
            let issue = w.into_issue(&request)?;
            // Forgejo ORs labels and ignores unknown ones: insist on the exact label here.
            if !issue.is_pull_request && issue.labels.iter().any(|l| l == label) {
                out.push(issue);
            }
        }
        Ok(out)
    }

    /// The most recent time `label` was added to the issue, with who added it (all timeline
    /// pages are read; the newest by time, then by id, wins), the newest title change after it
    /// and every timeline entry after it.
    ///
    /// The timeline is read until a page comes back empty: Forgejo's `X-Total-Count` here is
    /// the length of the page just served and no `Link` is sent, a server may cap `limit`
    /// below what was asked (`MAX_RESPONSE_ITEMS`), and cross-references the bot cannot see
    /// are dropped from a page after it was cut, so neither the headers nor a short page tell
    /// that the timeline has ended.
    pub async fn latest_labeling(
        &self,
        repo: &RepoName,
        number: IssueNumber,
        label: &str,
    ) -> Result<Option<LabelChange>> {
        let path = format!("{}/issues/{number}/timeline", Self::repo_path(repo));
        let limit = PAGE_LIMIT.to_string();
        let mut items = Vec::new();
        let mut page = 1usize;
        loop {
            if page > MAX_PAGES {
                return Err(RemoteError::new(
                    REMOTE,
                    HttpClient::describe(&Method::GET, &path),
                    ErrorKind::Local(format!(
                        "more than {MAX_PAGES} pages of timeline on {repo}#{number}; refusing \
                         to read further"
                    )),
                ));
            }
            let page_s = page.to_string();
            let full = with_query(&path, &[("limit", &limit), ("page", &page_s)]);
            let resp = self.http.send(Request::get(&full)).await?;
            let batch: Vec<wire::TimelineItem> = Self::decode(&resp, &full)?;
            if batch.is_empty() {
                break;
            }
            items.extend(batch);
            page += 1;
        }
        let Some((id, mut change)) = items
            .iter()
            .filter_map(|i| i.label_change(label))
            .filter(|(_, c)| c.added)
            .max_by(|(ia, a), (ib, b)| a.at.cmp(&b.at).then(ia.cmp(ib)))
        else {
            return Ok(None);
        };
        let after: Vec<&wire::TimelineItem> =
            items.iter().filter(|i| i.is_after(change.at, id)).collect();
        change.title_changed_after = after
            .iter()
            .filter(|i| i.is_title_change())
            .map(|i| i.activity().at)
            .max();
        change.activity_after = after.iter().map(|i| i.activity()).collect();
        Ok(Some(change))
    }

    /// `login`'s permission on the repo. Forgejo shows other users' permissions only to repo
    /// admins: a 403 (and a 404 for an unknown user) is an untrusted `Unknown` with the reason.
    pub async fn permission(&self, repo: &RepoName, login: &str) -> Result<Permission> {
        let path = format!(
            "{}/collaborators/{}/permission",
            Self::repo_path(repo),
            segment(login)
        );
        let resp = self
            .http
            .send(Request::get(&path).accept(&[200, 403, 404]))
            .await?;
        match resp.status {
            200 => {
                let p: wire::PermissionInfo = Self::decode(&resp, &path)?;
                Ok(permission_from_str(&p.permission))
            }
            403 => Ok(Permission::Unknown(format!(
                "forgejo refused to show {login}'s permission on {repo} (HTTP 403): Forgejo \
                 shows other users' permissions only to repo admins; give the bot account \
                 admin on {repo} so labellers can be checked"
            ))),
            _ => Ok(Permission::Unknown(format!(
                "forgejo has no user {login} (or the bot account cannot see {repo}) (HTTP 404)"
            ))),
        }
    }

    /// The issues this one depends on (`…/issues/{index}/dependencies`); a repo with
    /// dependencies turned off answers 404: it has none. No body edit time: Forgejo's API
    /// exposes no edit time or history for an issue body, so `body_edit_time_known` is false
    /// and the policy reads `updated_at` against the timeline instead.
    pub async fn issue_extras(&self, repo: &RepoName, number: IssueNumber) -> Result<IssueExtras> {
        let path = format!("{}/issues/{number}/dependencies", Self::repo_path(repo));
        let home = repo.to_string();
        let listed = self
            .paged(
                &path,
                &[],
                |resp, full| Ok((Self::decode::<Vec<wire::WireDependency>>(resp, full)?, None)),
                |_| false,
            )
            .await;
        let blockers = match listed {
            Err(e) if e.status() == Some(404) => Vec::new(),
            other => other?,
        };
        Ok(IssueExtras {
            body_edited_at: None,
            body_edit_time_known: false,
            linked_blockers: blockers
                .into_iter()
                .map(|d| LinkedBlocker {
                    repo: d.repository.map_or_else(|| home.clone(), |r| r.full_name),
                    number: d.number,
                    open: d.state != "closed",
                })
                .collect(),
            unlisted_blockers: 0,
            hidden_blockers: 0,
            unreadable: None,
        })
    }

    /// One issue (or pull request); `None` when Forgejo has no such number.
    pub async fn issue(&self, repo: &RepoName, number: IssueNumber) -> Result<Option<Issue>> {
        let path = format!("{}/issues/{number}", Self::repo_path(repo));
        let resp = self
            .http
            .send(Request::get(&path).accept(&[200, 404]))
            .await?;
        if resp.status == 404 {
            return Ok(None);
        }
        let w: wire::WireIssue = Self::decode(&resp, &path)?;
        w.into_issue(&HttpClient::describe(&Method::GET, &path))
            .map(Some)
    }

    pub async fn default_branch(&self, repo: &RepoName) -> Result<String> {
        let path = Self::repo_path(repo);
        let resp = self.http.send(Request::get(&path)).await?;
        let info: wire::RepoInfo = Self::decode(&resp, &path)?;
        Ok(info.default_branch)
    }

    /// Makes sure each of `names` exists in the repo, creating the missing ones (needs write
    /// access to issues). Done once per repo for this client's life (one tick): the first
    /// label a claim or verdict adds lists the repo's labels; quiet ticks write nothing.
    pub async fn ensure_labels(&self, repo: &RepoName, names: &[String]) -> Result<()> {
        let key = repo.to_string();
        if ensured(&self.labels_ensured).contains(&key) {
            return Ok(());
        }
        self.create_missing_labels(repo, names).await?;
        ensured(&self.labels_ensured).insert(key);
        Ok(())
    }

    /// Adds labels by name. Forgejo drops names the repo lacks and still answers 200 with the
    /// issue's labels, so the answer is checked: a label missing from it is created in the
    /// repo and the add sent once more; still missing is an error naming label and repo.
    /// Adding a label the issue already has is a no-op, so a retry is safe.
    pub async fn add_labels(
        &self,
        repo: &RepoName,
        number: IssueNumber,
        labels: &[String],
    ) -> Result<()> {
        if labels.is_empty() {
            return Ok(());
        }
        let missing = self.post_labels(repo, number, labels).await?;
        if missing.is_empty() {
            return Ok(());
        }
        self.create_missing_labels(repo, &missing).await?;
        let still = self.post_labels(repo, number, labels).await?;
        if still.is_empty() {
            return Ok(());
        }
        Err(RemoteError::new(
            REMOTE,
            format!("POST {}/issues/{number}/labels", Self::repo_path(repo)),
            ErrorKind::Local(format!(
                "Forgejo answered the label add on {repo}#{number}, but the issue does not \
                 carry {still:?}; Forgejo drops label names the repo does not have: check that \
                 these labels exist in {repo} (or its organisation) and that afk's token may \
                 write issues there"
            )),
        ))
    }

    /// POSTs the names; returns those the answer (the issue's labels afterwards) lacks.
    async fn post_labels(
        &self,
        repo: &RepoName,
        number: IssueNumber,
        labels: &[String],
    ) -> Result<Vec<String>> {
        let path = format!("{}/issues/{number}/labels", Self::repo_path(repo));
        let body = Body::Json(json!({ "labels": labels }));
        let resp = self
            .http
            .send(
                Request::new(Method::POST, &path, Some(body))
                    .accept(&[200])
                    .idempotent(true),
            )
            .await?;
        let on_issue: Vec<wire::Label> =
            resp.json(REMOTE, &HttpClient::describe(&Method::POST, &path))?;
        Ok(labels
            .iter()
            .filter(|want| !on_issue.iter().any(|l| &l.name == *want))
            .cloned()
            .collect())
    }

    /// Creates each of `names` the repo does not have yet (needs write access to issues).
    async fn create_missing_labels(&self, repo: &RepoName, names: &[String]) -> Result<()> {
        let path = format!("{}/labels", Self::repo_path(repo));
        let existing: Vec<wire::Label> = self
            .paged(
                &path,
                &[],
                |resp, full| Ok((Self::decode(resp, full)?, None)),
                |_| false,
            )
            .await?;
        for name in names {
            if existing.iter().any(|l| &l.name == name) {
                continue;
            }
            let body = Body::Json(json!({
                "name": name,
                "color": LABEL_COLOR,
                "description": "managed by afk",
            }));
            self.http
                .send(Request::new(Method::POST, &path, Some(body)).accept(&[201]))
                .await?;
        }
        Ok(())
    }

    /// Removes a label; a label the issue does not carry is already removed (Ok). The label
    /// is removed by id, found on the issue, which every Forgejo version accepts and which
    /// cannot mistake a numeric label name for an id.
    pub async fn remove_label(
        &self,
        repo: &RepoName,
        number: IssueNumber,
        label: &str,
    ) -> Result<()> {
        let path = format!("{}/issues/{number}/labels", Self::repo_path(repo));
        let resp = self.http.send(Request::get(&path)).await?;
        let on_issue: Vec<wire::Label> = Self::decode(&resp, &path)?;
        let Some(found) = on_issue.into_iter().find(|l| l.name == label) else {
            return Ok(());
        };
        let path = format!("{path}/{}", found.id);
        // 404/422: removed (or deleted) in the meantime.
        self.http
            .send(Request::new(Method::DELETE, &path, None).accept(&[200, 204, 404, 422]))
            .await?;
        Ok(())
    }

    /// Every comment on the issue, oldest first (Forgejo returns them in one answer).
    pub async fn list_comments(
        &self,
        repo: &RepoName,
        number: IssueNumber,
    ) -> Result<Vec<Comment>> {
        let path = format!("{}/issues/{number}/comments", Self::repo_path(repo));
        let resp = self.http.send(Request::get(&path)).await?;
        let wire: Vec<wire::WireComment> = Self::decode(&resp, &path)?;
        Ok(wire.into_iter().map(Comment::from).collect())
    }

    /// Posts a comment. Not retried once it may have reached Forgejo (a retry could post it
    /// twice); the caller finds its comment again by listing.
    pub async fn create_comment(
        &self,
        repo: &RepoName,
        number: IssueNumber,
        body: &str,
    ) -> Result<Comment> {
        let path = format!("{}/issues/{number}/comments", Self::repo_path(repo));
        let req = Request::new(
            Method::POST,
            &path,
            Some(Body::Json(json!({ "body": body }))),
        )
        .accept(&[201]);
        let resp = self.http.send(req).await?;
        let c: wire::WireComment =
            resp.json(REMOTE, &HttpClient::describe(&Method::POST, &path))?;
        Ok(c.into())
    }

    /// Replaces a comment's body (only the bot's own comments, unless it is repo admin).
    pub async fn edit_comment(&self, repo: &RepoName, comment_id: u64, body: &str) -> Result<()> {
        let path = format!("{}/issues/comments/{comment_id}", Self::repo_path(repo));
        let req = Request::new(
            Method::PATCH,
            &path,
            Some(Body::Json(json!({ "body": body }))),
        )
        .accept(&[200, 204])
        .idempotent(true);
        self.http.send(req).await?;
        Ok(())
    }

    /// Closes the issue. Forgejo has no close reason, so `reason` is not sent.
    pub async fn close_issue(
        &self,
        repo: &RepoName,
        number: IssueNumber,
        reason: CloseReason,
    ) -> Result<()> {
        tracing::debug!(remote = REMOTE, %repo, number, reason = reason.as_str(), "closing (Forgejo records no reason)");
        self.set_state(repo, number, "closed").await
    }

    pub async fn reopen_issue(&self, repo: &RepoName, number: IssueNumber) -> Result<()> {
        self.set_state(repo, number, "open").await
    }

    async fn set_state(&self, repo: &RepoName, number: IssueNumber, state: &str) -> Result<()> {
        let path = format!("{}/issues/{number}", Self::repo_path(repo));
        let req = Request::new(
            Method::PATCH,
            &path,
            Some(Body::Json(json!({ "state": state }))),
        )
        // Forgejo answers 201 to an issue edit.
        .accept(&[200, 201])
        .idempotent(true);
        self.http.send(req).await?;
        Ok(())
    }

    /// Commits on `branch` committed at or after `since`, newest first. Forgejo's commit list
    /// has no `since`, so pages are read newest first until an older commit appears.
    pub async fn commits_since(
        &self,
        repo: &RepoName,
        branch: &str,
        since: Timestamp,
    ) -> Result<Vec<Commit>> {
        let path = format!("{}/commits", Self::repo_path(repo));
        let query = [
            ("sha", branch),
            ("stat", "false"),
            ("verification", "false"),
            ("files", "false"),
        ];
        let commits = self
            .paged(
                &path,
                &query,
                |resp, p| {
                    let page: Vec<wire::WireCommit> = Self::decode(resp, p)?;
                    Ok((page.into_iter().map(Commit::from).collect(), None))
                },
                |c: &Commit| c.committed_at < since,
            )
            .await;
        match commits {
            // 409: the repository is empty, so nothing was committed since.
            Err(e) if e.status() == Some(409) => Ok(Vec::new()),
            other => other,
        }
    }

    /// CI signals for a commit from Forgejo commit statuses or Forgejo Actions runs (mapping
    /// in [`ci`]). No statuses or runs: no signals.
    pub async fn ci_signals(
        &self,
        repo: &RepoName,
        sha: &str,
        provider: CiProvider,
    ) -> Result<Vec<CiSignal>> {
        match provider {
            CiProvider::ForgejoStatus => {
                let path = format!("{}/commits/{}/status", Self::repo_path(repo), segment(sha));
                let statuses = self
                    .paged(
                        &path,
                        &[],
                        |resp, p| {
                            let c: wire::CombinedStatus = Self::decode(resp, p)?;
                            Ok((c.statuses.unwrap_or_default(), c.total_count))
                        },
                        |_| false,
                    )
                    .await?;
                Ok(ci::status_signals(statuses))
            }
            CiProvider::ForgejoActions => {
                let path = format!("{}/actions/runs", Self::repo_path(repo));
                let runs = self
                    .paged(
                        &path,
                        &[("head_sha", sha)],
                        |resp, p| {
                            let l: wire::RunList = Self::decode(resp, p)?;
                            Ok((l.workflow_runs.unwrap_or_default(), l.total_count))
                        },
                        |_| false,
                    )
                    .await?;
                Ok(ci::run_signals(runs, sha))
            }
            other => Err(RemoteError::new(
                REMOTE,
                "ci signals",
                ErrorKind::Local(format!(
                    "CI provider {other:?} is not read from Forgejo; for a Forgejo repo use \
                     forgejo-status, forgejo-actions or woodpecker"
                )),
            )),
        }
    }
}
