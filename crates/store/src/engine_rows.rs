//! Rows for the workflow engine: commands and idempotency keys, workflow instances, timers, the
//! execution queue and its dead letters, messages, reminders, consent, escalations, payment
//! links, the audit trail, webhook receipts and the sandbox clock.

use crate::error::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CommandRow {
    pub tenant_id: String,
    pub id: String,
    pub command_type: String,
    pub status: String,
    pub aggregate_type: String,
    pub aggregate_id: Option<String>,
    pub workflow_id: Option<String>,
    pub correlation_id: String,
    pub response: Json<Value>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdempotencyRow {
    pub tenant_id: String,
    pub key: String,
    pub request_hash: String,
    pub command_id: Option<String>,
    pub status_code: i64,
    pub response: Json<Value>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkflowRow {
    pub tenant_id: String,
    pub id: String,
    pub kind: String,
    pub state: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub step: Option<String>,
    pub data: Json<Value>,
    pub attempt: i64,
    pub correlation_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TimerRow {
    pub id: String,
    pub tenant_id: String,
    pub workflow_id: Option<String>,
    pub kind: String,
    pub aggregate_id: String,
    pub due_at: DateTime<Utc>,
    pub payload: Json<Value>,
    pub status: String,
    pub attempt: i64,
    pub last_error: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExecutionRow {
    pub id: String,
    pub tenant_id: String,
    pub correlation_id: String,
    pub command_type: String,
    pub subject_id: Option<String>,
    pub payload_ct: Vec<u8>,
    pub status: String,
    /// Every claim counts here, including claims the executor turned away unattempted.
    pub attempt: i64,
    pub max_attempts: i64,
    /// Claims the executor turned away without calling the provider (its own breaker or rate
    /// limit): not attempts, so attempts used are `attempt - deferrals`; capped on their own.
    pub deferrals: i64,
    pub available_at: DateTime<Utc>,
    pub not_after: Option<DateTime<Utc>>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    /// The lease the latest claim handed out (docs/adr/0006, "one lease per claim"): replaced by
    /// every claim, kept after the lease ends so a repeated report from it is still recognised.
    pub lease_id: Option<String>,
    pub workflow_id: Option<String>,
    pub aggregate_id: Option<String>,
    pub last_error_code: Option<String>,
    pub last_error_message: Option<String>,
    pub provider_ref: Option<String>,
    pub output: Option<Json<Value>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeadLetterRow {
    pub tenant_id: String,
    pub id: String,
    pub execution_id: String,
    pub command_type: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub attempts: i64,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub tenant_id: String,
    pub id: String,
    pub customer_id: Option<String>,
    pub appointment_id: Option<String>,
    pub direction: String,
    pub channel: String,
    pub purpose: String,
    pub counterpart_ct: Option<Vec<u8>>,
    pub counterpart_index: Option<String>,
    pub body_ct: Option<Vec<u8>>,
    pub status: String,
    pub provider_ref: Option<String>,
    pub error_code: Option<String>,
    pub execution_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReminderLogRow {
    pub tenant_id: String,
    pub id: String,
    pub appointment_id: String,
    pub kind: String,
    pub due_at: DateTime<Utc>,
    pub status: String,
    pub reason: Option<String>,
    pub message_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsentRow {
    pub tenant_id: String,
    pub phone_index: String,
    pub channel: String,
    pub status: String,
    pub source: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EscalationRow {
    pub tenant_id: String,
    pub id: String,
    pub appointment_id: Option<String>,
    pub customer_id: Option<String>,
    pub reason: String,
    pub status: String,
    pub detail: Json<Value>,
    pub notified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaymentLinkRow {
    pub tenant_id: String,
    pub id: String,
    pub appointment_id: Option<String>,
    pub customer_id: Option<String>,
    pub provider_ref: Option<String>,
    pub url: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub tenant_id: String,
    pub actor: String,
    pub action: String,
    pub subject: Option<String>,
    pub detail: Json<Value>,
    pub occurred_at: DateTime<Utc>,
    pub prev_hash: String,
    pub hash: String,
}

/// Engine rows, one part of every engine's [`crate::backend::BackendTx`].
#[async_trait]
pub trait EngineRows: Send {
    // --- engine-specific ---
    /// Pending timers due at or before `now`, oldest first, locked for this transaction
    /// (PostgreSQL: `for update skip locked`, so replicas never take the same one).
    async fn claim_due_timers(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<TimerRow>, StoreError>;
    /// Executions ready (or whose lease lapsed) at `claim.now` (real time) that the claimant
    /// may take, oldest first, at most `claim.limit`, locked for this transaction (PostgreSQL:
    /// `for update skip locked`).
    async fn claim_executions(
        &mut self,
        claim: &ExecutionClaim<'_>,
    ) -> Result<Vec<ExecutionRow>, StoreError>;

    // --- shared ---
    async fn insert_command(&mut self, row: &CommandRow) -> Result<(), StoreError>;
    async fn get_command(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<CommandRow>, StoreError>;
    async fn get_idempotency(
        &mut self,
        tenant_id: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRow>, StoreError>;
    async fn insert_idempotency(&mut self, row: &IdempotencyRow) -> Result<bool, StoreError>;
    async fn delete_expired_idempotency(&mut self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    async fn insert_workflow(&mut self, row: &WorkflowRow) -> Result<(), StoreError>;
    async fn update_workflow(&mut self, row: &WorkflowRow) -> Result<bool, StoreError>;
    async fn get_workflow(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<WorkflowRow>, StoreError>;
    async fn workflows_for_aggregate(
        &mut self,
        tenant_id: &str,
        aggregate_id: &str,
    ) -> Result<Vec<WorkflowRow>, StoreError>;

    async fn insert_timer(&mut self, row: &TimerRow) -> Result<(), StoreError>;
    async fn update_timer(&mut self, row: &TimerRow) -> Result<bool, StoreError>;
    async fn pending_timers_for_aggregate(
        &mut self,
        tenant_id: &str,
        aggregate_id: &str,
    ) -> Result<Vec<TimerRow>, StoreError>;
    /// The earliest pending timer due at or before `until`.
    async fn next_due_timer(
        &mut self,
        until: DateTime<Utc>,
    ) -> Result<Option<TimerRow>, StoreError>;
    async fn count_pending_timers(&mut self, until: DateTime<Utc>) -> Result<i64, StoreError>;

    async fn insert_execution(&mut self, row: &ExecutionRow) -> Result<(), StoreError>;
    async fn update_execution(&mut self, row: &ExecutionRow) -> Result<bool, StoreError>;
    async fn get_execution(&mut self, id: &str) -> Result<Option<ExecutionRow>, StoreError>;
    /// Locks the execution's row for this transaction when `lease_id` is its current lease (the
    /// one its latest claim handed out); false when it is not. A write rather than a read, so
    /// on PostgreSQL a re-claim that commits first is seen (the condition is checked again
    /// against the committed row) and one that comes later waits for this transaction.
    async fn lock_execution_lease(&mut self, id: &str, lease_id: &str) -> Result<bool, StoreError>;
    async fn open_executions_for_aggregate(
        &mut self,
        tenant_id: &str,
        aggregate_id: &str,
    ) -> Result<Vec<ExecutionRow>, StoreError>;
    /// Executions not yet finished (ready or leased), for "has the work settled?".
    async fn count_open_executions(&mut self) -> Result<i64, StoreError>;

    async fn insert_dead_letter(&mut self, row: &DeadLetterRow) -> Result<(), StoreError>;
    async fn update_dead_letter(&mut self, row: &DeadLetterRow) -> Result<bool, StoreError>;
    async fn get_dead_letter(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<DeadLetterRow>, StoreError>;
    async fn list_dead_letters(
        &mut self,
        tenant_id: &str,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DeadLetterRow>, StoreError>;

    async fn insert_message(&mut self, row: &MessageRow) -> Result<(), StoreError>;
    async fn update_message(&mut self, row: &MessageRow) -> Result<bool, StoreError>;
    async fn get_message(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<MessageRow>, StoreError>;
    async fn message_by_provider_ref(
        &mut self,
        tenant_id: &str,
        provider_ref: &str,
    ) -> Result<Option<MessageRow>, StoreError>;
    /// Messages to or from a number (blind index) created at or after `since`, oldest first.
    async fn messages_for_counterpart(
        &mut self,
        tenant_id: &str,
        counterpart_index: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<MessageRow>, StoreError>;
    async fn messages_for_appointment(
        &mut self,
        tenant_id: &str,
        appointment_id: &str,
    ) -> Result<Vec<MessageRow>, StoreError>;

    async fn insert_reminder_log(&mut self, row: &ReminderLogRow) -> Result<(), StoreError>;
    async fn update_reminder_log(&mut self, row: &ReminderLogRow) -> Result<bool, StoreError>;
    async fn reminder_logs_for_appointment(
        &mut self,
        tenant_id: &str,
        appointment_id: &str,
    ) -> Result<Vec<ReminderLogRow>, StoreError>;

    async fn get_consent(
        &mut self,
        tenant_id: &str,
        phone_index: &str,
        channel: &str,
    ) -> Result<Option<ConsentRow>, StoreError>;
    async fn upsert_consent(&mut self, row: &ConsentRow) -> Result<(), StoreError>;

    async fn insert_escalation(&mut self, row: &EscalationRow) -> Result<(), StoreError>;
    async fn update_escalation(&mut self, row: &EscalationRow) -> Result<bool, StoreError>;
    async fn get_escalation(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<EscalationRow>, StoreError>;
    async fn list_escalations(
        &mut self,
        tenant_id: &str,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<EscalationRow>, StoreError>;

    async fn insert_payment_link(&mut self, row: &PaymentLinkRow) -> Result<(), StoreError>;
    async fn update_payment_link(&mut self, row: &PaymentLinkRow) -> Result<bool, StoreError>;
    async fn get_payment_link(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<PaymentLinkRow>, StoreError>;
    async fn payment_link_by_provider_ref(
        &mut self,
        tenant_id: &str,
        provider_ref: &str,
    ) -> Result<Option<PaymentLinkRow>, StoreError>;

    async fn last_audit(&mut self, tenant_id: &str) -> Result<Option<AuditRow>, StoreError>;
    async fn insert_audit(&mut self, row: &AuditRow) -> Result<i64, StoreError>;
    async fn audit_trail(
        &mut self,
        tenant_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError>;

    /// Records a provider's event identity; false when it was already recorded.
    async fn insert_webhook_receipt(
        &mut self,
        tenant_id: &str,
        provider: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    async fn clock_offset(&mut self) -> Result<Option<i64>, StoreError>;
    async fn set_clock_offset(&mut self, offset_ms: i64) -> Result<(), StoreError>;

    /// Upcoming appointments of everyone with this number (blind index), soonest first.
    async fn upcoming_appointments_for_phone(
        &mut self,
        tenant_id: &str,
        phone_index: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::rows::AppointmentRow>, StoreError>;
    /// Every appointment of the tenant (rebuild, reports), oldest first.
    async fn all_appointments(
        &mut self,
        tenant_id: &str,
    ) -> Result<Vec<crate::rows::AppointmentRow>, StoreError>;
    /// Every booking alias of the tenant (rebuild, its checks), by source and identity.
    async fn all_aliases(&mut self, tenant_id: &str) -> Result<Vec<AliasRow>, StoreError>;
    /// Forgets the read models that `aro events rebuild` recreates from the event log: booking
    /// aliases, appointments and patients (their data keys stay, so the personal data sealed in
    /// events and messages keeps opening).
    async fn clear_read_models(&mut self) -> Result<(), StoreError>;
}

/// Another identity of a booking (`appointment_aliases`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AliasRow {
    pub tenant_id: String,
    pub source: String,
    pub external_id: String,
    pub appointment_id: String,
    pub created_at: DateTime<Utc>,
}

/// What one claim may take. Every filter is part of the query, so that `limit` counts only rows
/// the claimant can use: filtering after the limit let another tenant's backlog (or work meant
/// for the other classification residency) fill every page and starve the claimant.
#[derive(Debug, Clone, Copy)]
pub struct ExecutionClaim<'a> {
    /// Real time: availability and leases are liveness, not business time.
    pub now: DateTime<Utc>,
    pub limit: i64,
    /// Only these command types (all when `None`).
    pub types: Option<&'a [String]>,
    /// Only these tenants (all when `None`, e.g. a `*` token).
    pub tenants: Option<&'a [String]>,
    /// Executions of `command_type` only for tenants whose `classification_residency` is
    /// `residency` (each tenant's LLM classification runs in exactly one place).
    pub resident: Option<ResidentType<'a>>,
}

#[derive(Debug, Clone, Copy)]
pub struct ResidentType<'a> {
    pub command_type: &'a str,
    pub residency: aro_domain::tenant::ClassificationResidency,
}

impl ExecutionClaim<'_> {
    /// The text parameters of [`claimable_executions_sql`], in placeholder order (after `$1` =
    /// now and `$2` = limit).
    pub fn text_binds(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        out.extend(self.types.unwrap_or_default().iter().map(String::as_str));
        out.extend(self.tenants.unwrap_or_default().iter().map(String::as_str));
        if let Some(r) = &self.resident {
            out.push(r.command_type);
            // As stored in `tenants.classification_residency`.
            out.push(match r.residency {
                aro_domain::tenant::ClassificationResidency::CoreEngine => "core-engine",
                aro_domain::tenant::ClassificationResidency::OpenclawExecutor => {
                    "openclaw-executor"
                }
            });
        }
        out
    }
}

/// The claim query for executions: ready and available, or leased with the lease lapsed, oldest
/// first; `$1` is now (real time), `$2` the limit, then [`ExecutionClaim::text_binds`].
/// An empty `types` or `tenants` list matches nothing.
pub fn claimable_executions_sql(claim: &ExecutionClaim<'_>, locking: &str) -> String {
    let mut next = 3;
    let mut list = |n: usize| -> String {
        let placeholders: Vec<String> = (next..next + n).map(|i| format!("${i}")).collect();
        next += n;
        placeholders.join(", ")
    };
    let mut filters = String::new();
    for (column, values) in [("command_type", claim.types), ("tenant_id", claim.tenants)] {
        match values {
            None => {}
            Some([]) => filters.push_str(" and 1 = 0"),
            Some(v) => filters.push_str(&format!(" and {column} in ({})", list(v.len()))),
        }
    }
    if claim.resident.is_some() {
        let (kind, residency) = (list(1), list(1));
        // A subquery rather than a join: `for update` then locks only the execution rows.
        filters.push_str(&format!(
            " and (command_type <> {kind} or exists (select 1 from tenants t
                 where t.id = executions.tenant_id and t.classification_residency = {residency}))"
        ));
    }
    format!(
        "select * from executions
         where ((status = 'ready' and available_at <= $1) or (status = 'leased' and lease_until < $1)){filters}
         order by available_at, id limit $2{locking}"
    )
}

/// Implements the shared part of [`EngineRows`]; engine-specific methods go in the braces.
#[macro_export]
macro_rules! impl_engine_rows {
    ($ty:ty, $db:ty, { $($engine_specific:tt)* }) => {
        #[$crate::__private::async_trait]
        impl $crate::engine_rows::EngineRows for $ty {
            $($engine_specific)*

            async fn insert_command(&mut self, r: &$crate::engine_rows::CommandRow) -> Result<(), $crate::StoreError> {
                $crate::__private::sqlx::query::<$db>(
                    "insert into commands (tenant_id, id, command_type, status, aggregate_type, aggregate_id, workflow_id,
                         correlation_id, response, created_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
                    .bind(&r.tenant_id).bind(&r.id).bind(&r.command_type).bind(&r.status).bind(&r.aggregate_type)
                    .bind(&r.aggregate_id).bind(&r.workflow_id).bind(&r.correlation_id).bind(&r.response).bind(r.created_at)
                    .execute(&mut *self.conn).await?;
                Ok(())
            }

            async fn get_command(&mut self, tenant_id: &str, id: &str) -> Result<Option<$crate::engine_rows::CommandRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::CommandRow>(
                    "select * from commands where tenant_id = $1 and id = $2")
                    .bind(tenant_id).bind(id).fetch_optional(&mut *self.conn).await?)
            }

            async fn get_idempotency(&mut self, tenant_id: &str, key: &str) -> Result<Option<$crate::engine_rows::IdempotencyRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::IdempotencyRow>(
                    "select * from idempotency_keys where tenant_id = $1 and key = $2")
                    .bind(tenant_id).bind(key).fetch_optional(&mut *self.conn).await?)
            }

            async fn insert_idempotency(&mut self, r: &$crate::engine_rows::IdempotencyRow) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "insert into idempotency_keys (tenant_id, key, request_hash, command_id, status_code, response, created_at, expires_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (tenant_id, key) do nothing")
                    .bind(&r.tenant_id).bind(&r.key).bind(&r.request_hash).bind(&r.command_id).bind(r.status_code)
                    .bind(&r.response).bind(r.created_at).bind(r.expires_at)
                    .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_expired_idempotency(&mut self, now: $crate::__private::DateTime<$crate::__private::Utc>) -> Result<u64, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>("delete from idempotency_keys where expires_at < $1")
                    .bind(now).execute(&mut *self.conn).await?;
                Ok(done.rows_affected())
            }

            async fn insert_workflow(&mut self, r: &$crate::engine_rows::WorkflowRow) -> Result<(), $crate::StoreError> {
                $crate::__private::sqlx::query::<$db>(
                    "insert into workflow_instances (tenant_id, id, kind, state, aggregate_type, aggregate_id, step, data,
                         attempt, correlation_id, created_at, updated_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
                    .bind(&r.tenant_id).bind(&r.id).bind(&r.kind).bind(&r.state).bind(&r.aggregate_type).bind(&r.aggregate_id)
                    .bind(&r.step).bind(&r.data).bind(r.attempt).bind(&r.correlation_id).bind(r.created_at).bind(r.updated_at)
                    .execute(&mut *self.conn).await?;
                Ok(())
            }

            async fn update_workflow(&mut self, r: &$crate::engine_rows::WorkflowRow) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "update workflow_instances set state = $3, step = $4, data = $5, attempt = $6, updated_at = $7
                     where tenant_id = $1 and id = $2")
                    .bind(&r.tenant_id).bind(&r.id).bind(&r.state).bind(&r.step).bind(&r.data).bind(r.attempt).bind(r.updated_at)
                    .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn get_workflow(&mut self, tenant_id: &str, id: &str) -> Result<Option<$crate::engine_rows::WorkflowRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::WorkflowRow>(
                    "select * from workflow_instances where tenant_id = $1 and id = $2")
                    .bind(tenant_id).bind(id).fetch_optional(&mut *self.conn).await?)
            }

            async fn workflows_for_aggregate(&mut self, tenant_id: &str, aggregate_id: &str) -> Result<Vec<$crate::engine_rows::WorkflowRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::WorkflowRow>(
                    "select * from workflow_instances where tenant_id = $1 and aggregate_id = $2 order by created_at, id")
                    .bind(tenant_id).bind(aggregate_id).fetch_all(&mut *self.conn).await?)
            }

            async fn insert_timer(&mut self, r: &$crate::engine_rows::TimerRow) -> Result<(), $crate::StoreError> {
                $crate::__private::sqlx::query::<$db>(
                    "insert into timers (id, tenant_id, workflow_id, kind, aggregate_id, due_at, payload, status, attempt,
                         last_error, lease_owner, lease_until, created_at, fired_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
                    .bind(&r.id).bind(&r.tenant_id).bind(&r.workflow_id).bind(&r.kind).bind(&r.aggregate_id).bind(r.due_at)
                    .bind(&r.payload).bind(&r.status).bind(r.attempt).bind(&r.last_error).bind(&r.lease_owner)
                    .bind(r.lease_until).bind(r.created_at).bind(r.fired_at)
                    .execute(&mut *self.conn).await?;
                Ok(())
            }

            async fn update_timer(&mut self, r: &$crate::engine_rows::TimerRow) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "update timers set due_at = $2, payload = $3, status = $4, attempt = $5, last_error = $6,
                         lease_owner = $7, lease_until = $8, fired_at = $9
                     where id = $1")
                    .bind(&r.id).bind(r.due_at).bind(&r.payload).bind(&r.status).bind(r.attempt).bind(&r.last_error)
                    .bind(&r.lease_owner).bind(r.lease_until).bind(r.fired_at)
                    .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn pending_timers_for_aggregate(&mut self, tenant_id: &str, aggregate_id: &str) -> Result<Vec<$crate::engine_rows::TimerRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::TimerRow>(
                    "select * from timers where tenant_id = $1 and aggregate_id = $2 and status = 'pending' order by due_at, id")
                    .bind(tenant_id).bind(aggregate_id).fetch_all(&mut *self.conn).await?)
            }

            async fn next_due_timer(&mut self, until: $crate::__private::DateTime<$crate::__private::Utc>) -> Result<Option<$crate::engine_rows::TimerRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::TimerRow>(
                    "select * from timers where status = 'pending' and due_at <= $1 order by due_at, id limit 1")
                    .bind(until).fetch_optional(&mut *self.conn).await?)
            }

            async fn count_pending_timers(&mut self, until: $crate::__private::DateTime<$crate::__private::Utc>) -> Result<i64, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_scalar::<$db, i64>(
                    "select count(*) from timers where status = 'pending' and due_at <= $1")
                    .bind(until).fetch_one(&mut *self.conn).await?)
            }

            async fn insert_execution(&mut self, r: &$crate::engine_rows::ExecutionRow) -> Result<(), $crate::StoreError> {
                $crate::__private::sqlx::query::<$db>(
                    "insert into executions (id, tenant_id, correlation_id, command_type, subject_id, payload_ct, status,
                         attempt, max_attempts, available_at, not_after, lease_owner, lease_until, workflow_id, aggregate_id,
                         last_error_code, last_error_message, provider_ref, output, created_at, updated_at, lease_id, deferrals)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)")
                    .bind(&r.id).bind(&r.tenant_id).bind(&r.correlation_id).bind(&r.command_type).bind(&r.subject_id)
                    .bind(&r.payload_ct).bind(&r.status).bind(r.attempt).bind(r.max_attempts).bind(r.available_at)
                    .bind(r.not_after).bind(&r.lease_owner).bind(r.lease_until).bind(&r.workflow_id).bind(&r.aggregate_id)
                    .bind(&r.last_error_code).bind(&r.last_error_message).bind(&r.provider_ref).bind(&r.output)
                    .bind(r.created_at).bind(r.updated_at).bind(&r.lease_id).bind(r.deferrals)
                    .execute(&mut *self.conn).await?;
                Ok(())
            }

            async fn update_execution(&mut self, r: &$crate::engine_rows::ExecutionRow) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "update executions set status = $2, attempt = $3, available_at = $4, lease_owner = $5, lease_until = $6,
                         last_error_code = $7, last_error_message = $8, provider_ref = $9, output = $10, updated_at = $11,
                         payload_ct = $12, not_after = $13, lease_id = $14, deferrals = $15
                     where id = $1")
                    .bind(&r.id).bind(&r.status).bind(r.attempt).bind(r.available_at).bind(&r.lease_owner).bind(r.lease_until)
                    .bind(&r.last_error_code).bind(&r.last_error_message).bind(&r.provider_ref).bind(&r.output)
                    .bind(r.updated_at).bind(&r.payload_ct).bind(r.not_after).bind(&r.lease_id).bind(r.deferrals)
                    .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn get_execution(&mut self, id: &str) -> Result<Option<$crate::engine_rows::ExecutionRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::ExecutionRow>(
                    "select * from executions where id = $1")
                    .bind(id).fetch_optional(&mut *self.conn).await?)
            }

            async fn lock_execution_lease(&mut self, id: &str, lease_id: &str) -> Result<bool, $crate::StoreError> {
                // -- why: a no-op write takes the row lock and re-checks the lease against what
                // a concurrent claim committed; a plain read would act on the old lease.
                let done = $crate::__private::sqlx::query::<$db>(
                    "update executions set lease_id = lease_id where id = $1 and lease_id = $2")
                    .bind(id).bind(lease_id)
                    .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn open_executions_for_aggregate(&mut self, tenant_id: &str, aggregate_id: &str) -> Result<Vec<$crate::engine_rows::ExecutionRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::ExecutionRow>(
                    "select * from executions where tenant_id = $1 and aggregate_id = $2 and status in ('ready', 'leased')
                     order by created_at, id")
                    .bind(tenant_id).bind(aggregate_id).fetch_all(&mut *self.conn).await?)
            }

            async fn count_open_executions(&mut self) -> Result<i64, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_scalar::<$db, i64>(
                    "select count(*) from executions where status in ('ready', 'leased')")
                    .fetch_one(&mut *self.conn).await?)
            }

            async fn insert_dead_letter(&mut self, r: &$crate::engine_rows::DeadLetterRow) -> Result<(), $crate::StoreError> {
                $crate::__private::sqlx::query::<$db>(
                    "insert into dead_letters (tenant_id, id, execution_id, command_type, error_code, error_message, attempts,
                         status, created_at, updated_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
                    .bind(&r.tenant_id).bind(&r.id).bind(&r.execution_id).bind(&r.command_type).bind(&r.error_code)
                    .bind(&r.error_message).bind(r.attempts).bind(&r.status).bind(r.created_at).bind(r.updated_at)
                    .execute(&mut *self.conn).await?;
                Ok(())
            }

            async fn update_dead_letter(&mut self, r: &$crate::engine_rows::DeadLetterRow) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "update dead_letters set status = $3, updated_at = $4 where tenant_id = $1 and id = $2")
                    .bind(&r.tenant_id).bind(&r.id).bind(&r.status).bind(r.updated_at)
                    .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn get_dead_letter(&mut self, tenant_id: &str, id: &str) -> Result<Option<$crate::engine_rows::DeadLetterRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::DeadLetterRow>(
                    "select * from dead_letters where tenant_id = $1 and id = $2")
                    .bind(tenant_id).bind(id).fetch_optional(&mut *self.conn).await?)
            }

            async fn list_dead_letters(&mut self, tenant_id: &str, status: Option<&str>, limit: i64) -> Result<Vec<$crate::engine_rows::DeadLetterRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::DeadLetterRow>(
                    "select * from dead_letters where tenant_id = $1 and ($2 is null or status = $2)
                     order by created_at, id limit $3")
                    .bind(tenant_id).bind(status).bind(limit).fetch_all(&mut *self.conn).await?)
            }

            async fn insert_message(&mut self, r: &$crate::engine_rows::MessageRow) -> Result<(), $crate::StoreError> {
                $crate::__private::sqlx::query::<$db>(
                    "insert into messages (tenant_id, id, customer_id, appointment_id, direction, channel, purpose,
                         counterpart_ct, counterpart_index, body_ct, status, provider_ref, error_code, execution_id,
                         created_at, updated_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)")
                    .bind(&r.tenant_id).bind(&r.id).bind(&r.customer_id).bind(&r.appointment_id).bind(&r.direction)
                    .bind(&r.channel).bind(&r.purpose).bind(&r.counterpart_ct).bind(&r.counterpart_index).bind(&r.body_ct)
                    .bind(&r.status).bind(&r.provider_ref).bind(&r.error_code).bind(&r.execution_id)
                    .bind(r.created_at).bind(r.updated_at)
                    .execute(&mut *self.conn).await?;
                Ok(())
            }

            async fn update_message(&mut self, r: &$crate::engine_rows::MessageRow) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "update messages set status = $3, provider_ref = $4, error_code = $5, execution_id = $6, updated_at = $7,
                         appointment_id = $8, customer_id = $9
                     where tenant_id = $1 and id = $2")
                    .bind(&r.tenant_id).bind(&r.id).bind(&r.status).bind(&r.provider_ref).bind(&r.error_code)
                    .bind(&r.execution_id).bind(r.updated_at).bind(&r.appointment_id).bind(&r.customer_id)
                    .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn get_message(&mut self, tenant_id: &str, id: &str) -> Result<Option<$crate::engine_rows::MessageRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::MessageRow>(
                    "select * from messages where tenant_id = $1 and id = $2")
                    .bind(tenant_id).bind(id).fetch_optional(&mut *self.conn).await?)
            }

            async fn message_by_provider_ref(&mut self, tenant_id: &str, provider_ref: &str) -> Result<Option<$crate::engine_rows::MessageRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::MessageRow>(
                    "select * from messages where tenant_id = $1 and provider_ref = $2")
                    .bind(tenant_id).bind(provider_ref).fetch_optional(&mut *self.conn).await?)
            }

            async fn messages_for_counterpart(&mut self, tenant_id: &str, counterpart_index: &str, since: $crate::__private::DateTime<$crate::__private::Utc>) -> Result<Vec<$crate::engine_rows::MessageRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::MessageRow>(
                    "select * from messages where tenant_id = $1 and counterpart_index = $2 and created_at >= $3
                     order by created_at, id")
                    .bind(tenant_id).bind(counterpart_index).bind(since).fetch_all(&mut *self.conn).await?)
            }

            async fn messages_for_appointment(&mut self, tenant_id: &str, appointment_id: &str) -> Result<Vec<$crate::engine_rows::MessageRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::MessageRow>(
                    "select * from messages where tenant_id = $1 and appointment_id = $2 order by created_at, id")
                    .bind(tenant_id).bind(appointment_id).fetch_all(&mut *self.conn).await?)
            }

            async fn insert_reminder_log(&mut self, r: &$crate::engine_rows::ReminderLogRow) -> Result<(), $crate::StoreError> {
                $crate::__private::sqlx::query::<$db>(
                    "insert into reminder_logs (tenant_id, id, appointment_id, kind, due_at, status, reason, message_id,
                         created_at, updated_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
                    .bind(&r.tenant_id).bind(&r.id).bind(&r.appointment_id).bind(&r.kind).bind(r.due_at).bind(&r.status)
                    .bind(&r.reason).bind(&r.message_id).bind(r.created_at).bind(r.updated_at)
                    .execute(&mut *self.conn).await?;
                Ok(())
            }

            async fn update_reminder_log(&mut self, r: &$crate::engine_rows::ReminderLogRow) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "update reminder_logs set due_at = $3, status = $4, reason = $5, message_id = $6, updated_at = $7
                     where tenant_id = $1 and id = $2")
                    .bind(&r.tenant_id).bind(&r.id).bind(r.due_at).bind(&r.status).bind(&r.reason).bind(&r.message_id)
                    .bind(r.updated_at)
                    .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn reminder_logs_for_appointment(&mut self, tenant_id: &str, appointment_id: &str) -> Result<Vec<$crate::engine_rows::ReminderLogRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::ReminderLogRow>(
                    "select * from reminder_logs where tenant_id = $1 and appointment_id = $2 order by due_at, id")
                    .bind(tenant_id).bind(appointment_id).fetch_all(&mut *self.conn).await?)
            }

            async fn get_consent(&mut self, tenant_id: &str, phone_index: &str, channel: &str) -> Result<Option<$crate::engine_rows::ConsentRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::ConsentRow>(
                    "select * from consents where tenant_id = $1 and phone_index = $2 and channel = $3")
                    .bind(tenant_id).bind(phone_index).bind(channel).fetch_optional(&mut *self.conn).await?)
            }

            async fn upsert_consent(&mut self, r: &$crate::engine_rows::ConsentRow) -> Result<(), $crate::StoreError> {
                $crate::__private::sqlx::query::<$db>(
                    "insert into consents (tenant_id, phone_index, channel, status, source, updated_at)
                     values ($1, $2, $3, $4, $5, $6)
                     on conflict (tenant_id, phone_index, channel)
                     do update set status = excluded.status, source = excluded.source, updated_at = excluded.updated_at")
                    .bind(&r.tenant_id).bind(&r.phone_index).bind(&r.channel).bind(&r.status).bind(&r.source).bind(r.updated_at)
                    .execute(&mut *self.conn).await?;
                Ok(())
            }

            async fn insert_escalation(&mut self, r: &$crate::engine_rows::EscalationRow) -> Result<(), $crate::StoreError> {
                $crate::__private::sqlx::query::<$db>(
                    "insert into escalations (tenant_id, id, appointment_id, customer_id, reason, status, detail, notified_at,
                         created_at, resolved_at, resolved_by, resolution)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
                    .bind(&r.tenant_id).bind(&r.id).bind(&r.appointment_id).bind(&r.customer_id).bind(&r.reason)
                    .bind(&r.status).bind(&r.detail).bind(r.notified_at).bind(r.created_at).bind(r.resolved_at)
                    .bind(&r.resolved_by).bind(&r.resolution)
                    .execute(&mut *self.conn).await?;
                Ok(())
            }

            async fn update_escalation(&mut self, r: &$crate::engine_rows::EscalationRow) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "update escalations set status = $3, detail = $4, notified_at = $5, resolved_at = $6, resolved_by = $7,
                         resolution = $8
                     where tenant_id = $1 and id = $2")
                    .bind(&r.tenant_id).bind(&r.id).bind(&r.status).bind(&r.detail).bind(r.notified_at).bind(r.resolved_at)
                    .bind(&r.resolved_by).bind(&r.resolution)
                    .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn get_escalation(&mut self, tenant_id: &str, id: &str) -> Result<Option<$crate::engine_rows::EscalationRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::EscalationRow>(
                    "select * from escalations where tenant_id = $1 and id = $2")
                    .bind(tenant_id).bind(id).fetch_optional(&mut *self.conn).await?)
            }

            async fn list_escalations(&mut self, tenant_id: &str, status: Option<&str>, limit: i64) -> Result<Vec<$crate::engine_rows::EscalationRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::EscalationRow>(
                    "select * from escalations where tenant_id = $1 and ($2 is null or status = $2)
                     order by created_at, id limit $3")
                    .bind(tenant_id).bind(status).bind(limit).fetch_all(&mut *self.conn).await?)
            }

            async fn insert_payment_link(&mut self, r: &$crate::engine_rows::PaymentLinkRow) -> Result<(), $crate::StoreError> {
                $crate::__private::sqlx::query::<$db>(
                    "insert into payment_links (tenant_id, id, appointment_id, customer_id, provider_ref, url, amount_minor,
                         currency, status, created_at, paid_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
                    .bind(&r.tenant_id).bind(&r.id).bind(&r.appointment_id).bind(&r.customer_id).bind(&r.provider_ref)
                    .bind(&r.url).bind(r.amount_minor).bind(&r.currency).bind(&r.status).bind(r.created_at).bind(r.paid_at)
                    .execute(&mut *self.conn).await?;
                Ok(())
            }

            async fn update_payment_link(&mut self, r: &$crate::engine_rows::PaymentLinkRow) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "update payment_links set provider_ref = $3, url = $4, status = $5, paid_at = $6
                     where tenant_id = $1 and id = $2")
                    .bind(&r.tenant_id).bind(&r.id).bind(&r.provider_ref).bind(&r.url).bind(&r.status).bind(r.paid_at)
                    .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn get_payment_link(&mut self, tenant_id: &str, id: &str) -> Result<Option<$crate::engine_rows::PaymentLinkRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::PaymentLinkRow>(
                    "select * from payment_links where tenant_id = $1 and id = $2")
                    .bind(tenant_id).bind(id).fetch_optional(&mut *self.conn).await?)
            }

            async fn payment_link_by_provider_ref(&mut self, tenant_id: &str, provider_ref: &str) -> Result<Option<$crate::engine_rows::PaymentLinkRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::PaymentLinkRow>(
                    "select * from payment_links where tenant_id = $1 and provider_ref = $2")
                    .bind(tenant_id).bind(provider_ref).fetch_optional(&mut *self.conn).await?)
            }

            async fn last_audit(&mut self, tenant_id: &str) -> Result<Option<$crate::engine_rows::AuditRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::AuditRow>(
                    "select * from audit_log where tenant_id = $1 order by seq desc limit 1")
                    .bind(tenant_id).fetch_optional(&mut *self.conn).await?)
            }

            async fn insert_audit(&mut self, r: &$crate::engine_rows::AuditRow) -> Result<i64, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_scalar::<$db, i64>(
                    "insert into audit_log (tenant_id, actor, action, subject, detail, occurred_at, prev_hash, hash)
                     values ($1, $2, $3, $4, $5, $6, $7, $8) returning seq")
                    .bind(&r.tenant_id).bind(&r.actor).bind(&r.action).bind(&r.subject).bind(&r.detail)
                    .bind(r.occurred_at).bind(&r.prev_hash).bind(&r.hash)
                    .fetch_one(&mut *self.conn).await?)
            }

            async fn audit_trail(&mut self, tenant_id: &str, after: i64, limit: i64) -> Result<Vec<$crate::engine_rows::AuditRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::AuditRow>(
                    "select * from audit_log where tenant_id = $1 and seq > $2 order by seq limit $3")
                    .bind(tenant_id).bind(after).bind(limit).fetch_all(&mut *self.conn).await?)
            }

            async fn insert_webhook_receipt(&mut self, tenant_id: &str, provider: &str, key: &str, now: $crate::__private::DateTime<$crate::__private::Utc>) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "insert into webhook_receipts (tenant_id, provider, receipt_key, received_at) values ($1, $2, $3, $4)
                     on conflict (tenant_id, provider, receipt_key) do nothing")
                    .bind(tenant_id).bind(provider).bind(key).bind(now)
                    .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn clock_offset(&mut self) -> Result<Option<i64>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_scalar::<$db, i64>("select offset_ms from clock where id = 1")
                    .fetch_optional(&mut *self.conn).await?)
            }

            async fn set_clock_offset(&mut self, offset_ms: i64) -> Result<(), $crate::StoreError> {
                // -- why: the offset only moves forward, whoever writes last.
                $crate::__private::sqlx::query::<$db>(
                    "insert into clock (id, offset_ms) values (1, $1)
                     on conflict (id) do update set offset_ms = case when excluded.offset_ms > clock.offset_ms
                         then excluded.offset_ms else clock.offset_ms end")
                    .bind(offset_ms).execute(&mut *self.conn).await?;
                Ok(())
            }

            async fn upcoming_appointments_for_phone(&mut self, tenant_id: &str, phone_index: &str, now: $crate::__private::DateTime<$crate::__private::Utc>) -> Result<Vec<$crate::rows::AppointmentRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::rows::AppointmentRow>(
                    "select a.* from appointments a
                     join customers c on c.tenant_id = a.tenant_id and c.id = a.customer_id
                     where a.tenant_id = $1 and c.phone_index = $2
                       and a.status in ('booked', 'confirmed', 'cancel_requested') and a.ends_at > $3
                     order by a.starts_at, a.id")
                    .bind(tenant_id).bind(phone_index).bind(now).fetch_all(&mut *self.conn).await?)
            }

            async fn all_appointments(&mut self, tenant_id: &str) -> Result<Vec<$crate::rows::AppointmentRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::rows::AppointmentRow>(
                    "select * from appointments where tenant_id = $1 order by created_at, id")
                    .bind(tenant_id).fetch_all(&mut *self.conn).await?)
            }

            async fn all_aliases(&mut self, tenant_id: &str) -> Result<Vec<$crate::engine_rows::AliasRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::engine_rows::AliasRow>(
                    "select tenant_id, source, external_id, appointment_id, created_at from appointment_aliases
                     where tenant_id = $1 order by source, external_id")
                    .bind(tenant_id).fetch_all(&mut *self.conn).await?)
            }

            async fn clear_read_models(&mut self) -> Result<(), $crate::StoreError> {
                // -- why: children first (aliases and appointments reference patients).
                for sql in ["delete from appointment_aliases", "delete from appointments", "delete from customers"] {
                    $crate::__private::sqlx::query::<$db>(sql).execute(&mut *self.conn).await?;
                }
                Ok(())
            }
        }
    };
}
