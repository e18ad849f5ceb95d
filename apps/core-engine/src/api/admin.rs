//! Administration: tenants (`POST/GET /v1/admin/tenants`, `GET /v1/tenant`) and, in the
//! sandbox only, the business clock (`GET|POST /v1/admin/clock`).

use super::engine_error::api_error;
use crate::AppState;
use crate::auth::{Caller, TenantScope};
use aro_http::{ApiError, ApiJson};
use aro_security::tokens::Scope;
use aro_workflow::tenants::{self, NewTenant, TenantError};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;
use serde_json::json;
use std::time::{Duration, Instant};

/// How long `POST /v1/admin/clock` waits for the work it caused to settle.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one step of an advance waits for its work before the clock moves on.
pub const STEP_SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/tenants", get(list_tenants).post(create_tenant))
        .route("/v1/tenant", get(current_tenant))
        .route("/v1/admin/clock", get(get_clock).post(move_clock))
}

fn tenant_error(e: TenantError) -> ApiError {
    match e {
        TenantError::Invalid { field, reason } => ApiError::validation(field, reason),
        TenantError::Store(s) => api_error(s.into()),
    }
}

/// Creates a tenant (clinic), with a `tenant.created` event. Scope `admin`.
#[utoipa::path(
    post,
    path = "/v1/admin/tenants",
    tag = "tenants",
    operation_id = "createTenant",
    request_body = aro_workflow::tenants::NewTenant,
    responses(
        (status = 201, description = "Created", body = crate::openapi::TenantView),
        (status = 409, description = "`TENANT_EXISTS`", body = crate::openapi::ErrorEnvelope),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
async fn create_tenant(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(spec): ApiJson<NewTenant>,
) -> Result<Response, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden(
            "INSUFFICIENT_SCOPE",
            "creating tenants needs the admin scope",
        ));
    }
    let (tenant, created) =
        tenants::create(&state.store, state.engine.clock(), spec, &caller.actor())
            .await
            .map_err(tenant_error)?;
    if !created {
        return Err(ApiError::conflict(
            "TENANT_EXISTS",
            format!("tenant {} already exists", tenant.id),
        ));
    }
    state.events_appended.notify_waiters();
    Ok((StatusCode::CREATED, axum::Json(public_tenant(&tenant))).into_response())
}

fn public_tenant(t: &aro_domain::tenant::Tenant) -> serde_json::Value {
    json!({
        "id": t.id,
        "name": t.name,
        "timezone": t.zone,
        "region": t.region,
        "language": t.default_language,
        "clinicPhone": t.clinic_phone,
        "reviewLink": t.review_link,
        "classificationResidency": t.classification_residency,
        "permissions": t.permissions,
        "createdAt": t.created_at,
    })
}

/// The tenants the token grants. Scope `admin`.
#[utoipa::path(
    get,
    path = "/v1/admin/tenants",
    tag = "tenants",
    operation_id = "listTenants",
    responses(
        (status = 200, description = "The tenants", body = crate::openapi::TenantList),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
async fn list_tenants(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    // Also open to `commands:write`: a profile backend finds the tenants to install its pack
    // into without the admin scope (which creates tenants and moves the clock). Either way the
    // list holds only the tenants the token grants.
    if caller.require(Scope::CommandsWrite).is_err() {
        return Err(ApiError::forbidden(
            "INSUFFICIENT_SCOPE",
            "listing tenants needs the admin or commands:write scope",
        ));
    }
    let all = state
        .store
        .read(|tx| Box::pin(async move { tx.list_tenants().await }))
        .await
        .map_err(|e| api_error(e.into()))?;
    let visible: Vec<_> = all
        .iter()
        .filter(|t| caller.claims.allows_tenant(t.id.as_str()))
        .map(public_tenant)
        .collect();
    Ok(axum::Json(json!({"tenants": visible})).into_response())
}

/// The caller's tenant, with its installed configuration.
#[utoipa::path(
    get,
    path = "/v1/tenant",
    tag = "tenants",
    operation_id = "getCurrentTenant",
    params(crate::openapi::TenantHeader),
    responses(
        (status = 200, description = "The tenant named by `X-Tenant-Id`", body = crate::openapi::CurrentTenant),
        (status = 404, description = "`NOT_FOUND`: the token grants this tenant id, but no such tenant exists", body = crate::openapi::ErrorEnvelope),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
async fn current_tenant(
    State(state): State<AppState>,
    scope: TenantScope,
) -> Result<Response, ApiError> {
    if scope.require(Scope::CommandsWrite).is_err() {
        scope.require(Scope::EventsRead)?;
    }
    let id = scope.tenant_id.to_string();
    let found = state
        .store
        .read(move |tx| Box::pin(async move { tx.get_tenant(&id).await }))
        .await
        .map_err(|e| api_error(e.into()))?;
    let (tenant, version) = found.ok_or_else(|| ApiError::not_found("tenant"))?;
    let mut body = public_tenant(&tenant);
    body["config"] = serde_json::to_value(&tenant.config).unwrap_or_default();
    body["configVersion"] = json!(version);
    Ok(axum::Json(body).into_response())
}

fn sandbox_only(state: &AppState) -> Result<(), ApiError> {
    if state.config.sandbox.enabled {
        Ok(())
    } else {
        Err(ApiError::not_found("route"))
    }
}

/// Sandbox only: the business clock. Scope `events:read` or `admin`.
#[utoipa::path(
    get,
    path = "/v1/admin/clock",
    tag = "sandbox",
    operation_id = "getClock",
    responses(
        (status = 200, description = "Business time now", body = crate::openapi::ClockNow),
        (status = 404, description = "`NOT_FOUND`: the sandbox is not enabled", body = crate::openapi::ErrorEnvelope),
    ),
    security(("bearerAuth" = [])),
    extensions(("x-aro-sandbox-only" = json!(true))),
)]
async fn get_clock(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    sandbox_only(&state)?;
    if !caller.is_admin() {
        caller.require(Scope::EventsRead)?;
    }
    Ok(axum::Json(json!({"now": state.engine.clock().now()})).into_response())
}

/// Exactly one of `advance` and `set`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MoveClock {
    /// A humantime duration (`90m`, `25h`, `2d`), at most a year.
    #[serde(default)]
    #[schema(example = "25h")]
    advance: Option<String>,
    /// A business time at or after now.
    #[serde(default)]
    set: Option<DateTime<Utc>>,
    /// How long to wait for the resulting work to settle (0–30 s, default 30).
    #[serde(default)]
    #[schema(maximum = 30)]
    wait_seconds: Option<u64>,
}

/// Sandbox only: moves the business clock forward, firing every timer that falls due on the
/// way, in order, then waits (up to `waitSeconds`) for the resulting work to settle. The clock
/// only moves forward and the offset is persisted. Scope `admin`.
#[utoipa::path(
    post,
    path = "/v1/admin/clock",
    tag = "sandbox",
    operation_id = "moveClock",
    request_body = MoveClock,
    responses(
        (status = 200, description = "Moved", body = crate::openapi::ClockMoved),
        (status = 404, description = "`NOT_FOUND`: the sandbox is not enabled", body = crate::openapi::ErrorEnvelope),
        (status = 409, description = "`CLOCK_BACKWARDS`: `set` is earlier than now (`details.now`, `details.requested`)", body = crate::openapi::ErrorEnvelope),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
    extensions(("x-aro-sandbox-only" = json!(true))),
)]
async fn move_clock(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<MoveClock>,
) -> Result<Response, ApiError> {
    sandbox_only(&state)?;
    if !caller.is_admin() {
        return Err(ApiError::forbidden(
            "INSUFFICIENT_SCOPE",
            "moving the clock needs the admin scope",
        ));
    }
    let now = state.engine.clock().now();
    let target = match (req.advance, req.set) {
        (Some(advance), None) => {
            let d = humantime::parse_duration(&advance)
                .map_err(|e| ApiError::validation("advance", format!("{e} (e.g. 90m, 25h, 2d)")))?;
            if d > Duration::from_secs(366 * 24 * 3600) {
                return Err(ApiError::validation(
                    "advance",
                    "at most one year at a time",
                ));
            }
            let step = chrono::Duration::from_std(d)
                .map_err(|_| ApiError::validation("advance", "too large"))?;
            within_rfc3339("advance", now.checked_add_signed(step))?
        }
        (None, Some(set)) => {
            if set < now {
                return Err(
                    ApiError::conflict("CLOCK_BACKWARDS", "the clock only moves forward")
                        .with_details(json!({"now": now, "requested": set})),
                );
            }
            within_rfc3339("set", Some(set))?
        }
        _ => {
            return Err(ApiError::validation(
                "body",
                "give exactly one of `advance` or `set`",
            ));
        }
    };
    let wait = match req.wait_seconds {
        Some(s) if s > SETTLE_TIMEOUT.as_secs() => {
            return Err(ApiError::validation("waitSeconds", "must be 0–30"));
        }
        Some(s) => Duration::from_secs(s),
        None => SETTLE_TIMEOUT,
    };
    // Step from timer to timer, letting each step's work settle (the executor's sends included)
    // before moving on, so every text leaves at its own business time; once the wait budget is
    // spent, the remaining steps run without waiting.
    let deadline = Instant::now() + wait;
    // Work already under way (a reply being answered, a text being sent) belongs to the time it
    // started at: let it finish before the clock leaves that moment.
    wait_settled(
        &state,
        deadline
            .saturating_duration_since(Instant::now())
            .min(STEP_SETTLE_TIMEOUT),
    )
    .await;
    let mut fired = 0;
    while let Some(n) = state
        .engine
        .advance_clock_step(target)
        .await
        .map_err(api_error)?
    {
        fired += n;
        state.events_appended.notify_waiters();
        state.work_available.notify_waiters();
        // A step whose work cannot settle (a provider down) holds the timeline back only briefly.
        let step_wait = deadline
            .saturating_duration_since(Instant::now())
            .min(STEP_SETTLE_TIMEOUT);
        wait_settled(&state, step_wait).await;
    }
    state.events_appended.notify_waiters();
    state.work_available.notify_waiters();
    let settled = wait_settled(&state, deadline.saturating_duration_since(Instant::now())).await;
    Ok(axum::Json(
        json!({"now": state.engine.clock().now(), "firedTimers": fired, "settled": settled}),
    )
    .into_response())
}

/// Business time must stay within RFC 3339's four-digit years: every time on the wire (and in
/// events) is written in it.
fn within_rfc3339(field: &str, time: Option<DateTime<Utc>>) -> Result<DateTime<Utc>, ApiError> {
    time.filter(|t| t.year() <= 9999)
        .ok_or_else(|| ApiError::validation(field, "business time cannot pass the year 9999"))
}

/// Waits until no execution is open and no timer is due, twice in a row (callbacks and
/// replies may start new work right after the queue empties), or the timeout.
async fn wait_settled(state: &AppState, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut quiet = 0;
    while Instant::now() < deadline {
        // Fire anything that fell due from work done meanwhile.
        let fired = state.engine.fire_due_timers(100).await.unwrap_or(0);
        match state.engine.is_settled().await {
            Ok(true) if fired == 0 => {
                quiet += 1;
                if quiet >= 3 {
                    return true;
                }
            }
            _ => quiet = 0,
        }
        if Instant::now() + Duration::from_millis(50) >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    matches!(state.engine.is_settled().await, Ok(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn business_time_stops_at_the_last_rfc3339_year() {
        let last = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(within_rfc3339("set", Some(last)).unwrap(), last);
        let beyond = last.checked_add_signed(chrono::Duration::days(2));
        assert_eq!(
            within_rfc3339("advance", beyond).unwrap_err().details["field"],
            "advance"
        );
        assert!(within_rfc3339("advance", None).is_err());
    }
}
