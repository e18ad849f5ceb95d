//! The storage contract on PostgreSQL: a fresh database per test on a real server.

use aro_security::crypto::{Keyring, MasterKey};
use aro_store::Store;
use aro_store::testing_pg::PgDatabase;
use aro_store_postgres::{PostgresBackend, PostgresSettings};
use std::sync::Arc;

async fn fresh() -> Option<(Store, PgDatabase)> {
    let db = PgDatabase::create().await?;
    let backend = PostgresBackend::open(PostgresSettings::new(db.url.clone()))
        .await
        .unwrap();
    let store = Store::new(Arc::new(backend), Keyring::new(MasterKey::generate()));
    store.migrate_up().await.unwrap();
    Some((store, db))
}

aro_store::contract_tests!(fresh());
