//! Simulator of Forgejo (tracker, commit statuses and Forgejo Actions), strict about request
//! shapes (shared remotes facts §B, §G).
//!
//! The API lives under `/api/v1` ([`router`]); see [`api`] for what it refuses. Scenarios and
//! tests seed it with the helpers below (users and tokens, repos, collaborators, labels,
//! issues, label events, comments, commits, statuses, action runs) or over JSON at
//! `/__sim/forgejo/...` ([`control`]). Every timestamp comes from the simulated clock.

use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use axum::Router;

use crate::infra::lock;
use crate::world::World;

pub mod api;
mod control;
mod json;
pub mod model;
mod request;

pub use model::State;
use model::{ActionRun, Commit, Event, Issue, LabelRef, Repo, STATUS_VALUES, Status};

/// The remote's API as afk sees it (`/api/v1/...`).
pub fn router(world: Arc<World>) -> Router {
    api::router(world)
}

/// Test and scenario control endpoints under `/__sim/forgejo/`.
pub fn control(world: Arc<World>) -> Router {
    control::router(world)
}

fn split_repo(full: &str) -> anyhow::Result<(&str, &str)> {
    full.split_once('/')
        .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| anyhow!("repo {full:?} must be owner/name"))
}

/// Adds (or updates) an account; with a token, requests bearing it act as this account.
pub fn add_user(world: &World, login: &str, token: Option<&str>, site_admin: bool) {
    let mut st = lock(&world.forgejo);
    let login = st.ensure_user(login);
    if let Some(u) = st.users.get_mut(&login.to_ascii_lowercase()) {
        u.is_admin = site_admin;
    }
    if let Some(t) = token {
        st.tokens.insert(t.to_owned(), login.to_ascii_lowercase());
    }
}

/// Creates a repo owned by its owner segment (the owner account is created if missing).
pub fn add_repo(
    world: &World,
    full: &str,
    default_branch: &str,
    private: bool,
) -> anyhow::Result<()> {
    let (owner, name) = split_repo(full)?;
    let mut st = lock(&world.forgejo);
    if st.repo(full).is_some() {
        bail!("repo {full} already exists");
    }
    let owner = st.ensure_user(owner);
    let id = st.next_id();
    st.repos.insert(
        full.to_ascii_lowercase(),
        Repo {
            id,
            owner,
            name: name.to_owned(),
            default_branch: default_branch.to_owned(),
            private,
            collaborators: Default::default(),
            labels: Vec::new(),
            issues: Default::default(),
            branches: Default::default(),
            statuses: Default::default(),
            runs: Vec::new(),
        },
    );
    Ok(())
}

/// Grants `login` (created if missing) `read`, `write` or `admin` on the repo.
pub fn set_collaborator(
    world: &World,
    full: &str,
    login: &str,
    permission: &str,
) -> anyhow::Result<()> {
    if !matches!(permission, "read" | "write" | "admin") {
        bail!("permission {permission:?} must be read, write or admin");
    }
    let mut st = lock(&world.forgejo);
    let login = st.ensure_user(login);
    let repo = st.repo_mut(full).map_err(|_| anyhow!("no repo {full}"))?;
    repo.collaborators
        .insert(login.to_ascii_lowercase(), permission.to_owned());
    Ok(())
}

/// The id of the repo label `name`, creating it when missing.
pub fn add_label(world: &World, full: &str, name: &str) -> anyhow::Result<u64> {
    let mut st = lock(&world.forgejo);
    ensure_label(&mut st, full, name)
}

fn ensure_label(st: &mut State, full: &str, name: &str) -> anyhow::Result<u64> {
    if name.is_empty() || name.contains(',') {
        bail!("label {name:?} must be non-empty and without commas");
    }
    let id = st.next_id();
    let repo = st.repo_mut(full).map_err(|_| anyhow!("no repo {full}"))?;
    if let Some(l) = repo.label_by_name(name) {
        return Ok(l.id);
    }
    repo.labels.push(model::Label {
        id,
        name: name.to_owned(),
        color: "0e8a16".to_owned(),
    });
    Ok(id)
}

/// What [`add_issue`] creates.
#[derive(Debug, Clone, Default)]
pub struct NewIssue {
    pub title: String,
    pub body: String,
    pub author: String,
    /// Applied by the author at creation (each recorded as a label event); created if missing.
    pub labels: Vec<String>,
    pub pull_request: bool,
}

/// Creates an issue (or pull request) with the next index; returns the index.
pub fn add_issue(world: &World, full: &str, new: NewIssue) -> anyhow::Result<u64> {
    let now = world.sim.now();
    let mut st = lock(&world.forgejo);
    let author = st.ensure_user(&new.author);
    let mut label_refs = Vec::new();
    for l in &new.labels {
        ensure_label(&mut st, full, l)?;
        label_refs.push(LabelRef::Name(l.clone()));
    }
    let id = st.next_id();
    let repo = st.repo_mut(full).map_err(|_| anyhow!("no repo {full}"))?;
    let index = repo.issues.keys().next_back().copied().unwrap_or(0) + 1;
    repo.issues.insert(
        index,
        Issue {
            id,
            index,
            title: new.title,
            body: new.body,
            open: true,
            labels: Vec::new(),
            author: author.clone(),
            pull_request: new.pull_request,
            created_at: now,
            updated_at: now,
            closed_at: None,
            timeline: Vec::new(),
            depends_on: Vec::new(),
        },
    );
    st.add_labels(full, index, &label_refs, &author, now)
        .context("labelling the new issue")?;
    Ok(index)
}

/// `actor` adds `label` (created in the repo if missing) to an issue: a `label` event with
/// body `"1"`. Adding a label the issue already has records nothing, as on Forgejo.
pub fn label_issue(
    world: &World,
    full: &str,
    index: u64,
    label: &str,
    actor: &str,
) -> anyhow::Result<()> {
    let now = world.sim.now();
    let mut st = lock(&world.forgejo);
    let actor = st.ensure_user(actor);
    ensure_label(&mut st, full, label)?;
    st.add_labels(
        full,
        index,
        &[LabelRef::Name(label.to_owned())],
        &actor,
        now,
    )?;
    Ok(())
}

/// `actor` removes `label` from an issue: a `label` event with body `""`.
pub fn unlabel_issue(
    world: &World,
    full: &str,
    index: u64,
    label: &str,
    actor: &str,
) -> anyhow::Result<()> {
    let now = world.sim.now();
    let mut st = lock(&world.forgejo);
    let actor = st.ensure_user(actor);
    st.remove_label(full, index, &LabelRef::Name(label.to_owned()), &actor, now)?;
    Ok(())
}

/// A comment by `author`; returns its id.
pub fn add_comment(
    world: &World,
    full: &str,
    index: u64,
    author: &str,
    body: &str,
) -> anyhow::Result<u64> {
    let now = world.sim.now();
    let mut st = lock(&world.forgejo);
    let author = st.ensure_user(author);
    Ok(st.add_comment(full, index, &author, body, now)?)
}

/// Any other timeline entry (`commit_ref`, `assignees`, `change_title`, …); returns its id.
pub fn add_event(
    world: &World,
    full: &str,
    index: u64,
    kind: &str,
    actor: &str,
    body: &str,
) -> anyhow::Result<u64> {
    let now = world.sim.now();
    let mut st = lock(&world.forgejo);
    let actor = st.ensure_user(actor);
    let id = st.next_id();
    let issue = st.repo_mut(full)?.issue_mut(index)?;
    issue.timeline.push(Event {
        id,
        kind: kind.to_owned(),
        user: actor,
        body: body.to_owned(),
        label: None,
        titles: None,
        created_at: now,
        updated_at: now,
    });
    // Every timeline entry moves the issue's `updated_at` (`updateCommentInfos`).
    issue.updated_at = now;
    Ok(id)
}

/// `actor` edits an issue's title and/or body, as through the web UI or `PATCH …/issues/{index}`
/// (see [`model::State::edit_issue`] for what Forgejo records).
pub fn edit_issue(
    world: &World,
    full: &str,
    index: u64,
    title: Option<&str>,
    body: Option<&str>,
    actor: &str,
) -> anyhow::Result<()> {
    let now = world.sim.now();
    let mut st = lock(&world.forgejo);
    let actor = st.ensure_user(actor);
    st.edit_issue(full, index, title, body, &actor, now)?;
    Ok(())
}

/// Opens or closes an issue as `actor` would.
pub fn set_issue_open(
    world: &World,
    full: &str,
    index: u64,
    open: bool,
    actor: &str,
) -> anyhow::Result<()> {
    let now = world.sim.now();
    let mut st = lock(&world.forgejo);
    let actor = st.ensure_user(actor);
    Ok(st.set_open(full, index, open, &actor, now)?)
}

/// Pushes a commit by the repo owner onto `branch` (created if missing); returns its SHA. On
/// the default branch, issues the message closes with a keyword (`Closes #N`, `fixes o/r#N`,
/// …) are closed, as Forgejo does.
pub fn push_commit(
    world: &World,
    full: &str,
    branch: &str,
    message: &str,
) -> anyhow::Result<String> {
    let now = world.sim.now();
    let mut st = lock(&world.forgejo);
    let n = st.next_id();
    let repo = st.repo_mut(full).map_err(|_| anyhow!("no repo {full}"))?;
    let sha = model::fake_sha(&format!("{full} {branch} {message}"), n);
    let owner = repo.owner.clone();
    let on_default = branch == repo.default_branch;
    repo.branches
        .entry(branch.to_owned())
        .or_default()
        .push(Commit {
            sha: sha.clone(),
            message: message.to_owned(),
            author: owner.clone(),
            at: now,
        });
    if on_default {
        let canonical = repo.full_name();
        for index in model::closing_references(message, &canonical) {
            let is_issue = st
                .repo(full)
                .and_then(|r| r.issues.get(&index))
                .is_some_and(|i| !i.pull_request);
            if is_issue {
                st.set_open(full, index, false, &owner, now)?;
            }
        }
    }
    Ok(sha)
}

/// Reports a commit status (`pending|success|error|failure|warning|skipped`) for `context`;
/// the latest per context counts. Returns the status id.
pub fn add_status(
    world: &World,
    full: &str,
    sha: &str,
    context: &str,
    status: &str,
    target_url: &str,
) -> anyhow::Result<u64> {
    if !STATUS_VALUES.contains(&status) {
        bail!(
            "status {status:?} must be one of {}",
            STATUS_VALUES.join(", ")
        );
    }
    let now = world.sim.now();
    let mut st = lock(&world.forgejo);
    let id = st.next_id();
    let repo = st.repo_mut(full).map_err(|_| anyhow!("no repo {full}"))?;
    let creator = repo.owner.clone();
    repo.statuses
        .entry(sha.to_ascii_lowercase())
        .or_default()
        .push(Status {
            id,
            context: context.to_owned(),
            status: status.to_owned(),
            target_url: target_url.to_owned(),
            description: format!("{context} is {status}"),
            creator,
            created_at: now,
        });
    Ok(id)
}

/// Starts a Forgejo Actions run of `workflow_id` (e.g. `build.yml`) for a commit, triggered by
/// `push`; returns the run id.
pub fn add_action_run(
    world: &World,
    full: &str,
    sha: &str,
    workflow_id: &str,
    status: &str,
) -> anyhow::Result<u64> {
    check_run_status(status)?;
    let now = world.sim.now();
    let mut st = lock(&world.forgejo);
    let id = st.next_id();
    let repo = st.repo_mut(full).map_err(|_| anyhow!("no repo {full}"))?;
    let index_in_repo = repo.runs.len() as u64 + 1;
    let prettyref = repo.default_branch.clone();
    let trigger_user = repo.owner.clone();
    repo.runs.push(ActionRun {
        id,
        index_in_repo,
        workflow_id: workflow_id.to_owned(),
        title: format!(
            "{workflow_id} on {}",
            sha.chars().take(10).collect::<String>()
        ),
        status: status.to_owned(),
        commit_sha: sha.to_ascii_lowercase(),
        event: "push".to_owned(),
        prettyref,
        trigger_user,
        created: now,
        updated: now,
    });
    Ok(id)
}

/// Moves an action run to another status (`running`, `success`, …).
pub fn set_action_run(world: &World, full: &str, run_id: u64, status: &str) -> anyhow::Result<()> {
    check_run_status(status)?;
    let now = world.sim.now();
    let mut st = lock(&world.forgejo);
    let repo = st.repo_mut(full).map_err(|_| anyhow!("no repo {full}"))?;
    let run = repo
        .runs
        .iter_mut()
        .find(|r| r.id == run_id)
        .ok_or_else(|| anyhow!("no action run {run_id} in {full}"))?;
    run.status = status.to_owned();
    run.updated = now;
    Ok(())
}

fn check_run_status(status: &str) -> anyhow::Result<()> {
    if !model::RUN_STATUS_VALUES.contains(&status) {
        bail!(
            "action run status {status:?} must be one of {}",
            model::RUN_STATUS_VALUES.join(", ")
        );
    }
    Ok(())
}

/// Makes `index` depend on (be blocked by) `blocker` (`owner/name`, index).
pub fn add_dependency(
    world: &World,
    full: &str,
    index: u64,
    blocker: (&str, u64),
) -> anyhow::Result<()> {
    let mut st = lock(&world.forgejo);
    let exists = st
        .repo(blocker.0)
        .is_some_and(|r| r.issues.contains_key(&blocker.1));
    if !exists {
        bail!("no issue {}#{} to depend on", blocker.0, blocker.1);
    }
    let canonical = st
        .repo(blocker.0)
        .map(model::Repo::full_name)
        .unwrap_or_default();
    let issue = st.repo_mut(full)?.issue_mut(index)?;
    issue.depends_on.push((canonical, blocker.1));
    Ok(())
}

/// A copy of an issue, for assertions.
pub fn issue(world: &World, full: &str, index: u64) -> Option<Issue> {
    lock(&world.forgejo)
        .repo(full)
        .and_then(|r| r.issues.get(&index).cloned())
}

/// The names of the labels an issue carries, in the order they were added.
pub fn issue_labels(world: &World, full: &str, index: u64) -> Vec<String> {
    let st = lock(&world.forgejo);
    let Some(repo) = st.repo(full) else {
        return Vec::new();
    };
    repo.issues
        .get(&index)
        .map(|i| {
            i.labels
                .iter()
                .filter_map(|id| repo.label_by_id(*id).map(|l| l.name.clone()))
                .collect()
        })
        .unwrap_or_default()
}
