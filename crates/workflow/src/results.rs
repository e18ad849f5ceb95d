//! What an execution's outcome means for the domain: a sent text becomes `message.sent`, a
//! refused one `message.delivery_failed` (and, for a recipient who opted out at the carrier, a
//! revoked consent), a payment link becomes `payment.link_created`, and so on.

use crate::ctx::Ctx;
use crate::error::EngineResult;
use crate::executions::{ExecutionResult, ResultError};
use aro_domain::EventType;
use aro_domain::message::MessageStatus;
use aro_store::engine_rows::ExecutionRow;
use aro_store::{AggregateRef, Message};
use serde_json::{Value, json};

/// The execution's payload, opened; `Null` once its patient was erased.
pub async fn payload(ctx: &mut Ctx<'_, '_>, row: &ExecutionRow) -> EngineResult<Value> {
    Ok(ctx.tx.execution_payload(row).await?.unwrap_or(Value::Null))
}

/// Provider codes meaning the recipient has opted out at the carrier (Twilio 21610).
pub fn is_opt_out_code(code: &str) -> bool {
    matches!(code, "21610" | "RECIPIENT_OPTED_OUT")
}

async fn message_of(ctx: &mut Ctx<'_, '_>, row: &ExecutionRow) -> EngineResult<Option<Message>> {
    if !row.command_type.starts_with("messaging.") {
        return Ok(None);
    }
    let payload = payload(ctx, row).await?;
    let Some(id) = payload.get("messageId").and_then(Value::as_str) else {
        return Ok(None);
    };
    let tenant = row.tenant_id.clone();
    Ok(ctx.tx.message(&tenant, id).await?)
}

fn message_aggregate(m: &Message) -> AggregateRef {
    match &m.appointment_id {
        Some(a) => AggregateRef::new("appointment", a),
        None => AggregateRef::new("message", &m.id),
    }
}

pub async fn on_succeeded(
    ctx: &mut Ctx<'_, '_>,
    row: &ExecutionRow,
    result: &ExecutionResult,
) -> EngineResult<()> {
    if let Some(mut m) = message_of(ctx, row).await? {
        let reported = result
            .output
            .as_ref()
            .and_then(|o| o.get("status"))
            .and_then(Value::as_str)
            .and_then(MessageStatus::parse)
            .unwrap_or(MessageStatus::Queued);
        if m.status.advances_to(reported) {
            m.status = reported;
        }
        m.provider_ref = result.provider_ref.clone().or(m.provider_ref);
        m.updated_at = ctx.now;
        ctx.tx.update_message(&m).await?;
        ctx.emit(
            EventType::MessageSent,
            message_aggregate(&m),
            json!({"messageId": m.id, "providerRef": m.provider_ref, "purpose": m.purpose,
                   "customerId": m.customer_id, "appointmentId": m.appointment_id}),
            None,
        );
        return Ok(());
    }
    crate::followups::on_execution_succeeded(ctx, row, result).await
}

/// Marks a text failed and records why; a carrier opt-out also revokes consent.
async fn fail_message(ctx: &mut Ctx<'_, '_>, mut m: Message, code: &str) -> EngineResult<()> {
    m.status = MessageStatus::Failed;
    m.error_code = Some(code.to_owned());
    m.updated_at = ctx.now;
    ctx.tx.update_message(&m).await?;
    ctx.emit(
        EventType::MessageDeliveryFailed,
        message_aggregate(&m),
        json!({"messageId": m.id, "errorCode": code, "purpose": m.purpose,
               "customerId": m.customer_id, "appointmentId": m.appointment_id}),
        None,
    );
    if is_opt_out_code(code)
        && let (Some(index), Some(customer_id)) =
            (m.counterpart_index.clone(), m.customer_id.clone())
    {
        crate::consent::revoke_by_index(ctx, &index, &customer_id, "carrier_opt_out").await?;
    }
    if m.purpose.starts_with("reminder_")
        && let Some(appointment_id) = &m.appointment_id
    {
        crate::visits::mark_reminder_outcome(ctx, appointment_id, &m.purpose, "failed", Some(code))
            .await?;
    }
    Ok(())
}

pub async fn on_failed(
    ctx: &mut Ctx<'_, '_>,
    row: &ExecutionRow,
    error: &ResultError,
) -> EngineResult<()> {
    if let Some(m) = message_of(ctx, row).await? {
        return fail_message(ctx, m, &error.code).await;
    }
    crate::followups::on_execution_failed(ctx, row, &error.code).await
}

pub async fn on_dead_lettered(
    ctx: &mut Ctx<'_, '_>,
    row: &ExecutionRow,
    code: &str,
) -> EngineResult<()> {
    if let Some(m) = message_of(ctx, row).await? {
        return fail_message(ctx, m, code).await;
    }
    crate::followups::on_execution_failed(ctx, row, code).await
}

pub async fn on_expired(ctx: &mut Ctx<'_, '_>, row: &ExecutionRow) -> EngineResult<()> {
    if let Some(mut m) = message_of(ctx, row).await? {
        m.status = MessageStatus::Cancelled;
        m.error_code = Some("expired".into());
        m.updated_at = ctx.now;
        ctx.tx.update_message(&m).await?;
        if m.purpose.starts_with("reminder_")
            && let Some(appointment_id) = m.appointment_id.clone()
        {
            crate::visits::mark_reminder_outcome(
                ctx,
                &appointment_id,
                &m.purpose,
                "skipped",
                Some("expired"),
            )
            .await?;
            ctx.emit(
                EventType::ReminderSkipped,
                AggregateRef::new("appointment", &appointment_id),
                json!({"appointmentId": appointment_id, "kind": m.purpose, "reason": "expired"}),
                None,
            );
        }
        return Ok(());
    }
    crate::followups::on_execution_failed(ctx, row, "expired").await
}

/// Withdraws every text not yet handed to the provider for an aggregate (cancellation,
/// reschedule) or a number (opt-out); returns how many.
pub async fn withdraw_open_texts(
    ctx: &mut Ctx<'_, '_>,
    aggregate_id: &str,
    only_index: Option<&str>,
) -> EngineResult<usize> {
    let tenant = ctx.tenant_id().to_owned();
    let open = ctx
        .tx
        .raw()
        .open_executions_for_aggregate(&tenant, aggregate_id)
        .await?;
    let mut withdrawn = 0;
    for mut row in open {
        // A leased send may already be at the provider; only ready ones can be withdrawn.
        if row.status != "ready" || !row.command_type.starts_with("messaging.") {
            continue;
        }
        let message = message_of(ctx, &row).await?;
        if let (Some(index), Some(m)) = (only_index, &message)
            && m.counterpart_index.as_deref() != Some(index)
        {
            continue;
        }
        row.status = "cancelled".into();
        row.updated_at = ctx.real_now;
        ctx.tx.raw().update_execution(&row).await?;
        if let Some(mut m) = message {
            m.status = MessageStatus::Cancelled;
            m.updated_at = ctx.now;
            ctx.tx.update_message(&m).await?;
        }
        withdrawn += 1;
    }
    Ok(withdrawn)
}
