//! Reading Twilio's webhook forms: inbound messages and status callbacks.
//!
//! Pure functions over the form parameters (already signature-checked by core with
//! `aro_security::signatures::twilio`). Twilio posts `application/x-www-form-urlencoded`
//! parameters in PascalCase; older accounts also send `SmsSid`/`SmsStatus`, which are read when
//! the newer names are absent. Where a parameter appears twice the first value counts.

use std::fmt;

use super::message::MessageStatus;
use crate::payload::PayloadError;

/// Media that can come with an inbound message: at most this many are read.
const MAX_MEDIA: u32 = 10;

fn first<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn non_empty<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    first(form, name).filter(|value| !value.trim().is_empty())
}

fn required<'a>(
    form: &'a [(String, String)],
    names: &[&'static str],
) -> Result<&'a str, PayloadError> {
    names
        .iter()
        .find_map(|name| non_empty(form, name))
        .ok_or(PayloadError::MissingField(names[0]))
}

fn owned(value: Option<&str>) -> Option<String> {
    value.map(str::to_owned)
}

/// One attachment of an inbound MMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// Where Twilio serves it (authenticated with the account's credentials).
    pub url: String,
    pub content_type: Option<String>,
}

/// A text a patient sent to one of the tenant's numbers.
///
/// `from`, `to` and `body` are patient data: [`fmt::Debug`] leaves them out.
#[derive(Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// `MessageSid`: also what replays are caught by.
    pub message_sid: String,
    pub account_sid: Option<String>,
    pub messaging_service_sid: Option<String>,
    /// The patient's number.
    pub from: String,
    /// The tenant's number.
    pub to: String,
    /// The text; empty for a media-only message.
    pub body: String,
    pub num_media: u32,
    pub media: Vec<Media>,
    pub num_segments: Option<u32>,
    /// `STOP`, `START` or `HELP` when Twilio's Advanced Opt-Out recognised a keyword.
    pub opt_out_type: Option<String>,
}

impl fmt::Debug for InboundMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundMessage")
            .field("message_sid", &self.message_sid)
            .field("num_media", &self.num_media)
            .field("opt_out_type", &self.opt_out_type)
            .finish_non_exhaustive()
    }
}

impl InboundMessage {
    /// Reads an inbound-message webhook's parameters. `MessageSid`, `From` and `To` are
    /// required; everything else is optional.
    pub fn from_form(form: &[(String, String)]) -> Result<Self, PayloadError> {
        let message_sid = required(form, &["MessageSid", "SmsMessageSid", "SmsSid"])?;
        let from = required(form, &["From"])?;
        let to = required(form, &["To"])?;
        let num_media = match non_empty(form, "NumMedia") {
            Some(value) => value
                .trim()
                .parse::<u32>()
                .map_err(|_| PayloadError::InvalidField("NumMedia"))?,
            None => 0,
        };
        let media = (0..num_media.min(MAX_MEDIA))
            .filter_map(|index| {
                let url = non_empty(form, &format!("MediaUrl{index}"))?;
                Some(Media {
                    url: url.to_owned(),
                    content_type: owned(non_empty(form, &format!("MediaContentType{index}"))),
                })
            })
            .collect();
        Ok(Self {
            message_sid: message_sid.to_owned(),
            account_sid: owned(non_empty(form, "AccountSid")),
            messaging_service_sid: owned(non_empty(form, "MessagingServiceSid")),
            from: from.to_owned(),
            to: to.to_owned(),
            body: first(form, "Body").unwrap_or_default().to_owned(),
            num_media,
            media,
            num_segments: non_empty(form, "NumSegments").and_then(|n| n.trim().parse().ok()),
            opt_out_type: owned(non_empty(form, "OptOutType")),
        })
    }
}

/// A delivery update for a message we sent.
///
/// `to` and `from` are patient data: [`fmt::Debug`] leaves them out.
#[derive(Clone, PartialEq, Eq)]
pub struct StatusCallback {
    pub message_sid: String,
    pub message_status: MessageStatus,
    /// Twilio's error code for `failed`/`undelivered` (30003 unreachable, 21610 opted out…).
    pub error_code: Option<i64>,
    pub account_sid: Option<String>,
    pub to: Option<String>,
    pub from: Option<String>,
}

impl fmt::Debug for StatusCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusCallback")
            .field("message_sid", &self.message_sid)
            .field("message_status", &self.message_status)
            .field("error_code", &self.error_code)
            .finish_non_exhaustive()
    }
}

impl StatusCallback {
    /// Reads a status callback's parameters. `MessageSid` and `MessageStatus` are required;
    /// an unknown status is kept as [`MessageStatus::Other`].
    pub fn from_form(form: &[(String, String)]) -> Result<Self, PayloadError> {
        let message_sid = required(form, &["MessageSid", "SmsSid"])?;
        let status = required(form, &["MessageStatus", "SmsStatus"])?;
        let error_code = match non_empty(form, "ErrorCode") {
            Some(code) => Some(
                code.trim()
                    .parse::<i64>()
                    .map_err(|_| PayloadError::InvalidField("ErrorCode"))?,
            ),
            None => None,
        };
        Ok(Self {
            message_sid: message_sid.to_owned(),
            message_status: MessageStatus::parse(status.trim()),
            error_code,
            account_sid: owned(non_empty(form, "AccountSid")),
            to: owned(non_empty(form, "To")),
            from: owned(non_empty(form, "From")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn an_inbound_message_is_read_with_its_media() -> Result<(), PayloadError> {
        let message = InboundMessage::from_form(&form(&[
            ("ToCountry", "US"),
            ("SmsMessageSid", "SM11"),
            ("NumMedia", "2"),
            ("MessageSid", "SM11"),
            ("AccountSid", "AC1"),
            ("From", "+14155552671"),
            ("To", "+15005550006"),
            ("Body", "C"),
            ("NumSegments", "1"),
            ("MediaUrl0", "https://api.twilio.com/m/0"),
            ("MediaContentType0", "image/jpeg"),
            ("MediaUrl1", "https://api.twilio.com/m/1"),
            ("OptOutType", "STOP"),
        ]))?;
        assert_eq!(message.message_sid, "SM11");
        assert_eq!(message.from, "+14155552671");
        assert_eq!(message.to, "+15005550006");
        assert_eq!(message.body, "C");
        assert_eq!(message.num_media, 2);
        assert_eq!(message.media.len(), 2);
        assert_eq!(message.media[0].content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(message.media[1].content_type, None);
        assert_eq!(message.num_segments, Some(1));
        assert_eq!(message.opt_out_type.as_deref(), Some("STOP"));
        Ok(())
    }

    #[test]
    fn a_media_only_message_has_an_empty_body() -> Result<(), PayloadError> {
        let message = InboundMessage::from_form(&form(&[
            ("MessageSid", "MM1"),
            ("From", "+14155552671"),
            ("To", "+15005550006"),
        ]))?;
        assert_eq!(message.body, "");
        assert_eq!(message.num_media, 0);
        Ok(())
    }

    #[test]
    fn inbound_messages_need_sid_sender_and_recipient() {
        let missing_from = form(&[("MessageSid", "SM1"), ("To", "+15005550006")]);
        assert_eq!(
            InboundMessage::from_form(&missing_from),
            Err(PayloadError::MissingField("From"))
        );
        let missing_sid = form(&[("From", "+1"), ("To", "+2")]);
        assert_eq!(
            InboundMessage::from_form(&missing_sid),
            Err(PayloadError::MissingField("MessageSid"))
        );
        let bad_media = form(&[
            ("MessageSid", "SM1"),
            ("From", "+1"),
            ("To", "+2"),
            ("NumMedia", "x"),
        ]);
        assert_eq!(
            InboundMessage::from_form(&bad_media),
            Err(PayloadError::InvalidField("NumMedia"))
        );
    }

    #[test]
    fn status_callbacks_carry_status_and_error_code() -> Result<(), PayloadError> {
        let update = StatusCallback::from_form(&form(&[
            ("MessageSid", "SM1"),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30003"),
        ]))?;
        assert_eq!(update.message_status, MessageStatus::Undelivered);
        assert_eq!(update.error_code, Some(30003));
        let delivered = StatusCallback::from_form(&form(&[
            ("SmsSid", "SM2"),
            ("SmsStatus", "delivered"),
            ("ErrorCode", ""),
        ]))?;
        assert_eq!(delivered.message_sid, "SM2");
        assert_eq!(delivered.message_status, MessageStatus::Delivered);
        assert_eq!(delivered.error_code, None);
        Ok(())
    }

    #[test]
    fn a_status_callback_without_status_is_refused() {
        assert_eq!(
            StatusCallback::from_form(&form(&[("MessageSid", "SM1")])),
            Err(PayloadError::MissingField("MessageStatus"))
        );
    }

    #[test]
    fn debug_leaves_patient_data_out() -> Result<(), PayloadError> {
        let message = InboundMessage::from_form(&form(&[
            ("MessageSid", "SM1"),
            ("From", "+14155552671"),
            ("To", "+15005550006"),
            ("Body", "my secret reply"),
        ]))?;
        let shown = format!("{message:?}");
        assert!(!shown.contains("4155552671"));
        assert!(!shown.contains("secret"));
        Ok(())
    }
}
