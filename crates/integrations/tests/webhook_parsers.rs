//! The webhook parsers read untrusted bytes: whatever arrives, they answer with a value or a
//! `PayloadError`, never a panic.

use aro_integrations::calendly::webhook::Webhook;
use aro_integrations::calendly::{language_from_answers, normalise};
use aro_integrations::stripe::webhook::Event;
use aro_integrations::twilio::webhook::{InboundMessage, StatusCallback};
use proptest::prelude::*;

/// JSON-ish text built from the tokens these payloads use, to reach deeper than random bytes.
fn json_like() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("1e400".to_owned()),
        Just("-1".to_owned()),
        Just("\"event\"".to_owned()),
        Just("\"invitee.created\"".to_owned()),
        Just("\"invitee_no_show.created\"".to_owned()),
        Just("\"payload\"".to_owned()),
        Just("\"uri\"".to_owned()),
        Just("\"invitee\"".to_owned()),
        Just("\"scheduled_event\"".to_owned()),
        Just("\"start_time\"".to_owned()),
        Just("\"2030-03-15T14:00:00Z\"".to_owned()),
        Just("\"questions_and_answers\"".to_owned()),
        Just("\"id\"".to_owned()),
        Just("\"type\"".to_owned()),
        Just("\"checkout.session.completed\"".to_owned()),
        Just("\"checkout.session.async_payment_succeeded\"".to_owned()),
        Just("\"checkout.session.async_payment_failed\"".to_owned()),
        Just("\"payment_status\"".to_owned()),
        Just("\"unpaid\"".to_owned()),
        Just("\"created\"".to_owned()),
        Just("\"data\"".to_owned()),
        Just("\"object\"".to_owned()),
        Just("\"payment_link\"".to_owned()),
        Just("\"metadata\"".to_owned()),
        "\"[^\"\\\\]{0,8}\"".prop_map(|s| s),
    ];
    prop::collection::vec(token, 0..60).prop_map(|tokens| tokens.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn calendly_and_stripe_parsers_never_panic_on_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Webhook::parse(&body);
        let _ = Event::parse(&body);
    }

    #[test]
    fn calendly_and_stripe_parsers_never_panic_on_json_like_text(body in json_like()) {
        if let Ok(webhook) = Webhook::parse(body.as_bytes()) {
            let _ = webhook.invitee_uri();
            if let aro_integrations::calendly::webhook::WebhookPayload::Invitee(invitee) = &webhook.payload {
                let _ = normalise(invitee, None);
                let _ = language_from_answers(&invitee.questions_and_answers);
            }
        }
        let _ = Event::parse(body.as_bytes());
    }

    #[test]
    fn twilio_form_parsers_never_panic(
        form in prop::collection::vec(
            (
                prop_oneof![
                    Just("MessageSid".to_owned()), Just("From".to_owned()), Just("To".to_owned()),
                    Just("Body".to_owned()), Just("NumMedia".to_owned()), Just("MediaUrl0".to_owned()),
                    Just("MessageStatus".to_owned()), Just("ErrorCode".to_owned()), ".{0,12}".prop_map(|s| s),
                ],
                ".{0,24}",
            ),
            0..16,
        )
    ) {
        let _ = InboundMessage::from_form(&form);
        let _ = StatusCallback::from_form(&form);
    }
}
