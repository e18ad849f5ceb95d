//! What the clinic's providers report, applied to the visit: a booking made, cancelled or
//! marked a no-show at the booking provider (Calendly today), a booking whose details must be
//! looked up first, and a deposit paid through one of our payment links (Stripe).
//!
//! These are facts that happened elsewhere, so they are applied tolerantly: a cancellation of
//! a visit ARO never heard of, or of one already settled, changes nothing and is not an error;
//! an optional detail that does not validate (an odd email address) is dropped rather than
//! refusing the visit. Each function runs inside the caller's transaction, after the caller
//! has recorded the provider's event identity with [`first_receipt`] in that same transaction,
//! so a redelivered webhook never acts twice.

use crate::commands::appointments::{self, UpsertPayload};
use crate::ctx::Ctx;
use crate::envelope::{AggregateInput, CommandEnvelope};
use crate::error::EngineResult;
use crate::executions::NewExecution;
use crate::timers::{self, TimerKind};
use aro_domain::EventType;
use aro_domain::appointment::{Appointment, AppointmentStatus, check_outcome_correction};
use aro_domain::values::{Email, Language, Zone};
use aro_store::AggregateRef;
use serde_json::{Value, json};

/// The execution type that looks a booking up at the provider.
pub const FETCH_INVITEE: &str = "booking.fetch_invitee";
/// Attempts of a look-up before it is dead-lettered.
pub const FETCH_MAX_ATTEMPTS: i64 = 6;

/// What a provider's report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The report changed this aggregate.
    Applied(AggregateRef),
    /// Nothing to do, and why (for the log): `unknown_appointment`, `already_cancelled`, …
    Unchanged(&'static str),
}

/// Records a provider's event identity (`provider` + `key`) in the caller's transaction.
/// False when it was recorded before: the delivery is a duplicate and must change nothing.
/// Concurrent deliveries serialise on the receipt's unique key, so exactly one sees true.
pub async fn first_receipt(ctx: &mut Ctx<'_, '_>, provider: &str, key: &str) -> EngineResult<bool> {
    let tenant = ctx.tenant_id().to_owned();
    Ok(ctx
        .tx
        .raw()
        .insert_webhook_receipt(&tenant, provider, key, ctx.real_now)
        .await?)
}

/// Most a patient's name may hold (the booking validation's limit).
const MAX_NAME_CHARS: usize = 200;
const MAX_URL_LEN: usize = 2048;

fn usable_url(url: Option<String>) -> Option<String> {
    url.filter(|u| {
        (u.starts_with("https://") || u.starts_with("http://")) && u.len() <= MAX_URL_LEN
    })
}

/// Keeps what validates of a provider's optional details, so one odd field does not lose the
/// visit. Required parts (identity, times) are left for the booking validation to judge.
fn tolerant(mut p: UpsertPayload) -> UpsertPayload {
    let customer = &mut p.customer;
    customer.name = customer
        .name
        .take()
        .map(|n| n.trim().chars().take(MAX_NAME_CHARS).collect::<String>())
        .filter(|n| !n.is_empty());
    customer.email = customer
        .email
        .take()
        .filter(|e| Email::parse(e.trim()).is_ok());
    customer.timezone = customer
        .timezone
        .take()
        .filter(|z| Zone::parse(z.trim()).is_ok());
    customer.language = customer
        .language
        .take()
        .filter(|l| Language::parse(l.trim()).is_ok());
    p.cancel_url = usable_url(p.cancel_url.take());
    p.reschedule_url = usable_url(p.reschedule_url.take());
    p
}

/// A booking made (or moved, with `previous_external_id`) at the provider: the same
/// `appointment.upsert` staff and integrators use, after dropping optional details that do not
/// validate. The phone number goes in as typed; the upsert reads it with the tenant's region
/// and flags a visit without a text-capable number (`needsContact`, no reminders).
///
/// A move away from a visit that is already settled (a no-show rebooking through the
/// reschedule link of its recovery text, a completed or cancelled visit) books a new visit
/// under the new identity, as any booking, and leaves the settled one as it was (ADR 0012).
/// Either way the outcome is keyed by the new identity, so a repeat changes nothing, and the
/// other half of the provider's pair (the old identity cancelled as rescheduled) is left alone
/// by the caller, so the order the two arrive in does not matter.
pub async fn upsert_from_provider(
    ctx: &mut Ctx<'_, '_>,
    payload: UpsertPayload,
) -> EngineResult<AggregateRef> {
    appointments::upsert(ctx, tolerant(payload)).await
}

async fn find(
    ctx: &mut Ctx<'_, '_>,
    source: &str,
    external_id: &str,
) -> EngineResult<Option<Appointment>> {
    let tenant = ctx.tenant_id().to_owned();
    Ok(ctx
        .tx
        .appointment_by_external(&tenant, source, external_id)
        .await?)
}

fn envelope(
    ctx: &Ctx<'_, '_>,
    command_type: &str,
    a: &Appointment,
    payload: Value,
) -> CommandEnvelope {
    CommandEnvelope {
        command_id: None,
        command_type: command_type.to_owned(),
        tenant_id: ctx.tenant_id().to_owned(),
        profile: ctx.profile.clone(),
        aggregate: AggregateInput {
            kind: "appointment".into(),
            id: Some(a.id.to_string()),
        },
        payload,
        metadata: Value::Null,
    }
}

/// The booking was cancelled at the provider (not the cancel half of a reschedule, which the
/// caller leaves alone): `appointment.cancel`, acted by the context's actor. `canceler` is the
/// provider's word for who cancelled (`invitee`, `host`); any free-text reason stays out, since
/// patients write it.
pub async fn cancel_from_provider(
    ctx: &mut Ctx<'_, '_>,
    source: &str,
    external_id: &str,
    canceler: Option<&str>,
) -> EngineResult<Outcome> {
    let Some(a) = find(ctx, source, external_id).await? else {
        return Ok(Outcome::Unchanged("unknown_appointment"));
    };
    if a.status == AppointmentStatus::Cancelled {
        return Ok(Outcome::Unchanged("already_cancelled"));
    }
    if a.status.transition(AppointmentStatus::Cancelled).is_err() {
        return Ok(Outcome::Unchanged("visit_settled"));
    }
    let by = canceler.filter(|c| matches!(*c, "invitee" | "host"));
    let note = by.map(|by| format!("cancelled at {source} by the {by}"));
    let command = envelope(
        ctx,
        "appointment.cancel",
        &a,
        json!({"reason": "provider_cancelled", "note": note}),
    );
    Ok(Outcome::Applied(appointments::cancel(ctx, &command).await?))
}

/// The provider marked the booking a no-show: `appointment.mark_no_show` of the appointment
/// whose identity (or a former identity) is `external_id`. A completed visit is corrected only
/// within the tenant's correction window, as a staff correction would be.
pub async fn no_show_from_provider(
    ctx: &mut Ctx<'_, '_>,
    source: &str,
    external_id: &str,
) -> EngineResult<Outcome> {
    let Some(a) = find(ctx, source, external_id).await? else {
        return Ok(Outcome::Unchanged("unknown_appointment"));
    };
    if a.status == AppointmentStatus::NoShow {
        return Ok(Outcome::Unchanged("already_no_show"));
    }
    let allowed = if a.status.is_outcome() {
        check_outcome_correction(
            a.status,
            AppointmentStatus::NoShow,
            a.ends_at,
            ctx.now,
            ctx.tenant.config.policies.correction_window_hours,
        )
        .is_ok()
    } else {
        a.status.transition(AppointmentStatus::NoShow).is_ok()
    };
    if !allowed {
        return Ok(Outcome::Unchanged("visit_settled"));
    }
    let command = envelope(
        ctx,
        "appointment.mark_no_show",
        &a,
        json!({"reason": "provider_no_show"}),
    );
    Ok(Outcome::Applied(
        appointments::mark_no_show(ctx, &command).await?,
    ))
}

/// The webhook lacked details a visit needs: queue a `booking.fetch_invitee` look-up (the
/// executor calls the provider's API; nothing slow happens inside a webhook request). Payload:
/// `{"inviteeUri", "eventUri"}` (`eventUri` null when the webhook did not name it). Its result
/// is applied by [`appointments::apply_fetched_booking`]: `output.booking` is an
/// `appointment.upsert` payload, or absent/null when there is nothing to book (the invitee was
/// cancelled meanwhile). Returns the execution id.
pub async fn request_invitee_fetch(
    ctx: &mut Ctx<'_, '_>,
    invitee_uri: &str,
    event_uri: Option<&str>,
) -> EngineResult<String> {
    let id = aro_store::ids::new_id(aro_domain::ids::prefix::EXECUTION);
    crate::executions::enqueue(
        ctx,
        NewExecution {
            id: id.clone(),
            command_type: FETCH_INVITEE,
            subject_id: None,
            payload: json!({"inviteeUri": invitee_uri, "eventUri": event_uri}),
            not_after: None,
            aggregate_id: None,
            max_attempts: FETCH_MAX_ATTEMPTS,
        },
    )
    .await?;
    Ok(id)
}

/// A completed checkout of one of our payment links, as the payment provider reports it.
#[derive(Debug, Clone)]
pub struct DepositPayment<'a> {
    /// The provider's id of the payment link (Stripe's `plink_…`), what the link is matched by.
    pub payment_link_ref: &'a str,
    /// The provider's id of the payment itself (Stripe's Checkout Session `cs_…`).
    pub provider_ref: &'a str,
    pub amount_minor: Option<i64>,
    pub currency: Option<&'a str>,
    /// Our own link id from the link's metadata: used only when no link carries
    /// `payment_link_ref` yet (the link was created but its creation was never reported).
    pub link_id_hint: Option<&'a str>,
}

/// The patient paid a deposit link: the link becomes `paid`, `payment.completed` is emitted,
/// and the nudge and staff alert about the unpaid deposit are called off.
pub async fn record_deposit_paid(
    ctx: &mut Ctx<'_, '_>,
    payment: DepositPayment<'_>,
) -> EngineResult<Outcome> {
    let tenant = ctx.tenant_id().to_owned();
    let mut link = ctx
        .tx
        .raw()
        .payment_link_by_provider_ref(&tenant, payment.payment_link_ref)
        .await?;
    if link.is_none()
        && let Some(hint) = payment.link_id_hint
    {
        link = ctx
            .tx
            .raw()
            .get_payment_link(&tenant, hint)
            .await?
            .filter(|l| l.provider_ref.is_none());
    }
    let Some(mut link) = link else {
        return Ok(Outcome::Unchanged("unknown_payment_link"));
    };
    if link.status == "paid" {
        return Ok(Outcome::Unchanged("already_paid"));
    }
    link.status = "paid".into();
    link.paid_at = Some(ctx.now);
    if link.provider_ref.is_none() {
        link.provider_ref = Some(payment.payment_link_ref.to_owned());
    }
    ctx.tx.raw().update_payment_link(&link).await?;
    let amount_minor = payment.amount_minor.unwrap_or(link.amount_minor);
    let currency = payment
        .currency
        .map(str::to_ascii_uppercase)
        .unwrap_or_else(|| link.currency.clone());
    let aggregate = match &link.appointment_id {
        Some(a) => AggregateRef::new("appointment", a),
        None => AggregateRef::new("payment_link", &link.id),
    };
    ctx.emit(
        EventType::PaymentCompleted,
        aggregate.clone(),
        json!({"paymentLinkId": link.id, "providerRef": payment.provider_ref,
               "amountMinor": amount_minor, "currency": currency,
               "appointmentId": link.appointment_id}),
        None,
    );
    if let Some(appointment_id) = &link.appointment_id {
        timers::cancel(
            ctx,
            appointment_id,
            &[TimerKind::DepositNudge, TimerKind::DepositAlert],
        )
        .await?;
    }
    Ok(Outcome::Applied(aggregate))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::appointments::CustomerInput;
    use chrono::{TimeZone, Utc};

    fn booking() -> UpsertPayload {
        let starts = Utc.with_ymd_and_hms(2030, 3, 20, 15, 0, 0).unwrap();
        UpsertPayload {
            source: "calendly".into(),
            external_id: "https://api.calendly.com/scheduled_events/E/invitees/I".into(),
            customer: CustomerInput {
                name: Some(format!("  {}  ", "a".repeat(300))),
                phone: Some("call me".into()),
                email: Some("not an email".into()),
                timezone: Some("Mars/Olympus_Mons".into()),
                language: Some("en".into()),
            },
            starts_at: starts,
            ends_at: starts + chrono::Duration::minutes(30),
            service_type: Some("Checkup".into()),
            price_minor: None,
            currency: None,
            cancel_url: Some("javascript:alert(1)".into()),
            reschedule_url: Some("https://calendly.com/reschedulings/I".into()),
            channel: None,
            previous_external_id: None,
        }
    }

    #[test]
    fn a_providers_optional_details_that_do_not_validate_are_dropped_not_fatal() {
        let p = tolerant(booking());
        assert_eq!(
            p.customer.name.as_deref().map(str::len),
            Some(MAX_NAME_CHARS)
        );
        assert_eq!(p.customer.email, None);
        assert_eq!(p.customer.timezone, None);
        assert_eq!(p.customer.language.as_deref(), Some("en"));
        // The number stays as typed: the booking validation reads it and flags the visit.
        assert_eq!(p.customer.phone.as_deref(), Some("call me"));
        assert_eq!(p.cancel_url, None);
        assert!(p.reschedule_url.is_some());
    }

    #[test]
    fn good_details_pass_unchanged() {
        let mut b = booking();
        b.customer.name = Some("Rosa Diaz".into());
        b.customer.email = Some("rosa@example.org".into());
        b.customer.timezone = Some("America/New_York".into());
        let p = tolerant(b);
        assert_eq!(p.customer.name.as_deref(), Some("Rosa Diaz"));
        assert_eq!(p.customer.email.as_deref(), Some("rosa@example.org"));
        assert_eq!(p.customer.timezone.as_deref(), Some("America/New_York"));
    }
}
