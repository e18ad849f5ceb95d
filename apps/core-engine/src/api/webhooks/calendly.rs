//! `POST /v1/webhooks/calendly/{tenantId}`: bookings made, cancelled, moved and missed at
//! Calendly.
//!
//! - `invitee.created` → `appointment.upsert` (source `calendly`, external id = the invitee
//!   URI); the new half of a reschedule carries `old_invitee`, which moves the existing visit —
//!   or, when that visit is already settled (a no-show rebooking through its recovery text's
//!   link, a completed or cancelled visit), books a new visit under the new URI (ADR 0012).
//! - `invitee.canceled` with `rescheduled: true` is the other half of a reschedule: it changes
//!   nothing (its receipt is kept), so the pair becomes one `appointment.rescheduled` (or one
//!   `appointment.booked`) whichever half arrives first and a reschedule is never mistaken for
//!   a cancellation.
//! - `invitee.canceled` otherwise → `appointment.cancel` (nothing when ARO never knew the visit).
//! - `invitee_no_show.created` → `appointment.mark_no_show`.
//! - A booking lacking what a visit needs (older subscriptions send no `scheduled_event`) is
//!   stored only after a `booking.fetch_invitee` look-up, queued here as an execution.
//!
//! Receipts: `{invitee URI}:{event}`; for no-show marks also the mark's own URI (or its time),
//! since staff can mark, unmark and mark the same invitee again.

use super::{
    Handled, Provider, apply, ensure_tenant, header_text, payload_error, raw_body, received,
    signature_error, signing_secret, tenant_from_path,
};
use crate::AppState;
use crate::auth::real_now_unix;
use aro_http::{ApiError, ApiPath};
use aro_integrations::calendly::webhook::{Webhook, WebhookEvent, WebhookPayload};
use aro_integrations::calendly::{Booking, Invitee, normalise};
use aro_security::signatures::calendly as signature;
use aro_workflow::bookings;
use aro_workflow::commands::appointments::{CustomerInput, UpsertPayload};
use axum::extract::{Request, State};
use axum::response::Response;

/// The `source` of every appointment Calendly books.
pub const SOURCE: &str = "calendly";

#[tracing::instrument(skip_all, fields(provider = "calendly"))]
pub async fn receive(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let tenant = tenant_from_path(&tenant)?;
    let secret = signing_secret(&state, &tenant, Provider::Calendly).await?;
    let header = header_text(request.headers(), signature::HEADER)
        .map(|h| h.map(str::to_owned))
        .map_err(|e| signature_error(Provider::Calendly, &tenant, e))?;
    let body = raw_body(request).await?;
    signature::verify(
        secret.expose(),
        &body,
        header.as_deref(),
        real_now_unix(),
        signature::DEFAULT_TOLERANCE_SECS,
    )
    .map_err(|e| signature_error(Provider::Calendly, &tenant, e))?;
    let webhook =
        Webhook::parse(&body).map_err(|e| payload_error(Provider::Calendly, &tenant, e))?;
    let event = webhook.event.as_str().to_owned();
    match (webhook.event, webhook.payload) {
        (WebhookEvent::InviteeCreated, WebhookPayload::Invitee(invitee)) => {
            let key = format!("{}:{event}", invitee.uri);
            match normalise(&invitee, None) {
                Ok(booking) => {
                    let payload = upsert_payload(booking);
                    apply(&state, Provider::Calendly, &tenant, key, move |ctx| {
                        Box::pin(async move {
                            let aggregate = bookings::upsert_from_provider(ctx, payload).await?;
                            Ok(Handled::Applied(format!(
                                "{}:{}",
                                aggregate.kind, aggregate.id
                            )))
                        })
                    })
                    .await?;
                }
                Err(missing) => {
                    tracing::info!(tenant = %tenant, missing = %missing, "calendly booking incomplete; looking it up");
                    let (invitee_uri, event_uri) = fetch_target(&invitee);
                    apply(&state, Provider::Calendly, &tenant, key, move |ctx| {
                        Box::pin(async move {
                            let execution = bookings::request_invitee_fetch(
                                ctx,
                                &invitee_uri,
                                event_uri.as_deref(),
                            )
                            .await?;
                            Ok(Handled::Applied(format!("execution:{execution}")))
                        })
                    })
                    .await?;
                }
            }
        }
        (WebhookEvent::InviteeCanceled, WebhookPayload::Invitee(invitee)) => {
            let key = format!("{}:{event}", invitee.uri);
            if invitee.rescheduled {
                // The cancel half of a reschedule: the created half (with `old_invitee`) moves
                // the visit, whenever it arrives. Keep the receipt; change nothing.
                apply(&state, Provider::Calendly, &tenant, key, |_ctx| {
                    Box::pin(async { Ok(Handled::Unchanged("reschedule_cancel_half")) })
                })
                .await?;
            } else {
                let uri = invitee.uri.clone();
                let canceler = invitee
                    .cancellation
                    .as_ref()
                    .or(invitee
                        .scheduled_event
                        .as_ref()
                        .and_then(|e| e.cancellation.as_ref()))
                    .and_then(|c| c.canceler_type.clone());
                apply(&state, Provider::Calendly, &tenant, key, move |ctx| {
                    Box::pin(async move {
                        let outcome =
                            bookings::cancel_from_provider(ctx, SOURCE, &uri, canceler.as_deref())
                                .await?;
                        Ok(outcome.into())
                    })
                })
                .await?;
            }
        }
        (WebhookEvent::InviteeNoShowCreated, WebhookPayload::NoShow(no_show)) => {
            let mark = no_show
                .uri
                .clone()
                .or_else(|| no_show.created_at.map(|t| t.to_rfc3339()))
                .or_else(|| webhook.created_at.map(|t| t.to_rfc3339()))
                .unwrap_or_default();
            let key = format!("{}:{event}:{mark}", no_show.invitee);
            let invitee = no_show.invitee;
            apply(&state, Provider::Calendly, &tenant, key, move |ctx| {
                Box::pin(async move {
                    Ok(bookings::no_show_from_provider(ctx, SOURCE, &invitee)
                        .await?
                        .into())
                })
            })
            .await?;
        }
        // An unmarked no-show, and events ARO does not subscribe to, are acknowledged. (Staff
        // correct an outcome in ARO itself: a provider's "unmark" is not proof the patient came.)
        _ => {
            ensure_tenant(&state, &tenant).await?;
            super::log(Provider::Calendly, &tenant, &Handled::Ignored, None);
        }
    }
    Ok(received())
}

/// The invitee and its scheduled event, for the look-up: the event's URI from the embedded
/// event, else the invitee's `event`.
fn fetch_target(invitee: &Invitee) -> (String, Option<String>) {
    let event = invitee
        .scheduled_event
        .as_ref()
        .and_then(|e| e.uri.clone())
        .or_else(|| invitee.event.clone())
        .filter(|e| !e.trim().is_empty());
    (invitee.uri.clone(), event)
}

/// A normalised Calendly booking as the `appointment.upsert` payload. The executor's
/// `booking.fetch_invitee` result uses this same shape (`output.booking`).
pub fn upsert_payload(booking: Booking) -> UpsertPayload {
    UpsertPayload {
        source: SOURCE.to_owned(),
        external_id: booking.external_id,
        customer: CustomerInput {
            name: Some(booking.name),
            phone: booking.phone_raw,
            email: booking.email,
            timezone: booking.timezone,
            language: booking.language,
        },
        starts_at: booking.starts_at,
        ends_at: booking.ends_at,
        service_type: booking.event_type_name,
        price_minor: None,
        currency: None,
        cancel_url: booking.cancel_url,
        reschedule_url: booking.reschedule_url,
        channel: None,
        previous_external_id: booking.old_external_id,
    }
}
