//! `GET /v1/dead-letters`: the executions that ran out of attempts, for operators to retry
//! (`dead_letter.retry`) or archive (`dead_letter.archive`) through the Command API.

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
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/dead-letters", get(list))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `open` (default), `retried` or `archived`.
    status: Option<String>,
    /// At most this many (1–500, default 100), oldest first.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    id: String,
    execution_id: String,
    command_type: String,
    error_code: Option<String>,
    error_message: Option<String>,
    attempts: i64,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterList {
    dead_letters: Vec<DeadLetter>,
}

/// Dead letters of the tenant. Scope `events:read`.
#[utoipa::path(
    get,
    path = "/v1/dead-letters",
    tag = "executions",
    operation_id = "listDeadLetters",
    params(crate::openapi::TenantHeader, ListParams),
    responses(
        (status = 200, description = "The dead letters", body = DeadLetterList),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Response, ApiError> {
    scope.require(Scope::EventsRead)?;
    let status = params.status.unwrap_or_else(|| "open".to_owned());
    if !matches!(status.as_str(), "open" | "retried" | "archived") {
        return Err(ApiError::validation(
            "query.status",
            "open, retried or archived",
        ));
    }
    let limit = params.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation("query.limit", "must be 1–500"));
    }
    let tenant = scope.tenant_id.to_string();
    let rows = state
        .store
        .read(move |tx| {
            Box::pin(async move {
                tx.raw()
                    .list_dead_letters(&tenant, Some(&status), limit)
                    .await
            })
        })
        .await
        .map_err(|e| api_error(e.into()))?;
    let dead_letters = rows
        .into_iter()
        .map(|r| DeadLetter {
            id: r.id,
            execution_id: r.execution_id,
            command_type: r.command_type,
            error_code: r.error_code,
            error_message: r.error_message,
            attempts: r.attempts,
            status: r.status,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect();
    Ok(axum::Json(DeadLetterList { dead_letters }).into_response())
}
