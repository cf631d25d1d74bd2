//! The run's spend, estimated from T3's per-request token snapshots.
//!
//! What T3 exposes (T3 Code `packages/contracts/src/providerRuntime.ts`, thread token usage; the
//! provider adapters in `apps/server/src/provider/Layers/`): a `context-window.updated` activity
//! per usage report, whose `inputTokens`, `cachedInputTokens`, `outputTokens` (and the same
//! `last*Tokens`) describe **the last model request** — for Claude the last usage iteration
//! (`lastClaudeUsageIteration`: `input_tokens + cache_creation_input_tokens +
//! cache_read_input_tokens` as input, `cache_read_input_tokens` as cached), for Codex
//! `tokenUsage.last` (whose input includes the cached part). Only `totalProcessedTokens` is
//! cumulative, and it does not split input from output, so it cannot be priced on its own. No
//! cost is exposed at all (Claude's `total_cost_usd` is never projected).
//!
//! The method: every snapshot is one request; the run's spend is the sum over its requests of
//! `(input − cached) × input rate + cached × cached rate + output × output rate`. A snapshot
//! that reports no new work is not a new request and is skipped: all counters zero, or the
//! same `totalProcessedTokens` as the request counted just before it in the same turn (a
//! provider re-reporting its last request, e.g. on the turn's final result).
//!
//! Error bound (documented in `docs/operations.md`):
//! - Claude cache **writes** are inside `inputTokens` and priced at the input rate, though
//!   Anthropic bills them at 1.25× (5-minute cache) or 2× (1-hour): under by at most 25 % (or
//!   100 %) of the cache-write tokens' input price.
//! - A re-report T3 sends without `totalProcessedTokens` is counted again: over by at most one
//!   request per report; safe for a budget.
//! - Requests T3 never reported (a provider that sends no usage, a session that died before
//!   reporting) are not counted: under by those requests.
//! - Reasoning tokens are inside `outputTokens` for both providers and priced as output.
//!
//! Thread detail on T3 >= 0.0.32 shows only the latest turn's activities, so the estimate is
//! kept per turn in the run record ([`TurnSpend`]) and a turn no longer shown keeps its last
//! estimate; a run's spend never goes down.

use crate::config::Pricing;
use crate::evidence::TokenUsage;
use crate::record::{RunRecord, TurnSpend};

const MAX_TURN_ID: usize = 80;

/// Per-turn estimates from the snapshots of one read, in the order the turns first appear.
pub fn estimate_turns(snapshots: &[TokenUsage], pricing: &Pricing) -> Vec<TurnSpend> {
    let mut turns: Vec<TurnSpend> = Vec::new();
    // The `totalProcessedTokens` of the last request counted, per turn.
    let mut last_total: Vec<Option<u64>> = Vec::new();
    for s in snapshots {
        if s.input == 0 && s.cached_input == 0 && s.output == 0 {
            continue;
        }
        // T3 mints turn ids (UUID-sized); a longer one is cut so the record stays bounded, the
        // same way on every read.
        let turn: String = s
            .turn_id
            .as_deref()
            .unwrap_or_default()
            .chars()
            .take(MAX_TURN_ID)
            .collect();
        let i = match turns.iter().position(|t| t.turn == turn) {
            Some(i) => i,
            None => {
                turns.push(TurnSpend {
                    turn,
                    usd: 0.0,
                    requests: 0,
                });
                last_total.push(None);
                turns.len() - 1
            }
        };
        if s.total_processed.is_some() && s.total_processed == last_total[i] {
            continue;
        }
        last_total[i] = s.total_processed;
        turns[i].usd += request_usd(s, pricing);
        turns[i].requests += 1;
    }
    for t in &mut turns {
        t.usd = micro(t.usd);
    }
    turns
}

/// Folds this read's per-turn estimates into what the record knew: a turn keeps the larger of
/// its known and its new estimate (a read may show fewer of a turn's requests than an earlier
/// one did). Returns whether anything changed.
pub fn merge_turns(known: &mut Vec<TurnSpend>, seen: Vec<TurnSpend>) -> bool {
    let mut changed = false;
    for s in seen {
        match known.iter_mut().find(|k| k.turn == s.turn) {
            Some(k) => {
                if s.usd > k.usd || (s.usd == k.usd && s.requests > k.requests) {
                    *k = s;
                    changed = true;
                }
            }
            None => {
                known.push(s);
                changed = true;
            }
        }
    }
    changed
}

/// The run's spend from its turns, in USD rounded to cents (so a request that adds a fraction
/// of a cent does not rewrite the spend), and the requests counted.
pub fn total(turns: &[TurnSpend]) -> (f64, u64) {
    let usd: f64 = turns.iter().map(|t| t.usd).sum();
    (
        (usd * 100.0).round() / 100.0,
        turns.iter().map(|t| t.requests).sum(),
    )
}

/// The spend as the comment and the doorbell show it: `≈ $x, estimated from N requests` once
/// T3 reported usage, the bare amount for a record without a per-request estimate.
pub fn describe(record: &RunRecord) -> String {
    if !record.spend_usd.is_finite() {
        return "unknown".to_owned();
    }
    let (_, requests) = total(&record.spend_turns);
    if record.spend_turns.is_empty() {
        return format!("${:.2}", record.spend_usd);
    }
    let noun = if requests == 1 { "request" } else { "requests" };
    format!(
        "≈ ${:.2}, estimated from {requests} {noun}",
        record.spend_usd
    )
}

/// One request's price: uncached input, cached input and output at their rates (USD per
/// million tokens). `input` includes `cached_input`; a snapshot claiming more cached than input
/// prices all of it as cached.
fn request_usd(s: &TokenUsage, pricing: &Pricing) -> f64 {
    let uncached = s.input.saturating_sub(s.cached_input);
    (uncached as f64 * pricing.input
        + s.cached_input as f64 * pricing.cached_input
        + s.output as f64 * pricing.output)
        / 1_000_000.0
}

fn micro(usd: f64) -> f64 {
    (usd * 1_000_000.0).round() / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pricing() -> Pricing {
        Pricing {
            input: 3.0,
            output: 15.0,
            cached_input: 0.3,
        }
    }

    fn req(turn: &str, input: u64, cached: u64, output: u64, total: Option<u64>) -> TokenUsage {
        TokenUsage {
            input,
            cached_input: cached,
            output,
            total_processed: total,
            turn_id: Some(turn.to_owned()),
        }
    }

    #[test]
    fn many_small_requests_add_up() {
        // 400 requests of 50k input (40k of it cached) and 1k output, with a cumulative total.
        let mut snaps = Vec::new();
        let mut running = 0;
        for _ in 0..400 {
            running += 51_000;
            snaps.push(req("t1", 50_000, 40_000, 1_000, Some(running)));
        }
        let turns = estimate_turns(&snaps, &pricing());
        // Per request: 10k × $3 + 40k × $0.30 + 1k × $15 = $0.03 + $0.012 + $0.015 = $0.057.
        assert_eq!(turns.len(), 1);
        assert_eq!(turns[0].requests, 400);
        assert!((turns[0].usd - 22.8).abs() < 1e-9, "{}", turns[0].usd);
        // Reading the last snapshot as a running total (as afk once did) says $0.06.
        assert_eq!(total(&turns), (22.8, 400));
    }

    #[test]
    fn a_re_report_with_the_same_cumulative_total_is_not_a_new_request() {
        let snaps = vec![
            req("t1", 10_000, 0, 1_000, Some(11_000)),
            req("t1", 10_000, 0, 1_000, Some(11_000)),
            req("t1", 0, 0, 0, Some(11_000)),
            req("t1", 20_000, 0, 0, Some(31_000)),
        ];
        let turns = estimate_turns(&snaps, &pricing());
        assert_eq!(turns[0].requests, 2);
        assert!((turns[0].usd - (0.03 + 0.015 + 0.06)).abs() < 1e-9);
    }

    #[test]
    fn without_a_cumulative_total_every_snapshot_counts_erring_high() {
        let snaps = vec![req("t1", 10_000, 0, 0, None), req("t1", 10_000, 0, 0, None)];
        assert_eq!(estimate_turns(&snaps, &pricing())[0].requests, 2);
    }

    #[test]
    fn cached_input_is_priced_at_its_own_rate_and_never_below_zero_uncached() {
        let one = estimate_turns(&[req("t", 1_000_000, 1_000_000, 0, None)], &pricing());
        assert!((one[0].usd - 0.3).abs() < 1e-9);
        let odd = estimate_turns(&[req("t", 10, 1_000_000, 0, None)], &pricing());
        assert!((odd[0].usd - 0.3).abs() < 1e-9);
    }

    #[test]
    fn turns_are_kept_apart_and_a_turn_no_longer_shown_keeps_counting() {
        let first = estimate_turns(
            &[
                req("t1", 1_000_000, 0, 0, Some(1)),
                req("t1", 1_000_000, 0, 0, Some(2)),
            ],
            &pricing(),
        );
        let mut known = Vec::new();
        assert!(merge_turns(&mut known, first));
        // The next read is windowed to the corrective turn only.
        let second = estimate_turns(&[req("t2", 1_000_000, 0, 0, Some(3))], &pricing());
        assert!(merge_turns(&mut known, second));
        assert_eq!(total(&known), (9.0, 3));
        // A read showing fewer of t1's requests changes nothing.
        let partial = estimate_turns(&[req("t1", 1_000_000, 0, 0, Some(1))], &pricing());
        assert!(!merge_turns(&mut known, partial));
        assert_eq!(total(&known), (9.0, 3));
    }

    #[test]
    fn nothing_reported_is_nothing_spent() {
        assert!(estimate_turns(&[], &pricing()).is_empty());
        assert_eq!(total(&[]), (0.0, 0));
    }
}
