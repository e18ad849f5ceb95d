//! [`Store`]: the handle services hold (cheap to clone).

use crate::backend::{Backend, BackendTx, Engine, Job, JobEnd, MigrationStatus};
use crate::error::StoreError;
use crate::tx::Tx;
use crate::vault::Vault;
use aro_security::crypto::Keyring;
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    vault: Arc<Vault>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("engine", &self.backend.engine().as_str())
            .finish_non_exhaustive()
    }
}

type Slot<T> = Arc<Mutex<Option<T>>>;

impl Store {
    pub fn new(backend: Arc<dyn Backend>, keyring: Keyring) -> Self {
        Self {
            backend,
            vault: Arc::new(Vault::new(keyring)),
        }
    }

    pub fn engine(&self) -> Engine {
        self.backend.engine()
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    fn job<T, E, F>(&self, f: F) -> (Job, Slot<Result<T, E>>)
    where
        F: for<'t> FnOnce(&'t mut Tx<'_>) -> BoxFuture<'t, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let slot: Slot<Result<T, E>> = Arc::new(Mutex::new(None));
        let out = slot.clone();
        let vault = self.vault.clone();
        let job: Job = Box::new(move |raw: &mut dyn BackendTx| {
            Box::pin(async move {
                let mut tx = Tx::new(raw, &vault);
                let result = f(&mut tx).await;
                let end = if result.is_ok() {
                    JobEnd::Commit
                } else {
                    JobEnd::Rollback
                };
                if let Ok(mut guard) = out.lock() {
                    *guard = Some(result);
                }
                end
            })
        });
        (job, slot)
    }

    fn take<T, E: From<StoreError>>(slot: Slot<Result<T, E>>) -> Result<T, E> {
        slot.lock()
            .ok()
            .and_then(|mut g| g.take())
            .unwrap_or_else(|| {
                Err(StoreError::Database("the transaction did not run".into()).into())
            })
    }

    /// Runs `f` in one write transaction: committed when it returns `Ok`, rolled back when it
    /// returns `Err`. Keep `f` short and free of network calls: on SQLite it shares the single
    /// writer with every other write.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: for<'t> FnOnce(&'t mut Tx<'_>) -> BoxFuture<'t, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (job, slot) = self.job(f);
        self.backend.write(job).await.map_err(E::from)?;
        Self::take(slot)
    }

    /// Runs `f` against a consistent read view.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: for<'t> FnOnce(&'t mut Tx<'_>) -> BoxFuture<'t, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (job, slot) = self.job(f);
        self.backend.read(job).await.map_err(E::from)?;
        Self::take(slot)
    }

    pub async fn migrate_up(&self) -> Result<(), StoreError> {
        self.backend.migrate_up().await
    }

    pub async fn migrate_down(&self, steps: usize) -> Result<(), StoreError> {
        self.backend.migrate_down(steps).await
    }

    pub async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        self.backend.migration_status().await
    }

    /// Ready to serve: the database answers and every migration is applied.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.backend.ping().await?;
        let status = self.backend.migration_status().await?;
        if !status.is_current() {
            return Err(StoreError::Migration(format!(
                "{} migration(s) pending; run `aro migrate up`",
                status.pending()
            )));
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.backend.close().await;
    }
}
