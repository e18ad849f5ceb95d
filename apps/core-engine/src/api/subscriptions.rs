//! Push subscriptions: signed deliveries of the event log to an integrator's URL.

use crate::AppState;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
}
