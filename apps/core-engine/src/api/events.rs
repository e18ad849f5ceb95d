//! The Event API: paging by seq and the Server-Sent Events stream.

use crate::AppState;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
}
