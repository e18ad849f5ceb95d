//! Determinism of the event log, on both engines: random sequences of valid and invalid
//! commands (bookings and their provider moves with `previousExternalId`, reschedules naming a
//! new identity, outcomes, changes of the clinic's configuration, patients' changing details),
//! interleaved with business time passing and some patients erased, lead to a state that
//! `rebuild` recreates identically from the event log alone — into emptied appointment, alias
//! and patient tables — while sending, scheduling and appending nothing.

mod support;

use aro_store::Store;
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use support::*;

#[derive(Debug, Clone)]
enum When {
    HoursAhead(i64),
    /// The visit's current time: a provider's move that keeps the time (a new identity only).
    Same,
}

#[derive(Debug, Clone)]
enum Op {
    /// `appointment.upsert` of identity `EXT-{ext}`, moved from `EXT-{previous}` when given.
    Book {
        ext: u8,
        previous: Option<u8>,
        patient: u8,
        email: Option<u8>,
        when: When,
    },
    /// `appointment.reschedule` of the visit known as `EXT-{visit}`, naming a new identity.
    Reschedule {
        visit: u8,
        hours_ahead: i64,
        new_external: Option<u8>,
    },
    Confirm(u8),
    Cancel(u8),
    CheckIn(u8),
    Complete(u8),
    NoShow(u8),
    Config(u8),
    Advance(i64),
}

const IDENTITIES: u8 = 8;

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        3 => (3i64..120).prop_map(When::HoursAhead),
        1 => Just(When::Same),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let id = || 0u8..IDENTITIES;
    prop_oneof![
        4 => (id(), prop::option::weighted(0.4, id()), 0u8..3, prop::option::weighted(0.3, 0u8..2), when())
            .prop_map(|(ext, previous, patient, email, when)| Op::Book { ext, previous, patient, email, when }),
        1 => (id(), 3i64..120, prop::option::of(id()))
            .prop_map(|(visit, hours_ahead, new_external)| Op::Reschedule { visit, hours_ahead, new_external }),
        1 => id().prop_map(Op::Confirm),
        1 => id().prop_map(Op::Cancel),
        1 => id().prop_map(Op::CheckIn),
        1 => id().prop_map(Op::Complete),
        1 => id().prop_map(Op::NoShow),
        1 => (0u8..3).prop_map(Op::Config),
        2 => (1i64..60).prop_map(Op::Advance),
    ]
}

const PATIENTS: [(&str, &str); 3] = [
    ("Ada Lovelace", "+14155552671"),
    ("Grace Hopper", "+14155552672"),
    ("Alan Lovelace", "+14155552671"),
];

fn identity(n: u8) -> String {
    format!("EXT-{n}")
}

/// The appointment currently known by a booking identity (its own or an alias).
async fn by_identity(
    store: &Store,
    external: &str,
) -> Option<aro_domain::appointment::Appointment> {
    let external = external.to_owned();
    store
        .read(move |tx| {
            Box::pin(async move {
                tx.appointment_by_external("default", "calendly", &external)
                    .await
            })
        })
        .await
        .unwrap()
}

/// The clinic's configuration, in three variants: reminder offsets, risk threshold, the
/// correction window and the price mapping of a service differ.
fn config(variant: u8) -> Value {
    let mut c = test_config();
    match variant {
        1 => {
            c["policies"]["reminderOffsetsHours"] = json!([24]);
            c["policies"]["highRiskThreshold"] = json!(20);
            c["mappings"]["eventTypes"]["checkup"]["priceMinor"] = json!(9000);
        }
        2 => {
            c["policies"]["reminderOffsetsHours"] = json!([72, 2]);
            c["policies"]["correctionWindowHours"] = json!(24);
            c["mappings"] = json!({"eventTypes": {}});
        }
        _ => {}
    }
    c
}

/// Applies one operation; `with_email` is false once patients have been erased (see
/// [`run`]).
async fn apply(h: &Harness, op: &Op, with_email: bool) {
    let transition = |kind: &str, id: String| {
        (
            kind.to_owned(),
            json!({"type": "appointment", "id": id}),
            Value::Null,
        )
    };
    let visit = |n: u8| async move { by_identity(&h.store, &identity(n)).await };
    let command = match op {
        Op::Book {
            ext,
            previous,
            patient,
            email,
            when,
        } => {
            let (name, phone) = PATIENTS[*patient as usize];
            let (starts, ends) = match when {
                When::HoursAhead(hours) => {
                    let starts = h.engine.clock().now() + Duration::hours(*hours);
                    (starts, starts + Duration::minutes(30))
                }
                When::Same => match visit(previous.unwrap_or(*ext)).await {
                    Some(a) => (a.starts_at, a.ends_at),
                    None => return,
                },
            };
            let mut payload = booking(&identity(*ext), name, phone, starts);
            payload["endsAt"] = json!(ends);
            if let Some(previous) = previous {
                payload["previousExternalId"] = json!(identity(*previous));
            }
            if let Some(e) = email.filter(|_| with_email) {
                payload["customer"]["email"] = json!(format!("patient{patient}-{e}@example.org"));
            }
            (
                "appointment.upsert".to_owned(),
                json!({"type": "appointment"}),
                payload,
            )
        }
        Op::Reschedule {
            visit: v,
            hours_ahead,
            new_external,
        } => {
            let Some(a) = visit(*v).await else { return };
            let starts = h.engine.clock().now() + Duration::hours(*hours_ahead);
            let mut payload = json!({"startsAt": starts, "endsAt": starts + Duration::minutes(45)});
            if let Some(n) = new_external {
                payload["externalId"] = json!(identity(*n));
            }
            (
                "appointment.reschedule".to_owned(),
                json!({"type": "appointment", "id": a.id}),
                payload,
            )
        }
        Op::Confirm(v) | Op::Cancel(v) | Op::CheckIn(v) | Op::Complete(v) | Op::NoShow(v) => {
            let Some(a) = visit(*v).await else { return };
            let kind = match op {
                Op::Confirm(_) => "appointment.confirm",
                Op::Cancel(_) => "appointment.cancel",
                Op::CheckIn(_) => "appointment.check_in",
                Op::Complete(_) => "appointment.mark_completed",
                _ => "appointment.mark_no_show",
            };
            transition(kind, a.id.to_string())
        }
        Op::Config(variant) => (
            "tenant.update_config".to_owned(),
            json!({"type": "tenant", "id": "default"}),
            config(*variant),
        ),
        Op::Advance(hours) => {
            h.advance(Duration::hours(*hours)).await;
            return;
        }
    };
    let answer = h.command(&command.0, command.1, command.2).await;
    assert!(answer.status < 500, "{op:?}: {}", answer.body);
}

/// The read models `rebuild` recreates, patients decrypted, in a comparable form.
async fn read_models(store: &Store) -> Value {
    store
        .read(|tx| {
            Box::pin(async move {
                let rows = tx.raw().all_appointments("default").await?;
                let mut appointments = BTreeMap::new();
                let mut customers = BTreeMap::new();
                for row in rows {
                    let a = tx.get_appointment("default", &row.id).await?.unwrap();
                    if let Some(c) = tx.get_customer("default", a.customer_id.as_str()).await? {
                        customers.insert(c.id.to_string(), serde_json::to_value(&c).unwrap());
                    }
                    appointments.insert(a.id.to_string(), serde_json::to_value(&a).unwrap());
                }
                let aliases: Vec<Value> = tx
                    .raw()
                    .all_aliases("default")
                    .await?
                    .into_iter()
                    .map(|r| {
                        json!([r.source, r.external_id, r.appointment_id, r.created_at.to_rfc3339()])
                    })
                    .collect();
                Ok::<_, aro_store::StoreError>(
                    json!({"appointments": appointments, "customers": customers, "aliases": aliases}),
                )
            })
        })
        .await
        .unwrap()
}

/// Everything a rebuild must leave alone: what was sent or is to be sent (messages,
/// executions, reminders, timers, workflows) and the log itself.
async fn side_effects(store: &Store, appointment_ids: Vec<String>) -> Value {
    store
        .read(move |tx| {
            Box::pin(async move {
                let mut per_visit = BTreeMap::new();
                for id in appointment_ids {
                    let raw = tx.raw();
                    let messages: Vec<_> = raw
                        .messages_for_appointment("default", &id)
                        .await?
                        .into_iter()
                        .map(|m| json!([m.id, m.status, m.updated_at]))
                        .collect();
                    let executions: Vec<_> = raw
                        .open_executions_for_aggregate("default", &id)
                        .await?
                        .into_iter()
                        .map(|e| json!([e.id, e.status, e.updated_at]))
                        .collect();
                    let reminders: Vec<_> = raw
                        .reminder_logs_for_appointment("default", &id)
                        .await?
                        .into_iter()
                        .map(|r| json!([r.id, r.status, r.updated_at]))
                        .collect();
                    let timers: Vec<_> = raw
                        .pending_timers_for_aggregate("default", &id)
                        .await?
                        .into_iter()
                        .map(|t| json!([t.id, t.due_at]))
                        .collect();
                    let workflows: Vec<_> = raw
                        .workflows_for_aggregate("default", &id)
                        .await?
                        .into_iter()
                        .map(|w| json!([w.id, w.state, w.updated_at]))
                        .collect();
                    per_visit.insert(
                        id,
                        json!({"messages": messages, "executions": executions,
                               "reminders": reminders, "timers": timers, "workflows": workflows}),
                    );
                }
                let far: DateTime<Utc> = start_time() + Duration::days(3650);
                Ok::<_, aro_store::StoreError>(json!({
                    "perVisit": per_visit,
                    "openExecutions": tx.raw().count_open_executions().await?,
                    "pendingTimers": tx.raw().count_pending_timers(far).await?,
                    "maxSeq": tx.max_seq().await?,
                }))
            })
        })
        .await
        .unwrap()
}

/// Crypto-shreds the patients picked by `picks` (indexes into the patients, in id order);
/// returns their ids.
async fn erase(store: &Store, picks: &[u8]) -> Vec<String> {
    let models = read_models(store).await;
    let ids: Vec<String> = models["customers"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    if ids.is_empty() {
        return Vec::new();
    }
    let mut erased = Vec::new();
    for pick in picks {
        let id = ids[*pick as usize % ids.len()].clone();
        erased.push(id.clone());
        store
            .write(move |tx| Box::pin(async move { tx.erase_subject("default", &id).await }))
            .await
            .unwrap();
    }
    erased
}

async fn run(h: Harness, ops: Vec<Op>, erased: Vec<u8>, after: Vec<Op>) {
    for op in &ops {
        apply(&h, op, true).await;
    }
    // Erased patients stay erased: later bookings bring no new personal data for them (a
    // vault without erasure tombstones would seal it under a fresh key).
    let erased_ids = erase(&h.store, &erased).await;
    for op in &after {
        apply(&h, op, false).await;
    }

    let before = read_models(&h.store).await;
    let visits: Vec<String> = before["appointments"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let effects_before = side_effects(&h.store, visits.clone()).await;

    // The tables a rebuild recreates, emptied first.
    h.store
        .write(|tx| Box::pin(async move { tx.raw().clear_read_models().await }))
        .await
        .unwrap();
    let emptied = read_models(&h.store).await;
    assert_eq!(
        emptied,
        json!({"appointments": {}, "customers": {}, "aliases": []})
    );
    for id in before["customers"].as_object().unwrap().keys() {
        let id = id.clone();
        let gone = h
            .store
            .read(move |tx| Box::pin(async move { tx.get_customer("default", &id).await }))
            .await
            .unwrap();
        assert!(gone.is_none(), "the patient table was emptied");
    }

    let report = aro_workflow::rebuild::rebuild(&h.store).await.unwrap();
    let after_rebuild = read_models(&h.store).await;
    assert_eq!(
        before, after_rebuild,
        "ops: {ops:?}, erased: {erased:?}, after: {after:?}"
    );
    for id in &erased_ids {
        let c = &after_rebuild["customers"][id];
        assert_eq!(
            (&c["name"], &c["phone"], &c["email"]),
            (&Value::Null, &Value::Null, &Value::Null),
            "an erased patient stays erased"
        );
    }
    assert_eq!(report.appointments as usize, visits.len());
    assert_eq!(
        report.customers as usize,
        before["customers"].as_object().unwrap().len()
    );
    assert_eq!(
        report.aliases as usize,
        before["aliases"].as_array().unwrap().len()
    );
    assert_eq!(
        side_effects(&h.store, visits).await,
        effects_before,
        "a rebuild sends, schedules and appends nothing"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, max_shrink_iters: 40, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_rebuilding_from_the_event_log_recreates_the_same_state(
        ops in prop::collection::vec(op(), 1..24),
        erased in prop::collection::vec(0u8..4, 0..2),
        after in prop::collection::vec(op(), 0..6),
    ) {
        runtime().block_on(async {
            run(Harness::sqlite().await, ops, erased, after).await;
        });
    }
}

proptest! {
    // Each case is a fresh PostgreSQL database: fewer cases.
    #![proptest_config(ProptestConfig { cases: 12, max_shrink_iters: 20, ..ProptestConfig::default() })]

    #[test]
    fn postgres_rebuilding_from_the_event_log_recreates_the_same_state(
        ops in prop::collection::vec(op(), 1..24),
        erased in prop::collection::vec(0u8..4, 0..2),
        after in prop::collection::vec(op(), 0..6),
    ) {
        runtime().block_on(async {
            let Some(h) = Harness::postgres().await else { return };
            run(h, ops, erased, after).await;
        });
    }
}

/// The audit's case: a provider moves a booking to a new identity (keeping its time, so the move
/// is the whole change, and changing it); after a rebuild the new identity still finds the same
/// visit, so a repeat of the provider's message books nothing new and plans no second reminders.
async fn a_moved_booking_keeps_its_identities(h: Harness) {
    let starts = h.engine.clock().now() + Duration::hours(72);
    let first = h.book("INV-OLD", "Ada Lovelace", "+14155552671", 72).await;
    for (external, previous, at) in [
        ("INV-NEW", "INV-OLD", starts),
        ("INV-NEWER", "INV-NEW", starts + Duration::hours(1)),
    ] {
        let mut moved = booking(external, "Ada Lovelace", "+14155552671", at);
        moved["previousExternalId"] = json!(previous);
        let answer = h
            .command("appointment.upsert", json!({"type": "appointment"}), moved)
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["aggregate"]["id"], json!(first));
    }
    let aliases = || async {
        read_models(&h.store).await["aliases"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(aliases().await, 2);
    let reminders = |id: String| async {
        h.store
            .read(move |tx| {
                Box::pin(
                    async move { tx.raw().reminder_logs_for_appointment("default", &id).await },
                )
            })
            .await
            .unwrap()
            .len()
    };
    let planned = reminders(first.clone()).await;

    let report = aro_workflow::rebuild::rebuild(&h.store).await.unwrap();
    assert_eq!(
        (report.appointments, report.aliases, report.customers),
        (1, 2, 1)
    );
    assert_eq!(aliases().await, 2);

    for external in ["INV-OLD", "INV-NEW", "INV-NEWER"] {
        let again = booking(
            external,
            "Ada Lovelace",
            "+14155552671",
            starts + Duration::hours(1),
        );
        let answer = h
            .command("appointment.upsert", json!({"type": "appointment"}), again)
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["aggregate"]["id"], json!(first), "{external}");
    }
    let models = read_models(&h.store).await;
    assert_eq!(models["appointments"].as_object().unwrap().len(), 1);
    assert_eq!(
        reminders(first).await,
        planned,
        "no second set of reminders"
    );
}

#[test]
fn sqlite_a_moved_booking_keeps_its_identities() {
    runtime()
        .block_on(async { a_moved_booking_keeps_its_identities(Harness::sqlite().await).await });
}

#[test]
fn postgres_a_moved_booking_keeps_its_identities() {
    runtime().block_on(async {
        if let Some(h) = Harness::postgres().await {
            a_moved_booking_keeps_its_identities(h).await;
        }
    });
}
