//! profile-ui-healthcare: the admin web UI for clinic staff (server-rendered HTML); talks only to the BFF.

use aro_config::Config;
use aro_http::CancellationToken;
use std::time::Duration;
use tokio::net::TcpListener;

pub const SERVICE: &str = "profile-ui-healthcare";

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
    let readiness = aro_http::upstream_readiness("bff", http, config.services.ui.bff_url.clone());
    let router = aro_http::service_router(SERVICE, axum::Router::new(), readiness);
    tracing::info!(address = %listener.local_addr()?, "profile-ui-healthcare listening");
    aro_http::serve(listener, router, shutdown).await?;
    Ok(())
}
