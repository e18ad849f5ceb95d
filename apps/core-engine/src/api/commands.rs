//! The Command API (DESIGN.md "Commands"): `POST /v1/commands` with an `Idempotency-Key`, and
//! the read-backs `GET /v1/commands/{id}` and `GET /v1/workflows/{id}`.

use super::engine_error::{api_error, from_error_object};
use crate::AppState;
use crate::auth::TenantScope;
use aro_http::{ApiError, ApiJson, ApiPath};
use aro_security::tokens::Scope;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const CORRELATION_ID: &str = "x-correlation-id";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/commands", post(submit))
        .route("/v1/commands/{command_id}", get(get_command))
        .route("/v1/workflows/{workflow_id}", get(get_workflow))
}

fn printable(raw: &str, max: usize) -> bool {
    !raw.is_empty() && raw.len() <= max && raw.bytes().all(|b| (0x21..0x7f).contains(&b))
}

/// `X-Correlation-Id` as sent when it is sane, else a new one.
pub fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get(CORRELATION_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| printable(v, 128))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Applies a command.
///
/// The command is applied in one transaction with its events before the answer. A repeat with
/// the same `Idempotency-Key` and body gets the stored answer (2xx and 4xx are stored, with
/// `Idempotent-Replayed: true`, a refused envelope included); the same key with another body is
/// 422 `IDEMPOTENCY_KEY_REUSED`. Answers marked `retryable` (409 `CONCURRENT_UPDATE`, 503) are
/// never stored: a retry with the same key is applied afresh. Commands on one aggregate are
/// applied one after another. `commandId` and `aggregate.id` are assigned when absent. Scope
/// `commands:write`.
#[utoipa::path(
    post,
    path = "/v1/commands",
    tag = "commands",
    operation_id = "submitCommand",
    params(crate::openapi::TenantHeader, crate::openapi::CommandHeaders),
    request_body = aro_workflow::CommandEnvelope,
    responses(
        (status = 200, description = "Applied, or the stored answer to an earlier request with this key",
            body = aro_workflow::CommandOutcome,
            headers(
                ("X-Correlation-Id" = String, description = "The request's correlation id, as sent or generated"),
                ("Idempotent-Replayed" = String, description = "`true`, present only when this is a stored answer"),
            )),
        (status = 400, description = "`MISSING_IDEMPOTENCY_KEY`, `INVALID_IDEMPOTENCY_KEY`, `MISSING_TENANT`, `INVALID_TENANT` or `MALFORMED_JSON`", body = crate::openapi::ErrorEnvelope),
        (status = 404, description = "`NOT_FOUND`: the command names an aggregate this tenant does not have", body = crate::openapi::ErrorEnvelope),
        (status = 409, description = "`INVALID_TRANSITION` (`details.from`, `details.to`), `COMMAND_ID_REUSED`, or `CONCURRENT_UPDATE` (retryable)", body = crate::openapi::ErrorEnvelope),
        (status = 422, description = "`VALIDATION_ERROR` (`details.field`, e.g. `payload.startsAt`), `IDEMPOTENCY_KEY_REUSED`, or a guardrail refusal", body = crate::openapi::ErrorEnvelope),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
async fn submit(
    State(state): State<AppState>,
    scope: TenantScope,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    scope.require(Scope::CommandsWrite)?;
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "MISSING_IDEMPOTENCY_KEY",
                "send an Idempotency-Key header (any unique string up to 255 characters)",
            )
        })?;
    if !printable(key, 255) {
        return Err(ApiError::bad_request(
            "INVALID_IDEMPOTENCY_KEY",
            "the Idempotency-Key must be 1–255 printable ASCII characters",
        ));
    }
    let correlation = correlation_id(&headers);
    let answer = state
        .engine
        .execute_command(
            scope.tenant_id.as_str(),
            body,
            key,
            &correlation,
            &scope.caller.actor(),
        )
        .await
        .map_err(api_error);
    let mut response = match answer {
        Ok(a) if a.status < 300 => {
            let mut r = axum::Json(a.body).into_response();
            if a.replayed {
                r.headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            r
        }
        Ok(a) => {
            // A stored client error, replayed.
            let error = a.body.get("error").cloned().unwrap_or(Value::Null);
            let mut r = from_error_object(a.status, &error).into_response();
            r.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            r
        }
        Err(e) => e.into_response(),
    };
    if response.status().is_success() {
        state.events_appended.notify_waiters();
        state.work_available.notify_waiters();
    }
    if let Ok(v) = HeaderValue::from_str(&correlation) {
        response.headers_mut().insert(CORRELATION_ID, v);
    }
    Ok(response)
}

/// Reading back commands and workflows is open to writers and readers alike.
fn require_read(scope: &TenantScope) -> Result<(), ApiError> {
    scope
        .require(Scope::CommandsWrite)
        .or_else(|_| scope.require(Scope::EventsRead))
}

/// A command's stored answer. Scope `commands:write` or `events:read`.
#[utoipa::path(
    get,
    path = "/v1/commands/{commandId}",
    tag = "commands",
    operation_id = "getCommand",
    params(crate::openapi::TenantHeader, ("commandId" = String, Path, description = "The command's id")),
    responses(
        (status = 200, description = "The command", body = crate::openapi::CommandRecord),
        (status = 404, description = "`NOT_FOUND`: no such command in this tenant", body = crate::openapi::ErrorEnvelope),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
async fn get_command(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    require_read(&scope)?;
    let body = state
        .engine
        .get_command(scope.tenant_id.as_str(), &id)
        .await
        .map_err(api_error)?;
    Ok(axum::Json(body).into_response())
}

/// A workflow instance with its pending timers. Scope `commands:write` or `events:read`.
#[utoipa::path(
    get,
    path = "/v1/workflows/{workflowId}",
    tag = "commands",
    operation_id = "getWorkflow",
    params(crate::openapi::TenantHeader, ("workflowId" = String, Path, description = "The workflow's id")),
    responses(
        (status = 200, description = "The workflow", body = crate::openapi::WorkflowView),
        (status = 404, description = "`NOT_FOUND`: no such workflow in this tenant", body = crate::openapi::ErrorEnvelope),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
async fn get_workflow(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    require_read(&scope)?;
    let body = state
        .engine
        .get_workflow(scope.tenant_id.as_str(), &id)
        .await
        .map_err(api_error)?;
    Ok(axum::Json(body).into_response())
}
