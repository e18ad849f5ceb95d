//! A tenant's policies: the numbers that shape its reminder flows. Installed by the profile
//! backend from its pack, validated here so a bad window or offset is refused before it is used.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A local time of day, `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime {
    pub hour: u32,
    pub minute: u32,
}

impl LocalTime {
    pub fn parse(raw: &str) -> Option<Self> {
        let (h, m) = raw.trim().split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let hour: u32 = h.parse().ok()?;
        let minute: u32 = m.parse().ok()?;
        (hour < 24 && minute < 60).then_some(Self { hour, minute })
    }

    pub fn minutes(self) -> u32 {
        self.hour * 60 + self.minute
    }

    pub fn to_naive(self) -> chrono::NaiveTime {
        chrono::NaiveTime::from_hms_opt(self.hour, self.minute, 0).unwrap_or_default()
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

impl Serialize for LocalTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        LocalTime::parse(&raw).ok_or_else(|| {
            serde::de::Error::custom("expected a time of day as HH:MM (00:00–23:59)")
        })
    }
}

/// The hours in which patients may be texted, in the patient's zone (else the clinic's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendWindow {
    pub start: LocalTime,
    pub end: LocalTime,
}

impl Default for SendWindow {
    fn default() -> Self {
        Self {
            start: LocalTime { hour: 8, minute: 0 },
            end: LocalTime {
                hour: 21,
                minute: 0,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Policies {
    /// Hours before the visit at which reminders go out, largest first (default 48, 24).
    pub reminder_offsets_hours: Vec<u32>,
    pub send_window: SendWindow,
    /// Messages per patient per rolling 24 h (direct answers to the patient's texts excepted).
    pub max_messages_per24h: u32,
    /// Below this confidence a reply goes to the LLM (if any), then to staff.
    pub classification_threshold: f64,
    /// How long after a visit staff may swap completed ⇄ no-show.
    pub correction_window_hours: i64,
    /// Hours without a reply after the last reminder before staff are alerted.
    pub escalate_after_hours: u32,
    /// Hours after completion before the review request.
    pub review_delay_hours: u32,
    /// At most one review request per patient in this many days.
    pub review_cooldown_days: u32,
    /// Days after completion before a rebooking offer (0 turns it off).
    pub rebook_delay_days: u32,
    /// Risk score at or above which a patient is high risk (0–100).
    pub high_risk_threshold: i32,
    /// Deposit asked of high-risk patients, in minor units of `deposit_currency` (0 turns deposits off).
    pub deposit_minor: i64,
    pub deposit_currency: String,
    pub deposit_nudge_after_hours: u32,
    pub deposit_alert_after_hours: u32,
    /// Where staff alerts go by text until staff use the UI; empty means the clinic phone.
    pub escalation_digest_minutes: u32,
    /// When the tenant's Twilio number answers STOP itself (Advanced Opt-Out), ARO sends no
    /// confirmation of its own.
    pub provider_sends_opt_out_confirmation: bool,
}

impl Default for Policies {
    fn default() -> Self {
        Self {
            reminder_offsets_hours: vec![48, 24],
            send_window: SendWindow::default(),
            max_messages_per24h: 3,
            classification_threshold: 0.7,
            correction_window_hours: 72,
            escalate_after_hours: 2,
            review_delay_hours: 6,
            review_cooldown_days: 90,
            rebook_delay_days: 3,
            high_risk_threshold: 70,
            deposit_minor: 2500,
            deposit_currency: "USD".to_owned(),
            deposit_nudge_after_hours: 24,
            deposit_alert_after_hours: 12,
            escalation_digest_minutes: 30,
            provider_sends_opt_out_confirmation: false,
        }
    }
}

/// A refused policy, naming the field (relative to `policies`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct PolicyError {
    pub field: String,
    pub reason: String,
}

impl Policies {
    pub fn validate(&self) -> Result<(), PolicyError> {
        let fail = |field: &str, reason: &str| {
            Err(PolicyError {
                field: field.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if self.reminder_offsets_hours.is_empty() || self.reminder_offsets_hours.len() > 5 {
            return fail("reminderOffsetsHours", "give between one and five offsets");
        }
        if self
            .reminder_offsets_hours
            .iter()
            .any(|h| *h == 0 || *h > 24 * 14)
        {
            return fail("reminderOffsetsHours", "each offset must be 1–336 hours");
        }
        if self.reminder_offsets_hours.windows(2).any(|w| w[0] <= w[1]) {
            return fail(
                "reminderOffsetsHours",
                "offsets must be distinct and in decreasing order (e.g. [48, 24])",
            );
        }
        let w = self.send_window;
        if w.end.minutes() <= w.start.minutes() {
            return fail("sendWindow", "end must be later than start on the same day");
        }
        if w.end.minutes() - w.start.minutes() < 60 {
            return fail("sendWindow", "the window must be at least one hour long");
        }
        if self.max_messages_per24h == 0 || self.max_messages_per24h > 20 {
            return fail("maxMessagesPer24h", "must be 1–20");
        }
        if !(0.0..=1.0).contains(&self.classification_threshold) {
            return fail("classificationThreshold", "must be within 0–1");
        }
        if !(0..=24 * 30).contains(&self.correction_window_hours) {
            return fail("correctionWindowHours", "must be 0–720");
        }
        if !(0..=100).contains(&self.high_risk_threshold) {
            return fail("highRiskThreshold", "must be 0–100");
        }
        if self.deposit_minor < 0 {
            return fail("depositMinor", "must not be negative");
        }
        if crate::values::Currency::parse(&self.deposit_currency).is_err() {
            return fail("depositCurrency", "not an ISO 4217 code");
        }
        if self.escalation_digest_minutes == 0 {
            return fail("escalationDigestMinutes", "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Policies::default().validate().unwrap();
    }

    #[test]
    fn bad_windows_and_offsets_are_refused_with_the_field() {
        let mut p = Policies::default();
        p.send_window.end = LocalTime { hour: 7, minute: 0 };
        assert_eq!(p.validate().unwrap_err().field, "sendWindow");
        let p = Policies {
            reminder_offsets_hours: vec![24, 48],
            ..Policies::default()
        };
        assert_eq!(p.validate().unwrap_err().field, "reminderOffsetsHours");
        let p = Policies {
            classification_threshold: 1.5,
            ..Policies::default()
        };
        assert_eq!(p.validate().unwrap_err().field, "classificationThreshold");
    }

    #[test]
    fn policies_read_the_design_example_and_refuse_unknown_keys() {
        let p: Policies = serde_json::from_str(
            r#"{"reminderOffsetsHours": [48, 24], "sendWindow": {"start": "08:00", "end": "21:00"},
                "maxMessagesPer24h": 3, "classificationThreshold": 0.7, "correctionWindowHours": 72}"#,
        )
        .unwrap();
        assert_eq!(p.max_messages_per24h, 3);
        assert!(serde_json::from_str::<Policies>(r#"{"maxMesagesPer24h": 3}"#).is_err());
        assert!(
            serde_json::from_str::<Policies>(r#"{"sendWindow": {"start": "8", "end": "21:00"}}"#)
                .is_err()
        );
    }
}
