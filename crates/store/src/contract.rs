//! The storage contract, one suite run against every engine (`contract_tests!` in each engine's
//! tests). Each check takes a freshly migrated, empty store.

use crate::{AggregateRef, EventMetadata, EventPii, EventQuery, NewEvent, Store, StoreError};
use aro_domain::EventType;
use aro_domain::appointment::{Appointment, AppointmentStatus};
use aro_domain::customer::CustomerDetails;
use aro_domain::ids::{BusinessId, TenantId};
use aro_domain::message::Channel;
use aro_domain::tenant::{ClassificationResidency, Tenant, TenantConfig};
use aro_domain::values::{Currency, Email, Language, Money, Phone, Region, Zone};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use std::collections::BTreeSet;

/// Generates one `#[tokio::test]` per contract check. `$fresh` is an async expression yielding
/// `Option<(Store, impl Drop)>` (None skips, e.g. PostgreSQL not configured).
#[macro_export]
macro_rules! contract_tests {
    ($fresh:expr) => {
        $crate::contract_tests!(@each $fresh;
            tenants_round_trip,
            customers_are_sealed_and_found_by_phone,
            erasing_a_patient_shreds_their_data,
            appointments_are_unique_by_booking_identity,
            concurrent_duplicate_upserts_create_one_row,
            appointment_updates_are_optimistic,
            events_are_queried_by_seq_type_and_aggregate,
            concurrent_writers_never_hide_events_from_a_paging_reader,
            event_personal_data_is_sealed_and_erasable,
            failed_jobs_leave_no_trace,
            abandoned_reads_leave_no_trace,
            migrations_go_down_and_up_again,
        );
    };
    (@each $fresh:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((store, _guard)) = $fresh.await else { return };
                $crate::contract::$name(&store).await;
                store.close().await;
            }
        )*
    };
}

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

pub fn tenant(id: &str) -> Tenant {
    Tenant {
        id: TenantId::parse(id).unwrap(),
        name: "Demo Clinic".into(),
        zone: Zone::parse("America/New_York").unwrap(),
        region: Region::US,
        clinic_phone: Some(Phone::parse("+14155550100", Region::US).unwrap()),
        review_link: Some("https://example.org/review".into()),
        default_language: Language::english(),
        classification_residency: ClassificationResidency::OpenclawExecutor,
        permissions: vec!["messaging.send_reminder".into()],
        config: TenantConfig::default(),
        created_at: now(),
    }
}

pub fn patient(name: &str, phone: &str) -> CustomerDetails {
    CustomerDetails {
        name: Some(name.into()),
        phone: Some(Phone::parse(phone, Region::US).unwrap()),
        email: Some(Email::parse("patient@example.org").unwrap()),
        zone: Some(Zone::parse("America/Los_Angeles").unwrap()),
        language: Some(Language::english()),
    }
}

pub fn appointment(tenant: &str, customer: &BusinessId, external: &str) -> Appointment {
    Appointment {
        id: crate::ids::new_business_id("apt"),
        tenant_id: TenantId::parse(tenant).unwrap(),
        customer_id: customer.clone(),
        source: "calendly".into(),
        external_id: external.into(),
        status: AppointmentStatus::Booked,
        starts_at: now() + Duration::days(3),
        ends_at: now() + Duration::days(3) + Duration::minutes(30),
        service_type: Some("checkup".into()),
        price: Some(Money::new(12000, Currency::parse("USD").unwrap()).unwrap()),
        zone: Some(Zone::parse("America/Los_Angeles").unwrap()),
        language: Some(Language::english()),
        channel: Channel::Sms,
        cancel_url: Some("https://example.org/cancel".into()),
        reschedule_url: None,
        needs_contact: false,
        created_at: now(),
        updated_at: now(),
        version: 1,
    }
}

pub async fn seed_tenant(store: &Store, id: &str) {
    let t = tenant(id);
    let created: bool = store
        .write(move |tx| Box::pin(async move { tx.insert_tenant(&t).await }))
        .await
        .unwrap();
    assert!(created);
}

pub async fn seed_customer(store: &Store, tenant_id: &str, name: &str, phone: &str) -> BusinessId {
    let t = TenantId::parse(tenant_id).unwrap();
    let details = patient(name, phone);
    let c = store
        .write(move |tx| Box::pin(async move { tx.insert_customer(&t, &details, now()).await }))
        .await
        .unwrap();
    c.id
}

pub async fn tenants_round_trip(store: &Store) {
    seed_tenant(store, "clinic-a").await;
    // Creating it again is a no-op, not an error.
    let again: bool = store
        .write(|tx| Box::pin(async move { tx.insert_tenant(&tenant("clinic-a")).await }))
        .await
        .unwrap();
    assert!(!again);
    let (mut t, version) = store
        .read(|tx| Box::pin(async move { tx.get_tenant("clinic-a").await }))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t, tenant("clinic-a"));
    assert_eq!(version, 0);
    t.name = "Renamed Clinic".into();
    t.config.policies.max_messages_per24h = 2;
    let updated: bool = store
        .write(move |tx| Box::pin(async move { tx.update_tenant(&t, 1, now()).await }))
        .await
        .unwrap();
    assert!(updated);
    let all = store
        .read(|tx| Box::pin(async move { tx.list_tenants().await }))
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].name, "Renamed Clinic");
    assert_eq!(all[0].config.policies.max_messages_per24h, 2);
    let missing = store
        .read(|tx| Box::pin(async move { tx.get_tenant("nope").await }))
        .await
        .unwrap();
    assert!(missing.is_none());
}

pub async fn customers_are_sealed_and_found_by_phone(store: &Store) {
    seed_tenant(store, "clinic-a").await;
    seed_tenant(store, "clinic-b").await;
    let ada = seed_customer(store, "clinic-a", "Ada Lovelace", "+14155552671").await;
    // A family member on the same phone is another patient, not a merge.
    let byron = seed_customer(store, "clinic-a", "Byron Lovelace", "+14155552671").await;
    let other = seed_customer(store, "clinic-b", "Ada Elsewhere", "+14155552671").await;
    let phone = Phone::parse("(415) 555-2671", Region::US).unwrap();
    let found = store
        .read(move |tx| Box::pin(async move { tx.customers_by_phone("clinic-a", &phone).await }))
        .await
        .unwrap();
    let ids: BTreeSet<_> = found.iter().map(|c| c.id.clone()).collect();
    assert_eq!(ids, BTreeSet::from([ada.clone(), byron]));
    assert!(
        !ids.contains(&other),
        "a tenant never sees another tenant's patients"
    );
    let ada_row = found.into_iter().find(|c| c.id == ada).unwrap();
    assert_eq!(ada_row.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(ada_row.phone.as_ref().unwrap().as_str(), "+14155552671");
    assert_eq!(ada_row.first_name(), Some("Ada"));

    let mut changed = ada_row.clone();
    changed.name = Some("Ada King".into());
    changed.risk_score = 40;
    let ok: bool = store
        .write(move |tx| Box::pin(async move { tx.update_customer(&changed, now()).await }))
        .await
        .unwrap();
    assert!(ok);
    let ada_id = ada.to_string();
    let back = store
        .read(move |tx| Box::pin(async move { tx.get_customer("clinic-a", &ada_id).await }))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.name.as_deref(), Some("Ada King"));
    assert_eq!(back.risk_score, 40);
    // Another tenant's id is simply not there.
    let ada_id = ada.to_string();
    let cross = store
        .read(move |tx| Box::pin(async move { tx.get_customer("clinic-b", &ada_id).await }))
        .await
        .unwrap();
    assert!(cross.is_none());
}

pub async fn erasing_a_patient_shreds_their_data(store: &Store) {
    seed_tenant(store, "clinic-a").await;
    let ada = seed_customer(store, "clinic-a", "Ada Lovelace", "+14155552671").await;
    let id = ada.to_string();
    let erased: bool = store
        .write(move |tx| Box::pin(async move { tx.erase_subject("clinic-a", &id).await }))
        .await
        .unwrap();
    assert!(erased);
    let id = ada.to_string();
    let back = store
        .read(move |tx| Box::pin(async move { tx.get_customer("clinic-a", &id).await }))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.name, None);
    assert_eq!(back.phone, None);
    assert_eq!(back.email, None);
}

pub async fn appointments_are_unique_by_booking_identity(store: &Store) {
    seed_tenant(store, "clinic-a").await;
    let ada = seed_customer(store, "clinic-a", "Ada Lovelace", "+14155552671").await;
    let first = appointment("clinic-a", &ada, "https://api.calendly.com/invitees/IN1");
    let dup = appointment("clinic-a", &ada, "https://api.calendly.com/invitees/IN1");
    let a = first.clone();
    let inserted: bool = store
        .write(move |tx| Box::pin(async move { tx.insert_appointment(&a).await }))
        .await
        .unwrap();
    assert!(inserted);
    let inserted_again: bool = store
        .write(move |tx| Box::pin(async move { tx.insert_appointment(&dup).await }))
        .await
        .unwrap();
    assert!(!inserted_again);
    let id = first.id.to_string();
    let aliased: bool = store
        .write(move |tx| {
            Box::pin(async move {
                tx.add_appointment_alias(
                    "clinic-a",
                    "calendly",
                    "https://api.calendly.com/invitees/IN2",
                    &id,
                    now(),
                )
                .await
            })
        })
        .await
        .unwrap();
    assert!(aliased);
    let (by_id, by_alias, listed) = store
        .read(|tx| {
            Box::pin(async move {
                let a = tx
                    .appointment_by_external(
                        "clinic-a",
                        "calendly",
                        "https://api.calendly.com/invitees/IN1",
                    )
                    .await?;
                let b = tx
                    .appointment_by_external(
                        "clinic-a",
                        "calendly",
                        "https://api.calendly.com/invitees/IN2",
                    )
                    .await?;
                let c = tx.appointments_for_customer("clinic-a", "nobody").await?;
                Ok::<_, StoreError>((a, b, c))
            })
        })
        .await
        .unwrap();
    assert_eq!(by_id.as_ref(), Some(&first));
    assert_eq!(by_alias.as_ref(), Some(&first));
    assert!(listed.is_empty());
}

pub async fn concurrent_duplicate_upserts_create_one_row(store: &Store) {
    seed_tenant(store, "clinic-a").await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(|tx| {
                    Box::pin(async move {
                        // The engine's upsert: serialise on the booking identity, then find or create.
                        tx.lock("clinic-a/calendly/IN-RACE").await?;
                        let tenant = TenantId::parse("clinic-a").unwrap();
                        if let Some(existing) = tx
                            .appointment_by_external("clinic-a", "calendly", "IN-RACE")
                            .await?
                        {
                            return Ok::<_, StoreError>(existing.id);
                        }
                        let c = tx
                            .insert_customer(
                                &tenant,
                                &patient("Ada Lovelace", "+14155552671"),
                                now(),
                            )
                            .await?;
                        let a = appointment("clinic-a", &c.id, "IN-RACE");
                        let inserted = tx.insert_appointment(&a).await?;
                        assert!(inserted, "the lock makes a lost insert impossible");
                        Ok(a.id)
                    })
                })
                .await
        }));
    }
    let mut ids = BTreeSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().unwrap());
    }
    assert_eq!(ids.len(), 1, "every caller sees the same appointment");
    let phone = Phone::parse("+14155552671", Region::US).unwrap();
    let customers = store
        .read(move |tx| Box::pin(async move { tx.customers_by_phone("clinic-a", &phone).await }))
        .await
        .unwrap();
    assert_eq!(customers.len(), 1, "one customer, not one per racing call");
}

pub async fn appointment_updates_are_optimistic(store: &Store) {
    seed_tenant(store, "clinic-a").await;
    let ada = seed_customer(store, "clinic-a", "Ada Lovelace", "+14155552671").await;
    let a = appointment("clinic-a", &ada, "IN-OPT");
    let stored = a.clone();
    store
        .write(move |tx| Box::pin(async move { tx.insert_appointment(&stored).await }))
        .await
        .unwrap();
    let mut confirmed = a.clone();
    confirmed.status = AppointmentStatus::Confirmed;
    confirmed.version = 2;
    let stale = confirmed.clone();
    let ok: bool = store
        .write(move |tx| Box::pin(async move { tx.update_appointment(&confirmed, 1).await }))
        .await
        .unwrap();
    assert!(ok);
    let lost: bool = store
        .write(move |tx| Box::pin(async move { tx.update_appointment(&stale, 1).await }))
        .await
        .unwrap();
    assert!(!lost, "an update based on an old version is refused");
    let id = a.id.to_string();
    let back = store
        .read(move |tx| Box::pin(async move { tx.get_appointment("clinic-a", &id).await }))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.status, AppointmentStatus::Confirmed);
    assert_eq!(back.version, 2);
}

fn event(tenant: &str, kind: EventType, aggregate: &str, n: i64) -> NewEvent {
    NewEvent {
        tenant_id: tenant.into(),
        event_type: kind,
        aggregate: AggregateRef::new("appointment", aggregate),
        occurred_at: now() + Duration::seconds(n),
        profile: Some("healthcare".into()),
        payload: json!({"n": n}),
        pii: None,
        metadata: EventMetadata {
            workflow_id: None,
            correlation_id: Some(format!("corr-{n}")),
            causation_id: None,
        },
    }
}

async fn append(store: &Store, e: NewEvent) -> i64 {
    store
        .write(move |tx| Box::pin(async move { tx.append_event(e, now()).await }))
        .await
        .unwrap()
        .1
}

pub async fn events_are_queried_by_seq_type_and_aggregate(store: &Store) {
    let a1 = append(
        store,
        event("clinic-a", EventType::AppointmentBooked, "apt_1", 1),
    )
    .await;
    let a2 = append(
        store,
        event("clinic-a", EventType::AppointmentConfirmed, "apt_1", 2),
    )
    .await;
    let b1 = append(
        store,
        event("clinic-b", EventType::AppointmentBooked, "apt_9", 3),
    )
    .await;
    let a3 = append(
        store,
        event("clinic-a", EventType::AppointmentBooked, "apt_2", 4),
    )
    .await;
    assert!(a1 < a2 && a2 < b1 && b1 < a3);
    let q = |tenant: &str, after, event_type: Option<&str>, aggregate: Option<&str>| EventQuery {
        tenant_id: Some(tenant.to_owned()),
        after,
        limit: 100,
        event_type: event_type.map(str::to_owned),
        aggregate_id: aggregate.map(str::to_owned),
    };
    let run = |query: EventQuery| {
        let store = store.clone();
        async move {
            store
                .read(move |tx| Box::pin(async move { tx.events(&query).await }))
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(run(q("clinic-a", 0, None, None)).await, vec![a1, a2, a3]);
    assert_eq!(run(q("clinic-a", a1, None, None)).await, vec![a2, a3]);
    assert_eq!(
        run(q("clinic-a", 0, Some("appointment.booked"), None)).await,
        vec![a1, a3]
    );
    assert_eq!(
        run(q("clinic-a", 0, None, Some("apt_1"))).await,
        vec![a1, a2]
    );
    assert_eq!(run(q("clinic-b", 0, None, None)).await, vec![b1]);
    let mut limited = q("clinic-a", 0, None, None);
    limited.limit = 2;
    assert_eq!(run(limited).await, vec![a1, a2]);
    let full = store
        .read(move |tx| {
            Box::pin(async move {
                let events = tx
                    .events(&EventQuery {
                        tenant_id: Some("clinic-a".into()),
                        after: 0,
                        limit: 1,
                        ..Default::default()
                    })
                    .await?;
                let max = tx.max_seq().await?;
                let before = tx
                    .seq_before_time("clinic-a", now() + Duration::seconds(2))
                    .await?;
                Ok::<_, StoreError>((events, max, before))
            })
        })
        .await
        .unwrap();
    let e = &full.0[0];
    assert_eq!(e.event_type, "appointment.booked");
    assert_eq!(e.aggregate, AggregateRef::new("appointment", "apt_1"));
    assert_eq!(e.payload, json!({"n": 1}));
    assert_eq!(e.metadata.correlation_id.as_deref(), Some("corr-1"));
    assert_eq!(e.occurred_at, now() + Duration::seconds(1));
    assert_eq!(full.1, a3);
    assert_eq!(
        full.2,
        a2 - 1,
        "replay from a time starts just before its first event"
    );
}

pub async fn concurrent_writers_never_hide_events_from_a_paging_reader(store: &Store) {
    const WRITERS: usize = 8;
    const EACH: usize = 40;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let store = store.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut seen: Vec<i64> = Vec::new();
            let mut after = 0;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let page = store
                    .read(move |tx| {
                        Box::pin(async move {
                            tx.events(&EventQuery {
                                tenant_id: Some("clinic-a".into()),
                                after,
                                limit: 7,
                                ..Default::default()
                            })
                            .await
                        })
                    })
                    .await
                    .unwrap();
                if let Some(last) = page.last() {
                    after = last.seq;
                }
                let empty = page.is_empty();
                seen.extend(page.into_iter().map(|e| e.seq));
                if finished && empty {
                    return seen;
                }
                if empty {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..EACH {
                // Several events per transaction, as commands append them.
                store
                    .write(move |tx| {
                        Box::pin(async move {
                            let n = (w * EACH + i) as i64;
                            tx.append_event(
                                event("clinic-a", EventType::MessageQueued, "apt_x", n),
                                now(),
                            )
                            .await?;
                            tx.append_event(
                                event("clinic-a", EventType::MessageSent, "apt_x", n),
                                now(),
                            )
                            .await
                        })
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.await.unwrap();
    let all = store
        .read(|tx| {
            Box::pin(async move {
                tx.events(&EventQuery {
                    tenant_id: Some("clinic-a".into()),
                    after: 0,
                    limit: 1000,
                    ..Default::default()
                })
                .await
            })
        })
        .await
        .unwrap();
    let all: Vec<i64> = all.into_iter().map(|e| e.seq).collect();
    assert_eq!(all.len(), WRITERS * EACH * 2);
    assert_eq!(
        seen, all,
        "the paging reader saw every committed event exactly once, in order"
    );
}

pub async fn event_personal_data_is_sealed_and_erasable(store: &Store) {
    seed_tenant(store, "clinic-a").await;
    let ada = seed_customer(store, "clinic-a", "Ada Lovelace", "+14155552671").await;
    let mut e = event("clinic-a", EventType::AppointmentBooked, "apt_1", 1);
    e.payload = json!({"customer": {"id": ada.to_string()}});
    e.pii = Some(EventPii {
        subject_id: ada.to_string(),
        fields: json!({"customer": {"name": "Ada Lovelace", "phone": "+14155552671"}}),
    });
    append(store, e).await;
    let read = |store: Store| async move {
        store
            .read(|tx| {
                Box::pin(async move {
                    tx.events(&EventQuery {
                        tenant_id: Some("clinic-a".into()),
                        after: 0,
                        limit: 10,
                        ..Default::default()
                    })
                    .await
                })
            })
            .await
            .unwrap()
            .remove(0)
    };
    let opened = read(store.clone()).await;
    assert_eq!(
        opened.payload,
        json!({"customer": {"id": ada.to_string(), "name": "Ada Lovelace", "phone": "+14155552671"}})
    );
    // Readers that only count get the event without its personal data, marked as such.
    let counted = store
        .read(|tx| {
            Box::pin(async move {
                tx.events_without_pii(&EventQuery {
                    tenant_id: Some("clinic-a".into()),
                    after: 0,
                    limit: 10,
                    ..Default::default()
                })
                .await
            })
        })
        .await
        .unwrap();
    assert_eq!(counted.len(), 1);
    assert_eq!(
        (&counted[0].event_id, counted[0].seq),
        (&opened.event_id, opened.seq)
    );
    assert_eq!(
        counted[0].payload,
        json!({"customer": {"id": ada.to_string()}, "piiOmitted": true})
    );
    let id = ada.to_string();
    store
        .write(move |tx| Box::pin(async move { tx.erase_subject("clinic-a", &id).await }))
        .await
        .unwrap();
    let erased = read(store.clone()).await;
    assert_eq!(
        erased.payload,
        json!({"customer": {"id": ada.to_string()}, "piiErased": true}),
        "the event stays in the log; its personal data is gone"
    );
}

/// A read whose caller goes away mid-flight (a client hangs up, a stream is dropped) hands its
/// connection back clean: every later read and write works.
pub async fn abandoned_reads_leave_no_trace(store: &Store) {
    seed_tenant(store, "clinic-a").await;
    // One read after another is abandoned while inside its transaction: more of them than any
    // reader pool has connections, so every connection is handed back at least once that way
    // (one at a time, so the test never waits on a full pool).
    for round in 0..12 {
        let (started, is_started) = tokio::sync::oneshot::channel::<()>();
        let reader = store.clone();
        let task = tokio::spawn(async move {
            reader
                .read(move |tx| {
                    Box::pin(async move {
                        tx.get_tenant("clinic-a").await?;
                        let _ = started.send(());
                        std::future::pending::<()>().await;
                        Ok::<_, StoreError>(())
                    })
                })
                .await
        });
        if is_started.await.is_err() {
            let failed = task.await;
            panic!("read {round} failed after an earlier read was abandoned: {failed:?}");
        }
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
    }
    for round in 0..24 {
        let found = store
            .read(|tx| Box::pin(async move { tx.get_tenant("clinic-a").await }))
            .await
            .unwrap_or_else(|e| panic!("read {round} after abandoned reads: {e}"));
        assert!(found.is_some());
    }
    append(
        store,
        event("clinic-a", EventType::TenantCreated, "clinic-a", 1),
    )
    .await;
}

pub async fn failed_jobs_leave_no_trace(store: &Store) {
    let result: Result<(), StoreError> = store
        .write(|tx| {
            Box::pin(async move {
                tx.insert_tenant(&tenant("clinic-x")).await?;
                tx.append_event(
                    event("clinic-x", EventType::TenantCreated, "clinic-x", 1),
                    now(),
                )
                .await?;
                Err(StoreError::Conflict("refused by the caller".into()))
            })
        })
        .await;
    assert!(result.is_err());
    let (tenant, max) = store
        .read(|tx| {
            Box::pin(async move {
                let t = tx.get_tenant("clinic-x").await?;
                let m = tx.max_seq().await?;
                Ok::<_, StoreError>((t, m))
            })
        })
        .await
        .unwrap();
    assert!(tenant.is_none());
    assert_eq!(max, 0);
    // A unique violation inside a job is an error for that job only.
    seed_tenant(store, "clinic-y").await;
}

pub async fn migrations_go_down_and_up_again(store: &Store) {
    let status = store.migration_status().await.unwrap();
    assert!(status.is_current());
    assert!(!status.migrations.is_empty());
    store.ready().await.unwrap();
    let all = status.migrations.len();
    store.migrate_down(all).await.unwrap();
    let down = store.migration_status().await.unwrap();
    assert_eq!(down.pending(), all);
    assert!(
        store.ready().await.is_err(),
        "not ready with migrations pending"
    );
    store.migrate_up().await.unwrap();
    assert!(store.migration_status().await.unwrap().is_current());
    seed_tenant(store, "after-reset").await;
}
