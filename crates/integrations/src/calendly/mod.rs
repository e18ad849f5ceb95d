//! Calendly API v2: looking up an invitee and its scheduled event, checking the API token
//! ([`CalendlyClient::verify_credentials`]), and reading Calendly's webhooks ([`webhook`]) into
//! provider-neutral bookings ([`normalise`]).
//!
//! Webhook payloads sometimes lack fields (older subscriptions carry only the event URI, not
//! the embedded `scheduled_event`); core then queues a `booking.fetch_invitee` execution and
//! the executor fills the gaps with [`CalendlyClient::get_invitee`] and
//! [`CalendlyClient::get_event`]. Resource URIs from payloads are never called as they are: see
//! [`uri`] for how they are mapped onto the configured base URL.

mod booking;
mod resources;
mod uri;
pub mod webhook;

use std::fmt;

use aro_config::{CalendlyConfig, Secret};
use aro_resilience::Resilient;
use serde::Deserialize;
use url::Url;

pub use booking::{Booking, BookingField, MissingFields, language_from_answers, normalise};
pub use resources::{Cancellation, Invitee, QuestionAndAnswer, ScheduledEvent};

use crate::error::{ErrorKind, Provider, ProviderError};
use crate::http::{Answer, Effect, endpoint, exchange, status_error};
use uri::{Resource, resolve};

/// A Calendly account's API, read-only.
#[derive(Clone)]
pub struct CalendlyClient {
    base_url: Url,
    api_token: Secret,
    http: reqwest::Client,
    resilient: Resilient,
    destination: String,
}

impl fmt::Debug for CalendlyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CalendlyClient")
            .field("base_url", &self.base_url.as_str())
            .field("destination", &self.destination)
            .finish_non_exhaustive()
    }
}

/// API v2 wraps single resources: `{"resource": {...}}`.
#[derive(Deserialize)]
struct Wrapped<T> {
    resource: T,
}

/// Calendly's error body: `{"title": "Resource Not Found", "message": "…"}`.
#[derive(Deserialize)]
struct CalendlyErrorBody {
    #[serde(default)]
    title: Option<String>,
}

impl CalendlyClient {
    /// A client for the configured account; calls go through `resilient` under the
    /// destination `calendly`.
    pub fn new(config: &CalendlyConfig, http: reqwest::Client, resilient: Resilient) -> Self {
        Self {
            base_url: config.base_url.clone(),
            api_token: config.api_token.clone(),
            http,
            resilient,
            destination: "calendly".to_owned(),
        }
    }

    /// Uses another resilience destination (for example one per tenant).
    #[must_use]
    pub fn with_destination(mut self, destination: impl Into<String>) -> Self {
        self.destination = destination.into();
        self
    }

    /// The resilience destination calls go through.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// `GET /scheduled_events/{event}/invitees/{invitee}` for an invitee URI from a payload.
    #[tracing::instrument(skip_all, fields(provider = "calendly"))]
    pub async fn get_invitee(&self, invitee_uri: &str) -> Result<Invitee, ProviderError> {
        let url = resolve(&self.base_url, invitee_uri, Resource::Invitee)?;
        self.get(url).await
    }

    /// `GET /scheduled_events/{event}` for an event URI from a payload or an invitee.
    #[tracing::instrument(skip_all, fields(provider = "calendly"))]
    pub async fn get_event(&self, event_uri: &str) -> Result<ScheduledEvent, ProviderError> {
        let url = resolve(&self.base_url, event_uri, Resource::ScheduledEvent)?;
        self.get(url).await
    }

    /// Checks the API token with `GET /users/me`, the one read every token may make. `Ok`
    /// means Calendly accepted it; [`ErrorKind::CredentialRejected`] means it refused it (401,
    /// 403); any other error says nothing about it.
    #[tracing::instrument(skip_all, fields(provider = "calendly"))]
    pub async fn verify_credentials(&self) -> Result<(), ProviderError> {
        let url = endpoint(Provider::Calendly, &self.base_url, &["users", "me"])?;
        self.get::<serde::de::IgnoredAny>(url).await.map(|_| ())
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, url: Url) -> Result<T, ProviderError> {
        self.resilient
            .call(&self.destination, |_attempt| async {
                let http = self
                    .http
                    .get(url.clone())
                    .bearer_auth(self.api_token.expose());
                let answer = exchange(Provider::Calendly, http, Effect::Read).await?;
                if !answer.is_success() {
                    return Err(error_from_answer(&answer));
                }
                serde_json::from_slice::<Wrapped<T>>(&answer.body)
                    .map(|wrapped| wrapped.resource)
                    .map_err(|_| {
                        ProviderError::new(
                            Provider::Calendly,
                            ErrorKind::InvalidResponse,
                            "unreadable resource",
                        )
                        .with_http_status(answer.status)
                    })
            })
            .await
            .map_err(|error| ProviderError::from_call(Provider::Calendly, error))
    }
}

/// The generic status reading, named with Calendly's `title` (a fixed phrase such as
/// "Resource Not Found"; its `message` can quote the request and is dropped).
fn error_from_answer(answer: &Answer) -> ProviderError {
    let generic = status_error(Provider::Calendly, answer, Effect::Read);
    let title = serde_json::from_slice::<CalendlyErrorBody>(&answer.body)
        .ok()
        .and_then(|body| body.title)
        .filter(|title| {
            title.len() <= 60 && title.chars().all(|c| c.is_ascii_alphabetic() || c == ' ')
        });
    match title {
        Some(title) => ProviderError::new(
            Provider::Calendly,
            generic.kind(),
            format!("calendly: {title} (http {})", answer.status),
        )
        .with_http_status(answer.status)
        .with_provider_code(title)
        .with_retry_after(generic.retry_after()),
        None => generic,
    }
}
