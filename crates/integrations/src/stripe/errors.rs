//! Reading Stripe's error answers: `{"error": {"type": "invalid_request_error", "code": "…",
//! "param": "…", "message": "…"}}` plus the `Stripe-Should-Retry` header.
//!
//! Precedence follows Stripe's own libraries: credentials first, then throttling, then Stripe's
//! explicit retry advice, then the error type. `idempotency_key_in_use` (the same key still
//! being processed) and `lock_timeout` are worth repeating; a conflicting reuse of a key
//! (`idempotency_error`) is not. Stripe's `message` can quote request values, so only type,
//! code and param (a field name) are kept.

use serde::Deserialize;

use crate::error::{ErrorKind, Provider, ProviderError};
use crate::http::{Answer, Effect, status_error};

#[derive(Debug, Default, Deserialize)]
struct StripeErrorBody {
    #[serde(default)]
    error: StripeError,
}

#[derive(Debug, Default, Deserialize)]
struct StripeError {
    #[serde(rename = "type", default)]
    error_type: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    param: Option<String>,
}

/// Keeps a provider-given token only if it looks like an identifier (no free text).
fn token(value: Option<String>) -> Option<String> {
    value.filter(|v| {
        !v.is_empty()
            && v.len() <= 80
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.[]-".contains(&b))
    })
}

pub(crate) fn error_from_answer(answer: &Answer, effect: Effect) -> ProviderError {
    let generic = status_error(Provider::Stripe, answer, effect);
    let body: StripeErrorBody = serde_json::from_slice(&answer.body).unwrap_or_default();
    let error_type = token(body.error.error_type);
    let code = token(body.error.code);
    let param = token(body.error.param);
    let should_retry = match answer.header("stripe-should-retry") {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    let status = answer.status;
    let kind = if matches!(status, 401 | 403) {
        ErrorKind::CredentialRejected
    } else if status == 429
        || code.as_deref() == Some("rate_limit")
        || error_type.as_deref() == Some("rate_limit_error")
    {
        ErrorKind::RateLimited
    } else if should_retry == Some(true) {
        if generic.kind().is_retryable() {
            generic.kind()
        } else {
            ErrorKind::Unavailable
        }
    } else if should_retry == Some(false) {
        if generic.kind().is_retryable() {
            ErrorKind::Rejected
        } else {
            generic.kind()
        }
    } else if matches!(
        code.as_deref(),
        Some("idempotency_key_in_use" | "lock_timeout")
    ) {
        ErrorKind::Unavailable
    } else {
        match error_type.as_deref() {
            Some("api_error") => ErrorKind::Unavailable,
            Some("card_error" | "invalid_request_error" | "idempotency_error") => {
                ErrorKind::Rejected
            }
            _ => generic.kind(),
        }
    };
    let mut message = format!("stripe {}", error_type.as_deref().unwrap_or("error"));
    if let Some(code) = &code {
        message.push_str(&format!(" {code}"));
    }
    if let Some(param) = &param {
        message.push_str(&format!(" (param {param})"));
    }
    message.push_str(&format!(" (http {status})"));
    let mut error = ProviderError::new(Provider::Stripe, kind, message)
        .with_http_status(status)
        .with_retry_after(if kind.is_retryable() {
            answer.retry_after()
        } else {
            None
        })
        .with_maybe_delivered(generic.maybe_delivered() && kind.is_retryable());
    if let Some(code) = code.or(error_type) {
        error = error.with_provider_code(code);
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    fn answer(status: u16, body: &str, should_retry: Option<&str>) -> Answer {
        let mut headers = HeaderMap::new();
        if let Some(Ok(value)) = should_retry.map(str::parse) {
            headers.insert("stripe-should-retry", value);
        }
        Answer {
            status,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    fn kind(status: u16, error_type: &str, code: &str) -> ErrorKind {
        let body = format!(
            r#"{{"error": {{"type": "{error_type}", "code": "{code}", "message": "No such price: 'price_1'"}}}}"#
        );
        error_from_answer(&answer(status, &body, None), Effect::Write).kind()
    }

    #[test]
    fn error_types_map_to_kinds() {
        assert_eq!(
            kind(402, "card_error", "card_declined"),
            ErrorKind::Rejected
        );
        assert_eq!(
            kind(400, "invalid_request_error", "parameter_missing"),
            ErrorKind::Rejected
        );
        assert_eq!(
            kind(400, "idempotency_error", "idempotency_key_reused"),
            ErrorKind::Rejected
        );
        assert_eq!(kind(500, "api_error", "api_error"), ErrorKind::Unavailable);
        assert_eq!(
            kind(429, "invalid_request_error", "rate_limit"),
            ErrorKind::RateLimited
        );
        assert_eq!(
            kind(409, "invalid_request_error", "idempotency_key_in_use"),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind(401, "invalid_request_error", "api_key_expired"),
            ErrorKind::CredentialRejected
        );
    }

    #[test]
    fn stripes_retry_advice_wins_over_the_status() {
        let told_no = error_from_answer(&answer(500, "{}", Some("false")), Effect::Write);
        assert_eq!(told_no.kind(), ErrorKind::Rejected);
        let told_yes = error_from_answer(&answer(409, "{}", Some("true")), Effect::Write);
        assert!(told_yes.is_retryable());
    }

    #[test]
    fn the_message_keeps_codes_not_stripes_text() {
        let body = r#"{"error": {"type": "invalid_request_error", "code": "resource_missing",
            "param": "line_items[0][price]", "message": "No such price: 'ada@example.org'"}}"#;
        let error = error_from_answer(&answer(400, body, None), Effect::Write);
        assert!(error.message().contains("resource_missing"));
        assert!(error.message().contains("line_items[0][price]"));
        assert!(!error.message().contains("ada@"));
        assert_eq!(error.provider_code(), Some("resource_missing"));
    }
}
