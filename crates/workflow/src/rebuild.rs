//! `aro events rebuild`: the read models (appointments with their aliases, patients' details
//! and risk counters) recreated from the event log alone. Sends nothing: only read models are
//! written, never messages, timers or executions.

use crate::snapshot::{AppointmentSnapshot, CustomerSnapshot};
use aro_domain::ids::TenantId;
use aro_store::{EventQuery, Store, StoreError};
use serde_json::Value;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub events: u64,
    pub appointments: u64,
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
                            apply(
                                tx,
                                &tenant.id,
                                &event.event_type,
                                &event.payload,
                                &mut report,
                            )
                            .await?;
                        }
                    }
                }
                Ok(report)
            })
        })
        .await
}

async fn apply(
    tx: &mut aro_store::Tx<'_>,
    tenant: &TenantId,
    event_type: &str,
    payload: &Value,
    report: &mut RebuildReport,
) -> Result<(), StoreError> {
    if let Some(c) = payload
        .get("customer")
        .and_then(|c| serde_json::from_value::<CustomerSnapshot>(c.clone()).ok())
        && let Some(customer) = c.to_customer(tenant)
    {
        let exists = tx
            .get_customer(tenant.as_str(), customer.id.as_str())
            .await?
            .is_some();
        if exists {
            let mut kept = tx
                .get_customer(tenant.as_str(), customer.id.as_str())
                .await?
                .unwrap_or(customer.clone());
            kept.name = customer.name.clone().or(kept.name);
            kept.phone = customer.phone.clone().or(kept.phone);
            kept.email = customer.email.clone().or(kept.email);
            kept.zone = customer.zone.or(kept.zone);
            kept.language = customer.language.clone().or(kept.language);
            kept.updated_at = customer.updated_at;
            tx.update_customer(&kept, customer.updated_at).await?;
        } else {
            report.customers += 1;
        }
    }
    if event_type == "customer.risk_updated"
        && let Some(id) = payload.get("customerId").and_then(Value::as_str)
        && let Some(mut c) = tx.get_customer(tenant.as_str(), id).await?
    {
        c.risk_score = payload
            .get("riskScore")
            .and_then(Value::as_i64)
            .unwrap_or(0) as i32;
        c.no_show_count = payload
            .get("noShowCount")
            .and_then(Value::as_i64)
            .unwrap_or(0) as i32;
        if let Some(at) = payload
            .get("updatedAt")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
        {
            c.updated_at = at;
        }
        let at = c.updated_at;
        tx.update_customer(&c, at).await?;
    }
    if let Some(snapshot) = payload
        .get("appointment")
        .and_then(|a| serde_json::from_value::<AppointmentSnapshot>(a.clone()).ok())
        && let Some(a) = snapshot.to_appointment(tenant)
    {
        match tx.get_appointment(tenant.as_str(), a.id.as_str()).await? {
            Some(existing) => {
                tx.update_appointment(&a, existing.version).await?;
            }
            None => {
                tx.insert_appointment(&a).await?;
                report.appointments += 1;
            }
        }
    }
    Ok(())
}
