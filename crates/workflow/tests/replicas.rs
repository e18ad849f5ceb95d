//! Two core-engines on one PostgreSQL: 5,000 due timers, each fired exactly once.

#[macro_use]
mod support;

use aro_domain::appointment::{Appointment, AppointmentStatus};
use aro_domain::customer::CustomerDetails;
use aro_domain::ids::{BusinessId, TenantId};
use aro_domain::message::Channel;
use aro_security::crypto::{Keyring, MasterKey};
use aro_store::engine_rows::TimerRow;
use aro_store::testing_pg::PgDatabase;
use aro_store::{EventQuery, StoreError};
use aro_workflow::{Engine, EngineSettings};
use chrono::Duration;
use support::*;

const TIMERS: usize = 5000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_engines_on_one_postgres_fire_each_due_timer_exactly_once() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    // Both replicas read the same master key file, as two processes would.
    let key_dir = tempfile::tempdir().unwrap();
    let key_file = key_dir.path().join("master.key");
    MasterKey::create_file(&key_file).unwrap();
    let keyring = || Keyring::new(MasterKey::load(&key_file).unwrap());
    let store_a = pg_store(&db.url, keyring()).await;
    let store_b = pg_store(&db.url, keyring()).await;
    let setup = Harness::with(store_a.clone(), Guard::Dir(tempfile::tempdir().unwrap())).await;
    let now = setup.engine.clock().now();

    // 5,000 visits that ended long ago, each with its automatic-completion timer due now.
    store_a
        .write(move |tx| {
            Box::pin(async move {
                let tenant = TenantId::parse("default").unwrap();
                let c = tx
                    .insert_customer(
                        &tenant,
                        &CustomerDetails {
                            name: Some("Ada".into()),
                            phone: None,
                            email: None,
                            zone: None,
                            language: None,
                        },
                        now,
                    )
                    .await?;
                for i in 0..TIMERS {
                    let id = BusinessId::parse(&format!("apt_{i:05}")).unwrap();
                    let a = Appointment {
                        id: id.clone(),
                        tenant_id: tenant.clone(),
                        customer_id: c.id.clone(),
                        source: "calendly".into(),
                        external_id: format!("EXT-{i}"),
                        status: AppointmentStatus::Booked,
                        starts_at: now - Duration::hours(5),
                        ends_at: now - Duration::hours(4),
                        service_type: None,
                        price: None,
                        zone: None,
                        language: None,
                        channel: Channel::Sms,
                        cancel_url: None,
                        reschedule_url: None,
                        needs_contact: true,
                        created_at: now,
                        updated_at: now,
                        version: 1,
                    };
                    tx.insert_appointment(&a).await?;
                    tx.raw()
                        .insert_timer(&TimerRow {
                            id: format!("tmr_{i:05}"),
                            tenant_id: "default".into(),
                            workflow_id: None,
                            kind: "auto_complete".into(),
                            aggregate_id: id.to_string(),
                            due_at: now - Duration::minutes(1),
                            payload: sqlx::types::Json(serde_json::json!({})),
                            status: "pending".into(),
                            attempt: 0,
                            last_error: None,
                            lease_owner: None,
                            lease_until: None,
                            created_at: now,
                            fired_at: None,
                        })
                        .await?;
                }
                Ok::<_, StoreError>(())
            })
        })
        .await
        .unwrap();

    let offset = setup.engine.clock().offset_ms();
    let engines = [store_a.clone(), store_b.clone()].map(|s| {
        Engine::new(
            s,
            aro_workflow::Clock::with_offset_ms(offset),
            EngineSettings::default(),
        )
    });
    let mut tasks = Vec::new();
    for engine in engines {
        for _ in 0..2 {
            let engine = engine.clone();
            tasks.push(tokio::spawn(async move {
                let mut fired = 0;
                loop {
                    let n = engine.fire_due_timers(50).await.unwrap();
                    if n == 0 {
                        return fired;
                    }
                    fired += n;
                }
            }));
        }
    }
    let mut total = 0;
    let mut per_worker = Vec::new();
    for t in tasks {
        let n = t.await.unwrap();
        per_worker.push(n);
        total += n;
    }
    assert_eq!(total, TIMERS, "fired counts per worker: {per_worker:?}");
    assert!(
        per_worker.iter().filter(|n| **n > 0).count() >= 2,
        "both engines did work: {per_worker:?}"
    );
    let completed = store_b
        .read(|tx| {
            Box::pin(async move {
                let mut after = 0;
                let mut count = 0;
                let mut seen = std::collections::HashSet::new();
                loop {
                    let page = tx
                        .events(&EventQuery {
                            tenant_id: Some("default".into()),
                            after,
                            limit: 1000,
                            event_type: Some("appointment.completed".into()),
                            aggregate_id: None,
                        })
                        .await?;
                    let Some(last) = page.last() else { break };
                    after = last.seq;
                    for e in page {
                        count += 1;
                        seen.insert(e.aggregate.id);
                    }
                }
                Ok::<_, StoreError>((count, seen.len()))
            })
        })
        .await
        .unwrap();
    assert_eq!(
        completed,
        (TIMERS, TIMERS),
        "one completion per visit, none twice"
    );
    store_a.close().await;
    store_b.close().await;
    drop(setup);
    drop(db);
}
