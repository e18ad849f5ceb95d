//! Push subscriptions on [`Tx`]: records in and out, the signing secret sealed on the way down
//! and opened only for the delivery worker that leased the subscription.
//!
//! The secret is sealed under a data key of its own (subject = the subscription id), bound to
//! its tenant, table, column and row; deleting the subscription destroys that key too, so a
//! copy of the row in a backup no longer yields the secret.

use crate::error::StoreError;
use crate::micros;
use crate::subscriptions::*;
use crate::tx::Tx;
use crate::vault::Place;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

const TABLE: &str = "subscriptions";
const SECRET_COLUMN: &str = "secret";

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

fn secret_place<'a>(tenant_id: &'a str, id: &'a str) -> Place<'a> {
    Place {
        tenant_id,
        table: TABLE,
        column: SECRET_COLUMN,
        row_id: id,
    }
}

fn subscription_from_row(row: &SubscriptionRow) -> Result<Subscription, StoreError> {
    let event_types = match &row.event_types.0 {
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| corrupt("subscriptions.event_types", "not a string"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        other => return Err(corrupt("subscriptions.event_types", other)),
    };
    Ok(Subscription {
        id: row.id.clone(),
        tenant_id: row.tenant_id.clone(),
        url: row.url.clone(),
        description: row.description.clone(),
        event_types,
        status: SubscriptionStatus::parse(&row.status)
            .ok_or_else(|| corrupt("subscriptions.status", &row.status))?,
        cursor: row.cursor_seq,
        failure_count: row.failure_count,
        failing_since: row.failing_since,
        next_attempt_at: row.next_attempt_at,
        last_attempt_at: row.last_attempt_at,
        last_success_at: row.last_success_at,
        last_error: row.last_error.clone(),
        disabled_reason: row.disabled_reason.clone(),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

impl Tx<'_> {
    /// Creates a subscription whose cursor is the end of the event log now (it receives events
    /// appended from here on; a replay fetches older ones), with its secret sealed.
    pub async fn insert_subscription(
        &mut self,
        new: &NewSubscription,
        now: DateTime<Utc>,
    ) -> Result<Subscription, StoreError> {
        let now = micros(now);
        let id = crate::ids::new_id(aro_domain::ids::prefix::SUBSCRIPTION);
        let cursor = self.max_seq().await?;
        // The vault handle is cloned so it can be used while the transaction is borrowed.
        let vault = self.vault().clone();
        let key = vault.key_for(self.raw(), &new.tenant_id, &id, now).await?;
        let secret_ct = vault.seal(&key, secret_place(&new.tenant_id, &id), &new.secret)?;
        let row = SubscriptionRow {
            tenant_id: new.tenant_id.clone(),
            id,
            url: new.url.clone(),
            description: new.description.clone(),
            secret_ct,
            event_types: Json(serde_json::to_value(&new.event_types)?),
            status: STATUS_ACTIVE.to_owned(),
            cursor_seq: cursor,
            failure_count: 0,
            failing_since: None,
            next_attempt_at: now,
            last_attempt_at: None,
            last_success_at: None,
            last_error: None,
            disabled_reason: None,
            lease_owner: None,
            lease_until: None,
            created_at: now,
            updated_at: now,
        };
        self.raw().insert_subscription(&row).await?;
        subscription_from_row(&row)
    }

    pub async fn get_subscription(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<Subscription>, StoreError> {
        self.raw()
            .get_subscription(tenant_id, id)
            .await?
            .as_ref()
            .map(subscription_from_row)
            .transpose()
    }

    /// The tenant's subscriptions, oldest first.
    pub async fn list_subscriptions(
        &mut self,
        tenant_id: &str,
    ) -> Result<Vec<Subscription>, StoreError> {
        self.raw()
            .list_subscriptions(tenant_id)
            .await?
            .iter()
            .map(subscription_from_row)
            .collect()
    }

    /// Deletes the subscription and destroys the key its secret was sealed under.
    pub async fn delete_subscription(
        &mut self,
        tenant_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let deleted = self.raw().delete_subscription(tenant_id, id).await?;
        if deleted {
            self.raw().delete_data_key(tenant_id, id).await?;
        }
        Ok(deleted)
    }

    /// Moves the cursor back to `cursor` (never forward: a replay never skips events),
    /// re-enables the subscription and makes it due at once. `None` when there is no such
    /// subscription in the tenant.
    pub async fn replay_subscription(
        &mut self,
        tenant_id: &str,
        id: &str,
        cursor: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<Subscription>, StoreError> {
        let found = self
            .raw()
            .replay_subscription(tenant_id, id, cursor.max(0), micros(now))
            .await?;
        if !found {
            return Ok(None);
        }
        self.get_subscription(tenant_id, id).await
    }

    /// Leases up to `limit` due subscriptions with undelivered events to `owner` until
    /// `now + lease` (real time), with their secrets opened for signing.
    pub async fn claim_subscriptions(
        &mut self,
        owner: &str,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedSubscription>, StoreError> {
        let now = micros(now);
        let lease = chrono::Duration::from_std(lease).map_err(|e| corrupt("lease", e))?;
        let rows = self
            .raw()
            .claim_due_subscriptions(owner, now, micros(now + lease), i64::from(limit.max(1)))
            .await?;
        let vault = self.vault().clone();
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let key = vault
                .existing_key(self.raw(), &row.tenant_id, &row.id)
                .await?
                .ok_or_else(|| corrupt("subscriptions.secret_ct", "its data key is missing"))?;
            let secret = vault.open(&key, secret_place(&row.tenant_id, &row.id), &row.secret_ct)?;
            out.push(ClaimedSubscription {
                subscription: subscription_from_row(&row)?,
                secret,
            });
        }
        Ok(out)
    }

    /// Records a worker's progress on a subscription it leased; false when `owner` no longer
    /// holds the lease (it expired and was taken, or a replay or delete broke it), in which
    /// case nothing was written and the worker must stop.
    pub async fn save_delivery_state(
        &mut self,
        tenant_id: &str,
        id: &str,
        owner: &str,
        state: &DeliveryState,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let row = DeliveryStateRow {
            cursor_seq: state.cursor,
            failure_count: state.failure_count,
            failing_since: state.failing_since.map(micros),
            next_attempt_at: micros(state.next_attempt_at),
            last_attempt_at: state.last_attempt_at.map(micros),
            last_success_at: state.last_success_at.map(micros),
            last_error: state.last_error.clone(),
            status: state.status.as_str().to_owned(),
            disabled_reason: state.disabled_reason.clone(),
            lease_until: state.lease_until.map(micros),
            updated_at: micros(now),
        };
        self.raw()
            .save_delivery_state(tenant_id, id, owner, &row)
            .await
    }
}
