//! The storage contract, one suite run against every engine (`contract_tests!` in each engine's
//! tests). Each check takes a freshly migrated, empty store.

use crate::{
    AggregateRef, EventMetadata, EventPii, EventQuery, Message, NewEvent, NewExecutionRecord,
    NewMessage, Store, StoreError,
};
use aro_domain::EventType;
use aro_domain::appointment::{Appointment, AppointmentStatus};
use aro_domain::customer::CustomerDetails;
use aro_domain::ids::{BusinessId, TenantId};
use aro_domain::message::{Channel, Direction, MessageStatus};
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
            messages_are_sealed_bound_and_erasable,
            execution_payloads_are_sealed_and_bound,
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

/// Reads one message through the typed reader.
async fn read_message(
    store: &Store,
    tenant: &str,
    id: &str,
) -> Result<Option<Message>, StoreError> {
    let (tenant, id) = (tenant.to_owned(), id.to_owned());
    store
        .read(move |tx| Box::pin(async move { tx.message(&tenant, &id).await }))
        .await
}

/// Messages are sealed by the store: written and read in the clear through `Tx`, held as
/// ciphertext bound to their row and column, unreadable once their patient is erased.
pub async fn messages_are_sealed_bound_and_erasable(store: &Store) {
    const BODY: &str = "Reminder: Ada, your visit is Tue 9:00 AM at Demo Clinic";
    const REPLY: &str = "Yes see you then";
    seed_tenant(store, "clinic-a").await;
    let ada = seed_customer(store, "clinic-a", "Ada Lovelace", "+14155552671").await;
    let phone = Phone::parse("+14155552671", Region::US).unwrap();
    let clinic = Phone::parse("+14155550100", Region::US).unwrap();
    let (ada_id, p, c) = (ada.to_string(), phone.clone(), clinic.clone());
    let (sent, reply, staff) = store
        .write(move |tx| {
            Box::pin(async move {
                let sent = tx
                    .insert_message(&NewMessage {
                        tenant_id: "clinic-a",
                        customer_id: Some(&ada_id),
                        appointment_id: Some("apt_1"),
                        direction: Direction::Outbound,
                        channel: Channel::Sms,
                        purpose: "reminder_48h",
                        counterpart: Some(&p),
                        body: Some(BODY),
                        status: MessageStatus::Pending,
                        provider_ref: None,
                        execution_id: Some("exe_1"),
                        at: now(),
                    })
                    .await?;
                let reply = tx
                    .insert_message(&NewMessage {
                        tenant_id: "clinic-a",
                        customer_id: Some(&ada_id),
                        appointment_id: Some("apt_1"),
                        direction: Direction::Inbound,
                        channel: Channel::Sms,
                        purpose: "reply",
                        counterpart: Some(&p),
                        body: Some(REPLY),
                        status: MessageStatus::Received,
                        provider_ref: Some("SM-reply-1"),
                        execution_id: None,
                        at: now() + Duration::minutes(5),
                    })
                    .await?;
                // A staff text is the clinic's own: sealed under the tenant's key.
                let staff = tx
                    .insert_message(&NewMessage {
                        tenant_id: "clinic-a",
                        customer_id: None,
                        appointment_id: None,
                        direction: Direction::Outbound,
                        channel: Channel::Sms,
                        purpose: "staff_digest",
                        counterpart: Some(&c),
                        body: Some("2 items wait"),
                        status: MessageStatus::Pending,
                        provider_ref: None,
                        execution_id: None,
                        at: now(),
                    })
                    .await?;
                Ok::<_, StoreError>((sent, reply, staff))
            })
        })
        .await
        .unwrap();
    assert_eq!(sent.body.as_deref(), Some(BODY));
    assert_eq!(sent.counterpart.as_ref(), Some(&phone));
    assert_eq!(sent.subject_id(), ada.as_str());
    assert_eq!(staff.subject_id(), crate::TENANT_SUBJECT);

    // Every reader opens what the writer sealed.
    assert_eq!(
        read_message(store, "clinic-a", &sent.id).await.unwrap(),
        Some(sent.clone())
    );
    let (s, r) = (sent.clone(), reply.clone());
    let p = phone.clone();
    store
        .read(move |tx| {
            Box::pin(async move {
                let by_ref = tx.message_by_provider_ref("clinic-a", "SM-reply-1").await?;
                assert_eq!(by_ref, Some(r.clone()));
                let visit = tx.messages_for_appointment("clinic-a", "apt_1").await?;
                assert_eq!(visit, vec![s.clone(), r.clone()]);
                let to_ada = tx.messages_for_phone("clinic-a", &p, now()).await?;
                assert_eq!(to_ada, vec![s.clone(), r.clone()]);
                let later = tx
                    .messages_for_phone("clinic-a", &p, now() + Duration::minutes(1))
                    .await?;
                assert_eq!(later, vec![r]);
                // Another tenant finds nothing by the same number or id.
                assert!(
                    tx.messages_for_phone("clinic-b", &p, now())
                        .await?
                        .is_empty()
                );
                assert!(tx.message("clinic-b", &s.id).await?.is_none());
                Ok::<_, StoreError>(())
            })
        })
        .await
        .unwrap();

    // The row holds neither the number nor the body, only ciphertext and a blind index.
    let id = sent.id.clone();
    let row = store
        .read(move |tx| Box::pin(async move { tx.raw().get_message("clinic-a", &id).await }))
        .await
        .unwrap()
        .unwrap();
    let counterpart_ct = row.counterpart_ct.clone().unwrap();
    let body_ct = row.body_ct.clone().unwrap();
    for ct in [&counterpart_ct, &body_ct] {
        for needle in [BODY, "Ada", "+14155552671", "4155552671"] {
            assert!(
                !ct.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "a sealed column holds {needle:?} in the clear"
            );
        }
    }
    assert_eq!(row.counterpart_index, sent.counterpart_index);
    assert_ne!(row.counterpart_index.as_deref(), Some("+14155552671"));

    // A ciphertext moved to another message's row does not open there, nor one sealed for
    // another column of the same row.
    let mut moved = row.clone();
    moved.id = crate::ids::new_id(aro_domain::ids::prefix::MESSAGE);
    moved.provider_ref = None;
    // Out of the way of the lookups below: only the ciphertexts matter here.
    (moved.appointment_id, moved.counterpart_index) = (None, None);
    let mut swapped = moved.clone();
    swapped.id = crate::ids::new_id(aro_domain::ids::prefix::MESSAGE);
    let (m, sw, ada_id) = (moved.clone(), swapped.clone(), ada.to_string());
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.raw().insert_message(&m).await?;
                // This row's own number and body, each sealed for the other's column.
                let mut sw = sw;
                let (tenant, subject) = ("clinic-a", ada_id.as_str());
                let (number, body) = ("+14155552671", BODY);
                let ct = tx.seal(tenant, subject, "messages", "body", &sw.id, number, now());
                sw.counterpart_ct = Some(ct.await?);
                let ct = tx.seal(
                    tenant,
                    subject,
                    "messages",
                    "counterpart",
                    &sw.id,
                    body,
                    now(),
                );
                sw.body_ct = Some(ct.await?);
                tx.raw().insert_message(&sw).await
            })
        })
        .await
        .unwrap();
    for id in [&moved.id, &swapped.id] {
        let err = read_message(store, "clinic-a", id).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    }

    // Delivery updates change the delivery fields only: the patient (whose key seals the
    // row) stays, so the message keeps opening.
    let mut delivered = sent.clone();
    delivered.status = MessageStatus::Delivered;
    delivered.provider_ref = Some("SM-sent-1".into());
    delivered.updated_at = now() + Duration::minutes(2);
    delivered.customer_id = Some("cus_someone_else".into());
    let d = delivered.clone();
    let updated: bool = store
        .write(move |tx| Box::pin(async move { tx.update_message(&d).await }))
        .await
        .unwrap();
    assert!(updated);
    let back = read_message(store, "clinic-a", &sent.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.status, MessageStatus::Delivered);
    assert_eq!(back.provider_ref.as_deref(), Some("SM-sent-1"));
    assert_eq!(back.updated_at, delivered.updated_at);
    assert_eq!(back.customer_id.as_deref(), Some(ada.as_str()));
    assert_eq!(back.body.as_deref(), Some(BODY));

    // Erasing the patient shreds their texts' number and body; what happened stays. The
    // clinic's own texts are not theirs and stay readable.
    let id = ada.to_string();
    store
        .write(move |tx| Box::pin(async move { tx.erase_subject("clinic-a", &id).await }))
        .await
        .unwrap();
    let erased = read_message(store, "clinic-a", &sent.id)
        .await
        .unwrap()
        .unwrap();
    assert!(erased.pii_erased);
    assert_eq!((erased.counterpart, erased.body), (None, None));
    assert_eq!(erased.status, MessageStatus::Delivered);
    assert_eq!(erased.purpose, "reminder_48h");
    let p = phone.clone();
    let still_found = store
        .read(move |tx| Box::pin(async move { tx.messages_for_phone("clinic-a", &p, now()).await }))
        .await
        .unwrap();
    assert_eq!(
        still_found.len(),
        2,
        "found by the blind index, opened as erased"
    );
    assert!(still_found.iter().all(|m| m.pii_erased && m.body.is_none()));
    let staff_back = read_message(store, "clinic-a", &staff.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!staff_back.pii_erased);
    assert_eq!(staff_back.body.as_deref(), Some("2 items wait"));
    assert_eq!(staff_back.counterpart, Some(clinic));
}

/// Execution payloads are sealed by the store: queued and claimed in the clear through `Tx`,
/// held as ciphertext bound to their row, unreadable once their patient is erased.
pub async fn execution_payloads_are_sealed_and_bound(store: &Store) {
    const BODY: &str = "Reminder: Ada, your visit is Tue 9:00 AM at Demo Clinic";
    seed_tenant(store, "clinic-a").await;
    let ada = seed_customer(store, "clinic-a", "Ada Lovelace", "+14155552671").await;
    let payload = json!({"to": "+14155552671", "body": BODY, "messageId": "msg_1"});
    let digest = json!({"to": "+14155550100", "body": "2 items wait"});
    let (ada_id, p, d) = (ada.to_string(), payload.clone(), digest.clone());
    let (sent, staff) = store
        .write(move |tx| {
            Box::pin(async move {
                let queue = |id, subject_id, payload| NewExecutionRecord {
                    id,
                    tenant_id: "clinic-a",
                    correlation_id: "cor_1",
                    command_type: "messaging.send_sms",
                    subject_id,
                    payload,
                    max_attempts: 5,
                    not_after: Some(now() + Duration::hours(1)),
                    workflow_id: Some("wf_1"),
                    aggregate_id: Some("apt_1"),
                    at: now(),
                    now: now(),
                };
                let sent = queue("exe_sent", Some(ada_id.as_str()), &p);
                let sent = tx.insert_execution(&sent).await?;
                // The clinic's own text has no patient: sealed under the tenant's key.
                let staff = queue("exe_staff", None, &d);
                let staff = tx.insert_execution(&staff).await?;
                Ok::<_, StoreError>((sent, staff))
            })
        })
        .await
        .unwrap();
    assert_eq!(sent.status, "ready");
    assert_eq!(sent.subject_id.as_deref(), Some(ada.as_str()));
    assert_eq!(staff.subject_id.as_deref(), Some(crate::TENANT_SUBJECT));

    // What was stored opens back to what was queued.
    let read_payload = |id: &'static str| {
        let store = store.clone();
        async move {
            store
                .read(move |tx| {
                    Box::pin(async move {
                        let row = tx.raw().get_execution(id).await?.unwrap();
                        let payload = tx.execution_payload(&row).await?;
                        Ok::<_, StoreError>((row, payload))
                    })
                })
                .await
        }
    };
    let (row, opened) = read_payload("exe_sent").await.unwrap();
    assert_eq!(
        (&row.id, &row.payload_ct, &row.subject_id, row.not_after),
        (&sent.id, &sent.payload_ct, &sent.subject_id, sent.not_after)
    );
    assert_eq!(opened, Some(payload.clone()));
    assert_eq!(read_payload("exe_staff").await.unwrap().1, Some(digest));

    // The row holds only ciphertext.
    for needle in [BODY, "Ada", "+14155552671", "4155552671", "msg_1"] {
        assert!(
            !row.payload_ct
                .windows(needle.len())
                .any(|w| w == needle.as_bytes()),
            "the payload holds {needle:?} in the clear"
        );
    }

    // A payload moved to another execution's row (same tenant, same patient) does not open.
    let mut moved = row.clone();
    moved.id = "exe_moved".into();
    let m = moved.clone();
    store
        .write(move |tx| Box::pin(async move { tx.raw().insert_execution(&m).await }))
        .await
        .unwrap();
    let err = read_payload("exe_moved").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");

    // Erasing the patient leaves nothing to do for them; the clinic's own payloads stay.
    let id = ada.to_string();
    store
        .write(move |tx| Box::pin(async move { tx.erase_subject("clinic-a", &id).await }))
        .await
        .unwrap();
    assert_eq!(read_payload("exe_sent").await.unwrap().1, None);
    assert!(read_payload("exe_staff").await.unwrap().1.is_some());
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
