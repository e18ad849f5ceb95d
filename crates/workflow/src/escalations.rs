//! Escalations: anything the engine will not decide alone goes to staff with a reason (an
//! unclear reply, a cancellation request, silence after the last reminder, an unpaid deposit).
//! Until staff use the UI, open escalations reach the clinic as one text digest to the clinic's
//! phone, batched and sent inside the send window.

use crate::ctx::Ctx;
use crate::error::{EngineError, EngineResult};
use crate::timers::{self, TimerKind};
use aro_domain::EventType;
use aro_store::AggregateRef;
use aro_store::engine_rows::EscalationRow;
use chrono::Duration;
use serde_json::{Value, json};
use sqlx::types::Json;

/// Opens an escalation and makes sure a digest to the clinic is on its way.
pub async fn open(
    ctx: &mut Ctx<'_, '_>,
    appointment_id: Option<&str>,
    customer_id: Option<&str>,
    reason: &str,
    detail: Value,
) -> EngineResult<String> {
    let id = aro_store::ids::new_id(aro_domain::ids::prefix::ESCALATION);
    let tenant_id = ctx.tenant_id().to_owned();
    ctx.tx
        .raw()
        .insert_escalation(&EscalationRow {
            tenant_id,
            id: id.clone(),
            appointment_id: appointment_id.map(str::to_owned),
            customer_id: customer_id.map(str::to_owned),
            reason: reason.to_owned(),
            status: "open".into(),
            detail: Json(detail.clone()),
            notified_at: None,
            created_at: ctx.now,
            resolved_at: None,
            resolved_by: None,
            resolution: None,
        })
        .await?;
    let aggregate = match appointment_id {
        Some(a) => AggregateRef::new("appointment", a),
        None => AggregateRef::new("escalation", &id),
    };
    ctx.emit(
        EventType::EscalationOpened,
        aggregate,
        json!({"escalationId": id, "appointmentId": appointment_id, "customerId": customer_id,
               "reason": reason, "detail": detail}),
        None,
    );
    schedule_digest(ctx).await?;
    Ok(id)
}

async fn schedule_digest(ctx: &mut Ctx<'_, '_>) -> EngineResult<()> {
    let tenant = ctx.tenant_id().to_owned();
    if timers::has_pending(ctx, &tenant, TimerKind::EscalationDigest).await? {
        return Ok(());
    }
    let policies = &ctx.tenant.config.policies;
    let after = ctx.now + Duration::minutes(i64::from(policies.escalation_digest_minutes));
    let due = crate::plan::next_send_time(after, ctx.tenant.zone.tz(), policies.send_window);
    let saved = ctx.workflow_id.take();
    timers::schedule(ctx, TimerKind::EscalationDigest, &tenant, due, json!({})).await?;
    ctx.workflow_id = saved;
    Ok(())
}

pub async fn resolve(
    ctx: &mut Ctx<'_, '_>,
    id: &str,
    resolution: &str,
    note: Option<&str>,
) -> EngineResult<EscalationRow> {
    let tenant = ctx.tenant_id().to_owned();
    let mut row = ctx
        .tx
        .raw()
        .get_escalation(&tenant, id)
        .await?
        .ok_or(EngineError::NotFound("escalation"))?;
    if row.status == "resolved" {
        return Err(EngineError::Conflict {
            code: "ALREADY_RESOLVED",
            message: "the escalation is already resolved".into(),
        });
    }
    row.status = "resolved".into();
    row.resolved_at = Some(ctx.now);
    row.resolved_by = Some(ctx.actor.clone());
    row.resolution = Some(resolution.to_owned());
    ctx.tx.raw().update_escalation(&row).await?;
    let aggregate = match &row.appointment_id {
        Some(a) => AggregateRef::new("appointment", a),
        None => AggregateRef::new("escalation", id),
    };
    ctx.emit(
        EventType::EscalationResolved,
        aggregate,
        json!({"escalationId": id, "resolution": resolution, "note": note, "resolvedBy": ctx.actor}),
        None,
    );
    Ok(row)
}

/// Fires the digest: one text to the clinic listing what waits, then marks them notified.
pub async fn send_digest(ctx: &mut Ctx<'_, '_>) -> EngineResult<()> {
    let tenant = ctx.tenant_id().to_owned();
    let open = ctx
        .tx
        .raw()
        .list_escalations(&tenant, Some("open"), 500)
        .await?;
    let waiting: Vec<EscalationRow> = open
        .into_iter()
        .filter(|e| e.notified_at.is_none())
        .collect();
    if waiting.is_empty() {
        return Ok(());
    }
    let Some(clinic_phone) = ctx.tenant.clinic_phone.clone() else {
        tracing::warn!(tenant = %tenant, "escalations waiting but the clinic has no phone to alert");
        return Ok(());
    };
    let mut reasons: std::collections::BTreeMap<&str, usize> = Default::default();
    for e in &waiting {
        *reasons.entry(e.reason.as_str()).or_default() += 1;
    }
    let summary: Vec<String> = reasons
        .iter()
        .map(|(r, n)| format!("{n} {}", r.replace('_', " ")))
        .collect();
    // Staff text: counts and reasons only, never a patient's details.
    let body = format!(
        "ARO: {} item(s) need staff: {}. See the staff view.",
        waiting.len(),
        summary.join(", ")
    );
    crate::outbound::enqueue_text(
        ctx,
        crate::outbound::OutboundText {
            to: &clinic_phone,
            subject_id: "tenant",
            customer_id: None,
            appointment_id: None,
            body: &body,
            purpose: "staff_digest",
            reminder: false,
            not_after: None,
        },
    )
    .await?;
    for mut e in waiting {
        e.notified_at = Some(ctx.now);
        ctx.tx.raw().update_escalation(&e).await?;
    }
    Ok(())
}
