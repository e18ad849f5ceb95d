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

/// The subject whose data key seals what is the clinic's own rather than a patient's: texts to
/// the clinic's phone (staff digests) and texts from numbers no single patient owns.
pub const TENANT_SUBJECT: &str = "tenant";

/// A text to write (`Tx::insert_message`). The number and the body are sealed by the store
/// under the data key of the message's patient (`customer_id`), or of [`TENANT_SUBJECT`] when
/// it has none, bound to `("messages", column, message id)`; the number is also indexed blind,
/// so texts to or from it can be found without reading it.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    pub tenant_id: &'a str,
    pub customer_id: Option<&'a str>,
    pub appointment_id: Option<&'a str>,
    pub direction: aro_domain::message::Direction,
    pub channel: aro_domain::message::Channel,
    /// Why it was sent or received (reminder_48h, reply, staff_digest, …).
    pub purpose: &'a str,
    /// The patient's (or clinic's) number: the recipient of an outbound text, the sender of an
    /// inbound one.
    pub counterpart: Option<&'a aro_domain::values::Phone>,
    pub body: Option<&'a str>,
    pub status: aro_domain::message::MessageStatus,
    pub provider_ref: Option<&'a str>,
    pub execution_id: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// An execution to queue (`Tx::insert_execution`). The payload is sealed by the store under
/// the data key of `subject_id` (a patient), or of [`TENANT_SUBJECT`] when it has none, bound to
/// `("executions", "payload", id)`; it reads back opened through `Tx::execution_payload`.
#[derive(Debug, Clone, Copy)]
pub struct NewExecutionRecord<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub correlation_id: &'a str,
    pub command_type: &'a str,
    /// Whose data key seals the payload: a patient, or the clinic when `None`.
    pub subject_id: Option<&'a str>,
    pub payload: &'a Value,
    pub max_attempts: i64,
    /// Business time past which it is expired instead of handed out.
    pub not_after: Option<DateTime<Utc>>,
    pub workflow_id: Option<&'a str>,
    pub aggregate_id: Option<&'a str>,
    /// Real time: when it is written and first offered (availability and leases are liveness).
    pub at: DateTime<Utc>,
    /// Business time: stamps the subject's data key if this creates it.
    pub now: DateTime<Utc>,
}

/// A text as callers see it: the number and body opened. When the data key they were sealed
/// under has been shredded (the patient was erased), both read as `None` and `pii_erased` says
/// why; the rest of the message (what was sent when, and how it fared) stays.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub tenant_id: String,
    pub id: String,
    pub customer_id: Option<String>,
    pub appointment_id: Option<String>,
    pub direction: aro_domain::message::Direction,
    pub channel: aro_domain::message::Channel,
    pub purpose: String,
    pub counterpart: Option<aro_domain::values::Phone>,
    /// The keyed blind index of the counterpart's number (not personal data: it only matches
    /// the same number in the same tenant).
    pub counterpart_index: Option<String>,
    pub body: Option<String>,
    /// The subject's data key is gone: `counterpart` and `body` are erased, not missing.
    pub pii_erased: bool,
    pub status: aro_domain::message::MessageStatus,
    pub provider_ref: Option<String>,
    pub error_code: Option<String>,
    pub execution_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Message {
    /// Whose data key seals this message's number and body.
    pub fn subject_id(&self) -> &str {
        message_subject(self.customer_id.as_deref())
    }
}

/// The subject of a message's sealed columns: its patient, else the clinic.
pub(crate) fn message_subject(customer_id: Option<&str>) -> &str {
    customer_id.unwrap_or(TENANT_SUBJECT)
}
