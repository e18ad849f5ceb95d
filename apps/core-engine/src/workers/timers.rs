//! The timer worker: fires due timers on the business clock (in the sandbox, following clock
//! moves made through any replica), and once an hour forgets idempotency keys past their
//! retention. One step (`run_once`) for tests, one loop for
//! service.

use crate::AppState;
use std::time::{Duration, Instant};

/// How often the worker looks for due timers when nothing wakes it.
pub const POLL: Duration = Duration::from_millis(500);
const PURGE_EVERY: Duration = Duration::from_secs(3600);
const LOG_SIZE_EVERY: Duration = Duration::from_secs(60);

/// Fires what is due now; returns how many timers fired.
pub async fn run_once(state: &AppState) -> usize {
    // In the sandbox another replica may have moved the business clock: follow it (the offset
    // only moves forward) before deciding what is due.
    if state.config.sandbox.enabled
        && let Err(e) = state.engine.load_clock().await
    {
        tracing::warn!(error = %e, "reading the sandbox clock failed; using this replica's");
    }
    match state.engine.fire_due_timers(500).await {
        Ok(n) => {
            if n > 0 {
                metrics::counter!("aro_timers_fired_total", "service" => crate::SERVICE)
                    .increment(n as u64);
                state.events_appended.notify_waiters();
            }
            n
        }
        Err(e) => {
            tracing::warn!(error = %e, "firing timers failed; will retry");
            0
        }
    }
}

/// Publishes the event log's highest seq (every event ever appended, all tenants) as the
/// gauge `aro_event_log_seq`: how operators watch the log grow (ADR 0005).
async fn publish_log_size(state: &AppState) {
    match state
        .store
        .read(|tx| Box::pin(async move { tx.max_seq().await }))
        .await
    {
        Ok(seq) => {
            metrics::gauge!("aro_event_log_seq", "service" => crate::SERVICE).set(seq as f64)
        }
        Err(e) => tracing::warn!(error = %e, "reading the event log's size failed"),
    }
}

pub async fn run(state: AppState) {
    let mut last_purge = Instant::now();
    let mut last_size: Option<Instant> = None;
    loop {
        if last_size.is_none_or(|t| t.elapsed() > LOG_SIZE_EVERY) {
            last_size = Some(Instant::now());
            publish_log_size(&state).await;
        }
        let fired = run_once(&state).await;
        if last_purge.elapsed() > PURGE_EVERY {
            last_purge = Instant::now();
            match state.engine.purge_idempotency_keys().await {
                Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency keys removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
            }
        }
        if fired > 0 {
            continue;
        }
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = state.work_available.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}
