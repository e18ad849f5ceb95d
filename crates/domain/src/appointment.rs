//! The appointment and its state machine, exactly as DESIGN.md's table. A transition is a total
//! function: every (from, to) pair is either allowed or refused with a typed error, so no caller
//! can move an appointment somewhere the clinic's process does not allow.

use crate::ids::{BusinessId, TenantId};
use crate::values::{Language, Money, Zone};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    Booked,
    Confirmed,
    CancelRequested,
    Rescheduled,
    InProgress,
    Completed,
    NoShow,
    Cancelled,
}

impl AppointmentStatus {
    pub const ALL: [AppointmentStatus; 8] = [
        Self::Booked,
        Self::Confirmed,
        Self::CancelRequested,
        Self::Rescheduled,
        Self::InProgress,
        Self::Completed,
        Self::NoShow,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Booked => "booked",
            Self::Confirmed => "confirmed",
            Self::CancelRequested => "cancel_requested",
            Self::Rescheduled => "rescheduled",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::NoShow => "no_show",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// The states this one may move to (DESIGN.md "Appointment states").
    pub fn successors(self) -> &'static [AppointmentStatus] {
        use AppointmentStatus::*;
        match self {
            Booked => &[
                Confirmed,
                CancelRequested,
                Rescheduled,
                Cancelled,
                InProgress,
                Completed,
                NoShow,
            ],
            Confirmed => &[
                CancelRequested,
                Rescheduled,
                Cancelled,
                InProgress,
                Completed,
                NoShow,
            ],
            CancelRequested => &[Cancelled, Confirmed, Rescheduled],
            Rescheduled => &[Booked],
            InProgress => &[Completed, NoShow],
            Completed => &[NoShow],
            NoShow => &[Completed],
            Cancelled => &[],
        }
    }

    /// Moves to `to` or says why not. Outcome corrections (completed ⇄ no_show) also need the
    /// correction window: see [`check_outcome_correction`].
    pub fn transition(self, to: AppointmentStatus) -> Result<AppointmentStatus, TransitionError> {
        if self.successors().contains(&to) {
            Ok(to)
        } else {
            Err(TransitionError::NotAllowed { from: self, to })
        }
    }

    /// States in which the visit is still ahead and reminders make sense.
    pub fn is_upcoming(self) -> bool {
        matches!(self, Self::Booked | Self::Confirmed | Self::CancelRequested)
    }

    /// States that are treated as completed 2 h after the visit's end (spec 03).
    pub fn completes_automatically(self) -> bool {
        matches!(self, Self::Booked | Self::Confirmed | Self::InProgress)
    }

    pub fn is_outcome(self) -> bool {
        matches!(self, Self::Completed | Self::NoShow)
    }
}

impl fmt::Display for AppointmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("an appointment cannot move from {from} to {to}")]
    NotAllowed {
        from: AppointmentStatus,
        to: AppointmentStatus,
    },
    #[error("the outcome can only be corrected within {window_hours} h of the visit's end")]
    CorrectionWindowClosed {
        from: AppointmentStatus,
        to: AppointmentStatus,
        window_hours: i64,
    },
}

impl TransitionError {
    pub fn from_to(&self) -> (AppointmentStatus, AppointmentStatus) {
        match self {
            Self::NotAllowed { from, to } | Self::CorrectionWindowClosed { from, to, .. } => {
                (*from, *to)
            }
        }
    }
}

/// How long after the end of a visit an unmarked appointment counts as completed.
pub const AUTO_COMPLETE_AFTER: Duration = Duration::hours(2);

/// A completed ⇄ no-show correction is staff fixing the record; it is allowed only within the
/// tenant's correction window after the visit's end, so reports settle.
pub fn check_outcome_correction(
    from: AppointmentStatus,
    to: AppointmentStatus,
    ends_at: DateTime<Utc>,
    now: DateTime<Utc>,
    window_hours: i64,
) -> Result<(), TransitionError> {
    from.transition(to)?;
    if from.is_outcome() && to.is_outcome() && now > ends_at + Duration::hours(window_hours) {
        return Err(TransitionError::CorrectionWindowClosed {
            from,
            to,
            window_hours,
        });
    }
    Ok(())
}

/// One visit as core stores it (patient details live on the customer, encrypted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Appointment {
    pub id: BusinessId,
    pub tenant_id: TenantId,
    pub customer_id: BusinessId,
    pub source: String,
    pub external_id: String,
    pub status: AppointmentStatus,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub service_type: Option<String>,
    pub price: Option<Money>,
    pub zone: Option<Zone>,
    pub language: Option<Language>,
    pub channel: crate::message::Channel,
    pub cancel_url: Option<String>,
    pub reschedule_url: Option<String>,
    /// Set when the booking carried no number that can receive texts: stored, flagged, not texted.
    pub needs_contact: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl Appointment {
    pub fn duration(&self) -> Duration {
        self.ends_at - self.starts_at
    }
}

#[cfg(test)]
mod tests {
    use super::AppointmentStatus::*;
    use super::*;
    use chrono::TimeZone;

    /// The full table of DESIGN.md, written out independently of `successors` so the test can
    /// disagree with the code.
    const ALLOWED: &[(AppointmentStatus, AppointmentStatus)] = &[
        (Booked, Confirmed),
        (Booked, CancelRequested),
        (Booked, Rescheduled),
        (Booked, Cancelled),
        (Booked, InProgress),
        (Booked, Completed),
        (Booked, NoShow),
        (Confirmed, CancelRequested),
        (Confirmed, Rescheduled),
        (Confirmed, Cancelled),
        (Confirmed, InProgress),
        (Confirmed, Completed),
        (Confirmed, NoShow),
        (CancelRequested, Cancelled),
        (CancelRequested, Confirmed),
        (CancelRequested, Rescheduled),
        (Rescheduled, Booked),
        (InProgress, Completed),
        (InProgress, NoShow),
        (Completed, NoShow),
        (NoShow, Completed),
    ];

    #[test]
    fn every_pair_of_states_is_allowed_exactly_when_the_table_says() {
        for from in AppointmentStatus::ALL {
            for to in AppointmentStatus::ALL {
                let expected = ALLOWED.contains(&(from, to));
                let got = from.transition(to);
                assert_eq!(got.is_ok(), expected, "{from} -> {to}");
                if let Err(e) = got {
                    assert_eq!(e.from_to(), (from, to));
                }
            }
        }
    }

    #[test]
    fn cancelled_is_final() {
        for to in AppointmentStatus::ALL {
            assert!(Cancelled.transition(to).is_err());
        }
    }

    #[test]
    fn status_names_round_trip() {
        for s in AppointmentStatus::ALL {
            assert_eq!(AppointmentStatus::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
    }

    #[test]
    fn outcome_corrections_close_after_the_window() {
        let end = Utc.with_ymd_and_hms(2030, 3, 15, 15, 0, 0).unwrap();
        let inside = end + Duration::hours(71);
        let outside = end + Duration::hours(73);
        assert!(check_outcome_correction(Completed, NoShow, end, inside, 72).is_ok());
        assert!(matches!(
            check_outcome_correction(Completed, NoShow, end, outside, 72),
            Err(TransitionError::CorrectionWindowClosed { .. })
        ));
        assert!(check_outcome_correction(NoShow, Completed, end, inside, 72).is_ok());
        // Not a correction: no window applies.
        assert!(check_outcome_correction(Booked, NoShow, end, outside, 72).is_ok());
        assert!(check_outcome_correction(Cancelled, NoShow, end, inside, 72).is_err());
    }
}
