//! core-engine: the only service that owns domain state. Stateless in process (any number of
//! replicas on one PostgreSQL, one process on SQLite); everything it knows is in the database.

pub mod api;
pub mod auth;
pub mod openapi;
pub mod storage;
pub mod workers;

use aro_config::Config;
use aro_http::{CancellationToken, Check, Readiness};
use aro_security::tokens::TokenSigner;
use aro_store::Store;
use aro_workflow::{Clock, Engine, EngineSettings};
use std::sync::Arc;
use tokio::net::TcpListener;

pub const SERVICE: &str = "core-engine";

/// Why core-engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("master key: {0}")]
    MasterKey(#[from] aro_security::crypto::MasterKeyError),
    #[error("database: {0}")]
    Store(#[from] aro_store::StoreError),
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// What every request handler shares (cheap to clone).
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub tokens: Arc<TokenSigner>,
    pub engine: Engine,
    /// Woken after every commit that appended events, so streams and deliveries in this
    /// process react at once (other replicas' writes are found by polling).
    pub events_appended: Arc<tokio::sync::Notify>,
    /// Woken when new work may be waiting (executions, timers), so the workers look at once.
    pub work_available: Arc<tokio::sync::Notify>,
    /// Cancelled when the service shuts down; long-lived streams end on it.
    pub shutdown: CancellationToken,
}

/// Opens the store named by the configuration and serves until `shutdown`.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let store = storage::open(&config).await?;
    let result = run_with_store(config, store.clone(), listener, shutdown).await;
    store.close().await;
    result
}

/// Serves with an already opened store (`aro up` opens it once for migrations and serving).
pub async fn run_with_store(
    config: Config,
    store: Store,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let engine = Engine::new(
        store.clone(),
        Clock::default(),
        EngineSettings {
            public_base_url: config.server.public_base_url.to_string(),
        },
    );
    if config.sandbox.enabled {
        engine
            .load_clock()
            .await
            .map_err(|e| StartError::Config(format!("loading the sandbox clock: {e}")))?;
    }
    let tokens = TokenSigner::new(config.auth.signing_key.expose().as_bytes())
        .map_err(|e| StartError::Config(format!("`auth.signing_key`: {e}")))?;
    let state = AppState {
        store: store.clone(),
        config: Arc::new(config),
        tokens: Arc::new(tokens),
        engine: engine.clone(),
        events_appended: Arc::new(tokio::sync::Notify::new()),
        work_available: Arc::new(tokio::sync::Notify::new()),
        shutdown: shutdown.clone(),
    };
    let delivery = workers::delivery::spawn(&state)
        .map_err(|e| StartError::Config(format!("event delivery: {e}")))?;
    let timer_worker = tokio::spawn(workers::timers::run(state.clone()));
    let classifier =
        tokio::spawn(workers::classify::Classifier::from_config(&state.config).run(state.clone()));
    let router = aro_http::service_router(SERVICE, api_router(state), readiness(store));
    tracing::info!(address = %listener.local_addr()?, "core-engine listening");
    let served = aro_http::serve(listener, router, shutdown.clone()).await;
    shutdown.cancel();
    delivery.stop().await;
    let _ = timer_worker.await;
    let _ = classifier.await;
    served?;
    Ok(())
}

fn api_router(state: AppState) -> axum::Router {
    api::router(state)
}

/// Ready when the database answers and its migrations are current.
fn readiness(store: Store) -> Readiness {
    Arc::new(move || {
        let store = store.clone();
        Box::pin(async move {
            match store.ready().await {
                Ok(()) => vec![Check::ok("database")],
                Err(e) => vec![Check::failed("database", e.to_string())],
            }
        })
    })
}
