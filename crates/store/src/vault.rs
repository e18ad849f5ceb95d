//! Sealing and opening patient data. Each patient (subject) has a data key, created on first
//! use and stored wrapped by the master key; every ciphertext is bound to its tenant, table,
//! column and row, so a ciphertext copied elsewhere does not decrypt.

use crate::backend::BackendTx;
use crate::error::StoreError;
use crate::rows::DataKeyRow;
use aro_security::crypto::{Aad, DataKey, Keyring};
use chrono::{DateTime, Utc};

#[derive(Clone)]
pub struct Vault {
    keyring: Keyring,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault { .. }")
    }
}

/// Where a ciphertext lives; the associated data of its encryption.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub tenant_id: &'a str,
    pub table: &'a str,
    pub column: &'a str,
    pub row_id: &'a str,
}

impl Place<'_> {
    fn aad(&self) -> Aad {
        Aad::new(self.tenant_id, self.table, self.column, self.row_id)
    }
}

impl Vault {
    pub fn new(keyring: Keyring) -> Self {
        Self { keyring }
    }

    fn key_aad(tenant_id: &str, subject_id: &str) -> Aad {
        Aad::new(tenant_id, "data_keys", "wrapped_key", subject_id)
    }

    /// The subject's data key, or `None` when it was never created or has been erased.
    pub async fn existing_key(
        &self,
        tx: &mut dyn BackendTx,
        tenant_id: &str,
        subject_id: &str,
    ) -> Result<Option<DataKey>, StoreError> {
        let Some(row) = tx.get_data_key(tenant_id, subject_id).await? else {
            return Ok(None);
        };
        let key = self
            .keyring
            .unwrap(&row.wrapped_key, &Self::key_aad(tenant_id, subject_id))?;
        Ok(Some(key))
    }

    /// The subject's data key, created when missing.
    pub async fn key_for(
        &self,
        tx: &mut dyn BackendTx,
        tenant_id: &str,
        subject_id: &str,
        now: DateTime<Utc>,
    ) -> Result<DataKey, StoreError> {
        if let Some(key) = self.existing_key(tx, tenant_id, subject_id).await? {
            return Ok(key);
        }
        let key = self.keyring.new_data_key();
        let wrapped = self
            .keyring
            .wrap(&key, &Self::key_aad(tenant_id, subject_id))?;
        let inserted = tx
            .insert_data_key(&DataKeyRow {
                tenant_id: tenant_id.to_owned(),
                subject_id: subject_id.to_owned(),
                wrapped_key: wrapped,
                created_at: crate::micros(now),
            })
            .await?;
        if inserted {
            return Ok(key);
        }
        // Another transaction created it first: use theirs.
        self.existing_key(tx, tenant_id, subject_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("data key vanished while being created".into()))
    }

    pub fn seal(
        &self,
        key: &DataKey,
        place: Place<'_>,
        plaintext: &str,
    ) -> Result<Vec<u8>, StoreError> {
        Ok(key.encrypt_str(plaintext, &place.aad())?)
    }

    pub fn open(
        &self,
        key: &DataKey,
        place: Place<'_>,
        ciphertext: &[u8],
    ) -> Result<String, StoreError> {
        Ok(key.decrypt_str(ciphertext, &place.aad())?)
    }

    /// The keyed blind index of a value (an E.164 phone number) within a tenant.
    pub fn blind_index(&self, tenant_id: &str, value: &str) -> String {
        self.keyring.blind_index(tenant_id, value)
    }
}
