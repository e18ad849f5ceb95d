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
    // Staff text: counts and reasons only, never a patient's details.
    let body = digest_text(
        ctx.tenant.default_language.as_str(),
        waiting.iter().map(|e| e.reason.as_str()),
    );
    crate::outbound::enqueue_text(
        ctx,
        crate::outbound::OutboundText {
            to: &clinic_phone,
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

/// The digest's words, in the clinic's language (its patients' default; English when ARO has no
/// words in it): how many items wait, then each reason with its count, most frequent first.
fn digest_text<'a>(language: &str, reasons: impl Iterator<Item = &'a str>) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for reason in reasons {
        *counts.entry(reason).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    let mut ordered: Vec<(&str, usize)> = counts.into_iter().collect();
    ordered.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let spanish = language.eq_ignore_ascii_case("es");
    let items: Vec<String> = ordered
        .into_iter()
        .map(|(reason, n)| match reason_words(reason, spanish) {
            Some((one, _)) if n == 1 => format!("1 {one}"),
            Some((_, many)) => format!("{n} {many}"),
            // A reason this table does not know yet: its code, readable.
            None => format!("{n} {}", reason.replace('_', " ")),
        })
        .collect();
    let items = items.join(", ");
    match (spanish, total) {
        (false, 1) => format!("ARO: 1 item needs staff: {items}. See the staff view."),
        (false, n) => format!("ARO: {n} items need staff: {items}. See the staff view."),
        (true, 1) => {
            format!("ARO: 1 asunto espera al personal: {items}. Vea la vista del personal.")
        }
        (true, n) => {
            format!("ARO: {n} asuntos esperan al personal: {items}. Vea la vista del personal.")
        }
    }
}

/// A reason's words (singular, plural). The Spanish avoids the accented vowels GSM-7 lacks
/// (it has é), so the digest stays in the cheaper encoding.
fn reason_words(reason: &str, spanish: bool) -> Option<(&'static str, &'static str)> {
    let (en, es) = match reason {
        "no_reply" => (
            ("unanswered reminder", "unanswered reminders"),
            ("recordatorio sin respuesta", "recordatorios sin respuesta"),
        ),
        "cancel_request" => (
            ("cancellation request", "cancellation requests"),
            ("solicitud de cancelar", "solicitudes de cancelar"),
        ),
        "reschedule_request" => (
            ("reschedule request", "reschedule requests"),
            (
                "solicitud de cambio de cita",
                "solicitudes de cambio de cita",
            ),
        ),
        "question" => (("question", "questions"), ("pregunta", "preguntas")),
        "unclear_reply" => (
            ("unclear reply", "unclear replies"),
            ("respuesta poco clara", "respuestas poco claras"),
        ),
        "unmatched_reply" => (
            (
                "reply without an upcoming visit",
                "replies without an upcoming visit",
            ),
            (
                "respuesta sin cita pendiente",
                "respuestas sin cita pendiente",
            ),
        ),
        "ambiguous_sender" => (
            ("reply from a shared phone", "replies from shared phones"),
            (
                "respuesta de un teléfono compartido",
                "respuestas de teléfonos compartidos",
            ),
        ),
        "cancel_keyword_opt_out" => (
            ("opt-out by CANCEL", "opt-outs by CANCEL"),
            ("baja con CANCEL", "bajas con CANCEL"),
        ),
        "deposit_unpaid" => (
            ("unpaid deposit", "unpaid deposits"),
            ("anticipo sin pagar", "anticipos sin pagar"),
        ),
        "deposit_link_failed" => (
            ("deposit link not created", "deposit links not created"),
            ("enlace de anticipo fallido", "enlaces de anticipo fallidos"),
        ),
        "timer_failed" => (
            ("scheduled step that failed", "scheduled steps that failed"),
            ("paso programado fallido", "pasos programados fallidos"),
        ),
        _ => return None,
    };
    Some(if spanish { es } else { en })
}

#[cfg(test)]
mod tests {
    use super::digest_text;
    use aro_domain::template::Encoding;

    #[test]
    fn one_item_in_english() {
        assert_eq!(
            digest_text("en", ["no_reply"].into_iter()),
            "ARO: 1 item needs staff: 1 unanswered reminder. See the staff view."
        );
    }

    #[test]
    fn most_frequent_reason_first_with_plurals() {
        let reasons = [
            "question",
            "cancel_request",
            "cancel_request",
            "ambiguous_sender",
        ];
        assert_eq!(
            digest_text("en", reasons.into_iter()),
            "ARO: 4 items need staff: 2 cancellation requests, 1 reply from a shared phone, \
             1 question. See the staff view."
        );
    }

    #[test]
    fn spanish_clinics_read_spanish_in_gsm7() {
        let text = digest_text("es", ["no_reply", "no_reply", "deposit_unpaid"].into_iter());
        assert_eq!(
            text,
            "ARO: 3 asuntos esperan al personal: 2 recordatorios sin respuesta, 1 anticipo sin \
             pagar. Vea la vista del personal."
        );
        assert_eq!(Encoding::of(&text), Encoding::Gsm7);
        let shared = digest_text("es", ["ambiguous_sender"].into_iter());
        assert_eq!(Encoding::of(&shared), Encoding::Gsm7, "{shared}");
    }

    #[test]
    fn a_timer_given_up_reads_as_a_failed_step_in_both_languages() {
        assert_eq!(
            digest_text("en", ["timer_failed", "timer_failed"].into_iter()),
            "ARO: 2 items need staff: 2 scheduled steps that failed. See the staff view."
        );
        let es = digest_text("es", ["timer_failed"].into_iter());
        assert_eq!(
            es,
            "ARO: 1 asunto espera al personal: 1 paso programado fallido. Vea la vista del \
             personal."
        );
        assert_eq!(Encoding::of(&es), Encoding::Gsm7, "{es}");
    }

    #[test]
    fn an_unknown_reason_reads_as_its_code_and_other_languages_fall_back_to_english() {
        assert_eq!(
            digest_text("fr", ["new_kind_of_thing"].into_iter()),
            "ARO: 1 item needs staff: 1 new kind of thing. See the staff view."
        );
    }
}
