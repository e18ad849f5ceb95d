//! Every text ARO sends starts here, and every guardrail on sending lives here: only rendered
//! templates (no free text reaches a patient), only to a number that can receive texts, only
//! with consent (except the confirmation of an opt-out), never beyond the patient's message cap
//! (direct answers to the patient's own texts excepted). A send becomes a `messages` row and a
//! `messaging.*` execution in the same transaction; the executor performs it.

use crate::ctx::Ctx;
use crate::error::EngineResult;
use aro_domain::EventType;
use aro_domain::appointment::Appointment;
use aro_domain::customer::Customer;
use aro_domain::message::{Channel, Direction, MessageStatus};
use aro_domain::template::{Placeholder, TemplateValues};
use aro_domain::values::Phone;
use aro_store::{AggregateRef, EventPii, NewMessage};
use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::json;

/// Attempts before a send is dead-lettered.
pub const MESSAGE_MAX_ATTEMPTS: i64 = 6;

/// Why a send did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoTextCapableNumber,
    NoConsent,
    MessageCap,
    TemplateMissing,
    TemplateTooLong,
    /// The template needs a value the visit does not have (e.g. no cancel link).
    MissingValue,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoTextCapableNumber => "no_text_capable_number",
            Self::NoConsent => "no_consent",
            Self::MessageCap => "message_cap",
            Self::TemplateMissing => "template_missing",
            Self::TemplateTooLong => "template_too_long",
            Self::MissingValue => "missing_value",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Queued {
        message_id: String,
        execution_id: String,
    },
    Refused(Refusal),
}

impl Sent {
    pub fn message_id(&self) -> Option<&str> {
        match self {
            Self::Queued { message_id, .. } => Some(message_id),
            Self::Refused(_) => None,
        }
    }
}

/// One templated text to a patient.
#[derive(Debug, Clone)]
pub struct PatientText<'a> {
    pub customer: &'a Customer,
    pub appointment: Option<&'a Appointment>,
    /// Template name in the tenant's pack (`reminder_48h`, `confirm_ack`, …).
    pub template: &'a str,
    /// Why it is sent; recorded on the message (reminder_48h, reply_ack, review_request, …).
    pub purpose: &'a str,
    pub link: Option<String>,
    /// An answer to the patient's own text: exempt from the message cap.
    pub direct_answer: bool,
    /// Sent even without consent, and outside the cap: only the confirmation that an opt-out
    /// took effect, and the answer to HELP (carriers require HELP to be answered, opted out
    /// or not; a number the provider itself blocked refuses the send there).
    pub without_consent: bool,
    pub not_after: Option<DateTime<Utc>>,
}

/// Formats a visit's date and time for a text, in the patient's language and zone.
pub fn format_date_time(at: DateTime<Utc>, zone: Tz, language: &str) -> (String, String) {
    let local = at.with_timezone(&zone);
    let weekday = local.weekday().num_days_from_monday() as usize;
    let month = local.month0() as usize;
    match language {
        "es" => {
            const DAYS: [&str; 7] = ["lun", "mar", "mie", "jue", "vie", "sab", "dom"];
            const MONTHS: [&str; 12] = [
                "ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic",
            ];
            (
                format!("{} {} {}", DAYS[weekday], local.day(), MONTHS[month]),
                format!("{:02}:{:02}", local.hour(), local.minute()),
            )
        }
        _ => {
            const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let (pm, hour12) = local.hour12();
            (
                format!("{}, {} {}", DAYS[weekday], MONTHS[month], local.day()),
                format!(
                    "{}:{:02} {}",
                    hour12,
                    local.minute(),
                    if pm { "PM" } else { "AM" }
                ),
            )
        }
    }
}

/// The zone a patient's times are shown and windowed in: theirs, else the visit's, else the
/// clinic's.
pub fn patient_zone(
    ctx: &Ctx<'_, '_>,
    customer: &Customer,
    appointment: Option<&Appointment>,
) -> Tz {
    appointment
        .and_then(|a| a.zone)
        .or(customer.zone)
        .unwrap_or(ctx.tenant.zone)
        .tz()
}

pub fn patient_language(
    ctx: &Ctx<'_, '_>,
    customer: &Customer,
    appointment: Option<&Appointment>,
) -> String {
    appointment
        .and_then(|a| a.language.clone())
        .or_else(|| customer.language.clone())
        .unwrap_or_else(|| ctx.tenant.default_language.clone())
        .to_string()
}

/// Whether the number may be texted for appointment messages (consent per tenant and number).
pub async fn has_consent(ctx: &mut Ctx<'_, '_>, phone: &Phone) -> EngineResult<bool> {
    let tenant = ctx.tenant_id().to_owned();
    let index = ctx.tx.phone_index(&tenant, phone);
    let consent = ctx
        .tx
        .raw()
        .get_consent(&tenant, &index, Channel::Sms.as_str())
        .await?;
    Ok(consent.is_none_or(|c| c.status != "revoked"))
}

/// Outbound messages to this number in the rolling 24 h that count against the cap.
async fn counted_in_last_day(ctx: &mut Ctx<'_, '_>, phone: &Phone) -> EngineResult<u32> {
    let tenant = ctx.tenant_id().to_owned();
    let since = ctx.now - Duration::hours(24);
    let messages = ctx.tx.messages_for_phone(&tenant, phone, since).await?;
    Ok(messages
        .iter()
        .filter(|m| m.direction == Direction::Outbound)
        .filter(|m| !m.purpose.ends_with("_answer") && m.purpose != "opt_out_confirmation")
        .filter(|m| {
            !matches!(
                m.status,
                MessageStatus::Cancelled | MessageStatus::Failed | MessageStatus::Undelivered
            )
        })
        .count() as u32)
}

pub async fn send_to_patient(ctx: &mut Ctx<'_, '_>, text: PatientText<'_>) -> EngineResult<Sent> {
    let Some(phone) = text.customer.phone.clone().filter(Phone::is_text_capable) else {
        return Ok(Sent::Refused(Refusal::NoTextCapableNumber));
    };
    if !text.without_consent && !has_consent(ctx, &phone).await? {
        return Ok(Sent::Refused(Refusal::NoConsent));
    }
    if !text.direct_answer && !text.without_consent {
        // One sender at a time per number: two replicas (or timers) must not both count the
        // same last slot under the cap. Keyed by the blind index, never the number itself.
        let tenant = ctx.tenant_id().to_owned();
        let index = ctx.tx.phone_index(&tenant, &phone);
        ctx.tx
            .lock(&format!("message-cap:{tenant}:{index}"))
            .await?;
        let cap = ctx.tenant.config.policies.max_messages_per24h;
        if counted_in_last_day(ctx, &phone).await? >= cap {
            tracing::info!(tenant = %ctx.tenant.id, customer = %text.customer.id, purpose = text.purpose, "send refused: message cap reached");
            return Ok(Sent::Refused(Refusal::MessageCap));
        }
    }
    let zone = patient_zone(ctx, text.customer, text.appointment);
    let language = patient_language(ctx, text.customer, text.appointment);
    let mut values = TemplateValues::new()
        .with(
            Placeholder::FirstName,
            text.customer.first_name().unwrap_or(""),
        )
        .with(Placeholder::ClinicName, ctx.tenant.name.clone())
        .with(
            Placeholder::ClinicPhone,
            ctx.tenant
                .clinic_phone
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
        );
    if let Some(a) = text.appointment {
        let (date, time) = format_date_time(a.starts_at, zone, &language);
        values.set(Placeholder::Date, date);
        values.set(Placeholder::Time, time);
    }
    if let Some(link) = &text.link {
        values.set(Placeholder::Link, link.clone());
    }
    let default_language = ctx.tenant.default_language.to_string();
    let rendered = match ctx.templates()?.render(
        text.template,
        &language,
        &default_language,
        &values,
    ) {
        Ok(r) => r,
        Err(aro_domain::TemplateError::Missing { .. }) => {
            return Ok(Sent::Refused(Refusal::TemplateMissing));
        }
        Err(aro_domain::TemplateError::MissingValue { .. }) => {
            return Ok(Sent::Refused(Refusal::MissingValue));
        }
        Err(e) => {
            tracing::warn!(tenant = %ctx.tenant.id, template = text.template, error = %e, "send refused: template does not render");
            return Ok(Sent::Refused(Refusal::TemplateTooLong));
        }
    };
    let (message_id, execution_id) = enqueue_text(
        ctx,
        OutboundText {
            to: &phone,
            customer_id: Some(text.customer.id.as_str()),
            appointment_id: text.appointment.map(|a| a.id.as_str()),
            body: &rendered.body,
            purpose: text.purpose,
            reminder: text.purpose.starts_with("reminder_"),
            not_after: text.not_after,
        },
    )
    .await?;
    Ok(Sent::Queued {
        message_id,
        execution_id,
    })
}

/// A rendered text to any number (a patient, or the clinic for staff digests).
pub struct OutboundText<'a> {
    pub to: &'a Phone,
    /// The patient texted (`None` for a staff text). Their data key seals the number and body
    /// (in the message, its execution and its event); the clinic's seals a staff text's.
    pub customer_id: Option<&'a str>,
    pub appointment_id: Option<&'a str>,
    pub body: &'a str,
    pub purpose: &'a str,
    pub reminder: bool,
    pub not_after: Option<DateTime<Utc>>,
}

/// Writes the message (pending) and its execution; returns (message id, execution id).
pub async fn enqueue_text(
    ctx: &mut Ctx<'_, '_>,
    text: OutboundText<'_>,
) -> EngineResult<(String, String)> {
    let tenant = ctx.tenant_id().to_owned();
    let execution_id = aro_store::ids::new_id(aro_domain::ids::prefix::EXECUTION);
    // One subject for the message, its execution and its event, so erasing the patient
    // shreds all three; the store derives the message's from `customer_id` the same way.
    let subject_id = text.customer_id.unwrap_or(aro_store::TENANT_SUBJECT);
    let message_id = ctx
        .tx
        .insert_message(&NewMessage {
            tenant_id: &tenant,
            customer_id: text.customer_id,
            appointment_id: text.appointment_id,
            direction: Direction::Outbound,
            channel: Channel::Sms,
            purpose: text.purpose,
            counterpart: Some(text.to),
            body: Some(text.body),
            status: MessageStatus::Pending,
            provider_ref: None,
            execution_id: Some(&execution_id),
            at: ctx.now,
        })
        .await?
        .id;
    let status_callback = ctx.tenant_status_callback(&message_id);
    let payload = json!({
        "to": text.to.as_str(),
        "channel": "sms",
        "body": text.body,
        "idempotencyKey": message_id,
        "messageId": message_id,
        "statusCallback": status_callback,
    });
    let command_type = if text.reminder {
        "messaging.send_reminder"
    } else {
        "messaging.send_message"
    };
    crate::executions::enqueue(
        ctx,
        crate::executions::NewExecution {
            id: execution_id.clone(),
            command_type,
            subject_id: Some(subject_id),
            payload,
            not_after: text.not_after,
            aggregate_id: text.appointment_id.or(text.customer_id),
            max_attempts: MESSAGE_MAX_ATTEMPTS,
        },
    )
    .await?;
    let aggregate = match text.appointment_id {
        Some(a) => AggregateRef::new("appointment", a),
        None => AggregateRef::new("message", &message_id),
    };
    ctx.emit(
        EventType::MessageQueued,
        aggregate,
        json!({
            "messageId": message_id,
            "customerId": text.customer_id,
            "appointmentId": text.appointment_id,
            "purpose": text.purpose,
            "channel": "sms",
            "executionId": execution_id,
        }),
        Some(EventPii {
            subject_id: subject_id.to_owned(),
            fields: json!({"to": text.to.as_str(), "body": text.body}),
        }),
    );
    Ok((message_id, execution_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_naturally_in_each_language() {
        let at = DateTime::parse_from_rfc3339("2030-03-15T18:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            format_date_time(at, ny, "en"),
            ("Fri, Mar 15".into(), "2:05 PM".into())
        );
        assert_eq!(
            format_date_time(at, ny, "es"),
            ("vie 15 mar".into(), "14:05".into())
        );
        let la: Tz = "America/Los_Angeles".parse().unwrap();
        assert_eq!(format_date_time(at, la, "en").1, "11:05 AM");
    }
}
