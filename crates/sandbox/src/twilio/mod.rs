//! Twilio Programmable Messaging, as ARO's clients see it: the Message resource
//! (`/2010-04-01/Accounts/{AccountSid}/Messages…`) and the Account fetch with basic auth, Twilio's error bodies and
//! test-credential magic numbers, status callbacks signed with `X-Twilio-Signature`, inbound
//! messages forwarded to core, and Twilio's default opt-out handling.

mod api;
mod delivery;
mod inbound;
pub(crate) mod opt_out;
mod segments;

pub(crate) use inbound::{Reply, receive_reply};

use crate::faults::{self, Provider};
use crate::state::{Bounded, Sandbox};
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// Twilio's REST API version, in paths, resources and webhooks.
pub(crate) const API_VERSION: &str = "2010-04-01";
/// The sender used when neither the request nor the configuration names one: Twilio's
/// documented test "from" number.
pub(crate) const DEFAULT_SENDER: &str = "+15005550006";

/// Who sent a message, in Twilio's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// From the patient.
    Inbound,
    /// Created through the REST API (ARO's sends).
    OutboundApi,
    /// Twilio's own automatic answers (opt-out confirmations).
    OutboundReply,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::OutboundApi => "outbound-api",
            Self::OutboundReply => "outbound-reply",
        }
    }
}

/// A message's status, as Twilio names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Accepted by a Messaging Service, no sender chosen yet.
    Accepted,
    Queued,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    Received,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
            Self::Received => "received",
        }
    }

    /// The status on the patient's phone view (DESIGN.md: `queued | sent | delivered |
    /// undelivered | failed`).
    pub fn phone_status(self) -> &'static str {
        match self {
            Self::Accepted | Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered | Self::Received => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
        }
    }
}

/// One message the sandbox knows, in either direction.
#[derive(Debug, Clone)]
pub(crate) struct StoredMessage {
    pub sid: String,
    /// The account it belongs to (the configured one, or one added with `POST /sandbox/accounts`).
    pub account_sid: String,
    /// The tenant it belongs to (for sends: from the status callback URL, else `default`).
    pub tenant_id: String,
    pub direction: Direction,
    /// The sending number (for a Messaging Service send, the one the sandbox picked).
    pub sender: String,
    pub to: String,
    pub body: String,
    pub status: Status,
    pub error_code: Option<u32>,
    pub messaging_service_sid: Option<String>,
    pub num_segments: u32,
    pub created: DateTime<Utc>,
    pub sent: Option<DateTime<Utc>>,
    pub updated: DateTime<Utc>,
}

impl StoredMessage {
    /// The Message resource as Twilio returns it.
    pub fn resource(&self, account_sid: &str) -> Value {
        let uri = format!(
            "/{API_VERSION}/Accounts/{account_sid}/Messages/{}.json",
            self.sid
        );
        let media = format!(
            "/{API_VERSION}/Accounts/{account_sid}/Messages/{}/Media.json",
            self.sid
        );
        let feedback = format!(
            "/{API_VERSION}/Accounts/{account_sid}/Messages/{}/Feedback.json",
            self.sid
        );
        // A Messaging Service picks the sender (and so the segment count) after accepting.
        let chosen = self.status != Status::Accepted;
        json!({
            "account_sid": account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": self.created.to_rfc2822(),
            "date_sent": self.sent.map(|t| t.to_rfc2822()),
            "date_updated": self.updated.to_rfc2822(),
            "direction": self.direction.as_str(),
            "error_code": self.error_code,
            "error_message": self.error_code.map(delivery::error_message),
            "from": chosen.then_some(&self.sender),
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": if chosen { self.num_segments.to_string() } else { "0".to_owned() },
            "price": null,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status.as_str(),
            "subresource_uris": {"media": media, "feedback": feedback},
            "to": self.to,
            "uri": uri,
        })
    }
}

/// Twilio's part of the sandbox's memory.
pub(crate) struct TwilioState {
    pub messages: Bounded<StoredMessage>,
    /// `sender>recipient` pairs blocked by an opt-out keyword.
    opted_out: Bounded<()>,
    /// Accounts accepted besides the configured one (a tenant's own), by SID, with their auth
    /// tokens: `POST /sandbox/accounts`.
    accounts: Bounded<AddedAccount>,
}

/// An account added with `POST /sandbox/accounts`.
pub(crate) struct AddedAccount {
    pub account_sid: String,
    pub auth_token: aro_config::Secret,
}

impl TwilioState {
    pub fn new(cap: usize) -> Self {
        Self {
            messages: Bounded::new(cap),
            opted_out: Bounded::new(cap),
            accounts: Bounded::new(cap),
        }
    }

    /// Accepts `account_sid` with `auth_token` from now on (a repeat replaces the token).
    pub fn add_account(&mut self, account_sid: &str, auth_token: aro_config::Secret) {
        self.accounts.insert(
            account_sid.to_owned(),
            AddedAccount {
                account_sid: account_sid.to_owned(),
                auth_token,
            },
        );
    }

    /// Forgets an added account (its messages stay); whether it existed.
    pub fn remove_account(&mut self, account_sid: &str) -> bool {
        self.accounts.remove(account_sid).is_some()
    }

    /// The SIDs of the added accounts, oldest first.
    pub fn added_accounts(&self) -> Vec<String> {
        self.accounts
            .values()
            .map(|a| a.account_sid.clone())
            .collect()
    }

    /// The auth token of an added account.
    pub fn added_account_token(&self, account_sid: &str) -> Option<&aro_config::Secret> {
        self.accounts.get(account_sid).map(|a| &a.auth_token)
    }

    /// The account of the message that most recently texted `recipient` for `tenant`.
    pub fn last_account_to(&self, tenant: &str, recipient: &str) -> Option<String> {
        self.messages
            .values()
            .rev()
            .find(|m| {
                m.tenant_id == tenant && m.to == recipient && m.direction == Direction::OutboundApi
            })
            .map(|m| m.account_sid.clone())
    }

    fn pair(sender: &str, recipient: &str) -> String {
        format!("{sender}>{recipient}")
    }

    pub fn is_opted_out(&self, sender: &str, recipient: &str) -> bool {
        self.opted_out.get(&Self::pair(sender, recipient)).is_some()
    }

    pub fn opt_out(&mut self, sender: &str, recipient: &str) {
        self.opted_out.insert(Self::pair(sender, recipient), ());
    }

    /// Lifts an opt-out; whether there was one.
    pub fn opt_in(&mut self, sender: &str, recipient: &str) -> bool {
        self.opted_out
            .remove(&Self::pair(sender, recipient))
            .is_some()
    }

    /// The number that most recently texted `recipient` for `tenant`: where a reply goes.
    pub fn last_sender_to(&self, tenant: &str, recipient: &str) -> Option<String> {
        self.messages
            .values()
            .rev()
            .find(|m| {
                m.tenant_id == tenant && m.to == recipient && m.direction != Direction::Inbound
            })
            .map(|m| m.sender.clone())
    }
}

/// A Twilio error answer: `{code, message, more_info, status}`.
#[derive(Debug, Clone)]
pub(crate) struct TwilioError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
}

impl TwilioError {
    pub fn bad_request(code: u32, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    pub fn authenticate() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: 20003,
            message: "Authenticate".to_owned(),
        }
    }

    pub fn not_found(path: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: 20404,
            message: format!("The requested resource {path} was not found"),
        }
    }
}

impl IntoResponse for TwilioError {
    fn into_response(self) -> Response {
        let body = json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status.as_u16(),
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
        }
        response
    }
}

/// Whether `number` looks like E.164: `+`, then 7 to 15 digits not starting with 0.
pub(crate) fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// The tenant a send belongs to, read from its status callback URL
/// (`…/v1/webhooks/twilio/{tenantId}/status`): Twilio itself has no notion of ARO's tenants.
pub(crate) fn tenant_from_callback(url: &url::Url) -> Option<String> {
    let segments: Vec<&str> = url.path_segments()?.collect();
    segments.windows(5).find_map(|w| {
        (w[0] == "v1" && w[1] == "webhooks" && w[2] == "twilio" && w[4] == "status")
            .then(|| w[3].to_owned())
    })
}

pub(crate) fn router(sandbox: Sandbox) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{account_sid}/Messages.json",
            post(api::create_message).get(api::list_messages),
        )
        .route(
            "/2010-04-01/Accounts/{account_sid}/Messages/{file}",
            get(api::fetch_message),
        )
        // `{Sid}.json`: the placeholder takes the whole segment, `.json` is stripped.
        .route(
            "/2010-04-01/Accounts/{account_sid}",
            get(api::fetch_account),
        )
        .layer(axum::middleware::from_fn_with_state(
            (sandbox.clone(), Provider::Twilio),
            faults::inject,
        ))
        .with_state(sandbox)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers_are_plus_and_digits() {
        assert!(is_e164("+14155552671"));
        assert!(is_e164("+15005550006"));
        for bad in [
            "14155552671",
            "+1 415 555 2671",
            "+0123456789",
            "+12",
            "+1234567890123456",
            "",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn the_tenant_comes_from_the_status_callback_path() {
        let url =
            url::Url::parse("http://127.0.0.1:7100/v1/webhooks/twilio/clinic-2/status").unwrap();
        assert_eq!(tenant_from_callback(&url).as_deref(), Some("clinic-2"));
        let url =
            url::Url::parse("https://x.example/aro/v1/webhooks/twilio/default/status?a=1").unwrap();
        assert_eq!(tenant_from_callback(&url).as_deref(), Some("default"));
        let url = url::Url::parse("https://x.example/callbacks/sms").unwrap();
        assert_eq!(tenant_from_callback(&url), None);
    }
}
