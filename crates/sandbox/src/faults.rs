//! Fault injection on the provider side (`POST /sandbox/faults`): the ways a provider really
//! fails — 503, 429 with `Retry-After`, a hang past the client's timeout, a connection dropped
//! without an answer, and the worst one, a request performed whose answer is lost — so ARO's
//! retries, circuit breakers and ambiguous-send look-ups can be tested against them.
//! `/sandbox/*` is never faulted: the tester's controls must keep working.

use crate::state::Sandbox;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use tokio::time::{Duration, Instant};

/// A provider the sandbox stands in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Twilio,
    Stripe,
    Calendly,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Twilio => "twilio",
            Self::Stripe => "stripe",
            Self::Calendly => "calendly",
        }
    }
}

/// How a faulted request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultMode {
    /// 503 with the provider's error body.
    #[serde(rename = "http_503")]
    Http503,
    /// 429 with the provider's error body and `Retry-After`.
    #[serde(rename = "http_429")]
    Http429,
    /// The request waits [`crate::SandboxTiming::slow_delay`] before the provider handles it; a
    /// client that gives up first (closing its connection) leaves nothing behind.
    #[serde(rename = "slow")]
    Slow,
    /// The connection is closed without an answer; nothing is performed.
    #[serde(rename = "drop")]
    Drop,
    /// The request is performed (a message IS accepted and delivered) and then the connection
    /// is closed instead of answering.
    #[serde(rename = "accept_then_drop")]
    AcceptThenDrop,
}

/// One provider's active fault.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub mode: FaultMode,
    /// Ends at this instant (`forSeconds`).
    pub until: Option<Instant>,
    /// Ends after this many more requests (`forRequests`).
    pub remaining: Option<u32>,
}

/// What one faulted request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    pub mode: FaultMode,
    /// Seconds to advertise in `Retry-After`.
    pub retry_after_secs: u64,
}

/// The active faults, at most one per provider (a new one replaces the old).
#[derive(Debug, Default)]
pub(crate) struct Faults {
    active: HashMap<Provider, Fault>,
}

impl Faults {
    pub fn set(&mut self, provider: Provider, fault: Fault) {
        self.active.insert(provider, fault);
    }

    /// Removes one provider's fault, or all; how many were removed.
    pub fn clear(&mut self, provider: Option<Provider>) -> usize {
        match provider {
            Some(p) => usize::from(self.active.remove(&p).is_some()),
            None => {
                let n = self.active.len();
                self.active.clear();
                n
            }
        }
    }

    /// The faults still in force at `now`, forgetting expired ones.
    pub fn list(&mut self, now: Instant) -> Vec<(Provider, Fault)> {
        self.active
            .retain(|_, f| f.until.is_none_or(|until| now < until) && f.remaining != Some(0));
        let mut all: Vec<_> = self.active.iter().map(|(p, f)| (*p, f.clone())).collect();
        all.sort_by_key(|(p, _)| p.as_str());
        all
    }

    /// Whether a request to `provider` at `now` is faulted, counting it against `forRequests`.
    pub fn take(&mut self, provider: Provider, now: Instant) -> Option<Hit> {
        let fault = self.active.get_mut(&provider)?;
        if fault.until.is_some_and(|until| now >= until) || fault.remaining == Some(0) {
            self.active.remove(&provider);
            return None;
        }
        let retry_after_secs = match fault.until {
            // Whole seconds until the outage ends, at least one.
            Some(until) => until.duration_since(now).as_secs_f64().ceil().max(1.0) as u64,
            None => 1,
        };
        let hit = Hit {
            mode: fault.mode,
            retry_after_secs,
        };
        if let Some(remaining) = fault.remaining.as_mut() {
            *remaining -= 1;
            if *remaining == 0 {
                self.active.remove(&provider);
            }
        }
        Some(hit)
    }
}

/// Middleware on each provider's routes.
pub(crate) async fn inject(
    State((sandbox, provider)): State<(Sandbox, Provider)>,
    request: Request,
    next: Next,
) -> Response {
    let hit = sandbox.state().faults.take(provider, Instant::now());
    let Some(hit) = hit else {
        return next.run(request).await;
    };
    tracing::info!(provider = provider.as_str(), mode = ?hit.mode, "injecting a fault");
    match hit.mode {
        FaultMode::Http503 => provider_error(provider, StatusCode::SERVICE_UNAVAILABLE),
        FaultMode::Http429 => {
            let mut response = provider_error(provider, StatusCode::TOO_MANY_REQUESTS);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(hit.retry_after_secs));
            response
        }
        FaultMode::Slow => {
            let delay = sandbox.settings().timing.slow_delay;
            if sandbox.pause(delay).await {
                next.run(request).await
            } else {
                // Shutting down: answer rather than hold the server's drain.
                provider_error(provider, StatusCode::SERVICE_UNAVAILABLE)
            }
        }
        FaultMode::Drop => dropped_connection(),
        FaultMode::AcceptThenDrop => {
            // The provider does the work; only the answer is lost.
            let _performed = next.run(request).await;
            dropped_connection()
        }
    }
}

/// A response whose body fails before its first byte. The HTTP/1 server has only buffered the
/// head at that point, so it closes the connection without sending anything: the client sees
/// the connection end with no answer, exactly as when a provider's edge drops it.
fn dropped_connection() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other(
            "connection dropped by an injected fault",
        ))
    });
    Response::new(Body::from_stream(failing))
}

/// The provider's own error body for an overload or outage.
fn provider_error(provider: Provider, status: StatusCode) -> Response {
    let busy = status == StatusCode::TOO_MANY_REQUESTS;
    let body = match provider {
        Provider::Twilio => {
            let code = if busy { 20429 } else { 20503 };
            json!({
                "code": code,
                "message": if busy { "Too Many Requests" } else { "Service Unavailable" },
                "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
                "status": status.as_u16(),
            })
        }
        Provider::Stripe => {
            if busy {
                json!({"error": {
                    "code": "rate_limit",
                    "message": "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
                    "type": "invalid_request_error",
                }})
            } else {
                json!({"error": {
                    "message": "The service is temporarily unavailable. Please try again later.",
                    "type": "api_error",
                }})
            }
        }
        Provider::Calendly => {
            if busy {
                json!({"title": "Too Many Requests", "message": "You have exceeded the rate limit. Please try again later."})
            } else {
                json!({"title": "Service Unavailable", "message": "The server is temporarily unavailable. Please try again later."})
            }
        }
    };
    (status, axum::Json(body)).into_response()
}

/// `forSeconds` as an instant from `now`.
pub(crate) fn deadline(now: Instant, seconds: u64) -> Instant {
    now + Duration::from_secs(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(mode: FaultMode, until: Option<Instant>, remaining: Option<u32>) -> Fault {
        Fault {
            mode,
            until,
            remaining,
        }
    }

    #[test]
    fn a_request_count_fault_hits_exactly_that_many_requests() {
        let now = Instant::now();
        let mut faults = Faults::default();
        faults.set(Provider::Twilio, fault(FaultMode::Http503, None, Some(2)));
        assert!(faults.take(Provider::Stripe, now).is_none());
        assert!(faults.take(Provider::Twilio, now).is_some());
        assert!(faults.take(Provider::Twilio, now).is_some());
        assert!(faults.take(Provider::Twilio, now).is_none());
        assert!(faults.list(now).is_empty());
    }

    #[test]
    fn a_timed_fault_ends_at_its_deadline_and_advertises_the_rest() {
        let now = Instant::now();
        let mut faults = Faults::default();
        faults.set(
            Provider::Stripe,
            fault(FaultMode::Http429, Some(deadline(now, 30)), None),
        );
        let hit = faults.take(Provider::Stripe, now).unwrap();
        assert_eq!(hit.retry_after_secs, 30);
        let later = now + Duration::from_millis(29_500);
        assert_eq!(
            faults
                .take(Provider::Stripe, later)
                .unwrap()
                .retry_after_secs,
            1
        );
        assert!(faults.take(Provider::Stripe, deadline(now, 30)).is_none());
    }

    #[test]
    fn an_open_ended_fault_lasts_until_cleared() {
        let now = Instant::now();
        let mut faults = Faults::default();
        faults.set(Provider::Calendly, fault(FaultMode::Drop, None, None));
        for _ in 0..100 {
            assert!(faults.take(Provider::Calendly, now).is_some());
        }
        assert_eq!(faults.clear(None), 1);
        assert!(faults.take(Provider::Calendly, now).is_none());
    }

    #[test]
    fn modes_use_the_documented_names() {
        for (mode, name) in [
            (FaultMode::Http503, "http_503"),
            (FaultMode::Http429, "http_429"),
            (FaultMode::Slow, "slow"),
            (FaultMode::Drop, "drop"),
            (FaultMode::AcceptThenDrop, "accept_then_drop"),
        ] {
            assert_eq!(serde_json::to_value(mode).unwrap(), name);
        }
    }
}
