//! Claims the executor turned away itself (its own breaker open or busy probing, its own rate
//! limit full: docs/executor.md, "Not attempted") are not attempts: the execution is offered
//! again after the executor's wait with its attempts intact, expires past its `notAfter`, and
//! is dead-lettered only after [`MAX_DEFERRALS`] of them. Waits are moved into the past in the
//! database instead of being waited out.

#[macro_use]
mod support;

use aro_store::engine_rows::ExecutionRow;
use aro_workflow::executions::{
    ClaimedExecution, ExecutionResult, MAX_DEFERRALS, NOT_ATTEMPTED_TOO_OFTEN, ResultError,
    ResultStatus,
};
use chrono::{Duration, Utc};
use serde_json::json;
use support::*;

fn failed(code: &str, retry_after_seconds: Option<u64>) -> ExecutionResult {
    ExecutionResult {
        status: ResultStatus::Failed,
        retryable: true,
        error: Some(ResultError {
            code: code.into(),
            message: "refused".into(),
        }),
        provider_ref: None,
        output: None,
        retry_after_seconds,
    }
}

fn circuit_open(retry_after_seconds: u64) -> ExecutionResult {
    failed("PROVIDER_CIRCUIT_OPEN", Some(retry_after_seconds))
}

/// A booking whose 48 h reminder is due now: one execution to claim.
async fn one_due_reminder(h: &Harness) {
    h.book("DEFER-1", "Ada Lovelace", "+14155552671", 72).await;
    h.advance(Duration::hours(25)).await;
}

async fn claim(h: &Harness) -> Vec<ClaimedExecution> {
    h.engine
        .claim_executions("openclaw-executor", 10, Duration::seconds(60), None, None)
        .await
        .unwrap()
}

async fn claim_one(h: &Harness) -> ClaimedExecution {
    let mut claimed = claim(h).await;
    assert_eq!(claimed.len(), 1, "one execution is offered");
    claimed.remove(0)
}

async fn row(h: &Harness, id: &str) -> ExecutionRow {
    let id = id.to_owned();
    h.store
        .read(move |tx| Box::pin(async move { tx.raw().get_execution(&id).await }))
        .await
        .unwrap()
        .unwrap()
}

/// Changes the stored execution (to skip a wait or set a count up).
async fn edit(h: &Harness, id: &str, f: impl FnOnce(&mut ExecutionRow) + Send + 'static) {
    let id = id.to_owned();
    h.store
        .write(move |tx| {
            Box::pin(async move {
                let mut row = tx.raw().get_execution(&id).await?.unwrap();
                f(&mut row);
                tx.raw().update_execution(&row).await.map(|_| ())
            })
        })
        .await
        .unwrap();
}

/// Makes a waiting execution available now (real time).
async fn make_due(h: &Harness, id: &str) {
    edit(h, id, |row| {
        row.available_at = Utc::now() - Duration::seconds(1);
    })
    .await;
}

async fn report(h: &Harness, claimed: &ClaimedExecution, result: ExecutionResult) -> String {
    h.engine
        .record_lease_result(&claimed.execution_id, &claimed.lease_id, result, None)
        .await
        .unwrap()["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

on_both!(
    a_claim_turned_away_by_the_executor_gives_its_attempt_back,
    |h: Harness| async move {
        one_due_reminder(&h).await;
        let first = claim_one(&h).await;
        let max = row(&h, &first.execution_id).await.max_attempts;
        let id = first.execution_id.clone();

        // Twice the attempts the execution has, every one turned away by the breaker.
        let mut claimed = first;
        for n in 1..=2 * max {
            let before = Utc::now();
            assert_eq!(report(&h, &claimed, circuit_open(30)).await, "ready");
            let r = row(&h, &id).await;
            assert_eq!(r.deferrals, n);
            assert_eq!(r.last_error_code.as_deref(), Some("PROVIDER_CIRCUIT_OPEN"));
            assert!(
                r.available_at >= before + Duration::seconds(30),
                "offered again only after the breaker's wait: {} vs {before}",
                r.available_at
            );
            assert!(claim(&h).await.is_empty(), "not before the wait is over");
            make_due(&h, &id).await;
            claimed = claim_one(&h).await;
            // Every claim is a hand-out, so a send still looks up before resending.
            assert_eq!(claimed.attempt, n + 1);
        }
        // The local rate limit's refusal is no attempt either.
        assert_eq!(
            report(&h, &claimed, failed("PROVIDER_THROTTLED_LOCALLY", Some(1))).await,
            "ready"
        );
        make_due(&h, &id).await;
        claimed = claim_one(&h).await;

        // Real attempts still count, all of them: the last one dead-letters the execution.
        for _ in 1..max {
            assert_eq!(
                report(&h, &claimed, failed("PROVIDER_UNAVAILABLE", None)).await,
                "ready"
            );
            make_due(&h, &id).await;
            claimed = claim_one(&h).await;
        }
        assert_eq!(
            report(&h, &claimed, failed("PROVIDER_UNAVAILABLE", None)).await,
            "dead"
        );
        let r = row(&h, &id).await;
        assert_eq!(r.status, "dead");
        assert_eq!(r.attempt - r.deferrals, max);
        let dead = h.events(None).await;
        let dead: Vec<_> = dead
            .iter()
            .filter(|e| e.event_type == "execution.dead_lettered")
            .collect();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].payload["attempts"], json!(max));
    }
);

on_both!(
    a_turned_away_claim_past_its_not_after_expires,
    |h: Harness| async move {
        one_due_reminder(&h).await;
        let claimed = claim_one(&h).await;
        let not_after = claimed.not_after.expect("a reminder has a notAfter");
        let now = h.engine.clock().now();
        h.advance(not_after - now + Duration::minutes(1)).await;
        assert_eq!(report(&h, &claimed, circuit_open(1)).await, "expired");
        let r = row(&h, &claimed.execution_id).await;
        assert_eq!(r.status, "expired");
        let types: Vec<_> = h
            .events(None)
            .await
            .into_iter()
            .map(|e| e.event_type)
            .collect();
        assert!(types.iter().any(|t| t == "execution.expired"), "{types:?}");
        assert!(!types.iter().any(|t| t == "execution.dead_lettered"));
        make_due(&h, &claimed.execution_id).await;
        let offered = claim(&h).await;
        assert!(
            offered
                .iter()
                .all(|c| c.execution_id != claimed.execution_id),
            "never offered again"
        );
        assert_eq!(row(&h, &claimed.execution_id).await.status, "expired");
    }
);

on_both!(
    an_execution_turned_away_too_often_is_dead_lettered,
    |h: Harness| async move {
        one_due_reminder(&h).await;
        let claimed = claim_one(&h).await;
        let id = claimed.execution_id.clone();
        // As if the breaker had turned it away all but once already.
        edit(&h, &id, |row| {
            row.attempt += MAX_DEFERRALS - 1;
            row.deferrals = MAX_DEFERRALS - 1;
        })
        .await;
        assert_eq!(report(&h, &claimed, circuit_open(30)).await, "dead");
        let r = row(&h, &id).await;
        assert_eq!(r.status, "dead");
        assert_eq!(r.last_error_code.as_deref(), Some(NOT_ATTEMPTED_TOO_OFTEN));
        let events = h.events(None).await;
        let dead: Vec<_> = events
            .iter()
            .filter(|e| e.event_type == "execution.dead_lettered")
            .collect();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].payload["error"]["code"], NOT_ATTEMPTED_TOO_OFTEN);
        // It never reached the provider: no attempt was used.
        assert_eq!(dead[0].payload["attempts"], json!(0));
    }
);
