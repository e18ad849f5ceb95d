//! `GET /v1/reports/metrics?from=&to=`: a clinic's metrics for a period, computed from the event
//! log (definitions in docs/flows.md and crates/workflow/src/reports.rs).

use super::engine_error::api_error;
use crate::AppState;
use crate::auth::TenantScope;
use aro_http::{ApiError, ApiQuery};
use aro_security::tokens::Scope;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/reports/metrics", get(metrics))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Period {
    /// Start of the period (inclusive, RFC 3339); default: the beginning.
    from: Option<DateTime<Utc>>,
    /// End of the period (exclusive, RFC 3339); default: now.
    to: Option<DateTime<Utc>>,
}

/// A clinic's metrics for a period, from the event log. Scope `events:read`.
#[utoipa::path(
    get,
    path = "/v1/reports/metrics",
    tag = "reports",
    operation_id = "getMetrics",
    params(crate::openapi::TenantHeader, Period),
    responses(
        (status = 200, description = "The metrics", body = aro_workflow::reports::Metrics),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn metrics(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiQuery(period): ApiQuery<Period>,
) -> Result<Response, ApiError> {
    scope.require(Scope::EventsRead)?;
    if let (Some(from), Some(to)) = (period.from, period.to)
        && to <= from
    {
        return Err(ApiError::validation("query.to", "must be after from"));
    }
    let m = aro_workflow::reports::metrics(
        &state.store,
        scope.tenant_id.as_str(),
        period.from,
        period.to,
    )
    .await
    .map_err(|e| api_error(e.into()))?;
    Ok(axum::Json(m).into_response())
}
