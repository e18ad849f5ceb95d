//! A visit's workflow run through its states on the virtual clock, on SQLite and PostgreSQL:
//! `waiting` while its timers are ahead, `completed` once the visit has its outcome and nothing
//! more is planned, `cancelled` with the visit, `retrying` while a timer of it is retried with
//! jittered backoff (checked on the stored due times, never on the wall clock) and `failed` with
//! an escalation when that timer gives up. States are read as `GET /v1/workflows/{id}` serves
//! them (`Engine::get_workflow`).

#[macro_use]
mod support;

use aro_store::engine_rows::{EscalationRow, ReminderLogRow, TimerRow, WorkflowRow};
use aro_workflow::timers;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use support::*;

const ADA: &str = "+14155552671";

/// Books a visit `hours_ahead` from now; returns the appointment id and its workflow id.
async fn book(h: &Harness, external: &str, hours_ahead: i64) -> (String, String) {
    let starts = h.engine.clock().now() + Duration::hours(hours_ahead);
    let answer = h
        .command(
            "appointment.upsert",
            json!({"type": "appointment"}),
            booking(external, "Ada Lovelace", ADA, starts),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    (
        answer.body["aggregate"]["id"].as_str().unwrap().to_owned(),
        answer.body["workflowId"].as_str().unwrap().to_owned(),
    )
}

/// Applies a command to a visit; returns the workflow id it answered with.
async fn act(h: &Harness, command: &str, appointment: &str, payload: Value) -> String {
    let answer = h
        .command(
            command,
            json!({"type": "appointment", "id": appointment}),
            payload,
        )
        .await;
    assert_eq!(answer.status, 200, "{command}: {}", answer.body);
    answer.body["workflowId"].as_str().unwrap().to_owned()
}

/// The workflow as `GET /v1/workflows/{id}` shows it.
async fn workflow(h: &Harness, id: &str) -> Value {
    h.engine.get_workflow("default", id).await.unwrap()
}

fn pending_kinds(wf: &Value) -> Vec<String> {
    let mut kinds: Vec<String> = wf["pendingTimers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    kinds
}

async fn run_row(h: &Harness, id: &str) -> WorkflowRow {
    let id = id.to_owned();
    h.store
        .read(move |tx| Box::pin(async move { tx.raw().get_workflow("default", &id).await }))
        .await
        .unwrap()
        .unwrap()
}

async fn pending_timers(h: &Harness, appointment: &str) -> Vec<TimerRow> {
    let id = appointment.to_owned();
    h.store
        .read(move |tx| {
            Box::pin(async move { tx.raw().pending_timers_for_aggregate("default", &id).await })
        })
        .await
        .unwrap()
}

async fn reminder_logs(h: &Harness, appointment: &str) -> Vec<ReminderLogRow> {
    let id = appointment.to_owned();
    h.store
        .read(move |tx| {
            Box::pin(async move { tx.raw().reminder_logs_for_appointment("default", &id).await })
        })
        .await
        .unwrap()
}

async fn open_escalations(h: &Harness) -> Vec<EscalationRow> {
    h.store
        .read(|tx| {
            Box::pin(async move {
                tx.raw()
                    .list_escalations("default", Some("open"), 100)
                    .await
            })
        })
        .await
        .unwrap()
}

async fn advance_to(h: &Harness, t: DateTime<Utc>) {
    h.engine.advance_clock_to(t).await.unwrap();
}

on_both!(
    a_confirmed_visit_completes_after_its_review_and_rebooking_offer,
    |h: Harness| async move {
        let (apt, wf_id) = book(&h, "LC-1", 72).await;
        let wf = workflow(&h, &wf_id).await;
        assert_eq!(wf["state"], "waiting", "{wf}");
        assert_eq!(wf["step"], "awaiting_visit");
        assert_eq!(
            pending_kinds(&wf),
            ["auto_complete", "reminder", "reminder"]
        );

        assert_eq!(
            act(&h, "appointment.confirm", &apt, Value::Null).await,
            wf_id
        );
        let wf = workflow(&h, &wf_id).await;
        assert_eq!(wf["state"], "waiting");
        assert_eq!(pending_kinds(&wf), ["auto_complete"], "reminders stopped");

        // Two hours after the visit's end it completes on its own; the follow-ups are ahead.
        h.advance(Duration::hours(72) + Duration::minutes(30) + Duration::hours(2))
            .await;
        assert_eq!(h.status(&apt).await, "completed");
        let wf = workflow(&h, &wf_id).await;
        assert_eq!(wf["state"], "waiting", "{wf}");
        assert_eq!(wf["step"], "after_visit");
        assert_eq!(pending_kinds(&wf), ["rebook_offer", "review_request"]);

        // The review request goes; the run still waits for the rebooking offer.
        h.advance(Duration::days(1)).await;
        let reviews = h
            .event_types(&apt)
            .await
            .into_iter()
            .filter(|t| t == "review.requested")
            .count();
        assert_eq!(reviews, 1);
        let wf = workflow(&h, &wf_id).await;
        assert_eq!(wf["state"], "waiting");
        assert_eq!(pending_kinds(&wf), ["rebook_offer"]);

        // The rebooking offer was the last thing planned: the run is complete.
        h.advance(Duration::days(3)).await;
        let wf = workflow(&h, &wf_id).await;
        assert_eq!(wf["state"], "completed", "{wf}");
        assert_eq!(wf["step"], "done");
        assert!(pending_kinds(&wf).is_empty());
    }
);

on_both!(
    a_cancelled_visit_cancels_its_workflow,
    |h: Harness| async move {
        let (apt, wf_id) = book(&h, "LC-2", 72).await;
        let answered = act(
            &h,
            "appointment.cancel",
            &apt,
            json!({"reason": "patient called"}),
        )
        .await;
        assert_eq!(answered, wf_id);
        let wf = workflow(&h, &wf_id).await;
        assert_eq!(wf["state"], "cancelled", "{wf}");
        assert!(pending_kinds(&wf).is_empty());
        assert!(pending_timers(&h, &apt).await.is_empty());
    }
);

on_both!(
    a_no_show_completes_its_run_and_a_correction_starts_a_new_one,
    |h: Harness| async move {
        let (apt, wf_id) = book(&h, "LC-3", 72).await;
        h.advance(Duration::hours(73)).await;
        // The recovery text is queued at once: nothing more is planned for the visit.
        assert_eq!(
            act(&h, "appointment.mark_no_show", &apt, Value::Null).await,
            wf_id
        );
        let wf = workflow(&h, &wf_id).await;
        assert_eq!(wf["state"], "completed", "{wf}");
        assert!(pending_timers(&h, &apt).await.is_empty());

        // Corrected to completed within the window: a new run plans the follow-ups; the
        // finished one stays finished.
        let again = act(&h, "appointment.mark_completed", &apt, Value::Null).await;
        assert_ne!(again, wf_id);
        let next = workflow(&h, &again).await;
        assert_eq!(next["state"], "waiting", "{next}");
        assert_eq!(next["step"], "after_visit");
        assert_eq!(pending_kinds(&next), ["rebook_offer", "review_request"]);
        assert_eq!(workflow(&h, &wf_id).await["state"], "completed");
    }
);

on_both!(
    a_timer_that_keeps_failing_is_retried_with_jitter_then_fails_its_workflow,
    |h: Harness| async move {
        let (apt, wf_id) = book(&h, "LC-4", 240).await;
        // A timer this version cannot run (written by a newer one, say): every attempt fails.
        let timer_id = "tmr_lifecycle_broken".to_owned();
        let due = h.engine.clock().now() + Duration::hours(1);
        let row = TimerRow {
            id: timer_id.clone(),
            tenant_id: "default".into(),
            workflow_id: Some(wf_id.clone()),
            kind: "from_the_future".into(),
            aggregate_id: apt.clone(),
            due_at: aro_store::micros(due),
            payload: sqlx::types::Json(json!({})),
            status: "pending".into(),
            attempt: 0,
            last_error: None,
            lease_owner: None,
            lease_until: None,
            created_at: h.engine.clock().now(),
            fired_at: None,
        };
        h.store
            .write(move |tx| Box::pin(async move { tx.raw().insert_timer(&row).await }))
            .await
            .unwrap();

        let mut due = due;
        for attempt in 1..timers::MAX_ATTEMPTS {
            advance_to(&h, due).await;
            let broken = pending_timers(&h, &apt)
                .await
                .into_iter()
                .find(|t| t.id == timer_id)
                .expect("still pending while attempts remain");
            assert_eq!(broken.attempt, attempt);
            assert!(broken.last_error.is_some());
            let run = run_row(&h, &wf_id).await;
            assert_eq!(run.state, "retrying", "attempt {attempt}");
            assert_eq!(run.step.as_deref(), Some("retry_from_the_future"));
            assert_eq!(run.attempt, attempt);
            // The run was moved at the failure's business time: the retry is due within the
            // jittered window after it (a millisecond of slack for stored precision).
            let delay = broken.due_at - run.updated_at;
            let slack = Duration::milliseconds(1);
            assert!(
                delay >= -slack && delay <= timers::retry_ceiling(attempt) + slack,
                "attempt {attempt}: retry {delay} after the failure"
            );
            due = broken.due_at;
        }
        let wf = workflow(&h, &wf_id).await;
        assert_eq!(wf["state"], "retrying", "{wf}");

        advance_to(&h, due).await;
        let wf = workflow(&h, &wf_id).await;
        assert_eq!(wf["state"], "failed", "{wf}");
        assert_eq!(wf["step"], "failed_from_the_future");
        assert_eq!(wf["attempt"], timers::MAX_ATTEMPTS);
        // The run is over: what it still had planned is called off, and staff are told.
        assert!(pending_timers(&h, &apt).await.is_empty());
        let logs = reminder_logs(&h, &apt).await;
        assert_eq!(logs.len(), 2);
        for log in &logs {
            assert_eq!(log.status, "cancelled");
            assert_eq!(log.reason.as_deref(), Some("workflow_failed"));
        }
        let escalations = open_escalations(&h).await;
        assert_eq!(escalations.len(), 1);
        let e = &escalations[0];
        assert_eq!(e.reason, "timer_failed");
        assert_eq!(e.appointment_id.as_deref(), Some(apt.as_str()));
        assert_eq!(e.detail.0["timerId"], timer_id);
        assert_eq!(e.detail.0["attempts"], timers::MAX_ATTEMPTS);
        assert_eq!(e.detail.0["workflowId"], wf_id);
        let opened: Vec<_> = h
            .events(Some(&apt))
            .await
            .into_iter()
            .filter(|e| e.event_type == "escalation.opened")
            .collect();
        assert_eq!(opened.len(), 1);
        assert_eq!(opened[0].payload["reason"], "timer_failed");
        assert_eq!(
            opened[0].metadata.workflow_id.as_deref(),
            Some(wf_id.as_str())
        );
        assert_eq!(
            opened[0].metadata.causation_id.as_deref(),
            Some(timer_id.as_str())
        );

        // Moving the visit plans it again in a new run; the failed one stays failed.
        let starts = h.engine.clock().now() + Duration::hours(120);
        let again = act(
            &h,
            "appointment.reschedule",
            &apt,
            json!({"startsAt": starts, "endsAt": starts + Duration::minutes(30)}),
        )
        .await;
        assert_ne!(again, wf_id);
        let next = workflow(&h, &again).await;
        assert_eq!(next["state"], "waiting", "{next}");
        assert_eq!(
            pending_kinds(&next),
            ["auto_complete", "reminder", "reminder"]
        );
        assert_eq!(workflow(&h, &wf_id).await["state"], "failed");
    }
);

on_both!(
    a_retried_timer_that_succeeds_puts_its_workflow_back_to_waiting,
    |h: Harness| async move {
        let (apt, wf_id) = book(&h, "LC-5", 240).await;
        // A reminder that failed once (as if the database had refused it) and is due again.
        let mut retried = pending_timers(&h, &apt)
            .await
            .into_iter()
            .find(|t| t.kind == "reminder")
            .unwrap();
        retried.attempt = 1;
        retried.last_error = Some("database unavailable".into());
        let due = retried.due_at;
        let row = retried.clone();
        h.store
            .write(move |tx| Box::pin(async move { tx.raw().update_timer(&row).await }))
            .await
            .unwrap();
        let mut run = run_row(&h, &wf_id).await;
        run.state = "retrying".into();
        h.store
            .write(move |tx| Box::pin(async move { tx.raw().update_workflow(&run).await }))
            .await
            .unwrap();

        advance_to(&h, due).await;
        let wf = workflow(&h, &wf_id).await;
        assert_eq!(wf["state"], "waiting", "{wf}");
        assert_eq!(wf["step"], "awaiting_visit");
        assert!(open_escalations(&h).await.is_empty());
    }
);
