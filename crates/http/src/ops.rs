//! `/health`, `/ready`, `/metrics` and the router frame every service is served in: the error
//! envelope for unknown paths (404) and methods (405), panics turned into a 500 envelope, a body
//! size limit, and the request-id middleware around all of it.

use crate::error::ApiError;
use crate::request_id::{REQUEST_ID_HEADER, current_request_id, request_context};
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
/// The check forwards the id of the request it runs for (the UI's `/ready` → the BFF's →
/// core's), so one id follows a readiness probe down the chain.
pub fn upstream_readiness(
    name: &'static str,
    client: reqwest::Client,
    base_url: url::Url,
) -> Readiness {
    Arc::new(move || {
        let client = client.clone();
        let url = base_url.join("ready");
        // Read when the check is asked for, within the request being served.
        let request_id = current_request_id();
        Box::pin(async move {
            let Ok(url) = url else {
                return vec![Check::failed(name, "invalid URL")];
            };
            let mut request = client.get(url).timeout(Duration::from_secs(2));
            if let Some(id) = request_id {
                request = request.header(REQUEST_ID_HEADER, id);
            }
            match request.send().await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use aro_telemetry::LogStyle;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::HeaderMap;
    use serde_json::Value;
    use std::sync::Mutex;
    use tower::ServiceExt;

    /// Log output captured in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .expect("capture lock")
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn json_lines(&self) -> Vec<Value> {
            let bytes = self.0.lock().expect("capture lock").clone();
            String::from_utf8(bytes)
                .expect("utf-8 logs")
                .lines()
                .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
                .collect()
        }
    }

    fn no_dependencies() -> Readiness {
        Arc::new(|| Box::pin(async { Vec::new() }))
    }

    #[tracing::instrument(skip_all, fields(tenant = "default"))]
    async fn list_events() -> Result<(), ApiError> {
        tracing::info!("reading a page of events");
        Err(ApiError::internal("the store went away"))
    }

    async fn get_with_id(router: Router, path: &str, id: Option<&str>) -> Response {
        let mut request = Request::get(path);
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        let request = request.body(Body::empty()).expect("request");
        router.oneshot(request).await.expect("infallible")
    }

    // Current-thread runtime: the scoped log subscriber is the thread's, and the whole request
    // runs on this thread.
    #[tokio::test]
    async fn lines_logged_inside_an_instrumented_handler_carry_the_request_id() {
        let captured = Captured::default();
        let writer = captured.clone();
        let dispatch = aro_telemetry::log_dispatch("info", LogStyle::Json, move || writer.clone());
        let _scoped = tracing::dispatcher::set_default(&dispatch);
        let api = Router::new().route("/v1/events", get(list_events));
        let router = service_router("core-engine", api, no_dependencies());

        let response = get_with_id(router, "/v1/events", Some("rid-500")).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);

        let lines = captured.json_lines();
        let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
        assert_eq!(
            messages,
            [
                "reading a page of events",
                "internal error",
                "request failed"
            ],
            "{lines:?}"
        );
        for line in &lines {
            assert_eq!(line["request_id"], "rid-500", "{line}");
            assert_eq!(line["service"], "core-engine", "{line}");
            assert_eq!(line["route"], "/v1/events", "{line}");
        }
        let internal = &lines[1];
        assert_eq!(internal["span"], "list_events", "{internal}");
        assert_eq!(internal["tenant"], "default");
        assert_eq!(internal["error"], "the store went away");
        assert_eq!(lines[2]["status"], 500);
    }

    /// A stand-in upstream whose `/ready` answers 200 and keeps each request's `X-Request-Id`.
    async fn recording_upstream() -> (url::Url, Arc<Mutex<Vec<Option<String>>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let app = Router::new().route(
            "/ready",
            get(move |headers: HeaderMap| {
                let record = record.clone();
                async move {
                    let id = headers
                        .get(REQUEST_ID_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    record.lock().expect("record lock").push(id);
                    "ready"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let url = url::Url::parse(&format!("http://{address}/")).expect("url");
        (url, seen)
    }

    #[tokio::test]
    async fn readiness_forwards_the_request_id_to_the_upstream() {
        let (upstream, seen) = recording_upstream().await;
        let readiness = upstream_readiness("bff", reqwest::Client::new(), upstream);
        let router = service_router("profile-ui-healthcare", Router::new(), readiness);

        let response = get_with_id(router.clone(), "/ready", Some("rid-probe-1")).await;
        assert_eq!(response.status(), StatusCode::OK);
        // Without an incoming id the minted one, the one the answer carries, goes upstream.
        let response = get_with_id(router, "/ready", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let minted = response
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert!(minted.is_some());

        let seen = seen.lock().expect("record lock").clone();
        assert_eq!(seen, [Some("rid-probe-1".to_owned()), minted]);
    }
}
