//! Read-only probes for the preflight check (`--check`): who the token is, with its classic
//! scopes, and the labels a repo has.
//!
//! Wire facts: `GET /user` answers the authenticated account; classic personal access tokens
//! and OAuth tokens also get an `X-OAuth-Scopes` header listing their scopes (fine-grained
//! tokens and app tokens get none). `GET /repos/{owner}/{repo}/labels` lists the repo's labels,
//! `per_page` at most 100, paginated with `Link`. The issue list takes `sort=updated`,
//! `direction=desc` and `since` (ISO 8601, issues updated at or after it).

use serde::Deserialize;

use super::wire::WireIssue;
use super::{GitHub, enc, repo_path};
use crate::error::Result;
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

impl GitHub {
    /// The account the token authenticates as, with its classic scopes when GitHub reports
    /// them.
    pub async fn whoami(&self) -> Result<Account> {
        let answer = self.http.get("/user", &[200]).await?;
        let user: WireUser = answer.json()?;
        Ok(Account {
            login: user.login,
            scopes: answer.oauth_scopes.map(|s| {
                s.split(',')
                    .map(|x| x.trim().to_owned())
                    .filter(|x| !x.is_empty())
                    .collect()
            }),
        })
    }

    /// Every label the repo has (all pages).
    pub async fn repo_labels(&self, repo: &RepoName) -> Result<Vec<String>> {
        let first = format!("{}/labels?per_page=100", repo_path(repo));
        let labels: Vec<WireLabel> = self.http.get_all(&first, |p| p.json()).await?;
        Ok(labels.into_iter().map(|l| l.name).collect())
    }

    /// At most `limit` (≤ 100) issues and pull requests of any state updated since `since`,
    /// most recently updated first: one page, for the fleet report's recent verdicts.
    pub async fn recently_updated(
        &self,
        repo: &RepoName,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<Issue>> {
        let url = format!(
            "{}/issues?state=all&sort=updated&direction=desc&since={}&per_page={}",
            repo_path(repo),
            enc(&since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            limit.clamp(1, 100)
        );
        let answer = self.http.get(&url, &[200]).await?;
        let items: Vec<WireIssue> = answer.json()?;
        Ok(items.into_iter().map(WireIssue::into_issue).collect())
    }
}
