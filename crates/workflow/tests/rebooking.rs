//! A booking moved at the provider away from a visit that is already settled (ADR 0012): the
//! patient who missed a visit rebooks through its reschedule link, or a completed or cancelled
//! visit's booking is moved. The settled visit keeps its outcome; the new time is a new visit
//! with everything a booking gets, booked once however often the provider reports it. (The
//! same end to end through the sandbox's Calendly: tests/tests/rebooking.rs.)

#[macro_use]
mod support;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use support::*;

const ADA: &str = "+14155552671";

fn invitee(n: &str) -> String {
    format!("https://api.calendly.com/scheduled_events/EV{n}/invitees/IN{n}")
}

/// The new half of a provider's reschedule: `new` replaces `old`, at `starts`.
fn moved(new: &str, old: &str, name: &str, starts: DateTime<Utc>) -> Value {
    let mut payload = booking(new, name, ADA, starts);
    payload["previousExternalId"] = json!(old);
    payload["rescheduleUrl"] = json!(format!("{new}/reschedule"));
    payload
}

async fn upsert(h: &Harness, payload: Value) -> String {
    let answer = h
        .command(
            "appointment.upsert",
            json!({"type": "appointment"}),
            payload,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["aggregate"]["id"].as_str().unwrap().to_owned()
}

/// Books `external` 50 h ahead, lets the visit pass and marks it a no-show; returns its id.
async fn missed_visit(h: &Harness, external: &str, name: &str) -> String {
    let apt = h.book(external, name, ADA, 50).await;
    h.advance(Duration::hours(51)).await;
    let answer = h
        .command(
            "appointment.mark_no_show",
            json!({"type": "appointment", "id": apt}),
            Value::Null,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    deliver_all(h).await;
    apt
}

async fn count(h: &Harness, aggregate: &str, event_type: &str) -> usize {
    h.event_types(aggregate)
        .await
        .iter()
        .filter(|t| *t == event_type)
        .count()
}

on_both!(
    a_no_show_rebooked_through_its_link_is_a_new_visit_booked_once_and_recovered,
    |h: Harness| async move {
        let missed = missed_visit(&h, &invitee("1"), "Ada Lovelace").await;
        let recovery = h.events(Some(&missed)).await;
        assert!(
            recovery
                .iter()
                .any(|e| e.event_type == "message.queued"
                    && e.payload["purpose"] == "no_show_recovery"),
            "the recovery text went out"
        );
        let history = h.event_types(&missed).await;

        // The patient picks a new time through the missed visit's reschedule link.
        let starts = h.engine.clock().now() + Duration::days(7);
        let rebooked = upsert(
            &h,
            moved(&invitee("2"), &invitee("1"), "Ada Lovelace", starts),
        )
        .await;
        assert_ne!(rebooked, missed, "a new visit, not the missed one moved");
        assert_eq!(h.status(&missed).await, "no_show");
        assert_eq!(
            h.event_types(&missed).await,
            history,
            "the missed visit's history is untouched"
        );
        assert_eq!(h.status(&rebooked).await, "booked");
        let events = h.events(Some(&rebooked)).await;
        let booked: Vec<_> = events
            .iter()
            .filter(|e| e.event_type == "appointment.booked")
            .collect();
        assert_eq!(booked.len(), 1);
        assert_eq!(booked[0].payload["rebookedFrom"], missed.as_str());
        assert_eq!(
            booked[0].payload["appointment"]["externalId"],
            invitee("2").as_str()
        );
        assert_eq!(
            booked[0].payload["appointment"]["customerId"],
            h.events(Some(&missed)).await[0].payload["appointment"]["customerId"],
            "the same patient"
        );
        assert_eq!(count(&h, &rebooked, "reminder.scheduled").await, 2);

        // The provider reports it again (a redelivery, a look-up's result): nothing new.
        let before = h.events(None).await.len();
        let again = upsert(
            &h,
            moved(&invitee("2"), &invitee("1"), "Ada Lovelace", starts),
        )
        .await;
        assert_eq!(again, rebooked);
        assert_eq!(h.events(None).await.len(), before);

        // The new visit is an ordinary one: moving it again moves it.
        let later = starts + Duration::days(1);
        let moved_again = upsert(
            &h,
            moved(&invitee("3"), &invitee("2"), "Ada Lovelace", later),
        )
        .await;
        assert_eq!(moved_again, rebooked);
        assert_eq!(count(&h, &rebooked, "appointment.rescheduled").await, 1);

        // The 48 h reminder goes out; the visit passes and completes; the metrics count it
        // recovered.
        h.advance(Duration::days(6) + Duration::hours(1)).await;
        let texts = deliver_all(&h).await;
        assert!(
            texts.iter().any(|e| e.payload["body"]
                .as_str()
                .is_some_and(|b| b.starts_with("Hi Ada"))),
            "the new visit's reminder went out: {texts:?}"
        );
        h.advance(Duration::days(3)).await;
        deliver_all(&h).await;
        assert_eq!(h.status(&rebooked).await, "completed");
        let m = aro_workflow::reports::metrics(&h.store, "default", None, None)
            .await
            .unwrap();
        assert_eq!((m.appointments_booked, m.completed, m.no_shows), (2, 1, 1));
        assert_eq!(m.recovered_visits, 1);
    }
);

on_both!(
    a_repeat_no_show_rebooking_asks_for_a_deposit_like_any_booking,
    |h: Harness| async move {
        missed_visit(&h, &invitee("1"), "Ada Lovelace").await;
        missed_visit(&h, &invitee("2"), "Ada Lovelace").await;
        let starts = h.engine.clock().now() + Duration::days(7);
        let rebooked = upsert(
            &h,
            moved(&invitee("3"), &invitee("2"), "Ada Lovelace", starts),
        )
        .await;
        let claimed = h
            .engine
            .claim_executions(
                "test-executor",
                10,
                Duration::seconds(60),
                Some(vec!["payments.generate_deposit_link".to_owned()]),
                None,
            )
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "{claimed:?}");
        assert_eq!(
            claimed[0].payload["metadata"]["appointmentId"],
            rebooked.as_str()
        );
    }
);

on_both!(
    completed_and_cancelled_visits_moved_at_the_provider_are_new_visits_too,
    |h: Harness| async move {
        // Cancelled by staff in ARO while the booking lived on at the provider.
        let cancelled = h.book(&invitee("1"), "Ada Lovelace", ADA, 72).await;
        let answer = h
            .command(
                "appointment.cancel",
                json!({"type": "appointment", "id": cancelled}),
                Value::Null,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let starts = h.engine.clock().now() + Duration::days(5);
        let new = upsert(
            &h,
            moved(&invitee("2"), &invitee("1"), "Ada Lovelace", starts),
        )
        .await;
        assert_ne!(new, cancelled);
        assert_eq!(h.status(&cancelled).await, "cancelled");
        assert_eq!(h.status(&new).await, "booked");

        // A completed visit.
        let done = h
            .book(&invitee("3"), "Grace Hopper", "+14155552672", 10)
            .await;
        h.advance(Duration::hours(13)).await;
        assert_eq!(h.status(&done).await, "completed");
        let mut payload = moved(
            &invitee("4"),
            &invitee("3"),
            "Grace Hopper",
            h.engine.clock().now() + Duration::days(30),
        );
        payload["customer"]["phone"] = json!("+14155552672");
        let next = upsert(&h, payload).await;
        assert_ne!(next, done);
        assert_eq!(h.status(&done).await, "completed");
        assert_eq!(count(&h, &done, "appointment.rescheduled").await, 0);
        assert_eq!(count(&h, &next, "appointment.booked").await, 1);
    }
);

on_both!(
    the_reschedule_command_on_a_settled_visit_is_refused_and_writes_nothing,
    |h: Harness| async move {
        let missed = missed_visit(&h, &invitee("1"), "Ada Lovelace").await;
        let before = h.events(None).await.len();
        let starts = h.engine.clock().now() + Duration::days(7);
        let answer = h
            .command(
                "appointment.reschedule",
                json!({"type": "appointment", "id": missed}),
                json!({"startsAt": starts, "endsAt": starts + Duration::minutes(30),
                       "externalId": invitee("2")}),
            )
            .await;
        assert_eq!(answer.status, 409, "{}", answer.body);
        assert_eq!(answer.body["error"]["code"], "INVALID_TRANSITION");
        let details = &answer.body["error"]["details"];
        assert_eq!(
            (&details["from"], &details["to"]),
            (&json!("no_show"), &json!("rescheduled"))
        );
        assert_eq!(h.events(None).await.len(), before);
        // The refused command named no identity for the missed visit: a booking under it is
        // a booking of its own.
        let own = upsert(&h, booking(&invitee("2"), "Ada Lovelace", ADA, starts)).await;
        assert_ne!(own, missed);
    }
);
