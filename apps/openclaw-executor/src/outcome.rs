//! What performing an execution came to, and how that is told to core.
//!
//! Core acts on three things in a failed result: the code (Twilio's `21610` revokes consent),
//! whether it is retryable (the durable queue tries again later, with backoff) and, when known,
//! how long to wait first (`retryAfterSeconds`: a provider's `Retry-After` or our breaker's
//! cool-down, so the queue does not hammer a provider that is down). Messages are built from
//! codes and short phrases only: provider error text can quote phone numbers and bodies.

use std::time::Duration;

use aro_integrations::{ErrorKind, Provider, ProviderError};
use serde_json::Value;

use crate::core::{ExecutionReport, ReportError, ReportStatus};

/// How long core should wait before retrying after a provider refused our credentials: long
/// enough not to hammer it, short enough that a fixed configuration takes effect soon.
const CREDENTIAL_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Why an execution was not performed (or not known to be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionFailure {
    pub code: String,
    pub message: String,
    pub retryable: bool,
    pub retry_after: Option<Duration>,
}

impl ExecutionFailure {
    /// A failure a later try cannot cure.
    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            retryable: false,
            retry_after: None,
        }
    }

    /// A failure worth another try, not before `retry_after` when given.
    pub fn retryable(
        code: impl Into<String>,
        message: impl Into<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            retryable: true,
            retry_after,
        }
    }

    /// Reads a provider's failure.
    ///
    /// - Twilio's own codes are passed on for recipient problems (`21610`, `21211`, `21614`…),
    ///   which is what core matches to revoke consent; everything else gets ARO's code.
    /// - Whatever may have reached the provider unseen is retryable even when the answer was
    ///   unreadable: the next attempt (with a higher `attempt`) looks up before resending.
    /// - A rejected credential is retryable after a pause: nothing was performed, and an
    ///   operator can fix the configuration before the queue gives up (dead letter).
    pub fn from_provider(error: &ProviderError) -> Self {
        let code = match (error.provider(), error.kind(), error.provider_code()) {
            (Provider::Twilio, ErrorKind::RecipientOptedOut | ErrorKind::Rejected, Some(code)) => {
                code.to_owned()
            }
            _ => error.code().to_owned(),
        };
        let credential = error.kind() == ErrorKind::CredentialRejected;
        let retryable = error.is_retryable() || error.maybe_delivered() || credential;
        let retry_after = if credential {
            Some(CREDENTIAL_RETRY_AFTER)
        } else if retryable {
            error.retry_after()
        } else {
            None
        };
        Self {
            code,
            message: error.to_string(),
            retryable,
            retry_after,
        }
    }
}

/// The result of performing one execution.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded {
        /// The provider's id for what was done (Twilio SID, Stripe payment link id).
        provider_ref: Option<String>,
        output: Value,
    },
    Failed(ExecutionFailure),
}

impl Outcome {
    /// A label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Succeeded { .. } => "succeeded",
            Self::Failed(f) if f.retryable => "failed_retryable",
            Self::Failed(_) => "failed_permanent",
        }
    }
}

impl From<ExecutionFailure> for Outcome {
    fn from(failure: ExecutionFailure) -> Self {
        Self::Failed(failure)
    }
}

/// Whole seconds, rounded up, at least one: core reads `retryAfterSeconds` as a floor.
fn whole_seconds(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

impl From<Outcome> for ExecutionReport {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Succeeded {
                provider_ref,
                output,
            } => Self {
                status: ReportStatus::Succeeded,
                retryable: false,
                error: None,
                provider_ref,
                output: Some(output),
                retry_after_seconds: None,
            },
            Outcome::Failed(failure) => Self {
                status: ReportStatus::Failed,
                retryable: failure.retryable,
                error: Some(ReportError {
                    code: failure.code,
                    message: failure.message,
                }),
                provider_ref: None,
                output: None,
                retry_after_seconds: failure
                    .retry_after
                    .filter(|_| failure.retryable)
                    .map(whole_seconds),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_recipient_codes_are_passed_on_and_permanent() {
        for (kind, code) in [
            (ErrorKind::RecipientOptedOut, "21610"),
            (ErrorKind::Rejected, "21211"),
            (ErrorKind::Rejected, "21614"),
        ] {
            let error = ProviderError::new(Provider::Twilio, kind, "twilio error")
                .with_http_status(400)
                .with_provider_code(code);
            let failure = ExecutionFailure::from_provider(&error);
            assert_eq!(failure.code, code);
            assert!(!failure.retryable, "{code}");
        }
    }

    #[test]
    fn an_open_breaker_tells_core_when_to_come_back() {
        let error = ProviderError::new(Provider::Twilio, ErrorKind::CircuitOpen, "open")
            .with_retry_after(Some(Duration::from_millis(2_100)));
        let report =
            ExecutionReport::from(Outcome::Failed(ExecutionFailure::from_provider(&error)));
        assert!(report.retryable);
        assert_eq!(report.retry_after_seconds, Some(3));
        assert_eq!(
            report.error.map(|e| e.code).as_deref(),
            Some("PROVIDER_CIRCUIT_OPEN")
        );
    }

    #[test]
    fn an_answer_lost_after_sending_is_retried_so_the_next_attempt_looks_up() {
        let error = ProviderError::new(Provider::Twilio, ErrorKind::InvalidResponse, "unreadable")
            .with_maybe_delivered(true);
        assert!(ExecutionFailure::from_provider(&error).retryable);
        let refused = ProviderError::new(Provider::Stripe, ErrorKind::Rejected, "refused");
        assert!(!ExecutionFailure::from_provider(&refused).retryable);
    }

    #[test]
    fn a_rejected_credential_waits_before_the_next_try() {
        let error = ProviderError::new(Provider::Stripe, ErrorKind::CredentialRejected, "401");
        let failure = ExecutionFailure::from_provider(&error);
        assert!(failure.retryable);
        assert_eq!(failure.retry_after, Some(CREDENTIAL_RETRY_AFTER));
    }

    #[test]
    fn permanent_failures_carry_no_wait() {
        let report = ExecutionReport::from(Outcome::Failed(ExecutionFailure {
            code: "X".into(),
            message: String::new(),
            retryable: false,
            retry_after: Some(Duration::from_secs(5)),
        }));
        assert_eq!(report.retry_after_seconds, None);
    }
}
