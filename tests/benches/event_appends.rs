//! Durable event appends per second with concurrent writers, on SQLite (WAL, synchronous FULL:
//! every commit is fsync'd) and on PostgreSQL (fsync on, synchronous_commit on).
//!
//!     cargo bench -p aro-tests --bench event_appends
//!
//! PostgreSQL is measured when `ARO_TEST_POSTGRES_URL` names a server (scripts/pg-cluster.sh
//! starts one). Figures are recorded in docs/performance.md.

use aro_domain::EventType;
use aro_security::crypto::{Keyring, MasterKey};
use aro_store::{AggregateRef, EventMetadata, NewEvent, Store, StoreError};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WRITERS: usize = 64;
const WINDOW: Duration = Duration::from_secs(5);

fn event(n: usize) -> NewEvent {
    NewEvent {
        tenant_id: "bench".into(),
        event_type: EventType::MessageQueued,
        aggregate: AggregateRef::new("appointment", format!("apt_{}", n % 997)),
        occurred_at: chrono::Utc::now(),
        profile: Some("healthcare".into()),
        payload: json!({"n": n, "channel": "sms", "purpose": "reminder_48h"}),
        pii: None,
        metadata: EventMetadata::default(),
    }
}

/// Each writer appends one event per transaction (one durable commit per append from its point
/// of view) for the window; returns appends per second.
async fn measure(store: &Store, writers: usize) -> f64 {
    let started = Instant::now();
    let deadline = started + WINDOW;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0usize;
            while Instant::now() < deadline {
                let e = event(w * 1_000_000 + done);
                store
                    .write(move |tx| {
                        Box::pin(
                            async move { tx.append_event(e, chrono::Utc::now()).await.map(|_| ()) },
                        )
                    })
                    .await
                    .map_err(|e: StoreError| e.to_string())
                    .expect("append");
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("writer");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let backend = aro_store_sqlite::SqliteBackend::open(
        aro_store_sqlite::SqliteSettings::from_url(&url, false).expect("url"),
    )
    .await
    .expect("open sqlite");
    let store = Store::new(Arc::new(backend), Keyring::new(MasterKey::generate()));
    store.migrate_up().await.expect("migrate");
    (store, dir)
}

fn report(engine: &str, writers: usize, rate: f64) {
    println!("{engine:<10} writers={writers:<3} durable appends/s = {rate:>9.0}");
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing we need to honour.
    let (store, _dir) = sqlite().await;
    report("sqlite", 1, measure(&store, 1).await);
    report("sqlite", WRITERS, measure(&store, WRITERS).await);
    store.close().await;

    if let Some(db) = aro_store::testing_pg::PgDatabase::create().await {
        let mut settings = aro_store_postgres::PostgresSettings::new(db.url.clone());
        settings.max_connections = WRITERS as u32;
        settings.acquire_timeout = Duration::from_secs(30);
        let backend = aro_store_postgres::PostgresBackend::open(settings)
            .await
            .expect("open postgres");
        let store = Store::new(Arc::new(backend), Keyring::new(MasterKey::generate()));
        store.migrate_up().await.expect("migrate");
        report("postgres", 1, measure(&store, 1).await);
        report("postgres", WRITERS, measure(&store, WRITERS).await);
        store.close().await;
    }
}
