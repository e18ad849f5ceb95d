//! Standard Webhooks signatures, used for our own outbound event deliveries
//! (DESIGN.md "Events": `webhook-id`, `webhook-timestamp`, `webhook-signature`).
//!
//! - Secret: `whsec_` followed by the base64 of the key bytes (we generate 32 random bytes).
//! - Signed content: `"{webhook-id}.{webhook-timestamp}.{raw body}"`.
//! - Signature: base64(HMAC-SHA256(key, signed content)), sent as `v1,<signature>`; the header
//!   may carry several space-separated entries (e.g. during secret rotation), and any matching
//!   `v1` entry passes. Entries of other versions (such as the asymmetric `v1a`) are ignored.
//! - `webhook-timestamp` is Unix seconds; more than the tolerance ([`DEFAULT_TOLERANCE_SECS`],
//!   the specification's five minutes) away from now in either direction is refused.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

use super::{SignatureError, check_freshness, macs_equal, parse_unix_seconds, present};

/// Header carrying the unique message id (the same across retries of one delivery).
pub const ID_HEADER: &str = "webhook-id";
/// Header carrying the signing time, Unix seconds.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Header carrying the signatures.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// Prefix of every secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The specification's tolerance: five minutes.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// Length in bytes of the keys [`generate_secret`] makes.
const GENERATED_KEY_LEN: usize = 32;

/// Standard base64 accepting both padded and unpadded input: secrets are copied around by
/// people, and the reference libraries accept both.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A new random secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_secret() -> String {
    use rand::RngCore;
    let mut key = Zeroizing::new([0_u8; GENERATED_KEY_LEN]);
    rand::rng().fill_bytes(key.as_mut_slice());
    format!("{SECRET_PREFIX}{}", BASE64.encode(key.as_slice()))
}

/// The `webhook-signature` header value (`v1,<base64>`) for delivering `body` as message
/// `msg_id` at `timestamp`.
pub fn sign(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, SignatureError> {
    let key = decode_secret(secret)?;
    Ok(format!(
        "v1,{}",
        BASE64.encode(mac(&key, msg_id, &timestamp.to_string(), body))
    ))
}

/// Verifies a delivery from its three headers (`None` for an absent one) and raw body.
pub fn verify(
    secret: &str,
    msg_id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_unix: i64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    let key = decode_secret(secret)?;
    let msg_id = present(msg_id)?;
    let timestamp_text = present(timestamp)?;
    let signature = present(signature)?;
    let timestamp = parse_unix_seconds(timestamp_text).ok_or(SignatureError::Malformed(
        "webhook-timestamp is not a number",
    ))?;
    let candidates: Vec<&str> = signature
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .map(|(_, sig)| sig)
        .collect();
    if candidates.is_empty() {
        return Err(SignatureError::Malformed("no v1 signature"));
    }
    // Signed over the timestamp as sent: it is plain digits, so this equals its decimal form.
    let expected = mac(&key, msg_id, timestamp_text, body);
    let matched = candidates
        .iter()
        .filter_map(|candidate| BASE64.decode(candidate).ok())
        .any(|given| macs_equal(&expected, &given));
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    check_freshness(timestamp, now_unix, tolerance_secs)
}

fn decode_secret(secret: &str) -> Result<Zeroizing<Vec<u8>>, SignatureError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key = Zeroizing::new(
        LENIENT_BASE64
            .decode(encoded)
            .map_err(|_| SignatureError::InvalidSecret("not whsec_ followed by base64"))?,
    );
    if key.is_empty() {
        return Err(SignatureError::InvalidSecret("empty key"));
    }
    Ok(key)
}

fn mac(key: &[u8], msg_id: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
    crate::mac::hmac_sha256(
        key,
        &[msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    )
}
