//! The execution queue (DESIGN.md "Executions"): the outbox of side effects. Written in the same
//! transaction as the decision that needs it; claimed by the executor with a lease (real time);
//! re-offered when a lease lapses; never handed out once its `notAfter` has passed on the
//! business clock (expired instead); retried with exponential backoff and full jitter; moved to
//! the dead-letter queue when attempts run out. Results come back as canonical events.
//!
//! Every claim mints a lease id (docs/adr/0006, "one lease per claim"): the holder presents it on
//! heartbeat and result, and once a lapsed lease was claimed again the old holder's heartbeat and
//! result are refused (`LEASE_LOST`), even when both holders use the same token.

use crate::ctx::Ctx;
use crate::error::{EngineError, EngineResult};
use aro_domain::EventType;
use aro_store::engine_rows::{DeadLetterRow, ExecutionRow};
use aro_store::{AggregateRef, NewExecutionRecord};
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// First retry after about this long (full jitter below it), doubling per attempt.
pub const RETRY_BASE: Duration = Duration::seconds(5);
pub const RETRY_CAP: Duration = Duration::minutes(10);

pub struct NewExecution<'a> {
    pub id: String,
    pub command_type: &'a str,
    /// Whose data key seals the payload (a patient, or the tenant).
    pub subject_id: Option<&'a str>,
    pub payload: Value,
    pub not_after: Option<DateTime<Utc>>,
    pub aggregate_id: Option<&'a str>,
    pub max_attempts: i64,
}

/// The prefix of lease ids (`lse_…`).
pub const LEASE_PREFIX: &str = "lse";

/// The conflict code for a heartbeat or result from a lease that is no longer the execution's.
pub const LEASE_LOST: &str = "LEASE_LOST";

/// A new lease id, one per claim of one execution.
pub fn new_lease_id() -> String {
    aro_store::ids::new_id(LEASE_PREFIX)
}

/// The refusal for a caller whose lease is not the execution's current one.
pub fn lease_lost(message: &str) -> EngineError {
    EngineError::Conflict {
        code: LEASE_LOST,
        message: message.to_owned(),
    }
}

pub async fn enqueue(ctx: &mut Ctx<'_, '_>, e: NewExecution<'_>) -> EngineResult<()> {
    let tenant = ctx.tenant_id().to_owned();
    // The store seals the payload under the subject's data key (the clinic's when none).
    ctx.tx
        .insert_execution(&NewExecutionRecord {
            id: &e.id,
            tenant_id: &tenant,
            correlation_id: &ctx.correlation_id,
            command_type: e.command_type,
            subject_id: e.subject_id,
            payload: &e.payload,
            max_attempts: e.max_attempts.max(1),
            not_after: e.not_after,
            workflow_id: ctx.workflow_id.as_deref(),
            aggregate_id: e.aggregate_id,
            // Availability and leases are real time (liveness), notAfter is business time.
            at: ctx.real_now,
            now: ctx.now,
        })
        .await?;
    Ok(())
}

/// An execution as the executor receives it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimedExecution {
    pub execution_id: String,
    pub tenant_id: String,
    pub correlation_id: String,
    pub command_type: String,
    pub payload: Value,
    pub not_after: Option<DateTime<Utc>>,
    pub attempt: i64,
    pub lease_until: DateTime<Utc>,
    /// This claim's lease, new with every claim: send it with each heartbeat and the result.
    /// Once the lease lapsed and the execution was claimed again, both are refused with
    /// `LEASE_LOST`.
    pub lease_id: String,
    /// When core wrote the execution (real time): nothing it caused can be older, so the
    /// executor bounds its look-up for an earlier, unseen send with it.
    pub created_at: DateTime<Utc>,
}

/// What the executor reports.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionResult {
    pub status: ResultStatus,
    #[serde(default)]
    pub retryable: bool,
    #[serde(default)]
    pub error: Option<ResultError>,
    #[serde(default)]
    pub provider_ref: Option<String>,
    #[serde(default)]
    pub output: Option<Value>,
    /// Seconds the provider asked to wait before a retry (`Retry-After`).
    #[serde(default)]
    pub retry_after_seconds: Option<u64>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    Succeeded,
    Failed,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultError {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// Result codes saying the executor turned the execution away itself, before calling the
/// provider: its own circuit breaker for the destination was open (or half-open with the probe
/// slot taken), or its own rate limit had no room in time. Such a claim is not an attempt
/// (docs/executor.md, "Not attempted"): it is re-offered after `retryAfterSeconds` without
/// using up one of the execution's attempts.
pub const NOT_ATTEMPTED_CODES: [&str; 2] = ["PROVIDER_CIRCUIT_OPEN", "PROVIDER_THROTTLED_LOCALLY"];

/// How many unattempted claims one execution may have before it is dead-lettered, so a
/// breaker that never closes cannot keep an execution (one without `notAfter`) forever. With
/// the executor's breakers (open 30 s doubling to 5 min, a busy probe turns others away for
/// 1 s) this is hours of outage, far past any one provider incident worth waiting out.
pub const MAX_DEFERRALS: i64 = 500;

/// The wait before re-offering an unattempted execution whose result named none.
pub const DEFERRAL_DEFAULT_WAIT: Duration = Duration::seconds(5);

/// The most an unattempted execution waits (a `retryAfterSeconds` beyond it is clamped).
pub const DEFERRAL_MAX_WAIT: Duration = Duration::minutes(10);

/// The dead-letter code for an execution turned away unattempted [`MAX_DEFERRALS`] times.
pub const NOT_ATTEMPTED_TOO_OFTEN: &str = "NOT_ATTEMPTED_TOO_OFTEN";

/// Whether a failed result's code says the call never left the executor.
pub fn is_not_attempted(code: &str) -> bool {
    NOT_ATTEMPTED_CODES.contains(&code)
}

/// Attempts an execution has used: claims, less those the executor turned away unattempted.
pub fn attempts_used(row: &ExecutionRow) -> i64 {
    (row.attempt - row.deferrals).max(0)
}

/// The wait before re-offering an unattempted execution: what the executor asked for (its
/// breaker's remaining cool-down), plus up to a fifth more so a crowd of deferred executions
/// does not come back in the same instant and meet a busy probe again.
pub fn deferral_delay(retry_after_seconds: Option<u64>, rng: &mut impl Rng) -> Duration {
    let wait = retry_after_seconds
        .map_or(DEFERRAL_DEFAULT_WAIT, |s| {
            Duration::seconds(
                i64::try_from(s)
                    .unwrap_or(i64::MAX)
                    .min(DEFERRAL_MAX_WAIT.num_seconds()),
            )
        })
        .min(DEFERRAL_MAX_WAIT);
    let spread = wait.num_milliseconds() / 5;
    wait + Duration::milliseconds(rng.random_range(0..=spread.max(0)))
}

/// Full jitter: a uniformly random delay in [0, min(cap, base · 2^(attempt−1))].
pub fn retry_delay(attempt: i64, rng: &mut impl Rng) -> Duration {
    let exp = attempt.clamp(1, 30) - 1;
    let ceiling_ms = RETRY_BASE
        .num_milliseconds()
        .saturating_mul(1i64 << exp)
        .min(RETRY_CAP.num_milliseconds());
    Duration::milliseconds(rng.random_range(0..=ceiling_ms))
}

pub fn is_finished(status: &str) -> bool {
    matches!(
        status,
        "succeeded" | "failed" | "expired" | "dead" | "cancelled"
    )
}

/// Marks an execution expired and says so in the log (and on its message, if any).
pub async fn expire(ctx: &mut Ctx<'_, '_>, mut row: ExecutionRow) -> EngineResult<()> {
    row.status = "expired".into();
    row.lease_owner = None;
    row.lease_until = None;
    row.updated_at = ctx.real_now;
    ctx.tx.raw().update_execution(&row).await?;
    let aggregate = aggregate_of(&row);
    ctx.emit_in_workflow(
        row.workflow_id.clone(),
        EventType::ExecutionExpired,
        aggregate,
        json!({"executionId": row.id, "commandType": row.command_type, "notAfter": row.not_after}),
        None,
    );
    crate::results::on_expired(ctx, &row).await
}

fn aggregate_of(row: &ExecutionRow) -> AggregateRef {
    match &row.aggregate_id {
        Some(id) if id.starts_with("apt_") => AggregateRef::new("appointment", id),
        Some(id) if id.starts_with("cus_") => AggregateRef::new("customer", id),
        Some(id) => AggregateRef::new("execution", id),
        None => AggregateRef::new("execution", &row.id),
    }
}

/// Moves an execution to the dead-letter queue.
pub async fn dead_letter(
    ctx: &mut Ctx<'_, '_>,
    mut row: ExecutionRow,
    code: &str,
    message: &str,
) -> EngineResult<String> {
    row.status = "dead".into();
    row.lease_owner = None;
    row.lease_until = None;
    row.last_error_code = Some(code.to_owned());
    row.last_error_message = Some(message.to_owned());
    row.updated_at = ctx.real_now;
    ctx.tx.raw().update_execution(&row).await?;
    let id = aro_store::ids::new_id(aro_domain::ids::prefix::DEAD_LETTER);
    ctx.tx
        .raw()
        .insert_dead_letter(&DeadLetterRow {
            tenant_id: row.tenant_id.clone(),
            id: id.clone(),
            execution_id: row.id.clone(),
            command_type: row.command_type.clone(),
            error_code: Some(code.to_owned()),
            error_message: Some(message.to_owned()),
            attempts: attempts_used(&row),
            status: "open".into(),
            created_at: ctx.real_now,
            updated_at: ctx.real_now,
        })
        .await?;
    ctx.emit_in_workflow(
        row.workflow_id.clone(),
        EventType::ExecutionDeadLettered,
        aggregate_of(&row),
        json!({"deadLetterId": id, "executionId": row.id, "commandType": row.command_type,
               "attempts": attempts_used(&row), "error": {"code": code, "message": message}}),
        None,
    );
    crate::results::on_dead_lettered(ctx, &row, code).await?;
    Ok(id)
}

/// Why an execution whose lease lapsed on its last attempt was dead-lettered.
pub const LEASE_EXPIRED: &str = "LEASE_EXPIRED";

/// Dead-letters an execution found at claim time with no attempt left: its lease lapsed on the
/// last attempt (the executor took it every time and never answered, e.g. because it crashes on
/// this message), so re-offering it would loop forever.
pub async fn exhausted_at_claim(ctx: &mut Ctx<'_, '_>, row: ExecutionRow) -> EngineResult<String> {
    ctx.workflow_id = row.workflow_id.clone();
    ctx.correlation_id = row.correlation_id.clone();
    let (code, message) = if row.status == "leased" {
        (
            LEASE_EXPIRED.to_owned(),
            format!(
                "no result came back before the lease lapsed, {} of {} attempts",
                attempts_used(&row),
                row.max_attempts
            ),
        )
    } else {
        (
            row.last_error_code
                .clone()
                .unwrap_or_else(|| "ATTEMPTS_EXHAUSTED".to_owned()),
            "retries exhausted".to_owned(),
        )
    };
    dead_letter(ctx, row, &code, &message).await
}

/// Records a result for a leased (or lapsed) execution. A result for an execution that already
/// finished is accepted when it says the same thing (a retried report) and refused otherwise.
///
/// `lease_id`, when the caller presented one, has already been checked to be the execution's
/// current lease (the latest claim's); a result from it is then also refused once that lease
/// ended without finishing the execution (a retryable failure was reported and the execution
/// waits for its retry, or staff retried it from the dead-letter queue).
pub async fn record_result(
    ctx: &mut Ctx<'_, '_>,
    mut row: ExecutionRow,
    result: ExecutionResult,
    lease_id: Option<&str>,
) -> EngineResult<Value> {
    if is_finished(&row.status) {
        let same = match result.status {
            ResultStatus::Succeeded => row.status == "succeeded",
            ResultStatus::Failed => matches!(row.status.as_str(), "failed" | "dead"),
        };
        if same {
            return Ok(json!({"executionId": row.id, "status": row.status, "duplicate": true}));
        }
        return Err(EngineError::Conflict {
            code: "EXECUTION_FINISHED",
            message: format!("the execution already finished as {}", row.status),
        });
    }
    if lease_id.is_some() && row.status != "leased" {
        return Err(lease_lost(
            "the lease already ended with an earlier result; the execution waits to be claimed again",
        ));
    }
    ctx.workflow_id = row.workflow_id.clone();
    ctx.correlation_id = row.correlation_id.clone();
    ctx.causation_id = Some(row.id.clone());
    match result.status {
        ResultStatus::Succeeded => {
            row.status = "succeeded".into();
            row.provider_ref = result.provider_ref.clone();
            row.output = result.output.clone().map(sqlx::types::Json);
            row.lease_owner = None;
            row.lease_until = None;
            row.updated_at = ctx.real_now;
            ctx.tx.raw().update_execution(&row).await?;
            crate::results::on_succeeded(ctx, &row, &result).await?;
        }
        ResultStatus::Failed => {
            let error = result.error.clone().unwrap_or(ResultError {
                code: "UNKNOWN".into(),
                message: String::new(),
            });
            if result.retryable && is_not_attempted(&error.code) {
                return defer(ctx, row, &error, result.retry_after_seconds).await;
            }
            if result.retryable && attempts_used(&row) < row.max_attempts {
                let mut delay = retry_delay(attempts_used(&row), &mut rand::rng());
                if let Some(after) = result.retry_after_seconds {
                    delay = delay.max(Duration::seconds(after.min(3600) as i64));
                }
                row.status = "ready".into();
                row.available_at = ctx.real_now + delay;
                row.lease_owner = None;
                row.lease_until = None;
                row.last_error_code = Some(error.code.clone());
                row.last_error_message = Some(error.message.clone());
                row.updated_at = ctx.real_now;
                ctx.tx.raw().update_execution(&row).await?;
            } else if result.retryable {
                dead_letter(ctx, row.clone(), &error.code, "retries exhausted").await?;
                row.status = "dead".into();
            } else {
                row.status = "failed".into();
                row.lease_owner = None;
                row.lease_until = None;
                row.last_error_code = Some(error.code.clone());
                row.last_error_message = Some(error.message.clone());
                row.updated_at = ctx.real_now;
                ctx.tx.raw().update_execution(&row).await?;
                crate::results::on_failed(ctx, &row, &error).await?;
            }
        }
    }
    Ok(json!({"executionId": row.id, "status": row.status}))
}

/// Settles a claim the executor turned away without calling the provider: the attempt the
/// claim took is given back (counted as a deferral) and the execution is offered again after
/// the executor's wait; past its `notAfter` it expires instead, and after [`MAX_DEFERRALS`]
/// it is dead-lettered.
async fn defer(
    ctx: &mut Ctx<'_, '_>,
    mut row: ExecutionRow,
    error: &ResultError,
    retry_after_seconds: Option<u64>,
) -> EngineResult<Value> {
    if row.not_after.is_some_and(|na| na < ctx.now) {
        let id = row.id.clone();
        expire(ctx, row).await?;
        return Ok(json!({"executionId": id, "status": "expired"}));
    }
    row.deferrals += 1;
    if row.deferrals >= MAX_DEFERRALS {
        let message = format!(
            "turned away {} times by the executor without reaching the provider",
            row.deferrals
        );
        let id = row.id.clone();
        dead_letter(ctx, row, NOT_ATTEMPTED_TOO_OFTEN, &message).await?;
        return Ok(json!({"executionId": id, "status": "dead"}));
    }
    row.status = "ready".into();
    row.available_at = ctx.real_now + deferral_delay(retry_after_seconds, &mut rand::rng());
    row.lease_owner = None;
    row.lease_until = None;
    row.last_error_code = Some(error.code.clone());
    row.last_error_message = Some(error.message.clone());
    row.updated_at = ctx.real_now;
    ctx.tx.raw().update_execution(&row).await?;
    Ok(json!({"executionId": row.id, "status": row.status, "attempted": false}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn retry_delays_are_fully_jittered_below_a_growing_ceiling() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for attempt in 1..12 {
            let ceiling = (RETRY_BASE * (1 << (attempt - 1))).min(RETRY_CAP);
            let mut max = Duration::zero();
            for _ in 0..200 {
                let d = retry_delay(attempt, &mut rng);
                assert!(d >= Duration::zero() && d <= ceiling, "{d} vs {ceiling}");
                max = max.max(d);
            }
            assert!(max > ceiling / 2, "jitter spans the window");
        }
    }

    #[test]
    fn unattempted_executions_wait_what_the_executor_asked_and_a_little_more() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let d = deferral_delay(Some(10), &mut rng);
            assert!(
                d >= Duration::seconds(10) && d <= Duration::seconds(12),
                "{d}"
            );
        }
        let d = deferral_delay(None, &mut rng);
        assert!(d >= DEFERRAL_DEFAULT_WAIT);
        let d = deferral_delay(Some(u64::MAX), &mut rng);
        assert!(d <= DEFERRAL_MAX_WAIT + DEFERRAL_MAX_WAIT / 5, "{d}");
    }
}
