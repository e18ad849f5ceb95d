//! A patient paying a link: Stripe creates a Checkout Session for the link and sends its
//! events, each signed with the `whsec_` secret of the link's account's endpoint and carrying
//! its own `evt_` id, to
//! the tenant's webhook URL on core. The session carries the link's id (`payment_link`) and a
//! copy of its metadata, as Stripe's do.
//!
//! A card pays at once: one `checkout.session.completed` with `payment_status: "paid"`. A bank
//! debit (`us_bank_account`) completes the checkout before the money moves, as Stripe's do:
//! `checkout.session.completed` with `payment_status: "unpaid"`, then the same session in
//! `checkout.session.async_payment_succeeded` (`"paid"`) or `checkout.session.async_payment_failed`
//! (`"unpaid"`). The sandbox settles the debit at once, and sends the events in that order.

use super::{LinkStatus, PaymentLink};
use crate::ids;
use crate::outbound::{Payload, Webhook};
use crate::settings::join;
use crate::state::Sandbox;
use aro_http::ApiError;
use serde_json::{Value, json};

/// The Stripe API version stamped on events.
const EVENT_API_VERSION: &str = "2024-06-20";

const COMPLETED: &str = "checkout.session.completed";
const ASYNC_PAYMENT_SUCCEEDED: &str = "checkout.session.async_payment_succeeded";
const ASYNC_PAYMENT_FAILED: &str = "checkout.session.async_payment_failed";

/// How the patient pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PaymentMethod {
    /// Paid at once.
    Card,
    /// A US bank debit (`us_bank_account`), which arrives — or fails — after the checkout.
    BankDebit(DebitOutcome),
}

/// What becomes of a bank debit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DebitOutcome {
    Succeeded,
    Failed,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::BankDebit(_) => "bank_debit",
        }
    }

    /// `succeeded` or `failed`.
    pub fn outcome(self) -> &'static str {
        match self {
            Self::Card | Self::BankDebit(DebitOutcome::Succeeded) => "succeeded",
            Self::BankDebit(DebitOutcome::Failed) => "failed",
        }
    }

    /// Stripe's name for it, in the session's `payment_method_types`.
    fn stripe_type(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::BankDebit(_) => "us_bank_account",
        }
    }

    /// The events a checkout with this method produces, in order, each with the session's
    /// `payment_status` at that point.
    fn events(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Card => &[(COMPLETED, "paid")],
            Self::BankDebit(DebitOutcome::Succeeded) => {
                &[(COMPLETED, "unpaid"), (ASYNC_PAYMENT_SUCCEEDED, "paid")]
            }
            Self::BankDebit(DebitOutcome::Failed) => {
                &[(COMPLETED, "unpaid"), (ASYNC_PAYMENT_FAILED, "unpaid")]
            }
        }
    }

    /// Whether the money arrives (and the link is then paid).
    fn pays(self) -> bool {
        !matches!(self, Self::BankDebit(DebitOutcome::Failed))
    }
}

/// One event sent.
#[derive(Debug, Clone)]
pub(crate) struct SentEvent {
    /// `evt_…`.
    pub id: String,
    pub event_type: &'static str,
}

/// What paying a link produced.
#[derive(Debug, Clone)]
pub(crate) struct Completed {
    pub session_id: String,
    pub tenant_id: String,
    /// In the order they are delivered.
    pub events: Vec<SentEvent>,
    /// The link's status afterwards: paid, or open again after a failed debit.
    pub link_status: LinkStatus,
}

/// Pays link `id` with `method` and sends the events in the background, in order. A link is
/// paid once here (ARO's deposit links are for one visit); a second attempt is 409. A failed
/// debit pays nothing, so the link stays open and can be paid again.
pub(crate) fn complete(
    sandbox: &Sandbox,
    id: &str,
    method: PaymentMethod,
) -> Result<Completed, ApiError> {
    let now = chrono::Utc::now().timestamp();
    let session_id = ids::stripe_id("cs_test");
    let (tenant_id, account, link_status, bodies) = {
        let mut state = sandbox.state();
        let link = state
            .stripe
            .links
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found("payment link"))?;
        if link.status == LinkStatus::Paid {
            return Err(ApiError::conflict(
                "ALREADY_PAID",
                "this payment link has already been paid in the sandbox",
            ));
        }
        if method.pays() {
            link.status = LinkStatus::Paid;
        }
        let payment_intent = ids::stripe_id("pi");
        let bodies: Vec<(SentEvent, Value)> = method
            .events()
            .iter()
            .map(|(event_type, payment_status)| {
                let session = session(
                    link,
                    &session_id,
                    &payment_intent,
                    now,
                    method,
                    payment_status,
                );
                let event = SentEvent {
                    id: ids::stripe_id("evt"),
                    event_type,
                };
                let body = json!({
                    "id": event.id,
                    "object": "event",
                    "api_version": EVENT_API_VERSION,
                    "created": now,
                    "data": {"object": session},
                    "livemode": false,
                    "pending_webhooks": 1,
                    "request": {"id": null, "idempotency_key": null},
                    "type": event_type,
                });
                (event, body)
            })
            .collect();
        (
            link.tenant_id.clone(),
            link.account.clone(),
            link.status,
            bodies,
        )
    };
    let secret = super::webhook_secret(sandbox, &account);
    let url = join(
        &sandbox.settings().public_base_url,
        &format!("/v1/webhooks/stripe/{tenant_id}"),
    );
    let mut hooks = Vec::with_capacity(bodies.len());
    let mut events = Vec::with_capacity(bodies.len());
    for (event, body) in bodies {
        hooks.push(Webhook {
            kind: event.event_type,
            url: url.clone(),
            payload: Payload::StripeJson {
                body: serde_json::to_vec(&body).map_err(ApiError::internal)?,
                secret: secret.clone(),
            },
        });
        events.push(event);
    }
    sandbox.deliver_in_background(hooks);
    tracing::info!(
        link = %id,
        session = %session_id,
        tenant = %tenant_id,
        account = %account,
        method = method.as_str(),
        outcome = method.outcome(),
        "payment link checkout completed"
    );
    Ok(Completed {
        session_id,
        tenant_id,
        events,
        link_status,
    })
}

/// The Checkout Session as Stripe shows it in an event.
fn session(
    link: &PaymentLink,
    session_id: &str,
    payment_intent: &str,
    now: i64,
    method: PaymentMethod,
    payment_status: &str,
) -> Value {
    json!({
        "id": session_id,
        "object": "checkout.session",
        "after_expiration": null,
        "allow_promotion_codes": false,
        "amount_subtotal": link.amount_minor,
        "amount_total": link.amount_minor,
        "automatic_tax": {"enabled": false, "liability": null, "status": null},
        "billing_address_collection": "auto",
        "cancel_url": null,
        "client_reference_id": null,
        "consent": null,
        "consent_collection": null,
        "created": now,
        "currency": link.currency,
        "customer": null,
        "customer_creation": "if_required",
        "customer_details": {
            "address": null, "email": null, "name": null, "phone": null,
            "tax_exempt": "none", "tax_ids": [],
        },
        "customer_email": null,
        "expires_at": now + 24 * 60 * 60,
        "invoice": null,
        "livemode": false,
        "locale": "auto",
        "metadata": link.metadata,
        "mode": "payment",
        "payment_intent": payment_intent,
        "payment_link": link.id,
        "payment_method_collection": "always",
        "payment_method_types": [method.stripe_type()],
        "payment_status": payment_status,
        "phone_number_collection": {"enabled": false},
        "recovered_from": null,
        "setup_intent": null,
        "shipping_address_collection": null,
        "shipping_cost": null,
        "shipping_details": null,
        "shipping_options": [],
        "status": "complete",
        "submit_type": "auto",
        "subscription": null,
        "success_url": null,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "url": null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_pays_in_one_event_and_a_debit_in_two() {
        assert_eq!(PaymentMethod::Card.events(), &[(COMPLETED, "paid")]);
        assert_eq!(
            PaymentMethod::BankDebit(DebitOutcome::Succeeded).events(),
            &[(COMPLETED, "unpaid"), (ASYNC_PAYMENT_SUCCEEDED, "paid")]
        );
        assert_eq!(
            PaymentMethod::BankDebit(DebitOutcome::Failed).events(),
            &[(COMPLETED, "unpaid"), (ASYNC_PAYMENT_FAILED, "unpaid")]
        );
        assert!(PaymentMethod::Card.pays());
        assert!(PaymentMethod::BankDebit(DebitOutcome::Succeeded).pays());
        assert!(!PaymentMethod::BankDebit(DebitOutcome::Failed).pays());
    }
}
