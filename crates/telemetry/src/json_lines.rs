//! The JSON log line: one flat object per event, with the fields of every span the event
//! happened in lifted to the top level.
//!
//! tracing-subscriber's own JSON format shows either the innermost span or a nested list of
//! spans. Neither serves an operator: a handler's `#[tracing::instrument]` span hides the
//! request span around it, so its lines lost the `request_id`, and a nested list cannot be
//! filtered with `jq 'select(.request_id == "…")'`. Here the request span's `request_id`,
//! `service` and `route`, a handler's `tenant`, an execution's `execution` and `correlation`
//! are all top-level keys of every line logged inside them.
//!
//! Precedence when names repeat: the event's own fields, then the innermost span, outwards.
//! The keys this format writes itself (`timestamp`, `level`, `target`, `message`, `span`,
//! `spans`) are never overwritten: a field with one of those names is written as `field.<name>`.

use serde_json::Value;
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Keys this format owns; fields by these names are renamed `field.<name>`.
const RESERVED: [&str; 6] = ["timestamp", "level", "target", "message", "span", "spans"];

/// Formats events as flat JSON lines. Use with [`JsonFields`] as the span field formatter:
/// the span fields are read back from what it recorded.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut own = EventFields::default();
        event.record(&mut own);

        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let meta = event.metadata();
        let target = own.log_target.take();

        let mut line = Line::default();
        line.put("timestamp", Value::String(timestamp));
        line.put("level", Value::String(meta.level().to_string()));
        line.put(
            "target",
            Value::String(target.unwrap_or_else(|| meta.target().to_owned())),
        );
        if let Some(message) = own.message.take() {
            line.put("message", Value::String(message));
        }
        for (name, value) in own.fields {
            line.put_field(name, value);
        }

        // Innermost first, so the nearest span wins a name both it and an outer span use.
        let mut names = Vec::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                names.push(Value::String(span.name().to_owned()));
                let extensions = span.extensions();
                let Some(recorded) = extensions.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                // `JsonFields` keeps a span's fields as one JSON object (empty when it has none).
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(recorded) {
                    for (name, value) in fields {
                        line.put_field(name, value);
                    }
                }
            }
        }
        if let Some(Value::String(innermost)) = names.first() {
            line.put("span", Value::String(innermost.clone()));
        }
        if !names.is_empty() {
            names.reverse();
            line.put("spans", Value::Array(names));
        }

        line.write(&mut writer)?;
        writeln!(writer)
    }
}

/// The keys of one line in the order they are written; the first writer of a key wins.
#[derive(Default)]
struct Line {
    entries: Vec<(String, Value)>,
}

impl Line {
    fn put(&mut self, key: &str, value: Value) {
        if !self.entries.iter().any(|(k, _)| k == key) {
            self.entries.push((key.to_owned(), value));
        }
    }

    fn put_field(&mut self, name: String, value: Value) {
        if RESERVED.contains(&name.as_str()) {
            self.put(&format!("field.{name}"), value);
        } else {
            self.put(&name, value);
        }
    }

    fn write(&self, writer: &mut Writer<'_>) -> fmt::Result {
        writer.write_char('{')?;
        for (i, (key, value)) in self.entries.iter().enumerate() {
            if i > 0 {
                writer.write_char(',')?;
            }
            // Serialising a string or a `Value` cannot fail; an error would only mean a bug.
            let key = serde_json::to_string(key).map_err(|_| fmt::Error)?;
            let value = serde_json::to_string(value).map_err(|_| fmt::Error)?;
            write!(writer, "{key}:{value}")?;
        }
        writer.write_char('}')
    }
}

/// An event's fields as JSON values, its message and, for records bridged from the `log`
/// crate, the original target (the bridge puts it in a `log.target` field).
#[derive(Default)]
struct EventFields {
    message: Option<String>,
    log_target: Option<String>,
    fields: Vec<(String, Value)>,
}

impl EventFields {
    fn record(&mut self, field: &Field, value: Value) {
        let name = field.name();
        match name {
            "message" => {
                self.message = Some(match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                });
            }
            "log.target" => {
                if let Value::String(s) = value {
                    self.log_target = Some(s);
                }
            }
            // The bridge's other bookkeeping fields (module path, file, line) are noise here.
            _ if name.starts_with("log.") => {}
            _ => self.fields.push((name.to_owned(), value)),
        }
    }
}

impl Visit for EventFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.record(field, Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record(field, Value::from(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        let value =
            i64::try_from(value).map_or_else(|_| Value::from(value.to_string()), Value::from);
        self.record(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        let value =
            u64::try_from(value).map_or_else(|_| Value::from(value.to_string()), Value::from);
        self.record(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record(field, Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record(field, Value::from(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, Value::from(format!("{value:?}")));
    }
}
