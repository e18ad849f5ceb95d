//! A patient paying a link: Stripe creates a Checkout Session for the link and sends
//! `checkout.session.completed`, signed with the endpoint's `whsec_` secret, to the tenant's
//! webhook URL on core. The session carries the link's id (`payment_link`) and a copy of its
//! metadata, as Stripe's do.

use super::LinkStatus;
use crate::ids;
use crate::outbound::{Payload, Webhook};
use crate::settings::join;
use crate::state::Sandbox;
use aro_http::ApiError;
use serde_json::json;

/// The Stripe API version stamped on events.
const EVENT_API_VERSION: &str = "2024-06-20";

/// What completing a link produced.
#[derive(Debug, Clone)]
pub(crate) struct Completed {
    pub event_id: String,
    pub session_id: String,
    pub tenant_id: String,
}

/// Marks link `id` paid and sends the event in the background. A link is paid once here
/// (ARO's deposit links are for one visit); a second attempt is 409.
pub(crate) fn complete(sandbox: &Sandbox, id: &str) -> Result<Completed, ApiError> {
    let now = chrono::Utc::now().timestamp();
    let event_id = ids::stripe_id("evt");
    let session_id = ids::stripe_id("cs_test");
    let (tenant_id, event) = {
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
        link.status = LinkStatus::Paid;
        let session = json!({
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
            "payment_intent": ids::stripe_id("pi"),
            "payment_link": link.id,
            "payment_method_collection": "always",
            "payment_method_types": ["card"],
            "payment_status": "paid",
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
        });
        let event = json!({
            "id": event_id,
            "object": "event",
            "api_version": EVENT_API_VERSION,
            "created": now,
            "data": {"object": session},
            "livemode": false,
            "pending_webhooks": 1,
            "request": {"id": null, "idempotency_key": null},
            "type": "checkout.session.completed",
        });
        (link.tenant_id.clone(), event)
    };
    let url = join(
        &sandbox.settings().public_base_url,
        &format!("/v1/webhooks/stripe/{tenant_id}"),
    );
    let body = serde_json::to_vec(&event).map_err(ApiError::internal)?;
    sandbox.deliver_in_background(vec![Webhook {
        kind: "checkout.session.completed",
        url,
        payload: Payload::StripeJson(body),
    }]);
    tracing::info!(event = %event_id, tenant = %tenant_id, "payment link completed");
    Ok(Completed {
        event_id,
        session_id,
        tenant_id,
    })
}
