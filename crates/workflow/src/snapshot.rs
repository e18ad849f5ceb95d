//! State carried by events. Appointment events carry the whole appointment as it is after the
//! event, and `appointment.booked` / `appointment.updated` carry the patient (personal fields
//! sealed under the patient's key), so the read models can be rebuilt from the log alone.

use aro_domain::appointment::{Appointment, AppointmentStatus};
use aro_domain::customer::Customer;
use aro_domain::ids::{BusinessId, TenantId};
use aro_domain::message::Channel;
use aro_domain::values::{Currency, Email, Language, Money, Phone, Zone};
use aro_store::EventPii;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppointmentSnapshot {
    pub id: String,
    pub customer_id: String,
    pub source: String,
    pub external_id: String,
    pub status: AppointmentStatus,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub service_type: Option<String>,
    pub price_minor: Option<i64>,
    pub currency: Option<String>,
    pub timezone: Option<String>,
    pub language: Option<String>,
    pub channel: Channel,
    pub cancel_url: Option<String>,
    pub reschedule_url: Option<String>,
    pub needs_contact: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AppointmentSnapshot {
    pub fn of(a: &Appointment) -> Self {
        Self {
            id: a.id.to_string(),
            customer_id: a.customer_id.to_string(),
            source: a.source.clone(),
            external_id: a.external_id.clone(),
            status: a.status,
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            service_type: a.service_type.clone(),
            price_minor: a.price.map(|p| p.minor),
            currency: a.price.map(|p| p.currency.to_string()),
            timezone: a.zone.map(|z| z.name().to_owned()),
            language: a.language.as_ref().map(|l| l.to_string()),
            channel: a.channel,
            cancel_url: a.cancel_url.clone(),
            reschedule_url: a.reschedule_url.clone(),
            needs_contact: a.needs_contact,
            version: a.version,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }

    pub fn to_appointment(&self, tenant: &TenantId) -> Option<Appointment> {
        let price = match (self.price_minor, self.currency.as_deref()) {
            (Some(m), Some(c)) => Some(Money::new(m, Currency::parse(c).ok()?).ok()?),
            _ => None,
        };
        Some(Appointment {
            id: BusinessId::parse(&self.id).ok()?,
            tenant_id: tenant.clone(),
            customer_id: BusinessId::parse(&self.customer_id).ok()?,
            source: self.source.clone(),
            external_id: self.external_id.clone(),
            status: self.status,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            service_type: self.service_type.clone(),
            price,
            zone: self.timezone.as_deref().and_then(|z| Zone::parse(z).ok()),
            language: self
                .language
                .as_deref()
                .and_then(|l| Language::parse(l).ok()),
            channel: self.channel,
            cancel_url: self.cancel_url.clone(),
            reschedule_url: self.reschedule_url.clone(),
            needs_contact: self.needs_contact,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        })
    }
}

/// The non-personal part of a patient, as events carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerSnapshot {
    pub id: String,
    pub timezone: Option<String>,
    pub language: Option<String>,
    pub risk_score: i32,
    pub no_show_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    // Personal fields: present when the event is read and the patient's key still exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl CustomerSnapshot {
    pub fn of(c: &Customer) -> Self {
        Self {
            id: c.id.to_string(),
            timezone: c.zone.map(|z| z.name().to_owned()),
            language: c.language.as_ref().map(|l| l.to_string()),
            risk_score: c.risk_score,
            no_show_count: c.no_show_count,
            created_at: c.created_at,
            updated_at: c.updated_at,
            name: None,
            phone: None,
            email: None,
        }
    }

    pub fn to_customer(&self, tenant: &TenantId) -> Option<Customer> {
        Some(Customer {
            id: BusinessId::parse(&self.id).ok()?,
            tenant_id: tenant.clone(),
            name: self.name.clone(),
            phone: self
                .phone
                .as_deref()
                .and_then(|p| Phone::parse_e164(p).ok()),
            email: self.email.as_deref().and_then(|e| Email::parse(e).ok()),
            zone: self.timezone.as_deref().and_then(|z| Zone::parse(z).ok()),
            language: self
                .language
                .as_deref()
                .and_then(|l| Language::parse(l).ok()),
            risk_score: self.risk_score,
            no_show_count: self.no_show_count,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The patient's personal fields, sealed into an event under their own key.
pub fn customer_pii(c: &Customer) -> EventPii {
    EventPii {
        subject_id: c.id.to_string(),
        fields: json!({"customer": {
            "name": c.name,
            "phone": c.phone.as_ref().map(Phone::as_str),
            "email": c.email.as_ref().map(Email::as_str),
        }}),
    }
}

/// `{"appointment": …, "customer": …}` plus `extra` fields.
pub fn appointment_payload(a: &Appointment, customer: Option<&Customer>, extra: Value) -> Value {
    let mut payload = json!({ "appointment": AppointmentSnapshot::of(a) });
    if let Some(c) = customer {
        payload["customer"] = serde_json::to_value(CustomerSnapshot::of(c)).unwrap_or(Value::Null);
    }
    if let (Value::Object(base), Value::Object(more)) = (&mut payload, extra) {
        base.extend(more);
    }
    payload
}
