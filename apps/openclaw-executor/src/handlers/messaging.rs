//! `messaging.send_reminder` and `messaging.send_message`: where an SMS leaves the building.
//!
//! Twilio has no idempotency keys, so exactly-once rests on looking before resending
//! (docs/adr/0006-exactly-once-side-effects.md). Within one call, `TwilioClient::send_sms`
//! already looks up after an attempt whose answer was lost. Across calls (this executor or
//! another crashed, a lease lapsed, or core retries after a failure that may have reached
//! Twilio), core hands the execution out again with `attempt > 1`; the send then first searches
//! the recipient's messages created since the execution was written and reports the one it
//! finds instead of sending again.

use aro_integrations::Provider;
use aro_integrations::twilio::SendSms;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::{not_configured, payload};
use crate::core::ClaimedExecution;
use crate::outcome::{ExecutionFailure, Outcome};
use crate::providers::Providers;

/// Twilio stamps `date_created` with its own clock, to the second: search a little earlier than
/// our clock says the execution was written.
const CLOCK_SKEW: TimeDelta = TimeDelta::minutes(2);

/// Without core's `createdAt` (an older core), the oldest an earlier attempt can plausibly be:
/// core gives up on a send within hours (six attempts, waits capped at an hour each).
const FALLBACK_LOOKBACK: TimeDelta = TimeDelta::hours(24);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendPayload {
    to: String,
    body: String,
    idempotency_key: String,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    status_callback: Option<String>,
}

/// Since when an earlier attempt of `execution` may have reached Twilio.
pub(super) fn earlier_attempts_since(execution: &ClaimedExecution) -> DateTime<Utc> {
    execution
        .created_at
        .unwrap_or_else(|| Utc::now() - FALLBACK_LOOKBACK)
        - CLOCK_SKEW
}

pub(super) async fn send(
    providers: &Providers,
    execution: &ClaimedExecution,
) -> Result<Outcome, ExecutionFailure> {
    let p: SendPayload = payload(execution)?;
    match p.channel.as_deref() {
        None | Some("sms") => {}
        // WhatsApp needs approved templates for business-initiated messages; not yet.
        Some(_) => {
            return Err(ExecutionFailure::permanent(
                "CHANNEL_NOT_SUPPORTED",
                "this executor sends SMS only",
            ));
        }
    }
    let (twilio, owner) = providers
        .twilio_for(&execution.tenant_id)
        .await?
        .ok_or_else(|| not_configured("providers.twilio"))?;
    let mut request = SendSms::new(p.to, p.body, p.idempotency_key);
    if let Some(raw) = p.status_callback.as_deref().filter(|s| !s.is_empty()) {
        match Url::parse(raw) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {
                request = request.with_status_callback(url);
            }
            // Delivery updates are lost, the text is not: send without them.
            _ => tracing::warn!(
                execution = %execution.execution_id,
                "status callback is not an http(s) URL; sending without delivery updates"
            ),
        }
    }
    if execution.attempt > 1 {
        let since = earlier_attempts_since(execution);
        tracing::info!(
            execution = %execution.execution_id,
            attempt = execution.attempt,
            %since,
            "handed out before: looking for an earlier send before sending"
        );
        request = request.after_earlier_attempt(since);
    }
    let _slot = providers.slot(Provider::Twilio).await;
    let result = twilio.send_sms(&request).await;
    providers.observe_as(Provider::Twilio, &owner, &result);
    let message = result.map_err(|error| {
        tracing::info!(
            execution = %execution.execution_id,
            message_id = p.message_id.as_deref().unwrap_or(""),
            code = error.code(),
            provider_code = error.provider_code().unwrap_or(""),
            maybe_delivered = error.maybe_delivered(),
            "send failed"
        );
        ExecutionFailure::from_provider(&error)
    })?;
    tracing::info!(
        execution = %execution.execution_id,
        message_id = p.message_id.as_deref().unwrap_or(""),
        sid = %message.sid,
        status = %message.status,
        credentials = owner.label(),
        "sent"
    );
    Ok(Outcome::Succeeded {
        provider_ref: Some(message.sid.clone()),
        output: json!({"status": message.status.as_str(), "sid": message.sid}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(created_at: Option<&str>) -> ClaimedExecution {
        serde_json::from_value(serde_json::json!({
            "executionId": "exe_1", "tenantId": "t", "correlationId": "c",
            "commandType": "messaging.send_reminder", "payload": {}, "attempt": 2,
            "leaseUntil": "2030-01-01T00:00:00Z", "createdAt": created_at
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_search_starts_just_before_the_execution_was_written() {
        let since = earlier_attempts_since(&claimed(Some("2030-01-01T10:00:00Z")));
        assert_eq!(since.to_rfc3339(), "2030-01-01T09:58:00+00:00");
    }

    #[test]
    fn without_a_creation_time_the_search_covers_a_day() {
        let since = earlier_attempts_since(&claimed(None));
        let age = Utc::now() - since;
        assert!(age >= FALLBACK_LOOKBACK && age < FALLBACK_LOOKBACK + TimeDelta::minutes(5));
    }
}
