//! Push subscriptions (the Event API's signed webhook deliveries): their rows, the records
//! callers see, and the row-level operations every engine implements.
//!
//! A subscription has a cursor (every event of its tenant up to that seq has been delivered or
//! skipped by its filter) and a delivery schedule (`failure_count`, `next_attempt_at`) that lives
//! here rather than in memory, so retries spread over hours survive restarts. A worker delivers
//! a subscription only while it holds the row's lease (`lease_owner` until `lease_until`, real
//! time); every write the worker makes is fenced by `lease_owner`, so a worker whose lease was
//! taken over, or broken by a replay or a delete, cannot move the cursor any more.
//!
//! The SQL is written once for both engines in [`impl_subscription_rows!`]; the one statement
//! that differs (claiming with `for update skip locked` on PostgreSQL) comes from [`Dialect`],
//! chosen by the engine's database type.

use crate::error::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

/// `status` of a subscription that is being delivered.
pub const STATUS_ACTIVE: &str = "active";
/// `status` of a subscription that is no longer delivered until a replay re-enables it.
pub const STATUS_DISABLED: &str = "disabled";

/// A subscription as both engines store it; the secret only as ciphertext.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubscriptionRow {
    pub tenant_id: String,
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub secret_ct: Vec<u8>,
    pub event_types: Json<Value>,
    pub status: String,
    pub cursor_seq: i64,
    pub failure_count: i64,
    pub failing_since: Option<DateTime<Utc>>,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub disabled_reason: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Everything a delivery worker writes back after working on a subscription it leased.
#[derive(Debug, Clone)]
pub struct DeliveryStateRow {
    pub cursor_seq: i64,
    pub failure_count: i64,
    pub failing_since: Option<DateTime<Utc>>,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub status: String,
    pub disabled_reason: Option<String>,
    /// `Some` keeps (and extends) the lease, `None` releases it.
    pub lease_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// Whether a subscription is being delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    Active,
    /// Not delivered (the receiver answered 410 Gone, or failed for too long) until a replay.
    Disabled,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => STATUS_ACTIVE,
            Self::Disabled => STATUS_DISABLED,
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            STATUS_ACTIVE => Some(Self::Active),
            STATUS_DISABLED => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// A subscription as callers see it (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    pub description: Option<String>,
    /// Event types delivered; empty means every type.
    pub event_types: Vec<String>,
    pub status: SubscriptionStatus,
    /// Every event of the tenant up to this seq has been delivered or skipped by the filter.
    pub cursor: i64,
    /// Consecutive failed attempts (0 after a success).
    pub failure_count: i64,
    /// When the current run of failures began.
    pub failing_since: Option<DateTime<Utc>>,
    /// The earliest time (real time) the next attempt may start.
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// A status code or error kind; never a response body.
    pub last_error: Option<String>,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Subscription {
    /// Whether events of `event_type` are delivered to this subscription.
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }
}

/// A new subscription, as an API caller asked for it.
#[derive(Clone)]
pub struct NewSubscription {
    pub tenant_id: String,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    /// The `whsec_` signing secret; sealed before it is stored.
    pub secret: String,
}

impl std::fmt::Debug for NewSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSubscription")
            .field("tenant_id", &self.tenant_id)
            .field("event_types", &self.event_types)
            .finish_non_exhaustive()
    }
}

/// A subscription leased by a delivery worker, with the secret it signs deliveries with.
#[derive(Clone)]
pub struct ClaimedSubscription {
    pub subscription: Subscription,
    pub secret: String,
}

impl std::fmt::Debug for ClaimedSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedSubscription")
            .field("id", &self.subscription.id)
            .field("tenant_id", &self.subscription.tenant_id)
            .finish_non_exhaustive()
    }
}

/// What a delivery worker records after working on a leased subscription.
#[derive(Debug, Clone)]
pub struct DeliveryState {
    pub cursor: i64,
    pub failure_count: i64,
    pub failing_since: Option<DateTime<Utc>>,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub status: SubscriptionStatus,
    pub disabled_reason: Option<String>,
    /// `Some` keeps (and extends) the lease until then, `None` releases it.
    pub lease_until: Option<DateTime<Utc>>,
}

impl DeliveryState {
    /// The state the subscription is in now, as a starting point for the worker's changes.
    pub fn of(s: &Subscription) -> Self {
        Self {
            cursor: s.cursor,
            failure_count: s.failure_count,
            failing_since: s.failing_since,
            next_attempt_at: s.next_attempt_at,
            last_attempt_at: s.last_attempt_at,
            last_success_at: s.last_success_at,
            last_error: s.last_error.clone(),
            status: s.status,
            disabled_reason: s.disabled_reason.clone(),
            lease_until: None,
        }
    }
}

/// The claim statement, the one piece of subscription SQL that differs by engine.
pub trait Dialect {
    /// Leases up to `$4` due subscriptions to owner `$1` until `$2`, at time `$3`; returns
    /// the leased rows.
    const CLAIM_DUE: &'static str;
}

// -- why: a subscription is claimable when it is active, due, not leased (or its lease ran
// out) and has at least one event of its tenant after its cursor; the last condition keeps idle
// subscriptions from being written on every poll.
macro_rules! claim_due_sql {
    ($lock:literal) => {
        concat!(
            "update subscriptions set lease_owner = $1, lease_until = $2
             where (tenant_id, id) in (
                 select c.tenant_id, c.id from subscriptions c
                 where c.status = 'active'
                   and c.next_attempt_at <= $3
                   and (c.lease_until is null or c.lease_until <= $3)
                   and exists (select 1 from events e
                               where e.tenant_id = c.tenant_id and e.seq > c.cursor_seq)
                 order by c.next_attempt_at
                 limit $4 ",
            $lock,
            ")
             returning *"
        )
    };
}

impl Dialect for sqlx::Sqlite {
    // One writer at a time: the update is atomic without row locks.
    const CLAIM_DUE: &'static str = claim_due_sql!("");
}

impl Dialect for sqlx::Postgres {
    // -- why: replicas claiming at once skip each other's locked candidates instead of queueing
    // behind them and then finding them leased.
    const CLAIM_DUE: &'static str = claim_due_sql!("for update skip locked");
}

/// Subscription rows, one part of every engine's [`crate::backend::BackendTx`].
#[async_trait]
pub trait SubscriptionRows: Send {
    async fn insert_subscription(&mut self, row: &SubscriptionRow) -> Result<(), StoreError>;
    async fn get_subscription(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<SubscriptionRow>, StoreError>;
    /// The tenant's subscriptions, oldest first.
    async fn list_subscriptions(
        &mut self,
        tenant_id: &str,
    ) -> Result<Vec<SubscriptionRow>, StoreError>;
    async fn delete_subscription(&mut self, tenant_id: &str, id: &str) -> Result<bool, StoreError>;
    /// Moves the cursor back to `cursor_seq` (never forward), re-enables the subscription,
    /// clears its failures, makes it due at `now` and breaks any lease.
    async fn replay_subscription(
        &mut self,
        tenant_id: &str,
        id: &str,
        cursor_seq: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Leases up to `limit` due subscriptions that have events after their cursor to `owner`
    /// until `lease_until`.
    async fn claim_due_subscriptions(
        &mut self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<SubscriptionRow>, StoreError>;
    /// Writes a worker's progress, only while `owner` still holds the lease; false otherwise.
    async fn save_delivery_state(
        &mut self,
        tenant_id: &str,
        id: &str,
        owner: &str,
        state: &DeliveryStateRow,
    ) -> Result<bool, StoreError>;
}

/// Implements [`SubscriptionRows`] for an engine's transaction type (field `conn`); `$db` must
/// implement [`Dialect`].
#[macro_export]
macro_rules! impl_subscription_rows {
    ($ty:ty, $db:ty) => {
        #[$crate::__private::async_trait]
        impl $crate::subscriptions::SubscriptionRows for $ty {
            async fn insert_subscription(&mut self, row: &$crate::subscriptions::SubscriptionRow) -> Result<(), $crate::StoreError> {
                $crate::__private::sqlx::query::<$db>(
                    "insert into subscriptions (tenant_id, id, url, description, secret_ct, event_types, status,
                         cursor_seq, failure_count, failing_since, next_attempt_at, last_attempt_at, last_success_at,
                         last_error, disabled_reason, lease_owner, lease_until, created_at, updated_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)")
                    .bind(&row.tenant_id).bind(&row.id).bind(&row.url).bind(&row.description)
                    .bind(&row.secret_ct).bind(&row.event_types).bind(&row.status).bind(row.cursor_seq)
                    .bind(row.failure_count).bind(row.failing_since).bind(row.next_attempt_at)
                    .bind(row.last_attempt_at).bind(row.last_success_at).bind(&row.last_error)
                    .bind(&row.disabled_reason).bind(&row.lease_owner).bind(row.lease_until)
                    .bind(row.created_at).bind(row.updated_at)
                    .execute(&mut *self.conn).await?;
                Ok(())
            }

            async fn get_subscription(&mut self, tenant_id: &str, id: &str) -> Result<Option<$crate::subscriptions::SubscriptionRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::subscriptions::SubscriptionRow>(
                    "select * from subscriptions where tenant_id = $1 and id = $2")
                    .bind(tenant_id).bind(id).fetch_optional(&mut *self.conn).await?)
            }

            async fn list_subscriptions(&mut self, tenant_id: &str) -> Result<Vec<$crate::subscriptions::SubscriptionRow>, $crate::StoreError> {
                Ok($crate::__private::sqlx::query_as::<$db, $crate::subscriptions::SubscriptionRow>(
                    "select * from subscriptions where tenant_id = $1 order by created_at, id")
                    .bind(tenant_id).fetch_all(&mut *self.conn).await?)
            }

            async fn delete_subscription(&mut self, tenant_id: &str, id: &str) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "delete from subscriptions where tenant_id = $1 and id = $2")
                    .bind(tenant_id).bind(id).execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn replay_subscription(&mut self, tenant_id: &str, id: &str, cursor_seq: i64, now: $crate::__private::DateTime<$crate::__private::Utc>) -> Result<bool, $crate::StoreError> {
                // -- why: clearing the lease fences out a worker that is mid-delivery: its next
                // write would otherwise move the cursor forward past the replayed events.
                let done = $crate::__private::sqlx::query::<$db>(
                    "update subscriptions set
                         cursor_seq = case when $3 < cursor_seq then $3 else cursor_seq end,
                         status = 'active', disabled_reason = null, failure_count = 0, failing_since = null,
                         next_attempt_at = $4, lease_owner = null, lease_until = null, updated_at = $4
                     where tenant_id = $1 and id = $2")
                    .bind(tenant_id).bind(id).bind(cursor_seq).bind(now)
                    .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn claim_due_subscriptions(&mut self, owner: &str, now: $crate::__private::DateTime<$crate::__private::Utc>, lease_until: $crate::__private::DateTime<$crate::__private::Utc>, limit: i64) -> Result<Vec<$crate::subscriptions::SubscriptionRow>, $crate::StoreError> {
                let mut rows = $crate::__private::sqlx::query_as::<$db, $crate::subscriptions::SubscriptionRow>(
                    <$db as $crate::subscriptions::Dialect>::CLAIM_DUE)
                    .bind(owner).bind(lease_until).bind(now).bind(limit)
                    .fetch_all(&mut *self.conn).await?;
                // `returning` gives no order; deliver the longest-waiting first.
                rows.sort_by(|a, b| a.next_attempt_at.cmp(&b.next_attempt_at).then_with(|| a.id.cmp(&b.id)));
                Ok(rows)
            }

            async fn save_delivery_state(&mut self, tenant_id: &str, id: &str, owner: &str, state: &$crate::subscriptions::DeliveryStateRow) -> Result<bool, $crate::StoreError> {
                let done = $crate::__private::sqlx::query::<$db>(
                    "update subscriptions set cursor_seq = $4, failure_count = $5, failing_since = $6,
                         next_attempt_at = $7, last_attempt_at = $8, last_success_at = $9, last_error = $10,
                         status = $11, disabled_reason = $12, lease_owner = $13, lease_until = $14, updated_at = $15
                     where tenant_id = $1 and id = $2 and lease_owner = $3")
                    .bind(tenant_id).bind(id).bind(owner)
                    .bind(state.cursor_seq).bind(state.failure_count).bind(state.failing_since)
                    .bind(state.next_attempt_at).bind(state.last_attempt_at).bind(state.last_success_at)
                    .bind(&state.last_error).bind(&state.status).bind(&state.disabled_reason)
                    .bind(state.lease_until.map(|_| owner)).bind(state.lease_until).bind(state.updated_at)
                    .execute(&mut *self.conn).await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
