//! `classification.classify_reply`: asking the configured model what a patient's reply meant,
//! after core's rules were unsure. The answer is only a classification; core decides what to do
//! with it (act when confident, else hand the reply to staff).
//!
//! A tenant whose classification runs in core-engine never has its replies sent to a model
//! from here (never both, DESIGN.md "Tenants"); without `[classifier.llm]` the execution fails
//! at once as `LLM_NOT_CONFIGURED`, so core escalates instead of waiting; so does a model that
//! fails or times out (after the resilience layer's retries) or whose breaker is open.

use aro_integrations::Provider;
use serde::Deserialize;

use super::payload;
use crate::core::ClaimedExecution;
use crate::outcome::{ExecutionFailure, Outcome};
use crate::providers::Providers;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClassifyPayload {
    #[serde(default)]
    message_id: Option<String>,
    text: String,
    #[serde(default)]
    language_hint: Option<String>,
    #[serde(default)]
    residency: Option<String>,
}

pub(super) async fn classify(
    providers: &Providers,
    execution: &ClaimedExecution,
) -> Result<Outcome, ExecutionFailure> {
    let p: ClassifyPayload = payload(execution)?;
    if p.residency.as_deref() == Some("core-engine") {
        return Err(ExecutionFailure::permanent(
            "CLASSIFICATION_RESIDENCY",
            "this tenant's classification runs in core-engine, not here",
        ));
    }
    let llm = providers.llm.as_ref().ok_or_else(|| {
        ExecutionFailure::permanent(
            "LLM_NOT_CONFIGURED",
            "no [classifier.llm] is configured for this executor",
        )
    })?;
    let _slot = providers.slot(Provider::Llm).await;
    let result = llm
        .classify_reply(&p.text, p.language_hint.as_deref())
        .await;
    providers.observe(Provider::Llm, &result);
    // A patient's reply does not wait for a model: once the call (with the resilience layer's
    // own retries) has failed, or the model's breaker is open, the reply goes to staff now
    // ("unavailable → escalation"), instead of being offered again for minutes.
    let classification = result.map_err(|error| {
        let failure = ExecutionFailure::from_provider(&error);
        ExecutionFailure::permanent(failure.code, failure.message)
    })?;
    tracing::info!(
        execution = %execution.execution_id,
        message_id = p.message_id.as_deref().unwrap_or(""),
        intent = %classification.intent,
        confidence = classification.confidence,
        "reply classified"
    );
    let output = serde_json::to_value(&classification).map_err(|_| {
        ExecutionFailure::permanent("INVALID_OUTPUT", "classification could not be written")
    })?;
    Ok(Outcome::Succeeded {
        provider_ref: None,
        output,
    })
}
