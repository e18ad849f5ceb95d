//! The embedded default's outside world: one HTTP server that stands in for Twilio, Stripe and
//! Calendly with their real wire formats and signature schemes, so `aro up` without credentials
//! runs booking → reminder → reply end to end, and integration tests get faithful provider
//! fakes with fault injection.
//!
//! Two faces on one port:
//! - the provider side (`/2010-04-01/…`, `/v1/prices`, `/v1/payment_links`,
//!   `/scheduled_events/…`, `/users/me`): what ARO's clients call, answering as the providers
//!   do (for the configured credentials and any account added through `/sandbox/accounts`),
//!   and subject to the faults set through `/sandbox/faults`;
//! - the sandbox side (`/sandbox/…`, DESIGN.md "Sandbox"): what a tester or a test drives — the
//!   patient's phone, the booking page, the payment page — which makes the sandbox post the
//!   providers' signed webhooks to core.
//!
//! Everything is kept in memory, bounded; this is a test double, not a store.

// Stripe's Checkout Session is a large literal for `serde_json::json!`.
#![recursion_limit = "256"]

mod calendly;
mod control;
mod faults;
mod ids;
mod outbound;
mod settings;
mod state;
mod stripe;
mod twilio;
mod wire;

pub use faults::{FaultMode, Provider};
pub use settings::{SandboxError, SandboxSettings, SandboxTiming};
pub use state::Sandbox;

use aro_http::{CancellationToken, Check, Readiness};
use axum::Router;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The service name in logs, metrics and `/health`.
pub const SERVICE: &str = "sandbox";

/// Serves the sandbox on `listener` until `shutdown` is cancelled, then stops its background
/// deliveries (and any request held by the `slow` fault) and returns.
pub async fn run(
    settings: SandboxSettings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // A child token: the sandbox's own work stops with the server, and a sandbox built for a
    // test can be stopped without touching the caller's token.
    let sandbox = Sandbox::new(settings, shutdown.child_token()).map_err(std::io::Error::other)?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "sandbox providers listening");
    }
    let result = aro_http::serve(listener, router(sandbox.clone()), shutdown).await;
    sandbox.shut_down().await;
    result
}

/// All routes: provider side, sandbox side, and the shared `/health`, `/ready`, `/metrics`.
pub fn router(state: Sandbox) -> Router {
    let api = Router::new()
        .merge(twilio::router(state.clone()))
        .merge(stripe::router(state.clone()))
        .merge(calendly::router(state.clone()))
        .merge(control::router(state));
    // The sandbox depends on nothing to answer; core being down only fails deliveries.
    let readiness: Readiness = Arc::new(|| Box::pin(async { vec![Check::ok("memory")] }));
    aro_http::service_router(SERVICE, api, readiness)
}
