//! HMAC helpers shared by the blind index and the webhook signature schemes.
//!
//! `hmac`'s constructor returns a `Result` even though HMAC accepts keys of any length. Rather
//! than unwrapping it on every request path, the key is first brought to the hash's block size
//! exactly as RFC 2104 prescribes (a longer key is hashed, a shorter one is zero-padded), which
//! yields the same MAC and lets us use the infallible constructor.

use hmac::digest::{Digest, KeyInit, Mac};
use hmac::{EagerHash, Hmac};
use sha1::Sha1;
use sha2::Sha256;
use zeroize::Zeroize;

/// A MAC keyed with `key`, equal to what `Hmac::new_from_slice(key)` would build.
fn keyed<D>(key: &[u8]) -> Hmac<D>
where
    D: EagerHash + Digest,
    Hmac<D>: KeyInit,
{
    let mut block = hmac::digest::Key::<Hmac<D>>::default();
    if key.len() > block.len() {
        let mut digest = D::digest(key);
        for (dst, src) in block.iter_mut().zip(digest.iter()) {
            *dst = *src;
        }
        digest.as_mut_slice().zeroize();
    } else {
        for (dst, src) in block.iter_mut().zip(key) {
            *dst = *src;
        }
    }
    let mac = <Hmac<D> as KeyInit>::new(&block);
    block.as_mut_slice().zeroize();
    mac
}

/// HMAC-SHA256 of the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = keyed::<Sha256>(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA1 of the concatenation of `parts` (Twilio's legacy scheme; SHA-1 is still sound as
/// an HMAC hash, and it is what Twilio sends).
pub(crate) fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let mut mac = keyed::<Sha1>(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231 test case 2: a key shorter than the block.
    #[test]
    fn short_key_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    // RFC 4231 test case 6: a key longer than the block must be hashed first.
    #[test]
    fn long_key_matches_rfc_4231_case_6() {
        let key = [0xaa_u8; 131];
        let mac = hmac_sha256(
            &key,
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    // RFC 2202 test case 6 for HMAC-SHA1 with an 80-byte key.
    #[test]
    fn sha1_long_key_matches_rfc_2202_case_6() {
        let key = [0xaa_u8; 80];
        let mac = hmac_sha1(
            &key,
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(hex::encode(mac), "aa4ae5e15272d00e95705637ce8a3b55ed402112");
    }

    #[test]
    fn key_exactly_one_block_is_used_as_is() {
        // RFC 4231 has no 64-byte case; compare against the crate's own constructor instead.
        let key = [0x0b_u8; 64];
        let ours = hmac_sha256(&key, &[b"message"]);
        let mut reference = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
        reference.update(b"message");
        assert_eq!(
            ours.as_slice(),
            reference.finalize().into_bytes().as_slice()
        );
    }
}
