//! The poll's deep reads for a round of issues: the latest ready labelling and the labeller's
//! permission (a repo's issues in turn, so each labeller's permission is read once per repo),
//! then the edit evidence and native blockers of the whole round in one call, then the
//! `Blocked by` references in the bodies. Repos are read concurrently.

use std::collections::{BTreeMap, HashMap};

use afk_core::blockers::{BlockerRef, blocker_refs};
use afk_core::config::Config;
use afk_core::facts::{Blocker, BlockerState, CandidateIssue, LabelEvent, Permission};
use afk_core::lazy::IssueKey;
use afk_core::model::RepoName;
use afk_remotes::error::RemoteError;
use afk_remotes::tracker::{Issue, IssueExtras, LabelChange};
use futures::StreamExt;

use super::Gathered;
use crate::dispatch::permission_of;
use crate::remotes::Remotes;

/// What the listing alone says of an issue: no deep fact yet.
pub(super) fn listed(issue: &Issue) -> CandidateIssue {
    CandidateIssue {
        number: issue.number,
        title: issue.title.clone(),
        is_pull_request: issue.is_pull_request,
        open: issue.open,
        labels: issue.labels.clone(),
        ready_label: None,
        body_edited_at: None,
        title_edited_at: None,
        updated_at: None,
        activity_after_label: Vec::new(),
        blockers: Vec::new(),
    }
}

/// One issue after its labelling was read.
struct Labelled {
    issue: Issue,
    change: Option<(LabelChange, Permission)>,
    /// The labeller may arm the issue, so its edits and blockers matter (the policy skips
    /// anyone else first: reading them would be wasted requests).
    armed: bool,
}

/// The issues read (with their deep facts) and the repos whose reads failed (their issues are
/// not judged this tick; the repo holds a slot, as one whose listing failed).
pub(super) type RoundResult = (
    Vec<(IssueKey, CandidateIssue)>,
    Vec<(RepoName, RemoteError)>,
);

/// A repo's labellings, with its permission cache to put back.
type LabelledRepo = (
    RepoName,
    HashMap<String, Permission>,
    Result<Vec<Labelled>, RemoteError>,
);

/// A repo's finished issues, with its blocker cache to put back.
type FinishedRepo = (
    RepoName,
    HashMap<(RepoName, u64), BlockerState>,
    Vec<(IssueKey, CandidateIssue)>,
);

/// Reads the deep facts of `round`'s issues.
pub(super) async fn vet_round(
    remotes: &Remotes,
    config: &Config,
    round: &[IssueKey],
    gathered: &mut BTreeMap<RepoName, Gathered>,
    concurrency: usize,
) -> RoundResult {
    let mut work: BTreeMap<RepoName, (Vec<Issue>, HashMap<String, Permission>)> = BTreeMap::new();
    for (repo, number) in round {
        let Some(g) = gathered.get_mut(repo) else {
            continue;
        };
        let Some(issue) = g.issues.get(number).cloned() else {
            continue;
        };
        let entry = work
            .entry(repo.clone())
            .or_insert_with(|| (Vec::new(), std::mem::take(&mut g.permissions)));
        entry.0.push(issue);
    }
    let labelled: Vec<LabelledRepo> = futures::stream::iter(work)
        .map(|(repo, (issues, mut permissions))| async move {
            let mut out = Vec::new();
            for issue in issues {
                match labelling(remotes, config, &repo, issue, &mut permissions).await {
                    Ok(l) => out.push(l),
                    Err(e) => return (repo, permissions, Err(e)),
                }
            }
            (repo, permissions, Ok(out))
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut failed = Vec::new();
    let mut ok: BTreeMap<RepoName, Vec<Labelled>> = BTreeMap::new();
    for (repo, permissions, result) in labelled {
        if let Some(g) = gathered.get_mut(&repo) {
            g.permissions = permissions;
        }
        match result {
            Ok(l) => {
                ok.insert(repo, l);
            }
            Err(e) => failed.push((repo, e)),
        }
    }

    // The edit evidence and native blockers of the whole round, in one call.
    let asked: Vec<IssueKey> = ok
        .iter()
        .flat_map(|(repo, ls)| {
            ls.iter()
                .filter(|l| l.armed)
                .map(|l| (repo.clone(), l.issue.number))
        })
        .collect();
    let mut extras: HashMap<IssueKey, IssueExtras> = HashMap::new();
    if !asked.is_empty() {
        match remotes.tracker.issue_extras_many(&asked).await {
            Ok(found) if found.len() == asked.len() => {
                extras.extend(asked.iter().cloned().zip(found));
            }
            result => {
                let why = match result {
                    Err(e) => e,
                    Ok(found) => RemoteError::new(
                        "tracker",
                        "issue extras",
                        afk_remotes::error::ErrorKind::Decode(format!(
                            "asked for {} issues' edit times and blockers, got {}",
                            asked.len(),
                            found.len()
                        )),
                    ),
                };
                // Unknown edits and blockers: none of the round's armed issues may be judged.
                let repos: std::collections::BTreeSet<&RepoName> =
                    asked.iter().map(|(r, _)| r).collect();
                for repo in repos {
                    ok.remove(repo);
                    failed.push((repo.clone(), why.clone()));
                }
            }
        }
    }

    let mut jobs = Vec::new();
    for (repo, ls) in ok {
        let cache = gathered
            .get_mut(&repo)
            .map(|g| std::mem::take(&mut g.blockers))
            .unwrap_or_default();
        let mut mine = Vec::new();
        for l in ls {
            let e = extras.remove(&(repo.clone(), l.issue.number));
            mine.push((l, e));
        }
        jobs.push((repo, cache, mine));
    }
    let finished: Vec<FinishedRepo> = futures::stream::iter(jobs)
        .map(|(repo, mut cache, mine)| async move {
            let mut out = Vec::new();
            for (l, extras) in mine {
                let c = candidate(remotes, &repo, l, extras, &mut cache).await;
                out.push(((repo.clone(), c.number), c));
            }
            (repo, cache, out)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut read = Vec::new();
    for (repo, cache, out) in finished {
        if let Some(g) = gathered.get_mut(&repo) {
            g.blockers = cache;
        }
        read.extend(out);
    }
    (read, failed)
}

/// The latest ready labelling and its actor's permission.
async fn labelling(
    remotes: &Remotes,
    config: &Config,
    repo: &RepoName,
    issue: Issue,
    permissions: &mut HashMap<String, Permission>,
) -> Result<Labelled, RemoteError> {
    let Some(change) = remotes
        .tracker
        .latest_labeling(repo, issue.number, &config.labels.ready)
        .await?
    else {
        return Ok(Labelled {
            issue,
            change: None,
            armed: false,
        });
    };
    let permission = permission_of(remotes, repo, &change.actor, permissions).await?;
    let bot = config
        .tracker
        .as_ref()
        .map(|t| t.bot_login.trim())
        .filter(|b| !b.is_empty());
    let listed_bot = change.actor_is_bot
        && config
            .trusted_bots
            .iter()
            .any(|b| b.eq_ignore_ascii_case(change.actor.as_str()));
    let own = bot.is_some_and(|b| b.eq_ignore_ascii_case(change.actor.as_str().trim()));
    let armed = !own && (listed_bot || (!change.actor_is_bot && permission.may_arm()));
    Ok(Labelled {
        issue,
        change: Some((change, permission)),
        armed,
    })
}

/// The issue with every deep fact the policy needs.
async fn candidate(
    remotes: &Remotes,
    repo: &RepoName,
    l: Labelled,
    extras: Option<IssueExtras>,
    cache: &mut HashMap<(RepoName, u64), BlockerState>,
) -> CandidateIssue {
    let mut c = listed(&l.issue);
    let Some((change, permission)) = l.change else {
        return c;
    };
    match extras {
        Some(extras) if l.armed => {
            c.body_edited_at = extras.body_edited_at;
            if !extras.body_edit_time_known {
                c.updated_at = Some(l.issue.updated_at);
            }
            c.blockers = resolve_blockers(remotes, repo, &l.issue.body, cache).await;
            add_linked_blockers(&mut c.blockers, repo, &extras);
        }
        // Armed but its edits and linked blockers are unknown: it must not pass (fail closed).
        None if l.armed => c.blockers.push(Blocker {
            reference: "the forge's edit time and linked blockers".into(),
            state: BlockerState::Unresolvable("not read this tick".into()),
        }),
        _ => {}
    }
    c.title_edited_at = change.title_changed_after;
    c.activity_after_label = change.activity_after;
    c.ready_label = Some(LabelEvent {
        actor: change.actor,
        actor_is_bot: change.actor_is_bot,
        at: change.at,
        permission,
    });
    c
}

/// Resolves every blocker reference; anything that cannot be read blocks (fail closed).
async fn resolve_blockers(
    remotes: &Remotes,
    home: &RepoName,
    body: &str,
    cache: &mut HashMap<(RepoName, u64), BlockerState>,
) -> Vec<Blocker> {
    let mut out = Vec::new();
    for r in blocker_refs(body, home) {
        let reference = r.display(home);
        let state = match &r {
            BlockerRef::Malformed(s) => {
                BlockerState::Unresolvable(format!("not an issue reference: {s}"))
            }
            BlockerRef::Issue { repo, number } => {
                let key = (repo.clone(), *number);
                match cache.get(&key) {
                    Some(s) => s.clone(),
                    None => {
                        let s = match remotes.tracker.issue(repo, *number).await {
                            Ok(Some(i)) if i.open => BlockerState::Open,
                            Ok(Some(_)) => BlockerState::Closed,
                            Ok(None) => {
                                BlockerState::Unresolvable("no such issue (or no access)".into())
                            }
                            Err(e) => BlockerState::Unresolvable(e.to_string()),
                        };
                        cache.insert(key, s.clone());
                        s
                    }
                }
            }
        };
        out.push(Blocker { reference, state });
    }
    out
}

/// Adds the forge's native "blocked by" links not already named in the body. Links the forge
/// did not list are unknown, so they block (fail closed).
fn add_linked_blockers(blockers: &mut Vec<Blocker>, home: &RepoName, extras: &IssueExtras) {
    if let Some(why) = &extras.unreadable {
        // The forge answered for other issues but not this one: nothing is known, it blocks.
        blockers.push(Blocker {
            reference: "this issue's edits and linked issues".into(),
            state: BlockerState::Unresolvable(why.clone()),
        });
        return;
    }
    for link in &extras.linked_blockers {
        let reference = match link.repo.parse::<RepoName>() {
            Ok(r) => BlockerRef::Issue {
                repo: r,
                number: link.number,
            }
            .display(home),
            Err(_) => format!("{}#{}", link.repo, link.number),
        };
        if blockers.iter().any(|b| b.reference == reference) {
            continue;
        }
        let state = if link.open {
            BlockerState::Open
        } else {
            BlockerState::Closed
        };
        blockers.push(Blocker {
            reference: format!("{reference} (linked)"),
            state,
        });
    }
    if extras.unlisted_blockers > 0 {
        blockers.push(Blocker {
            reference: format!("{} more linked issue(s)", extras.unlisted_blockers),
            state: BlockerState::Unresolvable("the forge did not list them".into()),
        });
    }
    if extras.hidden_blockers > 0 {
        blockers.push(Blocker {
            reference: format!("{} linked issue(s) afk cannot see", extras.hidden_blockers),
            state: BlockerState::Unresolvable(
                "afk's token cannot read them; give it access or remove the link".into(),
            ),
        });
    }
}
