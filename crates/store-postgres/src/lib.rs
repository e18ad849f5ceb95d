//! PostgreSQL, for installs where several core-engine replicas share one database. A pool with
//! acquire timeouts; each write job is one transaction; event appends take one advisory lock
//! per transaction so seqs commit in order (see the migration's note); timers and executions
//! are claimed with `FOR UPDATE SKIP LOCKED` so replicas never take the same one.

use aro_store::StoreError;
use aro_store::backend::{
    Backend, BackendTx, Engine, Job, JobEnd, MigrationState, MigrationStatus,
};
use aro_store::engine_rows::claimable_executions_sql;
use async_trait::async_trait;
use futures::FutureExt;
use sqlx::PgConnection;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/postgres");

/// The advisory lock key that orders event appends (an arbitrary constant, "aro events").
const EVENT_SEQ_LOCK: i64 = 0x0061_726f_0065_7673;

#[derive(Debug, Clone)]
pub struct PostgresSettings {
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub allow_unsafe_durability: bool,
}

impl PostgresSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            allow_unsafe_durability: false,
        }
    }
}

pub struct PostgresBackend {
    pool: PgPool,
}

pub struct PgTx<'c> {
    conn: &'c mut PgConnection,
    holds_event_lock: bool,
}

aro_store::impl_subscription_rows!(PgTx<'_>, sqlx::Postgres);
aro_store::impl_tenant_credential_rows!(PgTx<'_>, sqlx::Postgres);

aro_store::impl_engine_rows!(PgTx<'_>, sqlx::Postgres, {
    async fn claim_due_timers(
        &mut self,
        now: chrono::DateTime<chrono::Utc>,
        limit: i64,
    ) -> Result<Vec<aro_store::engine_rows::TimerRow>, StoreError> {
        // -- why: skip locked lets every replica take a different batch of due timers at once.
        Ok(sqlx::query_as(
            "select * from timers where status = 'pending' and due_at <= $1
             order by due_at, id limit $2 for update skip locked",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *self.conn)
        .await?)
    }

    async fn claim_executions(
        &mut self,
        claim: &aro_store::engine_rows::ExecutionClaim<'_>,
    ) -> Result<Vec<aro_store::engine_rows::ExecutionRow>, StoreError> {
        // -- why: skip locked lets every replica take a different batch at once.
        let sql = claimable_executions_sql(claim, " for update skip locked");
        let mut query = sqlx::query_as(&sql).bind(claim.now).bind(claim.limit);
        for text in claim.text_binds() {
            query = query.bind(text);
        }
        Ok(query.fetch_all(&mut *self.conn).await?)
    }
});

aro_store::impl_backend_tx!(PgTx<'_>, sqlx::Postgres, {
    async fn lock(&mut self, key: &str) -> Result<(), StoreError> {
        sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn append_event(&mut self, e: &aro_store::rows::NewEventRow) -> Result<i64, StoreError> {
        // -- why: without this lock, a transaction that took seq 10 could commit after one that
        // took seq 11, and a reader that already paged past 11 would never see 10. Holding the
        // lock from the first append to commit makes seq order commit order.
        if !self.holds_event_lock {
            sqlx::query("select pg_advisory_xact_lock($1)")
                .bind(EVENT_SEQ_LOCK)
                .execute(&mut *self.conn)
                .await?;
            self.holds_event_lock = true;
        }
        let seq: i64 = sqlx::query_scalar(
            "insert into events (event_id, tenant_id, event_type, aggregate_type, aggregate_id,
                 occurred_at, recorded_at, profile, payload, pii_subject, pii_ct, workflow_id,
                 correlation_id, causation_id)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             returning seq",
        )
        .bind(&e.event_id)
        .bind(&e.tenant_id)
        .bind(&e.event_type)
        .bind(&e.aggregate_type)
        .bind(&e.aggregate_id)
        .bind(e.occurred_at)
        .bind(e.recorded_at)
        .bind(&e.profile)
        .bind(sqlx::types::Json(&e.payload))
        .bind(&e.pii_subject)
        .bind(&e.pii_ct)
        .bind(&e.workflow_id)
        .bind(&e.correlation_id)
        .bind(&e.causation_id)
        .fetch_one(&mut *self.conn)
        .await?;
        Ok(seq)
    }
});

impl PostgresBackend {
    /// Connects, checks durability settings. Does not migrate.
    pub async fn open(settings: PostgresSettings) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(&settings.url)
            .map_err(|_| StoreError::Database("database.url is not a valid PostgreSQL URL".into()))?
            .application_name("aro-core-engine");
        let pool = match PgPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options.clone())
            .await
        {
            Ok(pool) => pool,
            Err(sqlx::Error::PoolTimedOut) => {
                return Err(unreachable_because(&options, settings.acquire_timeout).await);
            }
            Err(e) => return Err(e.into()),
        };
        check_durability(&pool, settings.allow_unsafe_durability).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The pool only says it gave up waiting; one direct attempt says why (connection refused, an
/// unknown host, a wrong password), which is what an operator needs to read.
async fn unreachable_because(options: &PgConnectOptions, wait: Duration) -> StoreError {
    use sqlx::Connection;
    let why = match tokio::time::timeout(wait, PgConnection::connect_with(options)).await {
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            "the server accepted a connection only after the pool gave up".to_owned()
        }
        Err(_) => format!("no answer within {} s", wait.as_secs()),
    };
    StoreError::Unavailable(format!("cannot connect to PostgreSQL: {why}"))
}

async fn check_durability(pool: &PgPool, allow_unsafe: bool) -> Result<(), StoreError> {
    let fsync: String = sqlx::query_scalar("select current_setting('fsync')")
        .fetch_one(pool)
        .await?;
    let commit: String = sqlx::query_scalar("select current_setting('synchronous_commit')")
        .fetch_one(pool)
        .await?;
    let pages: String = sqlx::query_scalar("select current_setting('full_page_writes')")
        .fetch_one(pool)
        .await?;
    let mut problems = Vec::new();
    if fsync != "on" {
        problems.push("fsync is off: a crash can corrupt the database".to_owned());
    }
    if commit == "off" {
        problems.push("synchronous_commit is off: committed writes can be lost".to_owned());
    }
    if pages != "on" {
        problems.push("full_page_writes is off: a crash can corrupt pages".to_owned());
    }
    if problems.is_empty() {
        return Ok(());
    }
    let message = problems.join("; ");
    if allow_unsafe {
        tracing::warn!(problems = %message, "starting with unsafe PostgreSQL durability settings (allowed by configuration)");
        Ok(())
    } else {
        Err(StoreError::UnsafeDurability(format!(
            "{message} (set database.allow_unsafe_durability = true to start anyway)"
        )))
    }
}

async fn run_job(conn: &mut PgConnection, job: Job) -> Result<JobEnd, StoreError> {
    let mut tx = PgTx {
        conn,
        holds_event_lock: false,
    };
    let raw: &mut dyn BackendTx = &mut tx;
    AssertUnwindSafe(job(raw))
        .catch_unwind()
        .await
        .map_err(|_| StoreError::Database("a storage job panicked".into()))
}

#[async_trait]
impl Backend for PostgresBackend {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    async fn write(&self, job: Job) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        match run_job(&mut tx, job).await {
            Ok(JobEnd::Commit) => {
                tx.commit().await?;
                Ok(())
            }
            Ok(JobEnd::Rollback) => {
                tx.rollback().await?;
                Ok(())
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    async fn read(&self, job: Job) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("set transaction isolation level repeatable read, read only")
            .execute(&mut *tx)
            .await?;
        let result = run_job(&mut tx, job).await;
        let _ = tx.rollback().await;
        result.map(|_| ())
    }

    async fn migrate_up(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }

    async fn migrate_down(&self, steps: usize) -> Result<(), StoreError> {
        let applied = applied_versions(&self.pool).await?;
        if applied.is_empty() || steps == 0 {
            return Ok(());
        }
        let keep = applied.len().saturating_sub(steps);
        let target = if keep == 0 { 0 } else { applied[keep - 1] };
        MIGRATOR
            .undo(&self.pool, target)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }

    async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        let applied = applied_versions(&self.pool).await?;
        Ok(MigrationStatus {
            migrations: MIGRATOR
                .iter()
                .filter(|m| m.migration_type.is_up_migration())
                .map(|m| MigrationState {
                    version: m.version,
                    description: m.description.to_string(),
                    applied: applied.contains(&m.version),
                })
                .collect(),
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

async fn applied_versions(pool: &PgPool) -> Result<Vec<i64>, StoreError> {
    let mut conn = pool.acquire().await?;
    conn.ensure_migrations_table()
        .await
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    let mut applied: Vec<i64> = conn
        .list_applied_migrations()
        .await
        .map_err(|e| StoreError::Migration(e.to_string()))?
        .into_iter()
        .map(|m| m.version)
        .collect();
    applied.sort_unstable();
    Ok(applied)
}
