//! openclaw-executor: performs every side effect (SMS, payment links, booking look-ups, LLM calls) for executions claimed from core; never touches the database.

use aro_config::Config;
use aro_http::CancellationToken;
use std::time::Duration;
use tokio::net::TcpListener;

pub const SERVICE: &str = "openclaw-executor";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Serves until `shutdown`.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .build()?;
    let readiness = aro_http::upstream_readiness("core", http, config.services.core.url.clone());
    let router = aro_http::service_router(SERVICE, axum::Router::new(), readiness);
    tracing::info!(address = %listener.local_addr()?, "openclaw-executor listening");
    aro_http::serve(listener, router, shutdown).await?;
    Ok(())
}
