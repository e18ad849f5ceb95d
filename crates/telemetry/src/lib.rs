//! Process-wide telemetry, installed once by whichever binary runs (a service's `main`, or
//! `aro up` running all four): structured logs (JSON unless a person is watching a terminal)
//! and one Prometheus recorder whose series carry a `service` label, so four services in one
//! process stay apart.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStyle {
    /// Human-readable in a terminal, JSON otherwise.
    Auto,
    Json,
    Pretty,
}

/// Installs the global log subscriber. Safe to call more than once (tests, `aro up`): only the
/// first call wins. `filter` is a tracing filter (`info`, `info,aro_core_engine=debug`);
/// `RUST_LOG` overrides it.
pub fn init_logging(filter: &str, style: LogStyle) {
    let env_filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match style {
        LogStyle::Json => true,
        LogStyle::Pretty => false,
        LogStyle::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    // `try_init` fails only when a subscriber is already installed, which is fine.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.compact().try_init()
    };
}

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's metrics recorder, installed on first use. `None` only if another recorder was
/// installed by something else, in which case `/metrics` says so instead of lying.
pub fn metrics() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .ok()?
                .install_recorder()
                .ok()?;
            Some(handle)
        })
        .as_ref()
}

/// Prometheus text for one service: its own series plus process-wide ones that carry no
/// `service` label (circuit breakers, stores), without the other services' series.
pub fn render_metrics(service: &str) -> String {
    let Some(handle) = metrics() else {
        return "# metrics recorder unavailable in this process\n".to_owned();
    };
    let text = handle.render();
    let own = format!("service=\"{service}\"");
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let keep = line.starts_with('#') || !line.contains("service=\"") || line.contains(&own);
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_sees_its_own_series_and_shared_ones() {
        let _ = metrics();
        metrics::counter!("aro_test_total", "service" => "core-engine").increment(2);
        metrics::counter!("aro_test_total", "service" => "openclaw-executor").increment(1);
        metrics::gauge!("aro_test_shared").set(1.0);
        let core = render_metrics("core-engine");
        assert!(
            core.contains("aro_test_total{service=\"core-engine\"} 2"),
            "{core}"
        );
        assert!(!core.contains("openclaw-executor"), "{core}");
        assert!(core.contains("aro_test_shared 1"), "{core}");
    }
}
