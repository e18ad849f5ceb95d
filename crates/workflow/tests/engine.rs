//! The engine on a real database: commands, idempotency, reminders on the business clock,
//! timers across restarts, the execution queue and the dead-letter queue, guardrails.

#[macro_use]
mod support;

use aro_workflow::executions::{ExecutionResult, ResultError, ResultStatus};
use chrono::Duration;
use serde_json::{Value, json};
use support::*;

fn ok() -> ExecutionResult {
    ExecutionResult {
        status: ResultStatus::Succeeded,
        retryable: false,
        error: None,
        provider_ref: Some("SM123".into()),
        output: Some(json!({"status": "queued"})),
        retry_after_seconds: None,
    }
}

fn failure(code: &str, retryable: bool) -> ExecutionResult {
    ExecutionResult {
        status: ResultStatus::Failed,
        retryable,
        error: Some(ResultError {
            code: code.into(),
            message: "provider said no".into(),
        }),
        provider_ref: None,
        output: None,
        retry_after_seconds: None,
    }
}

on_both!(
    a_booking_plans_both_reminders_and_they_go_out_on_time,
    |h: Harness| async move {
        let apt = h.book("IN-1", "Ada Lovelace", "+14155552671", 72).await;
        let types = h.event_types(&apt).await;
        assert_eq!(
            types.iter().filter(|t| *t == "reminder.scheduled").count(),
            2,
            "{types:?}"
        );
        assert!(types.contains(&"appointment.booked".to_owned()));
        // Nothing is due yet.
        let claimed = h
            .engine
            .claim_executions("t", 10, Duration::seconds(60), None, None)
            .await
            .unwrap();
        assert!(claimed.is_empty());
        // 24 h later the 48 h reminder fires.
        let fired = h.advance(Duration::hours(25)).await;
        assert!(fired >= 1);
        let claimed = h
            .engine
            .claim_executions("t", 10, Duration::seconds(60), None, None)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        let e = &claimed[0];
        assert_eq!(e.command_type, "messaging.send_reminder");
        assert_eq!(e.payload["to"], "+14155552671");
        assert!(
            e.payload["body"]
                .as_str()
                .unwrap()
                .starts_with("Hi Ada, visit "),
            "{}",
            e.payload["body"]
        );
        assert!(
            e.payload["statusCallback"]
                .as_str()
                .unwrap()
                .contains("/v1/webhooks/twilio/default/status?m=msg_")
        );
        assert!(e.not_after.is_some());
        h.engine
            .record_result(&e.execution_id, ok(), None)
            .await
            .unwrap();
        assert!(
            h.event_types(&apt)
                .await
                .contains(&"message.sent".to_owned())
        );
    }
);

on_both!(
    a_confirmation_stops_the_24h_reminder,
    |h: Harness| async move {
        let apt = h.book("IN-2", "Ada Lovelace", "+14155552671", 72).await;
        let a = h
            .command(
                "appointment.confirm",
                json!({"type": "appointment", "id": apt}),
                Value::Null,
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        h.advance(Duration::hours(71)).await;
        let claimed = h
            .engine
            .claim_executions("t", 10, Duration::seconds(60), None, None)
            .await
            .unwrap();
        assert!(
            claimed
                .iter()
                .all(|e| e.command_type != "messaging.send_reminder"),
            "{claimed:?}"
        );
        let skipped = h
            .events(Some(&apt))
            .await
            .into_iter()
            .filter(|e| e.event_type == "reminder.skipped")
            .count();
        assert_eq!(skipped, 2, "both reminders skipped as confirmed");
    }
);

on_both!(
    an_illegal_move_is_a_conflict_naming_both_states,
    |h: Harness| async move {
        let apt = h.book("IN-3", "Ada Lovelace", "+14155552671", 72).await;
        let a = h
            .command(
                "appointment.cancel",
                json!({"type": "appointment", "id": apt}),
                json!({"reason": "patient called"}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        let again = h
            .command(
                "appointment.confirm",
                json!({"type": "appointment", "id": apt}),
                Value::Null,
            )
            .await;
        assert_eq!(again.status, 409);
        assert_eq!(again.body["error"]["code"], "INVALID_TRANSITION");
        assert_eq!(again.body["error"]["details"]["from"], "cancelled");
        assert_eq!(again.body["error"]["details"]["to"], "confirmed");
        // Cancellation removed every timer but none was a reminder that went out.
        h.advance(Duration::hours(80)).await;
        let claimed = h
            .engine
            .claim_executions("t", 10, Duration::seconds(60), None, None)
            .await
            .unwrap();
        assert!(claimed.is_empty(), "{claimed:?}");
    }
);

on_both!(validation_errors_name_the_field, |h: Harness| async move {
    let starts = h.engine.clock().now() + Duration::hours(5);
    let mut p = booking("IN-4", "Ada", "+14155552671", starts);
    p["startsAt"] = json!("tomorrow");
    let a = h
        .command("appointment.upsert", json!({"type": "appointment"}), p)
        .await;
    assert_eq!(a.status, 422);
    assert_eq!(a.body["error"]["details"]["field"], "payload.startsAt");
    let mut p = booking("IN-4", "Ada", "+14155552671", starts);
    p["customer"]["timezone"] = json!("Mars/Base");
    let a = h
        .command("appointment.upsert", json!({"type": "appointment"}), p)
        .await;
    assert_eq!(
        a.body["error"]["details"]["field"],
        "payload.customer.timezone"
    );
    let a = h
        .command(
            "appointment.launch",
            json!({"type": "appointment"}),
            json!({}),
        )
        .await;
    assert_eq!(a.body["error"]["details"]["field"], "commandType");
});

on_both!(
    repeats_replay_the_stored_answer_and_a_changed_body_is_refused,
    |h: Harness| async move {
        let starts = h.engine.clock().now() + Duration::hours(72);
        let body = json!({"commandType": "appointment.upsert", "tenantId": "default", "aggregate": {"type": "appointment"},
                      "payload": booking("IN-5", "Ada", "+14155552671", starts)});
        let first = h
            .engine
            .execute_command("default", body.clone(), "same-key", "c1", "service:test")
            .await
            .unwrap();
        let again = h
            .engine
            .execute_command("default", body.clone(), "same-key", "c2", "service:test")
            .await
            .unwrap();
        assert!(!first.replayed && again.replayed);
        assert_eq!(first.body, again.body);
        let mut other = body.clone();
        other["payload"]["externalId"] = json!("IN-OTHER");
        let err = h
            .engine
            .execute_command("default", other, "same-key", "c3", "service:test")
            .await
            .unwrap_err();
        assert_eq!(
            aro_workflow::error_answer(&err).1["code"],
            "IDEMPOTENCY_KEY_REUSED"
        );
        // A 4xx is stored too: the same bad request gets the same answer, marked as replayed.
        let bad = json!({"commandType": "appointment.confirm", "tenantId": "default", "aggregate": {"type": "appointment", "id": "apt_missing"}});
        let e1 = h
            .engine
            .execute_command("default", bad.clone(), "bad-key", "c4", "service:test")
            .await
            .unwrap_err();
        assert_eq!(aro_workflow::error_answer(&e1).0, 404);
        let e2 = h
            .engine
            .execute_command("default", bad, "bad-key", "c5", "service:test")
            .await
            .unwrap();
        assert!(e2.replayed);
        assert_eq!(e2.status, 404);
    }
);

on_both!(
    twenty_racing_identical_commands_have_one_effect,
    |h: Harness| async move {
        let starts = h.engine.clock().now() + Duration::hours(72);
        let body = json!({"commandType": "appointment.upsert", "tenantId": "default", "aggregate": {"type": "appointment"},
                      "payload": booking("IN-RACE", "Ada", "+14155552671", starts)});
        let mut tasks = Vec::new();
        for i in 0..20 {
            let engine = h.engine.clone();
            let body = body.clone();
            tasks.push(tokio::spawn(async move {
                engine
                    .execute_command(
                        "default",
                        body,
                        "race-key",
                        &format!("c{i}"),
                        "service:test",
                    )
                    .await
            }));
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap().unwrap());
        }
        assert_eq!(
            answers.iter().filter(|a| !a.replayed).count(),
            1,
            "exactly one applied"
        );
        assert!(answers.iter().all(|a| a.body == answers[0].body));
        let booked = h
            .events(None)
            .await
            .into_iter()
            .filter(|e| e.event_type == "appointment.booked")
            .count();
        assert_eq!(booked, 1);
        // Twenty racing different keys for the same booking identity: still one appointment.
        let mut tasks = Vec::new();
        for i in 0..20 {
            let engine = h.engine.clone();
            let body = body.clone();
            tasks.push(tokio::spawn(async move {
                engine
                    .execute_command("default", body, &format!("k{i}"), "c", "service:test")
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().status, 200);
        }
        let booked = h
            .events(None)
            .await
            .into_iter()
            .filter(|e| e.event_type == "appointment.booked")
            .count();
        assert_eq!(booked, 1, "upserts are keyed by the booking identity");
    }
);

on_both!(
    a_lapsed_lease_is_offered_again_and_not_after_expires,
    |h: Harness| async move {
        let apt = h.book("IN-6", "Ada Lovelace", "+14155552671", 72).await;
        h.advance(Duration::hours(25)).await;
        let first = h
            .engine
            .claim_executions("a", 10, Duration::seconds(5), None, None)
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        // Still leased: nobody else gets it.
        assert!(
            h.engine
                .claim_executions("b", 10, Duration::seconds(60), None, None)
                .await
                .unwrap()
                .is_empty()
        );
        // The lease lapses (real time): the execution is offered again, attempt 2.
        tokio::time::sleep(std::time::Duration::from_millis(5200)).await;
        let again = h
            .engine
            .claim_executions("b", 10, Duration::seconds(60), None, None)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].execution_id, first[0].execution_id);
        assert_eq!(again[0].attempt, 2);
        // The old holder's heartbeat is refused.
        let lost = h
            .engine
            .heartbeat(&first[0].execution_id, "a", Duration::seconds(60), None)
            .await
            .unwrap_err();
        assert_eq!(aro_workflow::error_answer(&lost).1["code"], "LEASE_LOST");
        // A retryable failure puts it back; once the visit has started it is expired, never sent.
        h.engine
            .record_result(
                &again[0].execution_id,
                failure("PROVIDER_UNAVAILABLE", true),
                None,
            )
            .await
            .unwrap();
        h.advance(Duration::hours(48)).await;
        // The jittered retry delay is real time: make the retry due now rather than wait it out.
        let id = first[0].execution_id.clone();
        h.store
            .write(move |tx| {
                Box::pin(async move {
                    let mut row = tx.raw().get_execution(&id).await?.unwrap();
                    row.available_at = chrono::Utc::now() - Duration::seconds(1);
                    tx.raw().update_execution(&row).await.map(|_| ())
                })
            })
            .await
            .unwrap();
        let expired_claim = h
            .engine
            .claim_executions(
                "c",
                10,
                Duration::seconds(60),
                Some(vec!["messaging.send_reminder".into()]),
                None,
            )
            .await
            .unwrap();
        assert!(
            expired_claim.is_empty(),
            "never handed out past notAfter: {expired_claim:?}"
        );
        // Both reminders (the retried 48 h one and the 24 h one, never claimed) are marked
        // expired instead.
        let expired: Vec<String> = h
            .events(Some(&apt))
            .await
            .into_iter()
            .filter(|e| e.event_type == "execution.expired")
            .map(|e| {
                e.payload["executionId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        assert_eq!(expired.len(), 2, "{expired:?}");
        assert!(expired.contains(&first[0].execution_id), "{expired:?}");
    }
);

on_both!(
    exhausted_retries_dead_letter_and_can_be_retried_or_archived,
    |h: Harness| async move {
        h.book("IN-7", "Ada Lovelace", "+14155552671", 72).await;
        h.advance(Duration::hours(25)).await;
        let mut execution_id: Option<String> = None;
        let mut failures = 0;
        while failures < 6 {
            let claimed = h
                .engine
                .claim_executions("a", 10, Duration::seconds(60), None, None)
                .await
                .unwrap();
            let Some(e) = claimed.into_iter().next() else {
                // Waiting out the jittered backoff would take real time: make it available now.
                let id = execution_id.clone().unwrap();
                h.store
                    .write(move |tx| {
                        Box::pin(async move {
                            let mut row = tx.raw().get_execution(&id).await?.unwrap();
                            row.available_at = chrono::Utc::now() - Duration::seconds(1);
                            tx.raw().update_execution(&row).await.map(|_| ())
                        })
                    })
                    .await
                    .unwrap();
                continue;
            };
            execution_id = Some(e.execution_id.clone());
            assert_eq!(e.attempt, failures + 1);
            h.engine
                .record_result(&e.execution_id, failure("PROVIDER_UNAVAILABLE", true), None)
                .await
                .unwrap();
            failures += 1;
        }
        // Nothing is left to claim: the sixth failure was the last.
        assert!(
            h.engine
                .claim_executions("a", 10, Duration::seconds(60), None, None)
                .await
                .unwrap()
                .is_empty()
        );
        let dead: Vec<_> = h
            .events(None)
            .await
            .into_iter()
            .filter(|e| e.event_type == "execution.dead_lettered")
            .collect();
        assert_eq!(dead.len(), 1, "dead-lettered once retries ran out");
        let dl = dead[0].payload["deadLetterId"].as_str().unwrap().to_owned();
        assert!(
            h.events(None)
                .await
                .iter()
                .any(|e| e.event_type == "message.delivery_failed")
        );
        let retry = h
            .command(
                "dead_letter.retry",
                json!({"type": "dead_letter", "id": dl}),
                Value::Null,
            )
            .await;
        assert_eq!(retry.status, 200, "{}", retry.body);
        let claimed = h
            .engine
            .claim_executions("a", 10, Duration::seconds(60), None, None)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "a retried dead letter is offered again");
        let twice = h
            .command(
                "dead_letter.retry",
                json!({"type": "dead_letter", "id": dl}),
                Value::Null,
            )
            .await;
        assert_eq!(twice.status, 409);
        let archive = h
            .command(
                "dead_letter.archive",
                json!({"type": "dead_letter", "id": dl}),
                Value::Null,
            )
            .await;
        assert_eq!(archive.status, 200);
    }
);

on_both!(
    a_carrier_opt_out_revokes_consent_and_is_never_retried,
    |h: Harness| async move {
        let apt = h.book("IN-8", "Ada Lovelace", "+14155552671", 72).await;
        h.advance(Duration::hours(25)).await;
        let e = h
            .engine
            .claim_executions("a", 10, Duration::seconds(60), None, None)
            .await
            .unwrap()
            .remove(0);
        h.engine
            .record_result(&e.execution_id, failure("21610", false), None)
            .await
            .unwrap();
        let types = h.event_types(&apt).await;
        assert!(types.contains(&"message.delivery_failed".to_owned()));
        assert!(
            h.events(None)
                .await
                .iter()
                .any(|e| e.event_type == "consent.revoked")
        );
        // The 24 h reminder is refused for want of consent.
        h.advance(Duration::hours(24)).await;
        assert!(
            h.engine
                .claim_executions("a", 10, Duration::seconds(60), None, None)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            h.events(Some(&apt))
                .await
                .iter()
                .any(|e| e.event_type == "reminder.skipped" && e.payload["reason"] == "no_consent")
        );
    }
);

on_both!(
    the_engine_never_cancels_on_its_own,
    |h: Harness| async move {
        let apt = h.book("IN-9", "Ada Lovelace", "+14155552671", 72).await;
        let body = json!({"commandType": "appointment.cancel", "tenantId": "default", "aggregate": {"type": "appointment", "id": apt}});
        let err = h
            .engine
            .execute_command("default", body, "k-cancel", "c", aro_workflow::ENGINE_ACTOR)
            .await
            .unwrap_err();
        assert_eq!(
            aro_workflow::error_answer(&err).1["code"],
            "AUTO_CANCEL_FORBIDDEN"
        );
        assert_eq!(h.status(&apt).await, "booked");
    }
);

on_both!(
    the_message_cap_refuses_a_fourth_text_in_a_day,
    |h: Harness| async move {
        // Three visits for one patient, all reminded within the same day: the third text fills the
        // cap; reminders beyond it are refused and logged.
        for (i, hours) in [(1, 49), (2, 49), (3, 49), (4, 49)] {
            h.book(&format!("CAP-{i}"), "Ada Lovelace", "+14155552671", hours)
                .await;
        }
        h.advance(Duration::hours(2)).await;
        let claimed = h
            .engine
            .claim_executions("a", 20, Duration::seconds(60), None, None)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 3, "the cap is 3 per rolling 24 h");
        let capped = h
            .events(None)
            .await
            .into_iter()
            .filter(|e| e.event_type == "reminder.skipped" && e.payload["reason"] == "message_cap")
            .count();
        assert_eq!(capped, 1);
    }
);

#[tokio::test]
async fn timers_fire_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let master =
        aro_security::crypto::MasterKey::create_file(&dir.path().join("master.key")).unwrap();
    let _ = master;
    let keyring = || {
        aro_security::crypto::Keyring::new(
            aro_security::crypto::MasterKey::load(&dir.path().join("master.key")).unwrap(),
        )
    };
    let store = sqlite_store(dir.path(), keyring()).await;
    let h = Harness::with(store.clone(), Guard::Dir(tempfile::tempdir().unwrap())).await;
    h.book("IN-R", "Ada Lovelace", "+14155552671", 72).await;
    let offset = h.engine.clock().offset_ms();
    store.close().await;
    drop(h);
    // A new process: a new store on the same file, a new engine; business time goes on.
    let store = sqlite_store(dir.path(), keyring()).await;
    let clock = aro_workflow::Clock::with_offset_ms(offset);
    let engine = aro_workflow::Engine::new(
        store.clone(),
        clock,
        aro_workflow::EngineSettings::default(),
    );
    let target = engine.clock().now() + Duration::hours(25);
    let fired = engine.advance_clock_to(target).await.unwrap();
    assert!(fired >= 1);
    let claimed = engine
        .claim_executions("a", 10, Duration::seconds(60), None, None)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].payload["to"], "+14155552671");
    store.close().await;
}

#[tokio::test]
async fn clock_advance_fires_due_timers_in_order() {
    let h = Harness::sqlite().await;
    let a = h.book("ORD-1", "Ada Lovelace", "+14155552671", 60).await;
    let b = h.book("ORD-2", "Grace Hopper", "+14155552672", 50).await;
    h.advance(Duration::hours(40)).await;
    let sent: Vec<_> = h
        .events(None)
        .await
        .into_iter()
        .filter(|e| e.event_type == "message.queued")
        .map(|e| {
            (
                e.seq,
                e.payload["appointmentId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                e.occurred_at,
            )
        })
        .collect();
    assert!(sent.len() >= 2, "{sent:?}");
    // Each text was decided at its own due time, in due order.
    assert!(sent.windows(2).all(|w| w[0].2 <= w[1].2), "{sent:?}");
    assert_eq!(sent[0].1, b, "the earlier visit's reminder was due first");
    assert!(sent.iter().any(|s| s.1 == a));
}

/// Makes an execution's lease lapse now (leases are real time: moved rather than waited out).
async fn lapse_lease(h: &Harness, execution_id: &str) {
    let id = execution_id.to_owned();
    h.store
        .write(move |tx| {
            Box::pin(async move {
                let mut row = tx.raw().get_execution(&id).await?.unwrap();
                row.lease_until = Some(chrono::Utc::now() - Duration::seconds(1));
                tx.raw().update_execution(&row).await.map(|_| ())
            })
        })
        .await
        .unwrap();
}

on_both!(
    a_lease_that_keeps_lapsing_is_dead_lettered_not_offered_forever,
    |h: Harness| async move {
        let apt = h.book("IN-LAPSE", "Ada Lovelace", "+14155552671", 72).await;
        h.advance(Duration::hours(25)).await;
        let first = h
            .engine
            .claim_executions("a", 10, Duration::seconds(5), None, None)
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        let id = first[0].execution_id.clone();
        let max = {
            let id = id.clone();
            h.store
                .read(move |tx| Box::pin(async move { tx.raw().get_execution(&id).await }))
                .await
                .unwrap()
                .unwrap()
                .max_attempts
        };
        // The executor takes it and dies every time: each lapse re-offers it, up to the last
        // attempt.
        lapse_lease(&h, &id).await;
        for attempt in 2..=max {
            let claimed = h
                .engine
                .claim_executions("a", 10, Duration::seconds(5), None, None)
                .await
                .unwrap();
            assert_eq!(claimed.len(), 1, "attempt {attempt}");
            assert_eq!(claimed[0].attempt, attempt);
            lapse_lease(&h, &id).await;
        }
        // The last lease lapsed too: dead-lettered instead of handed out again.
        let claimed = h
            .engine
            .claim_executions("a", 10, Duration::seconds(5), None, None)
            .await
            .unwrap();
        assert!(
            claimed.is_empty(),
            "offered beyond max attempts: {claimed:?}"
        );
        let dead: Vec<_> = h
            .events(None)
            .await
            .into_iter()
            .filter(|e| e.event_type == "execution.dead_lettered")
            .collect();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].payload["executionId"], id.as_str());
        assert_eq!(dead[0].payload["error"]["code"], "LEASE_EXPIRED");
        assert_eq!(dead[0].payload["attempts"], max);
        let letters = h
            .store
            .read(|tx| {
                Box::pin(async move { tx.raw().list_dead_letters("default", None, 10).await })
            })
            .await
            .unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].error_code.as_deref(), Some("LEASE_EXPIRED"));
        // The reminder it carried failed (not silently pending forever).
        assert!(
            h.event_types(&apt)
                .await
                .contains(&"execution.dead_lettered".to_owned())
        );
        assert!(
            h.events(None)
                .await
                .iter()
                .any(|e| e.event_type == "message.delivery_failed")
        );
        // Staff can still retry it: offered again from attempt 1.
        let retry = h
            .command(
                "dead_letter.retry",
                json!({"type": "dead_letter", "id": letters[0].id}),
                Value::Null,
            )
            .await;
        assert_eq!(retry.status, 200, "{}", retry.body);
        let again = h
            .engine
            .claim_executions("a", 10, Duration::seconds(60), None, None)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempt, 1);
    }
);

/// Queues `n` executions of `command_type` for `tenant` (oldest first, in call order).
async fn enqueue(h: &Harness, tenant: &str, command_type: &'static str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = aro_store::ids::new_id(aro_domain::ids::prefix::EXECUTION);
        ids.push(id.clone());
        h.engine
            .with_ctx(tenant, "corr-queue", "service:test", move |ctx| {
                Box::pin(async move {
                    aro_workflow::executions::enqueue(
                        ctx,
                        aro_workflow::executions::NewExecution {
                            id,
                            command_type,
                            subject_id: None,
                            payload: json!({"n": 1}),
                            not_after: None,
                            aggregate_id: None,
                            max_attempts: 6,
                        },
                    )
                    .await
                })
            })
            .await
            .unwrap();
    }
    ids
}

async fn add_tenant(h: &Harness, id: &str, residency: aro_domain::tenant::ClassificationResidency) {
    aro_workflow::tenants::create(
        &h.store,
        h.engine.clock(),
        aro_workflow::tenants::NewTenant {
            id: aro_domain::ids::TenantId::parse(id).unwrap(),
            classification_residency: residency,
            ..aro_workflow::tenants::NewTenant::demo_default()
        },
        "test",
    )
    .await
    .unwrap();
}

on_both!(
    a_claim_is_not_starved_by_work_it_may_not_take,
    |h: Harness| async move {
        use aro_domain::tenant::ClassificationResidency as R;
        const SEND: &str = "messaging.send_message";
        const CLASSIFY: &str = "classification.classify_reply";
        add_tenant(&h, "tb", R::OpenclawExecutor).await;
        add_tenant(&h, "tc", R::CoreEngine).await;
        // Older backlogs: another tenant's sends, and classifications of both residencies.
        enqueue(&h, "tb", SEND, 12).await;
        enqueue(&h, "tb", CLASSIFY, 12).await;
        enqueue(&h, "tc", CLASSIFY, 12).await;
        let mine = enqueue(&h, "default", SEND, 1).await;
        let core_own = enqueue(&h, "tc", CLASSIFY, 1).await;

        // A token for one tenant gets its work however long the others' queue.
        let claimed = h
            .engine
            .claim_executions(
                "ta",
                10,
                Duration::seconds(60),
                None,
                Some(vec!["default".into()]),
            )
            .await
            .unwrap();
        let ids: Vec<_> = claimed.iter().map(|c| c.execution_id.clone()).collect();
        assert_eq!(ids, mine);

        // The executor never gets classifications that core runs, and core's worker never
        // gets the executor's: a page of the other's backlog does not hide one's own.
        let executor = h
            .engine
            .claim_executions(
                "x",
                100,
                Duration::seconds(60),
                Some(vec![CLASSIFY.into()]),
                None,
            )
            .await
            .unwrap();
        assert_eq!(executor.len(), 12);
        assert!(executor.iter().all(|c| c.tenant_id == "tb"), "{executor:?}");
        let core = h
            .engine
            .claim_core_classifications("core", 10, Duration::seconds(60))
            .await
            .unwrap();
        assert_eq!(core.len(), 10);
        assert!(core.iter().all(|c| c.tenant_id == "tc"));
        let rest = h
            .engine
            .claim_core_classifications("core", 10, Duration::seconds(60))
            .await
            .unwrap();
        assert_eq!(rest.len(), 3);
        assert!(rest.iter().any(|c| c.execution_id == core_own[0]));
        // An empty tenant list takes nothing.
        assert!(
            h.engine
                .claim_executions("none", 10, Duration::seconds(60), None, Some(vec![]))
                .await
                .unwrap()
                .is_empty()
        );
        // The other tenant's sends are all still there for a token that may take them.
        let tb = h
            .engine
            .claim_executions(
                "x",
                100,
                Duration::seconds(60),
                None,
                Some(vec!["tb".into()]),
            )
            .await
            .unwrap();
        assert_eq!(tb.len(), 12);
        assert!(tb.iter().all(|c| c.command_type == SEND));
    }
);

on_both!(
    concurrent_reschedules_of_one_visit_all_apply_and_replay_their_answer,
    |h: Harness| async move {
        let apt = h.book("IN-RACE", "Ada Lovelace", "+14155552671", 72).await;
        let mut tasks = Vec::new();
        for i in 0..20_i64 {
            let engine = h.engine.clone();
            let starts = h.engine.clock().now() + Duration::hours(80 + i);
            let body = json!({"commandType": "appointment.reschedule", "tenantId": "default",
                "aggregate": {"type": "appointment", "id": apt},
                "payload": {"startsAt": starts, "endsAt": starts + Duration::minutes(30)}});
            tasks.push(tokio::spawn(async move {
                let key = format!("race-{i}");
                let first = engine
                    .execute_command("default", body.clone(), &key, "c", "service:test")
                    .await;
                (key, body, first)
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        for (key, body, first) in results {
            let status = match &first {
                Ok(a) => a.status,
                Err(e) => aro_workflow::error_answer(e).0,
            };
            assert_eq!(status, 200, "{key}: {first:?}");
            let again = h
                .engine
                .execute_command("default", body, &key, "c", "service:test")
                .await
                .unwrap();
            assert!(again.replayed);
            assert_eq!(again.status, 200);
        }
        let moves = h
            .event_types(&apt)
            .await
            .into_iter()
            .filter(|t| t == "appointment.rescheduled")
            .count();
        assert_eq!(moves, 20);
    }
);
