//! The command envelope (DESIGN.md "Commands") and what applying one answers.

use aro_store::AggregateRef;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Command types of v1 (additive only).
pub const COMMAND_TYPES: &[&str] = &[
    "appointment.upsert",
    "appointment.confirm",
    "appointment.check_in",
    "appointment.cancel",
    "appointment.reschedule",
    "appointment.mark_completed",
    "appointment.mark_no_show",
    "message.record_inbound",
    "message.record_delivery_status",
    "consent.set",
    "tenant.update_config",
    "escalation.resolve",
    "dead_letter.retry",
    "dead_letter.archive",
    "audit.record",
];

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregateInput {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub id: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommandEnvelope {
    #[serde(default)]
    pub command_id: Option<String>,
    pub command_type: String,
    pub tenant_id: String,
    #[serde(default)]
    pub profile: Option<String>,
    pub aggregate: AggregateInput,
    #[serde(default)]
    pub payload: Value,
    #[serde(default)]
    pub metadata: Value,
}

/// The 200 answer of an applied command.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandOutcome {
    pub command_id: String,
    pub status: String,
    pub aggregate: AggregateRef,
    pub workflow_id: Option<String>,
    pub correlation_id: String,
    pub events: Vec<i64>,
}
