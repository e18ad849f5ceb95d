//! `POST /v1/webhooks/twilio/{tenantId}/inbound` (a patient's text) and
//! `POST /v1/webhooks/twilio/{tenantId}/status` (delivery of one of ours).
//!
//! Twilio signs the URL it called plus the form parameters, and has no timestamp: the URL is
//! rebuilt from `[server] public_base_url` (the address registered with Twilio, which a proxy
//! in front of ARO would otherwise hide) and the path and query exactly as received, and
//! replays are caught by the receipts — `MessageSid` for inbound texts,
//! `MessageSid:MessageStatus` for status callbacks. Both answer empty TwiML.
//!
//! The status callback URL ARO hands Twilio carries our message id (`?m=msg_…`), which the
//! signature covers, so a callback that beats the executor's report still finds its message.

use super::{
    Handled, Provider, apply, empty_twiml, header_text, payload_error, raw_body, signature_error,
    signing_secret, tenant_from_path,
};
use crate::AppState;
use aro_domain::ids::TenantId;
use aro_domain::message::Channel;
use aro_domain::values::Phone;
use aro_http::{ApiError, ApiPath};
use aro_integrations::twilio::webhook::{InboundMessage, StatusCallback};
use aro_security::signatures::twilio as signature;
use aro_workflow::EngineError;
use aro_workflow::commands::operations::apply_delivery_status;
use aro_workflow::replies::{Inbound, handle_inbound};
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::Value;

/// Twilio's ids (`SM…`, 34 characters) fit well within this; anything longer is not Twilio's.
const MAX_SID_LEN: usize = 128;
/// Our message ids (`msg_` + 32 hex digits) fit well within this.
const MAX_MESSAGE_ID_LEN: usize = 64;

/// A verified Twilio request: its form parameters, and the query string it was sent to.
struct Verified {
    params: Vec<(String, String)>,
    query: Option<String>,
}

/// Checks `X-Twilio-Signature` over the public URL Twilio called and the form parameters.
async fn verify(
    state: &AppState,
    tenant: &TenantId,
    request: Request,
) -> Result<Verified, ApiError> {
    let secret = signing_secret(state, tenant, Provider::Twilio).await?;
    let header = header_text(request.headers(), signature::HEADER)
        .map(|h| h.map(str::to_owned))
        .map_err(|e| signature_error(Provider::Twilio, tenant, e))?;
    let uri = request.uri().clone();
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let url = format!(
        "{}{path_and_query}",
        state
            .config
            .server
            .public_base_url
            .as_str()
            .trim_end_matches('/')
    );
    let body = raw_body(request).await?;
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    signature::verify(secret.expose(), &url, &params, header.as_deref())
        .map_err(|e| signature_error(Provider::Twilio, tenant, e))?;
    Ok(Verified {
        params,
        query: uri.query().map(str::to_owned),
    })
}

/// `whatsapp:+1…` addresses come from Twilio's WhatsApp channel; plain numbers are SMS.
fn address(raw: &str) -> (Channel, &str) {
    match raw.strip_prefix("whatsapp:") {
        Some(number) => (Channel::Whatsapp, number),
        None => (Channel::Sms, raw),
    }
}

#[tracing::instrument(skip_all, fields(provider = "twilio", kind = "inbound"))]
pub async fn receive_inbound(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let tenant = tenant_from_path(&tenant)?;
    let verified = verify(&state, &tenant, request).await?;
    let message = InboundMessage::from_form(&verified.params)
        .map_err(|e| payload_error(Provider::Twilio, &tenant, e))?;
    if message.message_sid.len() > MAX_SID_LEN {
        return Err(ApiError::validation(
            "MessageSid",
            "too long to be a Twilio id",
        ));
    }
    let key = message.message_sid.clone();
    apply(&state, Provider::Twilio, &tenant, key, move |ctx| {
        Box::pin(async move {
            let (channel, from) = address(&message.from);
            // A sender ARO cannot read as a number (a short code, an alphanumeric sender) is
            // nobody it can answer: recorded as seen, nothing else.
            let Ok(from) = Phone::parse(from, ctx.tenant.region) else {
                return Ok(Handled::Unchanged("unreadable_sender"));
            };
            let (_, to) = address(&message.to);
            let outcome = handle_inbound(
                ctx,
                Inbound {
                    from,
                    to: to.to_owned(),
                    body: message.body,
                    provider_ref: message.message_sid,
                    channel,
                },
            )
            .await?;
            if outcome.get("duplicate").and_then(Value::as_bool) == Some(true) {
                return Ok(Handled::Unchanged("message_already_recorded"));
            }
            let id = outcome
                .get("messageId")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Ok(Handled::Applied(format!("message:{id}")))
        })
    })
    .await?;
    Ok(empty_twiml())
}

/// Our message id from the callback URL's query (`m=`), when it has a sane one.
fn message_id(query: Option<&str>) -> Option<String> {
    let query = query?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "m")
        .map(|(_, value)| value.into_owned())
        .filter(|id| !id.is_empty() && id.len() <= MAX_MESSAGE_ID_LEN)
}

#[tracing::instrument(skip_all, fields(provider = "twilio", kind = "status"))]
pub async fn receive_status(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let tenant = tenant_from_path(&tenant)?;
    let verified = verify(&state, &tenant, request).await?;
    let callback = StatusCallback::from_form(&verified.params)
        .map_err(|e| payload_error(Provider::Twilio, &tenant, e))?;
    if callback.message_sid.len() > MAX_SID_LEN {
        return Err(ApiError::validation(
            "MessageSid",
            "too long to be a Twilio id",
        ));
    }
    let message_id = message_id(verified.query.as_deref());
    let status = callback.message_status.as_str().to_owned();
    let key = format!("{}:{status}", callback.message_sid);
    apply(&state, Provider::Twilio, &tenant, key, move |ctx| {
        Box::pin(async move {
            let applied = apply_delivery_status(
                ctx,
                &callback.message_sid,
                &status,
                callback.error_code.map(|c| c.to_string()),
                message_id.as_deref(),
            )
            .await;
            // Both refusals happen before anything is written, so the receipt can stand.
            match applied {
                Ok(aggregate) => Ok(Handled::Applied(format!(
                    "{}:{}",
                    aggregate.kind, aggregate.id
                ))),
                Err(EngineError::Validation { .. }) => Ok(Handled::Unchanged("status_not_tracked")),
                Err(EngineError::NotFound(_)) => Ok(Handled::Unchanged("unknown_message")),
                Err(other) => Err(other),
            }
        })
    })
    .await?;
    Ok(empty_twiml())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_id_is_read_from_the_callback_query() {
        assert_eq!(message_id(Some("m=msg_0123")).as_deref(), Some("msg_0123"));
        assert_eq!(message_id(Some("a=1&m=msg_1")).as_deref(), Some("msg_1"));
        assert_eq!(message_id(Some("m=")), None);
        assert_eq!(message_id(Some(&format!("m={}", "x".repeat(65)))), None);
        assert_eq!(message_id(None), None);
    }

    #[test]
    fn whatsapp_addresses_are_told_from_sms_numbers() {
        assert_eq!(
            address("whatsapp:+14155552671"),
            (Channel::Whatsapp, "+14155552671")
        );
        assert_eq!(address("+14155552671"), (Channel::Sms, "+14155552671"));
    }
}
