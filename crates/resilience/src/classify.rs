//! How a failed call is judged.
//!
//! This crate knows no HTTP client: each caller turns its own error type into a [`Failure`]
//! through [`Classify`], and everything else (retry, breaker, the queue above) acts on that
//! verdict alone. The three kinds matter because they are handled differently:
//!
//! - **retryable**: transient trouble on the way or at the destination (timeouts, connection
//!   errors, 429, most 5xx). Retried with backoff, and counted by the circuit breaker.
//! - **permanent**: the destination refused *our request* (4xx, bad credentials, a recipient
//!   the provider rejects). Retrying cannot help; the destination is healthy, so the breaker
//!   does not count it.
//! - **outcome**: the call worked and the answer is a business fact ("recipient opted out").
//!   Never retried, never counted against the breaker; the caller records it.

use std::borrow::Cow;
use std::time::Duration;

/// The verdict on a failed call.
///
/// Reasons end up in logs and metrics: keep them to codes and short phrases, never names,
/// phone numbers, message bodies or secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Transient: worth another attempt, possibly not before `retry_after`.
    #[error("retryable failure: {reason}")]
    Retryable {
        /// How long the destination asked us to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
        /// A short, non-identifying description.
        reason: Cow<'static, str>,
    },
    /// Our request was refused; repeating it gives the same answer.
    #[error("permanent failure: {reason}")]
    Permanent {
        /// A short, non-identifying description.
        reason: Cow<'static, str>,
    },
    /// The destination answered with a business fact rather than doing the work.
    #[error("outcome: {reason}")]
    Outcome {
        /// A short, non-identifying description.
        reason: Cow<'static, str>,
    },
}

impl Failure {
    /// A transient failure with no hint about when to come back.
    pub fn retryable(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::Retryable {
            retry_after: None,
            reason: reason.into(),
        }
    }

    /// A transient failure where the destination said when to come back.
    pub fn retryable_after(retry_after: Duration, reason: impl Into<Cow<'static, str>>) -> Self {
        Self::Retryable {
            retry_after: Some(retry_after),
            reason: reason.into(),
        }
    }

    /// A refusal of our request.
    pub fn permanent(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::Permanent {
            reason: reason.into(),
        }
    }

    /// A business answer, not a fault.
    pub fn outcome(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::Outcome {
            reason: reason.into(),
        }
    }

    /// The usual reading of an HTTP status code that is not a success: 408, 425, 429 and
    /// 5xx are transient (except 501 and 505, which say the destination will never accept
    /// this request), every other code is permanent. Callers with provider-specific codes
    /// (a 400 that means "opted out") should classify those first and fall back to this.
    pub fn for_http_status(status: u16, retry_after: Option<Duration>) -> Self {
        let reason = Cow::Owned(format!("http status {status}"));
        match status {
            408 | 425 | 429 => Self::Retryable {
                retry_after,
                reason,
            },
            501 | 505 => Self::Permanent { reason },
            500..=599 => Self::Retryable {
                retry_after,
                reason,
            },
            _ => Self::Permanent { reason },
        }
    }

    /// Whether another attempt could succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }

    /// The wait the destination asked for, if this is a retryable failure that carried one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Retryable { retry_after, .. } => *retry_after,
            Self::Permanent { .. } | Self::Outcome { .. } => None,
        }
    }

    /// The short description given when the failure was classified.
    pub fn reason(&self) -> &str {
        match self {
            Self::Retryable { reason, .. }
            | Self::Permanent { reason }
            | Self::Outcome { reason } => reason,
        }
    }

    /// A label for logs and metrics: `retryable`, `permanent` or `outcome`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Retryable { .. } => "retryable",
            Self::Permanent { .. } => "permanent",
            Self::Outcome { .. } => "outcome",
        }
    }
}

/// Implemented by every error type a resilient call can return, so the combinator can decide
/// whether to retry without knowing the transport.
pub trait Classify {
    /// The verdict on this error.
    fn classify(&self) -> Failure;
}

/// A [`Failure`] is its own verdict, which lets simple callers (and tests) return it directly.
impl Classify for Failure {
    fn classify(&self) -> Failure {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_server_errors_are_retryable_with_their_hint() {
        let hint = Some(Duration::from_secs(3));
        for status in [408, 425, 429, 500, 502, 503, 504] {
            let failure = Failure::for_http_status(status, hint);
            assert!(failure.is_retryable(), "{status}");
            assert_eq!(failure.retry_after(), hint);
        }
    }

    #[test]
    fn client_errors_and_unsupported_features_are_permanent() {
        for status in [400, 401, 403, 404, 409, 422, 501, 505] {
            let failure = Failure::for_http_status(status, Some(Duration::from_secs(3)));
            assert_eq!(failure.kind(), "permanent", "{status}");
            assert_eq!(failure.retry_after(), None);
        }
    }

    #[test]
    fn reason_is_kept() {
        assert_eq!(Failure::outcome("opted_out").reason(), "opted_out");
        assert_eq!(
            Failure::for_http_status(503, None).reason(),
            "http status 503"
        );
    }
}
