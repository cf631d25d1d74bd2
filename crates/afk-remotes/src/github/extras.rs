//! The GitHub client's issue extras (body edit time and native blockers) over GraphQL,
//! batched: one query per [`MAX_ISSUES_PER_QUERY`] issues, across repos.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use afk_core::model::{IssueNumber, RepoName};
use reqwest::Method;

use super::transport::REMOTE;
use super::{GitHub, MAX_ISSUES_PER_QUERY, graphql, local};
use crate::error::{ErrorKind, RemoteError, Result};
use crate::tracker::IssueExtras;

impl GitHub {
    /// When the issue body was last edited (GraphQL `lastEditedAt`; `None` if never) and the
    /// issues it is blocked by (`blockedBy`, GitHub's native dependencies, at most 50 per
    /// issue): [`GitHub::issue_extras_many`] of one issue, where an issue GitHub does not
    /// answer for is an error.
    pub async fn issue_extras(&self, repo: &RepoName, number: IssueNumber) -> Result<IssueExtras> {
        let mut got = self.issue_extras_many(&[(repo.clone(), number)]).await?;
        match got.pop() {
            Some(IssueExtras {
                unreadable: Some(why),
                ..
            }) => Err(RemoteError::new(
                REMOTE,
                self.http.describe(&Method::POST, &self.http.graphql_url()),
                ErrorKind::Status {
                    status: 200,
                    detail: why,
                },
            )),
            Some(extras) => Ok(extras),
            None => Err(local(
                "issue extras",
                format!("no answer for {repo}#{number}"),
            )),
        }
    }

    /// The extras of many issues, in the order given, in one GraphQL query per
    /// [`MAX_ISSUES_PER_QUERY`] distinct issues (aliases across repos; see `graphql` for the
    /// cost: 1 point per query). Each query's `rateLimit` is recorded ([`GitHub::graphql_cost`]).
    ///
    /// A server whose schema has no `Issue.blockedBy` (older GitHub Enterprise Server) answers
    /// with an `undefinedField` error: the first such answer is logged once, naming the
    /// server, and this and every later query of this client go without it (body `Blocked by`
    /// references still count). A blocker the token cannot see comes back as a `null` node
    /// with a `NOT_FOUND` error: it is counted in [`IssueExtras::hidden_blockers`] (it blocks).
    /// An error naming one issue or repo makes those issues [`IssueExtras::unreadable`] (the
    /// others are still read); any other error fails the call.
    pub async fn issue_extras_many(
        &self,
        items: &[(RepoName, IssueNumber)],
    ) -> Result<Vec<IssueExtras>> {
        let mut distinct: Vec<(RepoName, IssueNumber)> = Vec::new();
        for item in items {
            if !distinct.contains(item) {
                distinct.push(item.clone());
            }
        }
        let mut found: HashMap<(RepoName, IssueNumber), IssueExtras> = HashMap::new();
        for chunk in distinct.chunks(MAX_ISSUES_PER_QUERY) {
            let extras = self.extras_chunk(chunk).await?;
            found.extend(chunk.iter().cloned().zip(extras));
        }
        items
            .iter()
            .map(|item| {
                found.get(item).cloned().ok_or_else(|| {
                    local(
                        "issue extras",
                        format!("no answer for {}#{}", item.0, item.1),
                    )
                })
            })
            .collect()
    }

    async fn extras_chunk(&self, chunk: &[(RepoName, IssueNumber)]) -> Result<Vec<IssueExtras>> {
        if !self.no_blocked_by.load(Ordering::SeqCst) {
            let (batch, answer) = self.extras_query(chunk, true).await?;
            if !answer.lacks_issue_field("blockedBy") {
                return self.extras_from(answer, &batch, chunk, "lastEditedAt, blockedBy");
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
        let (batch, answer) = self.extras_query(chunk, false).await?;
        self.extras_from(answer, &batch, chunk, "lastEditedAt")
    }

    async fn extras_query(
        &self,
        chunk: &[(RepoName, IssueNumber)],
        with_blocked_by: bool,
    ) -> Result<(graphql::Batch, graphql::Answer)> {
        let batch = graphql::batch(chunk, with_blocked_by);
        let url = self.http.graphql_url();
        let answer: graphql::Answer = self
            .http
            .send(Method::POST, &url, Some(&batch.body), &[200], true)
            .await?
            .json()?;
        let rate = answer.rate_limit();
        if let Ok(mut cost) = self.graphql_cost.lock() {
            cost.record(rate.as_ref());
        }
        Ok((batch, answer))
    }

    fn extras_from(
        &self,
        answer: graphql::Answer,
        batch: &graphql::Batch,
        chunk: &[(RepoName, IssueNumber)],
        fields: &str,
    ) -> Result<Vec<IssueExtras>> {
        let post = self.http.describe(&Method::POST, &self.http.graphql_url());
        let issues = || {
            let names: Vec<String> = chunk.iter().map(|(r, n)| format!("{r}#{n}")).collect();
            names.join(", ")
        };
        let per_issue = answer.read(batch).map_err(|why| {
            RemoteError::new(
                REMOTE,
                format!("{post} ({fields} of {})", issues()),
                ErrorKind::Status {
                    status: 200,
                    detail: why,
                },
            )
        })?;
        Ok(per_issue
            .into_iter()
            .zip(chunk)
            .map(|(got, (repo, number))| {
                got.unwrap_or_else(|why| {
                    IssueExtras::unreadable(format!(
                        "GitHub did not answer {post} ({fields}) for {repo}#{number}: {why}; \
                         check that the issue still exists in {repo} and that afk's token can read it"
                    ))
                })
            })
            .collect())
    }
}
