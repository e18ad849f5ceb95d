//! Durable timers: rows with a due time on business time. Claimed and fired inside one
//! transaction (on PostgreSQL with `for update skip locked`), so a timer fires exactly once
//! however many core-engine replicas run, and survives restarts. Firing re-checks the state it
//! was scheduled for: a reminder for a confirmed visit is skipped, a review request for a
//! no-show is dropped.

use crate::ctx::Ctx;
use crate::error::EngineResult;
use aro_store::engine_rows::TimerRow;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// What a timer does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// Send a reminder (`payload.template`).
    Reminder,
    /// No reply since the last reminder: open an escalation.
    NoReplyCheck,
    /// Treat a still-open appointment as completed 2 h after its end.
    AutoComplete,
    /// Ask for a review after a completed visit.
    ReviewRequest,
    /// Offer a rebooking after a completed visit.
    RebookOffer,
    /// Remind a patient of an unpaid deposit link.
    DepositNudge,
    /// Alert staff that a deposit is still unpaid.
    DepositAlert,
    /// Send staff the digest of open escalations.
    EscalationDigest,
}

impl TimerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reminder => "reminder",
            Self::NoReplyCheck => "no_reply_check",
            Self::AutoComplete => "auto_complete",
            Self::ReviewRequest => "review_request",
            Self::RebookOffer => "rebook_offer",
            Self::DepositNudge => "deposit_nudge",
            Self::DepositAlert => "deposit_alert",
            Self::EscalationDigest => "escalation_digest",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Reminder,
            Self::NoReplyCheck,
            Self::AutoComplete,
            Self::ReviewRequest,
            Self::RebookOffer,
            Self::DepositNudge,
            Self::DepositAlert,
            Self::EscalationDigest,
        ]
        .into_iter()
        .find(|k| k.as_str() == raw)
    }
}

/// Schedules a timer in the context's transaction; returns its id.
pub async fn schedule(
    ctx: &mut Ctx<'_, '_>,
    kind: TimerKind,
    aggregate_id: &str,
    due_at: DateTime<Utc>,
    payload: Value,
) -> EngineResult<String> {
    let id = aro_store::ids::new_id(aro_domain::ids::prefix::TIMER);
    let row = TimerRow {
        id: id.clone(),
        tenant_id: ctx.tenant_id().to_owned(),
        workflow_id: ctx.workflow_id.clone(),
        kind: kind.as_str().to_owned(),
        aggregate_id: aggregate_id.to_owned(),
        due_at: aro_store::micros(due_at),
        payload: sqlx::types::Json(payload),
        status: "pending".into(),
        attempt: 0,
        last_error: None,
        lease_owner: None,
        lease_until: None,
        created_at: ctx.now,
        fired_at: None,
    };
    ctx.tx.raw().insert_timer(&row).await?;
    Ok(id)
}

/// Cancels pending timers of an aggregate whose kind is in `kinds`; returns the cancelled rows.
pub async fn cancel(
    ctx: &mut Ctx<'_, '_>,
    aggregate_id: &str,
    kinds: &[TimerKind],
) -> EngineResult<Vec<TimerRow>> {
    let tenant = ctx.tenant_id().to_owned();
    let pending = ctx
        .tx
        .raw()
        .pending_timers_for_aggregate(&tenant, aggregate_id)
        .await?;
    let mut cancelled = Vec::new();
    for mut timer in pending {
        if TimerKind::parse(&timer.kind).is_some_and(|k| kinds.contains(&k)) {
            timer.status = "cancelled".into();
            ctx.tx.raw().update_timer(&timer).await?;
            cancelled.push(timer);
        }
    }
    Ok(cancelled)
}

/// Whether a pending timer of `kind` exists for the aggregate.
pub async fn has_pending(
    ctx: &mut Ctx<'_, '_>,
    aggregate_id: &str,
    kind: TimerKind,
) -> EngineResult<bool> {
    let tenant = ctx.tenant_id().to_owned();
    Ok(ctx
        .tx
        .raw()
        .pending_timers_for_aggregate(&tenant, aggregate_id)
        .await?
        .iter()
        .any(|t| t.kind == kind.as_str()))
}
