//! core-engine's HTTP API: one module per resource, each with its own `router()`.

pub mod admin;
pub mod commands;
pub mod dead_letters;
pub mod engine_error;
pub mod events;
pub mod executions;
pub mod reports;
pub mod subscriptions;
pub mod tenant_credentials;
pub mod webhooks;

use crate::AppState;
use axum::Router;

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(commands::router())
        .merge(executions::router())
        .merge(reports::router())
        .merge(dead_letters::router())
        .merge(admin::router())
        .merge(events::router())
        .merge(subscriptions::router())
        .merge(tenant_credentials::router())
        .merge(webhooks::router())
        .merge(crate::openapi::router())
        .with_state(state)
}
