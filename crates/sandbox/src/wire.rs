//! Reading requests the way the providers do: form bodies whatever the `Content-Type` says,
//! HTTP basic credentials (Twilio, and Stripe's alternative) and bearer tokens (Stripe,
//! Calendly).

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Decoded `application/x-www-form-urlencoded` pairs, in order.
pub(crate) fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The first value of `name`, if present.
pub(crate) fn first<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// The first non-blank value of `name`, trimmed.
pub(crate) fn non_blank<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    first(params, name)
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// `(user, password)` from `Authorization: Basic …`.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = BASE64.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The token from `Authorization: Bearer …`.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// Constant-time string comparison for credentials (length is not secret).
pub(crate) fn same_secret(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0_u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn basic_credentials_are_decoded_and_split_at_the_first_colon() {
        let encoded = BASE64.encode("AC123:to:ken");
        assert_eq!(
            basic_credentials(&with_auth(&format!("Basic {encoded}"))),
            Some(("AC123".to_owned(), "to:ken".to_owned()))
        );
        assert_eq!(basic_credentials(&with_auth("Basic !!!")), None);
        assert_eq!(basic_credentials(&with_auth("Bearer abc")), None);
        assert_eq!(basic_credentials(&HeaderMap::new()), None);
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        assert_eq!(
            bearer_token(&with_auth("bearer sk_test_1")).as_deref(),
            Some("sk_test_1")
        );
        assert_eq!(bearer_token(&with_auth("Basic abc")), None);
    }

    #[test]
    fn form_pairs_keep_order_and_decode() {
        let params = form(b"To=%2B1415&Body=Hi+there&Body=again");
        assert_eq!(first(&params, "To"), Some("+1415"));
        assert_eq!(first(&params, "Body"), Some("Hi there"));
        assert_eq!(non_blank(&form(b"From=%20%20"), "From"), None);
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
    }
}
