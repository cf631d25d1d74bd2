//! Read-only probes for the preflight check (`--check`): who the token is and the labels a
//! repo has.
//!
//! Wire facts: `GET /api/v1/user` answers the authenticated account (401 for a bad token);
//! Forgejo reports no token scopes in a header, so scopes are `None` and access is checked
//! per repo. `GET /api/v1/repos/{owner}/{repo}/labels` lists the repo's labels, paged with
//! `page` and `limit`. The issue list takes `since` (RFC 3339: issues updated at or after it).

use serde::Deserialize;

use reqwest::Method;

use super::{Forgejo, wire, with_query};
use crate::error::Result;
use crate::http::{HttpClient, Request};
use crate::tracker::{Account, Issue};
use afk_core::model::{RepoName, Timestamp};

#[derive(Deserialize)]
struct WireUser {
    login: String,
}

#[derive(Deserialize)]
struct WireLabel {
    name: String,
}

impl Forgejo {
    /// The account the token authenticates as (Forgejo reports no scopes).
    pub async fn whoami(&self) -> Result<Account> {
        let path = "/user";
        let resp = self.http.send(Request::get(path)).await?;
        let user: WireUser = Self::decode(&resp, path)?;
        Ok(Account {
            login: user.login,
            scopes: None,
        })
    }

    /// Every label the repo has (all pages).
    pub async fn repo_labels(&self, repo: &RepoName) -> Result<Vec<String>> {
        let path = format!("{}/labels", Self::repo_path(repo));
        let labels = self
            .paged(
                &path,
                &[],
                |resp, full| Ok((Self::decode::<Vec<WireLabel>>(resp, full)?, None)),
                |_| false,
            )
            .await?;
        Ok(labels.into_iter().map(|l| l.name).collect())
    }

    /// At most `limit` issues (not pull requests) of any state updated since `since`, most
    /// recently updated first: one page, for the fleet report's recent verdicts.
    pub async fn recently_updated(
        &self,
        repo: &RepoName,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<Issue>> {
        let path = format!("{}/issues", Self::repo_path(repo));
        let since = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let limit = limit.clamp(1, 50).to_string();
        let full = with_query(
            &path,
            &[
                ("state", "all"),
                ("type", "issues"),
                ("since", &since),
                ("limit", &limit),
                ("page", "1"),
            ],
        );
        let resp = self.http.send(Request::get(&full)).await?;
        let what = HttpClient::describe(&Method::GET, &path);
        let items: Vec<wire::WireIssue> = Self::decode(&resp, &full)?;
        let mut issues = items
            .into_iter()
            .map(|w| w.into_issue(&what))
            .collect::<Result<Vec<_>>>()?;
        issues.retain(|i| !i.is_pull_request);
        issues.sort_by_key(|i| std::cmp::Reverse(i.updated_at));
        Ok(issues)
    }
}
