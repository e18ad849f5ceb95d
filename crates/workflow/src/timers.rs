//! Durable timers: rows with a due time on business time. Claimed and fired inside one
//! transaction (on PostgreSQL with `for update skip locked`), so a timer fires exactly once
//! however many core-engine replicas run, and survives restarts. Firing re-checks the state it
//! was scheduled for: a reminder for a confirmed visit is skipped, a review request for a
//! no-show is dropped. A timer whose job fails is retried on business time with exponential
//! backoff and full jitter (the resilience crate's [`Backoff`]), and given up after
//! [`MAX_ATTEMPTS`].

use crate::ctx::Ctx;
use crate::error::EngineResult;
use aro_resilience::Backoff;
use aro_store::engine_rows::TimerRow;
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde_json::Value;

/// Attempts in all before a timer that keeps failing is given up (its workflow fails and staff
/// are told).
pub const MAX_ATTEMPTS: i64 = 5;
/// The first retry comes at most this long after the failure; the bound doubles per attempt.
pub const RETRY_BASE: Duration = Duration::seconds(60);
/// No retry waits longer than this.
pub const RETRY_CAP: Duration = Duration::hours(1);

fn backoff() -> Backoff {
    // Both constants are positive and small, so the conversions cannot fail; the fallbacks only
    // keep this total.
    let base = RETRY_BASE
        .to_std()
        .unwrap_or(std::time::Duration::from_secs(60));
    let cap = RETRY_CAP
        .to_std()
        .unwrap_or(std::time::Duration::from_secs(3600));
    Backoff::new(base, cap)
}

/// The retry index of a timer that has failed `attempt` times (0 after the first failure).
fn retry_index(attempt: i64) -> u32 {
    u32::try_from(attempt.saturating_sub(1).max(0)).unwrap_or(u32::MAX)
}

/// The longest wait before retrying a timer that has failed `attempt` times:
/// `min(RETRY_CAP, RETRY_BASE · 2^(attempt−1))`.
pub fn retry_ceiling(attempt: i64) -> Duration {
    Duration::from_std(backoff().ceiling(retry_index(attempt))).unwrap_or(RETRY_CAP)
}

/// The wait before retrying a timer that has failed `attempt` times: uniform in
/// `[0, retry_ceiling(attempt)]` (full jitter), so timers that failed together (a database
/// hiccup, a bad deploy) do not all come back at the same instant.
pub fn retry_delay(attempt: i64, rng: &mut impl Rng) -> Duration {
    Duration::from_std(backoff().delay(retry_index(attempt), rng)).unwrap_or(RETRY_CAP)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn retry_ceilings_double_from_the_base_up_to_the_cap() {
        assert_eq!(retry_ceiling(1), RETRY_BASE);
        assert_eq!(retry_ceiling(2), RETRY_BASE * 2);
        assert_eq!(retry_ceiling(4), RETRY_BASE * 8);
        assert_eq!(retry_ceiling(40), RETRY_CAP);
        // Nonsense attempts read as the first retry rather than panicking.
        assert_eq!(retry_ceiling(0), RETRY_BASE);
        assert_eq!(retry_ceiling(-3), RETRY_BASE);
    }

    #[test]
    fn retry_delays_are_fully_jittered_below_the_ceiling() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for attempt in 1..MAX_ATTEMPTS + 3 {
            let ceiling = retry_ceiling(attempt);
            let mut lowest = ceiling;
            let mut highest = Duration::zero();
            for _ in 0..300 {
                let d = retry_delay(attempt, &mut rng);
                assert!(d >= Duration::zero() && d <= ceiling, "{d} vs {ceiling}");
                lowest = lowest.min(d);
                highest = highest.max(d);
            }
            // Full jitter spans the whole window, not just its top.
            assert!(lowest < ceiling / 4, "attempt {attempt}: lowest {lowest}");
            assert!(
                highest > ceiling * 3 / 4,
                "attempt {attempt}: highest {highest}"
            );
        }
    }
}
