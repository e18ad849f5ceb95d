//! Reading Stripe's webhook events (after `aro_security::signatures::stripe` has checked the
//! `Stripe-Signature` over the raw body).
//!
//! ARO acts on three Checkout Session events, all about a patient paying through one of our
//! payment links (matched by the session's `payment_link`), all carrying the session in
//! `data.object`:
//! - `checkout.session.completed`: the patient finished the checkout. With a card the money has
//!   arrived (`payment_status: paid`); with an asynchronous method (a bank debit) it has not yet
//!   (`unpaid`), and one of the next two follows, days later;
//! - `checkout.session.async_payment_succeeded`: the asynchronous payment arrived (`paid`);
//! - `checkout.session.async_payment_failed`: it did not (`unpaid`).
//!
//! They are one [`CheckoutSessionEvent`] with a [`CheckoutSessionEventKind`]. Every other type
//! is kept as [`Event::Other`] with its id, so core can record and acknowledge it without acting.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::payload::PayloadError;

/// The patient finished a checkout (paid, or an asynchronous payment pending).
pub const CHECKOUT_SESSION_COMPLETED: &str = "checkout.session.completed";
/// A checkout's asynchronous payment (a bank debit) arrived.
pub const CHECKOUT_SESSION_ASYNC_PAYMENT_SUCCEEDED: &str =
    "checkout.session.async_payment_succeeded";
/// A checkout's asynchronous payment (a bank debit) failed.
pub const CHECKOUT_SESSION_ASYNC_PAYMENT_FAILED: &str = "checkout.session.async_payment_failed";

/// A Stripe event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// One of the Checkout Session events ARO acts on.
    CheckoutSession(CheckoutSessionEvent),
    /// Any other event type, kept for deduplication and the record.
    Other { id: String, event_type: String },
}

impl Event {
    /// Parses an event body. Fails on anything that is not an event with an `id` and a `type`,
    /// and on a Checkout Session event without a readable `created` or session.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let raw: RawEvent =
            serde_json::from_slice(body).map_err(|_| PayloadError::Malformed("JSON event"))?;
        let id = raw
            .id
            .filter(|id| !id.is_empty())
            .ok_or(PayloadError::MissingField("id"))?;
        let event_type = raw
            .event_type
            .filter(|t| !t.is_empty())
            .ok_or(PayloadError::MissingField("type"))?;
        let Some(kind) = CheckoutSessionEventKind::from_type(&event_type) else {
            return Ok(Self::Other { id, event_type });
        };
        let created = raw
            .created
            .ok_or(PayloadError::MissingField("created"))
            .and_then(|seconds| {
                DateTime::from_timestamp(seconds, 0).ok_or(PayloadError::InvalidField("created"))
            })?;
        let object = raw
            .data
            .and_then(|data| data.object)
            .ok_or(PayloadError::MissingField("data.object"))?;
        let session = CheckoutSession::from_value(object)?;
        Ok(Self::CheckoutSession(CheckoutSessionEvent {
            id,
            kind,
            created,
            session,
        }))
    }

    /// The event's id (`evt_…`), what duplicates are dropped by.
    pub fn id(&self) -> &str {
        match self {
            Self::CheckoutSession(event) => &event.id,
            Self::Other { id, .. } => id,
        }
    }

    /// The event's type, as Stripe names it.
    pub fn event_type(&self) -> &str {
        match self {
            Self::CheckoutSession(event) => event.kind.event_type(),
            Self::Other { event_type, .. } => event_type,
        }
    }
}

/// Which Checkout Session event it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutSessionEventKind {
    /// `checkout.session.completed`: paid, or (`payment_status: unpaid`) an asynchronous
    /// payment still on its way.
    Completed,
    /// `checkout.session.async_payment_succeeded`: the asynchronous payment arrived.
    AsyncPaymentSucceeded,
    /// `checkout.session.async_payment_failed`: the asynchronous payment failed; nothing was
    /// paid.
    AsyncPaymentFailed,
}

impl CheckoutSessionEventKind {
    fn from_type(event_type: &str) -> Option<Self> {
        match event_type {
            CHECKOUT_SESSION_COMPLETED => Some(Self::Completed),
            CHECKOUT_SESSION_ASYNC_PAYMENT_SUCCEEDED => Some(Self::AsyncPaymentSucceeded),
            CHECKOUT_SESSION_ASYNC_PAYMENT_FAILED => Some(Self::AsyncPaymentFailed),
            _ => None,
        }
    }

    /// Stripe's name for it.
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Completed => CHECKOUT_SESSION_COMPLETED,
            Self::AsyncPaymentSucceeded => CHECKOUT_SESSION_ASYNC_PAYMENT_SUCCEEDED,
            Self::AsyncPaymentFailed => CHECKOUT_SESSION_ASYNC_PAYMENT_FAILED,
        }
    }
}

/// A Checkout Session event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSessionEvent {
    /// The event id (`evt_…`): each event of one session has its own.
    pub id: String,
    pub kind: CheckoutSessionEventKind,
    pub created: DateTime<Utc>,
    pub session: CheckoutSession,
}

/// Whether the session's money has arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentStatus {
    Paid,
    /// An asynchronous method (bank debit) is still pending.
    Unpaid,
    NoPaymentRequired,
    Other(String),
}

impl PaymentStatus {
    fn parse(value: &str) -> Self {
        match value {
            "paid" => Self::Paid,
            "unpaid" => Self::Unpaid,
            "no_payment_required" => Self::NoPaymentRequired,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// The Checkout Session in `data.object`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    /// `cs_…`.
    pub id: String,
    /// The payment link it came from (`plink_…`), when it came from one.
    pub payment_link: Option<String>,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    pub payment_status: PaymentStatus,
    /// The link's metadata, copied by Stripe onto the session.
    pub metadata: BTreeMap<String, String>,
}

impl CheckoutSession {
    fn from_value(object: Value) -> Result<Self, PayloadError> {
        let raw: RawSession = serde_json::from_value(object)
            .map_err(|_| PayloadError::InvalidField("data.object"))?;
        let id = raw
            .id
            .filter(|id| !id.is_empty())
            .ok_or(PayloadError::MissingField("data.object.id"))?;
        let payment_link = match raw.payment_link {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => Some(id),
            // Expanded: the link object itself.
            Some(Value::Object(link)) => match link.get("id") {
                Some(Value::String(id)) => Some(id.clone()),
                _ => return Err(PayloadError::InvalidField("data.object.payment_link")),
            },
            Some(_) => return Err(PayloadError::InvalidField("data.object.payment_link")),
        };
        Ok(Self {
            id,
            payment_link,
            amount_total: raw.amount_total,
            currency: raw.currency,
            payment_status: PaymentStatus::parse(raw.payment_status.as_deref().unwrap_or("")),
            metadata: raw.metadata.unwrap_or_default(),
        })
    }
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type", default)]
    event_type: Option<String>,
    #[serde(default)]
    created: Option<i64>,
    #[serde(default)]
    data: Option<RawData>,
}

#[derive(Deserialize)]
struct RawData {
    #[serde(default)]
    object: Option<Value>,
}

#[derive(Deserialize)]
struct RawSession {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    payment_link: Option<Value>,
    #[serde(default)]
    amount_total: Option<i64>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    payment_status: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPLETED: &str = r#"{
      "id": "evt_1", "object": "event", "api_version": "2020-08-27", "created": 1893456000,
      "type": "checkout.session.completed", "livemode": false, "pending_webhooks": 1,
      "data": {"object": {
        "id": "cs_test_1", "object": "checkout.session", "amount_total": 5000,
        "currency": "usd", "payment_link": "plink_1", "payment_status": "paid",
        "status": "complete", "mode": "payment",
        "metadata": {"tenantId": "default", "appointmentId": "apt_1"}
      }}
    }"#;

    /// The checkout event in `body`, or the test fails.
    fn checkout(body: &str) -> Result<CheckoutSessionEvent, PayloadError> {
        match Event::parse(body.as_bytes())? {
            Event::CheckoutSession(event) => Ok(event),
            other => panic!("expected a checkout session event, got {other:?}"),
        }
    }

    /// `COMPLETED` as another event type, with another id and payment status.
    fn retyped(event_type: &str, id: &str, payment_status: &str) -> String {
        COMPLETED
            .replace("checkout.session.completed", event_type)
            .replace(r#""evt_1""#, &format!("\"{id}\""))
            .replace(
                r#""payment_status": "paid""#,
                &format!(r#""payment_status": "{payment_status}""#),
            )
    }

    #[test]
    fn a_completed_checkout_is_read() -> Result<(), PayloadError> {
        let event = checkout(COMPLETED)?;
        assert_eq!(event.kind, CheckoutSessionEventKind::Completed);
        assert_eq!(event.id, "evt_1");
        assert_eq!(event.created.timestamp(), 1_893_456_000);
        assert_eq!(event.session.id, "cs_test_1");
        assert_eq!(event.session.payment_link.as_deref(), Some("plink_1"));
        assert_eq!(event.session.amount_total, Some(5_000));
        assert_eq!(event.session.currency.as_deref(), Some("usd"));
        assert_eq!(event.session.payment_status, PaymentStatus::Paid);
        assert_eq!(
            event
                .session
                .metadata
                .get("appointmentId")
                .map(String::as_str),
            Some("apt_1")
        );
        Ok(())
    }

    #[test]
    fn an_expanded_payment_link_gives_its_id() -> Result<(), PayloadError> {
        let body = COMPLETED.replace(
            r#""payment_link": "plink_1""#,
            r#""payment_link": {"id": "plink_2", "object": "payment_link"}"#,
        );
        let event = checkout(&body)?;
        assert_eq!(event.session.payment_link.as_deref(), Some("plink_2"));
        Ok(())
    }

    #[test]
    fn a_bank_debit_completes_unpaid() -> Result<(), PayloadError> {
        let event = checkout(&retyped("checkout.session.completed", "evt_4", "unpaid"))?;
        assert_eq!(event.kind, CheckoutSessionEventKind::Completed);
        assert_eq!(event.session.payment_status, PaymentStatus::Unpaid);
        Ok(())
    }

    #[test]
    fn an_arrived_asynchronous_payment_is_read_with_its_session() -> Result<(), PayloadError> {
        let body = retyped("checkout.session.async_payment_succeeded", "evt_5", "paid");
        let event = checkout(&body)?;
        assert_eq!(event.kind, CheckoutSessionEventKind::AsyncPaymentSucceeded);
        assert_eq!(event.id, "evt_5");
        assert_eq!(event.session.id, "cs_test_1");
        assert_eq!(event.session.payment_link.as_deref(), Some("plink_1"));
        assert_eq!(event.session.payment_status, PaymentStatus::Paid);
        assert_eq!(event.session.amount_total, Some(5_000));
        let parsed = Event::parse(body.as_bytes())?;
        assert_eq!(parsed.id(), "evt_5");
        assert_eq!(
            parsed.event_type(),
            "checkout.session.async_payment_succeeded"
        );
        Ok(())
    }

    #[test]
    fn a_failed_asynchronous_payment_is_read_with_its_session() -> Result<(), PayloadError> {
        let body = retyped("checkout.session.async_payment_failed", "evt_6", "unpaid");
        let event = checkout(&body)?;
        assert_eq!(event.kind, CheckoutSessionEventKind::AsyncPaymentFailed);
        assert_eq!(event.session.payment_link.as_deref(), Some("plink_1"));
        assert_eq!(event.session.payment_status, PaymentStatus::Unpaid);
        let parsed = Event::parse(body.as_bytes())?;
        assert_eq!(parsed.id(), "evt_6");
        assert_eq!(parsed.event_type(), "checkout.session.async_payment_failed");
        Ok(())
    }

    #[test]
    fn every_kind_names_its_own_type() {
        for kind in [
            CheckoutSessionEventKind::Completed,
            CheckoutSessionEventKind::AsyncPaymentSucceeded,
            CheckoutSessionEventKind::AsyncPaymentFailed,
        ] {
            assert_eq!(
                CheckoutSessionEventKind::from_type(kind.event_type()),
                Some(kind)
            );
        }
        assert_eq!(
            CheckoutSessionEventKind::from_type("checkout.session.expired"),
            None
        );
    }

    #[test]
    fn other_types_are_kept_with_their_id() -> Result<(), PayloadError> {
        let event = Event::parse(
            br#"{"id": "evt_2", "type": "payment_link.updated", "created": 1, "data": {"object": {}}}"#,
        )?;
        assert_eq!(
            event,
            Event::Other {
                id: "evt_2".to_owned(),
                event_type: "payment_link.updated".to_owned()
            }
        );
        assert_eq!(event.id(), "evt_2");
        assert_eq!(event.event_type(), "payment_link.updated");
        Ok(())
    }

    #[test]
    fn unreadable_events_are_refused() {
        assert_eq!(
            Event::parse(b"not json"),
            Err(PayloadError::Malformed("JSON event"))
        );
        assert_eq!(
            Event::parse(br#"{"type": "checkout.session.completed"}"#),
            Err(PayloadError::MissingField("id"))
        );
        assert_eq!(
            Event::parse(br#"{"id": "evt_3", "type": "checkout.session.completed", "created": 1}"#),
            Err(PayloadError::MissingField("data.object"))
        );
        let bad_metadata = COMPLETED.replace(r#""apt_1""#, "42");
        assert_eq!(
            Event::parse(bad_metadata.as_bytes()),
            Err(PayloadError::InvalidField("data.object"))
        );
        // The asynchronous outcomes need their session as much as the completion does.
        for event_type in [
            "checkout.session.async_payment_succeeded",
            "checkout.session.async_payment_failed",
        ] {
            let body = format!(r#"{{"id": "evt_7", "type": "{event_type}", "created": 1}}"#);
            assert_eq!(
                Event::parse(body.as_bytes()),
                Err(PayloadError::MissingField("data.object"))
            );
            let body = format!(
                r#"{{"id": "evt_7", "type": "{event_type}", "data": {{"object": {{"id": "cs_1"}}}}}}"#
            );
            assert_eq!(
                Event::parse(body.as_bytes()),
                Err(PayloadError::MissingField("created"))
            );
        }
    }
}
