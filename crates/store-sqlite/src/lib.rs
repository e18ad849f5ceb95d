//! SQLite, the embedded default. WAL journal, `synchronous = FULL`, foreign keys on, a busy
//! timeout, and exactly one writer connection: a writer task takes every write job waiting in
//! its queue, runs each inside its own savepoint of one `BEGIN IMMEDIATE` transaction, and
//! commits them together — one fsync for the whole group, so durable writes are not capped at
//! one fsync each. Reads run on a separate pool of read-only connections, each job in its own
//! snapshot.

use aro_store::StoreError;
use aro_store::backend::{
    Backend, BackendTx, Engine, Job, JobEnd, MigrationState, MigrationStatus,
};
use aro_store::engine_rows::claimable_executions_sql;
use async_trait::async_trait;
use futures::FutureExt;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/sqlite");

/// Most jobs committed together; bounds the time a job waits for the group's fsync.
const MAX_GROUP: usize = 256;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How a SQLite store is opened.
#[derive(Debug, Clone)]
pub struct SqliteSettings {
    pub path: PathBuf,
    /// `FULL` unless the URL says otherwise (`?synchronous=normal`); anything below FULL can
    /// lose committed writes on power loss and is refused unless `allow_unsafe_durability`.
    pub synchronous: SqliteSynchronous,
    pub allow_unsafe_durability: bool,
    pub read_connections: u32,
}

impl SqliteSettings {
    /// Reads `sqlite://<path>[?synchronous=full|normal|off|extra]`.
    pub fn from_url(url: &str, allow_unsafe_durability: bool) -> Result<Self, StoreError> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::Database("not a sqlite:// URL".into()))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err(StoreError::Database("the sqlite URL names no file".into()));
        }
        let mut synchronous = SqliteSynchronous::Full;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("synchronous", v)) => {
                    synchronous = SqliteSynchronous::from_str(v).map_err(|_| {
                        StoreError::Database(format!("unknown synchronous mode {v:?}"))
                    })?;
                }
                _ => {
                    return Err(StoreError::Database(format!(
                        "unsupported sqlite URL parameter {pair:?}"
                    )));
                }
            }
        }
        Ok(Self {
            path: PathBuf::from(path),
            synchronous,
            allow_unsafe_durability,
            read_connections: 4,
        })
    }

    fn options(&self) -> SqliteConnectOptions {
        SqliteConnectOptions::new()
            .filename(&self.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(self.synchronous)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .pragma("temp_store", "memory")
    }
}

type Reply = oneshot::Sender<Result<(), StoreError>>;

struct WriteRequest {
    job: Job,
    done: Reply,
}

pub struct SqliteBackend {
    writer: mpsc::Sender<WriteRequest>,
    readers: SqlitePool,
    /// The writer connection while no writer task runs (migrations use it).
    path: PathBuf,
    settings: SqliteSettings,
    writer_task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The engine's own transaction: the row-level interface over one connection.
pub struct SqliteTx<'c> {
    conn: &'c mut SqliteConnection,
}

aro_store::impl_subscription_rows!(SqliteTx<'_>, sqlx::Sqlite);
aro_store::impl_tenant_credential_rows!(SqliteTx<'_>, sqlx::Sqlite);

aro_store::impl_engine_rows!(SqliteTx<'_>, sqlx::Sqlite, {
    async fn claim_due_timers(
        &mut self,
        now: chrono::DateTime<chrono::Utc>,
        limit: i64,
    ) -> Result<Vec<aro_store::engine_rows::TimerRow>, StoreError> {
        // One writer: the rows cannot be taken by anyone else before this transaction ends.
        Ok(sqlx::query_as(
            "select * from timers where status = 'pending' and due_at <= $1 order by due_at, id limit $2",
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
        // One writer: the rows cannot be taken by anyone else before this transaction ends.
        let sql = claimable_executions_sql(claim, "");
        let mut query = sqlx::query_as(&sql).bind(claim.now).bind(claim.limit);
        for text in claim.text_binds() {
            query = query.bind(text);
        }
        Ok(query.fetch_all(&mut *self.conn).await?)
    }
});

aro_store::impl_backend_tx!(SqliteTx<'_>, sqlx::Sqlite, {
    async fn lock(&mut self, _key: &str) -> Result<(), StoreError> {
        // One writer: every write transaction is already serialised.
        Ok(())
    }

    async fn append_event(&mut self, e: &aro_store::rows::NewEventRow) -> Result<i64, StoreError> {
        // -- why: seq comes from AUTOINCREMENT under the single writer, so seq order is commit
        // order and a reader paging by seq can never skip a later-committing smaller seq.
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

impl SqliteBackend {
    /// Opens (creating the file if needed), checks durability settings and starts the writer.
    /// Does not migrate: call [`Backend::migrate_up`] (or `aro migrate up`).
    pub async fn open(settings: SqliteSettings) -> Result<Self, StoreError> {
        if let Some(parent) = settings.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let mut writer = SqliteConnection::connect_with(&settings.options()).await?;
        check_durability(&mut writer, &settings).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(settings.read_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(settings.options().read_only(true).create_if_missing(false))
            .await?;
        let (tx, rx) = mpsc::channel(4 * MAX_GROUP);
        let task = tokio::spawn(writer_loop(writer, rx));
        Ok(Self {
            writer: tx,
            readers,
            path: settings.path.clone(),
            settings,
            writer_task: tokio::sync::Mutex::new(Some(task)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Migrations take their own connection; SQLite's file lock and the busy timeout keep them
    /// from interleaving with the writer's groups.
    async fn migration_pool(&self) -> Result<SqlitePool, StoreError> {
        Ok(SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(self.settings.options())
            .await?)
    }
}

async fn check_durability(
    conn: &mut SqliteConnection,
    settings: &SqliteSettings,
) -> Result<(), StoreError> {
    let journal: String = sqlx::query_scalar("pragma journal_mode")
        .fetch_one(&mut *conn)
        .await?;
    let synchronous: i64 = sqlx::query_scalar("pragma synchronous")
        .fetch_one(&mut *conn)
        .await?;
    let fk: i64 = sqlx::query_scalar("pragma foreign_keys")
        .fetch_one(&mut *conn)
        .await?;
    let mut problems = Vec::new();
    if !journal.eq_ignore_ascii_case("wal") {
        problems.push(format!("journal_mode is {journal}, expected wal"));
    }
    // 2 = FULL, 3 = EXTRA.
    if synchronous < 2 {
        problems.push(format!(
            "synchronous is {}, expected FULL: committed writes could be lost on power failure",
            match synchronous {
                0 => "OFF",
                _ => "NORMAL",
            }
        ));
    }
    if fk != 1 {
        problems.push("foreign_keys is off".to_owned());
    }
    if problems.is_empty() {
        return Ok(());
    }
    let message = problems.join("; ");
    if settings.allow_unsafe_durability {
        tracing::warn!(problems = %message, "starting with unsafe SQLite durability settings (allowed by configuration)");
        Ok(())
    } else {
        Err(StoreError::UnsafeDurability(format!(
            "{message} (set database.allow_unsafe_durability = true to start anyway)"
        )))
    }
}

async fn run_job(conn: &mut SqliteConnection, job: Job) -> Result<JobEnd, StoreError> {
    let mut tx = SqliteTx { conn };
    let raw: &mut dyn BackendTx = &mut tx;
    AssertUnwindSafe(job(raw))
        .catch_unwind()
        .await
        .map_err(|_| StoreError::Database("a storage job panicked".into()))
}

async fn writer_loop(mut conn: SqliteConnection, mut queue: mpsc::Receiver<WriteRequest>) {
    let mut group: Vec<WriteRequest> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = queue.recv().await {
        group.push(first);
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        metrics::histogram!("aro_store_sqlite_group_size").record(group.len() as f64);
        commit_group(&mut conn, &mut group).await;
    }
    let _ = conn.close().await;
}

/// Runs every job of the group in its own savepoint of one transaction and commits once.
async fn commit_group(conn: &mut SqliteConnection, group: &mut Vec<WriteRequest>) {
    if let Err(e) = sqlx::query("begin immediate").execute(&mut *conn).await {
        let e = StoreError::from(e);
        for request in group.drain(..) {
            let _ = request
                .done
                .send(Err(StoreError::Unavailable(e.to_string())));
        }
        return;
    }
    let mut outcomes: Vec<(Reply, Result<(), StoreError>)> = Vec::with_capacity(group.len());
    for request in group.drain(..) {
        let outcome = async {
            sqlx::query("savepoint job").execute(&mut *conn).await?;
            let end = run_job(conn, request.job).await;
            match end {
                Ok(JobEnd::Commit) => {
                    sqlx::query("release job").execute(&mut *conn).await?;
                }
                Ok(JobEnd::Rollback) | Err(_) => {
                    sqlx::query("rollback to job").execute(&mut *conn).await?;
                    sqlx::query("release job").execute(&mut *conn).await?;
                }
            }
            end.map(|_| ())
        }
        .await;
        outcomes.push((request.done, outcome));
    }
    match sqlx::query("commit").execute(&mut *conn).await {
        Ok(_) => {
            for (done, outcome) in outcomes {
                let _ = done.send(outcome);
            }
        }
        Err(e) => {
            let message = StoreError::from(e).to_string();
            let _ = sqlx::query("rollback").execute(&mut *conn).await;
            for (done, _) in outcomes {
                let _ = done.send(Err(StoreError::Unavailable(format!(
                    "commit failed: {message}"
                ))));
            }
        }
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    async fn write(&self, job: Job) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        self.writer
            .send(WriteRequest { job, done })
            .await
            .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the writer stopped".into()))?
    }

    async fn read(&self, job: Job) -> Result<(), StoreError> {
        // A deferred transaction pins one WAL snapshot for the whole job. sqlx's transaction
        // rolls back when dropped, so a caller that goes away mid-read (a client hanging up)
        // returns a clean connection to the pool, not one stuck inside a transaction.
        let mut tx = self.readers.begin().await?;
        let result = run_job(&mut tx, job).await;
        let _ = tx.rollback().await;
        result.map(|_| ())
    }

    async fn migrate_up(&self) -> Result<(), StoreError> {
        let pool = self.migration_pool().await?;
        let result = MIGRATOR.run(&pool).await;
        pool.close().await;
        result.map_err(|e| StoreError::Migration(e.to_string()))
    }

    async fn migrate_down(&self, steps: usize) -> Result<(), StoreError> {
        let pool = self.migration_pool().await?;
        let applied = applied_versions(&pool).await;
        let result = match applied {
            Ok(applied) if !applied.is_empty() && steps > 0 => {
                let keep = applied.len().saturating_sub(steps);
                let target = if keep == 0 { 0 } else { applied[keep - 1] };
                MIGRATOR
                    .undo(&pool, target)
                    .await
                    .map_err(|e| StoreError::Migration(e.to_string()))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        pool.close().await;
        result
    }

    async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        let pool = self.migration_pool().await?;
        let applied = applied_versions(&pool).await;
        pool.close().await;
        Ok(migration_status(&applied?))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.readers.acquire().await?;
        sqlx::query("select 1").execute(&mut *conn).await?;
        Ok(())
    }

    async fn close(&self) {
        self.readers.close().await;
        if let Some(task) = self.writer_task.lock().await.take() {
            // Dropping the last sender ends the loop once queued jobs are done; abort covers a
            // store whose handles are still alive elsewhere.
            task.abort();
            let _ = task.await;
        }
    }
}

async fn applied_versions(pool: &SqlitePool) -> Result<Vec<i64>, StoreError> {
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

fn migration_status(applied: &[i64]) -> MigrationStatus {
    MigrationStatus {
        migrations: MIGRATOR
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| MigrationState {
                version: m.version,
                description: m.description.to_string(),
                applied: applied.contains(&m.version),
            })
            .collect(),
    }
}
