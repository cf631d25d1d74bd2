//! Doorbell messages for a run's verdict: `repo#N`, the verdict, the reason, the
//! commit and failing checks where they matter, the issue link and the T3 thread deep link.
//! And the fleet's one page per T3 outage ([`t3_outage_notice`], kind `t3-unreachable`).
//!
//! ntfy takes at most 4,096 bytes of message (more becomes an attachment), so the message is
//! bounded by [`MAX_MESSAGE_BYTES`]; the reason is the part that gives way.

use std::fmt::Write as _;

use crate::comment::{escape_markdown, minute, safe_url, short_sha};
use crate::config::Config;
use crate::effect::Notice;
use crate::model::{Timestamp, elapsed, format_duration};
use crate::record::{PhaseState, RunRecord, Verdict};

/// Upper bound of [`Notice::message`] in bytes (under ntfy's 4,096).
pub const MAX_MESSAGE_BYTES: usize = 3500;
const MAX_REASON_CHARS: usize = 600;
const MAX_CHECKS_NAMED: usize = 5;
const MAX_URL_BYTES: usize = 512;
/// Most runs a T3 outage page names (the rest are counted).
const MAX_RUNS_NAMED: usize = 20;

/// The kind (and ntfy tag) of the page sent when T3 stays unreachable.
pub const T3_UNREACHABLE: &str = "t3-unreachable";
/// ntfy priority of a T3 outage page: high, like needs-human.
pub const T3_OUTAGE_PRIORITY: u8 = 4;

/// The page for a T3 outage: since when T3 is unreachable, for how long, the error, the runs
/// waiting on it, and what to check. Names T3 by its configured URLs (never a credential).
pub fn t3_outage_notice(
    config: &Config,
    since: Timestamp,
    now: Timestamp,
    affected: &[&RunRecord],
    error: &str,
) -> Notice {
    let (base_url, web_url) = config
        .t3
        .as_ref()
        .map(|t| (t.base_url.as_str(), t.web_url.as_str()))
        .unwrap_or_default();
    let down_for = format_duration(elapsed(since, now));
    let mut m = format!(
        "**{T3_UNREACHABLE}**: afk has not been able to read T3 at {} for {down_for} (since {}): {}\n\n",
        safe_url(base_url).map_or_else(|| "(no [t3] configured)".to_owned(), |u| format!("`{u}`")),
        minute(since),
        escape_markdown(error, MAX_REASON_CHARS)
    );
    let _ = writeln!(
        m,
        "{} run(s) wait on it: no dispatch, corrective turn or verdict until it answers.",
        affected.len()
    );
    let mut runs: Vec<&&RunRecord> = affected.iter().collect();
    runs.sort_by(|a, b| (&a.repo, a.issue).cmp(&(&b.repo, b.issue)));
    for r in runs.iter().take(MAX_RUNS_NAMED) {
        let _ = writeln!(m, "- {}#{} (run `{}`)", r.repo, r.issue, r.run);
    }
    if runs.len() > MAX_RUNS_NAMED {
        let _ = writeln!(m, "- and {} more", runs.len() - MAX_RUNS_NAMED);
    }
    m.push_str(
        "\nCheck that the T3 server is running and reachable from afk-watch, and that afk's T3 \
         token is valid; afk-watch's log names the failing request. This page is sent once per \
         outage.\n",
    );
    if let Some(web) = safe_url(web_url).filter(|u| u.len() <= MAX_URL_BYTES) {
        let _ = writeln!(m, "\n[T3]({web})");
    }
    Notice {
        title: format!("afk: T3 unreachable for {down_for}"),
        message: crate::prompt::truncate_bytes(&m, MAX_MESSAGE_BYTES)
            .0
            .to_owned(),
        priority: T3_OUTAGE_PRIORITY,
        tags: vec!["warning".to_owned(), T3_UNREACHABLE.to_owned()],
        // The channels label `click` as the issue's link: a fleet page has none (T3's own
        // link is in the message).
        click: String::new(),
        thread_url: String::new(),
    }
}

/// ntfy priority for a verdict: done low (2), needs-human high (4), frozen max (5).
pub fn priority(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Done => 2,
        Verdict::NeedsHuman => 4,
        Verdict::Frozen => 5,
        Verdict::Released => 3,
    }
}

/// The ntfy emoji short-code tag of a verdict.
fn emoji(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Done => "white_check_mark",
        Verdict::NeedsHuman => "raising_hand",
        Verdict::Frozen => "rotating_light",
        Verdict::Released => "wave",
    }
}

/// The doorbell message for `record`'s verdict.
pub fn notice(
    record: &RunRecord,
    verdict: Verdict,
    reason: &str,
    issue_url: &str,
    thread_url: &str,
) -> Notice {
    let title = format!("{}#{} {}", record.repo, record.issue, verdict.as_str());
    let mut facts = facts_lines(record, verdict);
    let links = links_line(issue_url, thread_url);
    let mut max_reason = MAX_REASON_CHARS;
    // Shorten the reason first, then drop facts from the least important end.
    let message = loop {
        let message = compose(verdict, reason, max_reason, &facts, &links);
        if message.len() <= MAX_MESSAGE_BYTES {
            break message;
        }
        if max_reason > 0 {
            max_reason /= 2;
        } else if facts.pop().is_none() {
            break crate::prompt::truncate_bytes(&message, MAX_MESSAGE_BYTES)
                .0
                .to_owned();
        }
    };
    Notice {
        title,
        message,
        priority: priority(verdict),
        tags: vec![emoji(verdict).to_owned(), record.repo.to_string()],
        click: issue_url.to_owned(),
        thread_url: thread_url.to_owned(),
    }
}

fn compose(
    verdict: Verdict,
    reason: &str,
    max_reason: usize,
    facts: &[String],
    links: &str,
) -> String {
    let reason = if max_reason == 0 {
        "(see the issue)".to_owned()
    } else {
        escape_markdown(reason, max_reason)
    };
    let mut m = format!("**{}**: {reason}\n\n", verdict.as_str());
    for line in facts {
        let _ = writeln!(m, "- {line}");
    }
    if !links.is_empty() {
        if !facts.is_empty() {
            m.push('\n');
        }
        m.push_str(links);
        m.push('\n');
    }
    m
}

fn facts_lines(record: &RunRecord, verdict: Verdict) -> Vec<String> {
    let mut lines = Vec::new();
    let mut run = format!("run `{}`", record.run);
    if record.spend_usd.is_finite() {
        let _ = write!(run, " · {}", crate::spend::describe(record));
    }
    if let Some(v) = &record.verdict {
        let _ = write!(
            run,
            " · {}",
            format_duration(elapsed(record.claimed_at, v.at))
        );
    }
    lines.push(run);
    if let Some(push) = &record.push {
        let sha = short_sha(&push.sha);
        let commit = match safe_url(&push.url).filter(|u| u.len() <= MAX_URL_BYTES) {
            Some(url) => format!("commit [`{sha}`]({url})"),
            None => format!("commit `{sha}`"),
        };
        let what = match verdict {
            Verdict::Frozen => " (left as it is for forensics)",
            _ => "",
        };
        lines.push(format!("{commit}{what}"));
    }
    if verdict != Verdict::Done {
        if let Some(failing) = failing_line(record) {
            lines.push(failing);
        }
        if !record.fixes.is_empty() {
            lines.push(format!("fix-forward attempts: {}", record.fixes.len()));
        }
        if let Some(q) = &record.question {
            lines.push(format!(
                "the agent asked: {}",
                escape_markdown(&q.text, 200)
            ));
        }
    }
    lines
}

/// The failing checks or rollout, from the newest evidence in the record.
fn failing_line(record: &RunRecord) -> Option<String> {
    let names = |names: Vec<&str>| {
        let mut shown: Vec<String> = names
            .iter()
            .take(MAX_CHECKS_NAMED)
            .map(|n| escape_markdown(n, 80))
            .collect();
        if names.len() > MAX_CHECKS_NAMED {
            shown.push(format!("and {} more", names.len() - MAX_CHECKS_NAMED));
        }
        shown.join(", ")
    };
    if let Some(ci) = record.ci.as_ref().filter(|c| c.state == PhaseState::Red) {
        let list: Vec<&str> = ci.checks.iter().map(|c| c.name.as_str()).collect();
        if !list.is_empty() {
            return Some(format!("failing: {}", names(list)));
        }
    }
    if let Some(deploy) = record
        .deploy
        .as_ref()
        .filter(|d| d.state == PhaseState::Red)
    {
        return Some(format!(
            "rollout failed: {}",
            escape_markdown(&deploy.detail, 200)
        ));
    }
    let last = record.fixes.last()?;
    if last.failing.is_empty() {
        return None;
    }
    Some(format!(
        "failing: {}",
        names(last.failing.iter().map(String::as_str).collect())
    ))
}

fn links_line(issue_url: &str, thread_url: &str) -> String {
    let link = |label: &str, url: &str| {
        safe_url(url)
            .filter(|u| u.len() <= MAX_URL_BYTES)
            .map(|u| format!("[{label}]({u})"))
    };
    [link("Issue", issue_url), link("T3 thread", thread_url)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ")
}
