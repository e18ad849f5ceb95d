//! A tenant's own provider credentials (DESIGN.md "Tenants", docs/adr/0011): the rows both
//! engines store, the row-level operations every engine implements
//! ([`impl_tenant_credential_rows!`]), and the [`Tx`] methods callers use.
//!
//! The whole credential document (identifiers and secrets alike) is sealed as one ciphertext
//! under the tenant's data key of the subject [`SUBJECT`], bound to tenant, table, column and
//! provider, so a row copied to another tenant or provider does not open. Neither engine, nor
//! any caller but the one asking for a tenant's credentials, ever sees it in the clear.

use crate::error::StoreError;
use crate::micros;
use crate::tx::Tx;
use aro_domain::credentials::{CredentialProvider, ProviderCredentials};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// The data-key subject the credentials of a tenant are sealed under (patients' subjects are
/// their `cus_…` ids, so the two never meet).
pub const SUBJECT: &str = "tenant-credentials";
const TABLE: &str = "tenant_credentials";
const COLUMN: &str = "secret";

/// One provider's credentials of one tenant, as both engines store them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantCredentialRow {
    pub tenant_id: String,
    pub provider: String,
    pub secret_ct: Vec<u8>,
    pub updated_at: DateTime<Utc>,
}

/// A tenant's own credentials for one provider, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredentials {
    pub credentials: ProviderCredentials,
    pub updated_at: DateTime<Utc>,
}

/// Credential rows, one part of every engine's [`crate::backend::BackendTx`].
#[async_trait]
pub trait TenantCredentialRows: Send {
    /// Inserts or replaces the row; true when it replaced one.
    async fn upsert_tenant_credentials(
        &mut self,
        row: &TenantCredentialRow,
    ) -> Result<bool, StoreError>;
    async fn get_tenant_credentials(
        &mut self,
        tenant_id: &str,
        provider: &str,
    ) -> Result<Option<TenantCredentialRow>, StoreError>;
    /// The tenant's rows, by provider name.
    async fn list_tenant_credentials(
        &mut self,
        tenant_id: &str,
    ) -> Result<Vec<TenantCredentialRow>, StoreError>;
    async fn delete_tenant_credentials(
        &mut self,
        tenant_id: &str,
        provider: &str,
    ) -> Result<bool, StoreError>;
}

/// Implements [`TenantCredentialRows`] for an engine's transaction type (field `conn`).
#[macro_export]
macro_rules! impl_tenant_credential_rows {
    ($ty:ty, $db:ty) => {
        #[$crate::__private::async_trait]
        impl $crate::tenant_credentials::TenantCredentialRows for $ty {
            async fn upsert_tenant_credentials(&mut self, row: &$crate::tenant_credentials::TenantCredentialRow) -> Result<bool, $crate::StoreError> {
                // -- why: the earlier row is looked at first (inside this transaction) only to
                // tell the audit trail whether this was a first setting or a rotation.
                let existed = $crate::__private::sqlx::query_scalar::<$db, i64>(
                    "select count(*) from tenant_credentials where tenant_id = $1 and provider = $2")
                    .bind(&row.tenant_id).bind(&row.provider)
                    .fetch_one(&mut *self.conn).await? > 0;
                $crate::__private::sqlx::query::<$db>(
                    "insert into tenant_credentials (tenant_id, provider, secret_ct, updated_at)
                     values ($1, $2, $3, $4)
                     on conflict (tenant_id, provider) do update
                     set secret_ct = excluded.secret_ct, updated_at = excluded.updated_at")
                    .bind(&row.tenant_id).bind(&row.provider).bind(&row.secret_ct).bind(row.updated_at)
                    .execute(&mut *self.conn).await?;
                Ok(existed)
            }

            async fn get_tenant_credentials(&mut self, tenant_id: &str, provider: &str) -> Result<Option<$crate::tenant_credentials::TenantCredentialRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::tenant_credentials::TenantCredentialRow>(
                    "select * from tenant_credentials where tenant_id = $1 and provider = $2")
                    .bind(tenant_id).bind(provider).fetch_optional(&mut *self.conn).await?)
            }

            async fn list_tenant_credentials(&mut self, tenant_id: &str) -> Result<Vec<$crate::tenant_credentials::TenantCredentialRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::tenant_credentials::TenantCredentialRow>(
                    "select * from tenant_credentials where tenant_id = $1 order by provider")
                    .bind(tenant_id).fetch_all(&mut *self.conn).await?)
            }

            async fn delete_tenant_credentials(&mut self, tenant_id: &str, provider: &str) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "delete from tenant_credentials where tenant_id = $1 and provider = $2")
                    .bind(tenant_id).bind(provider).execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

impl Tx<'_> {
    /// Seals and stores `credentials` as the tenant's own for their provider, replacing any
    /// earlier ones (rotation is setting them again); true when it replaced some.
    pub async fn put_tenant_credentials(
        &mut self,
        tenant_id: &str,
        credentials: &ProviderCredentials,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let now = micros(now);
        let provider = credentials.provider().as_str();
        let document = serde_json::to_string(credentials)?;
        let secret_ct = self
            .seal(tenant_id, SUBJECT, TABLE, COLUMN, provider, &document, now)
            .await?;
        self.raw()
            .upsert_tenant_credentials(&TenantCredentialRow {
                tenant_id: tenant_id.to_owned(),
                provider: provider.to_owned(),
                secret_ct,
                updated_at: now,
            })
            .await
    }

    /// The tenant's own credentials for `provider`, opened; `None` when it has none (it uses
    /// the installation's).
    pub async fn tenant_credentials(
        &mut self,
        tenant_id: &str,
        provider: CredentialProvider,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        match self
            .raw()
            .get_tenant_credentials(tenant_id, provider.as_str())
            .await?
        {
            Some(row) => Ok(Some(self.open_credentials(row).await?)),
            None => Ok(None),
        }
    }

    /// Every provider the tenant has its own credentials for, by provider name.
    pub async fn list_tenant_credentials(
        &mut self,
        tenant_id: &str,
    ) -> Result<Vec<StoredCredentials>, StoreError> {
        let rows = self.raw().list_tenant_credentials(tenant_id).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.open_credentials(row).await?);
        }
        Ok(out)
    }

    /// Removes the tenant's own credentials for `provider` (it falls back to the
    /// installation's); false when it had none.
    pub async fn delete_tenant_credentials(
        &mut self,
        tenant_id: &str,
        provider: CredentialProvider,
    ) -> Result<bool, StoreError> {
        self.raw()
            .delete_tenant_credentials(tenant_id, provider.as_str())
            .await
    }

    async fn open_credentials(
        &mut self,
        row: TenantCredentialRow,
    ) -> Result<StoredCredentials, StoreError> {
        let document = self
            .open(
                &row.tenant_id,
                SUBJECT,
                TABLE,
                COLUMN,
                &row.provider,
                &row.secret_ct,
            )
            .await?
            .ok_or_else(|| corrupt("tenant_credentials.secret_ct", "its data key is missing"))?;
        // The parser's message could quote the document: say only that it did not read.
        let credentials: ProviderCredentials = serde_json::from_str(&document)
            .map_err(|_| corrupt("tenant_credentials.secret_ct", "not a credential document"))?;
        if credentials.provider().as_str() != row.provider {
            return Err(corrupt(
                "tenant_credentials.provider",
                "the sealed document is another provider's",
            ));
        }
        Ok(StoredCredentials {
            credentials,
            updated_at: row.updated_at,
        })
    }
}
