//! Patient data encrypted at rest (DESIGN.md "Storage").
//!
//! Every patient gets a random AES-256-GCM [`DataKey`]. Their fields (name, phone, email,
//! message bodies, and the same fields inside event payloads) are encrypted under it, and the
//! data key itself is stored only wrapped by the installation's [`MasterKey`], which lives in a
//! file outside the database. Erasing a patient is destroying their wrapped data key
//! (crypto-shredding): the append-only event log keeps ciphertexts nobody can read any more.
//!
//! Every ciphertext is bound with associated data ([`Aad`]) to the tenant, table, column and row
//! it belongs to, so a ciphertext copied into another row, column or tenant fails to decrypt
//! instead of silently showing one patient's data on another's record.
//!
//! Phone numbers also get a [`Keyring::blind_index`]: a keyed HMAC that lets the store find
//! "every customer of this tenant with this number" without decrypting every row.
//!
//! # Formats
//!
//! - Master key file: one text line `aro-master-key v1 <key-id> <base64 key>` (see [`MasterKey`]).
//! - Data ciphertext: `0x01 ‖ nonce (12 bytes) ‖ AES-256-GCM ciphertext and tag`
//!   (see [`DataKey::encrypt`]).
//! - Wrapped data key: `0x01 ‖ master key id (4 bytes) ‖ nonce (12) ‖ encrypted key and tag (48)`
//!   (see [`Keyring::wrap`]).

mod aad;
mod data_key;
mod keyring;
mod master_key;

pub use aad::Aad;
pub use data_key::DataKey;
pub use keyring::Keyring;
pub use master_key::{KeyId, MasterKey, MasterKeyError};

/// Why encrypting or decrypting failed.
///
/// Decryption failures deliberately do not say *which* check failed (wrong key, wrong
/// associated data or tampered bytes are indistinguishable to AES-GCM, and should be).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The blob is shorter than the smallest valid one, so it cannot be ours.
    #[error("ciphertext is too short ({len} bytes, at least {min} expected)")]
    TooShort {
        /// Length of the blob received.
        len: usize,
        /// Smallest valid length for this format.
        min: usize,
    },
    /// The blob starts with a format version this build does not know.
    #[error("ciphertext has unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// Authentication failed: wrong key, other associated data, or tampered bytes.
    #[error(
        "ciphertext could not be authenticated (wrong key, wrong associated data, or tampered)"
    )]
    Authentication,
    /// A wrapped data key was made under a master key this keyring does not hold.
    #[error("data key was wrapped under master key {wrapped_with}, but this keyring holds {holds}")]
    UnknownMasterKey {
        /// Key id recorded in the wrapped blob.
        wrapped_with: KeyId,
        /// Key id of the master key held.
        holds: KeyId,
    },
    /// A wrapped data key decrypted to something that is not a 32-byte key.
    #[error("unwrapped data key has the wrong length")]
    InvalidDataKey,
    /// Decrypted text was expected to be UTF-8 and is not.
    #[error("decrypted text is not valid UTF-8")]
    InvalidUtf8,
    /// The plaintext exceeds AES-GCM's limit (about 64 GiB); nothing we store comes close.
    #[error("plaintext is too long to encrypt")]
    PlaintextTooLong,
}

/// Fresh random bytes from the operating system's CSPRNG (via `rand`'s thread-local generator,
/// which is seeded from and periodically reseeded by the OS).
fn random_bytes<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut bytes = [0_u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}
