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
    let pages = axum::Router::new()
        .route("/", axum::routing::get(home))
        .with_state(readiness.clone());
    let router = aro_http::service_router(SERVICE, pages, readiness);
    tracing::info!(address = %listener.local_addr()?, "profile-ui-healthcare listening");
    aro_http::serve(listener, router, shutdown).await?;
    Ok(())
}

/// The start page: whether ARO is up, and where to go next. The staff screens (appointments,
/// escalations, reports) build on the profile backend's API; until then this page says how to
/// reach each service.
async fn home(
    axum::extract::State(readiness): axum::extract::State<aro_http::Readiness>,
) -> axum::response::Html<String> {
    let checks = readiness().await;
    let ready = checks.iter().all(|c| c.ok);
    let rows: String = checks
        .iter()
        .map(|c| {
            format!(
                "<li>{}: {}</li>",
                escape(&c.name),
                if c.ok {
                    "ready".to_owned()
                } else {
                    format!(
                        "not ready ({})",
                        escape(c.detail.as_deref().unwrap_or("unknown"))
                    )
                }
            )
        })
        .collect();
    axum::response::Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ARO</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
         <body><main><h1>ARO — Appointment Revenue Optimizer</h1>\
         <p>{}</p><ul>{rows}</ul>\
         <p>Integrations: the Command and Event APIs are described at <code>/v1/openapi.json</code> on core-engine; \
         docs/try-it.md in the repository walks through a booking, reminders and replies with the sandbox.</p>\
         </main></body></html>",
        if ready {
            "ARO is running."
        } else {
            "ARO is starting or a service is unavailable."
        }
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
