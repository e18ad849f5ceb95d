//! Identifiers shaped like the providers' own (`SM` + 32 hex for Twilio, `price_…`/`plink_…`
//! for Stripe, UUIDs for Calendly), so clients that check id shapes accept the sandbox's.

use rand::Rng;
use rand::distr::Alphanumeric;

/// A Twilio SID: two-letter prefix and 32 lower-case hex digits (e.g. `SM…`, `RQ…`).
pub(crate) fn twilio_sid(prefix: &str) -> String {
    let bytes: [u8; 16] = rand::rng().random();
    format!("{prefix}{}", hex::encode(bytes))
}

/// A Stripe object id: prefix, underscore, 24 alphanumerics (e.g. `price_…`, `plink_…`).
pub(crate) fn stripe_id(prefix: &str) -> String {
    let tail: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{prefix}_{tail}")
}

/// A Calendly resource uuid (Calendly's current ids are lower-case hyphenated UUIDs).
pub(crate) fn calendly_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The sandbox's own ids for bookings it created (`bk_` + 32 hex).
pub(crate) fn booking_id() -> String {
    format!("bk_{}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_sids_have_twilios_shape() {
        let sid = twilio_sid("SM");
        assert_eq!(sid.len(), 34);
        assert!(sid.starts_with("SM"));
        assert!(sid[2..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(sid, twilio_sid("SM"));
    }

    #[test]
    fn stripe_ids_have_stripes_shape() {
        let id = stripe_id("plink");
        assert!(id.starts_with("plink_"));
        assert_eq!(id.len(), "plink_".len() + 24);
        assert!(id[6..].bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
