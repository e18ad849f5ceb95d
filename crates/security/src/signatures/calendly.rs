//! Calendly webhook signatures (`Calendly-Webhook-Signature` header).
//!
//! Format: `t=<unix>,v1=<hex>`, where `v1` is lower-case hex of HMAC-SHA256 keyed with the
//! webhook signing key (as UTF-8 bytes) over `"{t}.{raw request body}"` — the same construction
//! as Stripe's. Calendly recommends a three-minute tolerance ([`DEFAULT_TOLERANCE_SECS`]);
//! older timestamps are [`SignatureError::Stale`], later ones [`SignatureError::Future`].

use super::{SignatureError, timestamped};

/// The header Calendly sends the signature in.
pub const HEADER: &str = "Calendly-Webhook-Signature";
/// Calendly's recommended tolerance: three minutes.
pub const DEFAULT_TOLERANCE_SECS: u64 = 180;

/// The header value Calendly would send for `body` at `timestamp` (used by the sandbox and by
/// tests).
pub fn sign_header(signing_key: &str, body: &[u8], timestamp: i64) -> String {
    timestamped::sign_header(signing_key, body, timestamp)
}

/// Verifies a `Calendly-Webhook-Signature` header (`None` when the request has none).
pub fn verify(
    signing_key: &str,
    body: &[u8],
    header: Option<&str>,
    now_unix: i64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    timestamped::verify(signing_key, body, header, now_unix, tolerance_secs)
}
