//! What the sandbox sends is what ARO's own webhook parsers (aro-integrations, used by core)
//! read: a drift between the two would make `aro up` fail end to end.

use crate::calendly::{book, booking_request, calendly_events};
use crate::common::Bench;
use crate::stripe::deposit_link;
use aro_integrations::calendly::normalise;
use aro_integrations::calendly::webhook::{Webhook, WebhookEvent, WebhookPayload};
use aro_integrations::stripe::webhook::{CheckoutSessionEventKind, Event, PaymentStatus};
use aro_integrations::twilio::MessageStatus;
use aro_integrations::twilio::webhook::{InboundMessage, StatusCallback};
use serde_json::{Value, json};

const PATIENT: &str = "+14155552671";

#[tokio::test]
async fn twilio_callbacks_and_inbound_messages_are_read_by_aros_parsers() {
    let bench = Bench::start().await;
    let sent: Value = bench
        .send_sms(PATIENT, "Reply C to confirm")
        .await
        .json()
        .await
        .unwrap();
    let sid = sent["sid"].as_str().unwrap().to_owned();
    let callbacks = bench
        .wait_for("two callbacks", |all| {
            let mine: Vec<_> = all
                .iter()
                .filter(|d| d.param("MessageSid") == Some(sid.as_str()))
                .cloned()
                .collect();
            (mine.len() >= 2).then_some(mine)
        })
        .await;
    let statuses: Vec<MessageStatus> = callbacks
        .iter()
        .map(|d| StatusCallback::from_form(&d.form).unwrap().message_status)
        .collect();
    assert_eq!(statuses, [MessageStatus::Sent, MessageStatus::Delivered]);

    let reply: Value = bench
        .post_json("/sandbox/reply", json!({"from": PATIENT, "body": "C"}))
        .await
        .json()
        .await
        .unwrap();
    let inbound = bench
        .wait_for("the inbound webhook", |all| {
            all.iter().find(|d| d.path.ends_with("/inbound")).cloned()
        })
        .await;
    let message = InboundMessage::from_form(&inbound.form).unwrap();
    assert_eq!(message.message_sid, reply["messageSid"].as_str().unwrap());
    assert_eq!(message.from, PATIENT);
    assert_eq!(message.to, bench.sender_number());
    assert_eq!(message.body, "C");
    assert_eq!(message.num_segments, Some(1));
}

#[tokio::test]
async fn the_stripe_event_is_read_by_aros_parser() {
    let bench = Bench::start().await;
    let link = deposit_link(&bench, "default", "2500").await;
    let id = link["id"].as_str().unwrap();
    bench
        .post_json(&format!("/sandbox/payments/{id}/complete"), Value::Null)
        .await;
    let delivery = bench
        .wait_for("the Stripe event", |all| {
            all.iter()
                .find(|d| d.path.starts_with("/v1/webhooks/stripe/"))
                .cloned()
        })
        .await;
    let body = serde_json::to_vec(&delivery.json).unwrap();
    let Event::CheckoutSession(event) = Event::parse(&body).unwrap() else {
        panic!("not read as a checkout session event");
    };
    assert_eq!(event.kind, CheckoutSessionEventKind::Completed);
    assert_eq!(event.session.payment_link.as_deref(), Some(id));
    assert_eq!(event.session.payment_status, PaymentStatus::Paid);
    assert_eq!(event.session.amount_total, Some(2500));
    assert_eq!(
        event.session.metadata.get("tenantId").map(String::as_str),
        Some("default")
    );
}

#[tokio::test]
async fn calendly_webhooks_normalise_into_aros_bookings() {
    let bench = Bench::start().await;
    let booked = book(&bench, booking_request()).await;
    let id = booked["id"].as_str().unwrap();
    bench
        .post_json(
            &format!("/sandbox/bookings/{id}/reschedule"),
            json!({"startsAt": "2030-03-16T16:00:00Z"}),
        )
        .await;
    bench
        .post_json(&format!("/sandbox/bookings/{id}/no-show"), Value::Null)
        .await;
    let events = calendly_events(&bench, "default", 4).await;
    let parsed: Vec<Webhook> = events
        .iter()
        .map(|e| Webhook::parse(&serde_json::to_vec(e).unwrap()).unwrap())
        .collect();
    let kinds: Vec<&WebhookEvent> = parsed.iter().map(|w| &w.event).collect();
    assert_eq!(
        kinds,
        [
            &WebhookEvent::InviteeCreated,
            &WebhookEvent::InviteeCanceled,
            &WebhookEvent::InviteeCreated,
            &WebhookEvent::InviteeNoShowCreated,
        ]
    );

    let WebhookPayload::Invitee(first) = &parsed[0].payload else {
        panic!("invitee.created carries an invitee");
    };
    let booking = normalise(first, None).unwrap();
    assert_eq!(booking.external_id, booked["inviteeUri"].as_str().unwrap());
    assert_eq!(booking.name, "Ada Lovelace");
    assert_eq!(booking.phone_raw.as_deref(), Some("+1 415-555-2671"));
    assert_eq!(booking.language.as_deref(), Some("es"));
    assert_eq!(booking.timezone.as_deref(), Some("America/Los_Angeles"));
    assert_eq!(booking.event_type_name.as_deref(), Some("checkup"));
    assert_eq!(booking.starts_at.to_rfc3339(), "2030-03-15T14:00:00+00:00");
    assert_eq!(booking.ends_at.to_rfc3339(), "2030-03-15T14:30:00+00:00");

    let WebhookPayload::Invitee(moved) = &parsed[2].payload else {
        panic!("the new half of a reschedule carries an invitee");
    };
    let moved = normalise(moved, None).unwrap();
    assert_eq!(
        moved.old_external_id.as_deref(),
        Some(booking.external_id.as_str())
    );
    assert_eq!(parsed[3].invitee_uri(), Some(moved.external_id.as_str()));
}

#[tokio::test]
async fn a_bank_debits_stripe_events_are_read_by_aros_parser_in_order() {
    let bench = Bench::start().await;
    for (tenant, outcome, last, last_status) in [
        (
            "clinic-p",
            "succeeded",
            CheckoutSessionEventKind::AsyncPaymentSucceeded,
            PaymentStatus::Paid,
        ),
        (
            "clinic-q",
            "failed",
            CheckoutSessionEventKind::AsyncPaymentFailed,
            PaymentStatus::Unpaid,
        ),
    ] {
        let link = deposit_link(&bench, tenant, "2500").await;
        let id = link["id"].as_str().unwrap();
        bench
            .post_json(
                &format!("/sandbox/payments/{id}/complete"),
                json!({"method": "bank_debit", "outcome": outcome}),
            )
            .await;
        let path = format!("/v1/webhooks/stripe/{tenant}");
        let deliveries = bench
            .wait_for("both Stripe events", |all| {
                let mine: Vec<_> = all.iter().filter(|d| d.path == path).cloned().collect();
                (mine.len() >= 2).then_some(mine)
            })
            .await;
        let events: Vec<_> = deliveries
            .iter()
            .map(
                |d| match Event::parse(&serde_json::to_vec(&d.json).unwrap()).unwrap() {
                    Event::CheckoutSession(event) => event,
                    other => panic!("not read as a checkout session event: {other:?}"),
                },
            )
            .collect();
        let seen: Vec<_> = events
            .iter()
            .map(|e| (e.kind, e.session.payment_status.clone()))
            .collect();
        assert_eq!(
            seen,
            [
                (CheckoutSessionEventKind::Completed, PaymentStatus::Unpaid),
                (last, last_status)
            ]
        );
        assert_ne!(events[0].id, events[1].id);
        assert_eq!(events[0].session.id, events[1].session.id);
        for event in &events {
            assert_eq!(event.session.payment_link.as_deref(), Some(id));
        }
    }
}
