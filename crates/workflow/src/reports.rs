//! Clinic metrics from the event log alone (GET /v1/reports/metrics): what a clinic buys ARO
//! for, per period. Definitions (docs/flows.md has them for clinics):
//! - confirmation rate: visits confirmed ÷ visits reminded; response rate: visits whose patient
//!   replied ÷ visits reminded (both within the period);
//! - no-show rate: no-shows ÷ (completed + no-shows), each visit counted by its last outcome
//!   in the period;
//! - recovered visits: completed visits that were rescheduled rather than lost, or booked by a
//!   patient after a no-show recovery text; recovered revenue is their price (from the pack's
//!   mappings at booking time).

use aro_store::{EventQuery, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub appointments_booked: u64,
    pub reminders_sent: u64,
    pub appointments_reminded: u64,
    pub confirmed: u64,
    pub confirmation_rate: f64,
    pub responded: u64,
    pub response_rate: f64,
    pub completed: u64,
    pub no_shows: u64,
    pub no_show_rate: f64,
    pub cancellations: u64,
    pub cancel_requests: u64,
    pub reschedules: u64,
    pub recovered_visits: u64,
    /// Minor units per currency.
    pub recovered_revenue: BTreeMap<String, i64>,
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub messages_failed: u64,
    pub escalations_opened: u64,
    pub review_requests: u64,
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        ((n as f64 / d as f64) * 10_000.0).round() / 10_000.0
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str()
}

pub async fn metrics(
    store: &Store,
    tenant: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Metrics, StoreError> {
    let tenant = tenant.to_owned();
    let events = store
        .read(move |tx| {
            Box::pin(async move {
                let mut all = Vec::new();
                let mut after = 0;
                loop {
                    let page = tx
                        .events(&EventQuery {
                            tenant_id: Some(tenant.clone()),
                            after,
                            limit: 1000,
                            event_type: None,
                            aggregate_id: None,
                        })
                        .await?;
                    let Some(last) = page.last() else { break };
                    after = last.seq;
                    all.extend(page);
                }
                Ok::<_, StoreError>(all)
            })
        })
        .await?;
    let in_period = |t: DateTime<Utc>| from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e);
    let mut m = Metrics {
        from,
        to,
        ..Metrics::default()
    };
    let mut reminded = HashSet::new();
    let mut confirmed = HashSet::new();
    let mut responded = HashSet::new();
    let mut outcome: HashMap<String, (String, Value)> = HashMap::new();
    let mut rescheduled = HashSet::new();
    let mut recovery_texted: HashSet<String> = HashSet::new();
    let mut booked_after_recovery = HashSet::new();
    for e in &events {
        let apt = str_at(&e.payload, &["appointment", "id"])
            .or_else(|| str_at(&e.payload, &["appointmentId"]))
            .map(str::to_owned);
        let customer = str_at(&e.payload, &["appointment", "customerId"])
            .or_else(|| str_at(&e.payload, &["customerId"]))
            .map(str::to_owned);
        // History before the period still decides what counts as recovered.
        match e.event_type.as_str() {
            "message.queued" if str_at(&e.payload, &["purpose"]) == Some("no_show_recovery") => {
                if let Some(c) = &customer {
                    recovery_texted.insert(c.clone());
                }
            }
            "appointment.booked" => {
                if let (Some(a), Some(c)) = (&apt, &customer)
                    && recovery_texted.contains(c)
                {
                    booked_after_recovery.insert(a.clone());
                }
            }
            "appointment.rescheduled" => {
                if let Some(a) = &apt {
                    rescheduled.insert(a.clone());
                }
            }
            _ => {}
        }
        if !in_period(e.occurred_at) {
            continue;
        }
        match e.event_type.as_str() {
            "appointment.booked" => m.appointments_booked += 1,
            "appointment.confirmed" => {
                if let Some(a) = apt {
                    confirmed.insert(a);
                }
            }
            "appointment.cancelled" => m.cancellations += 1,
            "appointment.cancel_requested" => m.cancel_requests += 1,
            "appointment.rescheduled" => m.reschedules += 1,
            "appointment.completed" | "appointment.no_show" => {
                if let Some(a) = apt {
                    outcome.insert(a, (e.event_type.clone(), e.payload.clone()));
                }
            }
            "message.sent" => {
                m.messages_sent += 1;
                if str_at(&e.payload, &["purpose"]).is_some_and(|p| p.starts_with("reminder_")) {
                    m.reminders_sent += 1;
                    if let Some(a) = apt {
                        reminded.insert(a);
                    }
                }
            }
            "message.delivered" => m.messages_delivered += 1,
            "message.delivery_failed" => m.messages_failed += 1,
            "message.received" => {
                if let Some(a) = apt {
                    responded.insert(a);
                }
            }
            "escalation.opened" => m.escalations_opened += 1,
            "review.requested" => m.review_requests += 1,
            _ => {}
        }
    }
    m.appointments_reminded = reminded.len() as u64;
    m.confirmed = confirmed.len() as u64;
    m.responded = responded.len() as u64;
    m.confirmation_rate = ratio(
        confirmed.iter().filter(|a| reminded.contains(*a)).count() as u64,
        m.appointments_reminded,
    );
    m.response_rate = ratio(
        responded.iter().filter(|a| reminded.contains(*a)).count() as u64,
        m.appointments_reminded,
    );
    for (apt, (kind, payload)) in &outcome {
        if kind == "appointment.completed" {
            m.completed += 1;
            if rescheduled.contains(apt) || booked_after_recovery.contains(apt) {
                m.recovered_visits += 1;
                if let (Some(minor), Some(currency)) = (
                    payload
                        .pointer("/appointment/priceMinor")
                        .and_then(Value::as_i64),
                    str_at(payload, &["appointment", "currency"]),
                ) {
                    *m.recovered_revenue.entry(currency.to_owned()).or_default() += minor;
                }
            }
        } else {
            m.no_shows += 1;
        }
    }
    m.no_show_rate = ratio(m.no_shows, m.completed + m.no_shows);
    Ok(m)
}
