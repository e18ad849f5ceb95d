//! Behaviour of `Resilient::call` under tokio's paused clock: time moves only when every task
//! waits, so the elapsed times below are exact virtual durations, not wall-clock measurements.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use aro_resilience::{
    Attempt, Backoff, BreakerConfig, BreakerState, CallError, Classify, DestinationPolicy, Failure,
    RateLimit, Resilient,
};
use tokio::time::Instant;

const TWILIO: &str = "twilio:AC1";

/// A caller's error type, classified the way a provider client would.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ProviderError {
    Unavailable,
    Throttled(Duration),
    Rejected,
    OptedOut,
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl Classify for ProviderError {
    fn classify(&self) -> Failure {
        match self {
            Self::Unavailable => Failure::for_http_status(503, None),
            Self::Throttled(wait) => Failure::for_http_status(429, Some(*wait)),
            Self::Rejected => Failure::for_http_status(400, None),
            Self::OptedOut => Failure::outcome("opted_out"),
        }
    }
}

/// Answers attempt `n` with `script[n - 1]` (the last entry repeats) and records every attempt.
struct Script {
    answers: Vec<Answer>,
    attempts: RefCell<Vec<Attempt>>,
}

type AnswerFuture = Pin<Box<dyn Future<Output = Result<&'static str, ProviderError>> + Send>>;

#[derive(Clone)]
enum Answer {
    Ok,
    Err(ProviderError),
    Hang,
}

impl Script {
    fn new(answers: Vec<Answer>) -> Self {
        Self {
            answers,
            attempts: RefCell::new(Vec::new()),
        }
    }

    fn op(&self) -> impl FnMut(Attempt) -> AnswerFuture + '_ {
        move |attempt: Attempt| {
            self.attempts.borrow_mut().push(attempt);
            let index = (attempt.number() as usize - 1).min(self.answers.len() - 1);
            let answer = self.answers[index].clone();
            Box::pin(async move {
                match answer {
                    Answer::Ok => Ok("SM1"),
                    Answer::Err(error) => Err(error),
                    Answer::Hang => {
                        std::future::pending::<()>().await;
                        Ok("never")
                    }
                }
            })
        }
    }

    fn calls(&self) -> usize {
        self.attempts.borrow().len()
    }

    fn numbers(&self) -> Vec<u32> {
        self.attempts.borrow().iter().map(Attempt::number).collect()
    }
}

fn policy() -> DestinationPolicy {
    DestinationPolicy::default()
        .with_backoff(
            Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).with_max_attempts(4),
        )
        .with_rate_limit(RateLimit::per_second(1_000))
}

fn resilient(policy: DestinationPolicy) -> Resilient {
    Resilient::builder().defaults(policy).rng_seed(11).build()
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_until_success() {
    let resilient = resilient(policy());
    let script = Script::new(vec![
        Answer::Err(ProviderError::Unavailable),
        Answer::Err(ProviderError::Unavailable),
        Answer::Ok,
    ]);
    let result = resilient.call(TWILIO, script.op()).await;
    assert_eq!(result.ok(), Some("SM1"));
    assert_eq!(script.numbers(), vec![1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn attempts_know_whether_they_are_first_or_last() {
    let resilient = resilient(policy());
    let script = Script::new(vec![Answer::Err(ProviderError::Unavailable)]);
    let _ = resilient.call(TWILIO, script.op()).await;
    let attempts = script.attempts.borrow();
    assert!(attempts.first().is_some_and(Attempt::is_first));
    assert!(attempts.last().is_some_and(Attempt::is_last));
    assert_eq!(attempts.iter().filter(|a| a.is_last()).count(), 1);
    assert!(attempts.iter().all(|a| a.max_attempts() == 4));
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_max_attempts_with_the_last_error() {
    let resilient = resilient(policy());
    let script = Script::new(vec![Answer::Err(ProviderError::Unavailable)]);
    let result = resilient.call(TWILIO, script.op()).await;
    assert_eq!(script.calls(), 4);
    match result {
        Err(error @ CallError::Exhausted { .. }) => {
            assert!(error.is_retryable());
            assert!(matches!(
                error,
                CallError::Exhausted {
                    last: ProviderError::Unavailable,
                    attempts: 4
                }
            ));
        }
        other => panic!("expected Exhausted, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried() {
    let resilient = resilient(policy());
    let script = Script::new(vec![Answer::Err(ProviderError::Rejected), Answer::Ok]);
    let result = resilient.call(TWILIO, script.op()).await;
    assert_eq!(script.calls(), 1);
    let error = result.err();
    assert!(matches!(
        error,
        Some(CallError::Permanent(ProviderError::Rejected))
    ));
    assert_eq!(error.map(|e| e.is_retryable()), Some(false));
}

#[tokio::test(start_paused = true)]
async fn outcomes_are_not_retried_and_never_trip_the_breaker() {
    let resilient = resilient(policy());
    for _ in 0..30 {
        let script = Script::new(vec![Answer::Err(ProviderError::OptedOut), Answer::Ok]);
        let result = resilient.call(TWILIO, script.op()).await;
        assert_eq!(script.calls(), 1);
        let error = result.err();
        assert_eq!(error.as_ref().map(CallError::kind), Some("outcome"));
        assert_eq!(
            error.map(CallError::into_inner),
            Some(Some(ProviderError::OptedOut))
        );
    }
    assert_eq!(resilient.breaker_state(TWILIO), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn retry_after_sets_the_wait_exactly() {
    let resilient = resilient(
        policy().with_backoff(
            Backoff::new(Duration::from_millis(100), Duration::from_secs(1))
                .with_max_retry_after(Duration::from_secs(10)),
        ),
    );
    let script = Script::new(vec![
        Answer::Err(ProviderError::Throttled(Duration::from_secs(7))),
        Answer::Ok,
    ]);
    let start = Instant::now();
    let result = resilient.call(TWILIO, script.op()).await;
    assert_eq!(result.ok(), Some("SM1"));
    assert_eq!(start.elapsed(), Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn retry_after_beyond_the_in_memory_window_is_left_to_the_queue() {
    let resilient = resilient(
        policy().with_backoff(Backoff::default().with_max_retry_after(Duration::from_secs(10))),
    );
    let wait = Duration::from_secs(120);
    let script = Script::new(vec![
        Answer::Err(ProviderError::Throttled(wait)),
        Answer::Ok,
    ]);
    let start = Instant::now();
    let result = resilient.call(TWILIO, script.op()).await;
    assert_eq!(script.calls(), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
    let error = result.err();
    assert_eq!(error.as_ref().and_then(CallError::retry_in), Some(wait));
    assert_eq!(error.map(|e| e.is_retryable()), Some(true));
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_attempt_is_retried() {
    let resilient = resilient(policy().with_attempt_timeout(Duration::from_secs(2)));
    let script = Script::new(vec![Answer::Hang, Answer::Ok]);
    let result = resilient.call(TWILIO, script.op()).await;
    assert_eq!(result.ok(), Some("SM1"));
    assert_eq!(script.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn repeated_timeouts_end_as_a_timeout() {
    let resilient = resilient(policy().with_attempt_timeout(Duration::from_secs(2)));
    let script = Script::new(vec![Answer::Hang]);
    let result = resilient.call(TWILIO, script.op()).await;
    assert_eq!(script.calls(), 4);
    assert!(matches!(result, Err(CallError::Timeout { attempts: 4 })));
}

#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_attempts_and_retries() {
    let resilient = resilient(
        policy()
            .with_attempt_timeout(Duration::from_secs(10))
            .with_deadline(Duration::from_secs(5))
            .with_backoff(Backoff::new(Duration::ZERO, Duration::ZERO).with_max_attempts(10)),
    );
    let script = Script::new(vec![Answer::Hang]);
    let start = Instant::now();
    let result = resilient.call(TWILIO, script.op()).await;
    // The first attempt's timeout is cut to the deadline, and no retry fits after it.
    assert_eq!(script.calls(), 1);
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert!(matches!(result, Err(CallError::Timeout { attempts: 1 })));
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_rejects_without_calling() {
    let resilient = resilient(
        policy()
            .with_backoff(Backoff::default().with_max_attempts(1))
            .with_breaker(BreakerConfig::default().with_consecutive_failures(3)),
    );
    for _ in 0..3 {
        let script = Script::new(vec![Answer::Err(ProviderError::Unavailable)]);
        let _ = resilient.call(TWILIO, script.op()).await;
        assert_eq!(script.calls(), 1);
    }
    assert_eq!(resilient.breaker_state(TWILIO), BreakerState::Open);

    let script = Script::new(vec![Answer::Ok]);
    let result = resilient.call(TWILIO, script.op()).await;
    assert_eq!(script.calls(), 0);
    let error = result.err();
    assert!(matches!(
        error,
        Some(CallError::CircuitOpen { retry_in }) if retry_in == Duration::from_secs(30)
    ));
    assert_eq!(error.map(|e| e.is_retryable()), Some(true));
}

#[tokio::test(start_paused = true)]
async fn a_successful_probe_after_the_cool_down_closes_the_breaker() {
    let resilient = resilient(
        policy()
            .with_backoff(Backoff::default().with_max_attempts(1))
            .with_breaker(BreakerConfig::default().with_consecutive_failures(2)),
    );
    for _ in 0..2 {
        let script = Script::new(vec![Answer::Err(ProviderError::Unavailable)]);
        let _ = resilient.call(TWILIO, script.op()).await;
    }
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(resilient.breaker_state(TWILIO), BreakerState::HalfOpen);
    let script = Script::new(vec![Answer::Ok]);
    assert_eq!(resilient.call(TWILIO, script.op()).await.ok(), Some("SM1"));
    assert_eq!(resilient.breaker_state(TWILIO), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_the_breaker() {
    let resilient = resilient(
        policy()
            .with_backoff(Backoff::default().with_max_attempts(1))
            .with_breaker(BreakerConfig::default().with_consecutive_failures(2)),
    );
    for _ in 0..2 {
        let script = Script::new(vec![Answer::Err(ProviderError::Unavailable)]);
        let _ = resilient.call(TWILIO, script.op()).await;
    }
    tokio::time::advance(Duration::from_secs(30)).await;
    let script = Script::new(vec![Answer::Err(ProviderError::Unavailable)]);
    let _ = resilient.call(TWILIO, script.op()).await;
    assert_eq!(script.calls(), 1);
    assert_eq!(resilient.breaker_state(TWILIO), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn permanent_refusals_do_not_trip_the_breaker() {
    let resilient = resilient(policy());
    for _ in 0..30 {
        let script = Script::new(vec![Answer::Err(ProviderError::Rejected)]);
        let _ = resilient.call(TWILIO, script.op()).await;
    }
    assert_eq!(resilient.breaker_state(TWILIO), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn calls_are_spaced_by_the_destination_rate_limit() {
    let resilient = Resilient::builder()
        .defaults(policy())
        .destination(
            "stripe",
            policy().with_rate_limit(RateLimit::per_second(2).with_burst(1)),
        )
        .build();
    let start = Instant::now();
    for _ in 0..5 {
        let script = Script::new(vec![Answer::Ok]);
        assert!(resilient.call("stripe:acct_1", script.op()).await.is_ok());
    }
    assert_eq!(start.elapsed(), Duration::from_secs(2));

    // Another account has its own bucket; other providers keep the default limit.
    let start = Instant::now();
    let script = Script::new(vec![Answer::Ok]);
    assert!(resilient.call("stripe:acct_2", script.op()).await.is_ok());
    for _ in 0..5 {
        let script = Script::new(vec![Answer::Ok]);
        assert!(resilient.call("calendly", script.op()).await.is_ok());
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_wait_past_the_deadline_is_refused_without_calling() {
    let resilient = resilient(
        policy()
            .with_rate_limit(RateLimit::new(1, Duration::from_secs(60)))
            .with_deadline(Duration::from_secs(5)),
    );
    let script = Script::new(vec![Answer::Ok]);
    assert!(resilient.call("sub_1", script.op()).await.is_ok());
    let script = Script::new(vec![Answer::Ok]);
    let result = resilient.call("sub_1", script.op()).await;
    assert_eq!(script.calls(), 0);
    assert!(matches!(
        result,
        Err(CallError::RateLimited { retry_in }) if retry_in == Duration::from_secs(60)
    ));
}

#[tokio::test(start_paused = true)]
async fn a_retry_the_rate_limit_would_delay_past_the_deadline_reports_the_last_error() {
    let resilient = resilient(
        policy()
            .with_rate_limit(RateLimit::new(1, Duration::from_secs(60)))
            .with_deadline(Duration::from_secs(5)),
    );
    let script = Script::new(vec![Answer::Err(ProviderError::Unavailable), Answer::Ok]);
    let result = resilient.call("sub_1", script.op()).await;
    assert_eq!(script.calls(), 1);
    assert!(matches!(
        result,
        Err(CallError::Exhausted {
            last: ProviderError::Unavailable,
            attempts: 1
        })
    ));
}

#[tokio::test(start_paused = true)]
async fn breakers_are_kept_per_destination() {
    let resilient = resilient(
        policy()
            .with_backoff(Backoff::default().with_max_attempts(1))
            .with_breaker(BreakerConfig::default().with_consecutive_failures(1)),
    );
    let script = Script::new(vec![Answer::Err(ProviderError::Unavailable)]);
    let _ = resilient.call("sub_down", script.op()).await;
    assert_eq!(resilient.breaker_state("sub_down"), BreakerState::Open);
    let script = Script::new(vec![Answer::Ok]);
    assert!(resilient.call("sub_up", script.op()).await.is_ok());
    assert_eq!(resilient.breaker_state("sub_up"), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn the_call_future_can_be_sent_to_another_task() {
    let resilient = resilient(policy());
    let handle = tokio::spawn({
        let resilient = resilient.clone();
        async move {
            resilient
                .call(TWILIO, |attempt: Attempt| async move {
                    if attempt.is_first() {
                        Err(Failure::retryable("connection reset"))
                    } else {
                        Ok(attempt.number())
                    }
                })
                .await
        }
    });
    assert_eq!(handle.await.ok().and_then(Result::ok), Some(2));
}
