//! What happens on Calendly's booking page, and the webhooks it sends for it:
//! - a booking: `invitee.created`;
//! - a cancellation: `invitee.canceled` (status `canceled`, with `cancellation`);
//! - a reschedule: Calendly cancels the old invitee (`rescheduled: true`, `new_invitee`) and
//!   creates a new invitee on a new scheduled event (`old_invitee`), sending
//!   `invitee.canceled` then `invitee.created`;
//! - a no-show mark: `invitee_no_show.created`, whose payload is the invitee with `no_show`.
//!
//! Each payload is the Invitee resource plus the `scheduled_event` it belongs to (as Calendly's
//! webhook payloads carry it), inside `{"event", "created_at", "created_by", "payload"}`.

use super::{
    Booking, Cancellation, Invitee, ScheduledEvent, Status, Uris, calendly_time, event_json,
    invitee_json,
};
use crate::ids;
use crate::outbound::{Payload, Webhook};
use crate::settings::join;
use crate::state::{Sandbox, State};
use aro_http::ApiError;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

/// A booking as made on the booking page.
#[derive(Debug, Clone)]
pub(crate) struct NewBooking {
    pub tenant_id: String,
    pub name: String,
    pub phone: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub duration: Duration,
    pub event_type: String,
    pub timezone: Option<String>,
    pub language: Option<String>,
    pub email: Option<String>,
}

/// Where a booking stands after a change.
#[derive(Debug, Clone)]
pub(crate) struct BookingRef {
    pub id: String,
    pub tenant_id: String,
    pub invitee_uri: String,
    pub event_uri: String,
    /// For a reschedule: the invitee that was replaced.
    pub previous_invitee_uri: Option<String>,
}

/// Calendly stores the number as the invitee typed it; for North American numbers that is
/// `+1 415-555-2671`. Other numbers are kept as given.
fn as_typed(phone: &str) -> String {
    let phone = phone.trim();
    match phone.strip_prefix("+1") {
        Some(digits) if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) => {
            format!("+1 {}-{}-{}", &digits[..3], &digits[3..6], &digits[6..])
        }
        _ => phone.to_owned(),
    }
}

fn webhook(
    sandbox: &Sandbox,
    state: &State,
    kind: &'static str,
    tenant: &str,
    invitee: &Invitee,
) -> Result<Webhook, ApiError> {
    let uris = Uris::new(&sandbox.settings().self_url);
    let event = state
        .calendly
        .events
        .get(&invitee.event_uuid)
        .ok_or_else(|| ApiError::internal("a booking's scheduled event was forgotten"))?;
    let mut payload = invitee_json(invitee, &uris);
    payload["scheduled_event"] = event_json(event, &uris);
    payload["canceled"] = json!(invitee.status == Status::Canceled);
    let body = json!({
        "event": kind,
        "created_at": calendly_time(Utc::now()),
        "created_by": uris.user(&event.host),
        "payload": payload,
    });
    // Signed with the key of the user the booking belongs to (the configured one for its own
    // bookings, and for those of a user removed since).
    let secret = state
        .calendly
        .added_signing_key(&event.host)
        .unwrap_or_else(|| sandbox.settings().calendly.webhook_signing_key.clone());
    Ok(Webhook {
        kind,
        url: join(
            &sandbox.settings().public_base_url,
            &format!("/v1/webhooks/calendly/{tenant}"),
        ),
        payload: Payload::CalendlyJson {
            body: serde_json::to_vec(&body).map_err(ApiError::internal)?,
            secret,
        },
    })
}

fn reference(
    sandbox: &Sandbox,
    id: &str,
    booking: &Booking,
    previous: Option<String>,
) -> BookingRef {
    let uris = Uris::new(&sandbox.settings().self_url);
    BookingRef {
        id: id.to_owned(),
        tenant_id: booking.tenant_id.clone(),
        invitee_uri: uris.invitee(&booking.event_uuid, &booking.invitee_uuid),
        event_uri: uris.event(&booking.event_uuid),
        previous_invitee_uri: previous,
    }
}

fn new_event(
    state: &mut State,
    host: String,
    name: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> String {
    let now = Utc::now();
    let event_type_uuid = state.calendly.event_type_uuid(name);
    let uuid = ids::calendly_uuid();
    state.calendly.events.insert(
        uuid.clone(),
        ScheduledEvent {
            uuid: uuid.clone(),
            host,
            name: name.to_owned(),
            start,
            end,
            event_type_uuid,
            status: Status::Active,
            created: now,
            updated: now,
            cancellation: None,
        },
    );
    uuid
}

/// Books: stores the event and invitee, sends `invitee.created`.
pub(crate) fn create(sandbox: &Sandbox, booking: NewBooking) -> Result<BookingRef, ApiError> {
    let id = ids::booking_id();
    let now = Utc::now();
    let mut state = sandbox.state();
    let host = state.calendly.host_for_tenant(&booking.tenant_id);
    let event_uuid = new_event(
        &mut state,
        host.clone(),
        &booking.event_type,
        booking.starts_at,
        booking.starts_at + booking.duration,
    );
    let invitee = Invitee {
        uuid: ids::calendly_uuid(),
        event_uuid: event_uuid.clone(),
        booking_id: id.clone(),
        name: booking.name,
        email: booking
            .email
            .unwrap_or_else(|| format!("{}@example.org", id.replace('_', "-"))),
        text_reminder_number: booking.phone.as_deref().map(as_typed),
        timezone: booking.timezone,
        language: booking.language,
        status: Status::Active,
        created: now,
        updated: now,
        rescheduled: false,
        old_invitee: None,
        new_invitee: None,
        cancellation: None,
        no_show: None,
    };
    let hook = webhook(
        sandbox,
        &state,
        "invitee.created",
        &booking.tenant_id,
        &invitee,
    )?;
    let record = Booking {
        tenant_id: booking.tenant_id,
        event_uuid,
        invitee_uuid: invitee.uuid.clone(),
    };
    state
        .calendly
        .invitees
        .insert(invitee.uuid.clone(), invitee);
    state.calendly.bookings.insert(id.clone(), record.clone());
    drop(state);
    sandbox.deliver_in_background(vec![hook]);
    tracing::info!(booking = %id, tenant = %record.tenant_id, host = %host, "booking created");
    Ok(reference(sandbox, &id, &record, None))
}

/// The booking and its current invitee, refusing a booking that is no longer active.
fn active<'a>(state: &'a State, id: &str) -> Result<(&'a Booking, &'a Invitee), ApiError> {
    let booking = state
        .calendly
        .bookings
        .get(id)
        .ok_or_else(|| ApiError::not_found("booking"))?;
    let invitee = state
        .calendly
        .invitees
        .get(&booking.invitee_uuid)
        .ok_or_else(|| ApiError::not_found("booking"))?;
    if invitee.status == Status::Canceled {
        return Err(ApiError::conflict(
            "BOOKING_CANCELED",
            "this booking has been canceled",
        ));
    }
    Ok((booking, invitee))
}

/// Marks the current invitee and its event canceled; returns the updated invitee.
fn cancel_current(
    state: &mut State,
    booking: &Booking,
    reason: Option<String>,
    new_invitee: Option<String>,
) -> Result<Invitee, ApiError> {
    let now = Utc::now();
    let invitee = state
        .calendly
        .invitees
        .get_mut(&booking.invitee_uuid)
        .ok_or_else(|| ApiError::not_found("booking"))?;
    let cancellation = Cancellation {
        canceled_by: invitee.name.clone(),
        reason,
        created: now,
    };
    invitee.status = Status::Canceled;
    invitee.updated = now;
    invitee.rescheduled = new_invitee.is_some();
    invitee.new_invitee = new_invitee;
    invitee.cancellation = Some(cancellation.clone());
    let invitee = invitee.clone();
    if let Some(event) = state.calendly.events.get_mut(&booking.event_uuid) {
        event.status = Status::Canceled;
        event.updated = now;
        event.cancellation = Some(cancellation);
    }
    Ok(invitee)
}

/// Cancels: sends `invitee.canceled`.
pub(crate) fn cancel(
    sandbox: &Sandbox,
    id: &str,
    reason: Option<String>,
) -> Result<BookingRef, ApiError> {
    let mut state = sandbox.state();
    let booking = active(&state, id)?.0.clone();
    let invitee = cancel_current(&mut state, &booking, reason, None)?;
    let hook = webhook(
        sandbox,
        &state,
        "invitee.canceled",
        &booking.tenant_id,
        &invitee,
    )?;
    drop(state);
    sandbox.deliver_in_background(vec![hook]);
    Ok(reference(sandbox, id, &booking, None))
}

/// Reschedules to `starts_at` (keeping the duration unless given): cancels the old invitee
/// and creates a new one on a new event, sending `invitee.canceled` then `invitee.created`.
pub(crate) fn reschedule(
    sandbox: &Sandbox,
    id: &str,
    starts_at: DateTime<Utc>,
    duration: Option<Duration>,
) -> Result<BookingRef, ApiError> {
    let uris = Uris::new(&sandbox.settings().self_url);
    let now = Utc::now();
    let mut state = sandbox.state();
    let (booking, old) = active(&state, id)?;
    let (booking, old) = (booking.clone(), old.clone());
    let old_event = state
        .calendly
        .events
        .get(&booking.event_uuid)
        .cloned()
        .ok_or_else(|| ApiError::not_found("booking"))?;
    let duration = duration.unwrap_or(old_event.end - old_event.start);
    // A reschedule stays with the user the booking belongs to.
    let event_uuid = new_event(
        &mut state,
        old_event.host.clone(),
        &old_event.name,
        starts_at,
        starts_at + duration,
    );
    let new_uuid = ids::calendly_uuid();
    let old_uri = uris.invitee(&booking.event_uuid, &booking.invitee_uuid);
    let new_uri = uris.invitee(&event_uuid, &new_uuid);
    let canceled = cancel_current(&mut state, &booking, None, Some(new_uri))?;
    let created = Invitee {
        uuid: new_uuid.clone(),
        event_uuid: event_uuid.clone(),
        status: Status::Active,
        created: now,
        updated: now,
        rescheduled: false,
        old_invitee: Some(old_uri.clone()),
        new_invitee: None,
        cancellation: None,
        no_show: None,
        ..old
    };
    state
        .calendly
        .invitees
        .insert(new_uuid.clone(), created.clone());
    let hooks = vec![
        webhook(
            sandbox,
            &state,
            "invitee.canceled",
            &booking.tenant_id,
            &canceled,
        )?,
        webhook(
            sandbox,
            &state,
            "invitee.created",
            &booking.tenant_id,
            &created,
        )?,
    ];
    let record = Booking {
        tenant_id: booking.tenant_id.clone(),
        event_uuid,
        invitee_uuid: new_uuid,
    };
    state
        .calendly
        .bookings
        .insert(id.to_owned(), record.clone());
    drop(state);
    sandbox.deliver_in_background(hooks);
    Ok(reference(sandbox, id, &record, Some(old_uri)))
}

/// Marks the current invitee a no-show: sends `invitee_no_show.created`.
pub(crate) fn no_show(sandbox: &Sandbox, id: &str) -> Result<BookingRef, ApiError> {
    let mut state = sandbox.state();
    let (booking, invitee) = active(&state, id)?;
    if invitee.no_show.is_some() {
        return Err(ApiError::conflict(
            "ALREADY_NO_SHOW",
            "this booking is already marked as a no-show",
        ));
    }
    let booking = booking.clone();
    let invitee = {
        let invitee = state
            .calendly
            .invitees
            .get_mut(&booking.invitee_uuid)
            .ok_or_else(|| ApiError::not_found("booking"))?;
        let now = Utc::now();
        invitee.no_show = Some((ids::calendly_uuid(), now));
        invitee.updated = now;
        invitee.clone()
    };
    let hook = webhook(
        sandbox,
        &state,
        "invitee_no_show.created",
        &booking.tenant_id,
        &invitee,
    )?;
    drop(state);
    sandbox.deliver_in_background(vec![hook]);
    Ok(reference(sandbox, id, &booking, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn north_american_numbers_are_stored_as_calendly_shows_them() {
        assert_eq!(as_typed("+14155552671"), "+1 415-555-2671");
        assert_eq!(as_typed(" +447700900123 "), "+447700900123");
        assert_eq!(as_typed("(415) 555-2671"), "(415) 555-2671");
    }
}
