//! Appointment commands. `appointment.upsert` is keyed by the provider's booking identity
//! `(tenant, source, externalId)` (and the identities a visit had before a reschedule): a repeat
//! is a no-op, a changed time is a reschedule, other changes are an update. A booking moved at
//! the provider (`previousExternalId`) away from a visit that can no longer be rescheduled — a
//! no-show, a completed or cancelled visit — is a new visit (ADR 0012). Everything else is a
//! transition of DESIGN.md's state machine. ARO itself never issues `appointment.cancel`: only
//! staff and the clinic's booking provider do.

use super::{aggregate_id, parse_payload};
use crate::consent::{self, ConsentStatus};
use crate::ctx::Ctx;
use crate::envelope::CommandEnvelope;
use crate::error::{EngineError, EngineResult};
use crate::executions::ExecutionResult;
use crate::visits;
use aro_domain::EventType;
use aro_domain::appointment::{Appointment, AppointmentStatus};
use aro_domain::customer::{Customer, CustomerDetails};
use aro_domain::message::Channel;
use aro_domain::values::{Currency, Email, Language, Money, Phone, Zone};
use aro_store::AggregateRef;
use aro_store::engine_rows::ExecutionRow;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerInput {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpsertPayload {
    pub source: String,
    pub external_id: String,
    #[serde(default)]
    pub customer: CustomerInput,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[serde(default)]
    pub service_type: Option<String>,
    #[serde(default)]
    pub price_minor: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub cancel_url: Option<String>,
    #[serde(default)]
    pub reschedule_url: Option<String>,
    #[serde(default)]
    pub channel: Option<Channel>,
    /// The identity this booking had before the provider rescheduled it (Calendly's
    /// `old_invitee`): the new identity becomes an alias of the same appointment.
    #[serde(default)]
    pub previous_external_id: Option<String>,
}

fn check_url(field: &str, url: &Option<String>) -> EngineResult<()> {
    match url {
        Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) || u.len() > 2048 => {
            Err(EngineError::validation(
                field,
                "must be an http(s) URL of at most 2048 characters",
            ))
        }
        _ => Ok(()),
    }
}

/// A validated booking, ready to apply.
struct Booking {
    source: String,
    external_id: String,
    previous_external_id: Option<String>,
    details: CustomerDetails,
    /// A number was given but cannot receive texts (or could not be read).
    unreachable_number: bool,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    service_type: Option<String>,
    price: Option<Money>,
    channel: Channel,
    cancel_url: Option<String>,
    reschedule_url: Option<String>,
}

fn validate(ctx: &Ctx<'_, '_>, p: UpsertPayload) -> EngineResult<Booking> {
    let source = p.source.trim().to_ascii_lowercase();
    if source.is_empty()
        || source.len() > 32
        || !source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(EngineError::validation(
            "payload.source",
            "1–32 characters of a-z, 0-9, '_' or '-'",
        ));
    }
    if p.external_id.trim().is_empty() || p.external_id.len() > 512 {
        return Err(EngineError::validation(
            "payload.externalId",
            "required, at most 512 characters",
        ));
    }
    if p.ends_at <= p.starts_at {
        return Err(EngineError::validation(
            "payload.endsAt",
            "must be after startsAt",
        ));
    }
    if p.ends_at - p.starts_at > chrono::Duration::hours(24) {
        return Err(EngineError::validation(
            "payload.endsAt",
            "a visit lasts at most 24 hours",
        ));
    }
    check_url("payload.cancelUrl", &p.cancel_url)?;
    check_url("payload.rescheduleUrl", &p.reschedule_url)?;
    let name = p
        .customer
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err(EngineError::validation(
            "payload.customer.name",
            "at most 200 characters",
        ));
    }
    let raw_phone = p.customer.phone.filter(|p| !p.trim().is_empty());
    let phone = raw_phone
        .as_deref()
        .and_then(|raw| Phone::parse(raw, ctx.tenant.region).ok());
    let unreachable_number = phone.as_ref().is_none_or(|p| !p.is_text_capable());
    let email = p
        .customer
        .email
        .filter(|e| !e.trim().is_empty())
        .map(|e| Email::parse(&e))
        .transpose()
        .map_err(|e| EngineError::validation("payload.customer.email", e.to_string()))?;
    let zone = p
        .customer
        .timezone
        .filter(|z| !z.trim().is_empty())
        .map(|z| Zone::parse(&z))
        .transpose()
        .map_err(|e| EngineError::validation("payload.customer.timezone", e.to_string()))?;
    let language = p
        .customer
        .language
        .filter(|l| !l.trim().is_empty())
        .map(|l| Language::parse(&l))
        .transpose()
        .map_err(|e| EngineError::validation("payload.customer.language", e.to_string()))?;
    let mapping = p
        .service_type
        .as_ref()
        .and_then(|s| ctx.tenant.config.mappings.event_types.get(s));
    let price = match (p.price_minor, p.currency) {
        (Some(minor), Some(currency)) => Some(
            Money::new(
                minor,
                Currency::parse(&currency)
                    .map_err(|e| EngineError::validation("payload.currency", e.to_string()))?,
            )
            .map_err(|e| EngineError::validation("payload.priceMinor", e.to_string()))?,
        ),
        (Some(_), None) => {
            return Err(EngineError::validation(
                "payload.currency",
                "required with priceMinor",
            ));
        }
        (None, Some(_)) => {
            return Err(EngineError::validation(
                "payload.priceMinor",
                "required with currency",
            ));
        }
        (None, None) => mapping.and_then(|m| match (m.price_minor, m.currency.as_deref()) {
            (Some(minor), Some(c)) => Money::new(minor, Currency::parse(c).ok()?).ok(),
            _ => None,
        }),
    };
    let service_type = mapping.map(|m| m.service.clone()).or(p.service_type);
    Ok(Booking {
        source,
        external_id: p.external_id,
        previous_external_id: p.previous_external_id.filter(|e| !e.is_empty()),
        details: CustomerDetails {
            name,
            phone,
            email,
            zone,
            language,
        },
        unreachable_number,
        starts_at: aro_store::micros(p.starts_at),
        ends_at: aro_store::micros(p.ends_at),
        service_type,
        price,
        channel: p.channel.unwrap_or(Channel::Sms),
        cancel_url: p.cancel_url,
        reschedule_url: p.reschedule_url,
    })
}

fn normalise_name(n: &Option<String>) -> Option<String> {
    n.as_ref().map(|n| {
        n.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    })
}

/// The patient a booking is for: the person with this number and name (family members share
/// numbers), else a new patient.
async fn find_or_create_customer(
    ctx: &mut Ctx<'_, '_>,
    details: &CustomerDetails,
) -> EngineResult<(Customer, bool)> {
    let tenant = ctx.tenant.id.clone();
    if let Some(phone) = &details.phone {
        let index = ctx.tx.phone_index(tenant.as_str(), phone);
        ctx.tx.lock(&format!("phone:{tenant}:{index}")).await?;
        let wanted = normalise_name(&details.name);
        let candidates = ctx.tx.customers_by_phone(tenant.as_str(), phone).await?;
        if let Some(found) = candidates
            .into_iter()
            .find(|c| normalise_name(&c.name) == wanted)
        {
            return Ok((found, false));
        }
    }
    let customer = ctx.tx.insert_customer(&tenant, details, ctx.now).await?;
    Ok((customer, true))
}

/// Updates the patient's details from a newer booking; true when something changed.
fn merge_details(c: &mut Customer, d: &CustomerDetails) -> bool {
    let before = c.clone();
    if d.email.is_some() {
        c.email = d.email.clone();
    }
    if d.zone.is_some() {
        c.zone = d.zone;
    }
    if d.language.is_some() {
        c.language = d.language.clone();
    }
    *c != before
}

pub async fn upsert_command(
    ctx: &mut Ctx<'_, '_>,
    envelope: &CommandEnvelope,
) -> EngineResult<AggregateRef> {
    if envelope.aggregate.kind != "appointment" {
        return Err(EngineError::validation(
            "aggregate.type",
            "must be \"appointment\"",
        ));
    }
    let payload: UpsertPayload = parse_payload(&envelope.payload)?;
    upsert(ctx, payload).await
}

pub async fn upsert(ctx: &mut Ctx<'_, '_>, payload: UpsertPayload) -> EngineResult<AggregateRef> {
    let b = validate(ctx, payload)?;
    let tenant = ctx.tenant.id.clone();
    ctx.tx
        .lock(&format!("booking:{tenant}:{}:{}", b.source, b.external_id))
        .await?;
    let mut existing = ctx
        .tx
        .appointment_by_external(tenant.as_str(), &b.source, &b.external_id)
        .await?;
    if existing.is_none()
        && let Some(previous) = &b.previous_external_id
        && let Some(moved) = ctx
            .tx
            .appointment_by_external(tenant.as_str(), &b.source, previous)
            .await?
    {
        if moved
            .status
            .transition(AppointmentStatus::Rescheduled)
            .is_err()
        {
            // The patient moved a visit that is already settled (typically through the
            // reschedule link of a no-show's recovery text): the old visit keeps its outcome
            // and the new time is a new booking under the new identity (ADR 0012). A repeat
            // finds that new visit by its identity above, so it is booked once.
            tracing::info!(
                tenant = %tenant,
                settled = %moved.id,
                status = moved.status.as_str(),
                "a settled visit was moved at the provider: booking it as a new visit"
            );
            return create(ctx, b, Some(&moved)).await;
        }
        ctx.tx
            .add_appointment_alias(
                tenant.as_str(),
                &b.source,
                &b.external_id,
                moved.id.as_str(),
                ctx.now,
            )
            .await?;
        existing = Some(moved);
    }
    match existing {
        Some(a) => update_existing(ctx, a, b).await,
        None => create(ctx, b, None).await,
    }
}

/// A new visit. `rebooked_from` is the settled visit the provider moved to make this booking;
/// `appointment.booked` names it (`rebookedFrom`) so the link between the two stays visible.
async fn create(
    ctx: &mut Ctx<'_, '_>,
    b: Booking,
    rebooked_from: Option<&Appointment>,
) -> EngineResult<AggregateRef> {
    let (mut customer, _) = find_or_create_customer(ctx, &b.details).await?;
    if merge_details(&mut customer, &b.details) {
        customer.updated_at = ctx.now;
        ctx.tx.update_customer(&customer, ctx.now).await?;
    }
    let a = Appointment {
        id: aro_store::ids::new_business_id(aro_domain::ids::prefix::APPOINTMENT),
        tenant_id: ctx.tenant.id.clone(),
        customer_id: customer.id.clone(),
        source: b.source,
        external_id: b.external_id,
        status: AppointmentStatus::Booked,
        starts_at: b.starts_at,
        ends_at: b.ends_at,
        service_type: b.service_type,
        price: b.price,
        zone: b.details.zone.or(customer.zone),
        language: b
            .details
            .language
            .clone()
            .or_else(|| customer.language.clone()),
        channel: b.channel,
        cancel_url: b.cancel_url,
        reschedule_url: b.reschedule_url,
        needs_contact: b.unreachable_number,
        created_at: ctx.now,
        updated_at: ctx.now,
        version: 1,
    };
    if !ctx.tx.insert_appointment(&a).await? {
        return Err(EngineError::Conflict {
            code: "CONCURRENT_UPDATE",
            message: "the booking was created concurrently; retry".into(),
        });
    }
    visits::enter_workflow(ctx, &a).await?;
    let mut extra = json!({"actor": ctx.actor});
    if let Some(settled) = rebooked_from {
        extra["rebookedFrom"] = json!(settled.id);
    }
    ctx.emit(
        EventType::AppointmentBooked,
        visits::aggregate(&a),
        crate::snapshot::appointment_payload(&a, Some(&customer), extra),
        Some(crate::snapshot::customer_pii(&customer)),
    );
    if let Some(phone) = customer.phone.clone().filter(Phone::is_text_capable)
        && consent::current(ctx, &phone).await?.is_none()
    {
        consent::set(
            ctx,
            &phone,
            Some(customer.id.as_str()),
            ConsentStatus::Granted,
            "booking",
        )
        .await?;
    }
    visits::schedule_reminders(ctx, &a, &customer).await?;
    // Risk fades with time: bring it up to date before deciding on a deposit.
    let customer = crate::risk::recompute(ctx, customer).await?;
    crate::followups::request_deposit_if_risky(ctx, &a, &customer).await?;
    Ok(visits::aggregate(&a))
}

async fn update_existing(
    ctx: &mut Ctx<'_, '_>,
    a: Appointment,
    b: Booking,
) -> EngineResult<AggregateRef> {
    visits::enter_workflow(ctx, &a).await?;
    let aggregate = visits::aggregate(&a);
    if a.status == AppointmentStatus::Cancelled || a.status.is_outcome() {
        // A settled visit is history: a late or repeated booking message changes nothing.
        return Ok(aggregate);
    }
    let tenant = ctx.tenant_id().to_owned();
    let mut customer = ctx
        .tx
        .get_customer(&tenant, a.customer_id.as_str())
        .await?
        .ok_or(EngineError::NotFound("customer"))?;
    let customer_changed = merge_details(&mut customer, &b.details);
    if customer_changed {
        customer.updated_at = ctx.now;
        ctx.tx.update_customer(&customer, ctx.now).await?;
    }
    if a.starts_at != b.starts_at || a.ends_at != b.ends_at {
        let mut next = a.clone();
        next.cancel_url = b.cancel_url.or(next.cancel_url);
        next.reschedule_url = b.reschedule_url.or(next.reschedule_url);
        reschedule_to(ctx, next, b.starts_at, b.ends_at, &customer).await?;
        return Ok(aggregate);
    }
    let mut next = a.clone();
    next.service_type = b.service_type.or(next.service_type);
    next.price = b.price.or(next.price);
    next.cancel_url = b.cancel_url.or(next.cancel_url);
    next.reschedule_url = b.reschedule_url.or(next.reschedule_url);
    next.zone = b.details.zone.or(next.zone);
    next.language = b.details.language.clone().or(next.language);
    next.needs_contact =
        b.unreachable_number && customer.phone.as_ref().is_none_or(|p| !p.is_text_capable());
    if next != a || customer_changed {
        visits::save(
            ctx,
            next,
            EventType::AppointmentUpdated,
            Some(&customer),
            json!({"actor": ctx.actor}),
        )
        .await?;
    }
    Ok(aggregate)
}

/// Moves a visit to a new time: rescheduled, then booked again at the new time (the
/// confirmation, if any, no longer holds), with its reminders moved.
async fn reschedule_to(
    ctx: &mut Ctx<'_, '_>,
    a: Appointment,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    customer: &Customer,
) -> EngineResult<Appointment> {
    let from = a.status;
    from.transition(AppointmentStatus::Rescheduled)?;
    let previous = json!({"startsAt": a.starts_at, "endsAt": a.ends_at, "status": from});
    let mut next = a;
    next.status = AppointmentStatus::Rescheduled
        .transition(AppointmentStatus::Booked)
        .map_err(EngineError::from)?;
    next.starts_at = starts_at;
    next.ends_at = ends_at;
    let next = visits::save(
        ctx,
        next,
        EventType::AppointmentRescheduled,
        None,
        json!({"previous": previous, "actor": ctx.actor}),
    )
    .await?;
    visits::on_rescheduled(ctx, &next, customer).await?;
    Ok(next)
}

async fn load(ctx: &mut Ctx<'_, '_>, envelope: &CommandEnvelope) -> EngineResult<Appointment> {
    let id = aggregate_id(envelope, "appointment")?;
    let tenant = ctx.tenant_id().to_owned();
    let a = ctx
        .tx
        .get_appointment(&tenant, &id)
        .await?
        .ok_or(EngineError::NotFound("appointment"))?;
    visits::enter_workflow(ctx, &a).await?;
    Ok(a)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NotePayload {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

fn note(envelope: &CommandEnvelope) -> EngineResult<serde_json::Value> {
    let p: NotePayload = if envelope.payload.is_null() {
        NotePayload::default()
    } else {
        parse_payload(&envelope.payload)?
    };
    for (field, v) in [("payload.reason", &p.reason), ("payload.note", &p.note)] {
        if v.as_ref().is_some_and(|s| s.chars().count() > 500) {
            return Err(EngineError::validation(field, "at most 500 characters"));
        }
    }
    Ok(json!({"reason": p.reason, "note": p.note}))
}

/// The shared shape of the outcome commands: read the note, load the visit, move it along the
/// state machine with its event.
async fn apply_transition(
    ctx: &mut Ctx<'_, '_>,
    envelope: &CommandEnvelope,
    to: AppointmentStatus,
    event: EventType,
) -> EngineResult<Appointment> {
    let extra = note(envelope)?;
    let a = load(ctx, envelope).await?;
    visits::transition(ctx, a, to, event, extra).await
}

pub async fn confirm(
    ctx: &mut Ctx<'_, '_>,
    envelope: &CommandEnvelope,
) -> EngineResult<AggregateRef> {
    let a = apply_transition(
        ctx,
        envelope,
        AppointmentStatus::Confirmed,
        EventType::AppointmentConfirmed,
    )
    .await?;
    visits::on_confirmed(ctx, &a).await?;
    Ok(visits::aggregate(&a))
}

pub async fn check_in(
    ctx: &mut Ctx<'_, '_>,
    envelope: &CommandEnvelope,
) -> EngineResult<AggregateRef> {
    let a = apply_transition(
        ctx,
        envelope,
        AppointmentStatus::InProgress,
        EventType::AppointmentInProgress,
    )
    .await?;
    crate::timers::cancel(
        ctx,
        a.id.as_str(),
        &[
            crate::timers::TimerKind::Reminder,
            crate::timers::TimerKind::NoReplyCheck,
        ],
    )
    .await?;
    // A reminder being retried was just called off: the run is no longer `retrying`.
    visits::settle_visit(ctx, a.id.as_str()).await?;
    Ok(visits::aggregate(&a))
}

pub async fn cancel(
    ctx: &mut Ctx<'_, '_>,
    envelope: &CommandEnvelope,
) -> EngineResult<AggregateRef> {
    let extra = note(envelope)?;
    if ctx.actor == crate::engine::ENGINE_ACTOR {
        return Err(EngineError::Guardrail {
            code: "AUTO_CANCEL_FORBIDDEN",
            message: "ARO never cancels a booking on its own".into(),
        });
    }
    let a = load(ctx, envelope).await?;
    let a = visits::transition(
        ctx,
        a,
        AppointmentStatus::Cancelled,
        EventType::AppointmentCancelled,
        extra,
    )
    .await?;
    visits::on_cancelled(ctx, &a).await?;
    Ok(visits::aggregate(&a))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReschedulePayload {
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    cancel_url: Option<String>,
    #[serde(default)]
    reschedule_url: Option<String>,
}

pub async fn reschedule(
    ctx: &mut Ctx<'_, '_>,
    envelope: &CommandEnvelope,
) -> EngineResult<AggregateRef> {
    let p: ReschedulePayload = parse_payload(&envelope.payload)?;
    if p.ends_at <= p.starts_at {
        return Err(EngineError::validation(
            "payload.endsAt",
            "must be after startsAt",
        ));
    }
    check_url("payload.cancelUrl", &p.cancel_url)?;
    check_url("payload.rescheduleUrl", &p.reschedule_url)?;
    let mut a = load(ctx, envelope).await?;
    // A command names the visit to move, and a settled visit does not move: 409
    // INVALID_TRANSITION before anything is written. (The provider's report of such a move is a
    // new booking instead, in `upsert`; a caller books one with `appointment.upsert`. ADR 0012.)
    a.status.transition(AppointmentStatus::Rescheduled)?;
    let tenant = ctx.tenant_id().to_owned();
    if let Some(external) = p
        .external_id
        .filter(|e| !e.is_empty() && *e != a.external_id)
    {
        ctx.tx
            .add_appointment_alias(&tenant, &a.source, &external, a.id.as_str(), ctx.now)
            .await?;
    }
    a.cancel_url = p.cancel_url.or(a.cancel_url);
    a.reschedule_url = p.reschedule_url.or(a.reschedule_url);
    let customer = ctx
        .tx
        .get_customer(&tenant, a.customer_id.as_str())
        .await?
        .ok_or(EngineError::NotFound("customer"))?;
    let a = reschedule_to(
        ctx,
        a,
        aro_store::micros(p.starts_at),
        aro_store::micros(p.ends_at),
        &customer,
    )
    .await?;
    Ok(visits::aggregate(&a))
}

pub async fn mark_completed(
    ctx: &mut Ctx<'_, '_>,
    envelope: &CommandEnvelope,
) -> EngineResult<AggregateRef> {
    let extra = note(envelope)?;
    let a = load(ctx, envelope).await?;
    let was = a.status;
    let a = visits::transition(
        ctx,
        a,
        AppointmentStatus::Completed,
        EventType::AppointmentCompleted,
        extra,
    )
    .await?;
    if was == AppointmentStatus::NoShow {
        // A correction: the patient came after all.
        let tenant = ctx.tenant_id().to_owned();
        if let Some(c) = ctx.tx.get_customer(&tenant, a.customer_id.as_str()).await? {
            crate::risk::recompute(ctx, c).await?;
        }
    }
    visits::on_completed(ctx, &a).await?;
    Ok(visits::aggregate(&a))
}

pub async fn mark_no_show(
    ctx: &mut Ctx<'_, '_>,
    envelope: &CommandEnvelope,
) -> EngineResult<AggregateRef> {
    let a = apply_transition(
        ctx,
        envelope,
        AppointmentStatus::NoShow,
        EventType::AppointmentNoShow,
    )
    .await?;
    visits::on_no_show(ctx, &a).await?;
    Ok(visits::aggregate(&a))
}

/// A Calendly look-up finished: the fetched booking is applied like a webhook's
/// (`output.booking`, an `appointment.upsert` payload; absent or null: nothing to book).
pub async fn apply_fetched_booking(
    ctx: &mut Ctx<'_, '_>,
    _row: &ExecutionRow,
    result: &ExecutionResult,
) -> EngineResult<()> {
    let Some(output) = &result.output else {
        return Ok(());
    };
    let Some(booking) = output.get("booking").filter(|b| !b.is_null()) else {
        return Ok(());
    };
    let payload: UpsertPayload = parse_payload(booking)?;
    crate::bookings::upsert_from_provider(ctx, payload).await?;
    Ok(())
}
