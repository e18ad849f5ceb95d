//! State carried by events. Appointment events carry the whole appointment as it is after the
//! event, and `appointment.booked` / `appointment.updated` carry the patient (personal fields
//! sealed under the patient's key), so the read models can be rebuilt from the log alone.
//!
//! Some commands write a read model that their own events do not describe (a provider's new
//! identity for a booking; a patient's details updated by a booking that moved the visit). The
//! store records such writes ([`aro_store::Unlogged`]) and the step context carries them on the
//! events it queues ([`carry_unlogged`]), or queues `appointment.updated` for what no event
//! would carry ([`log_unlogged`]): the log stays the whole truth without every command having
//! to remember it.

use crate::ctx::Ctx;
use crate::error::EngineResult;
use aro_domain::EventType;
use aro_domain::appointment::{Appointment, AppointmentStatus};
use aro_domain::customer::Customer;
use aro_domain::ids::{BusinessId, TenantId};
use aro_domain::message::Channel;
use aro_domain::values::{Currency, Email, Language, Money, Phone, Zone};
use aro_store::{AggregateRef, EventPii, Unlogged};
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

/// A booking identity given to an appointment (a provider's reschedule gives it a new one): the
/// event of the step that added it lists it under `aliasesAdded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AliasSnapshot {
    pub source: String,
    pub external_id: String,
    pub created_at: DateTime<Utc>,
}

/// The payload key of [`AliasSnapshot`]s.
pub const ALIASES_ADDED: &str = "aliasesAdded";

/// Puts this step's unlogged writes that concern the event about to be queued on it: the
/// booking identities added to its appointment (`aliasesAdded`), and the patient's state
/// (`customer`, personal fields sealed as `pii`) when the patient was written since an event
/// last told it. `customer.risk_updated` tells a change of the risk counters alone.
pub(crate) fn carry_unlogged(
    unlogged: &mut Unlogged,
    tenant_id: &str,
    event_type: EventType,
    payload: &mut Value,
    pii: &mut Option<EventPii>,
) {
    if unlogged.aliases.is_empty() && unlogged.customers.is_empty() {
        return;
    }
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let appointment_id = text(payload.pointer("/appointment/id"));
    if let Some(appointment_id) = &appointment_id {
        let mut added = Vec::new();
        unlogged.aliases.retain(|w| {
            let here = w.tenant_id == tenant_id && &w.appointment_id == appointment_id;
            if here {
                added.push(AliasSnapshot {
                    source: w.source.clone(),
                    external_id: w.external_id.clone(),
                    created_at: w.created_at,
                });
            }
            !here
        });
        if !added.is_empty()
            && let Value::Object(map) = payload
        {
            map.insert(ALIASES_ADDED.to_owned(), json!(added));
        }
    }
    let position = |id: &str| {
        unlogged.customers.iter().position(|w| {
            w.customer.tenant_id.as_str() == tenant_id && w.customer.id.as_str() == id
        })
    };
    if let Some(told) = text(payload.pointer("/customer/id")) {
        // The event tells the patient as the emitter has them, which is as last written.
        if let Some(i) = position(&told) {
            unlogged.customers.remove(i);
        }
        return;
    }
    let subject = if event_type == EventType::CustomerRiskUpdated {
        text(payload.get("customerId"))
    } else {
        text(payload.pointer("/appointment/customerId"))
    };
    let Some(i) = subject.as_deref().and_then(position) else {
        return;
    };
    if event_type == EventType::CustomerRiskUpdated && !unlogged.customers[i].details_changed {
        unlogged.customers.remove(i);
        return;
    }
    if pii.is_some() {
        // Another subject's personal fields ride here; a later event (or `log_unlogged`) tells
        // this patient.
        return;
    }
    let written = unlogged.customers.remove(i).customer;
    if let Value::Object(map) = payload {
        map.insert(
            "customer".to_owned(),
            serde_json::to_value(CustomerSnapshot::of(&written)).unwrap_or(Value::Null),
        );
        *pii = Some(customer_pii(&written));
    }
}

/// Queues `appointment.updated` for the writes of this step that no queued event carried: an
/// identity added to a booking whose details did not otherwise change, a patient changed with no
/// event about their visits (told on their latest visit).
pub(crate) async fn log_unlogged(ctx: &mut Ctx<'_, '_>) -> EngineResult<()> {
    let tenant = ctx.tenant_id().to_owned();
    let unlogged = ctx.tx.unlogged();
    let (aliases, others): (Vec<_>, Vec<_>) = std::mem::take(&mut unlogged.aliases)
        .into_iter()
        .partition(|w| w.tenant_id == tenant);
    unlogged.aliases = others;
    let (customers, others): (Vec<_>, Vec<_>) = std::mem::take(&mut unlogged.customers)
        .into_iter()
        .partition(|w| w.customer.tenant_id.as_str() == tenant);
    unlogged.customers = others;

    let mut by_appointment: std::collections::BTreeMap<String, Vec<AliasSnapshot>> =
        std::collections::BTreeMap::new();
    for w in aliases {
        by_appointment
            .entry(w.appointment_id)
            .or_default()
            .push(AliasSnapshot {
                source: w.source,
                external_id: w.external_id,
                created_at: w.created_at,
            });
    }
    for (appointment_id, added) in by_appointment {
        let Some(a) = ctx.tx.get_appointment(&tenant, &appointment_id).await? else {
            // Unreachable: an alias references its appointment.
            tracing::warn!(appointment = %appointment_id, "alias of a missing appointment");
            continue;
        };
        let payload =
            appointment_payload(&a, None, json!({"actor": ctx.actor, ALIASES_ADDED: added}));
        ctx.emit(
            EventType::AppointmentUpdated,
            AggregateRef::new("appointment", a.id.as_str()),
            payload,
            None,
        );
    }
    for written in customers {
        let c = written.customer;
        let latest = ctx
            .tx
            .appointments_for_customer(&tenant, c.id.as_str())
            .await?
            .into_iter()
            .max_by_key(|a| (a.starts_at, a.created_at));
        let Some(a) = latest else {
            // A patient exists only through a booking; none here means nothing to tell.
            tracing::warn!(customer = %c.id, "patient written without any visit");
            continue;
        };
        let payload = appointment_payload(&a, Some(&c), json!({"actor": ctx.actor}));
        ctx.emit(
            EventType::AppointmentUpdated,
            AggregateRef::new("appointment", a.id.as_str()),
            payload,
            Some(customer_pii(&c)),
        );
    }
    Ok(())
}
