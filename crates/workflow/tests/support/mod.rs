//! A real engine on a real database for the engine's own tests: SQLite in a temporary folder,
//! or a fresh PostgreSQL database when the test server is configured.

#![allow(dead_code)]

/// Runs a test body on SQLite and on PostgreSQL (skipped without a test server), each with a
/// fresh [`Harness`]: `on_both!(name, |h: Harness| async move { … })`.
#[allow(unused_macros)]
macro_rules! on_both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let h = Harness::sqlite().await;
                ($body)(h).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(h) = Harness::postgres().await else {
                    return;
                };
                ($body)(h).await;
            }
        }
    };
}

use aro_security::crypto::{Keyring, MasterKey};
use aro_store::testing_pg::PgDatabase;
use aro_store::{Event, EventQuery, Store};
use aro_workflow::tenants::{self, NewTenant};
use aro_workflow::{Clock, Engine, EngineSettings};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub enum Guard {
    Dir(tempfile::TempDir),
    Pg(PgDatabase),
}

pub struct Harness {
    pub engine: Engine,
    pub store: Store,
    pub _guard: Guard,
    keys: AtomicU64,
}

/// Keeps the database alive as long as the harness: a test closure that only touches some
/// fields would otherwise capture just those and drop the database early.
impl Drop for Harness {
    fn drop(&mut self) {}
}

pub async fn sqlite_store(dir: &std::path::Path, keyring: Keyring) -> Store {
    let url = format!("sqlite://{}", dir.join("aro.db").display());
    let backend = aro_store_sqlite::SqliteBackend::open(
        aro_store_sqlite::SqliteSettings::from_url(&url, false).unwrap(),
    )
    .await
    .unwrap();
    let store = Store::new(Arc::new(backend), keyring);
    store.migrate_up().await.unwrap();
    store
}

pub async fn pg_store(url: &str, keyring: Keyring) -> Store {
    let backend = aro_store_postgres::PostgresBackend::open(
        aro_store_postgres::PostgresSettings::new(url.to_owned()),
    )
    .await
    .unwrap();
    let store = Store::new(Arc::new(backend), keyring);
    store.migrate_up().await.unwrap();
    store
}

/// The business clock starts well before the visits the tests book.
pub fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-03-01T15:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn clock_at(t: DateTime<Utc>) -> Clock {
    Clock::with_offset_ms((t - Utc::now()).num_milliseconds())
}

impl Harness {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(dir.path(), Keyring::new(MasterKey::generate())).await;
        Self::with(store, Guard::Dir(dir)).await
    }

    pub async fn postgres() -> Option<Self> {
        let db = PgDatabase::create().await?;
        let store = pg_store(&db.url, Keyring::new(MasterKey::generate())).await;
        Some(Self::with(store, Guard::Pg(db)).await)
    }

    pub async fn with(store: Store, guard: Guard) -> Self {
        let engine = Engine::new(
            store.clone(),
            clock_at(start_time()),
            EngineSettings {
                public_base_url: "http://127.0.0.1:7100".into(),
            },
        );
        tenants::create(&store, engine.clock(), NewTenant::demo_default(), "test")
            .await
            .unwrap();
        let h = Self {
            engine,
            store,
            _guard: guard,
            keys: AtomicU64::new(0),
        };
        let answer = h
            .command(
                "tenant.update_config",
                json!({"type": "tenant", "id": "default"}),
                test_config(),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        h
    }

    pub fn key(&self) -> String {
        format!("key-{}", self.keys.fetch_add(1, Ordering::SeqCst))
    }

    pub async fn command(
        &self,
        command_type: &str,
        aggregate: Value,
        payload: Value,
    ) -> aro_workflow::CommandAnswer {
        let body = json!({"commandType": command_type, "tenantId": "default", "aggregate": aggregate, "payload": payload});
        match self
            .engine
            .execute_command("default", body, &self.key(), "corr-test", "service:test")
            .await
        {
            Ok(a) => a,
            Err(e) => {
                let (status, error) = aro_workflow::error_answer(&e);
                aro_workflow::CommandAnswer {
                    status,
                    body: json!({"error": error}),
                    replayed: false,
                }
            }
        }
    }

    /// Books a visit `hours_ahead` from now; returns the appointment id.
    pub async fn book(&self, external: &str, name: &str, phone: &str, hours_ahead: i64) -> String {
        let starts = self.engine.clock().now() + Duration::hours(hours_ahead);
        let answer = self
            .command(
                "appointment.upsert",
                json!({"type": "appointment"}),
                booking(external, name, phone, starts),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body["aggregate"]["id"].as_str().unwrap().to_owned()
    }

    pub async fn events(&self, aggregate: Option<&str>) -> Vec<Event> {
        let aggregate = aggregate.map(str::to_owned);
        self.store
            .read(move |tx| {
                Box::pin(async move {
                    tx.events(&EventQuery {
                        tenant_id: Some("default".into()),
                        after: 0,
                        limit: 1000,
                        event_type: None,
                        aggregate_id: aggregate,
                    })
                    .await
                })
            })
            .await
            .unwrap()
    }

    pub async fn event_types(&self, aggregate: &str) -> Vec<String> {
        self.events(Some(aggregate))
            .await
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }

    pub async fn advance(&self, by: Duration) -> usize {
        let target = self.engine.clock().now() + by;
        self.engine.advance_clock_to(target).await.unwrap()
    }

    pub async fn status(&self, appointment: &str) -> String {
        let id = appointment.to_owned();
        let a = self
            .store
            .read(move |tx| Box::pin(async move { tx.get_appointment("default", &id).await }))
            .await
            .unwrap()
            .unwrap();
        a.status.as_str().to_owned()
    }
}

pub fn booking(external: &str, name: &str, phone: &str, starts: DateTime<Utc>) -> Value {
    json!({
        "source": "calendly",
        "externalId": external,
        "customer": {"name": name, "phone": phone, "timezone": "America/New_York", "language": "en"},
        "startsAt": starts,
        "endsAt": starts + Duration::minutes(30),
        "serviceType": "checkup",
        "cancelUrl": "https://example.org/cancel/1",
        "rescheduleUrl": "https://example.org/reschedule/1",
    })
}

/// Short templates (tests/fixtures/tenant-config.json): these tests are about behaviour, not
/// wording; the real words are the healthcare pack's.
pub fn test_config() -> Value {
    serde_json::from_str(include_str!(
        "../../../../tests/fixtures/tenant-config.json"
    ))
    .unwrap()
}

/// A send the provider accepted.
pub fn sent() -> aro_workflow::executions::ExecutionResult {
    aro_workflow::executions::ExecutionResult {
        status: aro_workflow::executions::ResultStatus::Succeeded,
        retryable: false,
        error: None,
        provider_ref: None,
        output: Some(json!({"status": "queued"})),
        retry_after_seconds: None,
    }
}

/// Plays the executor: claims everything waiting and reports each as done (texts accepted as
/// `SM<execution>`, deposit links created as `https://pay.example.org/plink_<execution>`);
/// returns what it claimed.
pub async fn deliver_all(h: &Harness) -> Vec<aro_workflow::executions::ClaimedExecution> {
    let mut all = Vec::new();
    loop {
        let claimed = h
            .engine
            .claim_executions("test-executor", 50, Duration::seconds(60), None, None)
            .await
            .unwrap();
        if claimed.is_empty() {
            return all;
        }
        for e in &claimed {
            let mut r = sent();
            r.provider_ref = Some(format!("SM{}", e.execution_id));
            if e.command_type == "payments.generate_deposit_link" {
                let link = format!("plink_{}", e.execution_id);
                r.output = Some(json!({"url": format!("https://pay.example.org/{link}")}));
                r.provider_ref = Some(link);
            }
            h.engine
                .record_result(&e.execution_id, r, None)
                .await
                .unwrap();
        }
        all.extend(claimed);
    }
}

/// The texts among `executions`.
pub fn bodies(executions: &[aro_workflow::executions::ClaimedExecution]) -> Vec<String> {
    executions
        .iter()
        .filter_map(|e| e.payload["body"].as_str().map(str::to_owned))
        .collect()
}

/// The patient at `from` texts `body` (a new provider message id each time).
pub async fn reply(h: &Harness, from: &str, body: &str) -> aro_workflow::CommandAnswer {
    let n = h.key();
    let answer = h
        .command(
            "message.record_inbound",
            json!({"type": "message"}),
            json!({"from": from, "body": body, "providerRef": format!("SMin{n}")}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer
}
