//! Combining the CI reports of a repo's configured providers into one verdict, failing closed.
//!
//! A repo may take its CI verdict from several providers at once (GitHub check runs and the
//! combined status, say). The commit is green only when every configured provider reported and
//! every signal succeeded; a provider that reported nothing is still pending, never green.

use crate::config::CiProvider;
use crate::evidence::{Check, CiSignal, CiVerdict, SignalState};

/// One verdict from the signals of every configured provider.
///
/// - any failing signal: [`CiVerdict::Red`] with every failing check;
/// - no provider configured, a provider with no signals, or any pending signal:
///   [`CiVerdict::Pending`] with every check seen so far;
/// - otherwise (every provider reported and every signal succeeded): [`CiVerdict::Green`].
///
/// Checks are sorted and exact duplicates (the same check reported by two providers) dropped,
/// so the verdict, and the status comment built from it, does not change with report order.
pub fn combine_ci(reports: &[(CiProvider, Vec<CiSignal>)]) -> CiVerdict {
    let signals = || reports.iter().flat_map(|(_, signals)| signals.iter());
    let failing = checks(signals().filter(|s| s.state == SignalState::Failure));
    if !failing.is_empty() {
        return CiVerdict::Red { failing };
    }
    let all = checks(signals());
    let silent_provider = reports.iter().any(|(_, signals)| signals.is_empty());
    let running = signals().any(|s| s.state == SignalState::Pending);
    if reports.is_empty() || silent_provider || running {
        return CiVerdict::Pending { checks: all };
    }
    CiVerdict::Green { checks: all }
}

fn checks<'a>(signals: impl Iterator<Item = &'a CiSignal>) -> Vec<Check> {
    let mut out: Vec<Check> = signals
        .map(|s| Check {
            name: s.name.clone(),
            url: s.url.clone(),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(name: &str, state: SignalState) -> CiSignal {
        CiSignal {
            name: name.to_owned(),
            url: Some(format!("https://ci.example/{name}")),
            state,
        }
    }

    fn names(checks: &[Check]) -> Vec<&str> {
        checks.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn every_provider_green_is_green() {
        let v = combine_ci(&[
            (
                CiProvider::GithubChecks,
                vec![
                    signal("test", SignalState::Success),
                    signal("build", SignalState::Success),
                ],
            ),
            (
                CiProvider::GithubStatus,
                vec![signal("keel", SignalState::Success)],
            ),
        ]);
        match v {
            CiVerdict::Green { checks } => assert_eq!(names(&checks), ["build", "keel", "test"]),
            other => panic!("expected green, got {other:?}"),
        }
    }

    #[test]
    fn any_failure_is_red_and_names_only_the_failing_checks() {
        let v = combine_ci(&[
            (
                CiProvider::GithubChecks,
                vec![
                    signal("test", SignalState::Failure),
                    signal("build", SignalState::Pending),
                ],
            ),
            (CiProvider::GithubStatus, vec![]),
        ]);
        match v {
            CiVerdict::Red { failing } => assert_eq!(names(&failing), ["test"]),
            other => panic!("expected red, got {other:?}"),
        }
    }

    #[test]
    fn a_provider_that_reported_nothing_keeps_it_pending() {
        let v = combine_ci(&[
            (
                CiProvider::GithubChecks,
                vec![signal("test", SignalState::Success)],
            ),
            (CiProvider::Woodpecker, vec![]),
        ]);
        assert!(matches!(v, CiVerdict::Pending { .. }), "{v:?}");
    }

    #[test]
    fn no_provider_at_all_is_pending_never_green() {
        assert_eq!(combine_ci(&[]), CiVerdict::Pending { checks: vec![] });
    }

    #[test]
    fn a_running_check_keeps_it_pending() {
        let v = combine_ci(&[(
            CiProvider::ForgejoStatus,
            vec![
                signal("test", SignalState::Success),
                signal("lint", SignalState::Pending),
            ],
        )]);
        match v {
            CiVerdict::Pending { checks } => assert_eq!(names(&checks), ["lint", "test"]),
            other => panic!("expected pending, got {other:?}"),
        }
    }

    #[test]
    fn the_same_check_from_two_providers_is_listed_once() {
        let v = combine_ci(&[
            (
                CiProvider::GithubChecks,
                vec![signal("test", SignalState::Failure)],
            ),
            (
                CiProvider::GithubActions,
                vec![signal("test", SignalState::Failure)],
            ),
        ]);
        assert_eq!(
            v,
            CiVerdict::Red {
                failing: vec![Check {
                    name: "test".into(),
                    url: Some("https://ci.example/test".into())
                }]
            }
        );
    }
}
