//! The patient. Name, phone and email are personal data: core keeps them encrypted under the
//! patient's own key and finds patients by phone through a keyed blind index.

use crate::ids::{BusinessId, TenantId};
use crate::values::{Email, Language, Phone, Zone};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: BusinessId,
    pub tenant_id: TenantId,
    pub name: Option<String>,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub zone: Option<Zone>,
    pub language: Option<Language>,
    /// 0–100, from the event history (spec 03 `calculateRiskScore`).
    pub risk_score: i32,
    pub no_show_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Customer {
    /// The name to greet the patient with; patients are greeted by first name only.
    pub fn first_name(&self) -> Option<&str> {
        self.name
            .as_deref()
            .and_then(|n| n.split_whitespace().next())
    }
}

/// What a booking tells us about the patient, before core has an id for them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerDetails {
    pub name: Option<String>,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub zone: Option<Zone>,
    pub language: Option<Language>,
}
