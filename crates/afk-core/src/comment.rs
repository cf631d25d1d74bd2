//! The status comment: the checklist people read, with the run record embedded as a
//! versioned JSON block inside an HTML comment, and the way back from a comment to a record.
//!
//! A record is only ever accepted from a comment written by the configured bot account. The
//! rendered text depends on nothing but the record and the [`RenderContext`] (no clock), so a
//! tick that learned nothing new renders the same bytes and writes nothing.
//!
//! Text that comes from outside (reasons, questions, check names, details) is escaped by
//! [`escape_markdown`]: it cannot open HTML (so it can never forge the record block), break
//! the layout, or mention anyone.

use std::fmt::Write as _;

mod bound;
mod escape;

pub use bound::COMMENT_MAX_CHARS;
use escape::{code, quote};
pub use escape::{escape_markdown, minute, safe_url, short_sha};

use crate::model::{Login, format_duration};
use crate::record::{
    CheckSummary, PhaseState, RECORD_VERSION, RunRecord, RunStatus, Verdict, VerdictRecord,
};

/// Marks afk's machine-readable block. The JSON follows on the same line.
pub const RECORD_MARKER: &str = "afk-run-record";

/// The opening of the record block: `<!-- afk-run-record v<version> {json} -->`.
const BLOCK_OPEN: &str = "<!-- afk-run-record ";
const BLOCK_CLOSE: &str = " -->";

/// Most check names listed per phase.
const MAX_CHECKS_SHOWN: usize = 10;
/// Most fix-forward attempts listed (the newest are shown).
const MAX_FIXES_SHOWN: usize = 10;
const MAX_REASON_CHARS: usize = 500;
const MAX_DETAIL_CHARS: usize = 300;
const MAX_CHECK_NAME_CHARS: usize = 100;
const MAX_QUESTION_CHARS: usize = 2000;
const MAX_QUESTION_LINES: usize = 30;

/// A comment on an issue, as the tracker lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentFacts {
    pub id: u64,
    pub author: Login,
    pub body: String,
}

/// Links the rendered comment shows that are not part of the record itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RenderContext {
    pub thread_url: String,
}

/// Why a comment's record could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("the comment holds no afk run record")]
    Missing,
    #[error("the run record is corrupt: {0}")]
    Corrupt(String),
    #[error("the run record has version {0}, this afk reads version {v}", v = crate::record::RECORD_VERSION)]
    UnknownVersion(u32),
}

/// What the tracker's comments say about an issue's runs.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordLookup {
    /// afk's newest run record on the issue.
    Found {
        comment_id: u64,
        body: String,
        record: Box<RunRecord>,
    },
    /// No comment by the bot carries a record.
    None,
    /// afk's own newest record comment cannot be read: a human must look.
    Corrupt { comment_id: u64, error: RecordError },
}

/// The seven phases of a run, in order.
const PHASES: [&str; 7] = [
    "worktree",
    "tests red",
    "tests green",
    "pushed",
    "CI",
    "deployed",
    "done",
];

/// Renders the whole status comment for `record`, never longer than [`COMMENT_MAX_CHARS`]: a
/// record too large to fit is compacted first (see `bound`), so `parse` then gives back the
/// compacted record.
pub fn render(record: &RunRecord, ctx: &RenderContext) -> String {
    bound::render_bounded(record, |r| render_whole(r, ctx))
}

fn render_whole(record: &RunRecord, ctx: &RenderContext) -> String {
    let mut out = String::new();
    render_header(&mut out, record, ctx);
    render_checklist(&mut out, record);
    render_details(&mut out, record);
    if !out.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str(&record_block(record));
    out.push('\n');
    out
}

fn render_header(out: &mut String, record: &RunRecord, ctx: &RenderContext) {
    let _ = writeln!(out, "### afk · {}#{}\n", record.repo, record.issue);
    let thread = match safe_url(&ctx.thread_url) {
        Some(url) => format!("[T3 thread]({url})"),
        None => format!("T3 thread {}", code(&record.thread_id)),
    };
    let status = match (&record.verdict, record.status) {
        (Some(v), _) => v.verdict.as_str(),
        (None, RunStatus::Claimed) => "claimed",
        (None, RunStatus::Dispatched) => "agent working",
        (None, RunStatus::Finished) => "finished",
    };
    let _ = writeln!(
        out,
        "Run {} · {thread} · **{status}**\n",
        code(&record.run.to_string())
    );
}

/// Index of the first phase not yet complete (7 when the run is done).
fn progress(record: &RunRecord) -> usize {
    let passed = |s: &Option<CheckSummary>| {
        matches!(
            s.as_ref().map(|s| &s.state),
            Some(PhaseState::Green | PhaseState::Skipped)
        )
    };
    if matches!(&record.verdict, Some(v) if v.verdict == Verdict::Done) {
        7
    } else if record.push.is_some() {
        if !passed(&record.ci) {
            4
        } else if !passed(&record.deploy) {
            5
        } else {
            6
        }
    } else if record.dispatched_at.is_some() {
        1
    } else {
        0
    }
}

fn render_checklist(out: &mut String, record: &RunRecord) {
    let at = progress(record);
    let live = record.verdict.is_none();
    for (i, name) in PHASES.iter().enumerate() {
        // The agent's tests are one stretch of work afk cannot split: both are current together.
        let current = i == at || (at == 1 && i == 2);
        let mark = if i < at {
            "[x]"
        } else if current && live {
            "[~]"
        } else {
            "[ ]"
        };
        let mut line = format!("- {mark} {name}");
        let detail = phase_detail(record, i, at);
        if !detail.is_empty() {
            let _ = write!(line, " — {detail}");
        }
        if !live && i == at && at < PHASES.len() {
            line.push_str(" — **stopped here**");
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.push('\n');
}

fn phase_detail(record: &RunRecord, phase: usize, at: usize) -> String {
    match phase {
        0 => {
            let mut d = format!("branch {}", code(&record.branch));
            if record.dispatched_at.is_none() && record.dispatch_attempts > 1 {
                let _ = write!(d, ", dispatch attempt {}", record.dispatch_attempts);
            }
            if let Some(err) = &record.dispatch_error {
                let _ = write!(
                    d,
                    ", last dispatch error: {}",
                    escape_markdown(err, MAX_REASON_CHARS)
                );
            }
            d
        }
        1 if at > 2 => {
            "not observed by afk: the agent ran the tests in T3, afk saw only the push".to_owned()
        }
        1 => "the agent writes and runs the tests in T3; afk cannot observe this, only the push"
            .to_owned(),
        2 => "not observable by afk either".to_owned(),
        3 => match &record.push {
            Some(push) => {
                let sha = short_sha(&push.sha);
                match safe_url(&push.url) {
                    Some(url) => format!("[`{sha}`]({url}) at {}", minute(push.seen_at)),
                    None => format!("`{sha}` at {}", minute(push.seen_at)),
                }
            }
            None => String::new(),
        },
        4 => match &record.ci {
            Some(ci) => summary_detail(ci, ["pending", "green", "**red**"], "no CI configured"),
            None if record.push.is_some() => "waiting for CI to report".to_owned(),
            None => String::new(),
        },
        5 => match &record.deploy {
            Some(deploy) => summary_detail(
                deploy,
                ["rolling out", "healthy", "**failed**"],
                "no deploy target for this repo",
            ),
            None if at == 5 => "waiting for the rollout".to_owned(),
            None => String::new(),
        },
        _ => match &record.verdict {
            Some(v) if v.verdict == Verdict::Done => "issue closed as completed".to_owned(),
            _ => String::new(),
        },
    }
}

/// `words`: how this phase says pending, green and red.
fn summary_detail(s: &CheckSummary, words: [&str; 3], skipped_why: &str) -> String {
    let [pending, green, red] = words;
    let mut d = match s.state {
        PhaseState::Pending => pending.to_owned(),
        PhaseState::Green => green.to_owned(),
        PhaseState::Red => red.to_owned(),
        PhaseState::Skipped => format!("skipped ({skipped_why})"),
    };
    if !s.detail.is_empty() {
        let _ = write!(d, ": {}", escape_markdown(&s.detail, MAX_DETAIL_CHARS));
    }
    if !s.checks.is_empty() {
        let label = if s.state == PhaseState::Red {
            "failing"
        } else {
            "checks"
        };
        let _ = write!(d, "; {label}: {}", check_list(&s.checks));
    }
    d
}

fn check_list(checks: &[crate::evidence::Check]) -> String {
    let mut parts: Vec<String> = checks
        .iter()
        .take(MAX_CHECKS_SHOWN)
        .map(|c| {
            let name = escape_markdown(&c.name, MAX_CHECK_NAME_CHARS);
            match c.url.as_deref().and_then(safe_url) {
                Some(url) => format!("[{name}]({url})"),
                None => name,
            }
        })
        .collect();
    if checks.len() > MAX_CHECKS_SHOWN {
        parts.push(format!("and {} more", checks.len() - MAX_CHECKS_SHOWN));
    }
    parts.join(", ")
}

fn render_details(out: &mut String, record: &RunRecord) {
    if !record.fixes.is_empty() {
        let _ = writeln!(
            out,
            "**Fix forward:** {} corrective turn(s) sent",
            record.fixes.len()
        );
        let skip = record.fixes.len().saturating_sub(MAX_FIXES_SHOWN);
        if skip > 0 {
            let _ = writeln!(out, "- … {skip} earlier attempt(s) not shown");
        }
        for (i, fix) in record.fixes.iter().enumerate().skip(skip) {
            let failing: Vec<String> = fix
                .failing
                .iter()
                .take(MAX_CHECKS_SHOWN)
                .map(|n| escape_markdown(n, MAX_CHECK_NAME_CHARS))
                .collect();
            let more = fix.failing.len().saturating_sub(MAX_CHECKS_SHOWN);
            let mut names = if failing.is_empty() {
                "no check names reported".to_owned()
            } else {
                failing.join(", ")
            };
            if more > 0 {
                let _ = write!(names, " and {more} more");
            }
            let _ = writeln!(
                out,
                "- attempt {} at {}: `{}` failing: {names}",
                i + 1,
                minute(fix.at),
                short_sha(&fix.sha)
            );
        }
        out.push('\n');
    }
    let spend = crate::spend::describe(record);
    let _ = write!(
        out,
        "**Spend:** {spend} · **Started:** {}",
        minute(record.claimed_at)
    );
    if let Some(v) = &record.verdict {
        let took = crate::model::elapsed(record.claimed_at, v.at);
        let _ = write!(out, " · **Duration:** {}", format_duration(took));
    }
    out.push_str("\n\n");
    render_t3_outage(out, record);
    if let Some(v) = &record.verdict {
        let _ = writeln!(
            out,
            "**Verdict: {}** — {}\n",
            v.verdict.as_str(),
            escape_markdown(&v.reason, MAX_REASON_CHARS)
        );
    }
    if let Some(q) = &record.question {
        let _ = writeln!(
            out,
            "**The agent asked** ({}), and unattended runs must not ask:\n",
            escape_markdown(&q.kind, 40)
        );
        out.push_str(&quote(&q.text, MAX_QUESTION_CHARS, MAX_QUESTION_LINES));
        out.push('\n');
    }
    if let Some(v) = &record.verdict {
        render_doorbell(out, v);
    }
}

/// While T3 cannot be read: since when, and whether the outage was paged.
fn render_t3_outage(out: &mut String, record: &RunRecord) {
    let Some(since) = record.t3_unreachable_since else {
        return;
    };
    let waits = if record.verdict.is_some() {
        "the lock is kept until it answers"
    } else {
        "afk decides nothing that needs T3 until it answers"
    };
    let _ = write!(out, "**T3:** unreachable since {}; {waits}", minute(since));
    if !record.t3_outage_paged.is_empty() {
        let _ = write!(
            out,
            " (paged via {})",
            channel_names(&record.t3_outage_paged)
        );
    }
    out.push_str("\n\n");
}

fn channel_names(channels: &[crate::record::Channel]) -> String {
    channels
        .iter()
        .map(|c| match c {
            crate::record::Channel::Ntfy => "ntfy",
            crate::record::Channel::Slack => "Slack",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn render_doorbell(out: &mut String, v: &VerdictRecord) {
    if v.verdict == Verdict::Released {
        return;
    }
    let names = channel_names;
    let mut parts = Vec::new();
    if !v.notified.is_empty() {
        parts.push(format!("sent via {}", names(&v.notified)));
    }
    if !v.notify_pending.is_empty() {
        parts.push(format!("pending via {}", names(&v.notify_pending)));
    }
    if v.notify_failures > 0 {
        parts.push(format!("{} failed delivery attempt(s)", v.notify_failures));
    }
    if !v.notify_given_up.is_empty() {
        parts.push(format!("gave up on {}", names(&v.notify_given_up)));
    }
    if parts.is_empty() {
        parts.push("no channel configured".to_owned());
    }
    let _ = writeln!(out, "**Doorbell:** {}", parts.join("; "));
}

/// The record as an HTML comment that markdown does not render. The JSON is pure ASCII and
/// holds no `<`, `>` or `&` (they are `\u` escapes inside strings, the only place they can
/// occur), so it can never contain `-->` or end the comment early.
fn record_block(record: &RunRecord) -> String {
    let json = serde_json::to_string(record).unwrap_or_default();
    let mut safe = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' | '>' | '&' => {
                let _ = write!(safe, "\\u{:04x}", u32::from(c));
            }
            c if c.is_ascii() => safe.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(safe, "\\u{unit:04x}");
                }
            }
        }
    }
    format!("{BLOCK_OPEN}v{RECORD_VERSION} {safe}{BLOCK_CLOSE}")
}

/// Reads the record back out of a rendered comment. Exactly one record block must be present.
pub fn parse(body: &str) -> Result<RunRecord, RecordError> {
    let mut blocks = body.match_indices(BLOCK_OPEN);
    let (start, _) = blocks.next().ok_or(RecordError::Missing)?;
    if blocks.next().is_some() {
        return Err(RecordError::Corrupt(
            "the comment holds more than one run record block".into(),
        ));
    }
    let rest = &body[start + BLOCK_OPEN.len()..];
    let (tag, rest) = rest
        .split_once(' ')
        .ok_or_else(|| RecordError::Corrupt("the record block has no version tag".into()))?;
    let version: u32 = tag
        .strip_prefix('v')
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| {
            RecordError::Corrupt(format!(
                "bad version tag {:?}",
                tag.chars().take(20).collect::<String>()
            ))
        })?;
    if version != RECORD_VERSION {
        return Err(RecordError::UnknownVersion(version));
    }
    let end = rest
        .find(BLOCK_CLOSE)
        .ok_or_else(|| RecordError::Corrupt("the record block is not terminated".into()))?;
    let record: RunRecord = serde_json::from_str(&rest[..end]).map_err(|e| {
        RecordError::Corrupt(format!(
            "bad JSON: {}",
            e.to_string().chars().take(200).collect::<String>()
        ))
    })?;
    if record.v != RECORD_VERSION {
        return Err(RecordError::UnknownVersion(record.v));
    }
    Ok(record)
}

/// Every run record block in comments written by `bot` (oldest first, as given), with the
/// comment id. Comments without a block are left out; comments by anyone else are never read.
pub fn all_records(
    comments: &[CommentFacts],
    bot: &Login,
) -> Vec<(u64, Result<RunRecord, RecordError>)> {
    comments
        .iter()
        .filter(|c| &c.author == bot)
        .filter_map(|c| match parse(&c.body) {
            Err(RecordError::Missing) => None,
            result => Some((c.id, result)),
        })
        .collect()
}

/// The newest record among `comments` (oldest first) written by `bot` (compared
/// case-insensitively). A record-like block in anyone else's comment is ignored; when afk's own
/// newest record comment cannot be read the answer is [`RecordLookup::Corrupt`], never an older
/// record.
pub fn latest_record(comments: &[CommentFacts], bot: &Login) -> RecordLookup {
    for c in comments.iter().rev() {
        if &c.author != bot {
            continue;
        }
        match parse(&c.body) {
            Ok(record) => {
                return RecordLookup::Found {
                    comment_id: c.id,
                    body: c.body.clone(),
                    record: Box::new(record),
                };
            }
            Err(RecordError::Missing) => continue,
            Err(error) => {
                return RecordLookup::Corrupt {
                    comment_id: c.id,
                    error,
                };
            }
        }
    }
    RecordLookup::None
}
