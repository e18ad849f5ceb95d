//! Messages: every text ARO sends or receives, with its delivery status.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Sms,
    /// Reserved: business-initiated WhatsApp needs approved templates (issue 4 keeps it open).
    Whatsapp,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Whatsapp => "whatsapp",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "sms" => Some(Self::Sms),
            "whatsapp" => Some(Self::Whatsapp),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Outbound,
    Inbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outbound => "outbound",
            Self::Inbound => "inbound",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "outbound" => Some(Self::Outbound),
            "inbound" => Some(Self::Inbound),
            _ => None,
        }
    }
}

/// Delivery status, in Twilio's vocabulary (queued → sent → delivered | undelivered | failed),
/// plus the states before a provider has it and the inbound one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Rendered and waiting for the executor.
    Pending,
    Queued,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    /// Withdrawn before it left (consent revoked, appointment cancelled, cap reached).
    Cancelled,
    Received,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 8] = [
        Self::Pending,
        Self::Queued,
        Self::Sent,
        Self::Delivered,
        Self::Undelivered,
        Self::Failed,
        Self::Cancelled,
        Self::Received,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Received => "received",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Provider callbacks arrive out of order; a status only moves forward along the delivery
    /// path, so a late `sent` never overwrites `delivered`.
    pub fn rank(self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Queued => 1,
            Self::Sent => 2,
            Self::Delivered | Self::Undelivered | Self::Failed | Self::Cancelled => 3,
            Self::Received => 3,
        }
    }

    pub fn advances_to(self, next: MessageStatus) -> bool {
        next.rank() > self.rank()
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_callbacks_never_move_a_status_backwards() {
        assert!(MessageStatus::Queued.advances_to(MessageStatus::Delivered));
        assert!(!MessageStatus::Delivered.advances_to(MessageStatus::Sent));
        assert!(!MessageStatus::Delivered.advances_to(MessageStatus::Failed));
        assert!(MessageStatus::Sent.advances_to(MessageStatus::Undelivered));
    }
}
