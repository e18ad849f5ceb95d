//! Request ids: taken from `X-Request-Id` when a caller (another ARO service) sends a sane one,
//! minted otherwise; echoed on the response, put on the request's log span, and available to
//! outbound calls through [`current_request_id`] so one id follows a request across services.

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served by this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `fut` with `id` as the current request id (background work started by a request).
pub async fn with_request_id<F: std::future::Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

fn accept(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 128
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

pub(crate) async fn request_context(
    State(service): State<&'static str>,
    request: Request,
    next: Next,
) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| accept(v))
        .map(str::to_owned)
        .unwrap_or_else(new_request_id);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        service,
        method = %method,
        route = %route,
    );
    let started = Instant::now();
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request).instrument(span.clone()))
        .await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    metrics::counter!(
        "aro_http_requests_total",
        "service" => service,
        "route" => route.clone(),
        "method" => method.to_string(),
        "status" => status.to_string(),
    )
    .increment(1);
    metrics::histogram!(
        "aro_http_request_duration_seconds",
        "service" => service,
        "route" => route.clone(),
    )
    .record(elapsed.as_secs_f64());
    let quiet = matches!(route.as_str(), "/health" | "/ready" | "/metrics");
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(
                status,
                elapsed_ms = elapsed.as_millis() as u64,
                "request failed"
            );
        } else if !quiet {
            tracing::info!(
                status,
                elapsed_ms = elapsed.as_millis() as u64,
                "request served"
            );
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_incoming_ids_are_reused() {
        assert!(accept("01J9ZQ-abc_def.1:2"));
        assert!(!accept(""));
        assert!(!accept("has space"));
        assert!(!accept("line\nbreak"));
        assert!(!accept(&"a".repeat(129)));
    }
}
