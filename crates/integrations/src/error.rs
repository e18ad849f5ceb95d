//! One error type for every provider call.
//!
//! The executor turns each failed call into an execution result (`retryable`, `error.code`) and,
//! for sends, must decide whether it may send again. Everything it needs is on
//! [`ProviderError`]: which provider, how the failure is judged (through
//! [`aro_resilience::Classify`], so retries, breakers and the durable queue agree), the HTTP status
//! and the provider's own code, and whether the request may already have reached the provider
//! ([`ProviderError::maybe_delivered`]), the cue to look the message up before any resend.
//!
//! The message is built here from codes and short phrases only: providers echo phone numbers and
//! request values in their own error text (Twilio: "The 'To' number +1… is not valid"), so that
//! text is never copied into an error, a log line or an execution result.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use aro_resilience::{CallError, Classify, Failure};

/// Who was being called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Twilio,
    Stripe,
    Calendly,
    /// An OpenAI-compatible chat completions endpoint.
    Llm,
}

impl Provider {
    /// The label used in logs, metrics and destinations: `twilio`, `stripe`, `calendly`, `llm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Twilio => "twilio",
            Self::Stripe => "stripe",
            Self::Calendly => "calendly",
            Self::Llm => "llm",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong, in the terms the executor acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No connection could be made (DNS, refused, TLS handshake): the request was never sent.
    Connect,
    /// The connection broke after the request was (possibly) sent, or the answer could not be
    /// read.
    Transport,
    /// No answer in time.
    Timeout,
    /// The provider throttled us (HTTP 429, Twilio 20429, Stripe `rate_limit`).
    RateLimited,
    /// The provider failed on its side (5xx, Stripe `api_error`).
    Unavailable,
    /// The provider rejected our credentials (401/403, Twilio 20003 outside an outage).
    CredentialRejected,
    /// The provider refused this request; sending it again gives the same answer.
    Rejected,
    /// The recipient has opted out of messages from this sender (Twilio 21610): a business
    /// fact to record (consent revoked), never retried.
    RecipientOptedOut,
    /// The provider's (or the model's) answer could not be understood.
    InvalidResponse,
    /// The request was refused here before anything was sent (bad input, a URI that is not a
    /// provider resource, missing sender configuration).
    InvalidRequest,
    /// The destination's circuit breaker is open; nothing was sent by this call's last step.
    CircuitOpen,
    /// Our own rate limit for the destination had no room in time; nothing was sent.
    Throttled,
}

impl ErrorKind {
    /// The SCREAMING_SNAKE_CASE code for execution results and logs.
    pub fn code(self) -> &'static str {
        match self {
            Self::Connect => "PROVIDER_UNREACHABLE",
            Self::Transport => "PROVIDER_CONNECTION_LOST",
            Self::Timeout => "PROVIDER_TIMEOUT",
            Self::RateLimited => "PROVIDER_RATE_LIMITED",
            Self::Unavailable => "PROVIDER_UNAVAILABLE",
            Self::CredentialRejected => "PROVIDER_CREDENTIAL_REJECTED",
            Self::Rejected => "PROVIDER_REJECTED",
            Self::RecipientOptedOut => "RECIPIENT_OPTED_OUT",
            Self::InvalidResponse => "PROVIDER_INVALID_RESPONSE",
            Self::InvalidRequest => "INVALID_PROVIDER_REQUEST",
            Self::CircuitOpen => "PROVIDER_CIRCUIT_OPEN",
            Self::Throttled => "PROVIDER_THROTTLED_LOCALLY",
        }
    }

    /// Whether a later try could succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Connect
                | Self::Transport
                | Self::Timeout
                | Self::RateLimited
                | Self::Unavailable
                | Self::CircuitOpen
                | Self::Throttled
        )
    }
}

/// A failed provider call.
///
/// Carries no request body, phone number, message text or secret: only the provider, the
/// kind, the HTTP status, the provider's error code and a message built from those.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider} {}: {message}", kind.code())]
pub struct ProviderError {
    provider: Provider,
    kind: ErrorKind,
    http_status: Option<u16>,
    provider_code: Option<String>,
    message: Cow<'static, str>,
    retry_after: Option<Duration>,
    maybe_delivered: bool,
}

impl ProviderError {
    /// A new error; `message` must be free of personal data (codes and short phrases).
    pub fn new(provider: Provider, kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            provider,
            kind,
            http_status: None,
            provider_code: None,
            message: message.into(),
            retry_after: None,
            maybe_delivered: false,
        }
    }

    /// Records the HTTP status of the answer.
    #[must_use]
    pub fn with_http_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// Records the provider's own error code (Twilio `21610`, Stripe `rate_limit`).
    #[must_use]
    pub fn with_provider_code(mut self, code: impl Into<String>) -> Self {
        self.provider_code = Some(code.into());
        self
    }

    /// Records how long the provider asked us to wait.
    #[must_use]
    pub fn with_retry_after(mut self, wait: Option<Duration>) -> Self {
        self.retry_after = wait;
        self
    }

    /// Records whether the request may have reached the provider.
    #[must_use]
    pub fn with_maybe_delivered(mut self, maybe_delivered: bool) -> Self {
        self.maybe_delivered = maybe_delivered;
        self
    }

    /// Who was being called.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The SCREAMING_SNAKE_CASE code for execution results (`RECIPIENT_OPTED_OUT`, …).
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The HTTP status of the provider's answer, when there was one.
    pub fn http_status(&self) -> Option<u16> {
        self.http_status
    }

    /// The provider's own error code, when it gave one.
    pub fn provider_code(&self) -> Option<&str> {
        self.provider_code.as_deref()
    }

    /// A short description without personal data or secrets.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How long the provider (or our breaker or limiter) asked us to wait, when known.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether the request may have reached the provider although no success was seen (the
    /// connection dropped or timed out after sending, or a gateway error answered a send).
    /// For a send, the executor must look the message up before sending again.
    pub fn maybe_delivered(&self) -> bool {
        self.maybe_delivered
    }

    /// Whether a later try could succeed (the same verdict as [`Classify::classify`]).
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// Folds a [`Resilient::call`](aro_resilience::Resilient::call) give-up into a
    /// `ProviderError`: the last attempt's own error when there was one, otherwise a timeout,
    /// an open breaker or our own throttle.
    pub fn from_call(provider: Provider, error: CallError<ProviderError>) -> Self {
        match error {
            CallError::CircuitOpen { retry_in } => {
                Self::new(provider, ErrorKind::CircuitOpen, "circuit breaker open")
                    .with_retry_after(Some(retry_in))
            }
            CallError::RateLimited { retry_in } => Self::new(
                provider,
                ErrorKind::Throttled,
                "outbound rate limit reached",
            )
            .with_retry_after(Some(retry_in)),
            CallError::Timeout { attempts } => Self::new(
                provider,
                ErrorKind::Timeout,
                format!("no answer in time ({attempts} attempt(s))"),
            ),
            CallError::Exhausted { last, .. }
            | CallError::Permanent(last)
            | CallError::Outcome(last) => last,
        }
    }
}

impl Classify for ProviderError {
    fn classify(&self) -> Failure {
        let reason = || Cow::Owned(format!("{} {}", self.provider, self.kind.code()));
        match self.kind {
            ErrorKind::RecipientOptedOut => Failure::outcome(reason()),
            kind if kind.is_retryable() => match self.retry_after {
                Some(wait) => Failure::retryable_after(wait, reason()),
                None => Failure::retryable(reason()),
            },
            _ => Failure::permanent(reason()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_out_is_an_outcome_and_never_retryable() {
        let error = ProviderError::new(Provider::Twilio, ErrorKind::RecipientOptedOut, "x");
        assert_eq!(error.classify().kind(), "outcome");
        assert!(!error.is_retryable());
    }

    #[test]
    fn retryable_kinds_carry_their_wait_into_the_verdict() {
        let wait = Some(Duration::from_secs(4));
        for kind in [
            ErrorKind::Connect,
            ErrorKind::Transport,
            ErrorKind::Timeout,
            ErrorKind::RateLimited,
            ErrorKind::Unavailable,
            ErrorKind::CircuitOpen,
            ErrorKind::Throttled,
        ] {
            let failure = ProviderError::new(Provider::Stripe, kind, "x")
                .with_retry_after(wait)
                .classify();
            assert!(failure.is_retryable(), "{kind:?}");
            assert_eq!(failure.retry_after(), wait);
        }
    }

    #[test]
    fn refusals_are_permanent() {
        for kind in [
            ErrorKind::CredentialRejected,
            ErrorKind::Rejected,
            ErrorKind::InvalidResponse,
            ErrorKind::InvalidRequest,
        ] {
            let failure = ProviderError::new(Provider::Calendly, kind, "x").classify();
            assert_eq!(failure.kind(), "permanent", "{kind:?}");
        }
    }

    #[test]
    fn a_call_timeout_becomes_a_retryable_timeout() {
        let error = ProviderError::from_call(Provider::Llm, CallError::Timeout { attempts: 2 });
        assert_eq!(error.kind(), ErrorKind::Timeout);
        assert!(error.is_retryable());
        assert!(!error.maybe_delivered());
    }

    #[test]
    fn an_open_breaker_says_when_to_come_back() {
        let wait = Duration::from_secs(30);
        let error =
            ProviderError::from_call(Provider::Twilio, CallError::CircuitOpen { retry_in: wait });
        assert_eq!(error.kind(), ErrorKind::CircuitOpen);
        assert_eq!(error.retry_after(), Some(wait));
    }

    #[test]
    fn the_display_names_provider_and_code_only() {
        let error = ProviderError::new(Provider::Twilio, ErrorKind::Rejected, "twilio error 21211")
            .with_http_status(400)
            .with_provider_code("21211");
        assert_eq!(
            error.to_string(),
            "twilio PROVIDER_REJECTED: twilio error 21211"
        );
    }
}
