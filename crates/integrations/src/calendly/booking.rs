//! From a Calendly invitee to a provider-neutral booking.
//!
//! Core upserts appointments from [`Booking`]s whatever the booking provider (Calendly now,
//! Acuity or Square later). Normalising is pure and reports every required field that is
//! missing at once, so core can queue one `booking.fetch_invitee` look-up and normalise again
//! with what the API returned. The phone number stays as typed (`phone_raw`): turning it into
//! E.164 needs the tenant's region, which is the domain's business.

use std::fmt;

use chrono::{DateTime, Utc};

use super::resources::{Invitee, QuestionAndAnswer, ScheduledEvent};

/// A booking as ARO needs it, whoever took it.
///
/// Name, email and phone are patient data: [`fmt::Debug`] leaves them out.
#[derive(Clone, PartialEq, Eq)]
pub struct Booking {
    /// The provider's id for this booking (for Calendly, the invitee URI).
    pub external_id: String,
    /// The provider's id for the booked slot (for Calendly, the scheduled event URI).
    pub event_uri: String,
    pub name: String,
    pub email: Option<String>,
    /// The phone number as the patient typed it, not normalised.
    pub phone_raw: Option<String>,
    /// The patient's IANA zone as the provider reported it (not validated here).
    pub timezone: Option<String>,
    /// Two-letter code, from a booking-form question about language.
    pub language: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// The event type's name, which the profile pack maps to a service and price.
    pub event_type_name: Option<String>,
    /// The event type's URI, a stabler key than its name.
    pub event_type_uri: Option<String>,
    pub cancel_url: Option<String>,
    pub reschedule_url: Option<String>,
    /// When this booking replaces another (the new half of a reschedule): that one's id.
    pub old_external_id: Option<String>,
}

impl fmt::Debug for Booking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Booking")
            .field("external_id", &self.external_id)
            .field("event_uri", &self.event_uri)
            .field("has_phone", &self.phone_raw.is_some())
            .field("timezone", &self.timezone)
            .field("language", &self.language)
            .field("starts_at", &self.starts_at)
            .field("ends_at", &self.ends_at)
            .field("event_type_name", &self.event_type_name)
            .field("old_external_id", &self.old_external_id)
            .finish_non_exhaustive()
    }
}

/// A field a [`Booking`] cannot do without.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BookingField {
    EventUri,
    Name,
    StartsAt,
    EndsAt,
}

impl BookingField {
    /// The field's name as in [`Booking`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EventUri => "event_uri",
            Self::Name => "name",
            Self::StartsAt => "starts_at",
            Self::EndsAt => "ends_at",
        }
    }
}

/// The required fields an invitee (with its event) did not provide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("booking is missing {}", self.missing.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", "))]
pub struct MissingFields {
    /// Every missing field, in [`BookingField`] order; never empty.
    pub missing: Vec<BookingField>,
}

fn text(value: Option<&String>) -> Option<String> {
    value
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Turns an invitee and its scheduled event into a [`Booking`].
///
/// `event` is the event fetched from the API; without it the event embedded in the webhook
/// payload (`scheduled_event`) is used. The name falls back to first and last name; the
/// language comes from [`language_from_answers`].
pub fn normalise(
    invitee: &Invitee,
    event: Option<&ScheduledEvent>,
) -> Result<Booking, MissingFields> {
    let event = event.or(invitee.scheduled_event.as_ref());
    let event_uri =
        text(event.and_then(|e| e.uri.as_ref())).or_else(|| text(invitee.event.as_ref()));
    let name = text(invitee.name.as_ref()).or_else(|| {
        let parts: Vec<String> = [&invitee.first_name, &invitee.last_name]
            .into_iter()
            .filter_map(|part| text(part.as_ref()))
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    let starts_at = event.and_then(|e| e.start_time);
    let ends_at = event.and_then(|e| e.end_time);

    let mut missing = Vec::new();
    if event_uri.is_none() {
        missing.push(BookingField::EventUri);
    }
    if name.is_none() {
        missing.push(BookingField::Name);
    }
    if starts_at.is_none() {
        missing.push(BookingField::StartsAt);
    }
    if ends_at.is_none() {
        missing.push(BookingField::EndsAt);
    }
    let (Some(event_uri), Some(name), Some(starts_at), Some(ends_at)) =
        (event_uri, name, starts_at, ends_at)
    else {
        return Err(MissingFields { missing });
    };

    Ok(Booking {
        external_id: invitee.uri.clone(),
        event_uri,
        name,
        email: text(invitee.email.as_ref()),
        phone_raw: text(invitee.text_reminder_number.as_ref()),
        timezone: text(invitee.timezone.as_ref()),
        language: language_from_answers(&invitee.questions_and_answers),
        starts_at,
        ends_at,
        event_type_name: text(event.and_then(|e| e.name.as_ref())),
        event_type_uri: text(event.and_then(|e| e.event_type.as_ref())),
        cancel_url: text(invitee.cancel_url.as_ref()),
        reschedule_url: text(invitee.reschedule_url.as_ref()),
        old_external_id: text(invitee.old_invitee.as_ref()),
    })
}

/// Words for "language" in the booking-form questions clinics tend to write.
const LANGUAGE_WORDS: [&str; 6] = [
    "language", "idioma", "langue", "sprache", "lingua", "língua",
];

/// Language names (in English and in the language itself) and their two-letter codes.
const LANGUAGE_NAMES: [(&str, &str); 40] = [
    ("english", "en"),
    ("inglés", "en"),
    ("ingles", "en"),
    ("spanish", "es"),
    ("español", "es"),
    ("espanol", "es"),
    ("castellano", "es"),
    ("french", "fr"),
    ("français", "fr"),
    ("francais", "fr"),
    ("german", "de"),
    ("deutsch", "de"),
    ("portuguese", "pt"),
    ("português", "pt"),
    ("portugues", "pt"),
    ("italian", "it"),
    ("italiano", "it"),
    ("chinese", "zh"),
    ("mandarin", "zh"),
    ("cantonese", "zh"),
    ("中文", "zh"),
    ("vietnamese", "vi"),
    ("tiếng việt", "vi"),
    ("korean", "ko"),
    ("한국어", "ko"),
    ("russian", "ru"),
    ("русский", "ru"),
    ("arabic", "ar"),
    ("العربية", "ar"),
    ("japanese", "ja"),
    ("日本語", "ja"),
    ("tagalog", "tl"),
    ("filipino", "tl"),
    ("polish", "pl"),
    ("polski", "pl"),
    ("haitian creole", "ht"),
    ("kreyòl", "ht"),
    ("hindi", "hi"),
    ("हिन्दी", "hi"),
    ("dutch", "nl"),
];

/// The patient's language from the booking form: the answer to the first question that
/// mentions language, read as a two-letter code (`es`, `en-US`) or a language name
/// ("Spanish", "Español (preferred)"). `None` when no such question or no readable answer.
pub fn language_from_answers(answers: &[QuestionAndAnswer]) -> Option<String> {
    let answer = answers
        .iter()
        .find(|qa| {
            let question = qa.question.to_lowercase();
            LANGUAGE_WORDS.iter().any(|word| question.contains(word))
        })?
        .answer
        .lines()
        .next()?
        .trim()
        .to_lowercase();
    let bytes = answer.as_bytes();
    let is_code = match bytes.len() {
        2 => bytes.iter().all(u8::is_ascii_lowercase),
        5 => {
            bytes[..2].iter().all(u8::is_ascii_lowercase)
                && matches!(bytes[2], b'-' | b'_')
                && bytes[3..].iter().all(u8::is_ascii_alphabetic)
        }
        _ => false,
    };
    if is_code {
        return answer.get(..2).map(str::to_owned);
    }
    LANGUAGE_NAMES.iter().find_map(|(name, code)| {
        let rest = answer.strip_prefix(name)?;
        // "Spanish" and "Spanish (preferred)" match; "Spanishy" does not.
        rest.chars()
            .next()
            .is_none_or(|next| !next.is_alphabetic())
            .then(|| (*code).to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qa(question: &str, answer: &str) -> QuestionAndAnswer {
        QuestionAndAnswer {
            question: question.to_owned(),
            answer: answer.to_owned(),
            position: None,
        }
    }

    #[test]
    fn language_is_read_from_a_language_question() {
        let cases = [
            ("Preferred language?", "Spanish", Some("es")),
            ("Idioma preferido", "Español (preferido)", Some("es")),
            ("Language", "EN", Some("en")),
            ("Language", "pt-BR", Some("pt")),
            ("LANGUAGE FOR REMINDERS", "Tiếng Việt", Some("vi")),
            ("Language", "Klingon", None),
            ("Language", "Spanishy", None),
            ("Language", "", None),
            ("Anything else?", "Spanish", None),
        ];
        for (question, answer, expected) in cases {
            assert_eq!(
                language_from_answers(&[qa("Reason for visit", "checkup"), qa(question, answer)])
                    .as_deref(),
                expected,
                "{question} / {answer}"
            );
        }
    }

    #[test]
    fn the_first_line_of_a_checkbox_answer_counts() {
        assert_eq!(
            language_from_answers(&[qa("Languages you speak", "French\nEnglish")]).as_deref(),
            Some("fr")
        );
    }
}
