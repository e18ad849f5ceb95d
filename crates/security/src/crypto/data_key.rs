//! Per-patient data keys and the ciphertext format of encrypted fields.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use super::{Aad, CryptoError, random_bytes};

/// Format version byte that starts every data ciphertext and wrapped key.
pub(super) const VERSION: u8 = 1;
/// AES-GCM nonce length: 96 bits, random per message.
pub(super) const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub(super) const TAG_LEN: usize = 16;
/// AES-256 key length.
pub(super) const KEY_LEN: usize = 32;

/// Shortest valid data ciphertext: version, nonce and tag around an empty plaintext.
const MIN_CIPHERTEXT_LEN: usize = 1 + NONCE_LEN + TAG_LEN;

/// One patient's AES-256-GCM key. The key bytes are zeroized when dropped and never printed.
///
/// Obtain one from [`super::Keyring::new_data_key`] (new patient) or
/// [`super::Keyring::unwrap`] (stored patient).
pub struct DataKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl DataKey {
    /// A fresh random key.
    pub(super) fn generate() -> Self {
        Self {
            bytes: Zeroizing::new(random_bytes()),
        }
    }

    pub(super) fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        Self { bytes }
    }

    pub(super) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    /// Encrypts `plaintext` for the cell described by `aad`.
    ///
    /// Output: `0x01 ‖ nonce (12 random bytes) ‖ ciphertext ‖ tag (16 bytes)`. Random 96-bit
    /// nonces are safe for far more messages than one patient will ever have.
    pub fn encrypt(&self, plaintext: &[u8], aad: &Aad) -> Result<Vec<u8>, CryptoError> {
        seal(&self.bytes, VERSION, &[], plaintext, aad.as_bytes())
    }

    /// Decrypts a blob made by [`DataKey::encrypt`] for the same cell.
    ///
    /// Fails (never panics) on short, garbage, tampered or misplaced input.
    pub fn decrypt(&self, blob: &[u8], aad: &Aad) -> Result<Vec<u8>, CryptoError> {
        open(&self.bytes, blob, 0, aad.as_bytes())
    }

    /// [`DataKey::encrypt`] for text.
    pub fn encrypt_str(&self, plaintext: &str, aad: &Aad) -> Result<Vec<u8>, CryptoError> {
        self.encrypt(plaintext.as_bytes(), aad)
    }

    /// [`DataKey::decrypt`] for text written with [`DataKey::encrypt_str`].
    pub fn decrypt_str(&self, blob: &[u8], aad: &Aad) -> Result<String, CryptoError> {
        let bytes = self.decrypt(blob, aad)?;
        String::from_utf8(bytes).map_err(|err| {
            // The rejected bytes are patient data: wipe them rather than leave them on the heap.
            drop(Zeroizing::new(err.into_bytes()));
            CryptoError::InvalidUtf8
        })
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// Encrypts into `version ‖ header ‖ nonce ‖ ciphertext ‖ tag`; `header` is authenticated too.
pub(super) fn seal(
    key: &[u8; KEY_LEN],
    version: u8,
    header: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let cipher = Aes256Gcm::new(key.into());
    let nonce_bytes: [u8; NONCE_LEN] = random_bytes();
    let nonce = Nonce::from(nonce_bytes);
    let full_aad = authenticated_prefix(version, header, aad);
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: &full_aad,
            },
        )
        .map_err(|_| CryptoError::PlaintextTooLong)?;
    let mut out = Vec::with_capacity(1 + header.len() + NONCE_LEN + ciphertext.len());
    out.push(version);
    out.extend_from_slice(header);
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Reverses [`seal`] for a blob whose header is `header_len` bytes long.
pub(super) fn open(
    key: &[u8; KEY_LEN],
    blob: &[u8],
    header_len: usize,
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let min = MIN_CIPHERTEXT_LEN + header_len;
    let too_short = CryptoError::TooShort {
        len: blob.len(),
        min,
    };
    if blob.len() < min {
        return Err(too_short);
    }
    // Checked splits: the length test above already guarantees them, but a parser of
    // untrusted bytes should not depend on arithmetic staying in sync to avoid a panic.
    let Some((&version, rest)) = blob.split_first() else {
        return Err(too_short);
    };
    if version != VERSION {
        return Err(CryptoError::UnsupportedVersion(version));
    }
    let Some((header, rest)) = rest.split_at_checked(header_len) else {
        return Err(too_short);
    };
    let Some((nonce_bytes, ciphertext)) = rest.split_at_checked(NONCE_LEN) else {
        return Err(too_short);
    };
    let Ok(nonce_bytes) = <[u8; NONCE_LEN]>::try_from(nonce_bytes) else {
        return Err(too_short);
    };
    let cipher = Aes256Gcm::new(key.into());
    let full_aad = authenticated_prefix(version, header, aad);
    cipher
        .decrypt(
            &Nonce::from(nonce_bytes),
            Payload {
                msg: ciphertext,
                aad: &full_aad,
            },
        )
        .map_err(|_| CryptoError::Authentication)
}

/// The version byte and header are authenticated with the caller's associated data, so neither
/// can be altered without failing decryption.
fn authenticated_prefix(version: u8, header: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(1 + 8 + header.len() + aad.len());
    full.push(version);
    super::aad::push_field(&mut full, header);
    full.extend_from_slice(aad);
    full
}
