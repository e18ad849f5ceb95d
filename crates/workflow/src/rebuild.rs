//! `aro events rebuild`: the read models (appointments, their booking aliases, patients with
//! their details and risk counters) forgotten and recreated from the event log alone, in one
//! transaction. Sends nothing: only those read models are written, never messages, timers,
//! executions or events.
//!
//! What each event gives back: a `customer` snapshot (with its personal fields, opened with the
//! patient's data key) recreates the patient under the same id, hence the same data key, so
//! ciphertexts elsewhere keep opening; an erased patient's fields no longer open and stay absent.
//! `customer.risk_updated` sets the risk counters as the live engine computed them then (risk
//! fades with time, so recomputing today would not be identical). An `appointment` snapshot
//! writes the appointment as it was after the event; `aliasesAdded` its other identities.

use crate::snapshot::{ALIASES_ADDED, AliasSnapshot, AppointmentSnapshot, CustomerSnapshot};
use aro_domain::EventType;
use aro_domain::ids::TenantId;
use aro_store::{Event, EventQuery, Store, StoreError};
use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// Events read.
    pub events: u64,
    /// Appointments recreated.
    pub appointments: u64,
    /// Booking aliases recreated.
    pub aliases: u64,
    /// Patients recreated.
    pub customers: u64,
}

/// Replays every tenant's events into fresh read models, in one transaction.
pub async fn rebuild(store: &Store) -> Result<RebuildReport, StoreError> {
    store
        .write(|tx| {
            Box::pin(async move {
                let mut report = RebuildReport::default();
                tx.raw().clear_read_models().await?;
                let tenants = tx.list_tenants().await?;
                for tenant in tenants {
                    let mut after = 0;
                    loop {
                        let page = tx
                            .events(&EventQuery {
                                tenant_id: Some(tenant.id.to_string()),
                                after,
                                limit: 1000,
                                event_type: None,
                                aggregate_id: None,
                            })
                            .await?;
                        let Some(last) = page.last() else { break };
                        after = last.seq;
                        for event in page {
                            report.events += 1;
                            apply(tx, &tenant.id, &event, &mut report).await?;
                        }
                    }
                }
                Ok(report)
            })
        })
        .await
}

fn corrupt(event: &Event, what: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "event {} ({}): {what}",
        event.seq, event.event_type
    ))
}

/// One event's part of the read models. The patient first: their appointment references them.
async fn apply(
    tx: &mut aro_store::Tx<'_>,
    tenant: &TenantId,
    event: &Event,
    report: &mut RebuildReport,
) -> Result<(), StoreError> {
    let payload = &event.payload;
    if let Some(c) = payload.get("customer") {
        let snapshot: CustomerSnapshot = serde_json::from_value(c.clone())
            .map_err(|e| corrupt(event, &format!("customer: {e}")))?;
        let customer = snapshot
            .to_customer(tenant)
            .ok_or_else(|| corrupt(event, "customer: unreadable value"))?;
        if tx.restore_customer(&customer).await? {
            report.customers += 1;
        }
    }
    if event.event_type == EventType::CustomerRiskUpdated.as_str() {
        let id = payload
            .get("customerId")
            .and_then(Value::as_str)
            .ok_or_else(|| corrupt(event, "no customerId"))?;
        let number = |field: &str| {
            payload
                .get(field)
                .and_then(Value::as_i64)
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| corrupt(event, field))
        };
        let mut c = tx
            .get_customer(tenant.as_str(), id)
            .await?
            .ok_or_else(|| corrupt(event, "risk of a patient no event created"))?;
        c.risk_score = number("riskScore")?;
        c.no_show_count = number("noShowCount")?;
        if let Some(at) = payload
            .get("updatedAt")
            .and_then(|v| serde_json::from_value::<DateTime<Utc>>(v.clone()).ok())
        {
            c.updated_at = at;
        }
        tx.restore_customer(&c).await?;
    }
    if let Some(a) = payload.get("appointment") {
        let snapshot: AppointmentSnapshot = serde_json::from_value(a.clone())
            .map_err(|e| corrupt(event, &format!("appointment: {e}")))?;
        let a = snapshot
            .to_appointment(tenant)
            .ok_or_else(|| corrupt(event, "appointment: unreadable value"))?;
        match tx.get_appointment(tenant.as_str(), a.id.as_str()).await? {
            Some(existing) => {
                tx.update_appointment(&a, existing.version).await?;
            }
            None => {
                tx.insert_appointment(&a).await?;
                report.appointments += 1;
            }
        }
        if let Some(added) = payload.get(ALIASES_ADDED) {
            let added: Vec<AliasSnapshot> = serde_json::from_value(added.clone())
                .map_err(|e| corrupt(event, &format!("{ALIASES_ADDED}: {e}")))?;
            for alias in added {
                if tx
                    .add_appointment_alias(
                        tenant.as_str(),
                        &alias.source,
                        &alias.external_id,
                        a.id.as_str(),
                        alias.created_at,
                    )
                    .await?
                {
                    report.aliases += 1;
                }
            }
        }
    }
    Ok(())
}
