//! The life of one visit as a workflow: reminders planned when it is booked, moved when it is
//! rescheduled, removed when it is cancelled, stopped when the patient confirms; the automatic
//! completion two hours after its end; what follows an outcome. Every change goes through the
//! appointment state machine and leaves an event carrying the appointment as it now is.
//!
//! The visit's workflow run follows the workflow state machine: `pending` → `running` (planning)
//! → `waiting` (for its timers) ⇄ `retrying` (a timer being retried) → `completed` (outcome in,
//! nothing more planned), `cancelled` (visit cancelled) or `failed` (a timer gave up).

use crate::ctx::Ctx;
use crate::error::{EngineError, EngineResult};
use crate::plan::{plan_reminders, reminder_kind};
use crate::snapshot::{appointment_payload, customer_pii};
use crate::timers::{self, TimerKind};
use aro_domain::EventType;
use aro_domain::appointment::{AUTO_COMPLETE_AFTER, Appointment, AppointmentStatus};
use aro_domain::customer::Customer;
use aro_domain::values::Phone;
use aro_domain::workflow::{WorkflowState, WorkflowTransitionError};
use aro_store::AggregateRef;
use aro_store::engine_rows::{ReminderLogRow, WorkflowRow};
use chrono::Duration;
use serde_json::{Value, json};
use sqlx::types::Json;

pub const VISIT_WORKFLOW: &str = "visit";

pub fn aggregate(a: &Appointment) -> AggregateRef {
    AggregateRef::new("appointment", a.id.as_str())
}

/// The visit's latest workflow run, if one was started. A visit has one run at a time; a new one
/// starts only after the last one ended (see [`active_run`]).
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
        .rfind(|w| w.kind == VISIT_WORKFLOW))
}

/// A refused workflow move as an engine error: the engine never asks for one on purpose, so this
/// is a conflict with what is stored, not something the caller did wrong.
fn refused(e: WorkflowTransitionError) -> EngineError {
    EngineError::Conflict {
        code: "WORKFLOW_TRANSITION",
        message: e.to_string(),
    }
}

pub fn state_of(wf: &WorkflowRow) -> EngineResult<WorkflowState> {
    WorkflowState::parse(&wf.state).ok_or_else(|| {
        EngineError::validation(
            "workflow.state",
            format!("unknown workflow state {:?}", wf.state),
        )
    })
}

/// The moves from `from` to `to` that the state machine allows: the direct one, else one by way
/// of `running` (waiting → running → completed: the run wakes up to finish) or `retrying`.
/// Every hop is a [`WorkflowState::transition`]; no way at all is its error.
fn moves(
    from: WorkflowState,
    to: WorkflowState,
) -> Result<Vec<WorkflowState>, WorkflowTransitionError> {
    if from == to {
        return Ok(Vec::new());
    }
    if let Ok(next) = from.transition(to) {
        return Ok(vec![next]);
    }
    for via in [WorkflowState::Running, WorkflowState::Retrying] {
        if let (Ok(first), Ok(second)) = (from.transition(via), via.transition(to)) {
            return Ok(vec![first, second]);
        }
    }
    from.transition(to).map(|next| vec![next])
}

/// Moves a workflow to `to` along its state machine and records `step`; a move the machine does
/// not allow (out of `completed`, `failed` or `cancelled`) is a `WORKFLOW_TRANSITION` conflict.
pub async fn move_workflow(
    ctx: &mut Ctx<'_, '_>,
    mut wf: WorkflowRow,
    to: WorkflowState,
    step: &str,
) -> EngineResult<WorkflowRow> {
    let from = state_of(&wf)?;
    let state = moves(from, to)
        .map_err(refused)?
        .last()
        .copied()
        .unwrap_or(from);
    wf.state = state.as_str().into();
    wf.step = Some(step.to_owned());
    wf.updated_at = ctx.now;
    ctx.tx.raw().update_workflow(&wf).await?;
    Ok(wf)
}

async fn start_run(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<WorkflowRow> {
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

/// Makes `ctx` act within the appointment's visit workflow (its latest run, ended or not),
/// starting one when missing.
pub async fn enter_workflow(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<WorkflowRow> {
    if let Some(wf) = workflow_of(ctx, a.id.as_str()).await? {
        ctx.workflow_id = Some(wf.id.clone());
        return Ok(wf);
    }
    start_run(ctx, a).await
}

/// The run that plans what comes next for the visit: the current one, or a new one when the last
/// ended (an outcome corrected after its run completed, a visit moved after its run failed).
pub async fn active_run(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<WorkflowRow> {
    match workflow_of(ctx, a.id.as_str()).await? {
        Some(wf) if !state_of(&wf)?.is_terminal() => {
            ctx.workflow_id = Some(wf.id.clone());
            Ok(wf)
        }
        _ => start_run(ctx, a).await,
    }
}

/// Puts a run in the state the visit's facts call for: `cancelled` with the visit; `retrying`
/// while a timer of the visit is being retried; `completed` once the visit has its outcome and
/// nothing more is planned for it (no pending timer: its follow-ups fired or were called off);
/// `waiting` otherwise. A run that already ended stays as it is.
pub async fn settle(
    ctx: &mut Ctx<'_, '_>,
    a: &Appointment,
    wf: WorkflowRow,
) -> EngineResult<WorkflowRow> {
    if state_of(&wf)?.is_terminal() {
        return Ok(wf);
    }
    let tenant = ctx.tenant_id().to_owned();
    let pending = ctx
        .tx
        .raw()
        .pending_timers_for_aggregate(&tenant, a.id.as_str())
        .await?;
    let retried = pending.iter().find(|t| t.attempt > 0);
    let (to, step) = if a.status == AppointmentStatus::Cancelled {
        (WorkflowState::Cancelled, "cancelled".to_owned())
    } else if let Some(t) = retried {
        (WorkflowState::Retrying, format!("retry_{}", t.kind))
    } else if pending.is_empty() && a.status.is_outcome() {
        (WorkflowState::Completed, "done".to_owned())
    } else {
        let step = match a.status {
            AppointmentStatus::Completed => "after_visit",
            AppointmentStatus::NoShow => "after_no_show",
            _ => "awaiting_visit",
        };
        (WorkflowState::Waiting, step.to_owned())
    };
    move_workflow(ctx, wf, to, &step).await
}

/// Settles the visit's run after one of its timers fired (see [`settle`]).
pub async fn settle_visit(ctx: &mut Ctx<'_, '_>, appointment_id: &str) -> EngineResult<()> {
    let tenant = ctx.tenant_id().to_owned();
    let Some(a) = ctx.tx.get_appointment(&tenant, appointment_id).await? else {
        return Ok(());
    };
    if let Some(wf) = workflow_of(ctx, appointment_id).await? {
        settle(ctx, &a, wf).await?;
    }
    Ok(())
}

/// A timer of the visit gave up: its run is over. What it still had planned is called off (the
/// reminders' log rows say `workflow_failed`); staff take the visit from here. A later
/// reschedule or outcome starts a new run.
pub async fn call_off_after_failure(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<()> {
    cancel_reminders(ctx, a, "cancelled", "workflow_failed", true).await?;
    timers::cancel(ctx, a.id.as_str(), &FOLLOW_UPS).await?;
    Ok(())
}

/// The timers a visit has besides its reminders and the wait for a reply.
const FOLLOW_UPS: [TimerKind; 5] = [
    TimerKind::AutoComplete,
    TimerKind::ReviewRequest,
    TimerKind::RebookOffer,
    TimerKind::DepositNudge,
    TimerKind::DepositAlert,
];

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
    let wf = active_run(ctx, a).await?;
    let wf = move_workflow(ctx, wf, WorkflowState::Running, "planning").await?;
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
    settle(ctx, a, wf).await?;
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
    let wf = enter_workflow(ctx, a).await?;
    cancel_reminders(ctx, a, "skipped", "confirmed", true).await?;
    // A reminder being retried may just have been called off.
    settle(ctx, a, wf).await?;
    Ok(())
}

/// The visit was cancelled: everything pending for it goes and its run is `cancelled` (a run
/// that had already failed stays `failed`).
pub async fn on_cancelled(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<()> {
    let wf = enter_workflow(ctx, a).await?;
    unschedule_reminders(ctx, a, "cancelled", true).await?;
    timers::cancel(ctx, a.id.as_str(), &FOLLOW_UPS).await?;
    settle(ctx, a, wf).await?;
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

/// The visit happened: reminders and deposit nudges stop (they only serve an upcoming visit);
/// the review request and the rebooking offer are scheduled. The run waits for them, then
/// completes.
pub async fn on_completed(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<()> {
    let wf = active_run(ctx, a).await?;
    timers::cancel(
        ctx,
        a.id.as_str(),
        &[
            TimerKind::Reminder,
            TimerKind::NoReplyCheck,
            TimerKind::AutoComplete,
            TimerKind::DepositNudge,
            TimerKind::DepositAlert,
        ],
    )
    .await?;
    crate::followups::schedule_after_visit(ctx, a).await?;
    settle(ctx, a, wf).await?;
    Ok(())
}

/// The patient did not come: no review; recovery and risk instead. With its recovery text
/// queued nothing more is planned, so the run completes (a later correction to completed
/// starts a new run for the review request and the rebooking offer).
pub async fn on_no_show(ctx: &mut Ctx<'_, '_>, a: &Appointment) -> EngineResult<()> {
    let wf = active_run(ctx, a).await?;
    timers::cancel(
        ctx,
        a.id.as_str(),
        &[
            TimerKind::Reminder,
            TimerKind::NoReplyCheck,
            TimerKind::AutoComplete,
            TimerKind::ReviewRequest,
            TimerKind::RebookOffer,
            TimerKind::DepositNudge,
            TimerKind::DepositAlert,
        ],
    )
    .await?;
    crate::followups::after_no_show(ctx, a).await?;
    settle(ctx, a, wf).await?;
    Ok(())
}

/// How long after the last reminder silence becomes a question for staff.
pub fn no_reply_after(ctx: &Ctx<'_, '_>) -> Duration {
    Duration::hours(i64::from(ctx.tenant.config.policies.escalate_after_hours))
}
