//! The storage contract of core-engine. One [`Store`] over one of two engines (SQLite for the
//! embedded default, PostgreSQL for installs that outgrow one machine), used through
//! transactions: [`Store::write`] runs a closure against a [`Tx`] and commits it atomically,
//! [`Store::read`] runs one against a consistent read view.
//!
//! Engines implement [`backend::Backend`] with plain rows; this crate seals and opens patient
//! data on the way (AES-256-GCM under per-patient data keys, bound to tenant/table/column/row),
//! so neither engine — nor any caller — ever handles personal data in the wrong form.

pub mod backend;
pub mod engine_rows;
mod error;
pub mod ids;
pub mod records;
pub mod rows;
mod store;
pub mod subscriptions;
pub mod tenant_credentials;
mod tx;
mod tx_subscriptions;
mod vault;

#[cfg(feature = "testing")]
pub mod contract;
#[cfg(feature = "testing")]
pub mod testing_pg;

pub use backend::{Engine, MigrationState, MigrationStatus};
pub use error::StoreError;
pub use records::*;
pub use store::Store;
pub use tx::{AliasWrite, CustomerWrite, Tx, Unlogged};
pub use vault::Vault;

/// Truncates to whole microseconds: both engines keep microseconds, so a value read back equals
/// the value written on either.
pub fn micros(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::{DurationRound, TimeDelta};
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

#[doc(hidden)]
pub mod __private {
    //! Re-exports for [`impl_backend_tx!`]; not part of the API.
    pub use async_trait::async_trait;
    pub use chrono::{DateTime, Utc};
    pub use sqlx;
}
