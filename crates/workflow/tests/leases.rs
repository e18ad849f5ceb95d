//! One lease per claim (docs/adr/0006, addendum): two claimants that look alike to core (every
//! executor replica uses the same token subject) are told apart by the lease id each claim
//! hands out. Leases are moved into the past in the database instead of waiting them out.

#[macro_use]
mod support;

use aro_store::engine_rows::ExecutionRow;
use aro_workflow::EngineError;
use aro_workflow::executions::{ClaimedExecution, ExecutionResult, ResultError, ResultStatus};
use chrono::Duration;
use serde_json::json;
use support::*;

fn sent(sid: &str) -> ExecutionResult {
    ExecutionResult {
        status: ResultStatus::Succeeded,
        retryable: false,
        error: None,
        provider_ref: Some(sid.into()),
        output: Some(json!({"status": "queued"})),
        retry_after_seconds: None,
    }
}

fn unavailable() -> ExecutionResult {
    ExecutionResult {
        status: ResultStatus::Failed,
        retryable: true,
        error: Some(ResultError {
            code: "PROVIDER_UNAVAILABLE".into(),
            message: "503".into(),
        }),
        provider_ref: None,
        output: None,
        retry_after_seconds: None,
    }
}

fn code(error: &EngineError) -> String {
    aro_workflow::error_answer(error).1["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A booking whose 48 h reminder is due now: one execution to claim.
async fn one_due_reminder(h: &Harness) {
    h.book("LEASE-1", "Ada Lovelace", "+14155552671", 72).await;
    h.advance(Duration::hours(25)).await;
}

/// Claims what is due under the shared subject every executor replica uses.
async fn claim(h: &Harness) -> Vec<ClaimedExecution> {
    h.engine
        .claim_executions("openclaw-executor", 10, Duration::seconds(60), None, None)
        .await
        .unwrap()
}

async fn row(h: &Harness, id: &str) -> ExecutionRow {
    let id = id.to_owned();
    h.store
        .read(move |tx| Box::pin(async move { tx.raw().get_execution(&id).await }))
        .await
        .unwrap()
        .unwrap()
}

/// Lets the execution's lease lapse: its end moves a second into the past (real time).
async fn lapse(h: &Harness, id: &str) {
    let id = id.to_owned();
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
    a_holder_whose_lapsed_lease_was_claimed_again_cannot_extend_or_settle_it,
    |h: Harness| async move {
        one_due_reminder(&h).await;
        let a = claim(&h).await;
        assert_eq!(a.len(), 1);
        let a = a[0].clone();
        assert!(a.lease_id.starts_with("lse_"), "{}", a.lease_id);
        lapse(&h, &a.execution_id).await;

        // B (same subject) takes it again: a new lease.
        let b = claim(&h).await;
        assert_eq!(b.len(), 1);
        let b = b[0].clone();
        assert_eq!(b.execution_id, a.execution_id);
        assert_eq!(b.attempt, 2);
        assert_ne!(b.lease_id, a.lease_id, "every claim has its own lease");
        let before = row(&h, &b.execution_id).await;
        let events_before = h.events(None).await.len();

        // A's heartbeat is refused, and so is its result, which changes nothing.
        let lost = h
            .engine
            .heartbeat_lease(&a.execution_id, &a.lease_id, Duration::seconds(60), None)
            .await
            .unwrap_err();
        assert_eq!(code(&lost), "LEASE_LOST");
        assert_eq!(aro_workflow::error_answer(&lost).0, 409);
        let lost = h
            .engine
            .record_lease_result(&a.execution_id, &a.lease_id, sent("SM_A"), None)
            .await
            .unwrap_err();
        assert_eq!(code(&lost), "LEASE_LOST");
        let after = row(&h, &b.execution_id).await;
        assert_eq!(after.status, "leased");
        assert_eq!(after.lease_id.as_deref(), Some(b.lease_id.as_str()));
        assert_eq!(after.lease_until, before.lease_until);
        assert_eq!(after.attempt, 2);
        assert_eq!(after.provider_ref, None);
        assert_eq!(h.events(None).await.len(), events_before, "no events");

        // B's heartbeat and result are taken.
        h.engine
            .heartbeat_lease(&b.execution_id, &b.lease_id, Duration::seconds(60), None)
            .await
            .unwrap();
        let answer = h
            .engine
            .record_lease_result(&b.execution_id, &b.lease_id, sent("SM_B"), None)
            .await
            .unwrap();
        assert_eq!(answer["status"], "succeeded");
        let done = row(&h, &b.execution_id).await;
        assert_eq!(done.status, "succeeded");
        assert_eq!(done.provider_ref.as_deref(), Some("SM_B"));

        // B repeating its report is a duplicate; A reporting late is still refused.
        let again = h
            .engine
            .record_lease_result(&b.execution_id, &b.lease_id, sent("SM_B"), None)
            .await
            .unwrap();
        assert_eq!(again["duplicate"], true);
        let late = h
            .engine
            .record_lease_result(&a.execution_id, &a.lease_id, sent("SM_A"), None)
            .await
            .unwrap_err();
        assert_eq!(code(&late), "LEASE_LOST");
        assert_eq!(
            row(&h, &b.execution_id).await.provider_ref.as_deref(),
            Some("SM_B")
        );
    }
);

on_both!(
    a_lapsed_lease_nobody_claimed_again_is_still_the_holders,
    |h: Harness| async move {
        one_due_reminder(&h).await;
        let a = claim(&h).await.remove(0);
        lapse(&h, &a.execution_id).await;
        // Late, but nobody else took it: the heartbeat extends it and the result counts.
        h.engine
            .heartbeat_lease(&a.execution_id, &a.lease_id, Duration::seconds(60), None)
            .await
            .unwrap();
        assert!(claim(&h).await.is_empty(), "extended, so not offered again");
        lapse(&h, &a.execution_id).await;
        let answer = h
            .engine
            .record_lease_result(&a.execution_id, &a.lease_id, sent("SM_A"), None)
            .await
            .unwrap();
        assert_eq!(answer["status"], "succeeded");
    }
);

on_both!(
    a_lease_ends_with_a_retryable_failure,
    |h: Harness| async move {
        one_due_reminder(&h).await;
        let a = claim(&h).await.remove(0);
        let answer = h
            .engine
            .record_lease_result(&a.execution_id, &a.lease_id, unavailable(), None)
            .await
            .unwrap();
        assert_eq!(answer["status"], "ready");
        // The lease is over: neither a heartbeat nor a second report (say, a success that
        // contradicts it) goes through, and the retry stays scheduled.
        let lost = h
            .engine
            .heartbeat_lease(&a.execution_id, &a.lease_id, Duration::seconds(60), None)
            .await
            .unwrap_err();
        assert_eq!(code(&lost), "LEASE_LOST");
        let lost = h
            .engine
            .record_lease_result(&a.execution_id, &a.lease_id, sent("SM_A"), None)
            .await
            .unwrap_err();
        assert_eq!(code(&lost), "LEASE_LOST");
        let waiting = row(&h, &a.execution_id).await;
        assert_eq!(waiting.status, "ready");
        assert_eq!(waiting.provider_ref, None);
    }
);

on_both!(
    a_lease_id_is_checked_only_for_executions_the_caller_may_see,
    |h: Harness| async move {
        one_due_reminder(&h).await;
        let a = claim(&h).await.remove(0);
        // Another tenant's token: not found, whatever the lease.
        let hidden = h
            .engine
            .record_lease_result(
                &a.execution_id,
                &a.lease_id,
                sent("SM_A"),
                Some(vec!["other".into()]),
            )
            .await
            .unwrap_err();
        assert_eq!(code(&hidden), "NOT_FOUND");
        let missing = h
            .engine
            .heartbeat_lease("exe_missing", &a.lease_id, Duration::seconds(60), None)
            .await
            .unwrap_err();
        assert_eq!(code(&missing), "NOT_FOUND");
        // A lease id that was never this execution's.
        let wrong = h
            .engine
            .heartbeat_lease(
                &a.execution_id,
                "lse_00000000000000000000000000000000",
                Duration::seconds(60),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(code(&wrong), "LEASE_LOST");
        // Callers without a lease id keep the older, subject-based behaviour.
        h.engine
            .heartbeat(
                &a.execution_id,
                "openclaw-executor",
                Duration::seconds(60),
                None,
            )
            .await
            .unwrap();
        h.engine
            .record_result(&a.execution_id, sent("SM_A"), None)
            .await
            .unwrap();
    }
);
