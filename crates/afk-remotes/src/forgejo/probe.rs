//! Read-only probes for the preflight check (`--check`): who the token is and the labels a
//! repo has.
//!
//! Wire facts: `GET /api/v1/user` answers the authenticated account (401 for a bad token);
//! Forgejo reports no token scopes in a header, so scopes are `None` and access is checked
//! per repo. `GET /api/v1/repos/{owner}/{repo}/labels` lists the repo's labels, paged with
//! `page` and `limit`.

use serde::Deserialize;

use super::Forgejo;
use crate::error::Result;
use crate::http::Request;
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
}
