//! The poll tick's choice: which ready issues are eligible, which one wins each repo's
//! slot, and which winners fit the free global and T3 slots. Every issue that does not win is
//! skipped with the first check it failed, so `--dry-run` can always say why.
//!
//! Trust rule for bots: an actor the forge marks as a bot is trusted only when its login is
//! listed in `trusted_bots` (case-insensitively), and then by that explicit listing alone (an
//! app's permission is often not reportable). An unlisted bot is never trusted, whatever
//! permission it reports. A person is trusted only through the permission the forge reports
//! (`write` and above); the bot list never vouches for a person, so revoking a collaborator on
//! the forge always takes effect.
//!
//! afk's own account (`bot_login`) never arms an issue, whatever permission the forge reports
//! and even if it is listed in `trusted_bots`: a labelling by afk's account can only come from
//! its token, and a leaked token must not be able to hand work to the agent.
//!
//! Edits after the labelling are checked on every forge: a title change recorded
//! after it (GitHub `renamed`, Forgejo `change_title`), a body edit time after it (GitHub
//! `lastEditedAt`), and where the forge shows no body edit time (Forgejo) an `updated_at` after
//! it. Forgejo moves `updated_at` on a body edit and on every timeline entry, and keeps only the
//! newest time, so any entry after the labelling could hide an earlier body edit: the only
//! activity that explains a later `updated_at` is afk's own (the status comment of a claim that
//! did not take the lock, whose record holds the fingerprint of the text it vetted and is
//! checked again before that claim is retried, see [`crate::claim::plan_claim`]).

use std::collections::BTreeMap;

use chrono::SecondsFormat;

use crate::config::Config;
use crate::facts::{BlockerState, CandidateIssue, LabelEvent, Permission, PollFacts, RepoFacts};
use crate::model::Login;
use crate::model::{IssueNumber, RepoName, Timestamp};
use crate::plan::{SkipEntry, SkipReason};

/// What the poll tick should claim, and why everything else waits.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// In claim order: most urgent first.
    pub winners: Vec<Winner>,
    /// Sorted by repo, then issue (tick-wide and repo-wide entries first).
    pub skipped: Vec<SkipEntry>,
}

/// An issue that won its repo's slot and a free global and T3 slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Winner {
    pub repo: RepoName,
    pub issue: IssueNumber,
    pub title: String,
    /// The most urgent priority label's value; `None` = no priority label (lowest urgency).
    pub priority: Option<u32>,
    /// When the ready label was applied by the trusted labeler.
    pub ready_at: Timestamp,
    /// Human-readable, e.g. "trusted label by alice (write), priority 1, unblocked".
    pub reason: String,
}

/// Decides the poll tick's winners and skips. Pure, and independent of the order of
/// `facts.repos` and of each repo's issues.
pub fn select(facts: &PollFacts, config: &Config) -> Selection {
    if config.kill_switch {
        return Selection {
            winners: Vec::new(),
            skipped: vec![SkipEntry {
                repo: None,
                issue: None,
                reason: SkipReason::KillSwitch,
                detail: "the kill switch is on: afk starts no work".to_owned(),
            }],
        };
    }

    let mut skipped = Vec::new();
    let mut repo_winners = Vec::new();
    for (repo, parts) in group_by_repo(facts) {
        if let Some(winner) = select_in_repo(repo, &parts, config, &mut skipped) {
            repo_winners.push(winner);
        }
    }

    repo_winners.sort_by(|a, b| urgency(a).cmp(&urgency(b)));
    let free = config.max_in_flight.saturating_sub(facts.live_runs);
    let t3_free = config
        .t3_max_busy_threads
        .saturating_sub(facts.t3_busy_threads);
    let mut winners: Vec<Winner> = Vec::new();
    for candidate in repo_winners {
        let taken = u32::try_from(winners.len()).unwrap_or(u32::MAX);
        if taken >= free {
            skipped.push(skip(
                &candidate.repo,
                candidate.issue,
                SkipReason::AtCapacity,
                format!(
                    "no free slot: {} live run(s) of max_in_flight {}, {} taken by more urgent \
                     issues this tick",
                    facts.live_runs, config.max_in_flight, taken
                ),
            ));
        } else if taken >= t3_free {
            skipped.push(skip(
                &candidate.repo,
                candidate.issue,
                SkipReason::T3Busy,
                format!(
                    "T3 reports {} busy thread(s) of t3_max_busy_threads {}, {} taken by more \
                     urgent issues this tick",
                    facts.t3_busy_threads, config.t3_max_busy_threads, taken
                ),
            ));
        } else {
            winners.push(candidate);
        }
    }

    skipped.sort_by(|a, b| {
        (&a.repo, a.issue, a.reason, &a.detail).cmp(&(&b.repo, b.issue, b.reason, &b.detail))
    });
    Selection { winners, skipped }
}

/// The numeric value of `label` under one priority pattern (`priority:{n}`, `P{n}`): the
/// pattern's text around `{n}` matched case-insensitively, `{n}` one or more ASCII digits.
pub fn priority_of_label(label: &str, pattern: &str) -> Option<u32> {
    let (prefix, suffix) = pattern.split_once("{n}")?;
    if suffix.contains("{n}") || label.len() < prefix.len() + suffix.len() {
        return None;
    }
    let head = label.get(..prefix.len())?;
    let tail = label.get(label.len() - suffix.len()..)?;
    if !head.eq_ignore_ascii_case(prefix) || !tail.eq_ignore_ascii_case(suffix) {
        return None;
    }
    let digits = label.get(prefix.len()..label.len() - suffix.len())?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The most urgent (lowest) priority among `labels`; `None` when no label matches a pattern.
pub fn priority_of(labels: &[String], patterns: &[String]) -> Option<u32> {
    labels
        .iter()
        .flat_map(|label| patterns.iter().filter_map(|p| priority_of_label(label, p)))
        .min()
}

/// One repo's facts, merged if the tick listed the repo more than once.
pub(crate) struct RepoParts<'a> {
    pub(crate) issues: Vec<&'a CandidateIssue>,
    pub(crate) locked: Vec<IssueNumber>,
    pub(crate) thread_running: bool,
}

pub(crate) fn group_by_repo(facts: &PollFacts) -> BTreeMap<&RepoName, RepoParts<'_>> {
    let mut repos: BTreeMap<&RepoName, RepoParts<'_>> = BTreeMap::new();
    for RepoFacts {
        repo,
        issues,
        locked_issues,
        t3_thread_running,
    } in &facts.repos
    {
        let parts = repos.entry(repo).or_insert_with(|| RepoParts {
            issues: Vec::new(),
            locked: Vec::new(),
            thread_running: false,
        });
        parts.issues.extend(issues.iter());
        parts.locked.extend(locked_issues.iter().copied());
        parts.thread_running |= *t3_thread_running;
    }
    for parts in repos.values_mut() {
        parts.issues.sort_by_key(|i| i.number);
        parts.locked.sort_unstable();
        parts.locked.dedup();
    }
    repos
}

/// Runs the repo-wide and per-issue checks; returns the repo's best eligible issue, if any.
fn select_in_repo(
    repo: &RepoName,
    parts: &RepoParts<'_>,
    config: &Config,
    skipped: &mut Vec<SkipEntry>,
) -> Option<Winner> {
    if let Some((reason, detail)) = repo_gate(repo, config) {
        if parts.issues.is_empty() {
            skipped.push(SkipEntry {
                repo: Some(repo.clone()),
                issue: None,
                reason,
                detail: detail.clone(),
            });
        }
        for issue in &parts.issues {
            skipped.push(skip(repo, issue.number, reason, detail.clone()));
        }
        return None;
    }

    let mut eligible = Vec::new();
    for issue in &parts.issues {
        match check_issue(repo, issue, config) {
            Ok(winner) => eligible.push(winner),
            Err((reason, detail)) => skipped.push(skip(repo, issue.number, reason, detail)),
        }
    }

    if let Some(detail) = repo_busy(repo, parts, config) {
        for winner in eligible {
            skipped.push(skip(
                repo,
                winner.issue,
                SkipReason::RepoBusy,
                detail.clone(),
            ));
        }
        return None;
    }

    eligible.sort_by(|a, b| urgency(a).cmp(&urgency(b)));
    let mut eligible = eligible.into_iter();
    let best = eligible.next()?;
    for other in eligible {
        skipped.push(skip(
            repo,
            other.issue,
            SkipReason::LowerPriority,
            format!(
                "{repo}'s slot goes to #{} ({}, ready since {}); this issue: {}, ready since {}",
                best.issue,
                priority_text(best.priority),
                time(best.ready_at),
                priority_text(other.priority),
                time(other.ready_at),
            ),
        ));
    }
    Some(best)
}

/// Not enrolled, or paused by the operator.
pub(crate) fn repo_gate(repo: &RepoName, config: &Config) -> Option<(SkipReason, String)> {
    if !config.allowlist.contains(repo) {
        return Some((
            SkipReason::NotAllowlisted,
            format!("{repo} is not in the allowlist"),
        ));
    }
    let repo_config = config.repos.get(repo).filter(|r| r.paused)?;
    let reason = repo_config.pause_reason.trim();
    let detail = if reason.is_empty() {
        format!("{repo} is paused in the config (no reason given)")
    } else {
        format!("{repo} is paused in the config: {reason}")
    };
    Some((SkipReason::RepoPaused, detail))
}

/// Why the repo's slot is taken, if it is.
pub(crate) fn repo_busy(repo: &RepoName, parts: &RepoParts<'_>, config: &Config) -> Option<String> {
    if !parts.locked.is_empty() {
        let issues: Vec<String> = parts.locked.iter().map(|n| format!("#{n}")).collect();
        return Some(format!(
            "{repo} has a live run: {} carries the lock label {}",
            issues.join(", "),
            config.labels.in_progress
        ));
    }
    if parts.thread_running {
        return Some(format!(
            "an afk thread of {repo} is still running in T3 although no issue carries the lock \
             label {}",
            config.labels.in_progress
        ));
    }
    None
}

/// The per-issue checks, in order; the first failure is the skip reason. On success
/// returns the issue as a candidate winner of its repo.
pub(crate) fn check_issue(
    repo: &RepoName,
    issue: &CandidateIssue,
    config: &Config,
) -> Result<Winner, (SkipReason, String)> {
    let labels = &config.labels;
    if issue.is_pull_request {
        return Err((
            SkipReason::NotAnIssue,
            "a pull request, not an issue".to_owned(),
        ));
    }
    if !issue.open {
        return Err((SkipReason::NotAnIssue, "the issue is closed".to_owned()));
    }
    if !has_label(issue, &labels.ready) {
        return Err((
            SkipReason::NotAnIssue,
            format!("the issue no longer carries {}", labels.ready),
        ));
    }
    if has_label(issue, &labels.human) {
        return Err((
            SkipReason::HasHumanLabel,
            format!("carries {}: handed to a person", labels.human),
        ));
    }
    if has_label(issue, &labels.in_progress) {
        return Err((
            SkipReason::RepoBusy,
            format!("already carries the lock label {}", labels.in_progress),
        ));
    }
    let event = trusted_label_event(issue, config)?;
    if let Some(detail) = edited_after_label(issue, event, config) {
        return Err((SkipReason::EditedAfterLabel, detail));
    }
    let blocking: Vec<String> = issue
        .blockers
        .iter()
        .filter_map(|b| match &b.state {
            BlockerState::Closed => None,
            BlockerState::Open => Some(format!("{} is open", b.reference)),
            BlockerState::Unresolvable(why) => {
                Some(format!("{} cannot be resolved ({why})", b.reference))
            }
        })
        .collect();
    if !blocking.is_empty() {
        return Err((
            SkipReason::Blocked,
            format!("blocked by {}", blocking.join("; ")),
        ));
    }

    let priority = priority_of(&issue.labels, &labels.priority_patterns);
    let unblocked = if issue.blockers.is_empty() {
        "unblocked".to_owned()
    } else {
        let refs: Vec<&str> = issue
            .blockers
            .iter()
            .map(|b| b.reference.as_str())
            .collect();
        format!("unblocked ({} closed)", refs.join(", "))
    };
    Ok(Winner {
        repo: repo.clone(),
        issue: issue.number,
        title: issue.title.clone(),
        priority,
        ready_at: event.at,
        reason: format!(
            "trusted label by {}, {}, {unblocked}",
            labeler_text(event, config),
            priority_text(priority)
        ),
    })
}

/// Why the issue's text may have changed since the trusted labelling, if it may have.
fn edited_after_label(
    issue: &CandidateIssue,
    event: &LabelEvent,
    config: &Config,
) -> Option<String> {
    let ready = &config.labels.ready;
    let relabel = format!(
        "a trusted collaborator must re-apply {ready} (remove it, then add it again) after \
         reading the issue as it is now"
    );
    let label_at = time(event.at);
    if let Some(at) = issue.title_edited_at.filter(|at| *at >= event.at) {
        return Some(format!(
            "title changed at {} after {ready} was applied at {label_at}; {relabel}",
            time(at)
        ));
    }
    if let Some(at) = issue.body_edited_at.filter(|at| *at > event.at) {
        return Some(format!(
            "body edited at {} after {ready} was applied at {label_at}; {relabel}",
            time(at)
        ));
    }
    let updated = issue.updated_at.filter(|at| *at > event.at)?;
    let bot = bot_login(config);
    let own_latest = issue
        .activity_after_label
        .iter()
        .filter(|a| bot.is_some_and(|b| is_login(&a.actor, b)))
        .map(|a| a.at)
        .max();
    if own_latest.is_some_and(|own| own >= updated) {
        return None;
    }
    Some(format!(
        "the issue was updated at {} after {ready} was applied at {label_at}; this forge shows \
         no body edit time, so a comment, label change or edit after the labelling may hide a \
         body edit ({} other timeline entr(y/ies) since); {relabel}",
        time(updated),
        issue
            .activity_after_label
            .iter()
            .filter(|a| !bot.is_some_and(|b| is_login(&a.actor, b)))
            .count()
    ))
}

/// afk's own account on the tracker, if configured.
fn bot_login(config: &Config) -> Option<&str> {
    config
        .tracker
        .as_ref()
        .map(|t| t.bot_login.trim())
        .filter(|b| !b.is_empty())
}

/// Forges compare logins case-insensitively.
fn is_login(login: &Login, name: &str) -> bool {
    login.as_str().trim().eq_ignore_ascii_case(name)
}

/// The ready-label event, if its actor may arm the issue.
fn trusted_label_event<'a>(
    issue: &'a CandidateIssue,
    config: &Config,
) -> Result<&'a LabelEvent, (SkipReason, String)> {
    let ready = &config.labels.ready;
    let Some(event) = issue.ready_label.as_ref() else {
        return Err((
            SkipReason::UntrustedLabeler,
            format!("no labeled event found for {ready}: unattributable"),
        ));
    };
    if let Some(bot) = bot_login(config).filter(|b| is_login(&event.actor, b)) {
        return Err((
            SkipReason::UntrustedLabeler,
            format!(
                "{ready} was applied by {}, afk's own account (bot_login {bot}): afk never \
                 arms an issue for itself, whatever its permission or trusted_bots say; a \
                 trusted collaborator must apply {ready}",
                event.actor
            ),
        ));
    }
    if event.actor_is_bot {
        if listed_bot(event, config) {
            return Ok(event);
        }
        return Err((
            SkipReason::UntrustedLabeler,
            format!(
                "{ready} was applied by the bot {} (permission {}), which is not in trusted_bots",
                event.actor,
                permission_text(&event.permission)
            ),
        ));
    }
    if event.permission.may_arm() {
        return Ok(event);
    }
    Err((
        SkipReason::UntrustedLabeler,
        format!(
            "{ready} was applied by {} with permission {}; arming needs write, maintain, admin \
             or owner",
            event.actor,
            permission_text(&event.permission)
        ),
    ))
}

fn listed_bot(event: &LabelEvent, config: &Config) -> bool {
    config
        .trusted_bots
        .iter()
        .any(|bot| bot.trim().eq_ignore_ascii_case(event.actor.as_str()))
}

fn labeler_text(event: &LabelEvent, config: &Config) -> String {
    if event.actor_is_bot && listed_bot(event, config) {
        format!("{} (bot listed in trusted_bots)", event.actor)
    } else {
        format!("{} ({})", event.actor, permission_text(&event.permission))
    }
}

pub(crate) fn has_label(issue: &CandidateIssue, name: &str) -> bool {
    issue.labels.iter().any(|l| l.eq_ignore_ascii_case(name))
}

/// Sort key: most urgent first; a priority beats none; then FIFO; then number; then repo.
pub(crate) fn urgency(w: &Winner) -> (bool, u32, Timestamp, IssueNumber, &RepoName) {
    (
        w.priority.is_none(),
        w.priority.unwrap_or(u32::MAX),
        w.ready_at,
        w.issue,
        &w.repo,
    )
}

fn skip(repo: &RepoName, issue: IssueNumber, reason: SkipReason, detail: String) -> SkipEntry {
    SkipEntry {
        repo: Some(repo.clone()),
        issue: Some(issue),
        reason,
        detail,
    }
}

fn priority_text(priority: Option<u32>) -> String {
    match priority {
        Some(n) => format!("priority {n}"),
        None => "no priority".to_owned(),
    }
}

fn permission_text(permission: &Permission) -> String {
    match permission {
        Permission::Owner => "owner".to_owned(),
        Permission::Admin => "admin".to_owned(),
        Permission::Maintain => "maintain".to_owned(),
        Permission::Write => "write".to_owned(),
        Permission::Triage => "triage".to_owned(),
        Permission::Read => "read".to_owned(),
        Permission::None => "none".to_owned(),
        Permission::Unknown(why) => {
            let why: String = why.chars().take(80).collect();
            format!("unknown ({why})")
        }
    }
}

fn time(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_labels_match_their_pattern_only() {
        let p = "priority:{n}";
        assert_eq!(priority_of_label("priority:1", p), Some(1));
        assert_eq!(priority_of_label("Priority:12", p), Some(12));
        assert_eq!(priority_of_label("priority:", p), None);
        assert_eq!(priority_of_label("priority:x", p), None);
        assert_eq!(priority_of_label("priority:-1", p), None);
        assert_eq!(priority_of_label("priority:1a", p), None);
        assert_eq!(priority_of_label("P0", "P{n}"), Some(0));
        assert_eq!(priority_of_label("p3", "P{n}"), Some(3));
        assert_eq!(priority_of_label("PR", "P{n}"), None);
        assert_eq!(priority_of_label("P99999999999", "P{n}"), None);
        assert_eq!(priority_of_label("P1", "P"), None);
        assert_eq!(priority_of_label("P1-1", "P{n}-{n}"), None);
        assert_eq!(priority_of_label("[3]", "[{n}]"), Some(3));
        assert_eq!(priority_of_label("ü1", "P{n}"), None);
    }

    #[test]
    fn the_most_urgent_matching_label_counts() {
        let patterns = vec!["priority:{n}".to_owned(), "P{n}".to_owned()];
        let labels = vec!["bug".to_owned(), "P3".to_owned(), "priority:1".to_owned()];
        assert_eq!(priority_of(&labels, &patterns), Some(1));
        assert_eq!(priority_of(&["bug".to_owned()], &patterns), None);
    }
}
