//! profile-backend-healthcare: staff accounts, sessions, roles, the healthcare profile pack and
//! the JSON API the UI uses; talks to core only through its APIs.
//!
//! At start it loads and checks its profile pack ([`pack`]; a mistake stops it, naming the file
//! and field) and keeps the pack installed in every tenant core has ([`install`]), beside the
//! HTTP server: installation never delays readiness, and `/ready` reports it.

pub mod install;
pub mod pack;

use aro_config::Config;
use aro_http::CancellationToken;
use aro_http::ops::{Check, Readiness};
use install::{InstallSchedule, InstallStatus, Installer};
use pack::{PackError, ProfilePack};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;

pub const SERVICE: &str = "profile-backend-healthcare";

/// The readiness check that reports the pack's installation.
pub const PROFILE_PACK_CHECK: &str = "profile_pack";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("{0}")]
    Pack(#[from] PackError),
}

/// Serves until `shutdown`.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    run_with_schedule(config, listener, shutdown, InstallSchedule::default()).await
}

/// [`run`] with the pack installer's timing chosen by the caller.
pub async fn run_with_schedule(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
    schedule: InstallSchedule,
) -> Result<(), StartError> {
    let pack = Arc::new(ProfilePack::builtin()?);
    tracing::info!(pack = %pack, "profile pack loaded");
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .build()?;

    // Stops the installer with the server, without cancelling the caller's token (which
    // `aro up` shares between all services).
    let stop_installing = shutdown.child_token();
    let status = Arc::new(RwLock::new(InstallStatus::Pending { last_error: None }));
    let installing = match &config.services.bff.core_token {
        Some(token) => {
            let installer = Arc::new(Installer::new(
                http.clone(),
                config.services.core.url.clone(),
                token.expose().to_owned(),
                pack.clone(),
            ));
            Some(tokio::spawn(install::keep_installed(
                installer,
                status.clone(),
                schedule,
                stop_installing.clone(),
            )))
        }
        None => {
            tracing::warn!(
                "no [services.bff] core_token: the profile pack cannot be installed into core"
            );
            if let Ok(mut s) = status.write() {
                *s = InstallStatus::NoToken;
            }
            None
        }
    };

    let upstream = aro_http::upstream_readiness("core", http, config.services.core.url.clone());
    let readiness: Readiness = {
        let pack = pack.clone();
        let status = status.clone();
        Arc::new(move || {
            let upstream = upstream();
            let line = status
                .read()
                .map(|s| s.describe(&pack))
                .unwrap_or_else(|_| format!("{pack}: status unavailable"));
            let future: Pin<Box<dyn Future<Output = Vec<Check>> + Send>> = Box::pin(async move {
                let mut checks = upstream.await;
                // Informational: a clinic without the pack yet must not take the BFF out
                // of service for the others, so this check never fails readiness.
                let mut check = Check::ok(PROFILE_PACK_CHECK);
                check.detail = Some(line);
                checks.push(check);
                checks
            });
            future
        })
    };
    let router = aro_http::service_router(SERVICE, axum::Router::new(), readiness);
    tracing::info!(address = %listener.local_addr()?, "profile-backend-healthcare listening");
    let served = aro_http::serve(listener, router, shutdown).await;
    stop_installing.cancel();
    if let Some(task) = installing {
        let _ = task.await;
    }
    served?;
    Ok(())
}
