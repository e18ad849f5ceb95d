//! The wire conventions every ARO service shares, so that a client of any of them sees the same
//! things: the error envelope (for every error, 404 and 405 included), a request id on every
//! request and response (propagated to the services it calls and into every log line),
//! `/health`, `/ready`, `/metrics`, and serving with graceful shutdown.

pub mod bootstrap;
pub mod error;
pub mod extract;
pub mod ops;
pub mod request_id;
pub mod serve;

pub use error::ApiError;
pub use extract::{ApiJson, ApiPath, ApiQuery};
pub use ops::{Check, Readiness, service_router, upstream_readiness};
pub use request_id::{REQUEST_ID_HEADER, current_request_id};
pub use serve::{serve, shutdown_signal};
pub use tokio_util::sync::CancellationToken;
