//! The one HTTP exchange every client makes, and what its failures mean.
//!
//! Each provider module builds its request and reads its own error bodies; what is common lives
//! here: sending, reading a bounded body, telling "never sent" (no connection) from "may have
//! reached the provider" (the connection broke or timed out after the request went out),
//! `Retry-After`, the generic reading of an HTTP status, and building endpoint URLs under a
//! configured base URL (which may carry a path prefix, as a sandbox mount does).

use std::time::{Duration, SystemTime};

use aro_resilience::parse_retry_after;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use url::Url;

use crate::error::{ErrorKind, Provider, ProviderError};

/// Answers bigger than this are not read: no provider answer we parse comes close.
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The longest `Retry-After` we carry; longer hints are capped (the durable queue decides).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);

/// Whether a request changes something at the provider, which decides whether a lost answer
/// means "may have been delivered".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// A look-up: losing the answer loses nothing.
    Read,
    /// A send or a create.
    Write,
}

/// A provider's answer, read in full.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The provider's `Retry-After`, capped, when it sent a readable one.
    pub fn retry_after(&self) -> Option<Duration> {
        let value = self.headers.get(RETRY_AFTER)?.to_str().ok()?;
        parse_retry_after(value, SystemTime::now(), MAX_RETRY_AFTER).ok()
    }

    /// A header as text, when present and readable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }
}

/// Sends `request` and reads the answer.
///
/// Only transport failures are errors here; any HTTP status is an [`Answer`] for the provider
/// module to read.
pub(crate) async fn exchange(
    provider: Provider,
    request: reqwest::RequestBuilder,
    effect: Effect,
) -> Result<Answer, ProviderError> {
    let mut response = request
        .send()
        .await
        .map_err(|error| transport_error(provider, &error, effect))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    let delivered = effect == Effect::Write && (200..300).contains(&status);
                    return Err(ProviderError::new(
                        provider,
                        ErrorKind::InvalidResponse,
                        "answer too large",
                    )
                    .with_http_status(status)
                    .with_maybe_delivered(delivered));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(error) => {
                // The status line arrived, so the request reached the provider; only the rest
                // of the answer was lost.
                let error = transport_error(provider, &error, effect).with_http_status(status);
                return Err(error);
            }
        }
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// Reads a transport failure: no connection means nothing was sent; anything later may have
/// reached the provider.
fn transport_error(provider: Provider, error: &reqwest::Error, effect: Effect) -> ProviderError {
    let written = effect == Effect::Write;
    if error.is_connect() {
        ProviderError::new(provider, ErrorKind::Connect, "could not connect")
    } else if error.is_timeout() {
        ProviderError::new(provider, ErrorKind::Timeout, "no answer in time")
            .with_maybe_delivered(written)
    } else if error.is_builder() {
        ProviderError::new(
            provider,
            ErrorKind::InvalidRequest,
            "request could not be built",
        )
    } else {
        ProviderError::new(provider, ErrorKind::Transport, "connection lost")
            .with_maybe_delivered(written)
    }
}

/// The generic reading of a non-success status, before any provider-specific code is applied.
///
/// A 5xx answer to a write may come from a gateway in front of a provider that did the work,
/// so it counts as "may have been delivered"; 503 is the provider saying it did not take the
/// request, and 429 is a refusal, so those do not.
pub(crate) fn status_error(provider: Provider, answer: &Answer, effect: Effect) -> ProviderError {
    let status = answer.status;
    let (kind, message) = match status {
        300..=399 => (ErrorKind::InvalidResponse, "unexpected redirect"),
        401 | 403 => (ErrorKind::CredentialRejected, "credential rejected"),
        408 => (ErrorKind::Timeout, "provider timed out the request"),
        429 => (ErrorKind::RateLimited, "rate limited by the provider"),
        // Every 5xx is the provider's trouble, retried with backoff (even 501/505, which a
        // proxy in front of the API can answer while it is being changed); retries are bounded
        // by the execution's attempts, after which it is dead-lettered.
        500..=599 => (ErrorKind::Unavailable, "provider unavailable"),
        _ => (ErrorKind::Rejected, "request refused"),
    };
    let maybe_delivered = effect == Effect::Write && (500..=599).contains(&status) && status != 503;
    ProviderError::new(provider, kind, format!("{message} (http {status})"))
        .with_http_status(status)
        .with_retry_after(if kind.is_retryable() {
            answer.retry_after()
        } else {
            None
        })
        .with_maybe_delivered(maybe_delivered)
}

/// `base` with `segments` appended to its path, each segment percent-encoded (a `/` inside a
/// segment cannot climb out of it).
pub(crate) fn endpoint(
    provider: Provider,
    base: &Url,
    segments: &[&str],
) -> Result<Url, ProviderError> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    {
        let mut path = url.path_segments_mut().map_err(|()| {
            ProviderError::new(
                provider,
                ErrorKind::InvalidRequest,
                "base URL cannot hold a path",
            )
        })?;
        path.pop_if_empty().extend(segments);
    }
    Ok(url)
}

/// A client with the settings every provider call wants: no redirects (a redirect could carry
/// a bearer token or a look-up to another host), a connect timeout, and our user agent.
///
/// The executor builds one per process and hands clones to every client; callers that build
/// their own should keep redirects off.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("aro/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<&str>) -> Answer {
        let mut headers = HeaderMap::new();
        if let Some(Ok(value)) = retry_after.map(str::parse) {
            headers.insert(RETRY_AFTER, value);
        }
        Answer {
            status,
            headers,
            body: Vec::new(),
        }
    }

    #[test]
    fn endpoints_keep_a_base_path_prefix() -> Result<(), Box<dyn std::error::Error>> {
        let base = Url::parse("http://127.0.0.1:7400/twilio")?;
        let url = endpoint(Provider::Twilio, &base, &["2010-04-01", "Accounts", "AC1"])?;
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:7400/twilio/2010-04-01/Accounts/AC1"
        );
        let root = Url::parse("https://api.stripe.com/")?;
        let url = endpoint(Provider::Stripe, &root, &["v1", "prices"])?;
        assert_eq!(url.as_str(), "https://api.stripe.com/v1/prices");
        Ok(())
    }

    #[test]
    fn a_segment_cannot_climb_out_of_its_place() -> Result<(), Box<dyn std::error::Error>> {
        let base = Url::parse("https://api.twilio.com")?;
        let url = endpoint(Provider::Twilio, &base, &["Messages", "../../evil"])?;
        assert_eq!(url.path(), "/Messages/..%2F..%2Fevil");
        Ok(())
    }

    #[test]
    fn statuses_read_as_the_usual_kinds() {
        let read = |status| status_error(Provider::Calendly, &answer(status, None), Effect::Read);
        assert_eq!(read(401).kind(), ErrorKind::CredentialRejected);
        assert_eq!(read(403).kind(), ErrorKind::CredentialRejected);
        assert_eq!(read(404).kind(), ErrorKind::Rejected);
        assert_eq!(read(429).kind(), ErrorKind::RateLimited);
        assert_eq!(read(500).kind(), ErrorKind::Unavailable);
        assert_eq!(read(301).kind(), ErrorKind::InvalidResponse);
        assert_eq!(read(501).kind(), ErrorKind::Unavailable);
        assert_eq!(read(505).kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn only_gateway_errors_to_writes_may_have_been_delivered() {
        let write = |status| status_error(Provider::Twilio, &answer(status, None), Effect::Write);
        assert!(write(500).maybe_delivered());
        assert!(write(502).maybe_delivered());
        assert!(write(504).maybe_delivered());
        assert!(!write(503).maybe_delivered());
        assert!(!write(429).maybe_delivered());
        assert!(!write(400).maybe_delivered());
        let read = status_error(Provider::Twilio, &answer(502, None), Effect::Read);
        assert!(!read.maybe_delivered());
    }

    #[test]
    fn retry_after_is_kept_only_on_retryable_answers() {
        let throttled = status_error(Provider::Stripe, &answer(429, Some("7")), Effect::Read);
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(7)));
        let refused = status_error(Provider::Stripe, &answer(400, Some("7")), Effect::Read);
        assert_eq!(refused.retry_after(), None);
        let capped = status_error(Provider::Stripe, &answer(503, Some("999999")), Effect::Read);
        assert_eq!(capped.retry_after(), Some(MAX_RETRY_AFTER));
    }
}
