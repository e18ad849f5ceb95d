//! Firing due timers, one per transaction: the claim, the decision and the timer's `fired`
//! mark commit together, so a timer fires exactly once even with several replicas, and one
//! failing timer never holds back the others.
//!
//! A timer whose job fails is retried on business time with full jitter (its visit's workflow is
//! `retrying` meanwhile); after [`timers::MAX_ATTEMPTS`] it is given up: the timer is `failed`,
//! its workflow `failed`, what the run still had planned is called off, and staff get an
//! escalation (`timer_failed`, announced by `escalation.opened`).

use crate::ctx::{Ctx, EngineSettings};
use crate::error::{EngineError, EngineResult};
use crate::outbound::{PatientText, Sent};
use crate::timers::{self, TimerKind};
use crate::visits;
use aro_domain::EventType;
use aro_domain::appointment::{Appointment, AppointmentStatus};
use aro_domain::workflow::WorkflowState;
use aro_store::engine_rows::TimerRow;
use aro_store::{AggregateRef, Store, StoreError};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub enum Fired {
    /// Nothing was due.
    Idle,
    Fired {
        timer_id: String,
        kind: String,
    },
    /// The timer's decision failed; it was rescheduled or given up.
    Failed {
        timer_id: String,
        error: String,
    },
}

/// The failure of a timer job, carrying the timer when one was claimed.
struct JobError {
    timer: Option<TimerRow>,
    error: EngineError,
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        Self {
            timer: None,
            error: EngineError::Store(e),
        }
    }
}

fn failed(timer: &TimerRow) -> impl FnOnce(EngineError) -> JobError + '_ {
    move |error| JobError {
        timer: Some(timer.clone()),
        error,
    }
}

/// Fires the earliest timer due at `now` (business time), if any.
pub async fn fire_one(
    store: &Store,
    now: DateTime<Utc>,
    settings: &EngineSettings,
) -> EngineResult<Fired> {
    let job_settings = settings.clone();
    let outcome = store
        .write(move |tx| {
            Box::pin(async move {
                let mut due = tx.raw().claim_due_timers(now, 1).await?;
                let Some(timer) = due.pop() else {
                    return Ok::<_, JobError>(None);
                };
                let id = timer.id.clone();
                let mut ctx = Ctx::new(
                    tx,
                    &timer.tenant_id,
                    now,
                    format!("timer:{id}"),
                    crate::engine::ENGINE_ACTOR.into(),
                    job_settings,
                )
                .await
                .map_err(failed(&timer))?;
                ctx.workflow_id = timer.workflow_id.clone();
                ctx.causation_id = Some(id.clone());
                handle(&mut ctx, &timer).await.map_err(failed(&timer))?;
                let mut done = timer.clone();
                done.status = "fired".into();
                done.fired_at = Some(now);
                ctx.tx
                    .raw()
                    .update_timer(&done)
                    .await
                    .map_err(|e| failed(&timer)(e.into()))?;
                if TimerKind::parse(&timer.kind) != Some(TimerKind::EscalationDigest) {
                    // This timer is done: its visit's run may now wait for the next one, leave
                    // `retrying`, or be complete.
                    visits::settle_visit(&mut ctx, &timer.aggregate_id)
                        .await
                        .map_err(failed(&timer))?;
                }
                ctx.finish().await.map_err(failed(&timer))?;
                Ok(Some((id, timer.kind)))
            })
        })
        .await;
    match outcome {
        Ok(None) => Ok(Fired::Idle),
        Ok(Some((timer_id, kind))) => Ok(Fired::Fired { timer_id, kind }),
        Err(JobError {
            timer: Some(timer),
            error,
        }) => {
            if let EngineError::Store(e) = &error
                && e.is_retryable()
            {
                tracing::warn!(timer = %timer.id, error = %e, "timer not fired: database busy");
                return Err(error);
            }
            let message = error.to_string();
            tracing::error!(timer = %timer.id, kind = %timer.kind, error = %message, "timer failed");
            give_up_or_retry(store, timer.clone(), &message, now, settings).await?;
            Ok(Fired::Failed {
                timer_id: timer.id,
                error: message,
            })
        }
        Err(JobError { timer: None, error }) => Err(error),
    }
}

/// Counts the failure on the timer and reschedules it with jitter, or gives it up; the visit's
/// workflow follows (`retrying`, `failed` with an escalation). When that bookkeeping itself
/// cannot be done (the tenant or the visit cannot be read), the timer is still rescheduled or
/// given up, so a broken timer never spins.
async fn give_up_or_retry(
    store: &Store,
    mut timer: TimerRow,
    message: &str,
    now: DateTime<Utc>,
    settings: &EngineSettings,
) -> EngineResult<()> {
    timer.attempt += 1;
    timer.last_error = Some(message.chars().take(500).collect());
    timer.lease_owner = None;
    timer.lease_until = None;
    if timer.attempt >= timers::MAX_ATTEMPTS {
        timer.status = "failed".into();
    } else {
        // Backoff on business time: the timer is re-examined after a while.
        let delay = timers::retry_delay(timer.attempt, &mut rand::rng());
        timer.due_at = aro_store::micros(now + delay);
    }
    let row = timer.clone();
    let settings = settings.clone();
    let recorded = store
        .write(move |tx| {
            Box::pin(async move {
                tx.raw().update_timer(&row).await?;
                let mut ctx = Ctx::new(
                    tx,
                    &row.tenant_id,
                    now,
                    format!("timer:{}", row.id),
                    crate::engine::ENGINE_ACTOR.into(),
                    settings,
                )
                .await?;
                ctx.causation_id = Some(row.id.clone());
                record_failure(&mut ctx, &row).await?;
                ctx.finish().await.map(|_| ())
            })
        })
        .await;
    match recorded {
        Ok(()) => Ok(()),
        Err(EngineError::Store(e)) if e.is_retryable() => Err(EngineError::Store(e)),
        Err(e) => {
            tracing::error!(timer = %timer.id, error = %e, "timer failure not recorded on its workflow");
            store
                .write(move |tx| {
                    Box::pin(async move { tx.raw().update_timer(&timer).await.map(|_| ()) })
                })
                .await
                .map_err(EngineError::Store)
        }
    }
}

/// The workflow side of a failed attempt (the timer row is already updated in this transaction).
async fn record_failure(ctx: &mut Ctx<'_, '_>, timer: &TimerRow) -> EngineResult<()> {
    let kind = TimerKind::parse(&timer.kind);
    if kind == Some(TimerKind::EscalationDigest) {
        // The digest is how staff hear of escalations: one about the digest itself could only
        // travel by the next digest. The error log says it; the next escalation schedules a
        // new digest.
        if timer.status == "failed" {
            tracing::error!(timer = %timer.id, "escalation digest given up");
        }
        return Ok(());
    }
    let tenant = ctx.tenant_id().to_owned();
    let a = ctx.tx.get_appointment(&tenant, &timer.aggregate_id).await?;
    let run = match &timer.workflow_id {
        Some(id) => ctx.tx.raw().get_workflow(&tenant, id).await?,
        None => match &a {
            Some(a) => visits::workflow_of(ctx, a.id.as_str()).await?,
            None => None,
        },
    };
    ctx.workflow_id = run.as_ref().map(|wf| wf.id.clone());
    let given_up = timer.status == "failed";
    if given_up && let Some(a) = &a {
        if kind == Some(TimerKind::Reminder) {
            let template = timer
                .payload
                .0
                .get("template")
                .and_then(Value::as_str)
                .unwrap_or("reminder")
                .to_owned();
            visits::mark_reminder_outcome(
                ctx,
                a.id.as_str(),
                &template,
                "failed",
                Some("timer_failed"),
            )
            .await?;
        }
        visits::call_off_after_failure(ctx, a).await?;
    }
    let mut run_id = None;
    if let Some(mut wf) = run
        && !visits::state_of(&wf)?.is_terminal()
    {
        wf.attempt = timer.attempt;
        let (to, step) = if given_up {
            (WorkflowState::Failed, format!("failed_{}", timer.kind))
        } else {
            (WorkflowState::Retrying, format!("retry_{}", timer.kind))
        };
        run_id = Some(visits::move_workflow(ctx, wf, to, &step).await?.id);
    }
    if given_up {
        crate::escalations::open(
            ctx,
            a.as_ref().map(|a| a.id.as_str()),
            a.as_ref().map(|a| a.customer_id.as_str()),
            "timer_failed",
            json!({"timerId": timer.id, "timerKind": timer.kind, "attempts": timer.attempt,
                   "workflowId": run_id}),
        )
        .await?;
    }
    Ok(())
}

async fn appointment(ctx: &mut Ctx<'_, '_>, timer: &TimerRow) -> EngineResult<Option<Appointment>> {
    let tenant = ctx.tenant_id().to_owned();
    Ok(ctx.tx.get_appointment(&tenant, &timer.aggregate_id).await?)
}

async fn handle(ctx: &mut Ctx<'_, '_>, timer: &TimerRow) -> EngineResult<()> {
    let Some(kind) = TimerKind::parse(&timer.kind) else {
        return Err(EngineError::validation(
            "timer.kind",
            format!("unknown timer kind {:?}", timer.kind),
        ));
    };
    let payload = timer.payload.0.clone();
    if kind == TimerKind::EscalationDigest {
        return crate::escalations::send_digest(ctx).await;
    }
    let Some(a) = appointment(ctx, timer).await? else {
        return Ok(());
    };
    match kind {
        TimerKind::Reminder => send_reminder(ctx, &a, &payload).await,
        TimerKind::NoReplyCheck => {
            let since = payload
                .get("since")
                .and_then(Value::as_str)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.with_timezone(&Utc))
                .unwrap_or(ctx.now);
            crate::replies::no_reply(ctx, &a, since).await
        }
        TimerKind::AutoComplete => {
            if a.status.completes_automatically() {
                let a = visits::transition(ctx, a, AppointmentStatus::Completed, EventType::AppointmentCompleted, json!({"reason": "automatic", "note": "no outcome recorded 2 h after the visit's end"})).await?;
                visits::on_completed(ctx, &a).await?;
            }
            Ok(())
        }
        TimerKind::ReviewRequest => crate::followups::request_review(ctx, &a).await,
        TimerKind::RebookOffer => crate::followups::offer_rebooking(ctx, &a).await,
        TimerKind::DepositNudge => crate::followups::deposit_nudge(ctx, &a, &payload).await,
        TimerKind::DepositAlert => crate::followups::deposit_alert(ctx, &a, &payload).await,
        TimerKind::EscalationDigest => Ok(()),
    }
}

/// A reminder fires: it goes only while the visit is booked and unconfirmed; after the last one,
/// silence for `escalateAfterHours` becomes an escalation.
async fn send_reminder(
    ctx: &mut Ctx<'_, '_>,
    a: &Appointment,
    payload: &Value,
) -> EngineResult<()> {
    let template = payload
        .get("template")
        .and_then(Value::as_str)
        .unwrap_or("reminder_24h")
        .to_owned();
    let skip = |reason: &str| json!({"appointmentId": a.id, "kind": template, "reason": reason});
    if a.status != AppointmentStatus::Booked {
        let reason = if a.status == AppointmentStatus::Confirmed {
            "confirmed"
        } else {
            "not_booked"
        };
        visits::mark_reminder_outcome(ctx, a.id.as_str(), &template, "skipped", Some(reason))
            .await?;
        ctx.emit(
            EventType::ReminderSkipped,
            visits::aggregate(a),
            skip(reason),
            None,
        );
        return Ok(());
    }
    if ctx.now >= a.starts_at {
        visits::mark_reminder_outcome(
            ctx,
            a.id.as_str(),
            &template,
            "skipped",
            Some("visit_started"),
        )
        .await?;
        ctx.emit(
            EventType::ReminderSkipped,
            visits::aggregate(a),
            skip("visit_started"),
            None,
        );
        return Ok(());
    }
    let tenant = ctx.tenant_id().to_owned();
    let Some(customer) = ctx.tx.get_customer(&tenant, a.customer_id.as_str()).await? else {
        return Ok(());
    };
    let sent = crate::outbound::send_to_patient(
        ctx,
        PatientText {
            customer: &customer,
            appointment: Some(a),
            template: &template,
            purpose: &template,
            link: None,
            direct_answer: false,
            without_consent: false,
            // A reminder that cannot leave before the visit starts must never leave.
            not_after: Some(a.starts_at),
        },
    )
    .await?;
    match sent {
        Sent::Queued { .. } => {
            visits::mark_reminder_outcome(ctx, a.id.as_str(), &template, "sent", None).await?;
            // A deposit link waiting for this visit goes out with its first reminder.
            crate::followups::send_deposit_request(ctx, a).await?;
            let more = ctx
                .tx
                .raw()
                .pending_timers_for_aggregate(&tenant, a.id.as_str())
                .await?;
            let last = !more.iter().any(|t| {
                t.kind == TimerKind::Reminder.as_str()
                    && t.status == "pending"
                    && Some(&t.payload.0) != Some(payload)
            });
            if last {
                let after = visits::no_reply_after(ctx);
                timers::schedule(
                    ctx,
                    TimerKind::NoReplyCheck,
                    a.id.as_str(),
                    ctx.now + after,
                    json!({"since": ctx.now}),
                )
                .await?;
            }
        }
        Sent::Refused(reason) => {
            visits::mark_reminder_outcome(
                ctx,
                a.id.as_str(),
                &template,
                "skipped",
                Some(reason.as_str()),
            )
            .await?;
            ctx.emit(
                EventType::ReminderSkipped,
                AggregateRef::new("appointment", a.id.as_str()),
                skip(reason.as_str()),
                None,
            );
        }
    }
    Ok(())
}
