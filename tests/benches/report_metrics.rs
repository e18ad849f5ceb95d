//! How long `GET /v1/reports/metrics` takes to compute for a busy clinic's year, on SQLite: a
//! month's report and an all-time one, over an event log shaped like the real one (patient
//! fields encrypted in the payloads, so reading them costs what it costs in production).
//!
//!     cargo bench -p aro-tests --bench report_metrics
//!
//! Figures are recorded in docs/performance.md.

use aro_domain::EventType;
use aro_security::crypto::{Keyring, MasterKey};
use aro_store::{AggregateRef, EventMetadata, EventPii, NewEvent, Store};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

const TENANT: &str = "bench";
const DAYS: i64 = 365;
const VISITS_PER_DAY: i64 = 60;
const RUNS: usize = 3;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 13, 0, 0)
        .single()
        .expect("static time")
}

/// The events of one visit, in the order the engine writes them: booking, reminders, replies
/// for half, an outcome (one in ten a no-show, with its recovery text).
fn visit_events(n: i64) -> Vec<NewEvent> {
    let booked_at = start() + Duration::minutes(n * 24 * 60 / VISITS_PER_DAY);
    let apt = format!("apt_{n}");
    // 4,999 patients, so each comes back about every 83 days, not always on the same outcome.
    let customer = format!("cus_{}", n % 4_999);
    let appointment = json!({"id": apt, "customerId": customer, "status": "booked",
        "priceMinor": 12_000, "currency": "USD", "serviceType": "checkup"});
    let event = |kind: EventType, at: DateTime<Utc>, payload: Value, pii: Option<Value>| NewEvent {
        tenant_id: TENANT.into(),
        event_type: kind,
        aggregate: AggregateRef::new("appointment", &apt),
        occurred_at: at,
        profile: Some("healthcare".into()),
        payload,
        pii: pii.map(|fields| EventPii {
            subject_id: customer.clone(),
            fields,
        }),
        metadata: EventMetadata::default(),
    };
    let phone = json!({"to": "+14155552671"});
    let mut events = vec![event(
        EventType::AppointmentBooked,
        booked_at,
        json!({"appointment": appointment}),
        Some(json!({"customer": {"name": "Ada Lovelace", "phone": "+14155552671"}})),
    )];
    for (hours, purpose) in [(24, "reminder_48h"), (48, "reminder_24h")] {
        let at = booked_at + Duration::hours(hours);
        let message = json!({"appointmentId": apt, "customerId": customer, "purpose": purpose});
        events.push(event(
            EventType::MessageQueued,
            at,
            message.clone(),
            Some(json!({"body": "Demo Clinic: Hi Ada, see you Thu, Apr 4 at 10:00 AM. Reply C to confirm"})),
        ));
        events.push(event(
            EventType::MessageSent,
            at,
            message.clone(),
            Some(phone.clone()),
        ));
        events.push(event(EventType::MessageDelivered, at, message, None));
    }
    let later = booked_at + Duration::hours(50);
    if n % 2 == 0 {
        events.push(event(
            EventType::MessageReceived,
            later,
            json!({"appointmentId": apt, "customerId": customer}),
            Some(json!({"body": "C"})),
        ));
        events.push(event(
            EventType::AppointmentConfirmed,
            later,
            json!({"appointment": appointment}),
            None,
        ));
    }
    let outcome_at = booked_at + Duration::hours(75);
    if n % 10 == 0 {
        events.push(event(
            EventType::AppointmentNoShow,
            outcome_at,
            json!({"appointment": appointment}),
            None,
        ));
        events.push(event(
            EventType::MessageQueued,
            outcome_at,
            json!({"appointmentId": apt, "customerId": customer, "purpose": "no_show_recovery"}),
            Some(json!({"body": "Demo Clinic: we missed you. Rebook: https://example.org/r"})),
        ));
    } else {
        events.push(event(
            EventType::AppointmentCompleted,
            outcome_at,
            json!({"appointment": appointment}),
            None,
        ));
    }
    events
}

async fn seeded_sqlite() -> (Store, tempfile::TempDir, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let backend = aro_store_sqlite::SqliteBackend::open(
        aro_store_sqlite::SqliteSettings::from_url(&url, false).expect("url"),
    )
    .await
    .expect("open sqlite");
    let store = Store::new(Arc::new(backend), Keyring::new(MasterKey::generate()));
    store.migrate_up().await.expect("migrate");
    aro_store::contract::seed_tenant(&store, TENANT).await;
    let mut appended = 0;
    for chunk in (0..DAYS * VISITS_PER_DAY).collect::<Vec<_>>().chunks(200) {
        let events: Vec<NewEvent> = chunk.iter().flat_map(|n| visit_events(*n)).collect();
        appended += events.len();
        store
            .write(move |tx| {
                Box::pin(async move {
                    for e in events {
                        let at = e.occurred_at;
                        tx.append_event(e, at).await?;
                    }
                    Ok::<_, aro_store::StoreError>(())
                })
            })
            .await
            .expect("seed");
    }
    (store, dir, appended)
}

/// The median of `RUNS` computations, in milliseconds, and the last answer.
async fn time(store: &Store, from: Option<DateTime<Utc>>) -> (f64, aro_workflow::reports::Metrics) {
    let mut took = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let began = Instant::now();
        let m = aro_workflow::reports::metrics(store, TENANT, from, None)
            .await
            .expect("metrics");
        took.push(began.elapsed().as_secs_f64() * 1000.0);
        last = Some(m);
    }
    took.sort_by(f64::total_cmp);
    (took[RUNS / 2], last.expect("at least one run"))
}

/// The process's peak resident memory so far, in MiB (Linux; 0 elsewhere).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let (store, _dir, events) = seeded_sqlite().await;
    let visits = DAYS * VISITS_PER_DAY;
    println!("sqlite: {visits} visits, {events} events over {DAYS} days");
    let rss_seeded = peak_rss_mib();
    let last_month = start() + Duration::days(DAYS - 30);
    let (month_ms, month) = time(&store, Some(last_month)).await;
    println!(
        "last 30 days: {month_ms:>8.0} ms  ({} completed, {} recovered)",
        month.completed, month.recovered_visits
    );
    let (all_ms, all) = time(&store, None).await;
    println!(
        "all time:     {all_ms:>8.0} ms  ({} completed, {} no-shows)",
        all.completed, all.no_shows
    );
    println!(
        "peak RSS: {rss_seeded:.0} MiB after seeding, {:.0} MiB after the reports",
        peak_rss_mib()
    );
    store.close().await;
}
