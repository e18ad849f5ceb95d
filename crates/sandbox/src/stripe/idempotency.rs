//! Stripe's idempotent requests: the first answer to a key is stored (once the endpoint started
//! executing — a request refused by validation stores nothing) and replayed for 24 hours to the
//! same request with `Idempotent-Replayed: true`; the same key with other parameters or on
//! another endpoint is a 400 `idempotency_error`. Keys are the account's own: another account
//! may use the same key for its own request.

use super::{StripeError, StripeState};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::time::{Duration, Instant};

/// How long Stripe keeps idempotency keys.
const KEPT_FOR: Duration = Duration::from_secs(24 * 60 * 60);
/// Stripe's limit on a key's length.
const MAX_KEY_LEN: usize = 255;

/// A stored first answer.
pub(super) struct Stored {
    endpoint: &'static str,
    /// The request's parameters, sorted, so parameter order does not matter.
    params: Vec<(String, String)>,
    status: StatusCode,
    body: Value,
    at: Instant,
}

fn normalised(params: &[(String, String)]) -> Vec<(String, String)> {
    let mut sorted = params.to_vec();
    sorted.sort();
    sorted
}

/// Runs `create` under `Idempotency-Key` semantics; answers as Stripe would.
pub(super) fn run(
    state: &mut StripeState,
    headers: &HeaderMap,
    account: &str,
    endpoint: &'static str,
    params: &[(String, String)],
    create: impl FnOnce(&mut StripeState) -> Result<Value, StripeError>,
) -> Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(key) = key else {
        return answer(create(state), None);
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return StripeError::invalid(
            format!(
                "Invalid idempotency key: must be between 1 and {MAX_KEY_LEN} characters long."
            ),
            None,
        )
        .into_response();
    }
    let params = normalised(params);
    // A space cannot occur in an account id: the scoped key is unambiguous.
    let scoped = format!("{account} {key}");
    let existing = state
        .idempotency
        .get(&scoped)
        .filter(|stored| stored.at.elapsed() < KEPT_FOR);
    if let Some(stored) = existing {
        if stored.endpoint != endpoint || stored.params != params {
            return StripeError {
                kind: "idempotency_error",
                ..StripeError::invalid(
                    format!(
                        "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
                    ),
                    None,
                )
            }
            .into_response();
        }
        let mut response = (stored.status, axum::Json(stored.body.clone())).into_response();
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        echo_key(&mut response, &key);
        return response;
    }
    let outcome = create(state);
    if let Ok(body) = &outcome {
        state.idempotency.insert(
            scoped,
            Stored {
                endpoint,
                params,
                status: StatusCode::OK,
                body: body.clone(),
                at: Instant::now(),
            },
        );
    }
    answer(outcome, Some(&key))
}

fn answer(outcome: Result<Value, StripeError>, key: Option<&str>) -> Response {
    let mut response = match outcome {
        Ok(body) => axum::Json(body).into_response(),
        Err(error) => error.into_response(),
    };
    if let Some(key) = key {
        echo_key(&mut response, key);
    }
    response
}

fn echo_key(response: &mut Response, key: &str) {
    if let Ok(value) = HeaderValue::from_str(key) {
        response.headers_mut().insert("idempotency-key", value);
    }
}
