//! Doorbell messages (SPEC §8) for a run's verdict.

use crate::effect::Notice;
use crate::record::{RunRecord, Verdict};

/// The doorbell message for `record`'s verdict.
pub fn notice(
    record: &RunRecord,
    verdict: Verdict,
    reason: &str,
    issue_url: &str,
    thread_url: &str,
) -> Notice {
    let priority = match verdict {
        Verdict::Done => 2,
        Verdict::NeedsHuman => 4,
        Verdict::Frozen => 5,
        Verdict::Released => 3,
    };
    Notice {
        title: format!("{}#{} {}", record.repo, record.issue, verdict.as_str()),
        message: reason.to_owned(),
        priority,
        tags: vec![verdict.as_str().to_owned()],
        click: issue_url.to_owned(),
        thread_url: thread_url.to_owned(),
    }
}
