//! The one retry executor every remote's requests go through: the single place that decides
//! "retry or not, and how long".
//!
//! A client hands [`run`] its [`RetryPolicy`], whether the request is safe to resend, and a
//! closure that performs one try and judges it as a [`Verdict`]. The executor resends
//! transient faults after the policy's backoff (doubled on each retry) when the request is
//! idempotent, waits out rate limits for as long as the remote asked (`retry-after`, a
//! rate-limit reset) or, without a hint, for the policy's unhinted wait (doubled on each further
//! limit of the same request), counts every resend against `max_retries`, and never sends or
//! waits past the tick deadline: a wait that would end past it fails at once (a rate limit as
//! [`ErrorKind::RateLimited`] naming the wait, a transient fault as itself) so the next tick
//! continues. Every retry is logged the same way.
//!
//! Time is tokio's clock (the deadline is converted onto it), so the executor's waits can be
//! tested with a paused clock.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::RetryPolicy;
use crate::error::{ErrorKind, RemoteError, Result};

/// What one try of a request came to, as the remote's client judges it.
#[derive(Debug)]
pub enum Verdict<T> {
    /// An answer the caller takes: stop here.
    Done(T),
    /// A transient fault (a server error, a lost connection, a timeout): resent after the
    /// policy's backoff when the request is idempotent, else the failure.
    Transient(RemoteError),
    /// The remote refused the request for now without acting on it (a rate limit), so it is
    /// resent whether idempotent or not. `wait` is what the remote asked for (`retry-after`,
    /// the time to a rate-limit reset); `None` waits the policy's unhinted wait.
    RateLimited {
        wait: Option<Duration>,
        error: RemoteError,
    },
    /// A failure a resend would repeat (a refusal, a wrong answer, a local fault): stop here.
    Failed(RemoteError),
}

/// Sends with retries under `policy`: `attempt` performs one try and judges it. `request` is
/// the `METHOD /path` errors name; `idempotent` says whether a transient fault may be resent
/// (a request that could act twice if the first try reached the remote is resent only after a
/// rate limit).
pub async fn run<T, F, Fut>(
    policy: &RetryPolicy,
    remote: &'static str,
    request: &str,
    idempotent: bool,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Verdict<T>>,
{
    let deadline = policy.deadline.map(Instant::from_std);
    let past = |at: Instant| deadline.is_some_and(|d| at >= d);
    let mut retries = 0u32;
    let mut limits = 0u32;
    loop {
        if past(Instant::now()) {
            return Err(RemoteError::new(remote, request, ErrorKind::Deadline));
        }
        let (delay, error, rate_limited) = match attempt().await {
            Verdict::Done(answer) => return Ok(answer),
            Verdict::Failed(error) => return Err(error),
            Verdict::Transient(error) if !idempotent => return Err(error),
            Verdict::Transient(error) => (doubled(policy.backoff, retries), error, false),
            Verdict::RateLimited { wait, error } => {
                let unhinted = doubled(policy.default_rate_limit_wait, limits);
                limits += 1;
                (wait.unwrap_or(unhinted), error, true)
            }
        };
        let give_up = |error: RemoteError| {
            if rate_limited {
                RemoteError {
                    kind: ErrorKind::RateLimited {
                        retry_after: Some(delay),
                    },
                    ..error
                }
            } else {
                error
            }
        };
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        if retries >= policy.max_retries {
            tracing::debug!(remote, request, retries, delay_ms, rate_limited, error = %error, "not retrying: no retries left");
            return Err(give_up(error));
        }
        if past(Instant::now() + delay) {
            tracing::debug!(remote, request, retries, delay_ms, rate_limited, error = %error, "not retrying: the wait would pass the tick deadline");
            return Err(give_up(error));
        }
        retries += 1;
        tracing::debug!(remote, request, retry = retries, delay_ms, rate_limited, error = %error, "retrying");
        tokio::time::sleep(delay).await;
    }
}

/// `base` doubled `times` times, saturating.
fn doubled(base: Duration, times: u32) -> Duration {
    base.saturating_mul(2u32.saturating_pow(times))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    const REMOTE: &str = "sim";
    const REQUEST: &str = "GET /thing";

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            backoff: Duration::from_millis(200),
            deadline: None,
            default_rate_limit_wait: Duration::from_secs(60),
            ..RetryPolicy::default()
        }
    }

    fn status(code: u16) -> RemoteError {
        RemoteError::new(
            REMOTE,
            REQUEST,
            ErrorKind::Status {
                status: code,
                detail: String::new(),
            },
        )
    }

    /// Each try takes the next scripted verdict and records when (on tokio's clock) it ran.
    struct Script {
        verdicts: Mutex<VecDeque<Verdict<&'static str>>>,
        tries: Mutex<Vec<Duration>>,
        start: Instant,
    }

    impl Script {
        fn new(verdicts: Vec<Verdict<&'static str>>) -> Script {
            Script {
                verdicts: Mutex::new(verdicts.into()),
                tries: Mutex::new(Vec::new()),
                start: Instant::now(),
            }
        }
        async fn run(&self, policy: &RetryPolicy, idempotent: bool) -> Result<&'static str> {
            run(policy, REMOTE, REQUEST, idempotent, || async {
                self.tries.lock().expect("lock").push(self.start.elapsed());
                self.verdicts
                    .lock()
                    .expect("lock")
                    .pop_front()
                    .expect("a try past the script")
            })
            .await
        }
        /// When each try ran, in whole milliseconds from the start.
        fn tries_ms(&self) -> Vec<u128> {
            self.tries
                .lock()
                .expect("lock")
                .iter()
                .map(Duration::as_millis)
                .collect()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_faults_back_off_doubling_until_done() {
        let s = Script::new(vec![
            Verdict::Transient(status(502)),
            Verdict::Transient(status(503)),
            Verdict::Done("ok"),
        ]);
        assert_eq!(s.run(&policy(), true).await, Ok("ok"));
        assert_eq!(s.tries_ms(), vec![0, 200, 600]);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded_and_the_last_fault_is_the_error() {
        let s = Script::new(vec![
            Verdict::Transient(status(500)),
            Verdict::Transient(status(500)),
            Verdict::Transient(status(500)),
            Verdict::Transient(status(503)),
            Verdict::Done("never reached"),
        ]);
        let err = s.run(&policy(), true).await.expect_err("gives up");
        assert_eq!(err.status(), Some(503));
        assert_eq!(s.tries_ms(), vec![0, 200, 600, 1400], "1 try + 3 retries");
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_are_never_retried() {
        let s = Script::new(vec![Verdict::Failed(status(404)), Verdict::Done("no")]);
        let err = s.run(&policy(), true).await.expect_err("fails");
        assert_eq!(err.status(), Some(404));
        assert_eq!(s.tries_ms(), vec![0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_may_act_twice_is_not_resent_after_a_transient_fault() {
        let s = Script::new(vec![Verdict::Transient(status(500)), Verdict::Done("no")]);
        let err = s.run(&policy(), false).await.expect_err("fails");
        assert_eq!(err.status(), Some(500));
        assert_eq!(s.tries_ms(), vec![0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limit_is_resent_even_when_not_idempotent_after_the_asked_wait() {
        let s = Script::new(vec![
            Verdict::RateLimited {
                wait: Some(Duration::from_secs(7)),
                error: status(429),
            },
            Verdict::Done("ok"),
        ]);
        assert_eq!(s.run(&policy(), false).await, Ok("ok"));
        assert_eq!(s.tries_ms(), vec![0, 7000], "retry-after honoured as given");
    }

    #[tokio::test(start_paused = true)]
    async fn unhinted_rate_limits_wait_the_default_then_double_apart_from_backoff() {
        let s = Script::new(vec![
            Verdict::RateLimited {
                wait: None,
                error: status(403),
            },
            Verdict::Transient(status(502)),
            Verdict::RateLimited {
                wait: None,
                error: status(429),
            },
            Verdict::Done("ok"),
        ]);
        assert_eq!(s.run(&policy(), true).await, Ok("ok"));
        // 60 s; then the second backoff step (400 ms, retries count every resend); then 120 s.
        assert_eq!(s.tries_ms(), vec![0, 60_000, 60_400, 180_400]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_deadline_fails_now_naming_the_wait() {
        let mut p = policy();
        p.deadline = Some((Instant::now() + Duration::from_secs(30)).into_std());
        let s = Script::new(vec![
            Verdict::RateLimited {
                wait: Some(Duration::from_secs(3600)),
                error: status(403),
            },
            Verdict::Done("no"),
        ]);
        let started = Instant::now();
        let err = s.run(&p, true).await.expect_err("rate limited");
        assert_eq!(started.elapsed(), Duration::ZERO, "no wait started");
        assert_eq!(
            err.kind,
            ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(3600))
            }
        );
        assert_eq!((err.remote, err.request.as_str()), (REMOTE, REQUEST));
        assert!(err.to_string().contains("retry after 3600s"), "{err}");
        assert!(err.is_transient());
    }

    #[tokio::test(start_paused = true)]
    async fn a_backoff_past_the_deadline_returns_the_fault_without_waiting() {
        let mut p = policy();
        p.deadline = Some((Instant::now() + Duration::from_millis(500)).into_std());
        let s = Script::new(vec![
            Verdict::Transient(status(502)),
            Verdict::Transient(status(503)),
            Verdict::Done("no"),
        ]);
        let err = s.run(&p, true).await.expect_err("deadline");
        // 200 ms fits; the next 400 ms would end at 600 ms, past the 500 ms deadline.
        assert_eq!(s.tries_ms(), vec![0, 200]);
        assert_eq!(err.status(), Some(503));
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_sent_once_the_deadline_has_passed() {
        let mut p = policy();
        p.deadline = Some(Instant::now().into_std());
        let s = Script::new(vec![Verdict::Done("no")]);
        let err = s.run(&p, true).await.expect_err("not sent");
        assert_eq!(err.kind, ErrorKind::Deadline);
        assert_eq!(err.request, REQUEST);
        assert!(s.tries_ms().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lasting_rate_limit_ends_as_rate_limited_after_the_last_retry() {
        let limited = || Verdict::RateLimited {
            wait: None,
            error: status(429),
        };
        let mut p = policy();
        p.max_retries = 2;
        let s = Script::new(vec![limited(), limited(), limited(), Verdict::Done("no")]);
        let err = s.run(&p, true).await.expect_err("limited");
        assert_eq!(s.tries_ms(), vec![0, 60_000, 180_000]);
        assert_eq!(
            err.kind,
            ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(240))
            }
        );
    }
}
