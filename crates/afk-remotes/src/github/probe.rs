//! Read-only probes for the preflight check (`--check`): who the token is, with its classic
//! scopes, and the labels a repo has.
//!
//! Wire facts: `GET /user` answers the authenticated account; classic personal access tokens
//! and OAuth tokens also get an `X-OAuth-Scopes` header listing their scopes (fine-grained
//! tokens and app tokens get none). `GET /repos/{owner}/{repo}/labels` lists the repo's labels,
//! `per_page` at most 100, paginated with `Link`.

use serde::Deserialize;

use super::{GitHub, repo_path};
use crate::error::Result;
use crate::tracker::Account;
use afk_core::model::RepoName;

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
}
