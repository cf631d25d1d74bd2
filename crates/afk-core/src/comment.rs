//! The status comment (SPEC §7): the checklist people read, with the run record embedded as a
//! versioned JSON block inside an HTML comment, and the way back from a comment to a record.
//!
//! A record is only ever accepted from a comment written by the configured bot account.

use crate::model::Login;
use crate::record::RunRecord;

/// Marks afk's machine-readable block. The JSON follows on the same line.
pub const RECORD_MARKER: &str = "afk-run-record";

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

/// Renders the whole status comment for `record`.
pub fn render(record: &RunRecord, ctx: &RenderContext) -> String {
    let json = serde_json::to_string(record).unwrap_or_default();
    format!(
        "**afk** run `{}` for {}#{}\n\nThread: {}\n\n<!-- {RECORD_MARKER} {json} -->\n",
        record.run, record.repo, record.issue, ctx.thread_url
    )
}

/// Reads the record back out of a rendered comment.
pub fn parse(body: &str) -> Result<RunRecord, RecordError> {
    let start = body
        .find(&format!("<!-- {RECORD_MARKER} "))
        .ok_or(RecordError::Missing)?;
    let rest = &body[start + RECORD_MARKER.len() + 6..];
    let end = rest
        .find(" -->")
        .ok_or_else(|| RecordError::Corrupt("unterminated block".into()))?;
    let record: RunRecord =
        serde_json::from_str(&rest[..end]).map_err(|e| RecordError::Corrupt(e.to_string()))?;
    if record.v != crate::record::RECORD_VERSION {
        return Err(RecordError::UnknownVersion(record.v));
    }
    Ok(record)
}

/// The newest record among `comments` (oldest first) written by `bot`.
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
