//! Consent to appointment texts, per tenant and number (family members share phones, so consent
//! belongs to the number, not the patient). Revoking withdraws every text to that number not yet
//! handed to the provider.

use crate::ctx::Ctx;
use crate::error::EngineResult;
use aro_domain::EventType;
use aro_domain::message::Channel;
use aro_domain::values::Phone;
use aro_store::engine_rows::ConsentRow;
use aro_store::{AggregateRef, EventPii};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentStatus {
    Granted,
    Revoked,
}

impl ConsentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Revoked => "revoked",
        }
    }
}

pub async fn current(ctx: &mut Ctx<'_, '_>, phone: &Phone) -> EngineResult<Option<ConsentStatus>> {
    let tenant = ctx.tenant_id().to_owned();
    let index = ctx.tx.phone_index(&tenant, phone);
    Ok(ctx
        .tx
        .raw()
        .get_consent(&tenant, &index, Channel::Sms.as_str())
        .await?
        .map(|c| {
            if c.status == "revoked" {
                ConsentStatus::Revoked
            } else {
                ConsentStatus::Granted
            }
        }))
}

/// Sets consent for a number; emits an event when it changes. Returns whether it changed.
pub async fn set(
    ctx: &mut Ctx<'_, '_>,
    phone: &Phone,
    customer_id: Option<&str>,
    status: ConsentStatus,
    source: &str,
) -> EngineResult<bool> {
    let tenant = ctx.tenant_id().to_owned();
    let index = ctx.tx.phone_index(&tenant, phone);
    let before = ctx
        .tx
        .raw()
        .get_consent(&tenant, &index, Channel::Sms.as_str())
        .await?;
    if before.as_ref().is_some_and(|c| c.status == status.as_str()) {
        return Ok(false);
    }
    ctx.tx
        .raw()
        .upsert_consent(&ConsentRow {
            tenant_id: tenant.clone(),
            phone_index: index.clone(),
            channel: Channel::Sms.as_str().into(),
            status: status.as_str().into(),
            source: source.to_owned(),
            updated_at: ctx.now,
        })
        .await?;
    let event_type = match status {
        ConsentStatus::Granted => EventType::ConsentGranted,
        ConsentStatus::Revoked => EventType::ConsentRevoked,
    };
    let aggregate = match customer_id {
        Some(c) => AggregateRef::new("customer", c),
        None => AggregateRef::new("consent", &index),
    };
    ctx.emit(
        event_type,
        aggregate,
        json!({"customerId": customer_id, "channel": "sms", "source": source, "phoneIndex": index}),
        customer_id.map(|c| EventPii {
            subject_id: c.to_owned(),
            fields: json!({"phone": phone.as_str()}),
        }),
    );
    if status == ConsentStatus::Revoked {
        withdraw_texts_to(ctx, &index).await?;
    }
    Ok(true)
}

/// Revokes consent for the number behind a blind index (a carrier opt-out reported on a send).
pub async fn revoke_by_index(
    ctx: &mut Ctx<'_, '_>,
    index: &str,
    customer_id: &str,
    source: &str,
) -> EngineResult<()> {
    let tenant = ctx.tenant_id().to_owned();
    let Some(customer) = ctx.tx.get_customer(&tenant, customer_id).await? else {
        return Ok(());
    };
    match customer.phone {
        Some(phone) if ctx.tx.phone_index(&tenant, &phone) == index => {
            set(
                ctx,
                &phone,
                Some(customer_id),
                ConsentStatus::Revoked,
                source,
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// Withdraws queued texts to everyone on this number.
async fn withdraw_texts_to(ctx: &mut Ctx<'_, '_>, index: &str) -> EngineResult<usize> {
    let tenant = ctx.tenant_id().to_owned();
    let customers = ctx
        .tx
        .raw()
        .customers_by_phone_index(&tenant, index)
        .await?;
    let mut withdrawn = 0;
    for customer in customers {
        withdrawn += crate::results::withdraw_open_texts(ctx, &customer.id, Some(index)).await?;
        let appointments = ctx
            .tx
            .raw()
            .appointments_for_customer(&tenant, &customer.id)
            .await?;
        for a in appointments {
            withdrawn += crate::results::withdraw_open_texts(ctx, &a.id, Some(index)).await?;
        }
    }
    Ok(withdrawn)
}
