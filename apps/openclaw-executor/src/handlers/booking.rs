//! `booking.fetch_invitee`: a Calendly webhook arrived without everything core needs (older
//! subscriptions carry only URIs), so the booking is read through the API here, never inside
//! the webhook request, and handed back as the `appointment.upsert` payload core applies
//! (`{"booking": null}` when the invitee was cancelled meanwhile: nothing to book).
//!
//! `booking.request_reschedule_link`: no provider offers an API for a fresh reschedule link;
//! the booking's own link (Calendly's `reschedule_url`, stored with the appointment) is the
//! answer when core gives it. Without one the request is refused as `NOT_SUPPORTED`.

use aro_integrations::Provider;
use aro_integrations::calendly::{Booking, normalise};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{not_configured, payload};
use crate::core::ClaimedExecution;
use crate::outcome::{ExecutionFailure, Outcome};
use crate::providers::Providers;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FetchInvitee {
    invitee_uri: String,
    #[serde(default)]
    event_uri: Option<String>,
}

/// The `appointment.upsert` payload for a booking (core's `UpsertPayload`). The phone number
/// stays as typed: core reads it in the tenant's region.
pub(super) fn upsert_payload(booking: &Booking) -> Value {
    let mut payload = json!({
        "source": "calendly",
        "externalId": booking.external_id,
        "customer": {
            "name": booking.name,
            "phone": booking.phone_raw,
            "email": booking.email,
            "timezone": booking.timezone,
            "language": booking.language,
        },
        "startsAt": booking.starts_at,
        "endsAt": booking.ends_at,
        "serviceType": booking.event_type_name,
        "cancelUrl": booking.cancel_url,
        "rescheduleUrl": booking.reschedule_url,
    });
    if let (Some(previous), Some(object)) = (&booking.old_external_id, payload.as_object_mut()) {
        object.insert("previousExternalId".into(), json!(previous));
    }
    payload
}

pub(super) async fn fetch_invitee(
    providers: &Providers,
    execution: &ClaimedExecution,
) -> Result<Outcome, ExecutionFailure> {
    let p: FetchInvitee = payload(execution)?;
    let (calendly, owner) = providers
        .calendly_for(&execution.tenant_id)
        .await?
        .ok_or_else(|| not_configured("providers.calendly"))?;
    let _slot = providers.slot(Provider::Calendly).await;
    let invitee = calendly.get_invitee(&p.invitee_uri).await;
    providers.observe_as(Provider::Calendly, &owner, &invitee);
    let invitee = invitee.map_err(|error| ExecutionFailure::from_provider(&error))?;
    if invitee.status.as_deref() == Some("canceled") {
        // Cancelled (or rescheduled away) while the look-up waited: nothing to book.
        tracing::info!(execution = %execution.execution_id, "invitee cancelled meanwhile");
        return Ok(Outcome::Succeeded {
            provider_ref: Some(invitee.uri.clone()),
            output: json!({"booking": null}),
        });
    }
    let event_uri = p
        .event_uri
        .filter(|u| !u.is_empty())
        .or_else(|| invitee.event.clone());
    let event = match event_uri {
        Some(uri) => {
            let event = calendly.get_event(&uri).await;
            providers.observe_as(Provider::Calendly, &owner, &event);
            Some(event.map_err(|error| ExecutionFailure::from_provider(&error))?)
        }
        None => None,
    };
    let booking = normalise(&invitee, event.as_ref()).map_err(|missing| {
        ExecutionFailure::permanent("BOOKING_INCOMPLETE", missing.to_string())
    })?;
    tracing::info!(
        execution = %execution.execution_id,
        has_phone = booking.phone_raw.is_some(),
        credentials = owner.label(),
        "booking read from Calendly"
    );
    Ok(Outcome::Succeeded {
        provider_ref: Some(booking.external_id.clone()),
        output: json!({"booking": upsert_payload(&booking)}),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RescheduleLink {
    #[serde(default)]
    reschedule_url: Option<String>,
}

pub(super) fn reschedule_link(execution: &ClaimedExecution) -> Result<Outcome, ExecutionFailure> {
    let p: RescheduleLink = payload(execution)?;
    let url = p
        .reschedule_url
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .ok_or_else(|| {
            ExecutionFailure::permanent(
                "NOT_SUPPORTED",
                "no reschedule link for this booking, and no provider API makes one",
            )
        })?;
    Ok(Outcome::Succeeded {
        provider_ref: None,
        output: json!({"url": url}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn booking(old: Option<&str>) -> Booking {
        Booking {
            external_id: "https://api.calendly.com/scheduled_events/E/invitees/I".into(),
            event_uri: "https://api.calendly.com/scheduled_events/E".into(),
            name: "Ada Lovelace".into(),
            email: None,
            phone_raw: Some("(415) 555-2671".into()),
            timezone: Some("America/Los_Angeles".into()),
            language: Some("en".into()),
            starts_at: Utc.with_ymd_and_hms(2030, 3, 15, 14, 0, 0).unwrap(),
            ends_at: Utc.with_ymd_and_hms(2030, 3, 15, 14, 30, 0).unwrap(),
            event_type_name: Some("Checkup".into()),
            event_type_uri: None,
            cancel_url: Some("https://calendly.com/cancellations/I".into()),
            reschedule_url: Some("https://calendly.com/reschedulings/I".into()),
            old_external_id: old.map(str::to_owned),
        }
    }

    #[test]
    fn a_booking_becomes_cores_upsert_payload() {
        let payload = upsert_payload(&booking(None));
        assert_eq!(payload["source"], "calendly");
        assert_eq!(payload["customer"]["phone"], "(415) 555-2671");
        assert_eq!(payload["startsAt"], "2030-03-15T14:00:00Z");
        assert_eq!(payload["serviceType"], "Checkup");
        assert!(payload.get("previousExternalId").is_none());
        let rescheduled = upsert_payload(&booking(Some("https://api.calendly.com/x/invitees/OLD")));
        assert_eq!(
            rescheduled["previousExternalId"],
            "https://api.calendly.com/x/invitees/OLD"
        );
    }

    fn claimed(payload: Value) -> ClaimedExecution {
        serde_json::from_value(json!({
            "executionId": "exe_1", "tenantId": "t", "correlationId": "c",
            "commandType": "booking.request_reschedule_link", "payload": payload, "attempt": 1,
            "leaseUntil": "2030-01-01T00:00:00Z"
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_reschedule_link_is_the_bookings_own_or_not_supported() {
        let found = reschedule_link(&claimed(json!({"rescheduleUrl": "https://x.example/r/1"})));
        assert_eq!(
            found.ok(),
            Some(Outcome::Succeeded {
                provider_ref: None,
                output: json!({"url": "https://x.example/r/1"})
            })
        );
        let missing = reschedule_link(&claimed(json!({"appointmentId": "apt_1"})));
        assert_eq!(
            missing.err().map(|f| f.code),
            Some("NOT_SUPPORTED".to_owned())
        );
    }
}
