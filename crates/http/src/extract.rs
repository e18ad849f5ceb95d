//! Extractors whose rejections are the error envelope: a malformed body is 400
//! `MALFORMED_JSON`, a well-formed body of the wrong shape is 422 `VALIDATION_ERROR` naming the
//! field, and a body over the size limit is 413.

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// JSON in and out.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| {
                let v = v.trim().to_ascii_lowercase();
                v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PAYLOAD_TOO_LARGE",
                    "the request body is too large",
                )
            } else {
                ApiError::bad_request("BAD_REQUEST", rejection.body_text())
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON, telling a syntax error (400) from a shape error (422 with the field path).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
        let err = serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        return Err(ApiError::bad_request(
            "MALFORMED_JSON",
            format!("the body is not valid JSON: {err}"),
        ));
    }
    if has_escaped_nul(bytes) {
        return Err(nul_refused("body"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        let reason = strip_position(&e.into_inner().to_string());
        ApiError::validation(field, reason)
    })
}

/// Text never holds the NUL character: PostgreSQL cannot store it in a text column, SQLite
/// would, so refusing it at the door keeps both engines answering alike (and never a 500).
fn nul_refused(field: &str) -> ApiError {
    ApiError::validation(field, "text must not contain the NUL character (U+0000)")
}

/// Whether valid JSON `bytes` hold a `\u0000` escape in a string (a raw NUL byte is not valid
/// JSON, and an escaped backslash followed by `u0000` is not a NUL).
fn has_escaped_nul(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes.get(i + 1) == Some(&b'u')
                && bytes.get(i + 2..i + 6) == Some(b"0000".as_slice())
            {
                return true;
            }
            // Skip the escaped character, so `\\u0000` reads as a backslash and "u0000".
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// Whether a raw URI component holds a percent-encoded NUL.
fn has_encoded_nul(raw: &str) -> bool {
    raw.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

/// serde_json appends " at line 1 column 42"; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query string parameters; a bad one is 422 naming `query.<name>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        if has_encoded_nul(query) {
            return Err(nul_refused("query"));
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let field = if path == "." {
                    "query".to_owned()
                } else {
                    format!("query.{path}")
                };
                ApiError::validation(field, e.into_inner().to_string())
            })
    }
}

/// Path parameters; a malformed one is 404 (no such resource), never a 500.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // No resource's id holds a NUL.
        if has_encoded_nul(parts.uri.path()) {
            return Err(ApiError::not_found("resource"));
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|_| ApiError::not_found("resource"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        payload: Payload,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Payload {
        starts_at: u32,
    }

    #[test]
    fn nul_characters_are_refused_but_escaped_backslashes_are_not_mistaken_for_them() {
        let err = parse_json::<serde_json::Value>(br#"{"types": ["\u0000"]}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(parse_json::<serde_json::Value>(br#"{"a": "x\u0000y"}"#).is_err());
        // A backslash, then the letters u0000: fine.
        let ok = parse_json::<serde_json::Value>(br#"{"a": "\\u0000"}"#).unwrap();
        assert_eq!(ok["a"], "\\u0000");
        assert!(parse_json::<serde_json::Value>(br#"{"a": "\u00001"}"#).is_err());
        assert!(parse_json::<serde_json::Value>(br#"{"a": "\u0001"}"#).is_ok());
        assert!(has_encoded_nul("/v1/commands/%00"));
        assert!(has_encoded_nul("after=1&eventType=a%00b"));
        assert!(!has_encoded_nul("/v1/commands/cmd_%20100"));
    }

    #[test]
    fn shape_errors_name_the_field() {
        let err = parse_json::<Body>(br#"{"payload": {"startsAt": "soon"}}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.details["field"], "payload.startsAt");
        let err = parse_json::<Body>(br#"{"payload": "#).unwrap_err();
        assert_eq!(err.code, "MALFORMED_JSON");
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Page {
        after: Option<i64>,
        limit: Option<u32>,
    }

    #[tokio::test]
    async fn query_errors_name_the_parameter() {
        let mut parts = axum::http::Request::builder()
            .uri("/v1/events?after=5&limit=lots")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let err = ApiQuery::<Page>::from_request_parts(&mut parts, &())
            .await
            .unwrap_err();
        assert_eq!(err.details["field"], "query.limit");
        let mut parts = axum::http::Request::builder()
            .uri("/v1/events?after=5&limit=10")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let ok = ApiQuery::<Page>::from_request_parts(&mut parts, &())
            .await
            .unwrap();
        assert_eq!(ok.0.limit, Some(10));
    }
}
