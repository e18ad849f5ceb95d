//! The `t=<unix>,v1=<hex>` construction shared by Stripe and Calendly.
//!
//! Header: comma-separated `key=value` items. `t` is the signing time (Unix seconds, the first
//! `t` item counts); each `v1` item is a candidate signature, lower-case hex of
//! HMAC-SHA256(secret as UTF-8 bytes, `"{t}.{raw body}"`). Any matching `v1` passes (providers
//! send several while a secret is being rolled); other items (`v0`, future schemes) are
//! ignored.

use super::{SignatureError, check_freshness, macs_equal, parse_unix_seconds, present};

/// `t=<now>,v1=<hex signature>` for `body` signed at `timestamp`.
pub(super) fn sign_header(secret: &str, body: &[u8], timestamp: i64) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body))
    )
}

/// Verifies a `t=…,v1=…` header; see the module documentation for the format.
pub(super) fn verify(
    secret: &str,
    body: &[u8],
    header: Option<&str>,
    now_unix: i64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    let header = present(header)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.split_once('=') else {
            // An item without '=' carries nothing we use; skipping it matches the providers'
            // own libraries, which only look for the keys they know.
            continue;
        };
        match key.trim() {
            "t" if timestamp.is_none() => {
                timestamp = Some(
                    parse_unix_seconds(value.trim())
                        .ok_or(SignatureError::Malformed("timestamp is not a number"))?,
                );
            }
            "v1" => candidates.push(value.trim()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("no timestamp (t=)"))?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed("no v1 signature"));
    }
    let expected = mac(secret, timestamp, body);
    // A candidate that is not hex cannot match; it is not an error, since another may.
    let matched = candidates
        .iter()
        .filter_map(|candidate| hex::decode(candidate).ok())
        .any(|given| macs_equal(&expected, &given));
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    check_freshness(timestamp, now_unix, tolerance_secs)
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
    let prefix = format!("{timestamp}.");
    crate::mac::hmac_sha256(secret.as_bytes(), &[prefix.as_bytes(), body])
}
