//! Webhook signatures: deciding whether a request really comes from the provider it claims.
//!
//! One module per scheme, each made of pure functions that take the current time explicitly
//! (`now_unix`: pass real time, DESIGN.md "Time"), compare in constant time, and never panic on
//! any header value:
//!
//! - [`twilio`]: base64 HMAC-SHA1 over the URL and the sorted form parameters (no timestamp;
//!   replays are caught by `MessageSid` upstream);
//! - [`stripe`]: `Stripe-Signature: t=…,v1=…`, hex HMAC-SHA256 over `"{t}.{raw body}"`;
//! - [`calendly`]: `Calendly-Webhook-Signature: t=…,v1=…`, the same construction;
//! - [`standard_webhooks`]: the Standard Webhooks scheme our own event deliveries are signed
//!   with (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
//!
//! The signature is checked before the timestamp, so [`SignatureError::Stale`] and
//! [`SignatureError::Future`] describe genuine but mistimed (e.g. replayed) deliveries, while a
//! forged one is always [`SignatureError::Mismatch`]. Every error maps to HTTP 401
//! (`INVALID_SIGNATURE`, or `STALE_SIGNATURE` for `Stale`/`Future`), except
//! [`SignatureError::InvalidSecret`], which is our configuration's fault.

pub mod calendly;
pub mod standard_webhooks;
pub mod stripe;
pub mod twilio;

mod timestamped;

use subtle::ConstantTimeEq;

/// Why a webhook signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature header (or another header the scheme needs) is absent or empty.
    #[error("signature header is missing")]
    MissingHeader,
    /// The header is present but cannot be read.
    #[error("signature header is malformed: {0}")]
    Malformed(&'static str),
    /// The signature matches, but its timestamp is older than the tolerance.
    #[error("signature timestamp is {age_secs} s old, more than the {tolerance_secs} s allowed")]
    Stale {
        /// How old the timestamp is.
        age_secs: i64,
        /// The tolerance applied.
        tolerance_secs: u64,
    },
    /// The signature matches, but its timestamp is further in the future than the tolerance.
    #[error(
        "signature timestamp is {ahead_secs} s in the future, more than the {tolerance_secs} s allowed"
    )]
    Future {
        /// How far ahead the timestamp is.
        ahead_secs: i64,
        /// The tolerance applied.
        tolerance_secs: u64,
    },
    /// No signature in the header matches the request.
    #[error("signature does not match")]
    Mismatch,
    /// Our own configured secret is unusable (e.g. not `whsec_` + base64). Not the sender's
    /// fault: report it as a server error.
    #[error("configured webhook secret is invalid: {0}")]
    InvalidSecret(&'static str),
}

impl SignatureError {
    /// Whether the request was genuine but outside the time tolerance (a replay or a badly
    /// skewed clock), as opposed to unauthenticated.
    pub fn is_timing(&self) -> bool {
        matches!(
            self,
            SignatureError::Stale { .. } | SignatureError::Future { .. }
        )
    }
}

/// Treats an absent, empty or all-blank header the same way: as missing.
fn present(header: Option<&str>) -> Result<&str, SignatureError> {
    match header.map(str::trim) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(SignatureError::MissingHeader),
    }
}

/// Constant-time equality of two MACs (length differences are not secret).
fn macs_equal(expected: &[u8], given: &[u8]) -> bool {
    expected.ct_eq(given).into()
}

/// Refuses a timestamp more than `tolerance_secs` away from `now_unix` in either direction.
fn check_freshness(
    timestamp: i64,
    now_unix: i64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    // i128 so that any i64 timestamp from a header can be subtracted without overflow.
    let age = i128::from(now_unix) - i128::from(timestamp);
    let tolerance = i128::from(tolerance_secs);
    let clamp = |v: i128| i64::try_from(v).unwrap_or(i64::MAX);
    if age > tolerance {
        return Err(SignatureError::Stale {
            age_secs: clamp(age),
            tolerance_secs,
        });
    }
    if -age > tolerance {
        return Err(SignatureError::Future {
            ahead_secs: clamp(-age),
            tolerance_secs,
        });
    }
    Ok(())
}

/// Parses a Unix timestamp written as plain decimal digits (no sign, no spaces).
fn parse_unix_seconds(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_window_is_inclusive_in_both_directions() {
        assert_eq!(check_freshness(1000, 1300, 300), Ok(()));
        assert_eq!(check_freshness(1300, 1000, 300), Ok(()));
        assert_eq!(
            check_freshness(999, 1300, 300),
            Err(SignatureError::Stale {
                age_secs: 301,
                tolerance_secs: 300
            })
        );
        assert_eq!(
            check_freshness(1301, 1000, 300),
            Err(SignatureError::Future {
                ahead_secs: 301,
                tolerance_secs: 300
            })
        );
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        assert!(matches!(
            check_freshness(i64::MIN, i64::MAX, 300),
            Err(SignatureError::Stale {
                age_secs: i64::MAX,
                ..
            })
        ));
        assert!(matches!(
            check_freshness(i64::MAX, i64::MIN, u64::MAX),
            Ok(())
        ));
        assert!(check_freshness(i64::MAX, 0, 300).is_err());
    }

    #[test]
    fn timestamps_are_plain_digits() {
        assert_eq!(parse_unix_seconds("1700000000"), Some(1_700_000_000));
        for bad in [
            "",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1.5",
            "1e9",
            "99999999999999999999",
        ] {
            assert_eq!(parse_unix_seconds(bad), None, "{bad:?}");
        }
    }
}
