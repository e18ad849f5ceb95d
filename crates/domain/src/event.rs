//! The v1 event catalogue (DESIGN.md "Events"). Additive only: new types may appear, none is
//! renamed or removed.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! event_types {
    ($($variant:ident => $name:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType { $($variant,)* }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name,)* }
            }

            pub fn parse(raw: &str) -> Result<Self, UnknownEventType> {
                match raw {
                    $($name => Ok(EventType::$variant),)*
                    other => Err(UnknownEventType(other.to_owned())),
                }
            }
        }
    };
}

event_types! {
    AppointmentBooked => "appointment.booked",
    AppointmentUpdated => "appointment.updated",
    AppointmentConfirmed => "appointment.confirmed",
    AppointmentCancelRequested => "appointment.cancel_requested",
    AppointmentCancelled => "appointment.cancelled",
    AppointmentRescheduled => "appointment.rescheduled",
    AppointmentInProgress => "appointment.in_progress",
    AppointmentCompleted => "appointment.completed",
    AppointmentNoShow => "appointment.no_show",
    ReminderScheduled => "reminder.scheduled",
    ReminderSkipped => "reminder.skipped",
    MessageQueued => "message.queued",
    MessageSent => "message.sent",
    MessageDelivered => "message.delivered",
    MessageDeliveryFailed => "message.delivery_failed",
    MessageReceived => "message.received",
    ReplyClassified => "reply.classified",
    ConsentGranted => "consent.granted",
    ConsentRevoked => "consent.revoked",
    EscalationOpened => "escalation.opened",
    EscalationResolved => "escalation.resolved",
    ReviewRequested => "review.requested",
    PaymentLinkCreated => "payment.link_created",
    PaymentCompleted => "payment.completed",
    CustomerRiskUpdated => "customer.risk_updated",
    ExecutionDeadLettered => "execution.dead_lettered",
    ExecutionExpired => "execution.expired",
    TenantCreated => "tenant.created",
    TenantConfigUpdated => "tenant.config_updated",
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventType(pub String);

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        EventType::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_and_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for t in EventType::ALL {
            assert!(seen.insert(t.as_str()));
            assert_eq!(EventType::parse(t.as_str()), Ok(*t));
        }
        assert_eq!(EventType::ALL.len(), 29);
        assert!(EventType::parse("appointment.deleted").is_err());
    }
}
