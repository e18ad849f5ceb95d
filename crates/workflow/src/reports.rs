//! Clinic metrics from the event log alone (GET /v1/reports/metrics): what a clinic buys ARO
//! for, per period. Definitions (docs/flows.md has them for clinics):
//! - confirmation rate: visits confirmed ÷ visits reminded; response rate: visits whose patient
//!   replied ÷ visits reminded (both within the period);
//! - no-show rate: no-shows ÷ (completed + no-shows), each visit counted by its last outcome
//!   in the period;
//! - recovered visits: completed visits that were rescheduled rather than lost, or that are the
//!   patient's first booking after a no-show recovery text (later visits are the patient's
//!   own, not the text's); recovered revenue is their price (from the pack's mappings at
//!   booking time).
//!
//! Cost: the period is read from its first event on (the `(tenant_id, occurred_at)` index finds
//! it); before it, only the three event types that attribute recoveries, through the
//! `(tenant_id, event_type, seq)` index. Events are handled a page at a time, so memory follows
//! the tenant's appointments, not the length of its log.

use aro_store::{Event, EventQuery, Store, StoreError, Tx};
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

/// The event types that decide, from before a period, whether a visit in it was recovered.
const HISTORY_TYPES: [&str; 3] = [
    "message.queued",
    "appointment.booked",
    "appointment.rescheduled",
];

/// One page of a scan; each page is handled and dropped before the next is read, so memory
/// grows with the tenant's appointments, not with its event log.
const PAGE: u32 = 1000;

pub async fn metrics(
    store: &Store,
    tenant: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Metrics, StoreError> {
    let tenant = tenant.to_owned();
    let tally = store
        .read(move |tx| {
            Box::pin(async move {
                let mut tally = Tally::new(from, to);
                // Every event of the period comes after this seq; before it, only the three
                // types that attribute recoveries are read, through their (tenant, type, seq)
                // index, instead of the whole log.
                let start = match from {
                    Some(from) => tx.seq_before_time(&tenant, from).await?,
                    None => 0,
                };
                if start > 0 {
                    for event_type in HISTORY_TYPES {
                        scan(tx, &tenant, Some(event_type), 0, Some(start), |e| {
                            tally.history(e)
                        })
                        .await?;
                    }
                }
                scan(tx, &tenant, None, start, None, |e| {
                    tally.history(e);
                    tally.observe(e);
                })
                .await?;
                Ok::<_, StoreError>(tally)
            })
        })
        .await?;
    Ok(tally.finish())
}

/// Feeds `each` the tenant's events after `after` (and up to `until`), in seq order.
async fn scan(
    tx: &mut Tx<'_>,
    tenant: &str,
    event_type: Option<&str>,
    after: i64,
    until: Option<i64>,
    mut each: impl FnMut(&Event),
) -> Result<(), StoreError> {
    let mut after = after;
    loop {
        // Counting needs no patient field: nothing is decrypted.
        let page = tx
            .events_without_pii(&EventQuery {
                tenant_id: Some(tenant.to_owned()),
                after,
                limit: PAGE,
                event_type: event_type.map(str::to_owned),
                aggregate_id: None,
            })
            .await?;
        let Some(last) = page.last().map(|e| e.seq) else {
            return Ok(());
        };
        for event in page.iter().filter(|e| until.is_none_or(|u| e.seq <= u)) {
            each(event);
        }
        if until.is_some_and(|u| last >= u) || page.len() < PAGE as usize {
            return Ok(());
        }
        after = last;
    }
}

/// The running count. History (any time) decides attribution; only events inside the period
/// are counted.
struct Tally {
    m: Metrics,
    reminded: HashSet<String>,
    confirmed: HashSet<String>,
    responded: HashSet<String>,
    /// Each visit's last outcome in the period.
    outcome: HashMap<String, (String, Value)>,
    rescheduled: HashSet<String>,
    /// The seqs of each patient's no-show recovery texts.
    recoveries: HashMap<String, Vec<i64>>,
    /// Each patient's bookings: (seq, visit).
    bookings: HashMap<String, Vec<(i64, String)>>,
}

impl Tally {
    fn new(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Self {
        Self {
            m: Metrics {
                from,
                to,
                ..Metrics::default()
            },
            reminded: HashSet::new(),
            confirmed: HashSet::new(),
            responded: HashSet::new(),
            outcome: HashMap::new(),
            rescheduled: HashSet::new(),
            recoveries: HashMap::new(),
            bookings: HashMap::new(),
        }
    }

    fn in_period(&self, t: DateTime<Utc>) -> bool {
        self.m.from.is_none_or(|f| t >= f) && self.m.to.is_none_or(|e| t < e)
    }

    /// What an event says about recoveries, whenever it happened. Seen at most once per event
    /// (the history pass stops where the period pass starts).
    fn history(&mut self, e: &Event) {
        match e.event_type.as_str() {
            "message.queued" if str_at(&e.payload, &["purpose"]) == Some("no_show_recovery") => {
                if let Some(c) = customer_of(e) {
                    self.recoveries.entry(c.to_owned()).or_default().push(e.seq);
                }
            }
            "appointment.booked" => {
                if let (Some(a), Some(c)) = (appointment_of(e), customer_of(e)) {
                    self.bookings
                        .entry(c.to_owned())
                        .or_default()
                        .push((e.seq, a.to_owned()));
                }
            }
            "appointment.rescheduled" => {
                if let Some(a) = appointment_of(e) {
                    self.rescheduled.insert(a.to_owned());
                }
            }
            _ => {}
        }
    }

    /// Counts an event of the period.
    fn observe(&mut self, e: &Event) {
        if !self.in_period(e.occurred_at) {
            return;
        }
        let apt = appointment_of(e).map(str::to_owned);
        let m = &mut self.m;
        match e.event_type.as_str() {
            "appointment.booked" => m.appointments_booked += 1,
            "appointment.confirmed" => {
                if let Some(a) = apt {
                    self.confirmed.insert(a);
                }
            }
            "appointment.cancelled" => m.cancellations += 1,
            "appointment.cancel_requested" => m.cancel_requests += 1,
            "appointment.rescheduled" => m.reschedules += 1,
            "appointment.completed" | "appointment.no_show" => {
                if let Some(a) = apt {
                    self.outcome
                        .insert(a, (e.event_type.clone(), e.payload.clone()));
                }
            }
            "message.sent" => {
                m.messages_sent += 1;
                if str_at(&e.payload, &["purpose"]).is_some_and(|p| p.starts_with("reminder_")) {
                    m.reminders_sent += 1;
                    if let Some(a) = apt {
                        self.reminded.insert(a);
                    }
                }
            }
            "message.delivered" => m.messages_delivered += 1,
            "message.delivery_failed" => m.messages_failed += 1,
            "message.received" => {
                if let Some(a) = apt {
                    self.responded.insert(a);
                }
            }
            "escalation.opened" => m.escalations_opened += 1,
            "review.requested" => m.review_requests += 1,
            _ => {}
        }
    }

    /// The visits booked in answer to a recovery text: each text's patient's first booking
    /// after it. (The passes may see a patient's events out of seq order, hence the sort.)
    fn booked_after_recovery(&mut self) -> HashSet<String> {
        let mut answered = HashSet::new();
        for (customer, texts) in &self.recoveries {
            let Some(bookings) = self.bookings.get_mut(customer) else {
                continue;
            };
            bookings.sort_unstable();
            for texted_at in texts {
                let next = bookings.partition_point(|(booked_at, _)| booked_at <= texted_at);
                if let Some((_, visit)) = bookings.get(next) {
                    answered.insert(visit.clone());
                }
            }
        }
        answered
    }

    fn finish(mut self) -> Metrics {
        let booked_after_recovery = self.booked_after_recovery();
        let mut m = self.m.clone();
        m.appointments_reminded = self.reminded.len() as u64;
        m.confirmed = self.confirmed.len() as u64;
        m.responded = self.responded.len() as u64;
        m.confirmation_rate = ratio(
            self.confirmed.intersection(&self.reminded).count() as u64,
            m.appointments_reminded,
        );
        m.response_rate = ratio(
            self.responded.intersection(&self.reminded).count() as u64,
            m.appointments_reminded,
        );
        for (apt, (kind, payload)) in &self.outcome {
            if kind != "appointment.completed" {
                m.no_shows += 1;
                continue;
            }
            m.completed += 1;
            if self.rescheduled.contains(apt) || booked_after_recovery.contains(apt) {
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
        }
        m.no_show_rate = ratio(m.no_shows, m.completed + m.no_shows);
        m
    }
}

fn appointment_of(e: &Event) -> Option<&str> {
    str_at(&e.payload, &["appointment", "id"]).or_else(|| str_at(&e.payload, &["appointmentId"]))
}

fn customer_of(e: &Event) -> Option<&str> {
    str_at(&e.payload, &["appointment", "customerId"])
        .or_else(|| str_at(&e.payload, &["customerId"]))
}
