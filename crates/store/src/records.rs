//! Records as callers see them: domain values in, domain values out, personal data in the clear
//! (it is sealed and opened by the store, never by callers).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What an event is about.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateRef {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

impl AggregateRef {
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            id: id.into(),
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMetadata {
    pub workflow_id: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
}

/// Personal data carried by an event, sealed under the data key of `subject_id` (a patient),
/// so erasing the patient erases it from the log too.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPii {
    pub subject_id: String,
    /// A JSON object merged into the payload when the event is read.
    pub fields: Value,
}

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub tenant_id: String,
    pub event_type: aro_domain::EventType,
    pub aggregate: AggregateRef,
    pub occurred_at: DateTime<Utc>,
    pub profile: Option<String>,
    pub payload: Value,
    pub pii: Option<EventPii>,
    pub metadata: EventMetadata,
}

/// The canonical event envelope (DESIGN.md "Events").
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_id: String,
    pub seq: i64,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub tenant_id: String,
    pub profile: Option<String>,
    pub aggregate: AggregateRef,
    pub payload: Value,
    pub metadata: EventMetadata,
}

/// An event query: `after` is exclusive; `limit` at most 1000.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub tenant_id: Option<String>,
    pub after: i64,
    pub limit: u32,
    pub event_type: Option<String>,
    pub aggregate_id: Option<String>,
}
