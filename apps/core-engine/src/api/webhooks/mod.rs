//! Provider webhooks (DESIGN.md "Provider webhooks"): one URL per tenant and provider, where
//! Calendly, Twilio and Stripe tell ARO what happened on their side.
//!
//! Every endpoint follows the same order, and the order is the security argument:
//! 1. the provider must be configured (else 503 `PROVIDER_NOT_CONFIGURED`: the sender retries
//!    once the operator has configured it);
//! 2. the provider's signature is checked over the raw bytes received, before anything is read
//!    or done (401 `INVALID_SIGNATURE`, or `STALE_SIGNATURE` for a genuine but mistimed one);
//! 3. only then is the payload parsed (400/422 naming the field, never quoting it) and the
//!    tenant looked up (404);
//! 4. the provider's event identity is recorded as a receipt in the same transaction as the
//!    effect, so a redelivery — even five at once — acts once and is answered 200;
//! 5. the answer is immediate: anything slow (a Calendly look-up) becomes an execution.
//!
//! Nothing from a body (names, numbers, texts) is logged: only ids, event names and outcomes.

pub mod calendly;
pub mod stripe;
pub mod twilio;

use super::engine_error::api_error;
use crate::AppState;
use aro_config::Secret;
use aro_domain::ids::TenantId;
use aro_http::ApiError;
use aro_integrations::PayloadError;
use aro_security::signatures::SignatureError;
use aro_workflow::bookings::Outcome;
use aro_workflow::{Ctx, EngineResult};
use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use futures::future::BoxFuture;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/webhooks/calendly/{tenant_id}", post(calendly::receive))
        .route(
            "/v1/webhooks/twilio/{tenant_id}/inbound",
            post(twilio::receive_inbound),
        )
        .route(
            "/v1/webhooks/twilio/{tenant_id}/status",
            post(twilio::receive_status),
        )
        .route("/v1/webhooks/stripe/{tenant_id}", post(stripe::receive))
}

/// The providers that call us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Calendly,
    Twilio,
    Stripe,
}

impl Provider {
    /// The provider's name in receipts, logs, metrics and the configuration (`[providers.…]`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Calendly => "calendly",
            Self::Twilio => "twilio",
            Self::Stripe => "stripe",
        }
    }

    /// Who acted, in events and the audit trail.
    pub fn actor(self) -> String {
        format!("provider:{}", self.as_str())
    }

    /// The same provider among those a tenant can bring its own credentials for.
    pub fn credentials(self) -> aro_domain::credentials::CredentialProvider {
        use aro_domain::credentials::CredentialProvider;
        match self {
            Self::Calendly => CredentialProvider::Calendly,
            Self::Twilio => CredentialProvider::Twilio,
            Self::Stripe => CredentialProvider::Stripe,
        }
    }
}

/// The secret a provider signs this tenant's webhooks with: the tenant's own when it has
/// credentials of its own for the provider (Stripe gives every endpoint its own signing secret;
/// a tenant's own Twilio account signs with its own auth token), else the installation's
/// `[providers.*]` secret. An unknown tenant gets the installation's secret too, so an unsigned
/// caller still learns nothing about which tenants exist (it gets 401 either way).
pub async fn signing_secret(
    state: &AppState,
    tenant: &TenantId,
    provider: Provider,
) -> Result<Secret, ApiError> {
    let own = super::tenant_credentials::webhook_secret(state, tenant, provider.credentials())
        .await?
        .filter(|s| !s.trim().is_empty());
    if let Some(own) = own {
        return Ok(Secret::new(own));
    }
    let providers = &state.config.providers;
    let secret = match provider {
        Provider::Calendly => providers
            .calendly
            .as_ref()
            .map(|c| c.webhook_signing_key.clone()),
        Provider::Twilio => providers.twilio.as_ref().map(|c| c.auth_token.clone()),
        Provider::Stripe => providers.stripe.as_ref().map(|c| c.webhook_secret.clone()),
    };
    secret
        .filter(|s| !s.expose().trim().is_empty())
        .ok_or_else(|| not_configured(provider))
}

fn not_configured(provider: Provider) -> ApiError {
    ApiError::unavailable(
        "PROVIDER_NOT_CONFIGURED",
        format!(
            "{} webhooks are not configured on this installation",
            provider.as_str()
        ),
    )
    .with_details(json!({"provider": provider.as_str()}))
}

/// The tenant named in the path. A malformed id cannot name a tenant: 404 like an unknown one.
pub fn tenant_from_path(raw: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(raw).map_err(|_| ApiError::not_found("tenant"))
}

/// The raw body, exactly as received (signatures are over these bytes), within the service's
/// body limit.
pub async fn raw_body(request: Request) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, &())
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PAYLOAD_TOO_LARGE",
                    "the request body is too large",
                )
            } else {
                ApiError::bad_request("BAD_REQUEST", "the request body could not be read")
            }
        })
}

/// A header's text for a signature check: `None` when absent; a value that is not visible
/// ASCII cannot be a signature and is refused as malformed.
pub fn header_text<'h>(
    headers: &'h HeaderMap,
    name: &str,
) -> Result<Option<&'h str>, SignatureError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(Some)
            .map_err(|_| SignatureError::Malformed("header is not ASCII")),
    }
}

/// A refused signature as the sender sees it (no `WWW-Authenticate`: this is not bearer auth).
pub fn signature_error(provider: Provider, tenant: &TenantId, e: SignatureError) -> ApiError {
    if let SignatureError::InvalidSecret(why) = e {
        tracing::error!(
            provider = provider.as_str(),
            reason = why,
            "the configured webhook secret is unusable"
        );
        return not_configured(provider);
    }
    let code = if e.is_timing() {
        "STALE_SIGNATURE"
    } else {
        "INVALID_SIGNATURE"
    };
    tracing::warn!(provider = provider.as_str(), tenant = %tenant, code, reason = %e, "webhook signature refused");
    metrics::counter!("aro_webhooks_refused_total", "service" => crate::SERVICE, "provider" => provider.as_str(), "code" => code)
        .increment(1);
    ApiError::new(StatusCode::UNAUTHORIZED, code, e.to_string())
}

/// A verified payload that cannot be read: the parser names the field, never its value.
pub fn payload_error(provider: Provider, tenant: &TenantId, e: PayloadError) -> ApiError {
    tracing::warn!(provider = provider.as_str(), tenant = %tenant, reason = %e, "webhook payload refused");
    match e {
        PayloadError::Malformed(_) => ApiError::bad_request("MALFORMED_PAYLOAD", e.to_string()),
        PayloadError::MissingField(field) | PayloadError::InvalidField(field) => {
            ApiError::validation(field, e.to_string())
        }
    }
}

/// What became of one delivery, for the log and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Acted on (an aggregate changed, or work was queued).
    Applied(String),
    /// Seen before: answered 200, nothing done.
    Duplicate,
    /// Genuine and recorded, but nothing to do (`unknown_appointment`, `reschedule_cancel_half`…).
    Unchanged(&'static str),
    /// An event type ARO does not act on.
    Ignored,
}

impl Handled {
    fn label(&self) -> &'static str {
        match self {
            Self::Applied(_) => "applied",
            Self::Duplicate => "duplicate",
            Self::Unchanged(_) => "unchanged",
            Self::Ignored => "ignored",
        }
    }
}

impl From<Outcome> for Handled {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Applied(aggregate) => {
                Self::Applied(format!("{}:{}", aggregate.kind, aggregate.id))
            }
            Outcome::Unchanged(why) => Self::Unchanged(why),
        }
    }
}

/// Runs one webhook's effect in one engine transaction, after recording its receipt there:
/// a duplicate receipt ends the transaction at once with [`Handled::Duplicate`]. An unknown
/// tenant is 404; an engine refusal is its usual envelope (the receipt is rolled back with the
/// effect, so a corrected installation can process the provider's retry).
pub async fn apply<F>(
    state: &AppState,
    provider: Provider,
    tenant: &TenantId,
    receipt_key: String,
    effect: F,
) -> Result<Handled, ApiError>
where
    F: for<'a, 'b> FnOnce(&'a mut Ctx<'b, '_>) -> BoxFuture<'a, EngineResult<Handled>>
        + Send
        + 'static,
{
    let correlation = uuid::Uuid::now_v7().to_string();
    let handled = state
        .engine
        .with_ctx(
            tenant.as_str(),
            &correlation,
            &provider.actor(),
            move |ctx| {
                Box::pin(async move {
                    if !aro_workflow::bookings::first_receipt(ctx, provider.as_str(), &receipt_key)
                        .await?
                    {
                        return Ok(Handled::Duplicate);
                    }
                    effect(ctx).await
                })
            },
        )
        .await
        .map_err(api_error)?;
    log(provider, tenant, &handled, Some(&correlation));
    if matches!(handled, Handled::Applied(_) | Handled::Unchanged(_)) {
        state.events_appended.notify_waiters();
        state.work_available.notify_waiters();
    }
    Ok(handled)
}

/// Answers 404 for an unknown tenant on paths that do nothing (ignored event types), so every
/// endpoint tells the same story about a tenant whatever the event.
pub async fn ensure_tenant(state: &AppState, tenant: &TenantId) -> Result<(), ApiError> {
    let id = tenant.to_string();
    let found = state
        .store
        .read(move |tx| Box::pin(async move { tx.get_tenant(&id).await }))
        .await
        .map_err(|e| api_error(e.into()))?;
    if found.is_none() {
        return Err(ApiError::not_found("tenant"));
    }
    Ok(())
}

/// Logs and counts a delivery's outcome (ids and labels only).
pub fn log(provider: Provider, tenant: &TenantId, handled: &Handled, correlation: Option<&str>) {
    let outcome = handled.label();
    match handled {
        Handled::Applied(aggregate) => {
            tracing::info!(provider = provider.as_str(), tenant = %tenant, outcome, aggregate = %aggregate, correlation, "webhook applied")
        }
        Handled::Unchanged(why) => {
            tracing::info!(provider = provider.as_str(), tenant = %tenant, outcome, reason = why, correlation, "webhook recorded; nothing to change")
        }
        Handled::Duplicate | Handled::Ignored => {
            tracing::debug!(provider = provider.as_str(), tenant = %tenant, outcome, "webhook acknowledged")
        }
    }
    metrics::counter!("aro_webhooks_total", "service" => crate::SERVICE, "provider" => provider.as_str(), "outcome" => outcome)
        .increment(1);
}

/// Calendly's and Stripe's answer: 200 `{"received": true}` (duplicates and ignored events
/// too: the provider must stop retrying).
pub fn received() -> Response {
    axum::Json(json!({"received": true})).into_response()
}

/// Twilio's answer: empty TwiML, so Twilio sends nothing back on ARO's behalf.
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

pub fn empty_twiml() -> Response {
    ([(CONTENT_TYPE, "text/xml")], EMPTY_TWIML).into_response()
}
