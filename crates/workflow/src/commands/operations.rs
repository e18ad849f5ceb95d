//! The other commands: messages reported by providers, consent, tenant configuration,
//! escalations, the dead-letter queue and the audit trail.

use super::{aggregate_id, parse_payload};
use crate::consent::{self, ConsentStatus};
use crate::ctx::Ctx;
use crate::envelope::CommandEnvelope;
use crate::error::{EngineError, EngineResult};
use crate::replies::Inbound;
use aro_domain::EventType;
use aro_domain::message::{Channel, MessageStatus};
use aro_domain::tenant::TenantConfig;
use aro_domain::values::Phone;
use aro_store::AggregateRef;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InboundPayload {
    from: String,
    #[serde(default)]
    to: Option<String>,
    body: String,
    provider_ref: String,
    #[serde(default)]
    channel: Option<Channel>,
}

pub async fn record_inbound(
    ctx: &mut Ctx<'_, '_>,
    envelope: &CommandEnvelope,
) -> EngineResult<AggregateRef> {
    let p: InboundPayload = parse_payload(&envelope.payload)?;
    let from = Phone::parse(&p.from, ctx.tenant.region)
        .map_err(|e| EngineError::validation("payload.from", e.to_string()))?;
    if p.provider_ref.trim().is_empty() || p.provider_ref.len() > 128 {
        return Err(EngineError::validation(
            "payload.providerRef",
            "required, at most 128 characters",
        ));
    }
    if p.body.chars().count() > 1600 {
        return Err(EngineError::validation(
            "payload.body",
            "at most 1600 characters",
        ));
    }
    let outcome = crate::replies::handle_inbound(
        ctx,
        Inbound {
            from,
            to: p.to.unwrap_or_default(),
            body: p.body,
            provider_ref: p.provider_ref,
            channel: p.channel.unwrap_or(Channel::Sms),
        },
    )
    .await?;
    let id = outcome
        .get("messageId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok(AggregateRef::new("message", id))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeliveryPayload {
    provider_ref: String,
    status: String,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    message_id: Option<String>,
}

/// Twilio's statuses, read into ours.
fn delivery_status(raw: &str) -> Option<MessageStatus> {
    Some(match raw {
        "accepted" | "scheduled" | "queued" | "sending" => MessageStatus::Queued,
        "sent" => MessageStatus::Sent,
        "delivered" | "read" => MessageStatus::Delivered,
        "undelivered" => MessageStatus::Undelivered,
        "failed" | "canceled" => MessageStatus::Failed,
        _ => return None,
    })
}

pub async fn record_delivery_status(
    ctx: &mut Ctx<'_, '_>,
    envelope: &CommandEnvelope,
) -> EngineResult<AggregateRef> {
    let p: DeliveryPayload = parse_payload(&envelope.payload)?;
    apply_delivery_status(
        ctx,
        &p.provider_ref,
        &p.status,
        p.error_code,
        p.message_id.as_deref(),
    )
    .await
}

/// A provider's delivery report for one of our texts (the `message.record_delivery_status`
/// command and Twilio's status callbacks alike): finds the message by the provider's id, else
/// by ours, and moves its status forward only (a late `sent` never undoes `delivered`).
/// `status` is Twilio's word; an unknown one is a validation error, an unknown message
/// `NotFound("message")`.
pub async fn apply_delivery_status(
    ctx: &mut Ctx<'_, '_>,
    provider_ref: &str,
    status: &str,
    error_code: Option<String>,
    message_id: Option<&str>,
) -> EngineResult<AggregateRef> {
    let p = DeliveryPayload {
        provider_ref: provider_ref.to_owned(),
        status: status.to_owned(),
        error_code,
        message_id: message_id.map(str::to_owned),
    };
    let status = delivery_status(&p.status)
        .ok_or_else(|| EngineError::validation("payload.status", "not a delivery status"))?;
    let tenant = ctx.tenant_id().to_owned();
    let mut m = match ctx
        .tx
        .message_by_provider_ref(&tenant, &p.provider_ref)
        .await?
    {
        Some(m) => m,
        None => match &p.message_id {
            // The callback can beat the executor's report: find the message by our own id.
            Some(id) => ctx
                .tx
                .message(&tenant, id)
                .await?
                .ok_or(EngineError::NotFound("message"))?,
            None => return Err(EngineError::NotFound("message")),
        },
    };
    if m.provider_ref.is_none() {
        m.provider_ref = Some(p.provider_ref.clone());
    }
    let aggregate = match &m.appointment_id {
        Some(a) => AggregateRef::new("appointment", a),
        None => AggregateRef::new("message", &m.id),
    };
    if !m.status.advances_to(status) {
        ctx.tx.update_message(&m).await?;
        return Ok(aggregate);
    }
    m.status = status;
    m.error_code = p.error_code.clone().or(m.error_code);
    m.updated_at = ctx.now;
    ctx.tx.update_message(&m).await?;
    let base = json!({"messageId": m.id, "providerRef": p.provider_ref, "status": status,
                      "customerId": m.customer_id, "appointmentId": m.appointment_id, "purpose": m.purpose});
    match status {
        MessageStatus::Delivered => {
            ctx.emit(EventType::MessageDelivered, aggregate.clone(), base, None)
        }
        MessageStatus::Undelivered | MessageStatus::Failed => {
            let mut payload = base;
            payload["errorCode"] = json!(p.error_code);
            ctx.emit(
                EventType::MessageDeliveryFailed,
                aggregate.clone(),
                payload,
                None,
            );
            if let (Some(code), Some(index), Some(customer)) = (
                &p.error_code,
                m.counterpart_index.clone(),
                m.customer_id.clone(),
            ) && crate::results::is_opt_out_code(code)
            {
                consent::revoke_by_index(ctx, &index, &customer, "carrier_opt_out").await?;
            }
        }
        _ => {}
    }
    Ok(aggregate)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConsentPayload {
    phone: String,
    status: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    customer_id: Option<String>,
}

pub async fn set_consent(
    ctx: &mut Ctx<'_, '_>,
    envelope: &CommandEnvelope,
) -> EngineResult<AggregateRef> {
    let p: ConsentPayload = parse_payload(&envelope.payload)?;
    let phone = Phone::parse(&p.phone, ctx.tenant.region)
        .map_err(|e| EngineError::validation("payload.phone", e.to_string()))?;
    let status = match p.status.as_str() {
        "granted" => ConsentStatus::Granted,
        "revoked" => ConsentStatus::Revoked,
        _ => {
            return Err(EngineError::validation(
                "payload.status",
                "granted or revoked",
            ));
        }
    };
    let source = p.source.unwrap_or_else(|| "staff".into());
    if source.len() > 64 {
        return Err(EngineError::validation(
            "payload.source",
            "at most 64 characters",
        ));
    }
    let tenant = ctx.tenant_id().to_owned();
    let customer_id = match p.customer_id {
        Some(id) => Some(
            ctx.tx
                .get_customer(&tenant, &id)
                .await?
                .ok_or(EngineError::NotFound("customer"))?
                .id
                .to_string(),
        ),
        None => None,
    };
    consent::set(ctx, &phone, customer_id.as_deref(), status, &source).await?;
    let index = ctx.tx.phone_index(&tenant, &phone);
    Ok(AggregateRef::new("consent", index))
}

pub async fn update_config(
    ctx: &mut Ctx<'_, '_>,
    envelope: &CommandEnvelope,
) -> EngineResult<AggregateRef> {
    let id = aggregate_id(envelope, "tenant")?;
    if id != ctx.tenant_id() {
        return Err(EngineError::validation(
            "aggregate.id",
            "must be the tenant named in X-Tenant-Id",
        ));
    }
    let config: TenantConfig = parse_payload(&envelope.payload)?;
    let templates = config
        .validate()
        .map_err(|e| EngineError::validation(format!("payload.{}", e.field), e.reason))?;
    let codes: aro_replies::ReplyCodes = serde_json::to_value(&config.reply_codes)
        .and_then(serde_json::from_value)
        .map_err(|e| EngineError::validation("payload.replyCodes", e.to_string()))?;
    codes
        .validate()
        .map_err(|e| EngineError::validation("payload.replyCodes", e.to_string()))?;
    let tenant_id = ctx.tenant_id().to_owned();
    let (_, version) = ctx
        .tx
        .get_tenant(&tenant_id)
        .await?
        .ok_or(EngineError::NotFound("tenant"))?;
    let mut tenant = ctx.tenant.clone();
    tenant.config = config;
    ctx.tx.update_tenant(&tenant, version + 1, ctx.now).await?;
    let template_names: std::collections::BTreeMap<&str, Vec<String>> = templates
        .languages()
        .map(|l| {
            let names = tenant
                .config
                .templates
                .get(l)
                .map(|t| t.keys().cloned().collect())
                .unwrap_or_default();
            (l, names)
        })
        .collect();
    let payload = json!({
        "tenantId": tenant_id,
        "version": version + 1,
        "policies": tenant.config.policies,
        "templates": template_names,
        "replyCodes": tenant.config.reply_codes,
        "mappings": tenant.config.mappings,
        "actor": ctx.actor,
    });
    ctx.tenant = tenant;
    ctx.emit(
        EventType::TenantConfigUpdated,
        AggregateRef::new("tenant", &tenant_id),
        payload,
        None,
    );
    Ok(AggregateRef::new("tenant", tenant_id))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResolvePayload {
    resolution: String,
    #[serde(default)]
    note: Option<String>,
}

pub async fn resolve_escalation(
    ctx: &mut Ctx<'_, '_>,
    envelope: &CommandEnvelope,
) -> EngineResult<AggregateRef> {
    let id = aggregate_id(envelope, "escalation")?;
    let p: ResolvePayload = parse_payload(&envelope.payload)?;
    if p.resolution.trim().is_empty() || p.resolution.len() > 200 {
        return Err(EngineError::validation(
            "payload.resolution",
            "1–200 characters",
        ));
    }
    if p.note.as_ref().is_some_and(|n| n.chars().count() > 1000) {
        return Err(EngineError::validation(
            "payload.note",
            "at most 1000 characters",
        ));
    }
    crate::escalations::resolve(ctx, &id, &p.resolution, p.note.as_deref()).await?;
    Ok(AggregateRef::new("escalation", id))
}

async fn dead_letter_row(
    ctx: &mut Ctx<'_, '_>,
    envelope: &CommandEnvelope,
) -> EngineResult<aro_store::engine_rows::DeadLetterRow> {
    let id = aggregate_id(envelope, "dead_letter")?;
    let tenant = ctx.tenant_id().to_owned();
    ctx.tx
        .raw()
        .get_dead_letter(&tenant, &id)
        .await?
        .ok_or(EngineError::NotFound("dead letter"))
}

pub async fn retry_dead_letter(
    ctx: &mut Ctx<'_, '_>,
    envelope: &CommandEnvelope,
) -> EngineResult<AggregateRef> {
    let mut dl = dead_letter_row(ctx, envelope).await?;
    if dl.status != "open" {
        return Err(EngineError::Conflict {
            code: "DEAD_LETTER_NOT_OPEN",
            message: format!("the dead letter is {}", dl.status),
        });
    }
    let mut execution = ctx
        .tx
        .raw()
        .get_execution(&dl.execution_id)
        .await?
        .filter(|e| e.tenant_id == dl.tenant_id)
        .ok_or(EngineError::NotFound("execution"))?;
    execution.status = "ready".into();
    execution.attempt = 0;
    execution.deferrals = 0;
    execution.available_at = ctx.real_now;
    execution.lease_owner = None;
    execution.lease_until = None;
    execution.updated_at = ctx.real_now;
    ctx.tx.raw().update_execution(&execution).await?;
    dl.status = "retried".into();
    dl.updated_at = ctx.real_now;
    ctx.tx.raw().update_dead_letter(&dl).await?;
    crate::audit::append(
        ctx,
        "dead_letter.retry",
        Some(&dl.id),
        json!({"executionId": dl.execution_id}),
    )
    .await?;
    Ok(AggregateRef::new("dead_letter", dl.id))
}

pub async fn archive_dead_letter(
    ctx: &mut Ctx<'_, '_>,
    envelope: &CommandEnvelope,
) -> EngineResult<AggregateRef> {
    let mut dl = dead_letter_row(ctx, envelope).await?;
    if dl.status == "archived" {
        return Err(EngineError::Conflict {
            code: "DEAD_LETTER_NOT_OPEN",
            message: "the dead letter is already archived".into(),
        });
    }
    dl.status = "archived".into();
    dl.updated_at = ctx.real_now;
    ctx.tx.raw().update_dead_letter(&dl).await?;
    crate::audit::append(
        ctx,
        "dead_letter.archive",
        Some(&dl.id),
        json!({"executionId": dl.execution_id}),
    )
    .await?;
    Ok(AggregateRef::new("dead_letter", dl.id))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AuditPayload {
    action: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    detail: Value,
    #[serde(default)]
    actor: Option<String>,
}

pub async fn record_audit(
    ctx: &mut Ctx<'_, '_>,
    envelope: &CommandEnvelope,
) -> EngineResult<AggregateRef> {
    let p: AuditPayload = parse_payload(&envelope.payload)?;
    if p.action.trim().is_empty() || p.action.len() > 100 {
        return Err(EngineError::validation(
            "payload.action",
            "1–100 characters",
        ));
    }
    if let Some(actor) = &p.actor {
        if actor.len() > 200 {
            return Err(EngineError::validation(
                "payload.actor",
                "at most 200 characters",
            ));
        }
        // The caller's own identity stays in front: a service cannot pose as someone else.
        ctx.actor = format!("{} for {actor}", ctx.actor);
    }
    let seq = crate::audit::append(ctx, &p.action, p.subject.as_deref(), p.detail).await?;
    Ok(AggregateRef::new("audit", seq.to_string()))
}
