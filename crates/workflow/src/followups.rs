//! What happens around a visit besides reminders: the review request and rebooking offer after
//! it, the recovery text and risk update after a no-show, and deposit links for high-risk
//! patients (a link the patient may choose to open — never a charge).

use crate::ctx::Ctx;
use crate::error::EngineResult;
use crate::executions::{ExecutionResult, NewExecution};
use crate::outbound::{PatientText, Sent};
use crate::timers::{self, TimerKind};
use aro_domain::EventType;
use aro_domain::appointment::{Appointment, AppointmentStatus};
use aro_domain::customer::Customer;
use aro_domain::message::MessageStatus;
use aro_store::AggregateRef;
use aro_store::engine_rows::{ExecutionRow, PaymentLinkRow};
use chrono::Duration;
use serde_json::{Value, json};

/// When a follow-up due at `t` may go out: inside the send window of the patient's zone (else
/// the clinic's), so nobody is texted at night.
pub fn windowed(
    ctx: &Ctx<'_, '_>,
    a: &Appointment,
    t: chrono::DateTime<chrono::Utc>,
) -> chrono::DateTime<chrono::Utc> {
    let zone = a.zone.unwrap_or(ctx.tenant.zone).tz();
    crate::plan::next_send_time(t, zone, ctx.tenant.config.policies.send_window)
}

/// After a completed visit: the review request (default 6 h later) and the rebooking offer
/// (default 3 days later; ADR 0008), each moved into the send window.
pub async fn schedule_after_visit(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<()> {
    let policies = ctx.tenant.config.policies.clone();
    let review_at = windowed(
        ctx,
        a,
        ctx.now + Duration::hours(i64::from(policies.review_delay_hours)),
    );
    timers::schedule(
        ctx,
        TimerKind::ReviewRequest,
        a.id.as_str(),
        review_at,
        json!({}),
    )
    .await?;
    if policies.rebook_delay_days > 0 {
        let rebook_at = windowed(
            ctx,
            a,
            ctx.now + Duration::days(i64::from(policies.rebook_delay_days)),
        );
        timers::schedule(
            ctx,
            TimerKind::RebookOffer,
            a.id.as_str(),
            rebook_at,
            json!({}),
        )
        .await?;
    }
    Ok(())
}

async fn customer_of(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<Option<Customer>> {
    let tenant = ctx.tenant_id().to_owned();
    Ok(ctx.tx.get_customer(&tenant, a.customer_id.as_str()).await?)
}

/// The review request, six hours after completion: only if the visit is still completed, the
/// clinic has a review link, and the patient was not asked in the cooldown (default 90 days).
pub async fn request_review(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<()> {
    if a.status != AppointmentStatus::Completed {
        return Ok(());
    }
    let Some(link) = ctx.tenant.review_link.clone() else {
        return Ok(());
    };
    let Some(customer) = customer_of(ctx, a).await? else {
        return Ok(());
    };
    let Some(phone) = customer.phone.clone() else {
        return Ok(());
    };
    let tenant = ctx.tenant_id().to_owned();
    let cooldown = Duration::days(i64::from(ctx.tenant.config.policies.review_cooldown_days));
    let since = ctx.now - cooldown;
    let recent = ctx.tx.messages_for_phone(&tenant, &phone, since).await?;
    if recent.iter().any(|m| {
        m.purpose == "review_request"
            && m.customer_id.as_deref() == Some(customer.id.as_str())
            && m.status != MessageStatus::Cancelled
    }) {
        return Ok(());
    }
    let sent = crate::outbound::send_to_patient(
        ctx,
        PatientText {
            customer: &customer,
            appointment: Some(a),
            template: "review_request",
            purpose: "review_request",
            link: Some(link),
            direct_answer: false,
            without_consent: false,
            not_after: None,
        },
    )
    .await?;
    if let Sent::Queued { message_id, .. } = sent {
        ctx.emit(
            EventType::ReviewRequested,
            AggregateRef::new("appointment", a.id.as_str()),
            json!({"appointmentId": a.id, "customerId": customer.id, "messageId": message_id}),
            None,
        );
    }
    Ok(())
}

/// Where a patient can book again: the clinic's booking page, else the visit's reschedule link.
fn booking_link(ctx: &Ctx<'_, '_>, a: &Appointment) -> Option<String> {
    ctx.tenant
        .config
        .booking_link
        .clone()
        .or_else(|| a.reschedule_url.clone())
}

pub async fn offer_rebooking(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<()> {
    if a.status != AppointmentStatus::Completed {
        return Ok(());
    }
    let Some(customer) = customer_of(ctx, a).await? else {
        return Ok(());
    };
    // Someone who already booked again needs no offer.
    let tenant = ctx.tenant_id().to_owned();
    let upcoming = ctx
        .tx
        .raw()
        .appointments_for_customer(&tenant, customer.id.as_str())
        .await?;
    if upcoming
        .iter()
        .any(|o| o.starts_at > ctx.now && matches!(o.status.as_str(), "booked" | "confirmed"))
    {
        return Ok(());
    }
    let link = booking_link(ctx, a);
    crate::outbound::send_to_patient(
        ctx,
        PatientText {
            customer: &customer,
            appointment: Some(a),
            template: "rebook_offer",
            purpose: "rebook_offer",
            link,
            direct_answer: false,
            without_consent: false,
            not_after: None,
        },
    )
    .await?;
    Ok(())
}

/// After a no-show: the patient's risk is recomputed and they get one recovery text.
pub async fn after_no_show(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<()> {
    let Some(customer) = customer_of(ctx, a).await? else {
        return Ok(());
    };
    let customer = crate::risk::recompute(ctx, customer).await?;
    let link = booking_link(ctx, a);
    crate::outbound::send_to_patient(
        ctx,
        PatientText {
            customer: &customer,
            appointment: Some(a),
            template: "no_show_recovery",
            purpose: "no_show_recovery",
            link,
            direct_answer: false,
            without_consent: false,
            not_after: None,
        },
    )
    .await?;
    Ok(())
}

/// For a high-risk patient's new booking: ask the executor for a deposit link.
pub async fn request_deposit_if_risky(
    ctx: &mut Ctx<'_, '_>,
    a: &Appointment,
    customer: &Customer,
) -> EngineResult<()> {
    let policies = ctx.tenant.config.policies.clone();
    if policies.deposit_minor <= 0
        || !crate::risk::needs_deposit(customer, policies.high_risk_threshold)
    {
        return Ok(());
    }
    if customer.phone.as_ref().is_none_or(|p| !p.is_text_capable()) {
        return Ok(());
    }
    let id = aro_store::ids::new_id(aro_domain::ids::prefix::PAYMENT_LINK);
    let tenant_id = ctx.tenant_id().to_owned();
    ctx.tx
        .raw()
        .insert_payment_link(&PaymentLinkRow {
            tenant_id,
            id: id.clone(),
            appointment_id: Some(a.id.to_string()),
            customer_id: Some(customer.id.to_string()),
            provider_ref: None,
            url: None,
            amount_minor: policies.deposit_minor,
            currency: policies.deposit_currency.clone(),
            status: "requested".into(),
            created_at: ctx.now,
            paid_at: None,
        })
        .await?;
    let tenant = ctx.tenant_id().to_owned();
    crate::executions::enqueue(
        ctx,
        NewExecution {
            id: aro_store::ids::new_id(aro_domain::ids::prefix::EXECUTION),
            command_type: "payments.generate_deposit_link",
            subject_id: None,
            payload: json!({
                "paymentLinkId": id,
                "amountMinor": policies.deposit_minor,
                "currency": policies.deposit_currency,
                "description": format!("Deposit for your visit at {}", ctx.tenant.name),
                "idempotencyKey": id,
                "metadata": {"tenantId": tenant, "paymentLinkId": id, "appointmentId": a.id},
            }),
            not_after: Some(a.starts_at),
            aggregate_id: Some(a.id.as_str()),
            max_attempts: 5,
        },
    )
    .await
}

/// Outcomes of executions that are not texts.
pub async fn on_execution_succeeded(
    ctx: &mut Ctx<'_, '_>,
    row: &ExecutionRow,
    result: &ExecutionResult,
) -> EngineResult<()> {
    if row.command_type == "payments.generate_deposit_link" {
        return deposit_link_created(ctx, row, result).await;
    }
    if row.command_type == "booking.fetch_invitee" {
        return crate::commands::appointments::apply_fetched_booking(ctx, row, result).await;
    }
    if row.command_type == "classification.classify_reply" {
        return crate::replies::apply_llm_classification(ctx, row, result).await;
    }
    tracing::warn!(command_type = %row.command_type, "no outcome handler for this execution type");
    Ok(())
}

pub async fn on_execution_failed(
    ctx: &mut Ctx<'_, '_>,
    row: &ExecutionRow,
    code: &str,
) -> EngineResult<()> {
    if row.command_type == "classification.classify_reply" {
        return crate::replies::llm_unavailable(ctx, row).await;
    }
    if row.command_type == "payments.generate_deposit_link"
        && let Some(appointment_id) = &row.aggregate_id
    {
        crate::escalations::open(
            ctx,
            Some(appointment_id),
            None,
            "deposit_link_failed",
            json!({"errorCode": code}),
        )
        .await?;
    }
    Ok(())
}

async fn deposit_link_created(
    ctx: &mut Ctx<'_, '_>,
    row: &ExecutionRow,
    result: &ExecutionResult,
) -> EngineResult<()> {
    let payload = crate::results::payload(ctx, row).await?;
    let tenant = ctx.tenant_id().to_owned();
    let Some(link_id) = payload.get("paymentLinkId").and_then(Value::as_str) else {
        return Ok(());
    };
    let Some(mut link) = ctx.tx.raw().get_payment_link(&tenant, link_id).await? else {
        return Ok(());
    };
    let url = result
        .output
        .as_ref()
        .and_then(|o| o.get("url"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    link.provider_ref = result.provider_ref.clone();
    link.url = url.clone();
    link.status = "open".into();
    ctx.tx.raw().update_payment_link(&link).await?;
    let Some(appointment_id) = link.appointment_id.clone() else {
        return Ok(());
    };
    ctx.emit(
        EventType::PaymentLinkCreated,
        AggregateRef::new("appointment", &appointment_id),
        json!({"paymentLinkId": link.id, "providerRef": link.provider_ref, "amountMinor": link.amount_minor,
               "currency": link.currency, "appointmentId": appointment_id}),
        None,
    );
    let Some(a) = ctx.tx.get_appointment(&tenant, &appointment_id).await? else {
        return Ok(());
    };
    // The link goes out with the visit's first reminder; if one has already gone, now.
    let reminded = ctx
        .tx
        .raw()
        .reminder_logs_for_appointment(&tenant, &appointment_id)
        .await?
        .iter()
        .any(|l| l.status == "sent");
    if reminded {
        send_deposit_request(ctx, &a).await?;
    }
    Ok(())
}

/// Texts the open deposit link of a visit (once) and schedules the nudge. Called when the
/// visit's first reminder goes out, or when the link is ready after that.
pub async fn send_deposit_request(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<()> {
    if !a.status.is_upcoming() {
        return Ok(());
    }
    let links = open_links_for(ctx, a).await?;
    let Some(mut link) = links.into_iter().find(|l| l.status == "open") else {
        return Ok(());
    };
    let Some(customer) = customer_of(ctx, a).await? else {
        return Ok(());
    };
    let sent = crate::outbound::send_to_patient(
        ctx,
        PatientText {
            customer: &customer,
            appointment: Some(a),
            template: "deposit_request",
            purpose: "deposit_request",
            link: link.url.clone(),
            direct_answer: false,
            without_consent: false,
            not_after: Some(a.starts_at),
        },
    )
    .await?;
    if matches!(sent, Sent::Refused(_)) {
        return Ok(());
    }
    link.status = "sent".into();
    ctx.tx.raw().update_payment_link(&link).await?;
    let policies = ctx.tenant.config.policies.clone();
    let nudge_at = windowed(
        ctx,
        a,
        ctx.now + Duration::hours(i64::from(policies.deposit_nudge_after_hours)),
    );
    if nudge_at < a.starts_at {
        timers::schedule(
            ctx,
            TimerKind::DepositNudge,
            a.id.as_str(),
            nudge_at,
            json!({"paymentLinkId": link.id}),
        )
        .await?;
    }
    Ok(())
}

async fn open_links_for(
    ctx: &mut Ctx<'_, '_>,
    a: &Appointment,
) -> EngineResult<Vec<PaymentLinkRow>> {
    let tenant = ctx.tenant_id().to_owned();
    // Links are few per visit; they are found through the visit's `payment.link_created` events.
    let mut out = Vec::new();
    for link_id in deposit_link_ids(ctx, a).await? {
        if let Some(l) = ctx.tx.raw().get_payment_link(&tenant, &link_id).await? {
            out.push(l);
        }
    }
    Ok(out)
}

/// The deposit links requested for a visit, from its `payments.generate_deposit_link` executions.
async fn deposit_link_ids(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<Vec<String>> {
    let tenant = ctx.tenant_id().to_owned();
    let events = ctx
        .tx
        .events(&aro_store::EventQuery {
            tenant_id: Some(tenant),
            after: 0,
            limit: 1000,
            event_type: Some(EventType::PaymentLinkCreated.as_str().to_owned()),
            aggregate_id: Some(a.id.to_string()),
        })
        .await?;
    let mut ids: Vec<String> = events
        .iter()
        .filter_map(|e| {
            e.payload
                .get("paymentLinkId")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    // Links created in this very transaction are not in the log yet: look at pending events too.
    ids.extend(ctx.pending_payment_links());
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// A day after the deposit link: a nudge if unpaid, and a staff alert later.
pub async fn deposit_nudge(
    ctx: &mut Ctx<'_, '_>,
    a: &Appointment,
    payload: &Value,
) -> EngineResult<()> {
    let Some(link) = open_deposit(ctx, payload).await? else {
        return Ok(());
    };
    if !a.status.is_upcoming() {
        return Ok(());
    }
    if let Some(customer) = customer_of(ctx, a).await? {
        crate::outbound::send_to_patient(
            ctx,
            PatientText {
                customer: &customer,
                appointment: Some(a),
                template: "deposit_nudge",
                purpose: "deposit_nudge",
                link: link.url.clone(),
                direct_answer: false,
                without_consent: false,
                not_after: Some(a.starts_at),
            },
        )
        .await?;
    }
    let alert_at = ctx.now
        + Duration::hours(i64::from(
            ctx.tenant.config.policies.deposit_alert_after_hours,
        ));
    timers::schedule(
        ctx,
        TimerKind::DepositAlert,
        a.id.as_str(),
        alert_at,
        json!({"paymentLinkId": link.id}),
    )
    .await?;
    Ok(())
}

pub async fn deposit_alert(
    ctx: &mut Ctx<'_, '_>,
    a: &Appointment,
    payload: &Value,
) -> EngineResult<()> {
    if open_deposit(ctx, payload).await?.is_none() || !a.status.is_upcoming() {
        return Ok(());
    }
    crate::escalations::open(
        ctx,
        Some(a.id.as_str()),
        Some(a.customer_id.as_str()),
        "deposit_unpaid",
        json!({}),
    )
    .await?;
    Ok(())
}

async fn open_deposit(
    ctx: &mut Ctx<'_, '_>,
    payload: &Value,
) -> EngineResult<Option<PaymentLinkRow>> {
    let tenant = ctx.tenant_id().to_owned();
    let Some(id) = payload.get("paymentLinkId").and_then(Value::as_str) else {
        return Ok(None);
    };
    Ok(ctx
        .tx
        .raw()
        .get_payment_link(&tenant, id)
        .await?
        .filter(|l| matches!(l.status.as_str(), "open" | "sent")))
}
