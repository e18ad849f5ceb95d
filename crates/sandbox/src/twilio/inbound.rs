//! A patient's text arriving: Twilio records it, applies its default opt-out handling (unless
//! the tenant turned it off), and posts the inbound webhook to the tenant's URL on core, signed
//! over exactly that URL. Twilio forwards the message to core in every case, keywords included.

use super::opt_out::{self, Keyword};
use super::{API_VERSION, DEFAULT_SENDER, Direction, Status, StoredMessage, segments};
use crate::ids;
use crate::outbound::{Answer, Payload, Webhook};
use crate::settings::join;
use crate::state::Sandbox;
use chrono::Utc;

/// A text from a patient's phone.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub tenant_id: String,
    /// The patient's number (E.164).
    pub from: String,
    pub body: String,
}

/// What happened to it.
#[derive(Debug)]
pub(crate) struct Received {
    pub message_sid: String,
    /// The clinic number it was sent to.
    pub to: String,
    pub webhook_url: String,
    /// Twilio's automatic answer, when the text was a keyword it handles.
    pub auto_reply: Option<String>,
    /// Core's answer, or why there was none.
    pub core: Result<Answer, reqwest::Error>,
}

/// Records `reply`, applies opt-out handling, and posts it to core (once: Twilio does not retry
/// inbound webhooks, and the tester wants core's first answer).
pub(crate) async fn receive_reply(sandbox: &Sandbox, reply: Reply) -> Received {
    let settings = sandbox.settings();
    let now = Utc::now();
    let message_sid = ids::twilio_sid("SM");
    let num_segments = segments::count(&reply.body);
    let (to, auto_reply, account_sid) = {
        let mut state = sandbox.state();
        // …on the account that texted the patient (a tenant's own, or the configured one).
        let account_sid = state
            .twilio
            .last_account_to(&reply.tenant_id, &reply.from)
            .unwrap_or_else(|| settings.twilio.account_sid.clone());
        // The reply goes to the number that last texted this patient for the tenant.
        let to = state
            .twilio
            .last_sender_to(&reply.tenant_id, &reply.from)
            .or_else(|| settings.twilio.from_number.clone())
            .unwrap_or_else(|| DEFAULT_SENDER.to_owned());
        let handling = state.switches(&reply.tenant_id).twilio_opt_out_handling;
        let auto_reply = match opt_out::keyword(&reply.body).filter(|_| handling) {
            Some(Keyword::OptOut) => {
                state.twilio.opt_out(&to, &reply.from);
                Some(opt_out::OPT_OUT_REPLY)
            }
            // Answered only when it lifts an opt-out, so a plain "yes" to a reminder does not
            // draw a resubscription notice.
            Some(Keyword::OptIn) => state
                .twilio
                .opt_in(&to, &reply.from)
                .then_some(opt_out::OPT_IN_REPLY),
            Some(Keyword::Help) => Some(opt_out::HELP_REPLY),
            None => None,
        };
        state.twilio.messages.insert(
            message_sid.clone(),
            StoredMessage {
                sid: message_sid.clone(),
                account_sid: account_sid.clone(),
                tenant_id: reply.tenant_id.clone(),
                direction: Direction::Inbound,
                sender: reply.from.clone(),
                to: to.clone(),
                body: reply.body.clone(),
                status: Status::Received,
                error_code: None,
                messaging_service_sid: settings.twilio.messaging_service_sid.clone(),
                num_segments,
                created: now,
                sent: Some(now),
                updated: now,
            },
        );
        if let Some(text) = auto_reply {
            let sid = ids::twilio_sid("SM");
            state.twilio.messages.insert(
                sid.clone(),
                StoredMessage {
                    sid,
                    account_sid: account_sid.clone(),
                    tenant_id: reply.tenant_id.clone(),
                    direction: Direction::OutboundReply,
                    sender: to.clone(),
                    to: reply.from.clone(),
                    body: text.to_owned(),
                    status: Status::Delivered,
                    error_code: None,
                    messaging_service_sid: None,
                    num_segments: segments::count(text),
                    created: now,
                    sent: Some(now),
                    updated: now,
                },
            );
        }
        (to, auto_reply.map(str::to_owned), account_sid)
    };

    let mut params = vec![
        ("AccountSid".to_owned(), account_sid),
        ("ApiVersion".to_owned(), API_VERSION.to_owned()),
        ("Body".to_owned(), reply.body.clone()),
        ("From".to_owned(), reply.from.clone()),
        ("MessageSid".to_owned(), message_sid.clone()),
        ("NumMedia".to_owned(), "0".to_owned()),
        ("NumSegments".to_owned(), num_segments.to_string()),
        ("SmsMessageSid".to_owned(), message_sid.clone()),
        ("SmsSid".to_owned(), message_sid.clone()),
        ("SmsStatus".to_owned(), "received".to_owned()),
        ("To".to_owned(), to.clone()),
    ];
    if let Some(service) = &settings.twilio.messaging_service_sid {
        params.push(("MessagingServiceSid".to_owned(), service.clone()));
    }
    let webhook_url = join(
        &settings.public_base_url,
        &format!("/v1/webhooks/twilio/{}/inbound", reply.tenant_id),
    );
    let hook = Webhook {
        kind: "inbound_message",
        url: webhook_url.clone(),
        payload: Payload::TwilioForm(params),
    };
    let core = sandbox.post_webhook(&hook).await;
    if let Err(error) = &core {
        tracing::warn!(
            tenant = %reply.tenant_id,
            timeout = error.is_timeout(),
            "core did not answer an inbound message webhook"
        );
    }
    Received {
        message_sid,
        to,
        webhook_url,
        auto_reply,
        core,
    }
}
