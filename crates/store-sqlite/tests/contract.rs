//! The storage contract on SQLite: a real database file per test.

use aro_security::crypto::{Keyring, MasterKey};
use aro_store::Store;
use aro_store_sqlite::{SqliteBackend, SqliteSettings};
use std::sync::Arc;

async fn fresh() -> Option<(Store, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("aro.db").display());
    let backend = SqliteBackend::open(SqliteSettings::from_url(&url, false).unwrap())
        .await
        .unwrap();
    let store = Store::new(Arc::new(backend), Keyring::new(MasterKey::generate()));
    store.migrate_up().await.unwrap();
    Some((store, dir))
}

aro_store::contract_tests!(fresh());
