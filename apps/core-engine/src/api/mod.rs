//! core-engine's HTTP API: one module per resource, each with its own `router()`.

pub mod events;
pub mod subscriptions;

use crate::AppState;
use axum::Router;

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(events::router())
        .merge(subscriptions::router())
        .with_state(state)
}
