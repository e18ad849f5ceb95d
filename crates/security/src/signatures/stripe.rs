//! Stripe webhook signatures (`Stripe-Signature` header).
//!
//! Format: `t=<unix>,v1=<hex>[,v1=<hex>…][,v0=<hex>]`. Each `v1` is lower-case hex of
//! HMAC-SHA256 keyed with the whole endpoint secret (`whsec_…`, used as UTF-8 bytes, not
//! decoded) over `"{t}.{raw request body}"`. Any matching `v1` passes; `v0` (test-mode legacy)
//! is ignored. Timestamps more than the tolerance ([`DEFAULT_TOLERANCE_SECS`], Stripe's own
//! default) in the past are [`SignatureError::Stale`], in the future
//! [`SignatureError::Future`].
//!
//! Verify over the exact bytes received: re-serialised JSON will not match.

use super::{SignatureError, timestamped};

/// The header Stripe sends the signature in.
pub const HEADER: &str = "Stripe-Signature";
/// Stripe's default tolerance: five minutes.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// The `Stripe-Signature` value Stripe would send for `body` at `timestamp` (used by the
/// sandbox and by tests).
pub fn sign_header(secret: &str, body: &[u8], timestamp: i64) -> String {
    timestamped::sign_header(secret, body, timestamp)
}

/// Verifies a `Stripe-Signature` header (`None` when the request has none).
pub fn verify(
    secret: &str,
    body: &[u8],
    header: Option<&str>,
    now_unix: i64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    timestamped::verify(secret, body, header, now_unix, tolerance_secs)
}
