//! What happens to an accepted message: it moves through Twilio's statuses a short real-time
//! step apart, and each carrier-facing step (`sent`, then `delivered`, `undelivered` or
//! `failed`) is posted to the message's `StatusCallback`, signed over that exact URL. One task
//! per message posts its callbacks in order, so `delivered` never overtakes `sent`.

use super::{API_VERSION, Status, StoredMessage};
use crate::outbound::{Payload, Webhook};
use crate::state::Sandbox;

/// Sandbox conventions (not Twilio's): sends to these numbers are accepted and then fail, so
/// ARO's handling of delivery failures can be exercised.
pub(crate) const UNDELIVERABLE: &str = "+15005550010";
pub(crate) const FAILING: &str = "+15005550011";

/// The statuses a message accepted for `to` goes through after acceptance, with their error
/// codes.
pub(super) fn steps(to: &str, via_service: bool) -> Vec<(Status, Option<u32>)> {
    let mut steps = Vec::new();
    if via_service {
        // The Messaging Service picks a sender and queues it.
        steps.push((Status::Queued, None));
    }
    match to {
        UNDELIVERABLE => {
            steps.push((Status::Sent, None));
            steps.push((Status::Undelivered, Some(30003)));
        }
        FAILING => steps.push((Status::Failed, Some(30008))),
        _ => {
            steps.push((Status::Sent, None));
            steps.push((Status::Delivered, None));
        }
    }
    steps
}

/// Twilio's description of the error codes the sandbox produces.
pub(super) fn error_message(code: u32) -> &'static str {
    match code {
        30003 => "Unreachable destination handset",
        // 30008 and anything else.
        _ => "Unknown error",
    }
}

/// The form parameters of a status callback, as Twilio posts them.
fn callback_params(message: &StoredMessage, account_sid: &str) -> Vec<(String, String)> {
    let status = message.status.as_str().to_owned();
    let mut params = vec![
        ("AccountSid".to_owned(), account_sid.to_owned()),
        ("ApiVersion".to_owned(), API_VERSION.to_owned()),
        ("From".to_owned(), message.sender.clone()),
        ("MessageSid".to_owned(), message.sid.clone()),
        ("MessageStatus".to_owned(), status.clone()),
        ("SmsSid".to_owned(), message.sid.clone()),
        ("SmsStatus".to_owned(), status),
        ("To".to_owned(), message.to.clone()),
    ];
    if let Some(service) = &message.messaging_service_sid {
        params.push(("MessagingServiceSid".to_owned(), service.clone()));
    }
    if let Some(code) = message.error_code {
        params.push(("ErrorCode".to_owned(), code.to_string()));
    }
    params
}

/// Walks message `sid` through `steps` in the background, posting callbacks to `callback`.
pub(super) fn start(
    sandbox: &Sandbox,
    sid: String,
    steps: Vec<(Status, Option<u32>)>,
    callback: Option<String>,
) {
    let worker = sandbox.clone();
    sandbox.spawn(async move {
        let step = worker.settings().timing.delivery_step;
        for (status, error_code) in steps {
            if !worker.pause(step).await {
                return;
            }
            let params = {
                let mut state = worker.state();
                let Some(message) = state.twilio.messages.get_mut(&sid) else {
                    // Forgotten (the store is bounded): nothing left to report.
                    return;
                };
                let now = chrono::Utc::now();
                message.status = status;
                message.error_code = error_code;
                message.updated = now;
                if status == Status::Sent {
                    message.sent = Some(now);
                }
                callback_params(message, &message.account_sid)
            };
            let reported = !matches!(status, Status::Queued | Status::Accepted);
            if let (true, Some(url)) = (reported, &callback) {
                let hook = Webhook {
                    kind: "status_callback",
                    url: url.clone(),
                    payload: Payload::TwilioForm(params),
                };
                worker.deliver(&hook).await;
            }
        }
    });
}
