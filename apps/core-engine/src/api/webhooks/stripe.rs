//! `POST /v1/webhooks/stripe/{tenantId}`: a patient paid a deposit through one of ARO's
//! payment links.
//!
//! Only `checkout.session.completed` is acted on, matched to our link by the session's
//! `payment_link`; the link becomes `paid`, `payment.completed` is emitted and the deposit's
//! nudge and staff alert are called off. Receipts are Stripe's event ids. Every other event
//! type, a session that did not come from a payment link and a link ARO does not know are
//! acknowledged (200) and change nothing, so Stripe stops retrying them.

use super::{
    Handled, Provider, apply, ensure_tenant, header_text, payload_error, raw_body, received,
    signature_error, signing_secret, tenant_from_path,
};
use crate::AppState;
use crate::auth::real_now_unix;
use aro_http::{ApiError, ApiPath};
use aro_integrations::stripe::webhook::{CheckoutSessionCompleted, Event, PaymentStatus};
use aro_security::signatures::stripe as signature;
use aro_workflow::bookings::{self, DepositPayment};
use axum::extract::{Request, State};
use axum::response::Response;

#[tracing::instrument(skip_all, fields(provider = "stripe"))]
pub async fn receive(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let tenant = tenant_from_path(&tenant)?;
    let secret = signing_secret(&state, &tenant, Provider::Stripe).await?;
    let header = header_text(request.headers(), signature::HEADER)
        .map(|h| h.map(str::to_owned))
        .map_err(|e| signature_error(Provider::Stripe, &tenant, e))?;
    let body = raw_body(request).await?;
    signature::verify(
        secret.expose(),
        &body,
        header.as_deref(),
        real_now_unix(),
        signature::DEFAULT_TOLERANCE_SECS,
    )
    .map_err(|e| signature_error(Provider::Stripe, &tenant, e))?;
    let event = Event::parse(&body).map_err(|e| payload_error(Provider::Stripe, &tenant, e))?;
    match event {
        Event::CheckoutSessionCompleted(completed) if completed.session.payment_link.is_some() => {
            let key = completed.id.clone();
            apply(&state, Provider::Stripe, &tenant, key, move |ctx| {
                Box::pin(async move { checkout_completed(ctx, completed).await })
            })
            .await?;
        }
        // A checkout that did not come from a payment link, or any other event type.
        _ => {
            ensure_tenant(&state, &tenant).await?;
            super::log(Provider::Stripe, &tenant, &Handled::Ignored, None);
        }
    }
    Ok(received())
}

async fn checkout_completed(
    ctx: &mut aro_workflow::Ctx<'_, '_>,
    completed: CheckoutSessionCompleted,
) -> aro_workflow::EngineResult<Handled> {
    let session = completed.session;
    let Some(link) = session.payment_link.as_deref() else {
        return Ok(Handled::Unchanged("not_a_payment_link"));
    };
    // A bank debit completes the checkout before the money arrives; a deposit counts as
    // paid only once it has.
    if !matches!(
        session.payment_status,
        PaymentStatus::Paid | PaymentStatus::NoPaymentRequired
    ) {
        return Ok(Handled::Unchanged("payment_pending"));
    }
    let outcome = bookings::record_deposit_paid(
        ctx,
        DepositPayment {
            payment_link_ref: link,
            provider_ref: &session.id,
            amount_minor: session.amount_total,
            currency: session.currency.as_deref(),
            link_id_hint: session.metadata.get("paymentLinkId").map(String::as_str),
        },
    )
    .await?;
    Ok(outcome.into())
}
