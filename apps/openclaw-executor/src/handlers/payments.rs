//! `payments.generate_deposit_link`: a Stripe payment link a patient may choose to open. ARO
//! never charges; the Stripe client can only create a price and a payment link.
//!
//! Exactly-once here is Stripe's: both creates carry an `Idempotency-Key` derived from the
//! payload's `idempotencyKey` (core's payment link id), so a retry after a lost answer, a crash
//! or a lapsed lease gets the objects already made (within Stripe's 24 h key window).

use std::collections::BTreeMap;

use aro_integrations::Provider;
use aro_integrations::stripe::DepositLink;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{not_configured, payload};
use crate::core::ClaimedExecution;
use crate::outcome::{ExecutionFailure, Outcome};
use crate::providers::Providers;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DepositPayload {
    #[serde(default)]
    payment_link_id: Option<String>,
    amount_minor: i64,
    currency: String,
    description: String,
    idempotency_key: String,
    #[serde(default)]
    metadata: BTreeMap<String, Value>,
}

/// Stripe metadata values are strings; ids arrive as strings already.
fn metadata_text(value: Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

pub(super) async fn deposit_link(
    providers: &Providers,
    execution: &ClaimedExecution,
) -> Result<Outcome, ExecutionFailure> {
    let p: DepositPayload = payload(execution)?;
    let (stripe, owner) = providers
        .stripe_for(&execution.tenant_id)
        .await?
        .ok_or_else(|| not_configured("providers.stripe"))?;
    let link = DepositLink {
        amount_minor: p.amount_minor,
        currency: p.currency,
        product_name: p.description,
        metadata: p
            .metadata
            .into_iter()
            .filter_map(|(k, v)| metadata_text(v).map(|v| (k, v)))
            .collect(),
        idempotency_key: p.idempotency_key,
    };
    let _slot = providers.slot(Provider::Stripe).await;
    let result = stripe.create_deposit_link(&link).await;
    providers.observe_as(Provider::Stripe, &owner, &result);
    let created = result.map_err(|error| ExecutionFailure::from_provider(&error))?;
    tracing::info!(
        execution = %execution.execution_id,
        payment_link = %created.id,
        core_payment_link = p.payment_link_id.as_deref().unwrap_or(""),
        credentials = owner.label(),
        "deposit link ready"
    );
    Ok(Outcome::Succeeded {
        provider_ref: Some(created.id),
        output: json!({"url": created.url.as_str(), "priceId": created.price_id}),
    })
}
