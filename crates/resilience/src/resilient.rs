//! The one way ARO makes an outbound call.
//!
//! [`Resilient::call`] wraps a caller's operation (an SMS send, a Stripe request, an event
//! delivery to a subscriber) so that every attempt goes through, in order: the destination's
//! circuit breaker, its rate limiter, a per-attempt timeout, classification of the error, and
//! retry with full-jitter backoff (or the destination's `Retry-After`) within an overall
//! deadline.
//!
//! In-memory retries cover short windows only: a few attempts over seconds, enough to ride out
//! a dropped connection or a brief 503. Anything longer (minutes to days: a provider outage, a
//! subscriber down overnight) belongs to the durable queue in the database, which survives
//! restarts. That is why every give-up is a [`CallError`] saying whether it is retryable and,
//! when known, after how long: the queue schedules the next try from it.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::breaker::{BreakerConfig, BreakerState, CircuitBreakers};
use crate::classify::{Classify, Failure};
use crate::destination::PerDestination;
use crate::rate_limit::{RateLimit, RateLimiter};

/// What the operation is told about the attempt it is making.
///
/// Operations with side effects should derive one idempotency key per *call* and send it on
/// every attempt, so a retry after a lost answer cannot send a second SMS or charge twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    number: u32,
    max_attempts: u32,
}

impl Attempt {
    /// 1 for the first attempt, 2 for the first retry, and so on.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The most attempts this call may make.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether this is the first attempt.
    pub fn is_first(&self) -> bool {
        self.number == 1
    }

    /// Whether no retry will follow this attempt, whatever its result.
    pub fn is_last(&self) -> bool {
        self.number >= self.max_attempts
    }
}

/// Everything that governs calls to one destination (or to all destinations with a prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestinationPolicy {
    rate_limit: RateLimit,
    breaker: BreakerConfig,
    backoff: Backoff,
    attempt_timeout: Duration,
    deadline: Duration,
}

impl Default for DestinationPolicy {
    /// The defaults of [`RateLimit`], [`BreakerConfig`] and [`Backoff`], a 10 s timeout per
    /// attempt and 30 s for the whole call, retries included.
    fn default() -> Self {
        Self {
            rate_limit: RateLimit::default(),
            breaker: BreakerConfig::default(),
            backoff: Backoff::default(),
            attempt_timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(30),
        }
    }
}

impl DestinationPolicy {
    /// Sets the token bucket.
    #[must_use]
    pub fn with_rate_limit(mut self, rate_limit: RateLimit) -> Self {
        self.rate_limit = rate_limit;
        self
    }

    /// Sets when the breaker trips and how it recovers.
    #[must_use]
    pub fn with_breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = breaker;
        self
    }

    /// Sets the retry schedule and the number of attempts.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets how long one attempt may take before it counts as a (retryable) timeout.
    #[must_use]
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Sets how long the whole call may take, waits and retries included. No retry is
    /// started that could not begin before it.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The token bucket.
    pub fn rate_limit(&self) -> RateLimit {
        self.rate_limit
    }

    /// The breaker settings.
    pub fn breaker(&self) -> BreakerConfig {
        self.breaker
    }

    /// The retry schedule.
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// The per-attempt timeout.
    pub fn attempt_timeout(&self) -> Duration {
        self.attempt_timeout
    }

    /// The overall deadline.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }
}

/// Why a resilient call gave up.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    /// The destination's breaker is open (or busy probing); the operation was not called.
    #[error("circuit open for this destination, retry in {retry_in:?}")]
    CircuitOpen {
        /// When the breaker will let a call through again.
        retry_in: Duration,
    },
    /// The rate limit would have made the first attempt start after the deadline; the
    /// operation was not called.
    #[error("rate limited for this destination, retry in {retry_in:?}")]
    RateLimited {
        /// When a token will be available.
        retry_in: Duration,
    },
    /// The last attempt timed out.
    #[error("timed out ({attempts} attempt(s))")]
    Timeout {
        /// Attempts made.
        attempts: u32,
    },
    /// The last attempt failed with a retryable error and no more attempts fit (count,
    /// deadline, or a `Retry-After` longer than we wait in memory).
    #[error("gave up after {attempts} attempt(s): {last}")]
    Exhausted {
        /// The last attempt's error.
        last: E,
        /// Attempts made.
        attempts: u32,
    },
    /// The destination refused the request; retrying cannot help.
    #[error("permanent failure: {0}")]
    Permanent(E),
    /// The destination answered with a business outcome.
    #[error("outcome: {0}")]
    Outcome(E),
}

impl<E> CallError<E> {
    /// Whether a later try (from the durable queue) could succeed: true for everything but
    /// [`CallError::Permanent`] and [`CallError::Outcome`].
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Permanent(_) | Self::Outcome(_))
    }

    /// A label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CircuitOpen { .. } => "circuit_open",
            Self::RateLimited { .. } => "rate_limited",
            Self::Timeout { .. } => "timeout",
            Self::Exhausted { .. } => "exhausted",
            Self::Permanent(_) => "permanent",
            Self::Outcome(_) => "outcome",
        }
    }

    /// The operation's own error, when the call ended on one.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Exhausted { last, .. } | Self::Permanent(last) | Self::Outcome(last) => {
                Some(last)
            }
            Self::CircuitOpen { .. } | Self::RateLimited { .. } | Self::Timeout { .. } => None,
        }
    }
}

impl<E: Classify> CallError<E> {
    /// The earliest a later try makes sense, when known: the breaker's or the limiter's
    /// wait, or the destination's `Retry-After` on the last error.
    pub fn retry_in(&self) -> Option<Duration> {
        match self {
            Self::CircuitOpen { retry_in } | Self::RateLimited { retry_in } => Some(*retry_in),
            Self::Exhausted { last, .. } => last.classify().retry_after(),
            Self::Timeout { .. } | Self::Permanent(_) | Self::Outcome(_) => None,
        }
    }
}

/// The last retryable failure seen, kept to report if no attempt succeeds.
enum LastFailure<E> {
    Timeout,
    Error(E),
}

impl<E> LastFailure<E> {
    fn into_call_error(self, attempts: u32) -> CallError<E> {
        match self {
            Self::Timeout => CallError::Timeout { attempts },
            Self::Error(last) => CallError::Exhausted { last, attempts },
        }
    }
}

/// The error for a call the rate limit stopped before its next attempt: the last failure if
/// an attempt was made, otherwise the limiter's wait.
fn stopped_early<E>(
    last: Option<LastFailure<E>>,
    attempts: u32,
    retry_in: Duration,
) -> CallError<E> {
    match last {
        Some(last) => last.into_call_error(attempts),
        None => CallError::RateLimited { retry_in },
    }
}

struct Shared {
    policies: PerDestination<DestinationPolicy>,
    limiter: RateLimiter,
    breakers: CircuitBreakers,
    rng: Mutex<StdRng>,
}

/// Rate limiting, breaking, timeouts and retries for outbound calls, per destination.
///
/// Cheap to clone; clones share the limiter and breaker state, so build one per process and
/// hand clones to every component that calls out.
#[derive(Clone)]
pub struct Resilient {
    shared: Arc<Shared>,
}

impl fmt::Debug for Resilient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resilient")
            .field("policies", &self.shared.policies)
            .finish_non_exhaustive()
    }
}

impl Default for Resilient {
    fn default() -> Self {
        Self::builder().build()
    }
}

/// Builds a [`Resilient`] with per-destination policies.
#[derive(Debug, Default)]
pub struct ResilientBuilder {
    policies: PerDestination<DestinationPolicy>,
    seed: Option<u64>,
}

impl ResilientBuilder {
    /// The policy for destinations without an override.
    #[must_use]
    pub fn defaults(mut self, policy: DestinationPolicy) -> Self {
        self.policies = self.policies.with_default(policy);
        self
    }

    /// The policy for destination `key` and for destinations under it (`twilio` covers
    /// `twilio:AC123`; see [`PerDestination`]). Give the whole policy, e.g.
    /// `DestinationPolicy::default().with_rate_limit(RateLimit::per_second(100))`.
    #[must_use]
    pub fn destination(mut self, key: impl Into<String>, policy: DestinationPolicy) -> Self {
        self.policies = self.policies.with(key, policy);
        self
    }

    /// Seeds the jitter, for reproducible tests. Without it the seed comes from the OS.
    #[must_use]
    pub fn rng_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The configured [`Resilient`].
    pub fn build(self) -> Resilient {
        let rng = match self.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Resilient {
            shared: Arc::new(Shared {
                limiter: RateLimiter::new(self.policies.map(|policy| policy.rate_limit)),
                breakers: CircuitBreakers::new(self.policies.map(|policy| policy.breaker)),
                policies: self.policies,
                rng: Mutex::new(rng),
            }),
        }
    }
}

impl Resilient {
    /// Starts a builder with the default policy and no overrides.
    pub fn builder() -> ResilientBuilder {
        ResilientBuilder::default()
    }

    /// The policy that applies to `destination`.
    pub fn policy(&self, destination: &str) -> &DestinationPolicy {
        self.shared.policies.get(destination)
    }

    /// The breaker state for `destination`.
    pub fn breaker_state(&self, destination: &str) -> BreakerState {
        self.shared.breakers.state(destination)
    }

    /// The shared breakers, for health pages.
    pub fn breakers(&self) -> &CircuitBreakers {
        &self.shared.breakers
    }

    /// The shared rate limiter, for callers that need a token outside [`Self::call`].
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.shared.limiter
    }

    /// Calls `op` for `destination` with breaker, rate limit, per-attempt timeout and retries.
    ///
    /// `op` is called once per attempt with the [`Attempt`]; its errors are classified with
    /// [`Classify`]: permanent errors and outcomes end the call at once, retryable ones and
    /// timeouts are retried after a full-jitter delay or the destination's `Retry-After`,
    /// while attempts and the deadline allow. A `Retry-After` longer than the policy's
    /// [`Backoff::max_retry_after`] ends the call (as [`CallError::Exhausted`], whose
    /// [`CallError::retry_in`] carries it) rather than retrying early.
    #[tracing::instrument(name = "resilient_call", skip_all, fields(destination = destination))]
    pub async fn call<T, E, F, Fut>(&self, destination: &str, mut op: F) -> Result<T, CallError<E>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify,
    {
        let result = self.run(destination, &mut op).await;
        let outcome = match &result {
            Ok(_) => "success",
            Err(error) => error.kind(),
        };
        metrics::counter!(
            "aro_outbound_calls_total",
            "destination" => destination.to_owned(),
            "result" => outcome,
        )
        .increment(1);
        result
    }

    async fn run<T, E, F, Fut>(&self, destination: &str, op: &mut F) -> Result<T, CallError<E>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify,
    {
        let policy = *self.policy(destination);
        let backoff = policy.backoff;
        let deadline = Instant::now() + policy.deadline;
        let mut last: Option<LastFailure<E>> = None;
        let mut attempts = 0;
        loop {
            let permit = match self.shared.breakers.admit(destination) {
                Ok(permit) => permit,
                // Even mid-retry: the breaker's wait is what the queue above should use.
                Err(retry_in) => return Err(CallError::CircuitOpen { retry_in }),
            };
            if let Err(wait) = self
                .shared
                .limiter
                .acquire_before(destination, deadline)
                .await
            {
                return Err(stopped_early(last, attempts, wait));
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(stopped_early(last, attempts, Duration::ZERO));
            }

            attempts += 1;
            let attempt = Attempt {
                number: attempts,
                max_attempts: backoff.max_attempts(),
            };
            let timeout = policy.attempt_timeout.min(remaining);
            let (retry_after, reason, failure) =
                match tokio::time::timeout(timeout, op(attempt)).await {
                    Ok(Ok(value)) => {
                        permit.record_success();
                        return Ok(value);
                    }
                    Ok(Err(error)) => {
                        let verdict = error.classify();
                        permit.record(&verdict);
                        match verdict {
                            Failure::Permanent { reason } => {
                                tracing::debug!(attempt = attempts, %reason, "permanent failure");
                                return Err(CallError::Permanent(error));
                            }
                            Failure::Outcome { reason } => {
                                tracing::debug!(attempt = attempts, %reason, "outcome");
                                return Err(CallError::Outcome(error));
                            }
                            Failure::Retryable {
                                retry_after,
                                reason,
                            } => (retry_after, reason, LastFailure::Error(error)),
                        }
                    }
                    Err(_elapsed) => {
                        permit.record_failure();
                        (None, "attempt timed out".into(), LastFailure::Timeout)
                    }
                };

            if attempts >= backoff.max_attempts() {
                tracing::debug!(attempt = attempts, %reason, "no attempts left");
                return Err(failure.into_call_error(attempts));
            }
            if retry_after.is_some_and(|wait| wait > backoff.max_retry_after()) {
                // Retrying sooner than asked would only earn another refusal.
                tracing::debug!(attempt = attempts, %reason, "Retry-After beyond the in-memory window");
                return Err(failure.into_call_error(attempts));
            }
            let delay = {
                let mut rng = self
                    .shared
                    .rng
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                backoff.retry_delay(attempts - 1, retry_after, &mut *rng)
            };
            if Instant::now() + delay >= deadline {
                tracing::debug!(attempt = attempts, %reason, "next retry would pass the deadline");
                return Err(failure.into_call_error(attempts));
            }
            tracing::debug!(
                attempt = attempts,
                %reason,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "retrying"
            );
            metrics::counter!("aro_outbound_retries_total", "destination" => destination.to_owned())
                .increment(1);
            last = Some(failure);
            tokio::time::sleep(delay).await;
        }
    }
}
