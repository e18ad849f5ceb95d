//! Engine errors as HTTP answers: one mapping, shared with the stored answers of idempotent
//! commands (so a replayed 4xx is byte-for-byte the first one, apart from the request id).

use aro_http::ApiError;
use aro_workflow::{EngineError, error_answer};
use axum::http::StatusCode;
use serde_json::Value;

pub fn api_error(e: EngineError) -> ApiError {
    if let EngineError::Store(s) = &e {
        if s.is_retryable() {
            tracing::warn!(error = %s, "database unavailable");
        } else {
            tracing::error!(error = %s, "storage error");
        }
    }
    let (status, error) = error_answer(&e);
    from_error_object(status, &error)
}

/// Rebuilds an [`ApiError`] from a stored `error` object.
pub fn from_error_object(status: u16, error: &Value) -> ApiError {
    let code = error
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or("INTERNAL_ERROR")
        .to_owned();
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let retryable = error
        .get("retryable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    ApiError::new(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        code,
        message,
    )
    .with_details(
        error
            .get("details")
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default())),
    )
    .retryable(retryable)
}
