//! openclaw-executor: performs every side effect (SMS, payment links, booking look-ups, LLM
//! calls) for executions claimed from core; never touches the database.
//!
//! Core decides what should happen and writes it down as an execution in the same transaction
//! as the decision; this service does it. It talks to core only over HTTP ([`core`]), checks
//! each tenant's permission manifest before anything leaves ([`permissions`]), performs the
//! execution through the provider's client ([`handlers`], over `aro_integrations` and
//! `aro_resilience` with per-provider limits from [`providers`]), and reports the result
//! ([`outcome`]). The loop is in [`worker`]; whether the providers accept the configured
//! credentials is checked at start and every few minutes ([`credential_checks`]).
//!
//! Configuration read: `[services.core] url`, `[services.executor] listen, core_token,
//! lease_secs, max_in_flight`, `[providers.twilio|stripe|calendly]`, `[classifier.llm]`, and
//! `[auth] signing_key` only when no `core_token` is configured (the executor then mints its
//! own, with exactly its grant).

pub mod core;
pub mod credential_checks;
pub mod credentials;
pub mod handlers;
pub mod outcome;
pub mod permissions;
pub mod providers;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use aro_config::Config;
use aro_http::{CancellationToken, Readiness};
use tokio::net::TcpListener;

pub use worker::{BatchSummary, Worker, WorkerStats};

pub const SERVICE: &str = "openclaw-executor";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("core: {0}")]
    Core(#[from] core::CoreError),
}

/// Timings that are not configuration: fixed in production, shortened by tests so drills
/// finish in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// The pause between claims while the queue is empty.
    pub poll_interval: Duration,
    /// A provider breaker's first cool-down, and the most it grows to on repeated trips.
    pub breaker_cool_down: Duration,
    pub breaker_max_cool_down: Duration,
    /// How long executions in flight may finish after shutdown was asked for.
    pub shutdown_grace: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(200),
            breaker_cool_down: Duration::from_secs(30),
            breaker_max_cool_down: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The executor: its worker and its HTTP face (`/health`, `/ready`, `/metrics`).
#[derive(Debug)]
pub struct Executor {
    worker: Worker,
    providers: providers::Providers,
    core: core::CoreClient,
    http: reqwest::Client,
    core_url: url::Url,
    credential_check_interval: Duration,
}

impl Executor {
    /// Builds the clients and the worker from the configuration.
    pub fn new(config: &Config, tuning: Tuning) -> Result<Self, StartError> {
        let http = aro_integrations::http_client()?;
        let resilient = providers::policies(config, &tuning).build();
        let executor = &config.services.executor;
        let max_in_flight = usize::try_from(executor.max_in_flight.clamp(1, 100)).unwrap_or(16);
        let lease = Duration::from_secs(u64::from(executor.lease_secs.clamp(5, 3600)));
        let core = core::CoreClient::new(config, http.clone(), resilient.clone())?;
        let providers = providers::Providers::new(config, &http, &resilient, max_in_flight)
            .with_tenant_credentials(credentials::TenantCredentials::new(core.clone()));
        let worker = Worker::new(
            core.clone(),
            providers.clone(),
            lease,
            max_in_flight,
            tuning,
        );
        Ok(Self {
            worker,
            providers,
            core,
            http,
            core_url: config.services.core.url.clone(),
            credential_check_interval: credential_checks::CHECK_INTERVAL,
        })
    }

    /// Checks the providers' credentials every `every` instead of
    /// [`credential_checks::CHECK_INTERVAL`] (tests shorten it).
    #[must_use]
    pub fn with_credential_check_interval(mut self, every: Duration) -> Self {
        self.credential_check_interval = every.max(Duration::from_millis(10));
        self
    }

    /// The providers, for tests that observe what was checked.
    pub fn providers(&self) -> &providers::Providers {
        &self.providers
    }

    /// The worker, for tests that drive or observe it.
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Core reachable (its `/ready`), then one check per configured provider.
    fn readiness(&self) -> Readiness {
        let core = aro_http::upstream_readiness("core", self.http.clone(), self.core_url.clone());
        let providers = self.providers.clone();
        Arc::new(move || {
            let core = core();
            let providers = providers.clone();
            Box::pin(async move {
                let mut checks = core.await;
                checks.extend(providers.checks());
                checks
            })
        })
    }

    /// Runs the worker and serves until `shutdown`; executions in flight get the grace period.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), StartError> {
        let configured = self.providers.configured();
        if configured.is_empty() {
            tracing::warn!("no provider configured: every execution that needs one will fail");
        }
        tracing::info!(providers = ?configured, "providers configured");
        for check in self.providers.checks().into_iter().filter(|c| !c.ok) {
            tracing::error!(
                provider = %check.name,
                problem = check.detail.as_deref().unwrap_or(""),
                "provider misconfigured; its executions will fail"
            );
        }
        let address = listener.local_addr()?;
        let stop_worker = shutdown.child_token();
        // Checked in the background: neither the worker nor `/ready` waits for a provider.
        let checks_handle = tokio::spawn(credential_checks::watch(
            self.providers.clone(),
            self.core.clone(),
            self.credential_check_interval,
            stop_worker.clone(),
        ));
        let worker = self.worker.clone();
        let token = stop_worker.clone();
        let loop_handle = tokio::spawn(async move { worker.run(token).await });
        let router = aro_http::service_router(SERVICE, axum::Router::new(), self.readiness());
        tracing::info!(%address, "openclaw-executor listening");
        let served = aro_http::serve(listener, router, shutdown).await;
        stop_worker.cancel();
        if loop_handle.await.is_err() {
            tracing::error!("the execution loop ended abnormally");
        }
        if checks_handle.await.is_err() {
            tracing::error!("the credential checks ended abnormally");
        }
        served?;
        Ok(())
    }
}

/// Serves until `shutdown`.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    Executor::new(&config, Tuning::default())?
        .serve(listener, shutdown)
        .await
}
