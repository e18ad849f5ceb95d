//! The keyring: everything the store needs from the master key, cheap to share.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::aad::push_field;
use super::data_key::{self, KEY_LEN};
use super::{Aad, CryptoError, DataKey, KeyId, MasterKey};

/// Labels for the subkeys derived from the master key. Each use gets its own key, so a value
/// produced for one purpose (a blind index) can never be mistaken for another (a wrapping).
const WRAPPING_KEY_LABEL: &[u8] = b"aro key wrapping v1";
const BLIND_INDEX_KEY_LABEL: &[u8] = b"aro blind index v1";

/// Holds the master key and the keys derived from it. Cloning shares them (an `Arc`).
///
/// `Debug` shows only the master key id.
#[derive(Clone)]
pub struct Keyring {
    inner: Arc<Inner>,
}

struct Inner {
    master_key_id: KeyId,
    wrapping_key: Zeroizing<[u8; KEY_LEN]>,
    blind_index_key: Zeroizing<[u8; KEY_LEN]>,
}

impl Keyring {
    /// A keyring for `master`. The master key itself is dropped (and zeroized) once the subkeys
    /// are derived from it.
    pub fn new(master: MasterKey) -> Self {
        let derive =
            |label: &[u8]| Zeroizing::new(crate::mac::hmac_sha256(master.as_bytes(), &[label]));
        Self {
            inner: Arc::new(Inner {
                master_key_id: master.id(),
                wrapping_key: derive(WRAPPING_KEY_LABEL),
                blind_index_key: derive(BLIND_INDEX_KEY_LABEL),
            }),
        }
    }

    /// Id of the master key this keyring was built from.
    pub fn master_key_id(&self) -> KeyId {
        self.inner.master_key_id
    }

    /// A fresh random data key for a new patient. Store it only wrapped ([`Keyring::wrap`]).
    pub fn new_data_key(&self) -> DataKey {
        DataKey::generate()
    }

    /// Wraps (encrypts) `key` for storage in the row described by `aad`.
    ///
    /// Output (65 bytes): `0x01 ‖ master key id (4 bytes) ‖ nonce (12) ‖ encrypted key and tag
    /// (48)`. The master key id tells a later rotation which master key to unwrap with; it is
    /// authenticated along with `aad`.
    pub fn wrap(&self, key: &DataKey, aad: &Aad) -> Result<Vec<u8>, CryptoError> {
        let id = self.inner.master_key_id.to_bytes();
        data_key::seal(
            &self.inner.wrapping_key,
            data_key::VERSION,
            &id,
            key.as_bytes(),
            &wrap_aad(aad),
        )
    }

    /// Unwraps a data key made by [`Keyring::wrap`] for the same row.
    pub fn unwrap(&self, wrapped: &[u8], aad: &Aad) -> Result<DataKey, CryptoError> {
        let id_len = self.inner.master_key_id.to_bytes().len();
        // The key id is checked before decrypting so the error can say which key is needed;
        // tampering with it still fails authentication, as it is part of the associated data.
        if let Some(recorded) = wrapped.get(1..1 + id_len)
            && let Ok(recorded) = <[u8; 4]>::try_from(recorded)
            && wrapped.first() == Some(&data_key::VERSION)
            && recorded != self.inner.master_key_id.to_bytes()
        {
            return Err(CryptoError::UnknownMasterKey {
                wrapped_with: KeyId::from_bytes(recorded),
                holds: self.inner.master_key_id,
            });
        }
        let plain = Zeroizing::new(data_key::open(
            &self.inner.wrapping_key,
            wrapped,
            id_len,
            &wrap_aad(aad),
        )?);
        let bytes: [u8; KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::InvalidDataKey)?;
        Ok(DataKey::from_bytes(Zeroizing::new(bytes)))
    }

    /// Keyed blind index of `value` for `tenant_id`: lower-case hex of
    /// HMAC-SHA256(blind-index key, len ‖ tenant id ‖ len ‖ value).
    ///
    /// Deterministic, so equal values of one tenant can be found by index; different for each
    /// tenant, so indexes cannot be joined across tenants; and useless without the master key,
    /// so the database alone does not reveal which rows share a phone number with a guess.
    /// Normalise the value first (phones in E.164): the index matches bytes exactly.
    pub fn blind_index(&self, tenant_id: &str, value: &str) -> String {
        let mut message = Vec::with_capacity(16 + tenant_id.len() + value.len());
        push_field(&mut message, tenant_id.as_bytes());
        push_field(&mut message, value.as_bytes());
        let mac = crate::mac::hmac_sha256(self.inner.blind_index_key.as_slice(), &[&message]);
        // The message holds the plaintext value (a phone number): wipe it.
        drop(Zeroizing::new(message));
        hex::encode(mac)
    }
}

/// Associated data for a wrapped key: a distinct label, then the caller's cell.
fn wrap_aad(aad: &Aad) -> Vec<u8> {
    let mut full = Vec::with_capacity(16 + aad.as_bytes().len());
    push_field(&mut full, b"aro-wrapped-data-key");
    full.extend_from_slice(aad.as_bytes());
    full
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("master_key_id", &self.inner.master_key_id)
            .finish_non_exhaustive()
    }
}
