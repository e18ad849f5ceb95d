//! Rows as both engines store them. Personal data is only in `*_ct` fields (ciphertext);
//! [`crate::Tx`] turns rows into domain records and back. Integers are `i64` (PostgreSQL
//! `bigint`), JSON is `Json<Value>` (SQLite text, PostgreSQL `jsonb`), times are UTC.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRow {
    pub id: String,
    pub name: String,
    pub zone: String,
    pub region: String,
    pub clinic_phone: Option<String>,
    pub review_link: Option<String>,
    pub default_language: String,
    pub classification_residency: String,
    pub permissions: Json<Value>,
    pub config: Json<Value>,
    pub config_version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DataKeyRow {
    pub tenant_id: String,
    pub subject_id: String,
    pub wrapped_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CustomerRow {
    pub tenant_id: String,
    pub id: String,
    pub name_ct: Option<Vec<u8>>,
    pub phone_ct: Option<Vec<u8>>,
    pub phone_index: Option<String>,
    pub email_ct: Option<Vec<u8>>,
    pub zone: Option<String>,
    pub language: Option<String>,
    pub risk_score: i64,
    pub no_show_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AppointmentRow {
    pub tenant_id: String,
    pub id: String,
    pub customer_id: String,
    pub source: String,
    pub external_id: String,
    pub status: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub service_type: Option<String>,
    pub price_minor: Option<i64>,
    pub currency: Option<String>,
    pub zone: Option<String>,
    pub language: Option<String>,
    pub channel: String,
    pub cancel_url: Option<String>,
    pub reschedule_url: Option<String>,
    pub needs_contact: bool,
    pub workflow_id: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub seq: i64,
    pub event_id: String,
    pub tenant_id: String,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub profile: Option<String>,
    pub payload: Json<Value>,
    pub pii_subject: Option<String>,
    pub pii_ct: Option<Vec<u8>>,
    pub workflow_id: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
}

/// An event about to be appended (no seq yet).
#[derive(Debug, Clone)]
pub struct NewEventRow {
    pub event_id: String,
    pub tenant_id: String,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub profile: Option<String>,
    pub payload: Value,
    pub pii_subject: Option<String>,
    pub pii_ct: Option<Vec<u8>>,
    pub workflow_id: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
}

/// Which events a reader wants; `after` is exclusive.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub tenant_id: Option<String>,
    pub after: i64,
    pub limit: i64,
    pub event_type: Option<String>,
    pub aggregate_id: Option<String>,
}
