//! Paging a T3 outage once (a doorbell for the fleet rather than one run): when the
//! watch tick cannot read T3, every run it tracks records the first tick that saw it so
//! (`t3_unreachable_since`); past `limits.t3_outage_page_after` the outage is paged once per
//! channel for the whole fleet, and every affected run's record is marked (`t3_outage_paged`),
//! so a later tick sees the page whichever run it reads first.
//!
//! Crash safety is the doorbells' own: a delivery that fails is retried on the next tick, and a
//! page delivered but not yet recorded in any comment may repeat once.

use std::collections::BTreeSet;

use crate::comment;
use crate::config::Config;
use crate::effect::Effect;
use crate::model::{Timestamp, elapsed, format_duration};
use crate::notice;
use crate::record::{Channel, RunRecord};

use super::verdict::{Delivery, channel_names, channels, render_context};

/// The outage page to ring now.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "the page's doorbells must be applied (or printed by --dry-run)"]
pub struct T3Page {
    /// One `Notify` per channel not yet paged for this outage. A doorbell belongs to a run in the
    /// plan, so each is filed under the run that first saw the outage.
    pub effects: Vec<Effect>,
    /// For the logs: how long T3 has been unreachable and what is paged.
    pub reason: String,
}

/// Decides, over the records of every run the tick looked at (after this tick's decisions),
/// whether the T3 outage is paged now: T3 unreachable for at least
/// `limits.t3_outage_page_after` since the earliest `t3_unreachable_since`, and a configured
/// channel that no record says was paged yet. `error` is this tick's read error (short, no
/// secrets). `None` when T3 answers, the outage is shorter, or every channel was paged.
pub fn t3_outage(
    records: &[RunRecord],
    error: &str,
    config: &Config,
    now: Timestamp,
) -> Option<T3Page> {
    let affected: Vec<&RunRecord> = records
        .iter()
        .filter(|r| r.t3_unreachable_since.is_some())
        .collect();
    let first = affected
        .iter()
        .min_by_key(|r| (r.t3_unreachable_since, &r.run))?;
    let since = first.t3_unreachable_since?;
    let down_for = elapsed(since, now);
    if down_for < config.limits.t3_outage_page_after {
        return None;
    }
    let paged: BTreeSet<Channel> = affected
        .iter()
        .flat_map(|r| r.t3_outage_paged.iter().copied())
        .collect();
    let pending: Vec<Channel> = channels(config)
        .into_iter()
        .filter(|c| !paged.contains(c))
        .collect();
    if pending.is_empty() {
        return None;
    }
    let notice = notice::t3_outage_notice(config, since, now, &affected, error);
    let effects = pending
        .iter()
        .map(|channel| Effect::Notify {
            repo: first.repo.clone(),
            issue: first.issue,
            run: first.run.clone(),
            channel: *channel,
            notice: notice.clone(),
        })
        .collect();
    Some(T3Page {
        effects,
        reason: format!(
            "T3 unreachable for {} (limit {}): paging {} once for {} run(s)",
            format_duration(down_for),
            format_duration(config.limits.t3_outage_page_after),
            channel_names(&pending),
            affected.len()
        ),
    })
}

/// Records one outage page delivery in a run's record: a delivered channel is marked (on every
/// affected run's record, by the caller); a failed one is not, so the next tick tries again.
/// A record that does not say T3 is unreachable is left as it is.
pub fn after_t3_page(record: &RunRecord, channel: Channel, delivery: Delivery) -> RunRecord {
    let mut record = record.clone();
    if delivery == Delivery::Delivered
        && record.t3_unreachable_since.is_some()
        && !record.t3_outage_paged.contains(&channel)
    {
        record.t3_outage_paged.push(channel);
        record.t3_outage_paged.sort();
    }
    record
}

/// The comment update that puts a page's marks on record, when the record changed.
pub fn t3_page_recorded(
    before: &RunRecord,
    after: &RunRecord,
    comment_id: u64,
    config: &Config,
) -> Option<Effect> {
    (before != after).then(|| Effect::UpsertStatusComment {
        repo: after.repo.clone(),
        issue: after.issue,
        run: after.run.clone(),
        comment_id: Some(comment_id),
        body: comment::render(after, &render_context(config, after)),
    })
}
