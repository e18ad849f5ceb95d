//! Calendly's Invitee and Event resources, as the API returns them and as webhook payloads
//! embed them.
//!
//! Read tolerantly: every field but the invitee's `uri` may be missing or `null` (payloads
//! vary with the subscription's age; gaps are filled later by an API look-up). A field present
//! with the wrong type still fails, so a garbled payload is not mistaken for a sparse one.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

/// `null` reads as the type's default (an empty list, `false`).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Someone booked with the clinic: the invitee of a scheduled event.
///
/// Names, email, phone and answers are patient data: [`fmt::Debug`] leaves them out.
#[derive(Clone, PartialEq, Deserialize)]
pub struct Invitee {
    /// The invitee's canonical URI: ARO's external id for the booking.
    pub uri: String,
    /// The scheduled event's URI.
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// The number typed on the booking form for text reminders: free text, not E.164.
    #[serde(default)]
    pub text_reminder_number: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    /// `active` or `canceled`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub cancel_url: Option<String>,
    #[serde(default)]
    pub reschedule_url: Option<String>,
    /// True on the canceled half of a reschedule.
    #[serde(default, deserialize_with = "null_as_default")]
    pub rescheduled: bool,
    /// On the new invitee of a reschedule: the invitee it replaces.
    #[serde(default)]
    pub old_invitee: Option<String>,
    /// On the canceled invitee of a reschedule: the invitee that replaces it.
    #[serde(default)]
    pub new_invitee: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub questions_and_answers: Vec<QuestionAndAnswer>,
    #[serde(default)]
    pub cancellation: Option<Cancellation>,
    /// Embedded by newer webhook payloads; absent from the API's invitee resource.
    #[serde(default)]
    pub scheduled_event: Option<ScheduledEvent>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for Invitee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invitee")
            .field("uri", &self.uri)
            .field("event", &self.event)
            .field("status", &self.status)
            .field("rescheduled", &self.rescheduled)
            .field("old_invitee", &self.old_invitee)
            .field("new_invitee", &self.new_invitee)
            .field("scheduled_event", &self.scheduled_event)
            .finish_non_exhaustive()
    }
}

/// A booked meeting.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ScheduledEvent {
    #[serde(default)]
    pub uri: Option<String>,
    /// The event type's name ("Checkup"), which the profile pack maps to a service.
    #[serde(default)]
    pub name: Option<String>,
    /// `active` or `canceled`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_time: Option<DateTime<Utc>>,
    /// The event type's URI.
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub cancellation: Option<Cancellation>,
}

/// Who canceled and why.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct Cancellation {
    /// The canceler's name: patient or staff data, left out of [`fmt::Debug`].
    #[serde(default)]
    pub canceled_by: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// `host` or `invitee`.
    #[serde(default)]
    pub canceler_type: Option<String>,
}

impl fmt::Debug for Cancellation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancellation")
            .field("canceler_type", &self.canceler_type)
            .finish_non_exhaustive()
    }
}

/// One answer on the booking form.
#[derive(Clone, PartialEq, Deserialize)]
pub struct QuestionAndAnswer {
    #[serde(default, deserialize_with = "null_as_default")]
    pub question: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub answer: String,
    #[serde(default)]
    pub position: Option<f64>,
}

impl fmt::Debug for QuestionAndAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuestionAndAnswer")
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}
