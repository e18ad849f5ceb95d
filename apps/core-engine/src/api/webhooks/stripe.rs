//! `POST /v1/webhooks/stripe/{tenantId}`: a patient paid a deposit through one of ARO's
//! payment links — or tried to, with a bank debit that later failed.
//!
//! Three Checkout Session events are acted on, matched to our link by the session's
//! `payment_link`. A deposit counts as paid when the money has arrived, and not before:
//! - `checkout.session.completed` with `payment_status: paid` (a card): the link becomes `paid`,
//!   `payment.completed` is emitted and the deposit's nudge and staff alert are called off;
//! - `checkout.session.completed` with `unpaid` (a bank debit still processing): nothing yet
//!   (`payment_pending`);
//! - `checkout.session.async_payment_succeeded` (the debit arrived): as a paid completion;
//! - `checkout.session.async_payment_failed`: nothing is paid; it is logged by id, and the
//!   nudge and staff alert stay scheduled, so the patient is asked again and staff hear of it.
//!
//! Receipts are Stripe's event ids (each of a session's events has its own). Every other event
//! type, a session that did not come from a payment link and a link ARO does not know are
//! acknowledged (200) and change nothing, so Stripe stops retrying them.

use super::{
    Handled, Provider, apply, ensure_tenant, header_text, payload_error, raw_body, received,
    signature_error, signing_secret, tenant_from_path,
};
use crate::AppState;
use crate::auth::real_now_unix;
use aro_http::{ApiError, ApiPath};
use aro_integrations::stripe::webhook::{
    CheckoutSessionEvent, CheckoutSessionEventKind, Event, PaymentStatus,
};
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
        Event::CheckoutSession(checkout) if checkout.session.payment_link.is_some() => {
            let key = checkout.id.clone();
            apply(&state, Provider::Stripe, &tenant, key, move |ctx| {
                Box::pin(async move {
                    match checkout.kind {
                        CheckoutSessionEventKind::Completed
                        | CheckoutSessionEventKind::AsyncPaymentSucceeded => {
                            deposit_paid(ctx, checkout).await
                        }
                        CheckoutSessionEventKind::AsyncPaymentFailed => {
                            deposit_payment_failed(ctx, checkout).await
                        }
                    }
                })
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

/// A completed checkout or an arrived asynchronous payment: the deposit is paid once the
/// session says the money is there.
async fn deposit_paid(
    ctx: &mut aro_workflow::Ctx<'_, '_>,
    checkout: CheckoutSessionEvent,
) -> aro_workflow::EngineResult<Handled> {
    let session = checkout.session;
    let Some(link) = session.payment_link.as_deref() else {
        return Ok(Handled::Unchanged("not_a_payment_link"));
    };
    // A bank debit completes the checkout before the money arrives; a deposit counts as
    // paid only once it has (`async_payment_succeeded`, which says `paid`).
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

/// A bank debit that failed: nothing was paid, so nothing changes. The link stays payable and
/// the deposit's nudge and staff alert stay scheduled, which is how the patient and staff hear
/// of it; the failure itself is only logged, by id.
async fn deposit_payment_failed(
    ctx: &mut aro_workflow::Ctx<'_, '_>,
    checkout: CheckoutSessionEvent,
) -> aro_workflow::EngineResult<Handled> {
    let session = checkout.session;
    let Some(link_ref) = session.payment_link.as_deref() else {
        return Ok(Handled::Unchanged("not_a_payment_link"));
    };
    let tenant = ctx.tenant_id().to_owned();
    let mut link = ctx
        .tx
        .raw()
        .payment_link_by_provider_ref(&tenant, link_ref)
        .await?;
    // As when paying: a link whose creation result has not been reported yet is found by the
    // id ARO put in its metadata.
    if link.is_none()
        && let Some(hint) = session.metadata.get("paymentLinkId")
    {
        link = ctx
            .tx
            .raw()
            .get_payment_link(&tenant, hint)
            .await?
            .filter(|l| l.provider_ref.is_none());
    }
    let Some(link) = link else {
        return Ok(Handled::Unchanged("unknown_payment_link"));
    };
    // Another checkout of the same link may have been paid meanwhile (by card).
    if link.status == "paid" {
        return Ok(Handled::Unchanged("already_paid"));
    }
    tracing::info!(
        tenant = %tenant,
        payment_link = %link.id,
        appointment = link.appointment_id.as_deref(),
        session = %session.id,
        event = %checkout.id,
        "a deposit's bank debit failed: the link stays unpaid, its nudge and staff alert stay scheduled"
    );
    Ok(Handled::Unchanged("payment_failed"))
}
