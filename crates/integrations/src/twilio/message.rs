//! Twilio's Message resource as we read it, from the API (`Messages.json`) and from status
//! callbacks (`MessageStatus`).
//!
//! Twilio adds statuses over time (`accepted`, `scheduled`, `read`, `partially_delivered`…), so
//! an unknown one is kept as [`MessageStatus::Other`] instead of failing the whole answer.
//! Dates arrive as RFC 2822 (`Thu, 30 Jul 2015 20:12:31 +0000`).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

/// Where a message stands at Twilio.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    Accepted,
    Scheduled,
    Canceled,
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    Receiving,
    Received,
    Read,
    PartiallyDelivered,
    /// A status this version does not know, kept as Twilio wrote it.
    Other(String),
}

impl MessageStatus {
    /// Reads Twilio's wire value; never fails.
    pub fn parse(value: &str) -> Self {
        match value {
            "accepted" => Self::Accepted,
            "scheduled" => Self::Scheduled,
            "canceled" => Self::Canceled,
            "queued" => Self::Queued,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "undelivered" => Self::Undelivered,
            "failed" => Self::Failed,
            "receiving" => Self::Receiving,
            "received" => Self::Received,
            "read" => Self::Read,
            "partially_delivered" => Self::PartiallyDelivered,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Twilio's wire value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Accepted => "accepted",
            Self::Scheduled => "scheduled",
            Self::Canceled => "canceled",
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
            Self::Receiving => "receiving",
            Self::Received => "received",
            Self::Read => "read",
            Self::PartiallyDelivered => "partially_delivered",
            Self::Other(other) => other,
        }
    }

    /// Whether the message did not and will not reach the handset.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Undelivered | Self::Failed | Self::Canceled)
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MessageStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Ok(Self::parse(&value))
    }
}

/// A Message resource.
///
/// `to`, `from` and `body` are patient data: [`fmt::Debug`] leaves them out.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "RawMessage")]
pub struct TwilioMessage {
    /// `SM…` (or `MM…` for media).
    pub sid: String,
    pub account_sid: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub to: String,
    pub from: Option<String>,
    pub body: String,
    pub status: MessageStatus,
    /// Twilio's error code for failed or undelivered messages.
    pub error_code: Option<i64>,
    pub num_segments: Option<String>,
    pub direction: Option<String>,
    pub date_created: Option<DateTime<Utc>>,
    pub date_sent: Option<DateTime<Utc>>,
    pub date_updated: Option<DateTime<Utc>>,
}

impl fmt::Debug for TwilioMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioMessage")
            .field("sid", &self.sid)
            .field("status", &self.status)
            .field("error_code", &self.error_code)
            .field("date_created", &self.date_created)
            .finish_non_exhaustive()
    }
}

/// The wire shape: everything nullable, dates as RFC 2822 text.
#[derive(Deserialize)]
struct RawMessage {
    sid: String,
    #[serde(default)]
    account_sid: Option<String>,
    #[serde(default)]
    messaging_service_sid: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    status: Option<MessageStatus>,
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    num_segments: Option<String>,
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    date_created: Option<String>,
    #[serde(default)]
    date_sent: Option<String>,
    #[serde(default)]
    date_updated: Option<String>,
}

impl From<RawMessage> for TwilioMessage {
    fn from(raw: RawMessage) -> Self {
        Self {
            sid: raw.sid,
            account_sid: raw.account_sid,
            messaging_service_sid: raw.messaging_service_sid,
            to: raw.to.unwrap_or_default(),
            from: raw.from,
            body: raw.body.unwrap_or_default(),
            status: raw
                .status
                .unwrap_or_else(|| MessageStatus::Other(String::new())),
            error_code: raw.error_code,
            num_segments: raw.num_segments,
            direction: raw.direction,
            date_created: raw.date_created.as_deref().and_then(parse_rfc2822),
            date_sent: raw.date_sent.as_deref().and_then(parse_rfc2822),
            date_updated: raw.date_updated.as_deref().and_then(parse_rfc2822),
        }
    }
}

/// Twilio's dates; an unreadable one is treated as absent (it only ever narrows a look-up).
pub(crate) fn parse_rfc2822(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|date| date.with_timezone(&Utc))
}

/// One page of `GET Messages.json`.
#[derive(Debug, Deserialize)]
pub(crate) struct MessagePage {
    #[serde(default)]
    pub messages: Vec<TwilioMessage>,
    #[serde(default)]
    pub next_page_uri: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_status_round_trips() {
        for value in [
            "accepted",
            "scheduled",
            "canceled",
            "queued",
            "sending",
            "sent",
            "delivered",
            "undelivered",
            "failed",
            "receiving",
            "received",
            "read",
            "partially_delivered",
        ] {
            let status = MessageStatus::parse(value);
            assert!(!matches!(status, MessageStatus::Other(_)), "{value}");
            assert_eq!(status.as_str(), value);
        }
        assert_eq!(
            MessageStatus::parse("teleported"),
            MessageStatus::Other("teleported".to_owned())
        );
    }

    #[test]
    fn debug_leaves_patient_data_out() -> Result<(), serde_json::Error> {
        let message: TwilioMessage = serde_json::from_str(
            r#"{"sid": "SM1", "to": "+14155552671", "from": "+15005550006",
                "body": "Hi Ada", "status": "queued",
                "date_created": "Thu, 30 Jul 2015 20:12:31 +0000"}"#,
        )?;
        let shown = format!("{message:?}");
        assert!(shown.contains("SM1"));
        assert!(!shown.contains("4155552671"));
        assert!(!shown.contains("Ada"));
        assert_eq!(
            message.date_created.map(|d| d.to_rfc3339()),
            Some("2015-07-30T20:12:31+00:00".to_owned())
        );
        Ok(())
    }
}
