//! Request plumbing for the simulated GitHub REST API, in the same shape as the Forgejo
//! simulator's: one [`Ctx`] extractor per handler (the caller the gate authenticated, the query,
//! the URI, the headers), [`Ctx::run`] running the handler's body under the state lock, and the
//! openings every handler shares (the repo as the caller may see it, an issue in it, the triage
//! check) as functions returning the finished error response.

#![allow(
    clippy::result_large_err,
    reason = "handlers return early with the finished error response"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::model::{Actor, Issue, Repo, Role};
use super::state::State;
use super::wire::{Caller, message, not_found, paginate, validation, with_link};
use crate::infra::lock;
use crate::world::World;

/// What a handler's body returns: the answer, or the error answer it stopped at.
pub(super) type Answer = Result<Response, Response>;

/// What every handler needs from the request.
pub(super) struct Ctx {
    world: Arc<World>,
    caller: String,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    query: BTreeMap<String, String>,
}

impl FromRequestParts<Arc<World>> for Ctx {
    type Rejection = Response;
    async fn from_request_parts(
        parts: &mut Parts,
        world: &Arc<World>,
    ) -> Result<Self, Self::Rejection> {
        // The gate puts the authenticated caller on every request it lets through.
        let caller = parts
            .extensions
            .get::<Caller>()
            .map(|c| c.0.clone())
            .ok_or_else(|| message(StatusCode::UNAUTHORIZED, "Requires authentication"))?;
        // Like axum's `Query<BTreeMap<..>>`: the last of repeated keys wins.
        let query = url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        Ok(Ctx {
            world: world.clone(),
            caller,
            method: parts.method.clone(),
            headers: parts.headers.clone(),
            uri: parts.uri.clone(),
            query,
        })
    }
}

impl Ctx {
    /// Runs `f` under the state lock with the request's [`Call`].
    pub(super) fn run(self, f: impl FnOnce(&mut State, &Call<'_>) -> Answer) -> Response {
        let call = Call {
            caller: &self.caller,
            now: self.world.sim.now(),
            method: &self.method,
            headers: &self.headers,
            uri: &self.uri,
            query: &self.query,
        };
        let mut st = lock(&self.world.github);
        f(&mut st, &call).unwrap_or_else(|e| e)
    }
}

/// The request as a handler's body sees it, under the state lock.
pub(super) struct Call<'a> {
    pub caller: &'a str,
    pub now: DateTime<Utc>,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub uri: &'a Uri,
    pub query: &'a BTreeMap<String, String>,
}

impl Call<'_> {
    pub fn actor(&self) -> Actor {
        Actor::user(self.caller)
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// This request's page of `items` and its `Link` header.
    pub fn page(&self, items: Vec<Value>) -> (Vec<Value>, Option<String>) {
        paginate(items, self.query, self.uri, self.headers)
    }

    /// A JSON array answer: this request's page of `items`.
    pub fn list(&self, items: Vec<Value>) -> Response {
        let (page, link) = self.page(items);
        with_link(&Value::Array(page), link)
    }

    /// The `since` parameter (ISO 8601), 422 on `resource` when malformed.
    pub fn since(&self, resource: &str) -> Result<Option<DateTime<Utc>>, Response> {
        match self.param("since") {
            None => Ok(None),
            Some(s) => DateTime::parse_from_rfc3339(s)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| validation(resource, "since", "invalid")),
        }
    }

    /// The repo as the caller may see it: private repos are 404 to non-collaborators.
    pub fn repo<'s>(&self, st: &'s State, owner: &str, name: &str) -> Result<&'s Repo, Response> {
        visible(st, owner, name, self.caller)
    }

    /// An issue (or pull request) of a repo the caller may see; 404 when either is unknown.
    pub fn issue<'s>(
        &self,
        st: &'s State,
        owner: &str,
        name: &str,
        number: &str,
    ) -> Result<(&'s Repo, &'s Issue), Response> {
        let r = self.repo(st, owner, name)?;
        let i = number
            .parse::<u64>()
            .ok()
            .and_then(|n| r.issues.get(&n))
            .ok_or_else(not_found)?;
        Ok((r, i))
    }

    /// The number of an issue the caller may `act` on ("label", "edit", …): triage access or
    /// better, else GitHub's 403.
    pub fn triaged_issue(
        &self,
        st: &State,
        owner: &str,
        name: &str,
        number: &str,
        act: &str,
    ) -> Result<u64, Response> {
        let (r, i) = self.issue(st, owner, name, number)?;
        if !can_triage(r, self.caller) {
            return Err(message(
                StatusCode::FORBIDDEN,
                &format!("Must have triage access to {act} this issue."),
            ));
        }
        Ok(i.number)
    }
}

/// The repo as `caller` may see it: private repos are 404 to non-collaborators.
pub(super) fn visible<'a>(
    st: &'a State,
    owner: &str,
    name: &str,
    caller: &str,
) -> Result<&'a Repo, Response> {
    match st.repo(&format!("{owner}/{name}")) {
        Some(r) if !r.private || r.role_of(caller).is_some() => Ok(r),
        _ => Err(not_found()),
    }
}

pub(super) fn can_triage(repo: &Repo, caller: &str) -> bool {
    repo.role_of(caller).is_some_and(|r| r != Role::Read)
}
