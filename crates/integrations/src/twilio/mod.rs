//! Twilio Programmable Messaging: sending an SMS, finding one we may already have sent,
//! checking the account's credentials ([`TwilioClient::verify_credentials`]), and reading
//! Twilio's webhooks ([`webhook`]).
//!
//! Twilio has no idempotency keys for `POST Messages.json`, so a send whose answer was lost
//! (connection dropped or timed out after the request went out) cannot simply be repeated.
//! [`TwilioClient::send_sms`] remembers, across the attempts of one call, that an earlier
//! attempt may have reached Twilio; the next attempt first lists the recipient's messages and
//! returns the one it finds instead of sending again. The same look-up serves the executor
//! across restarts through [`SendSms::earlier_attempt_since`] and [`TwilioClient::find_sent`].
//!
//! Signature verification of Twilio's webhooks lives in `aro_security::signatures::twilio`.

mod errors;
mod message;
pub mod webhook;

use std::fmt;
use std::sync::{Mutex, PoisonError};

use aro_config::{Secret, TwilioConfig};
use aro_resilience::Resilient;
use chrono::{DateTime, TimeDelta, Utc};
use url::Url;

pub use errors::describe_error_code;
pub use message::{MessageStatus, TwilioMessage};

use crate::error::{ErrorKind, Provider, ProviderError};
use crate::http::{Effect, endpoint, exchange};
use errors::error_from_answer;
use message::MessagePage;

/// Twilio's API version in every path.
const API_VERSION: &str = "2010-04-01";

/// How far before our own clock's "now" a look-up searches: Twilio stamps `date_created` with
/// its clock, to the second.
const LOOKUP_CLOCK_SKEW: TimeDelta = TimeDelta::seconds(120);

/// Page size for look-ups (Twilio allows up to 1000).
const LOOKUP_PAGE_SIZE: &str = "100";

/// Pages searched before giving up: a look-up that cannot finish must not conclude "not sent".
const MAX_LOOKUP_PAGES: usize = 20;

/// How the look-up writes `DateSent>`: a full UTC timestamp, as the API description declares
/// the parameter (`format: date-time`). Twilio also takes a bare `YYYY-MM-DD`, but a whole day
/// would widen the search to everything sent to the recipient since midnight.
const DATE_SENT_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// Twilio's limit on a message body, in characters.
const MAX_BODY_CHARS: usize = 1_600;

/// Who a message is sent from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// A phone number (E.164), short code or alphanumeric sender id: `From`.
    From(String),
    /// A Messaging Service, which picks the number: `MessagingServiceSid`.
    MessagingService(String),
}

/// One SMS to send.
///
/// `to` and `body` are patient data: [`fmt::Debug`] leaves them out.
#[derive(Clone, PartialEq, Eq)]
pub struct SendSms {
    /// The recipient, E.164.
    pub to: String,
    /// The rendered text.
    pub body: String,
    /// Where Twilio posts delivery updates (the tenant's `/v1/webhooks/twilio/{tenantId}/status`).
    pub status_callback: Option<Url>,
    /// The execution's idempotency key; Twilio has no such header, so it names the call in
    /// logs while look-ups do the deduplication.
    pub idempotency_key: String,
    /// Set when an earlier attempt of this execution (before a crash or a lost answer) may have
    /// reached Twilio since this instant: the send looks for that message first and returns it
    /// instead of sending again.
    pub earlier_attempt_since: Option<DateTime<Utc>>,
}

impl SendSms {
    /// A send with no status callback and no earlier attempt.
    pub fn new(
        to: impl Into<String>,
        body: impl Into<String>,
        idempotency_key: impl Into<String>,
    ) -> Self {
        Self {
            to: to.into(),
            body: body.into(),
            status_callback: None,
            idempotency_key: idempotency_key.into(),
            earlier_attempt_since: None,
        }
    }

    /// Asks Twilio to post delivery updates to `url`.
    #[must_use]
    pub fn with_status_callback(mut self, url: Url) -> Self {
        self.status_callback = Some(url);
        self
    }

    /// Declares that an earlier attempt may have reached Twilio since `since`.
    #[must_use]
    pub fn after_earlier_attempt(mut self, since: DateTime<Utc>) -> Self {
        self.earlier_attempt_since = Some(since);
        self
    }
}

impl fmt::Debug for SendSms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendSms")
            .field("idempotency_key", &self.idempotency_key)
            .field("earlier_attempt_since", &self.earlier_attempt_since)
            .finish_non_exhaustive()
    }
}

/// A Twilio account's messaging API.
#[derive(Clone)]
pub struct TwilioClient {
    base_url: Url,
    account_sid: String,
    auth_token: Secret,
    sender: Option<Sender>,
    http: reqwest::Client,
    resilient: Resilient,
    destination: String,
}

impl fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioClient")
            .field("base_url", &self.base_url.as_str())
            .field("account_sid", &self.account_sid)
            .field("destination", &self.destination)
            .finish_non_exhaustive()
    }
}

impl TwilioClient {
    /// A client for the configured account. The Messaging Service wins over `from_number`
    /// when both are set (it is how Twilio recommends sending at volume). Calls go through
    /// `resilient` under the destination `twilio:{AccountSid}`.
    pub fn new(config: &TwilioConfig, http: reqwest::Client, resilient: Resilient) -> Self {
        let sender = config
            .messaging_service_sid
            .as_ref()
            .filter(|sid| !sid.is_empty())
            .map(|sid| Sender::MessagingService(sid.clone()))
            .or_else(|| {
                config
                    .from_number
                    .as_ref()
                    .filter(|number| !number.is_empty())
                    .map(|number| Sender::From(number.clone()))
            });
        Self {
            base_url: config.base_url.clone(),
            account_sid: config.account_sid.clone(),
            auth_token: config.auth_token.clone(),
            sender,
            http,
            resilient,
            destination: format!("twilio:{}", config.account_sid),
        }
    }

    /// Uses another resilience destination (for example one per tenant).
    #[must_use]
    pub fn with_destination(mut self, destination: impl Into<String>) -> Self {
        self.destination = destination.into();
        self
    }

    /// The resilience destination calls go through.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// Who messages are sent from, when configured.
    pub fn sender(&self) -> Option<&Sender> {
        self.sender.as_ref()
    }

    /// Sends one SMS.
    ///
    /// Each attempt is one `POST Messages.json`, preceded by a look-up whenever an earlier
    /// attempt (of this call, or the one named by [`SendSms::earlier_attempt_since`]) may have
    /// reached Twilio; a message found that way is returned instead of sending again. On
    /// failure, [`ProviderError::maybe_delivered`] says whether some attempt may still have
    /// reached Twilio unseen.
    #[tracing::instrument(skip_all, fields(provider = "twilio", idempotency_key = %request.idempotency_key))]
    pub async fn send_sms(&self, request: &SendSms) -> Result<TwilioMessage, ProviderError> {
        let sender = self.sender.as_ref().ok_or_else(|| {
            invalid_request("no sender configured (from_number or messaging_service_sid)")
        })?;
        validate(request)?;
        let unresolved = UnresolvedSend::new(request.earlier_attempt_since);
        let result = self
            .resilient
            .call(&self.destination, |_attempt| {
                self.send_attempt(request, sender, &unresolved)
            })
            .await;
        result.map_err(|error| {
            ProviderError::from_call(Provider::Twilio, error)
                .with_maybe_delivered(unresolved.get().is_some())
        })
    }

    async fn send_attempt(
        &self,
        request: &SendSms,
        sender: &Sender,
        unresolved: &UnresolvedSend,
    ) -> Result<TwilioMessage, ProviderError> {
        if let Some(since) = unresolved.get() {
            match self
                .find_sent_once(&request.to, &request.body, since)
                .await?
            {
                Some(found) => {
                    tracing::info!(sid = %found.sid, "an earlier attempt reached Twilio; not sending again");
                    return Ok(found);
                }
                None => unresolved.set(None),
            }
        }
        unresolved.set(Some(Utc::now() - LOOKUP_CLOCK_SKEW));
        let result = self.post_message(request, sender).await;
        if result.as_ref().is_err_and(|error| !error.maybe_delivered()) {
            unresolved.set(None);
        }
        result
    }

    async fn post_message(
        &self,
        request: &SendSms,
        sender: &Sender,
    ) -> Result<TwilioMessage, ProviderError> {
        let mut form: Vec<(&str, &str)> = vec![("To", &request.to), ("Body", &request.body)];
        match sender {
            Sender::From(number) => form.push(("From", number)),
            Sender::MessagingService(sid) => form.push(("MessagingServiceSid", sid)),
        }
        if let Some(callback) = &request.status_callback {
            form.push(("StatusCallback", callback.as_str()));
        }
        let http = self
            .http
            .post(self.messages_url()?)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .form(&form);
        let answer = exchange(Provider::Twilio, http, Effect::Write).await?;
        if !answer.is_success() {
            return Err(error_from_answer(&answer, Effect::Write));
        }
        serde_json::from_slice::<TwilioMessage>(&answer.body).map_err(|_| {
            // Twilio took the message but the answer is unreadable: it was probably sent.
            invalid_response("unreadable message resource")
                .with_http_status(answer.status)
                .with_maybe_delivered(true)
        })
    }

    /// Looks for a message to `to` with exactly `body`, created at or after `sent_after` (on
    /// Twilio's clock: allow for skew), through
    /// `GET Messages.json?To=…&DateSent>=YYYY-MM-DDThh:mm:ssZ&PageSize=100`,
    /// following `next_page_uri`, then through the recipient's newest messages without the
    /// date filter (a message not yet handed to the carrier has no `date_sent`). `Ok(None)`
    /// means everything was searched.
    #[tracing::instrument(skip_all, fields(provider = "twilio"))]
    pub async fn find_sent(
        &self,
        to: &str,
        body: &str,
        sent_after: DateTime<Utc>,
    ) -> Result<Option<TwilioMessage>, ProviderError> {
        self.resilient
            .call(&self.destination, |_attempt| {
                self.find_sent_once(to, body, sent_after)
            })
            .await
            .map_err(|error| ProviderError::from_call(Provider::Twilio, error))
    }

    async fn find_sent_once(
        &self,
        to: &str,
        body: &str,
        sent_after: DateTime<Utc>,
    ) -> Result<Option<TwilioMessage>, ProviderError> {
        let mut url = self.messages_url()?;
        url.query_pairs_mut()
            .append_pair("To", to)
            .append_pair(
                "DateSent>",
                &sent_after.format(DATE_SENT_FORMAT).to_string(),
            )
            .append_pair("PageSize", LOOKUP_PAGE_SIZE);
        for _ in 0..MAX_LOOKUP_PAGES {
            let page = self.message_page(url).await?;
            if let Some(found) = page
                .messages
                .into_iter()
                .find(|message| is_the_message(message, to, body, sent_after))
            {
                return Ok(Some(found));
            }
            match page.next_page_uri.as_deref() {
                Some(next) if !next.is_empty() => url = self.next_page(next)?,
                _ => return self.find_unsent(to, body, sent_after).await,
            }
        }
        Err(invalid_response("message list too long to search"))
    }

    /// Twilio's `DateSent` filter reads `date_sent`, which stays empty until the message is
    /// handed to the carrier, so a message accepted moments ago is not in the filtered list.
    /// It is among the recipient's newest, though: the first unfiltered page covers it.
    async fn find_unsent(
        &self,
        to: &str,
        body: &str,
        sent_after: DateTime<Utc>,
    ) -> Result<Option<TwilioMessage>, ProviderError> {
        let mut url = self.messages_url()?;
        url.query_pairs_mut()
            .append_pair("To", to)
            .append_pair("PageSize", LOOKUP_PAGE_SIZE);
        let page = self.message_page(url).await?;
        Ok(page
            .messages
            .into_iter()
            .find(|message| is_the_message(message, to, body, sent_after)))
    }

    async fn message_page(&self, url: Url) -> Result<MessagePage, ProviderError> {
        let http = self
            .http
            .get(url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()));
        let answer = exchange(Provider::Twilio, http, Effect::Read).await?;
        if !answer.is_success() {
            return Err(error_from_answer(&answer, Effect::Read));
        }
        serde_json::from_slice(&answer.body)
            .map_err(|_| invalid_response("unreadable message list"))
    }

    /// Fetches one message by its SID.
    #[tracing::instrument(skip_all, fields(provider = "twilio", sid = %sid))]
    pub async fn fetch(&self, sid: &str) -> Result<TwilioMessage, ProviderError> {
        if sid.is_empty() || sid.len() > 64 || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(invalid_request("not a message SID"));
        }
        let url = endpoint(
            Provider::Twilio,
            &self.base_url,
            &[
                API_VERSION,
                "Accounts",
                &self.account_sid,
                "Messages",
                &format!("{sid}.json"),
            ],
        )?;
        self.resilient
            .call(&self.destination, |_attempt| async {
                let http = self
                    .http
                    .get(url.clone())
                    .basic_auth(&self.account_sid, Some(self.auth_token.expose()));
                let answer = exchange(Provider::Twilio, http, Effect::Read).await?;
                if !answer.is_success() {
                    return Err(error_from_answer(&answer, Effect::Read));
                }
                serde_json::from_slice::<TwilioMessage>(&answer.body)
                    .map_err(|_| invalid_response("unreadable message resource"))
            })
            .await
            .map_err(|error| ProviderError::from_call(Provider::Twilio, error))
    }

    /// Checks the account's credentials with the cheapest authenticated read there is, `GET
    /// /2010-04-01/Accounts/{AccountSid}.json` (Twilio's FetchAccount). `Ok` means Twilio
    /// accepted them; a [`ErrorKind::CredentialRejected`] error means it refused them (401,
    /// Twilio code 20003); any other error says nothing about them. The answer (which carries
    /// the account's auth token) is not read beyond its status.
    #[tracing::instrument(skip_all, fields(provider = "twilio"))]
    pub async fn verify_credentials(&self) -> Result<(), ProviderError> {
        let url = endpoint(
            Provider::Twilio,
            &self.base_url,
            &[
                API_VERSION,
                "Accounts",
                &format!("{}.json", self.account_sid),
            ],
        )?;
        self.resilient
            .call(&self.destination, |_attempt| async {
                let http = self
                    .http
                    .get(url.clone())
                    .basic_auth(&self.account_sid, Some(self.auth_token.expose()));
                let answer = exchange(Provider::Twilio, http, Effect::Read).await?;
                if answer.is_success() {
                    Ok(())
                } else {
                    Err(error_from_answer(&answer, Effect::Read))
                }
            })
            .await
            .map_err(|error| ProviderError::from_call(Provider::Twilio, error))
    }

    fn messages_url(&self) -> Result<Url, ProviderError> {
        endpoint(
            Provider::Twilio,
            &self.base_url,
            &[API_VERSION, "Accounts", &self.account_sid, "Messages.json"],
        )
    }

    /// The next page: only the query of Twilio's `next_page_uri` is used, on our own messages
    /// URL, so an answer cannot send the look-up (and our credentials) elsewhere.
    fn next_page(&self, next_page_uri: &str) -> Result<Url, ProviderError> {
        let base = Url::parse("https://api.twilio.com/")
            .map_err(|_| invalid_response("unreadable next_page_uri"))?;
        let next = base
            .join(next_page_uri)
            .map_err(|_| invalid_response("unreadable next_page_uri"))?;
        if !next.path().ends_with("/Messages.json") {
            return Err(invalid_response("next_page_uri is not a message list"));
        }
        let mut url = self.messages_url()?;
        url.set_query(next.query());
        Ok(url)
    }
}

/// Whether `message` is the one a send of (`to`, `body`) at or after `sent_after` produced.
fn is_the_message(
    message: &TwilioMessage,
    to: &str,
    body: &str,
    sent_after: DateTime<Utc>,
) -> bool {
    message.to == to
        && (message.body == body || message.body.trim() == body.trim())
        && message
            .date_created
            .is_some_and(|created| created >= sent_after)
}

fn validate(request: &SendSms) -> Result<(), ProviderError> {
    if request.to.trim().is_empty() || request.to.len() > 64 {
        return Err(invalid_request("recipient missing or too long"));
    }
    if request.body.trim().is_empty() {
        return Err(invalid_request("message body is empty"));
    }
    if request.body.chars().count() > MAX_BODY_CHARS {
        return Err(invalid_request("message body longer than 1600 characters"));
    }
    Ok(())
}

fn invalid_request(message: &'static str) -> ProviderError {
    ProviderError::new(Provider::Twilio, ErrorKind::InvalidRequest, message)
}

fn invalid_response(message: &'static str) -> ProviderError {
    ProviderError::new(Provider::Twilio, ErrorKind::InvalidResponse, message)
}

/// Across the attempts of one send: since when an attempt may have reached Twilio without
/// our seeing the answer (`None`: nothing unresolved). Attempts run one after another, so the
/// lock is never contended; it only makes the future `Send`.
struct UnresolvedSend(Mutex<Option<DateTime<Utc>>>);

impl UnresolvedSend {
    fn new(since: Option<DateTime<Utc>>) -> Self {
        Self(Mutex::new(since))
    }

    fn get(&self) -> Option<DateTime<Utc>> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, since: Option<DateTime<Utc>>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = since;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(to: &str, body: &str, created: &str) -> Result<TwilioMessage, serde_json::Error> {
        serde_json::from_value(serde_json::json!({
            "sid": "SM1", "to": to, "body": body, "status": "sent", "date_created": created,
        }))
    }

    #[test]
    fn a_message_matches_on_recipient_body_and_time() -> Result<(), Box<dyn std::error::Error>> {
        let since = DateTime::parse_from_rfc3339("2030-03-15T14:00:00Z")?.with_timezone(&Utc);
        let at = "Fri, 15 Mar 2030 14:00:05 +0000";
        assert!(is_the_message(
            &message("+1415", "Hi", at)?,
            "+1415",
            "Hi",
            since
        ));
        assert!(is_the_message(
            &message("+1415", "Hi\n", at)?,
            "+1415",
            "Hi",
            since
        ));
        assert!(!is_the_message(
            &message("+1416", "Hi", at)?,
            "+1415",
            "Hi",
            since
        ));
        assert!(!is_the_message(
            &message("+1415", "Hello", at)?,
            "+1415",
            "Hi",
            since
        ));
        let before = "Fri, 15 Mar 2030 13:59:59 +0000";
        assert!(!is_the_message(
            &message("+1415", "Hi", before)?,
            "+1415",
            "Hi",
            since
        ));
        Ok(())
    }

    #[test]
    fn empty_and_overlong_sends_are_refused_before_sending() {
        let empty = SendSms::new("+14155552671", "  ", "k");
        assert_eq!(
            validate(&empty).map_err(|e| e.kind()),
            Err(ErrorKind::InvalidRequest)
        );
        let long = SendSms::new("+14155552671", "x".repeat(1_601), "k");
        assert_eq!(
            validate(&long).map_err(|e| e.kind()),
            Err(ErrorKind::InvalidRequest)
        );
        let fine = SendSms::new("+14155552671", "x".repeat(1_600), "k");
        assert!(validate(&fine).is_ok());
    }

    #[test]
    fn send_debug_leaves_patient_data_out() {
        let shown = format!("{:?}", SendSms::new("+14155552671", "Hi Ada", "exec-1"));
        assert!(shown.contains("exec-1"));
        assert!(!shown.contains("4155552671"));
        assert!(!shown.contains("Ada"));
    }
}
