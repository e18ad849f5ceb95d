//! Reading Twilio's error answers: `{"code": 21211, "message": "…", "more_info": "…",
//! "status": 400}`.
//!
//! Twilio's numeric codes say more than the HTTP status: 21610 (the recipient replied STOP) is a
//! business fact to record, not a failure to retry; 20429 is throttling; 20003 is a credential
//! problem, except when Twilio answers it with a 5xx during its own outage. Twilio's `message`
//! often repeats the phone number, so only the code and our own description are kept.

use serde::Deserialize;

use crate::error::{ErrorKind, Provider, ProviderError};
use crate::http::{Answer, Effect, status_error};

/// Twilio's error body.
#[derive(Debug, Deserialize)]
struct TwilioErrorBody {
    code: Option<i64>,
}

/// What a Twilio error code means, for people (logs, staff screens). Covers the codes the
/// messaging API answers with and the delivery codes seen in status callbacks.
pub fn describe_error_code(code: i64) -> Option<&'static str> {
    Some(match code {
        20003 => "authentication failed",
        20404 => "resource not found",
        20429 => "too many requests",
        20500 => "Twilio internal error",
        20503 => "Twilio service unavailable",
        21211 => "invalid recipient number",
        21408 => "sending to this region is not enabled",
        21602 => "message body required",
        21603 => "sender required",
        21604 => "recipient required",
        21606 => "sender cannot send SMS to this recipient",
        21608 => "recipient not verified for this trial account",
        21610 => "recipient unsubscribed from this sender",
        21612 => "no route to this recipient",
        21614 => "recipient is not SMS-capable",
        21617 => "message body too long",
        21660 => "sender does not belong to this account",
        30003 => "handset unreachable",
        30004 => "message blocked",
        30005 => "unknown destination handset",
        30006 => "landline or unreachable carrier",
        30007 => "message filtered by the carrier",
        30008 => "unknown delivery error",
        _ => return None,
    })
}

/// The kind a Twilio code implies at a given HTTP status, when the code decides it.
fn kind_for_code(code: i64, status: u16) -> Option<ErrorKind> {
    match code {
        21610 => Some(ErrorKind::RecipientOptedOut),
        20429 => Some(ErrorKind::RateLimited),
        // During an outage Twilio's authentication layer answers 20003 with a 5xx: the
        // credential was not judged, so the request is worth repeating.
        20003 if (500..=599).contains(&status) => Some(ErrorKind::Unavailable),
        20003 => Some(ErrorKind::CredentialRejected),
        20500 | 20503 => Some(ErrorKind::Unavailable),
        // Recipient and sender problems: the same request will always be refused.
        21211 | 21408 | 21602 | 21603 | 21604 | 21606 | 21608 | 21612 | 21614 | 21617 | 21660 => {
            Some(ErrorKind::Rejected)
        }
        _ => None,
    }
}

/// The error for a non-success answer from Twilio.
pub(crate) fn error_from_answer(answer: &Answer, effect: Effect) -> ProviderError {
    let generic = status_error(Provider::Twilio, answer, effect);
    let Some(code) = serde_json::from_slice::<TwilioErrorBody>(&answer.body)
        .ok()
        .and_then(|body| body.code)
    else {
        return generic;
    };
    let kind = kind_for_code(code, answer.status).unwrap_or(generic.kind());
    let description = describe_error_code(code).unwrap_or("see Twilio's error reference");
    let retry_after = if kind.is_retryable() {
        answer.retry_after()
    } else {
        None
    };
    ProviderError::new(
        Provider::Twilio,
        kind,
        format!(
            "twilio error {code}: {description} (http {}; https://www.twilio.com/docs/errors/{code})",
            answer.status
        ),
    )
    .with_http_status(answer.status)
    .with_provider_code(code.to_string())
    .with_retry_after(retry_after)
    .with_maybe_delivered(generic.maybe_delivered() && kind.is_retryable())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    fn answer(status: u16, code: i64) -> Answer {
        Answer {
            status,
            headers: HeaderMap::new(),
            body: format!(
                r#"{{"code": {code}, "message": "The 'To' number +15005550001 is not valid.",
                    "more_info": "https://www.twilio.com/docs/errors/{code}", "status": {status}}}"#
            )
            .into_bytes(),
        }
    }

    #[test]
    fn opt_out_is_an_outcome() {
        let error = error_from_answer(&answer(400, 21610), Effect::Write);
        assert_eq!(error.kind(), ErrorKind::RecipientOptedOut);
        assert_eq!(error.provider_code(), Some("21610"));
        assert!(!error.maybe_delivered());
    }

    #[test]
    fn recipient_problems_are_permanent() {
        for code in [21211, 21614, 21408, 21606, 21612] {
            let error = error_from_answer(&answer(400, code), Effect::Write);
            assert_eq!(error.kind(), ErrorKind::Rejected, "{code}");
            assert!(!error.is_retryable());
        }
    }

    #[test]
    fn authentication_code_depends_on_the_status() {
        assert_eq!(
            error_from_answer(&answer(401, 20003), Effect::Write).kind(),
            ErrorKind::CredentialRejected
        );
        assert_eq!(
            error_from_answer(&answer(503, 20003), Effect::Write).kind(),
            ErrorKind::Unavailable
        );
    }

    #[test]
    fn throttling_code_is_retryable_whatever_the_status() {
        let error = error_from_answer(&answer(429, 20429), Effect::Write);
        assert_eq!(error.kind(), ErrorKind::RateLimited);
        assert!(error.is_retryable());
    }

    #[test]
    fn the_message_never_repeats_twilios_text() {
        let error = error_from_answer(&answer(400, 21211), Effect::Write);
        assert!(!error.message().contains("5005550001"));
        assert!(error.message().contains("21211"));
    }

    #[test]
    fn an_unreadable_body_falls_back_to_the_status() {
        let answer = Answer {
            status: 502,
            headers: HeaderMap::new(),
            body: b"<html>bad gateway</html>".to_vec(),
        };
        let error = error_from_answer(&answer, Effect::Write);
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        assert!(error.maybe_delivered());
        assert_eq!(error.provider_code(), None);
    }
}
