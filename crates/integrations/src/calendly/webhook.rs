//! Reading Calendly's webhook payloads (after `aro_security::signatures::calendly` has checked
//! the `Calendly-Webhook-Signature` over the raw body).
//!
//! `invitee.created` and `invitee.canceled` carry an invitee (with the embedded
//! `scheduled_event` on newer subscriptions); a reschedule arrives as a cancel with
//! `rescheduled: true` and `new_invitee`, plus a create with `old_invitee`, in either order.
//! `invitee_no_show.created`/`.deleted` name the invitee: as `invitee` in a no-show resource
//! payload, or as the payload's own `uri` when the payload is the invitee itself; both shapes
//! are accepted. Other events are kept by name so core can acknowledge them.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::resources::Invitee;
use crate::payload::PayloadError;

/// Which Calendly event a webhook reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WebhookEvent {
    InviteeCreated,
    InviteeCanceled,
    InviteeNoShowCreated,
    InviteeNoShowDeleted,
    /// Any other event (`routing_form_submission.created`…), by name.
    Other(String),
}

impl WebhookEvent {
    /// Reads Calendly's event name; never fails.
    pub fn parse(name: &str) -> Self {
        match name {
            "invitee.created" => Self::InviteeCreated,
            "invitee.canceled" => Self::InviteeCanceled,
            "invitee_no_show.created" => Self::InviteeNoShowCreated,
            "invitee_no_show.deleted" => Self::InviteeNoShowDeleted,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Calendly's event name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InviteeCreated => "invitee.created",
            Self::InviteeCanceled => "invitee.canceled",
            Self::InviteeNoShowCreated => "invitee_no_show.created",
            Self::InviteeNoShowDeleted => "invitee_no_show.deleted",
            Self::Other(name) => name,
        }
    }
}

/// A no-show mark on an invitee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoShow {
    /// The no-show resource's URI, when the payload gave it.
    pub uri: Option<String>,
    /// The invitee marked (or unmarked) as a no-show.
    pub invitee: String,
    pub created_at: Option<DateTime<Utc>>,
}

/// What a webhook carries.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookPayload {
    Invitee(Box<Invitee>),
    NoShow(NoShow),
    /// The payload of an event ARO does not act on (not read).
    Other,
}

/// One Calendly webhook delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub event: WebhookEvent,
    /// When Calendly created the event.
    pub created_at: Option<DateTime<Utc>>,
    pub payload: WebhookPayload,
}

#[derive(Deserialize)]
struct RawWebhook {
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    payload: Option<Value>,
}

#[derive(Deserialize)]
struct RawNoShow {
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    invitee: Option<Value>,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    no_show: Option<RawNoShowMark>,
}

#[derive(Deserialize)]
struct RawNoShowMark {
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
}

impl Webhook {
    /// Parses a webhook body. `event` is required; invitee events need a payload with the
    /// invitee's `uri`, no-show events one that names the invitee.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let raw: RawWebhook =
            serde_json::from_slice(body).map_err(|_| PayloadError::Malformed("JSON webhook"))?;
        let event = WebhookEvent::parse(
            raw.event
                .as_deref()
                .filter(|e| !e.is_empty())
                .ok_or(PayloadError::MissingField("event"))?,
        );
        let created_at = match raw.created_at.as_deref() {
            Some(value) => Some(
                DateTime::parse_from_rfc3339(value)
                    .map_err(|_| PayloadError::InvalidField("created_at"))?
                    .with_timezone(&Utc),
            ),
            None => None,
        };
        let payload = match &event {
            WebhookEvent::InviteeCreated | WebhookEvent::InviteeCanceled => {
                WebhookPayload::Invitee(Box::new(parse_invitee(raw.payload)?))
            }
            WebhookEvent::InviteeNoShowCreated | WebhookEvent::InviteeNoShowDeleted => {
                WebhookPayload::NoShow(parse_no_show(raw.payload)?)
            }
            WebhookEvent::Other(_) => WebhookPayload::Other,
        };
        Ok(Self {
            event,
            created_at,
            payload,
        })
    }

    /// The invitee this webhook is about, for deduplication (invitee URI + event) and for
    /// finding the appointment.
    pub fn invitee_uri(&self) -> Option<&str> {
        match &self.payload {
            WebhookPayload::Invitee(invitee) => Some(&invitee.uri),
            WebhookPayload::NoShow(no_show) => Some(&no_show.invitee),
            WebhookPayload::Other => None,
        }
    }
}

fn parse_invitee(payload: Option<Value>) -> Result<Invitee, PayloadError> {
    let payload = payload
        .filter(Value::is_object)
        .ok_or(PayloadError::MissingField("payload"))?;
    if payload
        .get("uri")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(PayloadError::MissingField("payload.uri"));
    }
    serde_json::from_value(payload).map_err(|_| PayloadError::InvalidField("payload"))
}

fn parse_no_show(payload: Option<Value>) -> Result<NoShow, PayloadError> {
    let payload = payload
        .filter(Value::is_object)
        .ok_or(PayloadError::MissingField("payload"))?;
    let raw: RawNoShow =
        serde_json::from_value(payload).map_err(|_| PayloadError::InvalidField("payload"))?;
    let non_empty = |value: Option<String>| value.filter(|v| !v.is_empty());
    match raw.invitee {
        // The no-show resource: `{uri, invitee, created_at}` (`invitee` may be expanded).
        Some(invitee) => {
            let invitee = match invitee {
                Value::String(uri) => Some(uri),
                Value::Object(object) => {
                    object.get("uri").and_then(Value::as_str).map(str::to_owned)
                }
                _ => None,
            };
            Ok(NoShow {
                uri: non_empty(raw.uri),
                invitee: non_empty(invitee).ok_or(PayloadError::InvalidField("payload.invitee"))?,
                created_at: raw.created_at,
            })
        }
        // The invitee itself, with its `no_show` mark.
        None => {
            let invitee = non_empty(raw.uri)
                .filter(|uri| uri.contains("/invitees/"))
                .ok_or(PayloadError::MissingField("payload.invitee"))?;
            let (uri, created_at) = match raw.no_show {
                Some(mark) => (non_empty(mark.uri), mark.created_at),
                None => (None, None),
            };
            Ok(NoShow {
                uri,
                invitee,
                created_at,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_no_show_resource_payload_names_its_invitee() -> Result<(), PayloadError> {
        let webhook = Webhook::parse(
            br#"{"event": "invitee_no_show.created", "created_at": "2030-03-15T15:00:00.000000Z",
                 "payload": {"uri": "https://api.calendly.com/invitee_no_shows/NS1",
                             "invitee": "https://api.calendly.com/scheduled_events/EV1/invitees/IN1",
                             "created_at": "2030-03-15T15:00:00Z"}}"#,
        )?;
        assert_eq!(webhook.event, WebhookEvent::InviteeNoShowCreated);
        let WebhookPayload::NoShow(no_show) = &webhook.payload else {
            panic!("expected a no-show payload");
        };
        assert_eq!(
            no_show.uri.as_deref(),
            Some("https://api.calendly.com/invitee_no_shows/NS1")
        );
        assert_eq!(
            webhook.invitee_uri(),
            Some("https://api.calendly.com/scheduled_events/EV1/invitees/IN1")
        );
        Ok(())
    }

    #[test]
    fn an_invitee_shaped_no_show_payload_is_accepted() -> Result<(), PayloadError> {
        let webhook = Webhook::parse(
            br#"{"event": "invitee_no_show.deleted",
                 "payload": {"uri": "https://api.calendly.com/scheduled_events/EV1/invitees/IN1",
                             "no_show": {"uri": "https://api.calendly.com/invitee_no_shows/NS1",
                                         "created_at": "2030-03-15T15:00:00Z"}}}"#,
        )?;
        assert_eq!(webhook.event, WebhookEvent::InviteeNoShowDeleted);
        let WebhookPayload::NoShow(no_show) = &webhook.payload else {
            panic!("expected a no-show payload");
        };
        assert_eq!(
            no_show.invitee,
            "https://api.calendly.com/scheduled_events/EV1/invitees/IN1"
        );
        assert!(no_show.created_at.is_some());
        Ok(())
    }

    #[test]
    fn other_events_are_kept_by_name() -> Result<(), PayloadError> {
        let webhook = Webhook::parse(
            br#"{"event": "routing_form_submission.created", "payload": {"anything": 1}}"#,
        )?;
        assert_eq!(
            webhook.event,
            WebhookEvent::Other("routing_form_submission.created".to_owned())
        );
        assert_eq!(webhook.payload, WebhookPayload::Other);
        assert_eq!(webhook.invitee_uri(), None);
        Ok(())
    }

    #[test]
    fn payloads_that_cannot_be_acted_on_are_refused() {
        let cases: [(&[u8], PayloadError); 6] = [
            (b"{", PayloadError::Malformed("JSON webhook")),
            (br#"{"payload": {}}"#, PayloadError::MissingField("event")),
            (br#"{"event": "invitee.created"}"#, PayloadError::MissingField("payload")),
            (
                br#"{"event": "invitee.created", "payload": {"name": "x"}}"#,
                PayloadError::MissingField("payload.uri"),
            ),
            (
                br#"{"event": "invitee.created", "payload": {"uri": "u", "rescheduled": "yes"}}"#,
                PayloadError::InvalidField("payload"),
            ),
            (
                br#"{"event": "invitee_no_show.created", "payload": {"uri": "https://api.calendly.com/invitee_no_shows/NS1"}}"#,
                PayloadError::MissingField("payload.invitee"),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(Webhook::parse(body).err(), Some(expected));
        }
    }
}
