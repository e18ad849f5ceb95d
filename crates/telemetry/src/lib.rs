//! Process-wide telemetry, installed once by whichever binary runs (a service's `main`, or
//! `aro up` running all four): structured logs (JSON unless a person is watching a terminal)
//! and one Prometheus recorder whose series carry a `service` label, so four services in one
//! process stay apart.
//!
//! Every line logged while a request is served carries its `request_id` (and the other fields
//! of the spans it happened in) as top-level JSON keys ([`json_lines`]); the terminal format
//! appends them after the event's own fields.

pub mod json_lines;

use json_lines::JsonLines;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing::Dispatch;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStyle {
    /// Human-readable in a terminal, JSON otherwise.
    Auto,
    Json,
    Pretty,
}

/// Installs the global log subscriber, writing to stderr. Safe to call more than once (tests,
/// `aro up`): only the first call wins. `filter` is a tracing filter (`info`,
/// `info,aro_core_engine=debug`); `RUST_LOG` overrides it.
pub fn init_logging(filter: &str, style: LogStyle) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| EnvFilter::try_new(f).is_ok())
        .unwrap_or_else(|| filter.to_owned());
    // `false` only when a subscriber is already installed, which is fine.
    let _ = init_logging_to(&filter, style, std::io::stderr);
}

/// Installs the global log subscriber writing to `writer`, with `filter` exactly as given
/// (tests capture what the services log this way). `false` when a subscriber was already
/// installed, which then stays.
pub fn init_logging_to<W>(filter: &str, style: LogStyle, writer: W) -> bool
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // `try_init` also routes records of the `log` crate (used by some dependencies) here.
    log_dispatch(filter, style, writer).try_init().is_ok()
}

/// The log subscriber [`init_logging`] installs, without installing it: for a scoped default
/// (`tracing::dispatcher::with_default`) in tests.
pub fn log_dispatch<W>(filter: &str, style: LogStyle, writer: W) -> Dispatch
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let env_filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match style {
        LogStyle::Json => true,
        LogStyle::Pretty => false,
        LogStyle::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(writer)
        .with_target(true);
    if json {
        Dispatch::new(
            builder
                .fmt_fields(JsonFields::new())
                .event_format(JsonLines)
                .finish(),
        )
    } else {
        // The compact format lists every enclosing span's fields (the request id among them)
        // after the event's own. Colours only for a person watching, not in a file.
        Dispatch::new(
            builder
                .compact()
                .with_ansi(std::io::stderr().is_terminal())
                .finish(),
        )
    }
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
    use serde_json::Value;
    use std::sync::{Arc, Mutex};

    /// Log output captured in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .expect("capture lock")
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("capture lock").clone()).expect("utf-8 logs")
        }

        fn json_lines(&self) -> Vec<Value> {
            self.text()
                .lines()
                .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
                .collect()
        }
    }

    /// The text without ANSI colour sequences (`ESC [ … m`), present when stderr is a terminal.
    fn without_colours(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn capture(style: LogStyle, body: impl FnOnce()) -> Captured {
        let captured = Captured::default();
        let writer = captured.clone();
        let dispatch = log_dispatch("debug", style, move || writer.clone());
        tracing::dispatcher::with_default(&dispatch, body);
        captured
    }

    #[test]
    fn every_line_logged_inside_a_request_carries_its_id_at_the_top_level() {
        let logs = capture(LogStyle::Json, || {
            let request = tracing::info_span!(
                "request",
                request_id = "rid-1",
                service = "core-engine",
                route = "/v1/events"
            );
            let _serving = request.enter();
            // What `#[tracing::instrument]` on a handler makes: a span inside the request's.
            tracing::info_span!("list_events", tenant = "default").in_scope(|| {
                tracing::error!(error = "connection reset", "internal error");
            });
            tracing::warn!(status = 500u64, "request failed");
        })
        .json_lines();
        assert_eq!(logs.len(), 2, "{logs:?}");
        let inner = &logs[0];
        assert_eq!(inner["request_id"], "rid-1", "{inner}");
        assert_eq!(inner["service"], "core-engine");
        assert_eq!(inner["tenant"], "default");
        assert_eq!(inner["message"], "internal error");
        assert_eq!(inner["error"], "connection reset");
        assert_eq!(inner["level"], "ERROR");
        assert_eq!(inner["span"], "list_events");
        assert_eq!(
            inner["spans"],
            serde_json::json!(["request", "list_events"])
        );
        assert!(
            inner["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
        assert!(
            inner["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("aro_telemetry"))
        );
        let outer = &logs[1];
        assert_eq!(outer["request_id"], "rid-1", "{outer}");
        assert_eq!(outer["status"], 500);
        assert_eq!(outer["span"], "request");
        assert!(outer.get("tenant").is_none(), "{outer}");
    }

    #[test]
    fn background_work_carries_its_own_ids_and_no_request_id() {
        let logs = capture(LogStyle::Json, || {
            tracing::info_span!(
                "execution",
                execution = "ex-7",
                correlation = "corr-3",
                attempt = 2u64
            )
            .in_scope(|| tracing::info!(outcome = "succeeded", "execution reported"));
            tracing::info!("outside any span");
        })
        .json_lines();
        assert_eq!(logs[0]["execution"], "ex-7", "{}", logs[0]);
        assert_eq!(logs[0]["correlation"], "corr-3");
        assert_eq!(logs[0]["attempt"], 2);
        assert!(logs[0].get("request_id").is_none());
        assert!(logs[1].get("span").is_none(), "{}", logs[1]);
        assert!(logs[1].get("spans").is_none());
    }

    #[test]
    fn the_event_then_the_nearest_span_wins_a_repeated_name() {
        let logs = capture(LogStyle::Json, || {
            let outer = tracing::info_span!("outer", tenant = "a", level_of_care = "x");
            let _outer = outer.enter();
            let inner = tracing::info_span!("inner", tenant = "b");
            let _inner = inner.enter();
            tracing::info!("from the inner span");
            tracing::info!(tenant = "c", level = "mine", "with its own tenant");
        })
        .json_lines();
        assert_eq!(logs[0]["tenant"], "b", "{}", logs[0]);
        assert_eq!(logs[0]["level_of_care"], "x");
        assert_eq!(logs[1]["tenant"], "c", "{}", logs[1]);
        assert_eq!(logs[1]["level"], "INFO", "the format's own keys stay");
        assert_eq!(logs[1]["field.level"], "mine");
    }

    #[test]
    fn a_request_id_recorded_after_the_span_opened_is_included() {
        let logs = capture(LogStyle::Json, || {
            let span = tracing::info_span!(
                "request",
                request_id = tracing::field::Empty,
                service = "bff"
            );
            span.record("request_id", "late-1");
            span.in_scope(|| tracing::info!(ok = true, elapsed = 0.5, "served"));
        })
        .json_lines();
        assert_eq!(logs[0]["request_id"], "late-1", "{}", logs[0]);
        assert_eq!(logs[0]["service"], "bff");
        assert_eq!(logs[0]["ok"], true);
        assert_eq!(logs[0]["elapsed"], 0.5);
    }

    #[test]
    fn the_terminal_format_shows_the_request_id_too() {
        let text = capture(LogStyle::Pretty, || {
            let request = tracing::info_span!("request", request_id = %"rid-term");
            let _serving = request.enter();
            tracing::info_span!("list_events", tenant = %"default")
                .in_scope(|| tracing::warn!("slow page"));
        })
        .text();
        let text = without_colours(&text);
        assert!(text.contains("slow page"), "{text}");
        assert!(text.contains("request_id=rid-term"), "{text}");
        assert!(text.contains("tenant=default"), "{text}");
        assert!(
            serde_json::from_str::<Value>(text.trim()).is_err(),
            "not JSON: {text}"
        );
    }

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
