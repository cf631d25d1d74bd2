//! The Woodpecker CI client: a repo's numeric id by full name, the pipelines
//! of one commit, and their CI signals.
//!
//! Woodpecker has no commit filter, so pipelines are listed newest first, [`PER_PAGE`] at a
//! time, and matched on `commit` here. Paging stops at a short or empty page, after the first
//! page without a match that follows pages with matches (the pipelines of one commit are
//! created together, and a restart is newer than what it restarts), or after [`MAX_PAGES`]
//! pages: a commit more than `MAX_PAGES * PER_PAGE` pipelines back reads as "no pipeline yet"
//! and ends at the CI timeout.
//!
//! Status mapping (fail closed; a pipeline that did not pass is never green):
//! `created`, `pending`, `running`, `blocked` → Pending; `success` → Success; `failure`,
//! `killed`, `canceled`, `error`, `declined` → Failure; `skipped` → Pending, because a skipped
//! pipeline proved nothing: the run waits and ends at the CI timeout ("CI never reported")
//! rather than being called green or blamed on the agent. Unknown statuses are Pending.

use afk_core::evidence::{CiSignal, SignalState};
use afk_core::model::{RepoName, Timestamp};
use chrono::TimeZone;
use serde::Deserialize;

use crate::error::{ErrorKind, RemoteError, Result};
use crate::http::{Auth, HttpClient, Request, RetryPolicy, SecretFile};

const REMOTE: &str = "woodpecker";

/// Page size: Woodpecker's maximum (it silently caps larger values to 50).
pub const PER_PAGE: usize = 50;
/// Pages read at most when looking for a commit's pipelines.
pub const MAX_PAGES: usize = 10;

/// One pipeline of a commit, as afk needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    pub number: i64,
    /// `push`, `pull_request`, `manual`, `deployment`, …
    pub event: String,
    /// Woodpecker's own status word (`success`, `running`, …).
    pub status: String,
    pub commit: String,
    pub branch: String,
    pub created: Option<Timestamp>,
    pub finished: Option<Timestamp>,
    /// The pipeline's page in the Woodpecker UI.
    pub url: String,
}

impl Pipeline {
    /// The fail-closed mapping documented on this module.
    pub fn signal_state(&self) -> SignalState {
        signal_state(&self.status)
    }
}

/// Maps a Woodpecker pipeline status to afk's three CI states (see the module docs).
pub fn signal_state(status: &str) -> SignalState {
    match status {
        "success" => SignalState::Success,
        "failure" | "killed" | "canceled" | "error" | "declined" => SignalState::Failure,
        _ => SignalState::Pending,
    }
}

/// Woodpecker client.
#[derive(Debug, Clone)]
pub struct Woodpecker {
    http: HttpClient,
    /// The server's web root (the API URL without `/api`), for pipeline links.
    web: String,
    token: SecretFile,
}

#[derive(Deserialize)]
struct WireRepo {
    id: i64,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct WirePipeline {
    number: i64,
    #[serde(default)]
    event: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    commit: String,
    #[serde(default)]
    branch: String,
    #[serde(default)]
    created: i64,
    #[serde(default)]
    finished: i64,
}

fn unix(secs: i64) -> Option<Timestamp> {
    if secs <= 0 {
        return None;
    }
    chrono::Utc.timestamp_opt(secs, 0).single()
}

/// Adds what to check to authentication failures.
fn with_hint(mut e: RemoteError, token: &SecretFile) -> RemoteError {
    if let ErrorKind::Status { status, detail } = &mut e.kind
        && matches!(*status, 401 | 403)
    {
        *detail = format!(
            "{detail} (Woodpecker refused the token; check the token in {} and that its user can see the repo)",
            token.path().display()
        );
    }
    e
}

impl Woodpecker {
    /// `api_url` is the API root, e.g. `https://ci.example.org/api`.
    pub fn new(api_url: &str, token: SecretFile, policy: RetryPolicy) -> Result<Self> {
        let base = api_url.trim_end_matches('/');
        let web = base.strip_suffix("/api").unwrap_or(base).to_owned();
        Ok(Woodpecker {
            http: HttpClient::new(REMOTE, base, Auth::Bearer(token.clone()), policy)?,
            web,
            token,
        })
    }

    /// The numeric id Woodpecker uses for `repo`.
    pub async fn repo_id(&self, repo: &RepoName) -> Result<i64> {
        let path = format!("/repos/lookup/{}/{}", repo.owner(), repo.name());
        let resp = self
            .http
            .send(Request::get(&path).accept(&[200, 404]))
            .await
            .map_err(|e| with_hint(e, &self.token))?;
        let describe = HttpClient::describe(&reqwest::Method::GET, &path);
        let detail = format!(
            "repo {repo} is not activated in Woodpecker (or the token's user cannot see it); \
             activate it in Woodpecker or drop `woodpecker` from the repo's ci"
        );
        if resp.status == 404 {
            let kind = ErrorKind::Status {
                status: 404,
                detail,
            };
            return Err(RemoteError::new(REMOTE, describe, kind));
        }
        let r: WireRepo = resp.json(REMOTE, &path)?;
        if !r.active {
            return Err(RemoteError::new(REMOTE, describe, ErrorKind::Local(detail)));
        }
        Ok(r.id)
    }

    /// The pipelines whose `commit` is `sha`, newest first, optionally only on `branch`.
    pub async fn pipelines_for_commit(
        &self,
        repo_id: i64,
        sha: &str,
        branch: Option<&str>,
    ) -> Result<Vec<Pipeline>> {
        let mut found = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut path = format!("/repos/{repo_id}/pipelines?page={page}&perPage={PER_PAGE}");
            if let Some(b) = branch {
                path.push_str("&branch=");
                path.push_str(
                    &percent_encoding::utf8_percent_encode(b, percent_encoding::NON_ALPHANUMERIC)
                        .to_string(),
                );
            }
            let resp = self
                .http
                .send(Request::get(&path))
                .await
                .map_err(|e| with_hint(e, &self.token))?;
            let items: Vec<WirePipeline> = resp.json(REMOTE, &path)?;
            let short = items.len() < PER_PAGE;
            let before = found.len();
            found.extend(
                items
                    .into_iter()
                    .filter(|p| p.commit.eq_ignore_ascii_case(sha))
                    .map(|p| self.pipeline(repo_id, p)),
            );
            let matched_here = found.len() > before;
            if short || (before > 0 && !matched_here) {
                break;
            }
            if page == MAX_PAGES {
                tracing::debug!(
                    remote = REMOTE,
                    repo_id,
                    sha,
                    pages = MAX_PAGES,
                    "stopped looking for older pipelines"
                );
            }
        }
        Ok(found)
    }

    fn pipeline(&self, repo_id: i64, p: WirePipeline) -> Pipeline {
        Pipeline {
            url: format!("{}/repos/{repo_id}/pipeline/{}", self.web, p.number),
            number: p.number,
            event: p.event,
            status: p.status,
            commit: p.commit,
            branch: p.branch,
            created: unix(p.created),
            finished: unix(p.finished),
        }
    }

    /// One signal per pipeline event for `sha` (the newest pipeline of each event wins, so a
    /// restarted pipeline replaces the one it restarts), named `woodpecker/<event>`. No
    /// pipeline yet gives an empty list.
    pub async fn ci_signals(&self, repo: &RepoName, sha: &str) -> Result<Vec<CiSignal>> {
        let id = self.repo_id(repo).await?;
        let pipelines = self.pipelines_for_commit(id, sha, None).await?;
        Ok(signals(&pipelines))
    }
}

/// Newest pipeline per event → one signal each (input newest first).
pub fn signals(pipelines: &[Pipeline]) -> Vec<CiSignal> {
    let mut newest: Vec<&Pipeline> = Vec::new();
    for p in pipelines {
        match newest.iter_mut().find(|n| n.event == p.event) {
            Some(n) if n.number < p.number => *n = p,
            Some(_) => {}
            None => newest.push(p),
        }
    }
    newest
        .into_iter()
        .map(|p| CiSignal {
            name: format!("woodpecker/{}", p.event),
            url: Some(p.url.clone()),
            state: p.signal_state(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(number: i64, event: &str, status: &str) -> Pipeline {
        Pipeline {
            number,
            event: event.into(),
            status: status.into(),
            commit: "c".into(),
            branch: "main".into(),
            created: None,
            finished: None,
            url: format!("u/{number}"),
        }
    }

    #[test]
    fn statuses_map_fail_closed() {
        for s in [
            "created",
            "pending",
            "running",
            "blocked",
            "skipped",
            "new-thing",
        ] {
            assert_eq!(signal_state(s), SignalState::Pending, "{s}");
        }
        assert_eq!(signal_state("success"), SignalState::Success);
        for s in ["failure", "killed", "canceled", "error", "declined"] {
            assert_eq!(signal_state(s), SignalState::Failure, "{s}");
        }
    }

    #[test]
    fn a_restart_replaces_the_pipeline_it_restarts() {
        let sigs = signals(&[
            p(7, "push", "success"),
            p(5, "push", "failure"),
            p(6, "manual", "running"),
        ]);
        assert_eq!(sigs.len(), 2);
        assert_eq!(sigs[0].name, "woodpecker/push");
        assert_eq!(sigs[0].state, SignalState::Success);
        assert_eq!(sigs[0].url.as_deref(), Some("u/7"));
        assert_eq!(sigs[1].state, SignalState::Pending);
    }
}
