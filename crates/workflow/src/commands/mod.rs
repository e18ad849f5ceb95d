//! Command handlers: one function per command type, each validating its payload (422 naming
//! the field), checking transitions (409), and deciding inside the caller's transaction.

pub mod appointments;
pub mod operations;

use crate::ctx::Ctx;
use crate::envelope::CommandEnvelope;
use crate::error::{EngineError, EngineResult};
use aro_store::AggregateRef;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Reads a payload, naming the offending field (`payload.startsAt`) when it does not fit.
pub fn parse_payload<T: DeserializeOwned>(payload: &Value) -> EngineResult<T> {
    serde_path_to_error::deserialize(payload).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "payload".to_owned()
        } else {
            format!("payload.{path}")
        };
        let reason = e.into_inner().to_string();
        let reason = match reason.rfind(" at line ") {
            Some(i) => reason[..i].to_owned(),
            None => reason,
        };
        EngineError::validation(field, reason)
    })
}

/// The aggregate id a command acts on (required for everything but creation).
pub fn aggregate_id(envelope: &CommandEnvelope, kind: &str) -> EngineResult<String> {
    if envelope.aggregate.kind != kind {
        return Err(EngineError::validation(
            "aggregate.type",
            format!("must be \"{kind}\""),
        ));
    }
    envelope
        .aggregate
        .id
        .clone()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| EngineError::validation("aggregate.id", "required"))
}

/// Applies one command; returns the aggregate it acted on.
pub async fn dispatch(
    ctx: &mut Ctx<'_, '_>,
    envelope: &CommandEnvelope,
) -> EngineResult<AggregateRef> {
    match envelope.command_type.as_str() {
        "appointment.upsert" => appointments::upsert_command(ctx, envelope).await,
        "appointment.confirm" => appointments::confirm(ctx, envelope).await,
        "appointment.check_in" => appointments::check_in(ctx, envelope).await,
        "appointment.cancel" => appointments::cancel(ctx, envelope).await,
        "appointment.reschedule" => appointments::reschedule(ctx, envelope).await,
        "appointment.mark_completed" => appointments::mark_completed(ctx, envelope).await,
        "appointment.mark_no_show" => appointments::mark_no_show(ctx, envelope).await,
        "message.record_inbound" => operations::record_inbound(ctx, envelope).await,
        "message.record_delivery_status" => operations::record_delivery_status(ctx, envelope).await,
        "consent.set" => operations::set_consent(ctx, envelope).await,
        "tenant.update_config" => operations::update_config(ctx, envelope).await,
        "escalation.resolve" => operations::resolve_escalation(ctx, envelope).await,
        "dead_letter.retry" => operations::retry_dead_letter(ctx, envelope).await,
        "dead_letter.archive" => operations::archive_dead_letter(ctx, envelope).await,
        "audit.record" => operations::record_audit(ctx, envelope).await,
        other => Err(EngineError::validation(
            "commandType",
            format!("unknown command type {other:?}"),
        )),
    }
}
