//! The execution queue's API for the executor (DESIGN.md "Executions"): claim with a lease,
//! heartbeat, result. Scope `executions:claim`; a token for named tenants sees only theirs.
//!
//! Each claim hands out a lease id per execution; heartbeat and result carry it back, so core
//! can tell two claimants apart even when they share a token (every executor replica does):
//! a holder whose lease lapsed and was claimed again gets `LEASE_LOST` (docs/adr/0006). A caller
//! that sends no lease id keeps the older behaviour (the token's subject is the owner).

use super::engine_error::api_error;
use crate::AppState;
use crate::auth::Caller;
use aro_http::{ApiError, ApiJson, ApiPath};
use aro_security::tokens::{Scope, TenantGrant};
use aro_workflow::executions::ExecutionResult;
use aro_workflow::executions::LEASE_PREFIX;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Duration;
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/executions/claim", post(claim))
        .route("/v1/executions/{execution_id}/heartbeat", post(heartbeat))
        .route("/v1/executions/{execution_id}/result", post(result))
}

fn tenants(caller: &Caller) -> Option<Vec<String>> {
    match &caller.claims.tenants {
        TenantGrant::All => None,
        TenantGrant::Only(list) => Some(list.clone()),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClaimRequest {
    /// How many executions to take at most.
    #[serde(default = "default_limit")]
    #[schema(minimum = 1, maximum = 100, default = 10)]
    limit: u32,
    /// How long the lease lasts (real time); report or heartbeat before it ends.
    #[serde(default = "default_lease")]
    #[schema(minimum = 5, maximum = 3600, default = 60)]
    lease_seconds: u32,
    /// Only these execution types (e.g. `messaging.send_reminder`); absent or empty means all.
    #[serde(default)]
    types: Option<Vec<String>>,
}

fn default_limit() -> u32 {
    10
}

fn default_lease() -> u32 {
    60
}

fn lease(seconds: u32, field: &str) -> Result<Duration, ApiError> {
    if !(5..=3600).contains(&seconds) {
        return Err(ApiError::validation(field, "must be 5–3600 seconds"));
    }
    Ok(Duration::seconds(i64::from(seconds)))
}

/// The longest lease id accepted (core's are `lse_` and 32 hex digits).
const MAX_LEASE_ID_LEN: usize = 128;

/// A lease id as sent back: refused when it cannot be one core handed out, so a typo is a 400
/// rather than a `LEASE_LOST` that would send the caller looking for a second holder.
fn lease_id(value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(id)
            if id.len() > MAX_LEASE_ID_LEN
                || id.len() <= LEASE_PREFIX.len() + 1
                || !id.starts_with(&format!("{LEASE_PREFIX}_"))
                || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            Err(ApiError::validation(
                "leaseId",
                "must be a lease id from a claim (`lse_…`)",
            ))
        }
        other => Ok(other),
    }
}

/// Claims ready executions with a lease.
///
/// Executions whose `notAfter` has passed on the business clock are never handed out: they are
/// marked expired (`execution.expired`). One whose lease lapsed on its last attempt (taken every
/// time, never answered) is moved to the dead-letter queue instead of being offered again
/// (`execution.dead_lettered`, error code `LEASE_EXPIRED`). A token for named tenants gets only
/// theirs, however much other tenants have waiting.
///
/// Each execution comes with a `leaseId`, new with every claim: send it with each heartbeat and
/// the result. Once the lease lapsed and the execution was claimed again, the old holder's
/// heartbeat and result are refused (`LEASE_LOST`).
#[utoipa::path(
    post,
    path = "/v1/executions/claim",
    tag = "executions",
    operation_id = "claimExecutions",
    request_body = ClaimRequest,
    responses(
        (status = 200, description = "The claimed executions (possibly none)", body = crate::openapi::ClaimedExecutions),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
async fn claim(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<ClaimRequest>,
) -> Result<Response, ApiError> {
    caller.require(Scope::ExecutionsClaim)?;
    if !(1..=100).contains(&req.limit) {
        return Err(ApiError::validation("limit", "must be 1–100"));
    }
    let lease = lease(req.lease_seconds, "leaseSeconds")?;
    let types = req.types.filter(|t| !t.is_empty());
    let claimed = state
        .engine
        .claim_executions(
            &caller.claims.sub,
            req.limit as usize,
            lease,
            types,
            tenants(&caller),
        )
        .await
        .map_err(api_error)?;
    if !claimed.is_empty() {
        metrics::counter!("aro_executions_claimed_total", "service" => crate::SERVICE)
            .increment(claimed.len() as u64);
    }
    state.events_appended.notify_waiters();
    Ok(axum::Json(json!({"executions": claimed})).into_response())
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HeartbeatRequest {
    /// The new lease, from now (default 60).
    #[serde(default)]
    #[schema(minimum = 5, maximum = 3600)]
    lease_seconds: Option<u32>,
    /// The `leaseId` the claim handed out. With it, only that claim's lease is extended
    /// (`LEASE_LOST` once the execution was claimed again); without it, any lease held under
    /// the token's subject is.
    #[serde(default)]
    #[schema(max_length = 128, pattern = "^lse_[A-Za-z0-9_]+$")]
    lease_id: Option<String>,
}

/// Extends the caller's lease on an execution.
///
/// Send the `leaseId` from the claim: a holder whose lease lapsed and was claimed again (by
/// another replica with the same token, say) then gets `LEASE_LOST` instead of extending the
/// new holder's lease.
#[utoipa::path(
    post,
    path = "/v1/executions/{executionId}/heartbeat",
    tag = "executions",
    operation_id = "heartbeatExecution",
    params(("executionId" = String, Path, description = "The execution's id")),
    request_body = HeartbeatRequest,
    responses(
        (status = 200, description = "The lease is extended", body = crate::openapi::LeaseExtended),
        (status = 404, description = "`NOT_FOUND`: no such execution (for this token's tenants)", body = crate::openapi::ErrorEnvelope),
        (status = 409, description = "`LEASE_LOST`: the lease lapsed and the execution was claimed again, or the lease ended", body = crate::openapi::ErrorEnvelope),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
async fn heartbeat(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<HeartbeatRequest>,
) -> Result<Response, ApiError> {
    caller.require(Scope::ExecutionsClaim)?;
    let seconds = body.lease_seconds.unwrap_or(default_lease());
    let lease = lease(seconds, "leaseSeconds")?;
    let until = match lease_id(body.lease_id)? {
        Some(lease_id) => {
            state
                .engine
                .heartbeat_lease(&id, &lease_id, lease, tenants(&caller))
                .await
        }
        None => {
            state
                .engine
                .heartbeat(&id, &caller.claims.sub, lease, tenants(&caller))
                .await
        }
    }
    .map_err(api_error)?;
    Ok(axum::Json(json!({"executionId": id, "leaseUntil": until})).into_response())
}

/// The result body: the result itself and, from a caller that has one, the claim's lease id.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ResultRequest {
    #[serde(flatten)]
    result: ExecutionResult,
    /// The `leaseId` the claim handed out. With it, the result is refused (`LEASE_LOST`, and
    /// nothing changes) once the execution was claimed again after this lease lapsed; without
    /// it, the result is taken whoever holds the lease.
    #[serde(default)]
    #[schema(max_length = 128, pattern = "^lse_[A-Za-z0-9_]+$")]
    lease_id: Option<String>,
}

/// Reports an execution's result; core turns it into canonical events.
///
/// A retryable failure is retried with backoff and full jitter (at least `retryAfterSeconds`),
/// and dead-lettered when attempts run out. Reporting the same outcome again is accepted
/// (`duplicate: true`). Send the `leaseId` from the claim: a result from a lease that lapsed
/// and was claimed again is refused with `LEASE_LOST`.
#[utoipa::path(
    post,
    path = "/v1/executions/{executionId}/result",
    tag = "executions",
    operation_id = "recordExecutionResult",
    params(("executionId" = String, Path, description = "The execution's id")),
    request_body = ResultRequest,
    responses(
        (status = 200, description = "Recorded", body = crate::openapi::ResultRecorded),
        (status = 404, description = "`NOT_FOUND`: no such execution (for this token's tenants)", body = crate::openapi::ErrorEnvelope),
        (status = 409, description = "`EXECUTION_FINISHED`: it already finished with another outcome; `LEASE_LOST`: this lease lapsed and the execution was claimed again, or the lease already ended with an earlier result (nothing changed)", body = crate::openapi::ErrorEnvelope),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
async fn result(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ResultRequest>,
) -> Result<Response, ApiError> {
    caller.require(Scope::ExecutionsClaim)?;
    let answer = match lease_id(body.lease_id)? {
        Some(lease_id) => {
            state
                .engine
                .record_lease_result(&id, &lease_id, body.result, tenants(&caller))
                .await
        }
        None => {
            state
                .engine
                .record_result(&id, body.result, tenants(&caller))
                .await
        }
    }
    .map_err(api_error)?;
    state.events_appended.notify_waiters();
    state.work_available.notify_waiters();
    Ok(axum::Json(answer).into_response())
}
