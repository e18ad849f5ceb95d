//! The execution loop: claim a batch from core, perform each execution the tenant allows,
//! concurrently and within limits, keep long ones' leases alive, report every result.
//!
//! [`Worker::claim_and_run_once`] is one step (claim, perform, report, return), which tests
//! drive deterministically; [`Worker::run`] is the loop a running service uses: it claims as
//! slots free up, polls every [`crate::Tuning::poll_interval`] when the queue is empty, claims
//! again at once when a batch came back full, and backs off while core is unreachable.
//!
//! On shutdown nothing new is claimed; executions in flight get
//! [`crate::Tuning::shutdown_grace`] to finish and report, and whatever is still running then
//! is dropped: its lease lapses and core offers it again (with a higher attempt, so a send
//! looks up before resending).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aro_http::CancellationToken;
use aro_http::request_id::{new_request_id, with_request_id};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::Tuning;
use crate::core::{ClaimedExecution, CoreClient, CoreError, ExecutionReport};
use crate::handlers;
use crate::outcome::{ExecutionFailure, Outcome};
use crate::permissions::{PermissionCache, Verdict};
use crate::providers::Providers;

/// How long to wait before the next try when the permission list could not be read.
const PERMISSION_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The longest pause between claims while core cannot be reached.
const MAX_CLAIM_BACKOFF: Duration = Duration::from_secs(30);

/// What one [`Worker::claim_and_run_once`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchSummary {
    pub claimed: usize,
    pub succeeded: usize,
    pub failed: usize,
}

/// Counts since the worker started (for tests and the log; metrics carry the same).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    pub claimed: u64,
    pub succeeded: u64,
    pub failed_retryable: u64,
    pub failed_permanent: u64,
    /// Results core could not be told (its lease lapses; core offers the execution again).
    pub unreported: u64,
    /// Results core refused because our lease lapsed and another holder claimed the execution
    /// (`LEASE_LOST`): that holder's result counts.
    pub lease_lost: u64,
}

#[derive(Debug, Default)]
struct Counters {
    claimed: AtomicU64,
    succeeded: AtomicU64,
    failed_retryable: AtomicU64,
    failed_permanent: AtomicU64,
    unreported: AtomicU64,
    lease_lost: AtomicU64,
}

struct Inner {
    core: CoreClient,
    permissions: PermissionCache,
    providers: Providers,
    lease: Duration,
    slots: Arc<Semaphore>,
    tuning: Tuning,
    counters: Counters,
}

/// Claims and performs executions. Cheap to clone; clones share slots and counters.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("lease", &self.inner.lease)
            .field("free_slots", &self.inner.slots.available_permits())
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker performing at most `max_in_flight` executions at once, each under a lease of
    /// `lease`.
    pub fn new(
        core: CoreClient,
        providers: Providers,
        lease: Duration,
        max_in_flight: usize,
        tuning: Tuning,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                permissions: PermissionCache::new(core.clone()),
                core,
                providers,
                lease,
                slots: Arc::new(Semaphore::new(max_in_flight.max(1))),
                tuning,
                counters: Counters::default(),
            }),
        }
    }

    /// Counts since start.
    pub fn stats(&self) -> WorkerStats {
        let c = &self.inner.counters;
        WorkerStats {
            claimed: c.claimed.load(Ordering::Relaxed),
            succeeded: c.succeeded.load(Ordering::Relaxed),
            failed_retryable: c.failed_retryable.load(Ordering::Relaxed),
            failed_permanent: c.failed_permanent.load(Ordering::Relaxed),
            unreported: c.unreported.load(Ordering::Relaxed),
            lease_lost: c.lease_lost.load(Ordering::Relaxed),
        }
    }

    /// Claims as many executions as there are free slots, performs them concurrently, reports
    /// each result, and returns once all are done.
    pub async fn claim_and_run_once(&self) -> Result<BatchSummary, CoreError> {
        let batch = self.claim().await?;
        let mut runs = Vec::with_capacity(batch.len());
        for (execution, permit) in batch {
            runs.push(self.clone().run_one(execution, permit));
        }
        let claimed = runs.len();
        let outcomes = futures::future::join_all(runs).await;
        let succeeded = outcomes.iter().filter(|o| **o == "succeeded").count();
        Ok(BatchSummary {
            claimed,
            succeeded,
            failed: claimed - succeeded,
        })
    }

    /// Claims up to the free room, each execution with the slot it will run in.
    async fn claim(&self) -> Result<Vec<(ClaimedExecution, OwnedSemaphorePermit)>, CoreError> {
        let room = self.inner.slots.available_permits();
        if room == 0 {
            return Ok(Vec::new());
        }
        let limit = u32::try_from(room).unwrap_or(u32::MAX);
        let batch = self.inner.core.claim(limit, self.inner.lease).await?;
        if !batch.is_empty() {
            tracing::debug!(claimed = batch.len(), "claimed executions");
        }
        self.inner
            .counters
            .claimed
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        for execution in &batch {
            // A tenant seen for the first time has its needs reviewed (in the background: it
            // costs a read of core only when an installation section is missing).
            if self.inner.providers.note_tenant(&execution.tenant_id)
                && !self.inner.providers.missing_sections().is_empty()
            {
                let providers = self.inner.providers.clone();
                let core = self.inner.core.clone();
                let tenant = execution.tenant_id.clone();
                tokio::spawn(async move { providers.review_tenant_needs(&core, &tenant).await });
            }
        }
        let mut out = Vec::with_capacity(batch.len());
        for execution in batch {
            // Core hands out at most `room`, and only this loop claims, so a slot is free. Were
            // it not, the execution is left alone: its lease lapses and core offers it again.
            match Arc::clone(&self.inner.slots).try_acquire_owned() {
                Ok(permit) => out.push((execution, permit)),
                Err(_) => tracing::warn!(
                    execution = %execution.execution_id,
                    "claimed more than there is room for; leaving it to lease expiry"
                ),
            }
        }
        Ok(out)
    }

    /// The service's loop, until `shutdown`.
    pub async fn run(&self, shutdown: CancellationToken) {
        let tuning = self.inner.tuning;
        let mut running: JoinSet<&'static str> = JoinSet::new();
        let mut failures: u32 = 0;
        loop {
            while running.try_join_next().is_some() {}
            if shutdown.is_cancelled() {
                break;
            }
            let mut wait = tuning.poll_interval;
            let room = self.inner.slots.available_permits();
            if room > 0 {
                match self.claim().await {
                    Ok(batch) => {
                        if failures > 0 {
                            tracing::info!("core reachable again; claiming");
                        }
                        failures = 0;
                        let full = batch.len() >= room;
                        for (execution, permit) in batch {
                            running.spawn(self.clone().run_one(execution, permit));
                        }
                        if full {
                            continue;
                        }
                    }
                    Err(error) => {
                        failures = failures.saturating_add(1);
                        wait = claim_backoff(failures, &error, tuning.poll_interval);
                        if failures == 1 || failures.is_power_of_two() {
                            tracing::warn!(
                                error = %error,
                                failures,
                                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                                "cannot claim from core"
                            );
                        }
                    }
                }
            }
            let slots_full = self.inner.slots.available_permits() == 0;
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
                Some(_) = running.join_next(), if slots_full && !running.is_empty() => {}
            }
        }
        self.drain(running).await;
    }

    /// Lets executions in flight finish within the grace period; abandons the rest to lease
    /// expiry.
    async fn drain(&self, mut running: JoinSet<&'static str>) {
        if running.is_empty() {
            return;
        }
        let in_flight = running.len();
        tracing::info!(in_flight, "stopping: letting executions in flight finish");
        let finished = tokio::time::timeout(self.inner.tuning.shutdown_grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            tracing::warn!(
                abandoned = running.len(),
                "executions still running at shutdown are abandoned; core offers them again when their leases lapse"
            );
            running.abort_all();
        }
    }

    /// Performs one execution under its lease and reports the result; returns the outcome's
    /// label.
    async fn run_one(
        self,
        execution: ClaimedExecution,
        _slot: OwnedSemaphorePermit,
    ) -> &'static str {
        let request_id = new_request_id();
        let span = tracing::info_span!(
            "execution",
            execution = %execution.execution_id,
            tenant = %execution.tenant_id,
            command_type = %execution.command_type,
            attempt = execution.attempt,
            correlation = %execution.correlation_id,
            request_id = %request_id,
        );
        with_request_id(
            request_id,
            self.perform_and_report(execution).instrument(span),
        )
        .await
    }

    async fn perform_and_report(&self, execution: ClaimedExecution) -> &'static str {
        let outcome = self.perform_under_lease(&execution).await;
        let label = outcome.label();
        let counter = match label {
            "succeeded" => &self.inner.counters.succeeded,
            "failed_retryable" => &self.inner.counters.failed_retryable,
            _ => &self.inner.counters.failed_permanent,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(
            "aro_executor_executions_total",
            "service" => crate::SERVICE,
            "command_type" => metric_type(&execution.command_type),
            "result" => label,
        )
        .increment(1);
        if let Outcome::Failed(failure) = &outcome {
            tracing::info!(code = %failure.code, retryable = failure.retryable, "execution failed");
        }
        let report = ExecutionReport::from(outcome);
        match self
            .inner
            .core
            .report(
                &execution.execution_id,
                execution.lease_id.as_deref(),
                &report,
            )
            .await
        {
            Ok(_) => {}
            Err(error) if error.code() == Some("EXECUTION_FINISHED") => {
                // Another holder (after our lease lapsed) reported first; core keeps that.
                tracing::info!("core already has a different result for this execution");
            }
            Err(error) if error.code() == Some("LEASE_LOST") => {
                // Our lease lapsed and another holder claimed the execution: its result is the
                // one core takes, and ours changed nothing.
                self.inner
                    .counters
                    .lease_lost
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "result refused: the lease lapsed and another holder has the execution now"
                );
            }
            Err(error) => {
                self.inner
                    .counters
                    .unreported
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    error = %error,
                    "result not recorded; core will offer the execution again when its lease lapses"
                );
            }
        }
        label
    }

    /// The permission check and the handler, with heartbeats keeping the lease while they run.
    async fn perform_under_lease(&self, execution: &ClaimedExecution) -> Outcome {
        let work = self.decide_and_perform(execution);
        let heartbeats = self.keep_lease(&execution.execution_id, execution.lease_id.as_deref());
        tokio::select! {
            biased;
            outcome = work => outcome,
            () = heartbeats => Outcome::Failed(ExecutionFailure::retryable(
                "EXECUTOR_INTERNAL",
                "heartbeats stopped unexpectedly",
                None,
            )),
        }
    }

    async fn decide_and_perform(&self, execution: &ClaimedExecution) -> Outcome {
        match self
            .inner
            .permissions
            .check(&execution.tenant_id, &execution.command_type)
            .await
        {
            Ok(Verdict::Allowed) => handlers::perform(&self.inner.providers, execution).await,
            Ok(Verdict::Denied) => {
                tracing::warn!("refused: not in the tenant's permission manifest");
                Outcome::Failed(ExecutionFailure::permanent(
                    "PERMISSION_DENIED",
                    format!(
                        "the tenant's permission manifest does not allow {}",
                        metric_type(&execution.command_type)
                    ),
                ))
            }
            Err(error) => Outcome::Failed(ExecutionFailure::retryable(
                "PERMISSION_CHECK_UNAVAILABLE",
                format!("the tenant's permissions could not be read: {error}"),
                Some(PERMISSION_RETRY_AFTER),
            )),
        }
    }

    /// Renews the lease every third of its length, forever (the caller stops polling it when
    /// the work is done). A lost lease is logged: the work goes on, since stopping a send
    /// half-way is no safer than finishing it, and core keeps the first result it gets.
    async fn keep_lease(&self, execution_id: &str, lease_id: Option<&str>) {
        let lease = self.inner.lease;
        let every = (lease / 3).max(Duration::from_millis(500));
        loop {
            tokio::time::sleep(every).await;
            match self
                .inner
                .core
                .heartbeat(execution_id, lease_id, lease)
                .await
            {
                Ok(_) => {}
                Err(error) if error.code() == Some("LEASE_LOST") => {
                    tracing::warn!("lease lost while performing; another executor may hold it now");
                    break;
                }
                Err(error) => tracing::warn!(error = %error, "heartbeat failed"),
            }
        }
        futures::future::pending::<()>().await;
    }
}

/// The type as a metric label: known types as they are, anything else folded into one label
/// so a bad payload cannot create unbounded series.
fn metric_type(command_type: &str) -> &'static str {
    handlers::KNOWN_TYPES
        .iter()
        .find(|t| **t == command_type)
        .copied()
        .unwrap_or("other")
}

/// The pause before the next claim after `failures` failed ones: doubling from the poll
/// interval, at most [`MAX_CLAIM_BACKOFF`], never shorter than our breaker's own wait.
fn claim_backoff(failures: u32, error: &CoreError, poll_interval: Duration) -> Duration {
    let doubling = poll_interval
        .saturating_mul(1u32.checked_shl(failures.min(16)).unwrap_or(u32::MAX))
        .min(MAX_CLAIM_BACKOFF);
    match error {
        CoreError::Paused(wait) => doubling.max(*wait).min(MAX_CLAIM_BACKOFF),
        _ => doubling,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_back_off_while_core_is_down_and_stay_bounded() {
        let poll = Duration::from_millis(200);
        let down = CoreError::Unreachable("x");
        assert_eq!(claim_backoff(1, &down, poll), Duration::from_millis(400));
        assert_eq!(claim_backoff(3, &down, poll), Duration::from_millis(1600));
        assert_eq!(claim_backoff(40, &down, poll), MAX_CLAIM_BACKOFF);
        let paused = CoreError::Paused(Duration::from_secs(5));
        assert_eq!(claim_backoff(1, &paused, poll), Duration::from_secs(5));
    }

    #[test]
    fn unknown_types_share_one_metric_label() {
        assert_eq!(
            metric_type("messaging.send_reminder"),
            "messaging.send_reminder"
        );
        assert_eq!(metric_type("anything.else"), "other");
    }
}
