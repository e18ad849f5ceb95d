//! Opening the store the configuration names: engine, durability rules and the master key.

use crate::StartError;
use aro_config::{Config, DatabaseEngine};
use aro_security::crypto::{Keyring, MasterKey};
use aro_store::Store;
use aro_store_postgres::{PostgresBackend, PostgresSettings};
use aro_store_sqlite::{SqliteBackend, SqliteSettings};
use std::sync::Arc;
use std::time::Duration;

/// Opens the configured database (without migrating) with the master key from its file.
pub async fn open(config: &Config) -> Result<Store, StartError> {
    let keyring = Keyring::new(MasterKey::load(&config.auth.master_key_file)?);
    open_with_keyring(config, keyring).await
}

pub async fn open_with_keyring(config: &Config, keyring: Keyring) -> Result<Store, StartError> {
    let db = &config.database;
    let url = db
        .url
        .as_ref()
        .ok_or_else(|| StartError::Config("`database.url` is required by core-engine".into()))?;
    let backend: Arc<dyn aro_store::backend::Backend> = match db.engine() {
        Some(DatabaseEngine::Sqlite) => Arc::new(
            SqliteBackend::open(SqliteSettings::from_url(
                url.expose(),
                db.allow_unsafe_durability,
            )?)
            .await?,
        ),
        Some(DatabaseEngine::Postgres) => {
            let mut settings = PostgresSettings::new(url.expose());
            settings.max_connections = db.max_connections;
            settings.acquire_timeout = Duration::from_secs(db.acquire_timeout_secs);
            settings.allow_unsafe_durability = db.allow_unsafe_durability;
            Arc::new(PostgresBackend::open(settings).await?)
        }
        None => {
            return Err(StartError::Config(
                "`database.url` must start with sqlite:// or postgres://".into(),
            ));
        }
    };
    Ok(Store::new(backend, keyring))
}
