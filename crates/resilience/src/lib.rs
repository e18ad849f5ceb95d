//! Safe outbound calls for ARO.
//!
//! Every call ARO makes to the outside world (SMS and payment providers, booking systems, LLM
//! APIs, event deliveries to subscribers) goes through [`Resilient::call`], which applies, per
//! destination: a circuit breaker, a token-bucket rate limit, a per-attempt timeout and retries
//! with full-jitter exponential backoff that honour `Retry-After`, all within an overall
//! deadline. The crate knows no transport: callers classify their own errors through
//! [`Classify`] into retryable, permanent or outcome.
//!
//! In-memory retries are for short windows (seconds). Longer schedules belong to the durable
//! queue in the database: a [`CallError`] says whether the call is worth trying again
//! ([`CallError::is_retryable`]) and, when known, after how long ([`CallError::retry_in`]).
//!
//! Limits and breakers run on real (tokio) time, never on business time, so the sandbox's
//! clock advance does not open breakers or refill buckets.
//!
//! ```no_run
//! use std::time::Duration;
//! use aro_resilience::{
//!     Attempt, CallError, Classify, DestinationPolicy, Failure, RateLimit, Resilient,
//! };
//!
//! #[derive(Debug)]
//! enum SendError {
//!     Connection,
//!     Status { code: u16, retry_after: Option<Duration> },
//!     OptedOut,
//! }
//!
//! impl Classify for SendError {
//!     fn classify(&self) -> Failure {
//!         match self {
//!             SendError::Connection => Failure::retryable("connection"),
//!             SendError::Status { code, retry_after } => {
//!                 Failure::for_http_status(*code, *retry_after)
//!             }
//!             SendError::OptedOut => Failure::outcome("opted_out"),
//!         }
//!     }
//! }
//!
//! async fn send_sms(_key: &str, _attempt: Attempt) -> Result<String, SendError> {
//!     Ok("SM123".to_owned())
//! }
//!
//! async fn example() -> Result<String, CallError<SendError>> {
//!     let resilient = Resilient::builder()
//!         .destination(
//!             "twilio",
//!             DestinationPolicy::default().with_rate_limit(RateLimit::per_second(100)),
//!         )
//!         .build();
//!     // One idempotency key for the call, reused by every attempt.
//!     let key = "reminder-42";
//!     resilient.call("twilio:AC123", |attempt| send_sms(key, attempt)).await
//! }
//! ```

mod backoff;
mod breaker;
mod classify;
mod destination;
mod rate_limit;
mod resilient;
mod retry_after;

pub use backoff::Backoff;
pub use breaker::{BreakerConfig, BreakerPermit, BreakerState, CircuitBreakers, PROBE_BUSY_RETRY};
pub use classify::{Classify, Failure};
pub use destination::PerDestination;
pub use rate_limit::{RateLimit, RateLimiter};
pub use resilient::{Attempt, CallError, DestinationPolicy, Resilient, ResilientBuilder};
pub use retry_after::{InvalidRetryAfter, parse_retry_after};
