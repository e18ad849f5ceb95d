//! What an engine implements. [`Backend`] runs jobs in transactions and manages its schema;
//! [`BackendTx`] is the row-level interface a job sees. The SQL both engines share is written
//! once, in [`impl_backend_tx!`]; each engine adds only what differs (locking, event sequence
//! assignment, claiming with `SKIP LOCKED`).

use crate::error::StoreError;
use crate::rows::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

/// How a job ended: commit its writes or undo them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    Commit,
    Rollback,
}

/// A unit of work run inside one transaction.
pub type Job = Box<dyn for<'t> FnOnce(&'t mut dyn BackendTx) -> BoxFuture<'t, JobEnd> + Send>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// One applied or pending migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    pub version: i64,
    pub description: String,
    pub applied: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub migrations: Vec<MigrationState>,
}

impl MigrationStatus {
    pub fn is_current(&self) -> bool {
        self.migrations.iter().all(|m| m.applied)
    }

    pub fn pending(&self) -> usize {
        self.migrations.iter().filter(|m| !m.applied).count()
    }
}

#[async_trait]
pub trait Backend: Send + Sync + 'static {
    fn engine(&self) -> Engine;
    /// Runs `job` in a write transaction. SQLite commits concurrent jobs together (one fsync
    /// for many), PostgreSQL runs each in its own transaction.
    async fn write(&self, job: Job) -> Result<(), StoreError>;
    /// Runs `job` against a consistent read view; writes are refused.
    async fn read(&self, job: Job) -> Result<(), StoreError>;
    async fn migrate_up(&self) -> Result<(), StoreError>;
    /// Reverts the newest `steps` applied migrations.
    async fn migrate_down(&self, steps: usize) -> Result<(), StoreError>;
    async fn migration_status(&self) -> Result<MigrationStatus, StoreError>;
    /// The database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    async fn close(&self);
}

/// Row-level operations inside one transaction.
#[async_trait]
pub trait BackendTx:
    crate::subscriptions::SubscriptionRows
    + crate::engine_rows::EngineRows
    + crate::tenant_credentials::TenantCredentialRows
    + Send
{
    // --- engine-specific ---
    /// Serialises transactions that touch the same logical key (e.g. one booking's identity)
    /// until this transaction ends.
    async fn lock(&mut self, key: &str) -> Result<(), StoreError>;
    /// Appends an event and returns its seq. Seqs become visible in seq order.
    async fn append_event(&mut self, event: &NewEventRow) -> Result<i64, StoreError>;

    // --- shared (impl_backend_tx!) ---
    async fn insert_tenant(&mut self, row: &TenantRow) -> Result<bool, StoreError>;
    async fn update_tenant(&mut self, row: &TenantRow) -> Result<bool, StoreError>;
    async fn get_tenant(&mut self, id: &str) -> Result<Option<TenantRow>, StoreError>;
    async fn list_tenants(&mut self) -> Result<Vec<TenantRow>, StoreError>;

    async fn get_data_key(
        &mut self,
        tenant_id: &str,
        subject_id: &str,
    ) -> Result<Option<DataKeyRow>, StoreError>;
    async fn insert_data_key(&mut self, row: &DataKeyRow) -> Result<bool, StoreError>;
    async fn delete_data_key(
        &mut self,
        tenant_id: &str,
        subject_id: &str,
    ) -> Result<bool, StoreError>;

    async fn insert_customer(&mut self, row: &CustomerRow) -> Result<(), StoreError>;
    async fn update_customer(&mut self, row: &CustomerRow) -> Result<bool, StoreError>;
    async fn get_customer(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<CustomerRow>, StoreError>;
    async fn customers_by_phone_index(
        &mut self,
        tenant_id: &str,
        phone_index: &str,
    ) -> Result<Vec<CustomerRow>, StoreError>;

    /// Inserts unless the booking identity exists; false when it did.
    async fn insert_appointment(&mut self, row: &AppointmentRow) -> Result<bool, StoreError>;
    /// Optimistic update: only when the stored version is `expected_version`.
    async fn update_appointment(
        &mut self,
        row: &AppointmentRow,
        expected_version: i64,
    ) -> Result<bool, StoreError>;
    async fn get_appointment(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<AppointmentRow>, StoreError>;
    /// By the provider's identity or any alias of it.
    async fn appointment_by_external(
        &mut self,
        tenant_id: &str,
        source: &str,
        external_id: &str,
    ) -> Result<Option<AppointmentRow>, StoreError>;
    async fn insert_alias(
        &mut self,
        tenant_id: &str,
        source: &str,
        external_id: &str,
        appointment_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn appointments_for_customer(
        &mut self,
        tenant_id: &str,
        customer_id: &str,
    ) -> Result<Vec<AppointmentRow>, StoreError>;

    async fn events(&mut self, filter: &EventFilter) -> Result<Vec<EventRow>, StoreError>;
    /// The seq just before the first event at or after `at` (a replay cursor).
    async fn seq_before_time(
        &mut self,
        tenant_id: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError>;
    async fn max_seq(&mut self) -> Result<i64, StoreError>;
}

/// Implements the shared part of [`BackendTx`] for an engine's transaction type, which must
/// have a field `conn: &mut <Engine>Connection`. Engine-specific methods are passed in the
/// braces and pasted into the same impl.
#[macro_export]
macro_rules! impl_backend_tx {
    ($ty:ty, $db:ty, { $($engine_specific:tt)* }) => {
        #[$crate::__private::async_trait]
        impl $crate::backend::BackendTx for $ty {
            $($engine_specific)*

            async fn insert_tenant(&mut self, row: &$crate::rows::TenantRow) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "insert into tenants (id, name, zone, region, clinic_phone, review_link, default_language,
                         classification_residency, permissions, config, config_version, created_at, updated_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                     on conflict (id) do nothing",
                )
                .bind(&row.id).bind(&row.name).bind(&row.zone).bind(&row.region)
                .bind(&row.clinic_phone).bind(&row.review_link).bind(&row.default_language)
                .bind(&row.classification_residency).bind(&row.permissions).bind(&row.config)
                .bind(row.config_version).bind(row.created_at).bind(row.updated_at)
                .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn update_tenant(&mut self, row: &$crate::rows::TenantRow) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "update tenants set name = $2, zone = $3, region = $4, clinic_phone = $5, review_link = $6,
                         default_language = $7, classification_residency = $8, permissions = $9, config = $10,
                         config_version = $11, updated_at = $12
                     where id = $1",
                )
                .bind(&row.id).bind(&row.name).bind(&row.zone).bind(&row.region)
                .bind(&row.clinic_phone).bind(&row.review_link).bind(&row.default_language)
                .bind(&row.classification_residency).bind(&row.permissions).bind(&row.config)
                .bind(row.config_version).bind(row.updated_at)
                .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn get_tenant(&mut self, id: &str) -> Result<Option<$crate::rows::TenantRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::rows::TenantRow>("select * from tenants where id = $1")
                    .bind(id).fetch_optional(&mut *self.conn).await?)
            }

            async fn list_tenants(&mut self) -> Result<Vec<$crate::rows::TenantRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::rows::TenantRow>("select * from tenants order by id")
                    .fetch_all(&mut *self.conn).await?)
            }

            async fn get_data_key(&mut self, tenant_id: &str, subject_id: &str) -> Result<Option<$crate::rows::DataKeyRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::rows::DataKeyRow>(
                    "select * from data_keys where tenant_id = $1 and subject_id = $2")
                    .bind(tenant_id).bind(subject_id).fetch_optional(&mut *self.conn).await?)
            }

            async fn insert_data_key(&mut self, row: &$crate::rows::DataKeyRow) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "insert into data_keys (tenant_id, subject_id, wrapped_key, created_at) values ($1, $2, $3, $4)
                     on conflict (tenant_id, subject_id) do nothing")
                    .bind(&row.tenant_id).bind(&row.subject_id).bind(&row.wrapped_key).bind(row.created_at)
                    .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_data_key(&mut self, tenant_id: &str, subject_id: &str) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "delete from data_keys where tenant_id = $1 and subject_id = $2")
                    .bind(tenant_id).bind(subject_id).execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn insert_customer(&mut self, row: &$crate::rows::CustomerRow) -> Result<(), $crate::StoreError> {
                $crate::__private::sqlx::query::<$db>(
                    "insert into customers (tenant_id, id, name_ct, phone_ct, phone_index, email_ct, zone, language,
                         risk_score, no_show_count, created_at, updated_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
                    .bind(&row.tenant_id).bind(&row.id).bind(&row.name_ct).bind(&row.phone_ct)
                    .bind(&row.phone_index).bind(&row.email_ct).bind(&row.zone).bind(&row.language)
                    .bind(row.risk_score).bind(row.no_show_count).bind(row.created_at).bind(row.updated_at)
                    .execute(&mut *self.conn).await?;
                Ok(())
            }

            async fn update_customer(&mut self, row: &$crate::rows::CustomerRow) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "update customers set name_ct = $3, phone_ct = $4, phone_index = $5, email_ct = $6, zone = $7,
                         language = $8, risk_score = $9, no_show_count = $10, updated_at = $11
                     where tenant_id = $1 and id = $2")
                    .bind(&row.tenant_id).bind(&row.id).bind(&row.name_ct).bind(&row.phone_ct)
                    .bind(&row.phone_index).bind(&row.email_ct).bind(&row.zone).bind(&row.language)
                    .bind(row.risk_score).bind(row.no_show_count).bind(row.updated_at)
                    .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn get_customer(&mut self, tenant_id: &str, id: &str) -> Result<Option<$crate::rows::CustomerRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::rows::CustomerRow>(
                    "select * from customers where tenant_id = $1 and id = $2")
                    .bind(tenant_id).bind(id).fetch_optional(&mut *self.conn).await?)
            }

            async fn customers_by_phone_index(&mut self, tenant_id: &str, phone_index: &str) -> Result<Vec<$crate::rows::CustomerRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::rows::CustomerRow>(
                    "select * from customers where tenant_id = $1 and phone_index = $2 order by created_at, id")
                    .bind(tenant_id).bind(phone_index).fetch_all(&mut *self.conn).await?)
            }

            async fn insert_appointment(&mut self, row: &$crate::rows::AppointmentRow) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "insert into appointments (tenant_id, id, customer_id, source, external_id, status, starts_at, ends_at,
                         service_type, price_minor, currency, zone, language, channel, cancel_url, reschedule_url,
                         needs_contact, workflow_id, version, created_at, updated_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
                     on conflict (tenant_id, source, external_id) do nothing")
                    .bind(&row.tenant_id).bind(&row.id).bind(&row.customer_id).bind(&row.source)
                    .bind(&row.external_id).bind(&row.status).bind(row.starts_at).bind(row.ends_at)
                    .bind(&row.service_type).bind(row.price_minor).bind(&row.currency).bind(&row.zone)
                    .bind(&row.language).bind(&row.channel).bind(&row.cancel_url).bind(&row.reschedule_url)
                    .bind(row.needs_contact).bind(&row.workflow_id).bind(row.version)
                    .bind(row.created_at).bind(row.updated_at)
                    .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn update_appointment(&mut self, row: &$crate::rows::AppointmentRow, expected_version: i64) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "update appointments set customer_id = $3, status = $4, starts_at = $5, ends_at = $6,
                         service_type = $7, price_minor = $8, currency = $9, zone = $10, language = $11, channel = $12,
                         cancel_url = $13, reschedule_url = $14, needs_contact = $15, workflow_id = $16,
                         version = $17, updated_at = $18
                     where tenant_id = $1 and id = $2 and version = $19")
                    .bind(&row.tenant_id).bind(&row.id).bind(&row.customer_id).bind(&row.status)
                    .bind(row.starts_at).bind(row.ends_at).bind(&row.service_type).bind(row.price_minor)
                    .bind(&row.currency).bind(&row.zone).bind(&row.language).bind(&row.channel)
                    .bind(&row.cancel_url).bind(&row.reschedule_url).bind(row.needs_contact)
                    .bind(&row.workflow_id).bind(row.version).bind(row.updated_at).bind(expected_version)
                    .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn get_appointment(&mut self, tenant_id: &str, id: &str) -> Result<Option<$crate::rows::AppointmentRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::rows::AppointmentRow>(
                    "select * from appointments where tenant_id = $1 and id = $2")
                    .bind(tenant_id).bind(id).fetch_optional(&mut *self.conn).await?)
            }

            async fn appointment_by_external(&mut self, tenant_id: &str, source: &str, external_id: &str) -> Result<Option<$crate::rows::AppointmentRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::rows::AppointmentRow>(
                    "select a.* from appointments a
                     where a.tenant_id = $1 and a.source = $2 and a.external_id = $3
                     union all
                     select a.* from appointment_aliases al
                     join appointments a on a.tenant_id = al.tenant_id and a.id = al.appointment_id
                     where al.tenant_id = $1 and al.source = $2 and al.external_id = $3
                     limit 1")
                    .bind(tenant_id).bind(source).bind(external_id).fetch_optional(&mut *self.conn).await?)
            }

            async fn insert_alias(&mut self, tenant_id: &str, source: &str, external_id: &str, appointment_id: &str, now: $crate::__private::DateTime<$crate::__private::Utc>) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "insert into appointment_aliases (tenant_id, source, external_id, appointment_id, created_at)
                     values ($1, $2, $3, $4, $5) on conflict (tenant_id, source, external_id) do nothing")
                    .bind(tenant_id).bind(source).bind(external_id).bind(appointment_id).bind(now)
                    .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn appointments_for_customer(&mut self, tenant_id: &str, customer_id: &str) -> Result<Vec<$crate::rows::AppointmentRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::rows::AppointmentRow>(
                    "select * from appointments where tenant_id = $1 and customer_id = $2 order by starts_at, id")
                    .bind(tenant_id).bind(customer_id).fetch_all(&mut *self.conn).await?)
            }

            async fn events(&mut self, filter: &$crate::rows::EventFilter) -> Result<Vec<$crate::rows::EventRow>, $crate::StoreError> {
                // -- why: each optional filter is "($n is null or column = $n)" so one statement
                // serves every combination; the tenant's (tenant_id, …, seq) indexes carry it.
                Ok($crate::__private::sqlx::query_as::<$db, $crate::rows::EventRow>(
                    "select * from events
                     where seq > $1
                       and ($2 is null or tenant_id = $2)
                       and ($3 is null or event_type = $3)
                       and ($4 is null or aggregate_id = $4)
                     order by seq
                     limit $5")
                    .bind(filter.after).bind(&filter.tenant_id).bind(&filter.event_type)
                    .bind(&filter.aggregate_id).bind(filter.limit)
                    .fetch_all(&mut *self.conn).await?)
            }

            async fn seq_before_time(&mut self, tenant_id: &str, at: $crate::__private::DateTime<$crate::__private::Utc>) -> Result<i64, $crate::StoreError> {
                let first: Option<i64> = $crate::__private::sqlx::query_scalar::<$db, Option<i64>>(
                    "select min(seq) from events where tenant_id = $1 and occurred_at >= $2")
                    .bind(tenant_id).bind(at).fetch_one(&mut *self.conn).await?;
                match first {
                    Some(seq) => Ok(seq - 1),
                    None => self.max_seq().await,
                }
            }

            async fn max_seq(&mut self) -> Result<i64, $crate::StoreError> {
                let max: Option<i64> = $crate::__private::sqlx::query_scalar::<$db, Option<i64>>(
                    "select max(seq) from events").fetch_one(&mut *self.conn).await?;
                Ok(max.unwrap_or(0))
            }
        }
    };
}
