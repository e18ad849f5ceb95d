//! `/health`, `/ready`, `/metrics` and the router frame every service is served in: the error
//! envelope for unknown paths (404) and methods (405), panics turned into a 500 envelope, a body
//! size limit, and the request-id middleware around all of it.

use crate::error::ApiError;
use crate::request_id::request_context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;

/// Largest request body any ARO service accepts (provider webhooks are a few kB).
pub const BODY_LIMIT_BYTES: usize = 1024 * 1024;

/// One readiness check: a dependency and whether it answers.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Check {
    pub fn ok(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ok: true,
            detail: None,
        }
    }

    pub fn failed(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ok: false,
            detail: Some(detail.into()),
        }
    }
}

/// The service's own readiness: its dependencies (DESIGN.md: core — database and migrations;
/// executor and BFF — core; UI — BFF).
pub type Readiness = Arc<dyn Fn() -> BoxFuture<'static, Vec<Check>> + Send + Sync>;

/// Readiness for a service that depends on another ARO service: its `/ready` must answer 200.
pub fn upstream_readiness(
    name: &'static str,
    client: reqwest::Client,
    base_url: url::Url,
) -> Readiness {
    Arc::new(move || {
        let client = client.clone();
        let url = base_url.join("ready");
        Box::pin(async move {
            let Ok(url) = url else {
                return vec![Check::failed(name, "invalid URL")];
            };
            match client.get(url).timeout(Duration::from_secs(2)).send().await {
                Ok(r) if r.status().is_success() => vec![Check::ok(name)],
                Ok(r) => vec![Check::failed(
                    name,
                    format!("answered {}", r.status().as_u16()),
                )],
                Err(e) if e.is_timeout() => vec![Check::failed(name, "timed out")],
                Err(_) => vec![Check::failed(name, "unreachable")],
            }
        })
    })
}

#[derive(Clone)]
struct OpsState {
    service: &'static str,
    readiness: Readiness,
}

async fn health(State(state): State<OpsState>) -> Response {
    axum::Json(json!({"status": "ok", "service": state.service})).into_response()
}

async fn ready(State(state): State<OpsState>) -> Response {
    let checks = (state.readiness)().await;
    if checks.iter().all(|c| c.ok) {
        axum::Json(json!({"status": "ready", "service": state.service, "checks": checks}))
            .into_response()
    } else {
        ApiError::unavailable("NOT_READY", format!("{} is not ready", state.service))
            .with_details(json!({"checks": checks}))
            .into_response()
    }
}

async fn metrics(State(state): State<OpsState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        aro_telemetry::render_metrics(state.service),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this route does not accept that method",
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("a request handler panicked").into_response()
}

/// Wraps a service's API routes in the shared frame. `api` must already have its state.
pub fn service_router(service: &'static str, api: Router, readiness: Readiness) -> Router {
    let ops = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(OpsState { service, readiness });
    ops.merge(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn_with_state(
            service,
            request_context,
        ))
}
