//! The MVP flows inside the engine, on the virtual clock: replies, consent, outcomes,
//! follow-ups, deposits, shared phones and the metrics that come out of them. (The same flows
//! end to end through the sandbox and the executor live in tests/tests/flows.rs.)

#[macro_use]
mod support;

use chrono::Duration;
use serde_json::{Value, json};
use support::*;

const ADA: &str = "+14155552671";

on_both!(
    c_confirms_acknowledges_and_stops_the_24h_reminder,
    |h: Harness| async move {
        let apt = h.book("F-1", "Ada Lovelace", ADA, 72).await;
        h.advance(Duration::hours(25)).await;
        let first = deliver_all(&h).await;
        assert_eq!(first.len(), 1);
        assert!(
            first[0].payload["body"]
                .as_str()
                .unwrap()
                .contains("Reply C to confirm")
        );
        let answer = reply(&h, ADA, "C").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(h.status(&apt).await, "confirmed");
        let ack = deliver_all(&h).await;
        assert_eq!(bodies(&ack).len(), 1);
        assert!(
            bodies(&ack)[0].starts_with("Thanks Ada"),
            "{:?}",
            bodies(&ack)
        );
        h.advance(Duration::hours(30)).await;
        assert!(
            deliver_all(&h).await.is_empty(),
            "no 24 h reminder after a confirmation"
        );
    }
);

on_both!(
    silence_after_the_last_reminder_reaches_staff_in_one_digest,
    |h: Harness| async move {
        let apt = h.book("F-2", "Ada Lovelace", ADA, 72).await;
        h.advance(Duration::hours(25)).await;
        deliver_all(&h).await;
        h.advance(Duration::hours(24)).await;
        let second = deliver_all(&h).await;
        assert!(
            bodies(&second)[0].starts_with("Tomorrow"),
            "{:?}",
            bodies(&second)
        );
        // Two hours without a reply: an escalation, and the clinic gets one digest text.
        h.advance(Duration::hours(3)).await;
        let types = h.event_types(&apt).await;
        assert!(types.contains(&"escalation.opened".to_owned()), "{types:?}");
        let digest = deliver_all(&h).await;
        let to_clinic: Vec<_> = digest
            .iter()
            .filter(|e| e.payload["to"] == "+15005550100")
            .collect();
        assert_eq!(to_clinic.len(), 1, "{digest:?}");
        assert!(
            to_clinic[0].payload["body"]
                .as_str()
                .unwrap()
                .contains("1 unanswered reminder")
        );
        assert!(
            !to_clinic[0].payload["body"]
                .as_str()
                .unwrap()
                .contains("Ada"),
            "staff digests carry no patient details"
        );
    }
);

on_both!(
    n_asks_to_cancel_and_r_asks_to_reschedule_but_aro_cancels_nothing,
    |h: Harness| async move {
        let apt = h.book("F-3", "Ada Lovelace", ADA, 72).await;
        h.advance(Duration::hours(25)).await;
        deliver_all(&h).await;
        reply(&h, ADA, "N").await;
        assert_eq!(h.status(&apt).await, "cancel_requested");
        let answer = deliver_all(&h).await;
        assert_eq!(
            bodies(&answer),
            vec!["To cancel: https://example.org/cancel/1".to_owned()]
        );
        reply(&h, ADA, "r").await;
        let answer = deliver_all(&h).await;
        assert_eq!(
            bodies(&answer),
            vec!["To reschedule: https://example.org/reschedule/1".to_owned()]
        );
        let escalations: Vec<Value> = h
            .events(Some(&apt))
            .await
            .into_iter()
            .filter(|e| e.event_type == "escalation.opened")
            .map(|e| e.payload)
            .collect();
        let reasons: Vec<_> = escalations
            .iter()
            .map(|e| e["reason"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(reasons, vec!["cancel_request", "reschedule_request"]);
        assert_ne!(
            h.status(&apt).await,
            "cancelled",
            "only staff or the booking provider cancel"
        );
    }
);

on_both!(
    stop_confirms_once_and_silences_even_queued_reminders_until_start,
    |h: Harness| async move {
        let apt = h.book("F-4", "Ada Lovelace", ADA, 72).await;
        h.advance(Duration::hours(25)).await;
        // The 48 h reminder is queued but not yet handed to the provider when STOP arrives.
        reply(&h, ADA, "STOP").await;
        let after = deliver_all(&h).await;
        assert_eq!(
            bodies(&after),
            vec!["You will get no more texts from Demo Clinic. Reply START to resume.".to_owned()]
        );
        assert!(
            h.events(None)
                .await
                .iter()
                .any(|e| e.event_type == "consent.revoked")
        );
        h.advance(Duration::hours(24)).await;
        assert!(deliver_all(&h).await.is_empty(), "silence after STOP");
        let skipped = h
            .events(Some(&apt))
            .await
            .into_iter()
            .filter(|e| e.event_type == "reminder.skipped" && e.payload["reason"] == "no_consent")
            .count();
        assert_eq!(skipped, 1);
        // START restores consent and the patient is told.
        reply(&h, ADA, "START").await;
        let resumed = deliver_all(&h).await;
        assert_eq!(
            bodies(&resumed),
            vec!["Texts from Demo Clinic resumed.".to_owned()]
        );
        let apt2 = h.book("F-4b", "Ada Lovelace", ADA, 60).await;
        h.advance(Duration::hours(13)).await;
        let reminders = deliver_all(&h).await;
        assert_eq!(
            reminders.len(),
            1,
            "reminders flow again for the next visit"
        );
        assert!(
            h.event_types(&apt2)
                .await
                .contains(&"message.queued".to_owned()),
            "the reminder is the next visit's"
        );
        // A question that says "stop" is a question, not an opt-out.
        reply(&h, ADA, "should I stop my medication before the visit?").await;
        assert_eq!(
            h.events(None)
                .await
                .iter()
                .filter(|e| e.event_type == "consent.revoked")
                .count(),
            1
        );
    }
);

on_both!(
    a_bare_cancel_is_the_carrier_opt_out_and_staff_are_asked_to_call,
    |h: Harness| async move {
        let apt = h.book("F-5", "Ada Lovelace", ADA, 72).await;
        h.advance(Duration::hours(25)).await;
        deliver_all(&h).await;
        reply(&h, ADA, "CANCEL").await;
        assert!(
            h.events(None)
                .await
                .iter()
                .any(|e| e.event_type == "consent.revoked")
        );
        let answer = deliver_all(&h).await;
        assert_eq!(
            bodies(&answer),
            vec!["No more texts. To cancel a visit call +15005550100.".to_owned()]
        );
        assert_eq!(
            h.status(&apt).await,
            "booked",
            "the visit itself is untouched"
        );
        assert!(
            h.events(Some(&apt))
                .await
                .iter()
                .any(|e| e.event_type == "escalation.opened"
                    && e.payload["reason"] == "cancel_keyword_opt_out")
        );
    }
);

on_both!(
    two_patients_sharing_a_phone_get_their_own_visits_and_an_ambiguous_reply_goes_to_staff,
    |h: Harness| async move {
        let ada = h.book("F-6a", "Ada Lovelace", ADA, 72).await;
        let byron = h.book("F-6b", "Byron Lovelace", ADA, 74).await;
        h.advance(Duration::hours(27)).await;
        let texts = deliver_all(&h).await;
        assert!(bodies(&texts).iter().any(|b| b.starts_with("Hi Ada")));
        assert!(bodies(&texts).iter().any(|b| b.starts_with("Hi Byron")));
        reply(&h, ADA, "C").await;
        assert_eq!(h.status(&ada).await, "booked");
        assert_eq!(h.status(&byron).await, "booked");
        assert!(
            h.events(None)
                .await
                .iter()
                .any(|e| e.event_type == "escalation.opened"
                    && e.payload["reason"] == "ambiguous_sender")
        );
    }
);

on_both!(
    a_completed_visit_asks_for_a_review_and_a_corrected_no_show_gets_recovery_instead,
    |h: Harness| async move {
        let apt = h.book("F-7", "Ada Lovelace", ADA, 50).await;
        let confirm = h
            .command(
                "appointment.confirm",
                json!({"type": "appointment", "id": apt}),
                Value::Null,
            )
            .await;
        assert_eq!(confirm.status, 200);
        // The visit ends; 2 h later it counts as completed; the review waits 6 h (and the window).
        h.advance(Duration::hours(53)).await;
        deliver_all(&h).await;
        assert_eq!(h.status(&apt).await, "completed");
        // Staff correct it: the patient did not come.
        let no_show = h
            .command(
                "appointment.mark_no_show",
                json!({"type": "appointment", "id": apt}),
                json!({"reason": "did not arrive"}),
            )
            .await;
        assert_eq!(no_show.status, 200, "{}", no_show.body);
        let recovery = deliver_all(&h).await;
        assert_eq!(
            bodies(&recovery),
            vec!["We missed you at Demo Clinic. Rebook: https://example.org/book".to_owned()]
        );
        h.advance(Duration::hours(30)).await;
        let later = deliver_all(&h).await;
        assert!(
            bodies(&later).iter().all(|b| !b.contains("Review")),
            "no review after a no-show: {:?}",
            bodies(&later)
        );
        assert!(
            h.events(None)
                .await
                .iter()
                .any(|e| e.event_type == "customer.risk_updated")
        );

        // Another patient who came: staff mark it completed; the review follows 6 h later (moved
        // into the send window if that falls at night), once.
        let apt = h.book("F-7b", "Grace Hopper", "+14155552672", 5).await;
        h.advance(Duration::hours(6)).await;
        deliver_all(&h).await;
        // Business time runs on with real time: take it before the command.
        let completed_at = h.engine.clock().now();
        let done = h
            .command(
                "appointment.mark_completed",
                json!({"type": "appointment", "id": apt}),
                Value::Null,
            )
            .await;
        assert_eq!(done.status, 200, "{}", done.body);
        h.advance(Duration::hours(20)).await;
        let review = deliver_all(&h).await;
        assert_eq!(
            bodies(&review),
            vec![
                "Thanks for visiting Demo Clinic. Review: https://example.org/review-us".to_owned()
            ]
        );
        let requested = h
            .events(Some(&apt))
            .await
            .into_iter()
            .find(|e| e.event_type == "review.requested")
            .unwrap();
        assert!(
            requested.occurred_at >= completed_at + Duration::hours(6),
            "{} vs {completed_at}",
            requested.occurred_at
        );
        let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();
        let local = requested.occurred_at.with_timezone(&ny);
        assert!(
            aro_workflow::plan::in_window(
                requested.occurred_at,
                ny,
                aro_domain::policy::SendWindow::default()
            ),
            "sent at {local}"
        );
    }
);

on_both!(
    a_high_risk_patient_gets_a_deposit_link_with_the_next_reminder_and_is_never_charged,
    |h: Harness| async move {
        // Two no-shows make Ada high risk.
        for i in 0..2 {
            let apt = h.book(&format!("R-{i}"), "Ada Lovelace", ADA, 3).await;
            h.advance(Duration::hours(4)).await;
            let r = h
                .command(
                    "appointment.mark_no_show",
                    json!({"type": "appointment", "id": apt}),
                    Value::Null,
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            deliver_all(&h).await;
        }
        let next = h.book("R-next", "Ada Lovelace", ADA, 72).await;
        let claimed = deliver_all(&h).await;
        assert!(
            claimed
                .iter()
                .any(|e| e.command_type == "payments.generate_deposit_link")
        );
        assert!(
            bodies(&claimed).iter().all(|b| !b.contains("deposit")),
            "the link waits for the reminder"
        );
        h.advance(Duration::hours(25)).await;
        let with_reminder = deliver_all(&h).await;
        let texts = bodies(&with_reminder);
        assert!(texts.iter().any(|b| b.starts_with("Hi Ada")), "{texts:?}");
        assert!(
            texts.iter().any(
                |b| b.starts_with("A deposit holds your visit: https://pay.example.org/plink_")
            ),
            "{texts:?}"
        );
        // A day later an unpaid link is nudged.
        h.advance(Duration::hours(25)).await;
        let nudged = deliver_all(&h).await;
        assert!(
            bodies(&nudged)
                .iter()
                .any(|b| b.starts_with("Reminder: deposit link")),
            "{:?}",
            bodies(&nudged)
        );
        let all_types: std::collections::BTreeSet<String> = h
            .events(None)
            .await
            .into_iter()
            .map(|e| e.event_type)
            .collect();
        assert!(all_types.contains("payment.link_created"));
        assert!(
            !all_types.contains("payment.completed"),
            "nothing was paid — and nothing was charged"
        );
        assert!(
            h.events(Some(&next))
                .await
                .iter()
                .all(|e| e.event_type != "appointment.cancelled"),
            "never an automatic cancellation"
        );
    }
);

on_both!(metrics_come_from_the_event_log, |h: Harness| async move {
    let a = h.book("M-1", "Ada Lovelace", ADA, 72).await;
    let b = h.book("M-2", "Grace Hopper", "+14155552672", 72).await;
    h.advance(Duration::hours(25)).await;
    deliver_all(&h).await;
    reply(&h, ADA, "C").await;
    deliver_all(&h).await;
    h.advance(Duration::hours(50)).await;
    deliver_all(&h).await;
    let r = h
        .command(
            "appointment.mark_no_show",
            json!({"type": "appointment", "id": b}),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 200);
    deliver_all(&h).await;
    let m = aro_workflow::reports::metrics(&h.store, "default", None, None)
        .await
        .unwrap();
    assert_eq!(m.appointments_booked, 2);
    assert_eq!(m.appointments_reminded, 2);
    assert_eq!(m.confirmed, 1);
    assert_eq!(m.confirmation_rate, 0.5);
    assert_eq!(m.response_rate, 0.5);
    assert_eq!(
        m.completed, 1,
        "the confirmed visit completed automatically"
    );
    assert_eq!(m.no_shows, 1);
    assert_eq!(m.no_show_rate, 0.5);
    assert!(m.messages_sent >= 4);
    assert_eq!(
        h.status(&a).await,
        "completed",
        "the confirmed visit is the completed one"
    );
    // A period that ends before anything happened is empty.
    let early = start_time() - Duration::days(1);
    let none = aro_workflow::reports::metrics(&h.store, "default", None, Some(early))
        .await
        .unwrap();
    assert_eq!(none.appointments_booked, 0);
});

/// Books `external` for `name` at `hours_ahead`, priced 120.00 USD.
async fn book_priced(
    h: &Harness,
    external: &str,
    name: &str,
    phone: &str,
    hours_ahead: i64,
) -> String {
    let starts = h.engine.clock().now() + Duration::hours(hours_ahead);
    let mut payload = support::booking(external, name, phone, starts);
    payload["priceMinor"] = json!(12_000);
    payload["currency"] = json!("USD");
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

on_both!(
    recovered_visits_are_attributed_from_history_before_the_period,
    |h: Harness| async move {
        // Before the period: Ada misses a visit and gets the recovery text; then she books again.
        // Grace books a visit and moves it. Linus books one (not recovered).
        let missed = book_priced(&h, "R-1", "Ada Lovelace", ADA, 3).await;
        h.advance(Duration::hours(4)).await;
        let r = h
            .command(
                "appointment.mark_no_show",
                json!({"type": "appointment", "id": missed}),
                Value::Null,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        deliver_all(&h).await;
        let recovery = h.events(Some(&missed)).await;
        assert!(
            recovery
                .iter()
                .any(|e| e.event_type == "message.queued"
                    && e.payload["purpose"] == "no_show_recovery"),
            "the recovery text went out"
        );
        let rebooked = book_priced(&h, "R-2", "Ada Lovelace", ADA, 72).await;
        // Her next booking after that is her own doing, not the text's.
        let again = book_priced(&h, "R-5", "Ada Lovelace", ADA, 73).await;
        let moved = book_priced(&h, "R-3", "Grace Hopper", "+14155552672", 70).await;
        let starts = h.engine.clock().now() + Duration::hours(74);
        let r = h
            .command(
                "appointment.reschedule",
                json!({"type": "appointment", "id": moved}),
                json!({"startsAt": starts, "endsAt": starts + Duration::minutes(30)}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let plain = book_priced(&h, "R-4", "Linus Pauling", "+14155552674", 71).await;
        h.advance(Duration::hours(1)).await;
        deliver_all(&h).await;

        // The period starts here: only the four visits' outcomes fall in it.
        let period_start = h.engine.clock().now();
        h.advance(Duration::hours(80)).await;
        deliver_all(&h).await;
        for visit in [&rebooked, &again, &moved, &plain] {
            assert_eq!(h.status(visit).await, "completed", "{visit}");
        }

        let m = aro_workflow::reports::metrics(&h.store, "default", Some(period_start), None)
            .await
            .unwrap();
        assert_eq!(
            m.appointments_booked, 0,
            "all bookings came before the period"
        );
        assert_eq!(m.completed, 4);
        assert_eq!(m.no_shows, 0, "the no-show came before the period");
        assert_eq!(
            m.recovered_visits, 2,
            "the first visit booked after the recovery text and the moved one; not the plain one, \
         not the patient's second booking"
        );
        assert_eq!(m.recovered_revenue.get("USD"), Some(&24_000));

        // Over all time the same visits are recovered, and the missed one is a no-show.
        let all = aro_workflow::reports::metrics(&h.store, "default", None, None)
            .await
            .unwrap();
        assert_eq!((all.completed, all.no_shows), (4, 1));
        assert_eq!(all.recovered_visits, 2);
        assert_eq!(all.recovered_revenue.get("USD"), Some(&24_000));
        assert_eq!(all.appointments_booked, 5);

        // A period that ends before the outcomes counts none of them.
        let before = aro_workflow::reports::metrics(&h.store, "default", None, Some(period_start))
            .await
            .unwrap();
        assert_eq!((before.completed, before.recovered_visits), (0, 0));
        assert_eq!(before.no_shows, 1);
    }
);

on_both!(
    two_no_shows_more_than_90_days_ago_no_longer_ask_for_a_deposit,
    |h: Harness| async move {
        for i in 0..2 {
            let apt = h.book(&format!("OLD-{i}"), "Ada Lovelace", ADA, 3).await;
            h.advance(Duration::hours(4)).await;
            let r = h
                .command(
                    "appointment.mark_no_show",
                    json!({"type": "appointment", "id": apt}),
                    Value::Null,
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            deliver_all(&h).await;
        }
        let pattern = h
            .events(None)
            .await
            .into_iter()
            .rfind(|e| e.event_type == "customer.risk_updated")
            .unwrap();
        assert_eq!(pattern.payload["pattern"], "two_no_shows_in_90_days");
        assert_eq!(pattern.payload["highRisk"], true);
        h.advance(Duration::days(100)).await;
        deliver_all(&h).await;
        h.book("NEW", "Ada Lovelace", ADA, 72).await;
        let claimed = deliver_all(&h).await;
        assert!(
            claimed
                .iter()
                .all(|e| e.command_type != "payments.generate_deposit_link"),
            "the pattern has expired"
        );
        let latest = h
            .events(None)
            .await
            .into_iter()
            .rfind(|e| e.event_type == "customer.risk_updated")
            .unwrap();
        assert_eq!(latest.payload["highRisk"], false);
    }
);

on_both!(
    help_is_answered_with_the_clinic_s_name_and_phone_whoever_answers_keywords,
    |h: Harness| async move {
        h.book("H-1", "Ada Lovelace", ADA, 72).await;
        h.advance(Duration::hours(25)).await;
        deliver_all(&h).await;
        reply(&h, ADA, "HELP").await;
        assert_eq!(
            bodies(&deliver_all(&h).await),
            vec!["Demo Clinic: call +15005550100. STOP to opt out.".to_owned()]
        );
        // A provider that answers its keywords itself answers HELP too, with its own words that
        // name neither the clinic nor its phone: ARO still gives the clinic's.
        let mut config = test_config();
        config["policies"]["providerSendsOptOutConfirmation"] = json!(true);
        let r = h
            .command(
                "tenant.update_config",
                json!({"type": "tenant", "id": "default"}),
                config,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        reply(&h, ADA, "help").await;
        assert_eq!(
            bodies(&deliver_all(&h).await),
            vec!["Demo Clinic: call +15005550100. STOP to opt out.".to_owned()]
        );
        // Opted out in words (ARO confirms that one), then HELP: carriers require HELP to be
        // answered, opted out or not.
        reply(&h, ADA, "please stop texting me").await;
        assert_eq!(deliver_all(&h).await.len(), 1, "one opt-out confirmation");
        reply(&h, ADA, "HELP").await;
        assert_eq!(
            bodies(&deliver_all(&h).await),
            vec!["Demo Clinic: call +15005550100. STOP to opt out.".to_owned()]
        );
        // Anything else still goes nowhere.
        reply(&h, ADA, "C").await;
        assert!(deliver_all(&h).await.is_empty(), "no consent, no answer");
    }
);
