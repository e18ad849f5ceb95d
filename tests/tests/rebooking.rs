//! A patient who missed a visit rebooks through the link in ARO's recovery text (ADR 0012), end
//! to end: core-engine on SQLite or PostgreSQL, the sandbox's Calendly, openclaw-executor and
//! the healthcare pack, on the virtual business clock (the `Clinic` of tests/tests/flows.rs).
//!
//! Without a clinic-wide `bookingLink` the recovery text carries the missed visit's own
//! reschedule link. Calendly then reschedules that invitee: it cancels it (as rescheduled) and
//! creates a new one naming it as `old_invitee`. The missed visit is settled and cannot move, so
//! core books the new time as a new visit — reminders, deposit, metrics as for any booking —
//! once, whichever half of the pair arrives first and however often Calendly delivers them.

#[allow(dead_code)]
#[path = "flows/clinic.rs"]
mod clinic;

use aro_security::signatures;
use aro_tests::both_engines;
use chrono::Utc;
use clinic::*;
use serde_json::{Value, json};

/// Monday 1 April 2030, 09:00 in New York.
const MONDAY_9AM: &str = "2030-04-01T13:00:00Z";
/// Thursday 4 April 2030, 10:00 in New York.
const THURSDAY_10AM: &str = "2030-04-04T14:00:00Z";
/// A week later, when the patient rebooks.
const NEXT_THURSDAY_10AM: &str = "2030-04-11T14:00:00Z";
const ADA: &str = "+14155552671";
const LEE: &str = "+14155552673";

/// Calendly as core sees it from outside the sandbox: its API (read with the configured token)
/// and its signed webhooks (signed with the configured key), to deliver a webhook again or in
/// another order than the sandbox does.
struct Calendly<'a> {
    clinic: &'a Clinic,
    http: reqwest::Client,
}

impl<'a> Calendly<'a> {
    fn new(clinic: &'a Clinic) -> Self {
        Self {
            clinic,
            http: reqwest::Client::new(),
        }
    }

    fn config(&self) -> &aro_config::CalendlyConfig {
        self.clinic
            .config
            .providers
            .calendly
            .as_ref()
            .expect("the sandbox's Calendly is configured")
    }

    /// A resource of the sandbox's Calendly API (an invitee or event URI).
    async fn get(&self, uri: &str) -> Value {
        let resp = self
            .http
            .get(uri)
            .bearer_auth(self.config().api_token.expose())
            .send()
            .await
            .expect("calendly api");
        assert_eq!(resp.status().as_u16(), 200, "GET {uri}");
        let body: Value = resp.json().await.expect("calendly json");
        body["resource"].clone()
    }

    /// The invitee at `uri` with its scheduled event, as a webhook's payload carries it.
    async fn invitee(&self, uri: &str) -> Value {
        let mut invitee = self.get(uri).await;
        let event = invitee["event"]
            .as_str()
            .expect("the invitee's event")
            .to_owned();
        invitee["scheduled_event"] = self.get(&event).await;
        invitee
    }

    /// Delivers a signed webhook `kind` with `payload` to core, as Calendly does.
    async fn deliver(&self, kind: &str, payload: &Value) {
        let body = serde_json::to_vec(&json!({
            "event": kind,
            "created_at": Utc::now().to_rfc3339(),
            "created_by": "https://api.calendly.com/users/SANDBOX",
            "payload": payload,
        }))
        .expect("json");
        let signature = signatures::calendly::sign_header(
            self.config().webhook_signing_key.expose(),
            &body,
            Utc::now().timestamp(),
        );
        let resp = self
            .http
            .post(
                self.clinic
                    .core
                    .join(&format!("v1/webhooks/calendly/{TENANT}"))
                    .expect("url"),
            )
            .header(signatures::calendly::HEADER, signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("webhook");
        assert_eq!(resp.status().as_u16(), 200, "core took the {kind}");
    }
}

/// The sandbox answer's new invitee after a reschedule at the sandbox's Calendly.
async fn reschedule_at_calendly(c: &Clinic, visit: &Visit, starts_at: &str) -> String {
    let resp = reqwest::Client::new()
        .post(
            c.sandbox
                .join(&format!("/sandbox/bookings/{}/reschedule", visit.booking))
                .expect("url"),
        )
        .json(&json!({"startsAt": starts_at}))
        .send()
        .await
        .expect("sandbox");
    assert_eq!(resp.status().as_u16(), 200, "the sandbox rescheduled");
    let moved: Value = resp.json().await.expect("sandbox json");
    moved["inviteeUri"]
        .as_str()
        .expect("new invitee")
        .to_owned()
}

/// `appointment.booked` of the invitee `uri`, however many there are.
async fn booked_as(c: &Clinic, uri: &str) -> Vec<Value> {
    c.events("appointment.booked")
        .await
        .into_iter()
        .filter(|e| e["payload"]["appointment"]["externalId"] == uri)
        .collect()
}

both_engines!(
    a_patient_who_missed_a_visit_rebooks_through_the_recovery_text_and_is_booked_again,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        let visit = c
            .book(&Booking::new("Ada Lovelace", ADA, THURSDAY_10AM))
            .await;
        // The visit passes; the clinic marks the no-show at Calendly; the recovery text goes
        // out with the visit's own reschedule link (the clinic has no booking page of its own).
        c.set_clock("2030-04-04T14:45:00Z").await;
        c.no_show_at_calendly(&visit).await;
        c.settle().await;
        let texts = c.texts(ADA).await;
        let recovery = texts.last().expect("the recovery text");
        assert!(
            recovery.contains(&visit.reschedule_url()),
            "the link to book again: {recovery}"
        );
        let page = reqwest::get(visit.reschedule_url()).await.expect("page");
        assert_eq!(
            page.status().as_u16(),
            200,
            "the link opens Calendly's page"
        );

        // The patient picks next Thursday on that page.
        let invitee = reschedule_at_calendly(&c, &visit, NEXT_THURSDAY_10AM).await;
        let booked = c
            .wait_for_event("appointment.booked", |e| {
                e["payload"]["appointment"]["externalId"] == invitee.as_str()
            })
            .await;
        let rebooked = Visit {
            booking: visit.booking.clone(),
            appointment: booked["aggregate"]["id"]
                .as_str()
                .expect("appointment")
                .to_owned(),
            snapshot: booked["payload"]["appointment"].clone(),
        };
        assert_ne!(rebooked.appointment, visit.appointment, "a new visit");
        assert_eq!(
            booked["payload"]["rebookedFrom"],
            visit.appointment.as_str()
        );
        assert_eq!(rebooked.snapshot["startsAt"], NEXT_THURSDAY_10AM);
        assert_eq!(
            rebooked.snapshot["customerId"], visit.snapshot["customerId"],
            "the same patient"
        );
        assert_eq!(
            c.status(&visit).await,
            "no_show",
            "the missed visit stays missed"
        );
        assert!(
            c.events_of(&visit.appointment, "appointment.rescheduled")
                .await
                .is_empty()
        );
        assert_eq!(
            c.events_of(&rebooked.appointment, "reminder.scheduled")
                .await
                .len(),
            2
        );

        // Calendly delivers both halves again: nothing changes.
        let calendly = Calendly::new(&c);
        let created = calendly.invitee(&invitee).await;
        let old = created["old_invitee"]
            .as_str()
            .expect("old_invitee")
            .to_owned();
        let cancelled = calendly.invitee(&old).await;
        assert_eq!(cancelled["rescheduled"], true);
        let before = c.events("appointment.booked").await.len();
        futures::future::join_all([
            calendly.deliver("invitee.created", &created),
            calendly.deliver("invitee.canceled", &cancelled),
            calendly.deliver("invitee.created", &created),
        ])
        .await;
        c.settle().await;
        assert_eq!(c.events("appointment.booked").await.len(), before);
        assert_eq!(booked_as(&c, &invitee).await.len(), 1);
        assert!(c.events("appointment.cancelled").await.is_empty());

        // Tuesday 10:00: the new visit's 48 h reminder.
        c.set_clock("2030-04-09T14:01:00Z").await;
        let texts = c.texts(ADA).await;
        assert!(
            texts
                .iter()
                .any(|t| t.contains("Hi Ada, see you Thu, Apr 11 at 10:00 AM")),
            "{texts:?}"
        );
        // The visit passes and completes: the metrics count it recovered.
        c.set_clock("2030-04-11T17:00:00Z").await;
        assert_eq!(c.status(&rebooked).await, "completed");
        let m = c.metrics().await;
        assert_eq!(m["appointmentsBooked"], 2, "{m}");
        assert_eq!(
            (&m["completed"], &m["noShows"]),
            (&json!(1), &json!(1)),
            "{m}"
        );
        assert_eq!(m["recoveredVisits"], 1, "{m}");
        c.stop().await;
    }
);

both_engines!(
    a_rebooking_whose_created_half_arrives_first_is_booked_once_with_a_deposit_link,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        // Two missed visits on Monday: the next booking asks for a deposit.
        let mut missed = Vec::new();
        for (starts, after) in [
            ("2030-04-01T15:00:00Z", "2030-04-01T16:00:00Z"),
            ("2030-04-01T17:00:00Z", "2030-04-01T18:00:00Z"),
        ] {
            let visit = c.book(&Booking::new("Lee Park", LEE, starts)).await;
            c.set_clock(after).await;
            c.no_show_at_calendly(&visit).await;
            c.settle().await;
            missed.push(visit);
        }
        let last = missed.last().expect("a missed visit");

        // Calendly reschedules the last one, its webhooks arriving created half first, each
        // delivered three times at once.
        let calendly = Calendly::new(&c);
        let old_uri = last.snapshot["externalId"]
            .as_str()
            .expect("invitee")
            .to_owned();
        let old = calendly.invitee(&old_uri).await;
        let event_uri = format!("{}-moved", old["event"].as_str().expect("event"));
        let new_uri = format!("{event_uri}/invitees/MOVED");
        let mut created = old.clone();
        created["uri"] = json!(new_uri);
        created["event"] = json!(event_uri);
        created["old_invitee"] = json!(old_uri);
        created["no_show"] = Value::Null;
        created["scheduled_event"]["uri"] = json!(event_uri);
        created["scheduled_event"]["start_time"] = json!("2030-04-08T14:00:00.000000Z");
        created["scheduled_event"]["end_time"] = json!("2030-04-08T14:30:00.000000Z");
        let mut cancelled = old.clone();
        cancelled["status"] = json!("canceled");
        cancelled["rescheduled"] = json!(true);
        cancelled["new_invitee"] = json!(new_uri);
        futures::future::join_all((0..3).map(|_| calendly.deliver("invitee.created", &created)))
            .await;
        futures::future::join_all((0..3).map(|_| calendly.deliver("invitee.canceled", &cancelled)))
            .await;
        c.settle().await;

        let booked = booked_as(&c, &new_uri).await;
        assert_eq!(booked.len(), 1, "{booked:?}");
        let rebooked = booked[0]["aggregate"]["id"].as_str().expect("id");
        assert_eq!(
            booked[0]["payload"]["rebookedFrom"],
            last.appointment.as_str()
        );
        for visit in &missed {
            assert_eq!(c.status(visit).await, "no_show");
        }
        assert!(c.events("appointment.cancelled").await.is_empty());
        assert!(c.events("appointment.rescheduled").await.is_empty());
        let links = c.events_of(rebooked, "payment.link_created").await;
        assert_eq!(links.len(), 1, "a deposit link for the new visit");
        assert_eq!(c.payment_links().await.len(), 1);
        c.stop().await;
    }
);
