//! The life of one visit as a workflow: reminders planned when it is booked, moved when it is
//! rescheduled, removed when it is cancelled, stopped when the patient confirms; the automatic
//! completion two hours after its end; what follows an outcome. Every change goes through the
//! appointment state machine and leaves an event carrying the appointment as it now is.

use crate::ctx::Ctx;
use crate::error::{EngineError, EngineResult};
use crate::plan::{plan_reminders, reminder_kind};
use crate::snapshot::{appointment_payload, customer_pii};
use crate::timers::{self, TimerKind};
use aro_domain::EventType;
use aro_domain::appointment::{AUTO_COMPLETE_AFTER, Appointment, AppointmentStatus};
use aro_domain::customer::Customer;
use aro_domain::values::Phone;
use aro_domain::workflow::WorkflowState;
use aro_store::AggregateRef;
use aro_store::engine_rows::{ReminderLogRow, WorkflowRow};
use chrono::Duration;
use serde_json::{Value, json};
use sqlx::types::Json;

pub const VISIT_WORKFLOW: &str = "visit";

pub fn aggregate(a: &Appointment) -> AggregateRef {
    AggregateRef::new("appointment", a.id.as_str())
}

/// The visit workflow of an appointment, if one was started.
pub async fn workflow_of(
    ctx: &mut Ctx<'_, '_>,
    appointment_id: &str,
) -> EngineResult<Option<WorkflowRow>> {
    let tenant = ctx.tenant_id().to_owned();
    Ok(ctx
        .tx
        .raw()
        .workflows_for_aggregate(&tenant, appointment_id)
        .await?
        .into_iter()
        .find(|w| w.kind == VISIT_WORKFLOW))
}

/// Moves a workflow along its state machine; an impossible move is logged, not applied.
pub async fn set_workflow_state(
    ctx: &mut Ctx<'_, '_>,
    mut wf: WorkflowRow,
    to: WorkflowState,
    step: &str,
) -> EngineResult<WorkflowRow> {
    let from = WorkflowState::parse(&wf.state).unwrap_or(WorkflowState::Pending);
    if from == to {
        wf.step = Some(step.to_owned());
    } else {
        match from.transition(to) {
            Ok(_) => {
                wf.state = to.as_str().into();
                wf.step = Some(step.to_owned());
            }
            Err(e) => {
                tracing::debug!(workflow = %wf.id, error = %e, "workflow state unchanged");
                return Ok(wf);
            }
        }
    }
    wf.updated_at = ctx.now;
    ctx.tx.raw().update_workflow(&wf).await?;
    Ok(wf)
}

/// Makes `ctx` act within the appointment's visit workflow, starting one when missing.
pub async fn enter_workflow(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<WorkflowRow> {
    if let Some(wf) = workflow_of(ctx, a.id.as_str()).await? {
        ctx.workflow_id = Some(wf.id.clone());
        return Ok(wf);
    }
    let wf = WorkflowRow {
        tenant_id: ctx.tenant_id().to_owned(),
        id: aro_store::ids::new_id(aro_domain::ids::prefix::WORKFLOW),
        kind: VISIT_WORKFLOW.into(),
        state: WorkflowState::Pending.as_str().into(),
        aggregate_type: "appointment".into(),
        aggregate_id: a.id.to_string(),
        step: Some("booked".into()),
        data: Json(json!({})),
        attempt: 0,
        correlation_id: Some(ctx.correlation_id.clone()),
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    ctx.tx.raw().insert_workflow(&wf).await?;
    ctx.workflow_id = Some(wf.id.clone());
    Ok(wf)
}

/// Writes an appointment change (optimistic on version) and emits its event.
pub async fn save(
    ctx: &mut Ctx<'_, '_>,
    mut a: Appointment,
    event_type: EventType,
    customer: Option<&Customer>,
    extra: Value,
) -> EngineResult<Appointment> {
    let expected = a.version;
    a.version += 1;
    a.updated_at = ctx.now;
    if !ctx.tx.update_appointment(&a, expected).await? {
        return Err(EngineError::Conflict {
            code: "CONCURRENT_UPDATE",
            message: "the appointment changed while this command ran; retry".into(),
        });
    }
    let payload = appointment_payload(&a, customer, extra);
    ctx.emit(
        event_type,
        aggregate(&a),
        payload,
        customer.map(customer_pii),
    );
    Ok(a)
}

/// Applies a state transition (checked against the state machine) and emits `event_type`.
pub async fn transition(
    ctx: &mut Ctx<'_, '_>,
    mut a: Appointment,
    to: AppointmentStatus,
    event_type: EventType,
    extra: Value,
) -> EngineResult<Appointment> {
    let from = a.status;
    if from.is_outcome() && to.is_outcome() {
        aro_domain::appointment::check_outcome_correction(
            from,
            to,
            a.ends_at,
            ctx.now,
            ctx.tenant.config.policies.correction_window_hours,
        )?;
    } else {
        from.transition(to)?;
    }
    a.status = to;
    let mut extra = extra;
    if let Value::Object(map) = &mut extra {
        map.insert("previousStatus".into(), json!(from));
        map.insert("actor".into(), json!(ctx.actor));
    }
    save(ctx, a, event_type, None, extra).await
}

async fn log_reminder(
    ctx: &mut Ctx<'_, '_>,
    a: &Appointment,
    kind: &str,
    due: chrono::DateTime<chrono::Utc>,
    status: &str,
    reason: Option<&str>,
) -> EngineResult<()> {
    let tenant_id = ctx.tenant_id().to_owned();
    ctx.tx
        .raw()
        .insert_reminder_log(&ReminderLogRow {
            tenant_id,
            id: aro_store::ids::new_id("rem"),
            appointment_id: a.id.to_string(),
            kind: kind.to_owned(),
            due_at: due,
            status: status.to_owned(),
            reason: reason.map(str::to_owned),
            message_id: None,
            created_at: ctx.now,
            updated_at: ctx.now,
        })
        .await?;
    Ok(())
}

/// Records what became of a reminder (sent, skipped, failed) on its log row.
pub async fn mark_reminder_outcome(
    ctx: &mut Ctx<'_, '_>,
    appointment_id: &str,
    kind: &str,
    status: &str,
    reason: Option<&str>,
) -> EngineResult<()> {
    let tenant = ctx.tenant_id().to_owned();
    let logs = ctx
        .tx
        .raw()
        .reminder_logs_for_appointment(&tenant, appointment_id)
        .await?;
    if let Some(mut log) = logs
        .into_iter()
        .rev()
        .find(|l| l.kind == kind && matches!(l.status.as_str(), "scheduled" | "sent"))
    {
        log.status = status.to_owned();
        log.reason = reason.map(str::to_owned);
        log.updated_at = ctx.now;
        ctx.tx.raw().update_reminder_log(&log).await?;
    }
    Ok(())
}

/// The zone reminders are windowed in: the patient's, else the clinic's.
fn reminder_zone(ctx: &Ctx<'_, '_>, a: &Appointment, customer: &Customer) -> chrono_tz::Tz {
    a.zone.or(customer.zone).unwrap_or(ctx.tenant.zone).tz()
}

/// Plans and schedules the reminders and the automatic completion of a booked visit.
pub async fn schedule_reminders(
    ctx: &mut Ctx<'_, '_>,
    a: &Appointment,
    customer: &Customer,
) -> EngineResult<()> {
    let wf = enter_workflow(ctx, a).await?;
    let wf = set_workflow_state(ctx, wf, WorkflowState::Running, "planning").await?;
    let text_capable = customer.phone.as_ref().is_some_and(Phone::is_text_capable);
    let policies = ctx.tenant.config.policies.clone();
    if !text_capable || a.needs_contact {
        for offset in &policies.reminder_offsets_hours {
            let kind = reminder_kind(*offset);
            log_reminder(
                ctx,
                a,
                &kind,
                a.starts_at,
                "skipped",
                Some("no_text_capable_number"),
            )
            .await?;
            ctx.emit(
                EventType::ReminderSkipped,
                aggregate(a),
                json!({"appointmentId": a.id, "kind": kind, "reason": "no_text_capable_number"}),
                None,
            );
        }
    } else {
        let zone = reminder_zone(ctx, a, customer);
        let plan = plan_reminders(
            a.starts_at,
            ctx.now,
            &policies.reminder_offsets_hours,
            policies.send_window,
            zone,
        );
        for r in &plan.reminders {
            timers::schedule(
                ctx,
                TimerKind::Reminder,
                a.id.as_str(),
                r.due_at,
                json!({"template": r.kind, "offsetHours": r.offset_hours}),
            )
            .await?;
            log_reminder(ctx, a, &r.kind, r.due_at, "scheduled", None).await?;
            ctx.emit(
                EventType::ReminderScheduled,
                aggregate(a),
                json!({"appointmentId": a.id, "kind": r.kind, "dueAt": r.due_at, "nominalAt": r.nominal}),
                None,
            );
        }
        for s in &plan.skipped {
            log_reminder(
                ctx,
                a,
                &s.kind,
                a.starts_at,
                "skipped",
                Some(s.reason.as_str()),
            )
            .await?;
            ctx.emit(
                EventType::ReminderSkipped,
                aggregate(a),
                json!({"appointmentId": a.id, "kind": s.kind, "reason": s.reason.as_str()}),
                None,
            );
        }
    }
    timers::schedule(
        ctx,
        TimerKind::AutoComplete,
        a.id.as_str(),
        a.ends_at + AUTO_COMPLETE_AFTER,
        json!({}),
    )
    .await?;
    set_workflow_state(ctx, wf, WorkflowState::Waiting, "awaiting_visit").await?;
    Ok(())
}

/// Cancels the visit's pending reminder and no-reply timers; each cancelled reminder's log row
/// records `outcome` with `reason`, and `reminder.skipped` is emitted when `emit` is set.
async fn cancel_reminders(
    ctx: &mut Ctx<'_, '_>,
    a: &Appointment,
    outcome: &str,
    reason: &str,
    emit: bool,
) -> EngineResult<()> {
    let cancelled = timers::cancel(
        ctx,
        a.id.as_str(),
        &[TimerKind::Reminder, TimerKind::NoReplyCheck],
    )
    .await?;
    for t in cancelled
        .iter()
        .filter(|t| t.kind == TimerKind::Reminder.as_str())
    {
        let kind = t
            .payload
            .0
            .get("template")
            .and_then(Value::as_str)
            .unwrap_or("reminder")
            .to_owned();
        mark_reminder_outcome(ctx, a.id.as_str(), &kind, outcome, Some(reason)).await?;
        if emit {
            ctx.emit(
                EventType::ReminderSkipped,
                aggregate(a),
                json!({"appointmentId": a.id, "kind": kind, "reason": reason}),
                None,
            );
        }
    }
    Ok(())
}

/// Cancels what is pending for the visit's reminders (timers, queued texts, log rows).
pub async fn unschedule_reminders(
    ctx: &mut Ctx<'_, '_>,
    a: &Appointment,
    reason: &str,
    emit_skips: bool,
) -> EngineResult<()> {
    cancel_reminders(ctx, a, "cancelled", reason, emit_skips).await?;
    crate::results::withdraw_open_texts(ctx, a.id.as_str(), None).await?;
    Ok(())
}

/// The patient confirmed: no more reminders for this visit.
pub async fn on_confirmed(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<()> {
    enter_workflow(ctx, a).await?;
    cancel_reminders(ctx, a, "skipped", "confirmed", true).await
}

/// The visit was cancelled: everything pending for it goes.
pub async fn on_cancelled(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<()> {
    let wf = enter_workflow(ctx, a).await?;
    unschedule_reminders(ctx, a, "cancelled", true).await?;
    timers::cancel(
        ctx,
        a.id.as_str(),
        &[
            TimerKind::AutoComplete,
            TimerKind::ReviewRequest,
            TimerKind::RebookOffer,
            TimerKind::DepositNudge,
            TimerKind::DepositAlert,
        ],
    )
    .await?;
    set_workflow_state(ctx, wf, WorkflowState::Cancelled, "cancelled").await?;
    Ok(())
}

/// The visit moved: reminders and the automatic completion follow it.
pub async fn on_rescheduled(
    ctx: &mut Ctx<'_, '_>,
    a: &Appointment,
    customer: &Customer,
) -> EngineResult<()> {
    enter_workflow(ctx, a).await?;
    unschedule_reminders(ctx, a, "rescheduled", false).await?;
    timers::cancel(ctx, a.id.as_str(), &[TimerKind::AutoComplete]).await?;
    schedule_reminders(ctx, a, customer).await
}

/// The visit happened: reminders stop; the review request (and later the rebooking offer)
/// are scheduled.
pub async fn on_completed(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<()> {
    let wf = enter_workflow(ctx, a).await?;
    timers::cancel(
        ctx,
        a.id.as_str(),
        &[
            TimerKind::Reminder,
            TimerKind::NoReplyCheck,
            TimerKind::AutoComplete,
        ],
    )
    .await?;
    crate::followups::schedule_after_visit(ctx, a).await?;
    set_workflow_state(ctx, wf, WorkflowState::Waiting, "after_visit").await?;
    Ok(())
}

/// The patient did not come: no review; recovery and risk instead.
pub async fn on_no_show(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<()> {
    let wf = enter_workflow(ctx, a).await?;
    timers::cancel(
        ctx,
        a.id.as_str(),
        &[
            TimerKind::Reminder,
            TimerKind::NoReplyCheck,
            TimerKind::AutoComplete,
            TimerKind::ReviewRequest,
            TimerKind::RebookOffer,
        ],
    )
    .await?;
    crate::followups::after_no_show(ctx, a).await?;
    set_workflow_state(ctx, wf, WorkflowState::Waiting, "after_no_show").await?;
    Ok(())
}

/// How long after the last reminder silence becomes a question for staff.
pub fn no_reply_after(ctx: &Ctx<'_, '_>) -> Duration {
    Duration::hours(i64::from(ctx.tenant.config.policies.escalate_after_hours))
}
