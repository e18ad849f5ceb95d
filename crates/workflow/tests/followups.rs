//! The texts after a visit on the virtual clock (ADR 0008), on SQLite and PostgreSQL: the review
//! request goes at most once per patient per 90 days and never after a visit corrected to a
//! no-show; the rebooking offer goes after its delay only to a patient who has not booked again
//! and still consents.

#[macro_use]
mod support;

use aro_store::Event;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use support::*;

const ADA: &str = "+14155552671";
const GRACE: &str = "+14155552672";
const REVIEW: &str = "Thanks for visiting Demo Clinic. Review: https://example.org/review-us";
const OFFER: &str = "Time for your next visit? https://example.org/book";

async fn outcome(h: &Harness, command: &str, appointment: &str) {
    let answer = h
        .command(
            command,
            json!({"type": "appointment", "id": appointment}),
            Value::Null,
        )
        .await;
    assert_eq!(answer.status, 200, "{command}: {}", answer.body);
}

/// The texts queued for a visit with this purpose (`message.queued` events, oldest first).
async fn queued(h: &Harness, appointment: &str, purpose: &str) -> Vec<Event> {
    h.events(Some(appointment))
        .await
        .into_iter()
        .filter(|e| e.event_type == "message.queued" && e.payload["purpose"] == purpose)
        .collect()
}

async fn reviews_requested(h: &Harness, appointment: &str) -> usize {
    h.events(Some(appointment))
        .await
        .iter()
        .filter(|e| e.event_type == "review.requested")
        .count()
}

/// Books a 30-minute visit 3 h ahead and lets it complete automatically (2 h after its end).
async fn visit_completed_automatically(
    h: &Harness,
    external: &str,
    name: &str,
    phone: &str,
) -> String {
    let apt = h.book(external, name, phone, 3).await;
    h.advance(Duration::hours(6)).await;
    assert_eq!(h.status(&apt).await, "completed");
    apt
}

/// Books a 30-minute visit 3 h ahead; staff mark it completed an hour after it started.
/// Returns the visit and the business time of the completion.
async fn visit_marked_completed(
    h: &Harness,
    external: &str,
    name: &str,
    phone: &str,
) -> (String, DateTime<Utc>) {
    let apt = h.book(external, name, phone, 3).await;
    h.advance(Duration::hours(4)).await;
    // Business time runs on with real time: take it before the command.
    let completed_at = h.engine.clock().now();
    outcome(h, "appointment.mark_completed", &apt).await;
    (apt, completed_at)
}

fn in_send_window(at: DateTime<Utc>) -> bool {
    let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();
    aro_workflow::plan::in_window(at, ny, aro_domain::policy::SendWindow::default())
}

on_both!(
    a_patient_is_asked_for_a_review_at_most_once_in_90_days,
    |h: Harness| async move {
        let first = visit_completed_automatically(&h, "RV-1", "Ada Lovelace", ADA).await;
        h.advance(Duration::hours(24)).await;
        let texts = deliver_all(&h).await;
        assert_eq!(bodies(&texts), vec![REVIEW.to_owned()]);
        assert_eq!(reviews_requested(&h, &first).await, 1);
        let asked_at = queued(&h, &first, "review_request").await[0].occurred_at;

        // Two months later Ada comes again: no second review request, although the rest of
        // the follow-ups run (the rebooking offer of that visit goes).
        h.advance(Duration::days(60)).await;
        deliver_all(&h).await;
        let second = visit_completed_automatically(&h, "RV-2", "Ada Lovelace", ADA).await;
        h.advance(Duration::days(4)).await;
        let texts = deliver_all(&h).await;
        assert_eq!(
            bodies(&texts),
            vec![OFFER.to_owned()],
            "the follow-ups ran, without a review request"
        );
        assert_eq!(queued(&h, &second, "rebook_offer").await.len(), 1);
        assert!(queued(&h, &second, "review_request").await.is_empty());
        assert_eq!(reviews_requested(&h, &second).await, 0);

        // Another patient on another number is not held back by Ada's cooldown.
        let grace = visit_completed_automatically(&h, "RV-G", "Grace Hopper", GRACE).await;
        h.advance(Duration::hours(24)).await;
        assert_eq!(bodies(&deliver_all(&h).await), vec![REVIEW.to_owned()]);
        assert_eq!(reviews_requested(&h, &grace).await, 1);

        // More than 90 days after the last request (though under 90 days after the visit
        // that got none) Ada is asked again.
        let until = asked_at + Duration::days(91) - h.engine.clock().now();
        h.advance(until).await;
        deliver_all(&h).await;
        let third = visit_completed_automatically(&h, "RV-3", "Ada Lovelace", ADA).await;
        h.advance(Duration::hours(24)).await;
        assert_eq!(bodies(&deliver_all(&h).await), vec![REVIEW.to_owned()]);
        assert_eq!(reviews_requested(&h, &third).await, 1);
        let again_at = queued(&h, &third, "review_request").await[0].occurred_at;
        assert!(
            again_at - asked_at > Duration::days(90),
            "{asked_at} → {again_at}"
        );
    }
);

on_both!(
    a_visit_corrected_to_no_show_after_automatic_completion_gets_no_review_and_no_offer,
    |h: Harness| async move {
        let apt = visit_completed_automatically(&h, "NS-1", "Ada Lovelace", ADA).await;
        let completed = h
            .events(Some(&apt))
            .await
            .into_iter()
            .find(|e| e.event_type == "appointment.completed")
            .unwrap();
        assert_eq!(completed.payload["reason"], "automatic");
        // Staff correct it before the review goes: the patient did not come.
        outcome(&h, "appointment.mark_no_show", &apt).await;
        assert_eq!(
            bodies(&deliver_all(&h).await),
            vec!["We missed you at Demo Clinic. Rebook: https://example.org/book".to_owned()]
        );
        h.advance(Duration::days(5)).await;
        assert!(
            deliver_all(&h).await.is_empty(),
            "nothing after the recovery text"
        );
        assert_eq!(reviews_requested(&h, &apt).await, 0);
        assert!(queued(&h, &apt, "review_request").await.is_empty());
        assert!(queued(&h, &apt, "rebook_offer").await.is_empty());
    }
);

on_both!(
    an_outcome_corrected_back_and_forth_asks_for_one_review,
    |h: Harness| async move {
        let apt = visit_completed_automatically(&h, "FF-1", "Ada Lovelace", ADA).await;
        outcome(&h, "appointment.mark_no_show", &apt).await;
        outcome(&h, "appointment.mark_completed", &apt).await;
        deliver_all(&h).await;
        h.advance(Duration::days(5)).await;
        let texts = deliver_all(&h).await;
        assert_eq!(
            bodies(&texts),
            vec![REVIEW.to_owned(), OFFER.to_owned()],
            "one review request and one rebooking offer"
        );
        assert_eq!(reviews_requested(&h, &apt).await, 1);
    }
);

on_both!(
    the_rebooking_offer_goes_after_the_adr_delay_to_a_patient_without_an_upcoming_visit,
    |h: Harness| async move {
        let (apt, completed_at) = visit_marked_completed(&h, "RB-1", "Ada Lovelace", ADA).await;
        // ADR 0008: three days after completion (`rebookDelayDays`), inside the send window.
        let just_before = completed_at + Duration::days(3) - Duration::minutes(30);
        h.advance(just_before - h.engine.clock().now()).await;
        assert_eq!(
            bodies(&deliver_all(&h).await),
            vec![REVIEW.to_owned()],
            "only the review request before the delay"
        );
        assert!(queued(&h, &apt, "rebook_offer").await.is_empty());
        h.advance(Duration::hours(1)).await;
        assert_eq!(bodies(&deliver_all(&h).await), vec![OFFER.to_owned()]);
        let offered = queued(&h, &apt, "rebook_offer").await;
        assert_eq!(offered.len(), 1);
        let at = offered[0].occurred_at;
        assert!(
            at >= completed_at + Duration::days(3),
            "{at} vs {completed_at}"
        );
        assert!(in_send_window(at), "offered at {at}");
        // Once only.
        h.advance(Duration::days(10)).await;
        assert!(deliver_all(&h).await.is_empty());
    }
);

on_both!(
    a_patient_who_booked_again_gets_no_rebooking_offer_unless_that_visit_was_cancelled,
    |h: Harness| async move {
        let (ada, _) = visit_marked_completed(&h, "BA-1", "Ada Lovelace", ADA).await;
        let (grace, _) = visit_marked_completed(&h, "BA-2", "Grace Hopper", GRACE).await;
        // Both book their next visit a fortnight out; Grace's is cancelled by the clinic.
        h.book("BA-1-next", "Ada Lovelace", ADA, 14 * 24).await;
        let grace_next = h.book("BA-2-next", "Grace Hopper", GRACE, 14 * 24).await;
        outcome(&h, "appointment.cancel", &grace_next).await;
        h.advance(Duration::days(4)).await;
        let texts = deliver_all(&h).await;
        assert!(
            queued(&h, &ada, "rebook_offer").await.is_empty(),
            "Ada booked again"
        );
        assert_eq!(queued(&h, &grace, "rebook_offer").await.len(), 1);
        let offers: Vec<_> = texts
            .iter()
            .filter(|e| e.payload["body"] == OFFER)
            .collect();
        assert_eq!(offers.len(), 1, "{:?}", bodies(&texts));
        assert_eq!(offers[0].payload["to"], GRACE);
    }
);

on_both!(
    the_rebooking_offer_rechecks_consent,
    |h: Harness| async move {
        let (ada, _) = visit_marked_completed(&h, "SC-1", "Ada Lovelace", ADA).await;
        let (grace, _) = visit_marked_completed(&h, "SC-2", "Grace Hopper", GRACE).await;
        h.advance(Duration::hours(24)).await;
        assert_eq!(
            bodies(&deliver_all(&h).await),
            vec![REVIEW.to_owned(), REVIEW.to_owned()]
        );
        // Ada opts out after her review request; the offer timer is already set.
        reply(&h, ADA, "STOP").await;
        assert_eq!(
            bodies(&deliver_all(&h).await),
            vec!["You will get no more texts from Demo Clinic. Reply START to resume.".to_owned()]
        );
        h.advance(Duration::days(3)).await;
        let texts = deliver_all(&h).await;
        assert_eq!(bodies(&texts), vec![OFFER.to_owned()], "Grace's only");
        assert_eq!(texts[0].payload["to"], GRACE);
        assert!(queued(&h, &ada, "rebook_offer").await.is_empty());
        assert_eq!(queued(&h, &grace, "rebook_offer").await.len(), 1);
    }
);

on_both!(
    the_review_cooldown_is_per_patient_not_per_shared_phone,
    |h: Harness| async move {
        let ada = visit_completed_automatically(&h, "FM-1", "Ada Lovelace", ADA).await;
        h.advance(Duration::hours(24)).await;
        assert_eq!(bodies(&deliver_all(&h).await), vec![REVIEW.to_owned()]);
        // A week later a family member on the same number comes: asked too.
        h.advance(Duration::days(7)).await;
        deliver_all(&h).await;
        let byron = visit_completed_automatically(&h, "FM-2", "Byron Lovelace", ADA).await;
        h.advance(Duration::hours(24)).await;
        let texts = deliver_all(&h).await;
        assert_eq!(bodies(&texts), vec![REVIEW.to_owned()]);
        assert_eq!(texts[0].payload["to"], ADA);
        assert_eq!(reviews_requested(&h, &ada).await, 1);
        assert_eq!(reviews_requested(&h, &byron).await, 1);
    }
);
