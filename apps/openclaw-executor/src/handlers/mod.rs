//! One handler per execution type: read the payload core wrote, make the provider call, and
//! say what came of it. Core decided *whether* to act; handlers only decide *how*, and never
//! retry beyond the short in-memory window (core's queue owns longer schedules).
//!
//! | type | provider | output |
//! |---|---|---|
//! | `messaging.send_reminder`, `messaging.send_message` | Twilio | `{status, sid}`, `providerRef` = SID |
//! | `payments.generate_deposit_link` | Stripe | `{url, priceId}`, `providerRef` = payment link id |
//! | `booking.fetch_invitee` | Calendly | `{booking}`: an `appointment.upsert` payload |
//! | `booking.request_reschedule_link` | none | `{url}`: the booking's own reschedule link |
//! | `classification.classify_reply` | the LLM | the classification `{intent, confidence, source, language}` |
//!
//! Anything else is refused as `UNKNOWN_EXECUTION_TYPE`, after the permission check.

mod booking;
mod classification;
mod messaging;
mod payments;

use serde::de::DeserializeOwned;

use crate::core::ClaimedExecution;
use crate::outcome::{ExecutionFailure, Outcome};
use crate::providers::Providers;

/// Every type this executor can perform.
pub const KNOWN_TYPES: &[&str] = &[
    "messaging.send_reminder",
    "messaging.send_message",
    "payments.generate_deposit_link",
    "booking.fetch_invitee",
    "booking.request_reschedule_link",
    "classification.classify_reply",
];

/// Performs one execution the tenant is allowed to run.
pub async fn perform(providers: &Providers, execution: &ClaimedExecution) -> Outcome {
    let result = match execution.command_type.as_str() {
        "messaging.send_reminder" | "messaging.send_message" => {
            messaging::send(providers, execution).await
        }
        "payments.generate_deposit_link" => payments::deposit_link(providers, execution).await,
        "booking.fetch_invitee" => booking::fetch_invitee(providers, execution).await,
        "booking.request_reschedule_link" => booking::reschedule_link(execution),
        "classification.classify_reply" => classification::classify(providers, execution).await,
        _ => Err(ExecutionFailure::permanent(
            "UNKNOWN_EXECUTION_TYPE",
            "this executor does not know this execution type",
        )),
    };
    result.unwrap_or_else(Outcome::Failed)
}

/// The payload as `T`. A mismatch names the field, never the value (payloads carry phone
/// numbers and message texts, and the parser's own message can quote them).
fn payload<T: DeserializeOwned>(execution: &ClaimedExecution) -> Result<T, ExecutionFailure> {
    serde_path_to_error::deserialize(&execution.payload).map_err(|error| {
        let path = error.path().to_string();
        ExecutionFailure::permanent(
            "INVALID_PAYLOAD",
            format!("payload field `{path}` is missing or has the wrong type"),
        )
    })
}

/// The refusal for a type whose provider this installation has no section for.
fn not_configured(section: &str) -> ExecutionFailure {
    ExecutionFailure::permanent(
        "PROVIDER_NOT_CONFIGURED",
        format!("no [{section}] section is configured for this executor"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_mismatch_names_the_field_not_the_value() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Shape {
            to: u32,
        }
        let execution: ClaimedExecution = serde_json::from_value(serde_json::json!({
            "executionId": "exe_1", "tenantId": "t", "correlationId": "c",
            "commandType": "x", "payload": {"to": "+14155552671"}, "attempt": 1,
            "leaseUntil": "2030-01-01T00:00:00Z"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let failure = payload::<Shape>(&execution).err();
        let message = failure.map(|f| f.message).unwrap_or_default();
        assert!(message.contains("`to`"), "{message}");
        assert!(!message.contains("4155552671"), "{message}");
    }
}
