//! Calendly: bookings and their changes as signed webhooks, and the API look-ups.

use crate::common::Bench;
use serde_json::{Value, json};

pub fn booking_request() -> Value {
    json!({
        "name": "Ada Lovelace",
        "phone": "+14155552671",
        "startsAt": "2030-03-15T14:00:00Z",
        "durationMinutes": 30,
        "eventType": "checkup",
        "timezone": "America/Los_Angeles",
        "language": "es",
        "email": "ada@example.org",
    })
}

pub async fn book(bench: &Bench, request: Value) -> Value {
    let response = bench.post_json("/sandbox/bookings", request).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// Waits for `n` Calendly webhooks to `tenant`.
pub async fn calendly_events(bench: &Bench, tenant: &str, n: usize) -> Vec<Value> {
    bench
        .wait_for(&format!("{n} Calendly webhooks"), |_| {
            let events = bench.calendly_events(tenant);
            (events.len() >= n).then_some(events)
        })
        .await
}

#[tokio::test]
async fn a_booking_sends_a_signed_invitee_created_with_calendlys_shape() {
    let bench = Bench::start().await;
    let booked = book(&bench, booking_request()).await;
    let invitee_uri = booked["inviteeUri"].as_str().unwrap();
    assert!(booked["id"].as_str().unwrap().starts_with("bk_"));
    assert!(invitee_uri.starts_with(&bench.url("/scheduled_events/")));

    let events = calendly_events(&bench, "default", 1).await;
    let webhook = &events[0];
    assert_eq!(webhook["event"], "invitee.created");
    assert!(webhook["created_by"].as_str().unwrap().contains("/users/"));
    let payload = &webhook["payload"];
    assert_eq!(payload["uri"], invitee_uri);
    assert_eq!(payload["name"], "Ada Lovelace");
    assert_eq!(payload["email"], "ada@example.org");
    assert_eq!(payload["status"], "active");
    assert_eq!(payload["text_reminder_number"], "+1 415-555-2671");
    assert_eq!(payload["timezone"], "America/Los_Angeles");
    assert_eq!(payload["rescheduled"], false);
    assert_eq!(payload["old_invitee"], Value::Null);
    assert_eq!(
        payload["questions_and_answers"],
        json!([{"question": "Preferred language", "answer": "es", "position": 0}])
    );
    assert!(
        payload["cancel_url"]
            .as_str()
            .unwrap()
            .starts_with(&bench.sandbox)
    );
    assert!(
        payload["reschedule_url"]
            .as_str()
            .unwrap()
            .starts_with(&bench.sandbox)
    );
    let event = &payload["scheduled_event"];
    assert_eq!(event["uri"], payload["event"]);
    assert_eq!(event["name"], "checkup");
    assert_eq!(event["status"], "active");
    assert_eq!(event["start_time"], "2030-03-15T14:00:00.000000Z");
    assert_eq!(event["end_time"], "2030-03-15T14:30:00.000000Z");

    // The same invitee through the API, as an executor's booking.fetch_invitee would read it.
    let fetched = bench
        .http
        .get(invitee_uri)
        .bearer_auth(bench.secrets.calendly.api_token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    let resource = &fetched.json::<Value>().await.unwrap()["resource"];
    assert_eq!(resource["uri"], invitee_uri);
    assert_eq!(resource["text_reminder_number"], "+1 415-555-2671");
    let event: Value = bench
        .http
        .get(payload["event"].as_str().unwrap())
        .bearer_auth(bench.secrets.calendly.api_token.expose())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        event["resource"]["start_time"],
        "2030-03-15T14:00:00.000000Z"
    );
}

#[tokio::test]
async fn the_calendly_api_refuses_a_wrong_token_in_calendlys_shape() {
    let bench = Bench::start().await;
    let booked = book(&bench, booking_request()).await;
    let refused = bench
        .http
        .get(booked["inviteeUri"].as_str().unwrap())
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["title"], "Unauthenticated");
    let missing = bench
        .http
        .get(bench.url("/scheduled_events/nope/invitees/nope"))
        .bearer_auth(bench.secrets.calendly.api_token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["title"],
        "Resource Not Found"
    );
}

#[tokio::test]
async fn a_booking_without_optional_fields_still_has_every_field_calendly_sends() {
    let bench = Bench::start().await;
    book(
        &bench,
        json!({"name": "Grace Hopper", "startsAt": "2030-03-15T09:00:00-05:00",
               "durationMinutes": 15, "eventType": "Cleaning", "tenantId": "clinic-b"}),
    )
    .await;
    let events = calendly_events(&bench, "clinic-b", 1).await;
    let payload = &events[0]["payload"];
    assert_eq!(payload["text_reminder_number"], Value::Null);
    assert_eq!(payload["timezone"], Value::Null);
    assert_eq!(payload["questions_and_answers"], json!([]));
    assert!(payload["email"].as_str().unwrap().contains('@'));
    assert_eq!(
        payload["scheduled_event"]["start_time"],
        "2030-03-15T14:00:00.000000Z"
    );
}

#[tokio::test]
async fn invalid_bookings_name_the_field() {
    let bench = Bench::start().await;
    for (field, value) in [
        ("durationMinutes", json!(0)),
        ("timezone", json!("Mars/Olympus")),
        ("email", json!("not an email")),
        ("name", json!("  ")),
        ("tenantId", json!("Clinic B")),
    ] {
        let mut request = booking_request();
        request[field] = value;
        let response = bench.post_json("/sandbox/bookings", request).await;
        assert_eq!(response.status(), 422, "{field}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["details"]["field"], field);
    }
    assert!(bench.calendly_events("default").is_empty());
}

#[tokio::test]
async fn a_cancellation_sends_invitee_canceled() {
    let bench = Bench::start().await;
    let booked = book(&bench, booking_request()).await;
    let id = booked["id"].as_str().unwrap();
    let response = bench
        .post_json(
            &format!("/sandbox/bookings/{id}/cancel"),
            json!({"reason": "Feeling better"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let events = calendly_events(&bench, "default", 2).await;
    let canceled = &events[1];
    assert_eq!(canceled["event"], "invitee.canceled");
    assert_eq!(canceled["payload"]["uri"], booked["inviteeUri"]);
    assert_eq!(canceled["payload"]["status"], "canceled");
    assert_eq!(canceled["payload"]["rescheduled"], false);
    assert_eq!(
        canceled["payload"]["cancellation"]["reason"],
        "Feeling better"
    );
    assert_eq!(
        canceled["payload"]["cancellation"]["canceler_type"],
        "invitee"
    );
    assert_eq!(canceled["payload"]["scheduled_event"]["status"], "canceled");

    let again = bench
        .post_json(&format!("/sandbox/bookings/{id}/cancel"), Value::Null)
        .await;
    assert_eq!(again.status(), 409);
    let unknown = bench
        .post_json("/sandbox/bookings/bk_nope/cancel", Value::Null)
        .await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn a_reschedule_sends_the_canceled_old_invitee_then_the_created_new_one() {
    let bench = Bench::start().await;
    let booked = book(&bench, booking_request()).await;
    let id = booked["id"].as_str().unwrap();
    let old_uri = booked["inviteeUri"].as_str().unwrap().to_owned();
    let moved: Value = bench
        .post_json(
            &format!("/sandbox/bookings/{id}/reschedule"),
            json!({"startsAt": "2030-03-16T16:00:00Z"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let new_uri = moved["inviteeUri"].as_str().unwrap().to_owned();
    assert_ne!(new_uri, old_uri);
    assert_eq!(moved["previousInviteeUri"], old_uri);
    assert_eq!(moved["id"], id, "the booking keeps its sandbox id");

    let events = calendly_events(&bench, "default", 3).await;
    let (canceled, created) = (&events[1], &events[2]);
    assert_eq!(canceled["event"], "invitee.canceled");
    assert_eq!(canceled["payload"]["uri"], old_uri);
    assert_eq!(canceled["payload"]["rescheduled"], true);
    assert_eq!(canceled["payload"]["new_invitee"], new_uri);
    assert_eq!(created["event"], "invitee.created");
    assert_eq!(created["payload"]["uri"], new_uri);
    assert_eq!(created["payload"]["old_invitee"], old_uri);
    assert_eq!(created["payload"]["status"], "active");
    assert_eq!(
        created["payload"]["text_reminder_number"],
        "+1 415-555-2671"
    );
    let event = &created["payload"]["scheduled_event"];
    assert_eq!(event["start_time"], "2030-03-16T16:00:00.000000Z");
    assert_eq!(
        event["end_time"], "2030-03-16T16:30:00.000000Z",
        "the duration is kept"
    );
    assert_ne!(event["uri"], canceled["payload"]["scheduled_event"]["uri"]);

    // The booking now means the new invitee.
    let no_show = bench
        .post_json(&format!("/sandbox/bookings/{id}/no-show"), Value::Null)
        .await;
    assert_eq!(no_show.status(), 200);
    let events = calendly_events(&bench, "default", 4).await;
    assert_eq!(events[3]["payload"]["uri"], new_uri);
}

#[tokio::test]
async fn a_no_show_sends_invitee_no_show_created() {
    let bench = Bench::start().await;
    let booked = book(&bench, booking_request()).await;
    let id = booked["id"].as_str().unwrap();
    let response = bench
        .post_json(&format!("/sandbox/bookings/{id}/no-show"), Value::Null)
        .await;
    assert_eq!(response.status(), 200);
    let events = calendly_events(&bench, "default", 2).await;
    let no_show = &events[1];
    assert_eq!(no_show["event"], "invitee_no_show.created");
    assert_eq!(no_show["payload"]["uri"], booked["inviteeUri"]);
    assert!(
        no_show["payload"]["no_show"]["uri"]
            .as_str()
            .unwrap()
            .contains("/invitee_no_shows/")
    );
    assert!(no_show["payload"]["no_show"]["created_at"].is_string());
    let again = bench
        .post_json(&format!("/sandbox/bookings/{id}/no-show"), Value::Null)
        .await;
    assert_eq!(again.status(), 409);
}

#[tokio::test]
async fn a_webhook_core_fails_is_retried_until_it_is_taken() {
    let bench = Bench::start().await;
    bench.fail_next_webhooks(2);
    book(&bench, booking_request()).await;
    let events = calendly_events(&bench, "default", 1).await;
    assert_eq!(events[0]["event"], "invitee.created");
}
