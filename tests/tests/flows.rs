//! The MVP flows end to end (issue 5): what a clinic buys, played the way `aro up` runs it —
//! core-engine on SQLite or PostgreSQL, the provider sandbox, openclaw-executor and the
//! healthcare BFF with the real profile pack — on the virtual business clock.
//!
//! Each test books through the sandbox's Calendly, moves business time with
//! `POST /v1/admin/clock` (which answers once the work it caused has settled), texts back from
//! the sandbox phone, and checks what the patient's and the clinic's phones received and what
//! core's event log says. The engine-level versions of most flows are in
//! crates/workflow/tests/flows.rs; these add the real wire in between: signed webhooks, the
//! executor's claims, Twilio's opt-out handling, status callbacks, Stripe links, the LLM.
//!
//! Dates are in 2030. The clinic ("Demo Clinic", `aro up`'s tenant) is in America/New_York; a
//! reminder due at 10:00 in New York in April is 14:00Z. The server's own zone is never read:
//! every time is UTC until it is shown to a patient in theirs.

mod flows {
    pub mod clinic;
    pub mod fake_llm;
}

use aro_domain::tenant::ClassificationResidency;
use aro_tests::both_engines;
use chrono::{DateTime, Duration, Timelike, Utc};
use chrono_tz::Tz;
use flows::clinic::*;
use flows::fake_llm::{Answer, FakeLlm};
use serde_json::json;

/// Monday 1 April 2030, 09:00 in New York.
const MONDAY_9AM: &str = "2030-04-01T13:00:00Z";
/// Thursday 4 April 2030, 10:00 in New York: the visit most tests book.
const THURSDAY_10AM: &str = "2030-04-04T14:00:00Z";
const ADA: &str = "+14155552671";
const GRACE: &str = "+14155552672";

fn zone(name: &str) -> Tz {
    name.parse().expect("zone")
}

/// Whether `t` falls inside 08:00–21:00 in `tz` (a timer fires a few real milliseconds after
/// its due time, so 21:00 means the minute of 21:00).
fn inside_window(t: DateTime<Utc>, tz: Tz) -> bool {
    let local = t.with_timezone(&tz);
    (8..21).contains(&local.hour()) || (local.hour() == 21 && local.minute() == 0)
}

fn local(t: DateTime<Utc>, tz: &str) -> String {
    t.with_timezone(&zone(tz)).format("%a %H:%M %Z").to_string()
}

// ----- reminders and replies -----

both_engines!(
    a_patient_who_replies_c_to_the_48h_text_is_confirmed_and_gets_no_24h_text,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        let visit = c
            .book(&Booking::new("Ada Lovelace", ADA, THURSDAY_10AM))
            .await;
        c.set_clock("2030-04-02T13:59:00Z").await;
        assert!(c.texts(ADA).await.is_empty(), "nothing before 48 h");
        c.set_clock("2030-04-02T14:01:00Z").await;
        assert_eq!(
            c.texts(ADA).await,
            [
                "Demo Clinic: Hi Ada, see you Thu, Apr 4 at 10:00 AM. Reply C to confirm, R to reschedule, N to cancel. STOP to opt out"
            ]
        );
        c.reply(ADA, "C").await;
        let texts = c.wait_for_texts(ADA, 2).await;
        assert_eq!(
            texts[1],
            "Demo Clinic: thanks Ada, you're confirmed for Thu, Apr 4 at 10:00 AM. See you then! STOP to opt out"
        );
        assert_eq!(c.status(&visit).await, "confirmed");
        let confirmed = c
            .events_of(&visit.appointment, "appointment.confirmed")
            .await;
        assert_eq!(confirmed[0]["payload"]["via"], "reply");

        // The 24 h reminder's time passes in silence.
        c.set_clock("2030-04-03T15:00:00Z").await;
        assert_eq!(
            c.texts(ADA).await.len(),
            2,
            "no 24 h text after a confirmation"
        );
        assert!(
            c.skipped(&visit)
                .await
                .contains(&("reminder_24h".into(), "confirmed".into()))
        );
        c.stop().await;
    }
);

both_engines!(
    a_reply_is_answered_at_its_own_time_even_when_the_clock_moves_on_at_once,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        let visit = c
            .book(&Booking::new("Ada Lovelace", ADA, THURSDAY_10AM))
            .await;
        c.set_clock("2030-04-02T14:01:00Z").await;
        c.reply(ADA, "C").await;
        // No waiting for the answer: business time jumps a day at once. The answer to the
        // reply still leaves at the moment of the reply, before anything later.
        c.set_clock("2030-04-03T13:00:00Z").await;
        let sent: Vec<_> = c
            .events_of(&visit.appointment, "message.sent")
            .await
            .into_iter()
            .map(|e| {
                (
                    e["payload"]["purpose"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    e["occurredAt"].as_str().unwrap_or_default()[..16].to_owned(),
                )
            })
            .collect();
        assert_eq!(
            sent,
            [
                ("reminder_48h".to_owned(), "2030-04-02T14:00".to_owned()),
                (
                    "confirm_ack_answer".to_owned(),
                    "2030-04-02T14:01".to_owned()
                ),
            ],
            "the acknowledgement went out when the patient replied"
        );
        c.stop().await;
    }
);

both_engines!(
    silence_after_both_reminders_reaches_the_clinic_phone_as_one_digest,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        let visit = c
            .book(&Booking::new("Ada Lovelace", ADA, THURSDAY_10AM))
            .await;
        c.set_clock("2030-04-02T14:01:00Z").await;
        assert_eq!(c.texts(ADA).await.len(), 1);
        c.set_clock("2030-04-03T14:01:00Z").await;
        let texts = c.texts(ADA).await;
        assert_eq!(
            texts[1],
            "Demo Clinic: your visit is Thu, Apr 4 at 10:00 AM. Please reply now: C to confirm, R to reschedule, N to cancel. STOP to opt out"
        );
        assert!(c.texts(CLINIC_PHONE).await.is_empty());
        // Two hours of silence open an escalation; the digest follows 30 minutes later.
        c.set_clock("2030-04-03T16:45:00Z").await;
        assert_eq!(c.escalation_reasons().await, ["no_reply"]);
        let digest = c.texts(CLINIC_PHONE).await;
        assert_eq!(
            digest,
            ["ARO: 1 item needs staff: 1 unanswered reminder. See the staff view."],
            "one text, counts and reasons only"
        );
        assert!(!digest[0].contains("Ada") && !digest[0].contains("2671"));
        assert_eq!(c.status(&visit).await, "booked");
        assert_eq!(
            c.texts(ADA).await.len(),
            2,
            "the patient is not texted a third time"
        );
        c.stop().await;
    }
);

both_engines!(
    n_gets_the_booking_s_cancel_link_and_r_its_reschedule_link_but_aro_cancels_nothing,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        let ada = c
            .book(&Booking::new("Ada Lovelace", ADA, THURSDAY_10AM))
            .await;
        let grace = c
            .book(&Booking::new("Grace Hopper", GRACE, THURSDAY_10AM))
            .await;
        c.set_clock("2030-04-02T14:01:00Z").await;

        c.reply(ADA, "N").await;
        let texts = c.wait_for_texts(ADA, 2).await;
        assert!(
            texts[1].starts_with("Demo Clinic: ") && texts[1].contains(&ada.cancel_url()),
            "the booking's own cancel link: {texts:?}"
        );
        assert_eq!(c.status(&ada).await, "cancel_requested");

        c.reply(GRACE, "r").await;
        let texts = c.wait_for_texts(GRACE, 2).await;
        assert!(
            texts[1].contains(&grace.reschedule_url()),
            "the booking's reschedule link: {texts:?}"
        );
        assert_eq!(c.status(&grace).await, "booked");

        c.settle().await;
        let mut reasons = c.escalation_reasons().await;
        reasons.sort();
        assert_eq!(reasons, ["cancel_request", "reschedule_request"]);
        assert!(
            c.events("appointment.cancelled").await.is_empty(),
            "only the patient (at Calendly) or staff cancel"
        );
        c.stop().await;
    }
);

// ----- consent -----

both_engines!(
    stop_draws_one_confirmation_and_silences_even_queued_reminders_until_start,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        let visit = c
            .book(&Booking::new("Ada Lovelace", ADA, THURSDAY_10AM))
            .await;
        // The 48 h reminder is queued while no executor is running, so it is still waiting
        // when STOP arrives.
        c.pause_executor().await;
        c.set_clock("2030-04-02T14:01:00Z").await;
        assert_eq!(c.queued(&visit).await.len(), 1, "the reminder is queued");
        assert!(c.texts(ADA).await.is_empty());

        // Twilio's default opt-out handling answers STOP itself (the sandbox's default, as
        // Twilio's), and the pack says so: ARO adds no second confirmation.
        let answer = c.reply(ADA, "STOP").await;
        assert!(answer["autoReply"].is_string(), "{answer}");
        c.start_executor().await;
        c.settle().await;
        let phone = c.phone(ADA).await;
        assert_eq!(phone.len(), 1, "exactly one confirmation: {phone:?}");
        assert!(!phone[0].sent_by_aro(), "Twilio's own: {phone:?}");
        assert!(phone[0].body.contains("unsubscribed"));
        assert_eq!(c.events("consent.revoked").await.len(), 1);
        assert!(
            c.events("message.delivery_failed").await.is_empty(),
            "ARO did not try a confirmation Twilio would refuse"
        );
        assert!(
            c.events_of(&visit.appointment, "message.sent")
                .await
                .is_empty(),
            "the queued reminder was withdrawn, never sent"
        );

        c.set_clock("2030-04-03T14:01:00Z").await;
        assert_eq!(c.phone(ADA).await.len(), 1, "silence after STOP");
        assert!(
            c.skipped(&visit)
                .await
                .contains(&("reminder_24h".into(), "no_consent".into()))
        );

        // START: Twilio lifts its block and answers; texts resume for the next visit.
        let answer = c.reply(ADA, "START").await;
        assert!(answer["autoReply"].is_string(), "{answer}");
        c.settle().await;
        let phone = c.phone(ADA).await;
        assert_eq!(phone.len(), 2, "one resubscription notice: {phone:?}");
        assert!(!phone[1].sent_by_aro());
        let granted = c.events("consent.granted").await;
        let sources: Vec<_> = granted
            .iter()
            .map(|e| e["payload"]["source"].clone())
            .collect();
        assert_eq!(sources, [json!("booking"), json!("reply")]);
        c.book(&Booking::new("Ada Lovelace", ADA, "2030-04-08T14:00:00Z"))
            .await;
        c.set_clock("2030-04-06T14:01:00Z").await;
        let phone = c.phone(ADA).await;
        assert!(
            phone[2..]
                .iter()
                .any(|t| t.sent_by_aro() && t.body.contains("Hi Ada, see you Mon, Apr 8")),
            "{phone:?}"
        );
        c.stop().await;
    }
);

both_engines!(
    without_twilio_s_opt_out_handling_aro_confirms_stop_and_start_itself,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        c.twilio_opt_out_handling(false).await;
        c.set_policy("providerSendsOptOutConfirmation", json!(false))
            .await;
        let visit = c
            .book(&Booking::new("Ada Lovelace", ADA, THURSDAY_10AM))
            .await;
        c.set_clock("2030-04-02T14:01:00Z").await;
        assert_eq!(c.texts(ADA).await.len(), 1);

        let answer = c.reply(ADA, "stop").await;
        assert!(
            answer["autoReply"].is_null(),
            "Twilio stays silent: {answer}"
        );
        c.settle().await;
        let phone = c.phone(ADA).await;
        assert_eq!(phone.len(), 2, "exactly one confirmation: {phone:?}");
        assert!(phone[1].sent_by_aro());
        assert_eq!(
            phone[1].body,
            "Demo Clinic: you're unsubscribed and will get no more texts from us. Reply START to resubscribe."
        );
        c.set_clock("2030-04-03T14:01:00Z").await;
        assert_eq!(c.phone(ADA).await.len(), 2, "silence after STOP");
        assert!(
            c.skipped(&visit)
                .await
                .contains(&("reminder_24h".into(), "no_consent".into()))
        );

        c.reply(ADA, "START").await;
        c.settle().await;
        let phone = c.phone(ADA).await;
        assert_eq!(phone.len(), 3, "{phone:?}");
        assert_eq!(
            phone[2].body,
            "Demo Clinic: you're subscribed to appointment texts again. Reply STOP to opt out."
        );
        c.stop().await;
    }
);

both_engines!(
    a_free_text_opt_out_is_confirmed_by_aro_because_twilio_only_answers_keywords,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        c.book(&Booking::new("Ada Lovelace", ADA, THURSDAY_10AM))
            .await;
        c.set_clock("2030-04-02T14:01:00Z").await;

        // Twilio handles only whole-message keywords: "please stop texting me" passes it by, so
        // the one confirmation must be ARO's although the tenant's Twilio answers STOP itself.
        let answer = c.reply(ADA, "please stop texting me").await;
        assert!(answer["autoReply"].is_null(), "{answer}");
        c.settle().await;
        let phone = c.phone(ADA).await;
        assert_eq!(phone.len(), 2, "exactly one confirmation: {phone:?}");
        assert!(phone[1].sent_by_aro() && phone[1].body.contains("unsubscribed"));

        // Twilio never blocked the number, so it does not answer START either: ARO does.
        let answer = c.reply(ADA, "START").await;
        assert!(answer["autoReply"].is_null(), "{answer}");
        c.settle().await;
        let phone = c.phone(ADA).await;
        assert_eq!(
            phone.len(),
            3,
            "exactly one resubscription notice: {phone:?}"
        );
        assert!(
            phone[2].sent_by_aro() && phone[2].body.contains("subscribed to appointment texts")
        );
        c.stop().await;
    }
);

// ----- reschedules and cancellations -----

both_engines!(
    a_reschedule_moves_the_reminders_and_a_cancellation_removes_them,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        let ada = c
            .book(&Booking::new("Ada Lovelace", ADA, THURSDAY_10AM))
            .await;
        let grace = c
            .book(&Booking::new("Grace Hopper", GRACE, THURSDAY_10AM))
            .await;
        // Ada moves to Saturday 10:00; Grace cancels.
        c.reschedule(&ada, "2030-04-06T14:00:00Z").await;
        c.cancel_at_calendly(&grace).await;

        c.set_clock("2030-04-04T13:59:00Z").await;
        assert!(
            c.texts(ADA).await.is_empty(),
            "the old visit's reminders went with it"
        );
        c.set_clock("2030-04-04T14:01:00Z").await;
        let texts = c.texts(ADA).await;
        assert_eq!(texts.len(), 1, "{texts:?}");
        assert!(texts[0].contains("Sat, Apr 6 at 10:00 AM"), "{texts:?}");
        c.set_clock("2030-04-05T14:01:00Z").await;
        assert_eq!(
            c.texts(ADA).await.len(),
            2,
            "the 24 h text, relative to Saturday"
        );

        c.set_clock("2030-04-07T12:00:00Z").await;
        assert!(
            c.texts(GRACE).await.is_empty(),
            "a cancelled visit is never texted"
        );
        assert_eq!(c.status(&grace).await, "cancelled");
        assert!(c.queued(&grace).await.is_empty());
        c.stop().await;
    }
);

// ----- the send window, time zones and DST -----

both_engines!(
    a_patient_in_los_angeles_is_texted_the_evening_before_an_early_visit_never_at_night,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        // Thursday 07:00 in Los Angeles (10:00 in the clinic's New York, 14:00Z on the server).
        let visit = c
            .book(
                &Booking::new("Ada Lovelace", ADA, "2030-04-04T14:00:00Z")
                    .in_zone("America/Los_Angeles"),
            )
            .await;
        // 48 h before is 07:00 Tuesday in LA: too early, so 21:00 Monday LA (04:00Z, already
        // midnight in New York) — the patient's zone decides.
        c.set_clock("2030-04-02T03:59:00Z").await;
        assert!(c.texts(ADA).await.is_empty());
        c.set_clock("2030-04-02T04:01:00Z").await;
        let texts = c.texts(ADA).await;
        assert_eq!(texts.len(), 1);
        assert!(
            texts[0].contains("Thu, Apr 4 at 7:00 AM"),
            "in the patient's zone: {texts:?}"
        );
        c.set_clock("2030-04-04T13:00:00Z").await;
        assert_eq!(c.texts(ADA).await.len(), 2);
        let sent = c.queued(&visit).await;
        let when: Vec<String> = sent
            .iter()
            .map(|(_, t)| local(*t, "America/Los_Angeles"))
            .collect();
        assert_eq!(when, ["Mon 21:00 PDT", "Tue 21:00 PDT"]);
        let la = zone("America/Los_Angeles");
        assert!(sent.iter().all(|(_, t)| inside_window(*t, la)), "{when:?}");
        c.stop().await;
    }
);

both_engines!(
    reminders_land_inside_the_window_at_the_right_hours_on_the_spring_forward_night,
    |db| async move {
        let Some(c) = Clinic::start(db, "2030-03-07T14:00:00Z").await else {
            return;
        };
        // New York springs forward on Sunday 2030-03-10 at 02:00. A visit Monday 08:00 EDT
        // (12:00Z): 48 h before is Saturday 07:00 EST (outside: Friday 21:00 EST instead); 24 h
        // before is Sunday 08:00 EDT — 12:00Z, not 13:00Z as a fixed EST offset would say.
        let visit = c
            .book(&Booking::new("Ada Lovelace", ADA, "2030-03-11T12:00:00Z"))
            .await;
        c.set_clock("2030-03-09T01:59:00Z").await;
        assert!(c.texts(ADA).await.is_empty());
        c.set_clock("2030-03-09T02:01:00Z").await;
        let texts = c.texts(ADA).await;
        assert_eq!(texts.len(), 1);
        assert!(texts[0].contains("Mon, Mar 11 at 8:00 AM"), "{texts:?}");
        c.set_clock("2030-03-10T11:59:00Z").await;
        assert_eq!(c.texts(ADA).await.len(), 1, "not before 08:00 EDT");
        c.set_clock("2030-03-10T12:01:00Z").await;
        assert_eq!(c.texts(ADA).await.len(), 2);
        let sent = c.queued(&visit).await;
        let when: Vec<String> = sent
            .iter()
            .map(|(_, t)| local(*t, "America/New_York"))
            .collect();
        assert_eq!(when, ["Fri 21:00 EST", "Sun 08:00 EDT"]);
        c.stop().await;
    }
);

both_engines!(
    reminders_land_inside_the_window_at_the_right_hours_on_the_fall_back_night,
    |db| async move {
        let Some(c) = Clinic::start(db, "2030-10-31T14:00:00Z").await else {
            return;
        };
        // New York falls back on Sunday 2030-11-03 at 02:00. A visit Monday 07:30 EST (12:30Z):
        // 48 h before is Saturday 08:30 EDT (inside); 24 h before is Sunday 07:30 EST (outside,
        // though a fixed EDT offset would call it 08:30), so it moves to Saturday 21:00 EDT.
        let visit = c
            .book(&Booking::new("Ada Lovelace", ADA, "2030-11-04T12:30:00Z"))
            .await;
        c.set_clock("2030-11-02T12:29:00Z").await;
        assert!(c.texts(ADA).await.is_empty());
        c.set_clock("2030-11-02T12:31:00Z").await;
        let texts = c.texts(ADA).await;
        assert_eq!(texts.len(), 1);
        assert!(texts[0].contains("Mon, Nov 4 at 7:30 AM"), "{texts:?}");
        c.set_clock("2030-11-03T00:59:00Z").await;
        assert_eq!(c.texts(ADA).await.len(), 1);
        c.set_clock("2030-11-03T01:01:00Z").await;
        assert_eq!(c.texts(ADA).await.len(), 2);
        c.set_clock("2030-11-04T12:00:00Z").await;
        let sent = c.queued(&visit).await;
        let when: Vec<String> = sent
            .iter()
            .map(|(_, t)| local(*t, "America/New_York"))
            .collect();
        assert_eq!(when, ["Sat 08:30 EDT", "Sat 21:00 EDT"]);
        let ny = zone("America/New_York");
        assert!(sent.iter().all(|(_, t)| inside_window(*t, ny)));
        c.stop().await;
    }
);

// ----- the message cap -----

both_engines!(
    a_fourth_text_in_24_hours_is_refused_and_logged_but_an_answer_still_goes,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        // Four visits on Thursday for one patient: four 48 h reminders on Tuesday, an hour apart.
        let mut visits = Vec::new();
        for starts in [
            "2030-04-04T14:00:00Z",
            "2030-04-04T15:00:00Z",
            "2030-04-04T16:00:00Z",
            "2030-04-04T17:00:00Z",
        ] {
            visits.push(c.book(&Booking::new("Ada Lovelace", ADA, starts)).await);
        }
        c.set_clock("2030-04-02T17:30:00Z").await;
        let texts = c.texts(ADA).await;
        assert_eq!(texts.len(), 3, "three per rolling 24 h: {texts:?}");
        assert_eq!(
            c.skipped(&visits[3]).await,
            [("reminder_48h".to_owned(), "message_cap".to_owned())],
            "the fourth is refused and logged with its reason"
        );
        // An answer to the patient's own text is not counted.
        c.reply(ADA, "C").await;
        let texts = c.wait_for_texts(ADA, 4).await;
        assert!(
            texts[3].contains("you're confirmed for Thu, Apr 4 at 10:00 AM"),
            "{texts:?}"
        );
        assert_eq!(c.status(&visits[0]).await, "confirmed");
        c.stop().await;
    }
);

// ----- after the visit -----

both_engines!(
    a_completed_visit_gets_the_review_link_six_hours_later_inside_the_window,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        // Ada's visit ends 10:30 and completes automatically at 12:30: review at 18:30.
        let ada = c
            .book(&Booking::new("Ada Lovelace", ADA, THURSDAY_10AM))
            .await;
        // Grace's ends 14:30, completes 16:30: 22:30 is too late, so 08:00 Friday.
        let grace = c
            .book(&Booking::new("Grace Hopper", GRACE, "2030-04-04T18:00:00Z"))
            .await;
        c.set_clock("2030-04-02T14:01:00Z").await;
        c.reply(ADA, "C").await;
        c.set_clock("2030-04-04T22:29:00Z").await;
        assert_eq!(c.status(&ada).await, "completed");
        assert_eq!(c.status(&grace).await, "completed");
        let review = |texts: &[String]| texts.iter().filter(|t| t.contains(REVIEW_LINK)).count();
        assert_eq!(review(&c.texts(ADA).await), 0, "not before six hours");
        c.set_clock("2030-04-04T22:31:00Z").await;
        let texts = c.texts(ADA).await;
        assert_eq!(review(&texts), 1, "{texts:?}");
        assert_eq!(
            texts.last().map(String::as_str),
            Some(
                "Demo Clinic: thanks for visiting! We'd love your review: https://example.org/review-us STOP to opt out"
            )
        );
        assert_eq!(review(&c.texts(GRACE).await), 0, "not at night");
        c.set_clock("2030-04-05T11:59:00Z").await;
        assert_eq!(review(&c.texts(GRACE).await), 0);
        c.set_clock("2030-04-05T12:01:00Z").await;
        assert_eq!(review(&c.texts(GRACE).await), 1);

        let ny = zone("America/New_York");
        for visit in [&ada, &grace] {
            let completed = parse_time(
                c.events_of(&visit.appointment, "appointment.completed")
                    .await[0]["occurredAt"]
                    .as_str()
                    .expect("occurredAt"),
            );
            let requested = parse_time(
                c.events_of(&visit.appointment, "review.requested").await[0]["occurredAt"]
                    .as_str()
                    .expect("occurredAt"),
            );
            assert!(requested >= completed + Duration::hours(6));
            assert!(
                inside_window(requested, ny),
                "{}",
                local(requested, "America/New_York")
            );
        }
        c.stop().await;
    }
);

both_engines!(
    a_no_show_marked_after_the_automatic_completion_gets_a_recovery_text_instead_of_a_review,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        let visit = c
            .book(&Booking::new("Ada Lovelace", ADA, THURSDAY_10AM))
            .await;
        c.set_clock("2030-04-02T14:01:00Z").await;
        c.reply(ADA, "C").await;
        c.set_clock("2030-04-04T17:00:00Z").await;
        assert_eq!(
            c.status(&visit).await,
            "completed",
            "automatically, 2 h after the end"
        );
        let before = c.texts(ADA).await.len();

        // Staff: the patient never came.
        c.staff("appointment.mark_no_show", &visit).await;
        c.settle().await;
        assert_eq!(c.status(&visit).await, "no_show");
        let texts = c.texts(ADA).await;
        assert_eq!(texts.len(), before + 1, "{texts:?}");
        let recovery = texts.last().expect("recovery");
        assert!(
            recovery.starts_with("Demo Clinic: ") && recovery.contains(&visit.reschedule_url()),
            "a link to book again: {recovery}"
        );
        let risk = c.events("customer.risk_updated").await;
        assert_eq!(risk.len(), 1, "{risk:?}");

        // The review's time passes: nothing.
        c.set_clock("2030-04-05T16:00:00Z").await;
        assert_eq!(c.texts(ADA).await.len(), before + 1);
        assert!(c.events("review.requested").await.is_empty());
        c.stop().await;
    }
);

// ----- risk and deposits -----

/// Two visits on Monday, both missed (marked at Calendly); returns after both are recorded.
async fn two_no_shows(c: &Clinic, phone: &'static str) {
    for (starts, after) in [
        ("2030-04-01T15:00:00Z", "2030-04-01T16:00:00Z"),
        ("2030-04-01T17:00:00Z", "2030-04-01T18:00:00Z"),
    ] {
        let visit = c.book(&Booking::new("Lee Park", phone, starts)).await;
        c.set_clock(after).await;
        c.no_show_at_calendly(&visit).await;
        c.settle().await;
    }
}

both_engines!(
    a_patient_with_two_no_shows_gets_a_deposit_link_a_nudge_and_then_staff_are_told,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        const LEE: &str = "+14155552673";
        two_no_shows(&c, LEE).await;
        assert_eq!(c.texts(LEE).await.len(), 2, "two recovery texts");
        // The next booking (Sunday 10:00) asks Stripe for a link at once...
        let visit = c
            .book(&Booking::new("Lee Park", LEE, "2030-04-07T14:00:00Z"))
            .await;
        c.settle().await;
        let created = c
            .events_of(&visit.appointment, "payment.link_created")
            .await;
        assert_eq!(created.len(), 1);
        assert_eq!(created[0]["payload"]["amountMinor"], 2500);
        let links = c.payment_links().await;
        assert_eq!(links.len(), 1);
        assert_eq!(links[0]["status"], "open");
        let url = links[0]["url"].as_str().expect("url").to_owned();
        assert!(
            url.starts_with(c.sandbox.as_str()),
            "a Stripe link at the sandbox: {url}"
        );
        assert_eq!(
            c.texts(LEE).await.len(),
            2,
            "...but texts it with the first reminder"
        );

        // Friday 10:00: the 48 h reminder, and the deposit link with it.
        c.set_clock("2030-04-05T14:01:00Z").await;
        let texts = c.texts(LEE).await;
        assert_eq!(texts.len(), 4, "{texts:?}");
        // Queued together, sent concurrently: either may reach the phone first.
        let friday = &texts[2..];
        assert!(
            friday.iter().any(|t| t.starts_with("Demo Clinic: Hi Lee")),
            "{texts:?}"
        );
        assert!(
            friday
                .iter()
                .any(|t| t.contains("deposit is requested") && t.contains(&url)),
            "{texts:?}"
        );
        c.reply(LEE, "C").await;
        c.wait_for_texts(LEE, 5).await;

        // A day later, unpaid: one nudge.
        c.set_clock("2030-04-06T14:01:00Z").await;
        let texts = c.texts(LEE).await;
        assert_eq!(texts.len(), 6, "{texts:?}");
        assert!(texts[5].contains("still open") && texts[5].contains(&url));
        // Twelve hours later staff are told; the digest waits for the morning.
        c.set_clock("2030-04-07T12:01:00Z").await;
        assert!(
            c.escalation_reasons()
                .await
                .contains(&"deposit_unpaid".to_owned())
        );
        let digest = c.texts(CLINIC_PHONE).await;
        assert_eq!(digest.len(), 1, "{digest:?}");
        assert!(digest[0].contains("1 unpaid deposit"), "{digest:?}");

        // Never a charge: the only way to pay is the patient's; nothing was paid; nothing
        // was cancelled.
        assert!(c.events("payment.completed").await.is_empty());
        assert_eq!(c.payment_links().await[0]["status"], "open");
        assert_eq!(c.status(&visit).await, "confirmed");
        c.stop().await;
    }
);

both_engines!(
    paying_the_deposit_link_records_the_payment_and_stops_the_nudges,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        const LEE: &str = "+14155552673";
        two_no_shows(&c, LEE).await;
        let visit = c
            .book(&Booking::new("Lee Park", LEE, "2030-04-07T14:00:00Z"))
            .await;
        c.set_clock("2030-04-05T14:01:00Z").await;
        assert_eq!(c.texts(LEE).await.len(), 4, "reminder and deposit link");
        let link = c.payment_links().await.remove(0);
        c.pay(link["id"].as_str().expect("link id")).await;
        let paid = c
            .wait_for_event("payment.completed", |e| {
                e["aggregate"]["id"] == visit.appointment.as_str()
            })
            .await;
        assert_eq!(paid["payload"]["amountMinor"], 2500);
        assert_eq!(paid["payload"]["currency"], "USD");
        assert_eq!(c.payment_links().await[0]["status"], "paid");

        c.set_clock("2030-04-07T13:00:00Z").await;
        let texts = c.texts(LEE).await;
        assert!(
            !texts.iter().any(|t| t.contains("still open")),
            "no nudge after paying: {texts:?}"
        );
        assert!(
            !c.escalation_reasons()
                .await
                .contains(&"deposit_unpaid".to_owned())
        );
        c.stop().await;
    }
);

// ----- shared phones -----

both_engines!(
    two_patients_sharing_a_phone_get_their_own_reminders_and_an_ambiguous_reply_goes_to_staff,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        let ada = c
            .book(&Booking::new("Ada Lovelace", ADA, THURSDAY_10AM))
            .await;
        let byron = c
            .book(&Booking::new("Byron Lovelace", ADA, "2030-04-04T15:00:00Z"))
            .await;
        c.set_clock("2030-04-02T15:01:00Z").await;
        let texts = c.texts(ADA).await;
        assert_eq!(texts.len(), 2, "{texts:?}");
        // Both fell due within one move of the clock, so they may arrive in either order.
        assert!(
            texts
                .iter()
                .any(|t| t.contains("Hi Ada, see you Thu, Apr 4 at 10:00 AM")),
            "{texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|t| t.contains("Hi Byron, see you Thu, Apr 4 at 11:00 AM")),
            "{texts:?}"
        );

        c.reply(ADA, "C").await;
        c.advance("1h").await;
        assert_eq!(c.status(&ada).await, "booked", "nobody is guessed");
        assert_eq!(c.status(&byron).await, "booked");
        assert_eq!(c.escalation_reasons().await, ["ambiguous_sender"]);
        assert_eq!(c.texts(ADA).await.len(), 2, "no automated answer");
        assert_eq!(
            c.texts(CLINIC_PHONE).await,
            ["ARO: 1 item needs staff: 1 reply from a shared phone. See the staff view."]
        );
        c.stop().await;
    }
);

// ----- the LLM path -----

/// The model's script: a confident reading, a malformed answer, low confidence, a timeout.
fn llm_script() -> Vec<(&'static str, Answer)> {
    vec![
        (
            "maybe i can come",
            Answer::Label {
                intent: "confirm",
                confidence: 0.93,
                language: "en",
            },
        ),
        ("perhaps, we will see", Answer::Malformed),
        (
            "dunno honestly",
            Answer::Label {
                intent: "confirm",
                confidence: 0.4,
                language: "en",
            },
        ),
        (
            "possibly, depends on work",
            Answer::Slow(std::time::Duration::from_millis(2500)),
        ),
    ]
}

/// Books one visit per patient and sends each their 48 h reminder.
async fn reminded(c: &Clinic, patients: &[(&'static str, &'static str)]) -> Vec<Visit> {
    let mut visits = Vec::new();
    for (name, phone) in patients {
        visits.push(c.book(&Booking::new(name, phone, THURSDAY_10AM)).await);
    }
    c.set_clock("2030-04-02T14:01:00Z").await;
    visits
}

/// The rules' reading of the visit's replies, then the model's.
async fn readings(c: &Clinic, visit: &Visit) -> Vec<(String, f64)> {
    c.events_of(&visit.appointment, "reply.classified")
        .await
        .iter()
        .map(|e| {
            (
                e["payload"]["source"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                e["payload"]["confidence"].as_f64().unwrap_or_default(),
            )
        })
        .collect()
}

async fn escalated_for(c: &Clinic, visit: &Visit, reason: &str) -> bool {
    c.events_of(&visit.appointment, "escalation.opened")
        .await
        .iter()
        .any(|e| e["payload"]["reason"] == reason)
}

/// The four patients of the LLM tests: one the model reads confidently, one it answers
/// malformed, one with low confidence, one too slowly (`llm_script`).
const MALFORMED: &str = "+14155552681";
const LOW: &str = "+14155552682";
const SLOW: &str = "+14155552683";

/// A clinic whose replies below the rules' threshold go to a fake model, run where `residency`
/// says, with one reminded visit for each of the four patients (Ada first).
async fn with_llm(
    db: aro_tests::Db,
    residency: ClassificationResidency,
) -> Option<(FakeLlm, Clinic, Vec<Visit>)> {
    let llm = FakeLlm::start(llm_script()).await;
    let setup = Setup {
        llm: Some(llm.base_url.clone()),
        residency,
    };
    let c = Clinic::start_with(db, MONDAY_9AM, setup).await?;
    let visits = reminded(
        &c,
        &[
            ("Ada Lovelace", ADA),
            ("Mal Formed", MALFORMED),
            ("Lo Confidence", LOW),
            ("Slow Model", SLOW),
        ],
    )
    .await;
    Some((llm, c, visits))
}

both_engines!(
    an_unclear_reply_goes_to_the_executor_s_llm_and_only_a_confident_reading_is_acted_on,
    |db| async move {
        let Some((llm, c, visits)) = with_llm(db, ClassificationResidency::OpenclawExecutor).await
        else {
            return;
        };

        // Confident: acted on, with the pack's acknowledgement (never the model's words).
        c.reply(ADA, "maybe i can come").await;
        wait_until("the model's reading is applied", || async {
            c.status(&visits[0]).await == "confirmed"
        })
        .await;
        let texts = c.wait_for_texts(ADA, 2).await;
        assert!(
            texts[1].starts_with("Demo Clinic: thanks Ada, you're confirmed"),
            "{texts:?}"
        );
        let read = readings(&c, &visits[0]).await;
        assert_eq!(read.len(), 2, "{read:?}");
        assert_eq!(read[0].0, "rules");
        assert!(read[0].1 < 0.7, "the rules were unsure: {read:?}");
        assert_eq!(read[1], ("llm".to_owned(), 0.93_f32 as f64));
        let asked = llm.requests_about("maybe i can come");
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0]["temperature"], 0.1);
        assert_eq!(asked[0]["response_format"]["type"], "json_object");

        // A malformed answer, and a confident-sounding but low-confidence one: staff decide.
        c.reply(MALFORMED, "perhaps, we will see").await;
        c.reply(LOW, "dunno honestly").await;
        for visit in &visits[1..3] {
            wait_until("the reply went to staff", || async {
                escalated_for(&c, visit, "unclear_reply").await
            })
            .await;
            assert_eq!(c.status(visit).await, "booked");
        }
        // The model times out (the answer comes after the 1 s timeout) on every attempt.
        c.reply(SLOW, "possibly, depends on work").await;
        wait_until("the timed-out reply went to staff", || async {
            escalated_for(&c, &visits[3], "unclear_reply").await
        })
        .await;
        assert_eq!(c.status(&visits[3]).await, "booked");
        for phrase in ["perhaps", "dunno", "possibly"] {
            assert!(
                !llm.requests_about(phrase).is_empty(),
                "the model was asked: {phrase}"
            );
        }
        for phone in [MALFORMED, LOW, SLOW] {
            assert_eq!(
                c.texts(phone).await.len(),
                1,
                "no automated answer to {phone}"
            );
        }
        c.stop().await;
    }
);

both_engines!(
    core_engine_asks_the_llm_itself_for_a_tenant_whose_classification_runs_in_core,
    |db| async move {
        let Some((llm, c, visits)) = with_llm(db, ClassificationResidency::CoreEngine).await else {
            return;
        };
        c.reply(ADA, "maybe i can come").await;
        wait_until("core's classifier applied the reading", || async {
            c.status(&visits[0]).await == "confirmed"
        })
        .await;
        let texts = c.wait_for_texts(ADA, 2).await;
        assert!(texts[1].starts_with("Demo Clinic: thanks Ada"), "{texts:?}");
        assert_eq!(readings(&c, &visits[0]).await[1].0, "llm");
        assert_eq!(
            llm.requests_about("maybe i can come").len(),
            1,
            "asked once, by core (never also by the executor)"
        );
        for (phone, reply) in [
            (MALFORMED, "perhaps, we will see"),
            (LOW, "dunno honestly"),
            (SLOW, "possibly, depends on work"),
        ] {
            c.reply(phone, reply).await;
        }
        for visit in &visits[1..] {
            wait_until("the reply went to staff", || async {
                escalated_for(&c, visit, "unclear_reply").await
            })
            .await;
            assert_eq!(c.status(visit).await, "booked");
        }
        assert_eq!(
            c.events("execution.dead_lettered").await.len(),
            0,
            "core's own classifier reports failures at once"
        );
        c.stop().await;
    }
);

// ----- Spanish -----

both_engines!(
    a_spanish_booking_gets_spanish_texts_where_si_confirms_and_no_puedo_ir_asks_to_cancel,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        let lucia = c
            .book(&Booking::new("Lucía Méndez", ADA, THURSDAY_10AM).in_language("es"))
            .await;
        let mateo = c
            .book(&Booking::new("Mateo Ruiz", GRACE, THURSDAY_10AM).in_language("es"))
            .await;
        c.set_clock("2030-04-02T14:01:00Z").await;
        assert_eq!(
            c.texts(ADA).await,
            [
                "Demo Clinic: Hola Lucia, su cita: jue 4 abr, 10:00. Responda S para confirmar, R cambiar, N cancelar. STOP para baja"
            ]
        );
        c.reply(ADA, "sí").await;
        let texts = c.wait_for_texts(ADA, 2).await;
        assert_eq!(
            texts[1],
            "Demo Clinic: gracias Lucia, su cita del jue 4 abr a las 10:00 queda confirmada. STOP para baja"
        );
        assert_eq!(c.status(&lucia).await, "confirmed");

        c.reply(GRACE, "no puedo ir").await;
        let texts = c.wait_for_texts(GRACE, 2).await;
        assert!(
            texts[1].starts_with("Demo Clinic: ") && texts[1].contains(&mateo.cancel_url()),
            "{texts:?}"
        );
        assert!(texts[1].contains("cancelar"), "in Spanish: {texts:?}");
        assert_eq!(c.status(&mateo).await, "cancel_requested");
        c.stop().await;
    }
);

// ----- metrics -----

both_engines!(
    metrics_reflect_confirmations_replies_no_shows_and_delivered_texts,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        let _ada = c
            .book(&Booking::new("Ada Lovelace", ADA, THURSDAY_10AM))
            .await;
        let grace = c
            .book(&Booking::new("Grace Hopper", GRACE, THURSDAY_10AM))
            .await;
        c.set_clock("2030-04-02T14:01:00Z").await;
        c.reply(ADA, "C").await;
        // Ada completes automatically; Grace never answers and never comes.
        c.set_clock("2030-04-04T17:00:00Z").await;
        c.no_show_at_calendly(&grace).await;
        c.settle().await;

        // Delivery is the sandbox's status callbacks: wait until every text has them.
        let sent = c.events("message.sent").await.len();
        wait_until("every text is reported delivered", || async {
            c.events("message.delivered").await.len() >= sent
        })
        .await;
        let m = c.metrics().await;
        assert_eq!(m["appointmentsBooked"], 2, "{m}");
        assert_eq!(m["appointmentsReminded"], 2, "{m}");
        assert_eq!(m["confirmed"], 1, "{m}");
        assert_eq!(m["confirmationRate"], 0.5, "{m}");
        assert_eq!(m["responded"], 1, "{m}");
        assert_eq!(m["responseRate"], 0.5, "{m}");
        assert_eq!(m["completed"], 1, "{m}");
        assert_eq!(m["noShows"], 1, "{m}");
        assert_eq!(m["noShowRate"], 0.5, "{m}");
        let texted = c.phone(ADA).await.len()
            + c.phone(GRACE).await.len()
            + c.phone(CLINIC_PHONE).await.len();
        assert_eq!(m["messagesSent"], texted as u64, "every text ARO sent: {m}");
        assert_eq!(m["messagesDelivered"], m["messagesSent"], "{m}");
        for phone in [ADA, GRACE, CLINIC_PHONE] {
            assert!(c.phone(phone).await.iter().all(|t| t.status == "delivered"));
        }
        assert_eq!(m["messagesFailed"], 0, "{m}");
        c.stop().await;
    }
);

both_engines!(
    one_long_clock_jump_still_sends_each_reminder_at_its_own_time,
    |db| async move {
        let Some(c) = Clinic::start(db, MONDAY_9AM).await else {
            return;
        };
        let visit = c
            .book(&Booking::new("Ada Lovelace", ADA, THURSDAY_10AM))
            .await;
        // From Monday to Wednesday evening in one advance: both reminders fall due on the way.
        c.set_clock("2030-04-03T22:00:00Z").await;
        let texts = c.texts(ADA).await;
        assert_eq!(texts.len(), 2, "{texts:?}");
        let sent = c.queued(&visit).await;
        let when: Vec<String> = sent
            .iter()
            .map(|(_, t)| local(*t, "America/New_York"))
            .collect();
        assert_eq!(
            when,
            ["Tue 10:00 EDT", "Wed 10:00 EDT"],
            "each decided at its own time"
        );
        // And each left the building then: the executor's report comes before the clock moved on.
        let handed_over: Vec<String> = c
            .events("message.sent")
            .await
            .iter()
            .filter(|e| {
                e["payload"]["purpose"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("reminder_"))
            })
            .map(|e| {
                local(
                    parse_time(e["occurredAt"].as_str().unwrap()),
                    "America/New_York",
                )
            })
            .collect();
        assert_eq!(
            handed_over,
            ["Tue 10:00 EDT", "Wed 10:00 EDT"],
            "each sent at its own time"
        );
        assert!(
            c.events("execution.expired").await.is_empty(),
            "nothing expired on the way"
        );
        c.stop().await;
    }
);
