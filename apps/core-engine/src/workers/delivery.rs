//! Delivering events to push subscriptions, at least once, in seq order per subscription.
//!
//! One step ([`DeliveryWorker::claim_and_run_once`]) leases the due subscriptions that have
//! undelivered events (real-time leases; on PostgreSQL claimed with `for update skip locked`, so
//! replicas never deliver one subscription at the same time), then for each one POSTs its
//! pending events in seq order, signed per Standard Webhooks (`webhook-id` = the event id, the
//! same on every retry). Each POST is one attempt through [`Resilient`] (per-destination rate
//! limit, timeout, circuit breaker); the retry schedule is not kept in memory but in the
//! subscription row (`failure_count`, `next_attempt_at`), so it survives restarts:
//!
//! - 2xx advances the cursor (saved after every delivery, so a crash re-sends at most one event);
//! - 410 Gone disables the subscription at once;
//! - anything else (another status, a timeout, a refused connection) stops delivery of this
//!   subscription until `next_attempt_at`: the receiver's `Retry-After` when it gave one (capped
//!   at [`DeliverySettings::max_retry_after`]), otherwise exponential backoff with full jitter
//!   from [`DeliverySettings::base_delay`] doubling to [`DeliverySettings::max_delay`];
//! - sustained failure disables it: failing without a success for
//!   [`DeliverySettings::disable_after`] (3 days) with at least
//!   [`DeliverySettings::disable_min_failures`] (10) failed attempts in a row. A replay
//!   re-enables it.
//!
//! Logs carry subscription ids, seqs and status codes; never URLs, bodies or secrets.

use crate::AppState;
use aro_http::CancellationToken;
use aro_resilience::{
    Backoff, CallError, Classify, DestinationPolicy, Failure, Resilient, parse_retry_after,
};
use aro_security::signatures::standard_webhooks;
use aro_store::subscriptions::{ClaimedSubscription, DeliveryState, SubscriptionStatus};
use aro_store::{Event, EventQuery, Store, StoreError};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// `disabled_reason` after a 410 Gone.
pub const DISABLED_GONE: &str = "receiver_gone";
/// `disabled_reason` after failing for too long.
pub const DISABLED_FAILING: &str = "sustained_failure";

/// How long shutdown waits for an in-flight delivery before abandoning it (it is retried,
/// with the same `webhook-id`, after the lease runs out).
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Events read per query while delivering.
const PAGE: u32 = 100;

/// How retry waits are drawn from the backoff window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform in `[0, min(max_delay, base_delay * 2^n)]`: spreads the retries of many
    /// subscriptions that failed together. The production setting.
    Full,
    /// Always the window's upper bound: deterministic, for tests that check the schedule.
    Ceiling,
}

/// The delivery worker's knobs. Defaults are the production values.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Upper bound of the first retry's wait.
    pub base_delay: Duration,
    /// The largest wait between attempts.
    pub max_delay: Duration,
    pub jitter: Jitter,
    /// The longest `Retry-After` honoured; longer ones are cut to this.
    pub max_retry_after: Duration,
    /// One attempt's time limit.
    pub attempt_timeout: Duration,
    /// How long a claim holds a subscription (renewed after every delivery).
    pub lease: Duration,
    /// Subscriptions leased per step (delivered concurrently, each in seq order).
    pub subscriptions_per_step: u32,
    /// Events delivered to one subscription per claim before it is released, so one busy
    /// subscription cannot starve the others.
    pub events_per_claim: u32,
    /// A subscription failing for this long without a success is disabled...
    pub disable_after: Duration,
    /// ...provided at least this many attempts in a row failed.
    pub disable_min_failures: u32,
    /// How often the loop looks for due work when nothing wakes it.
    pub poll_interval: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
            jitter: Jitter::Full,
            max_retry_after: Duration::from_secs(24 * 3600),
            attempt_timeout: Duration::from_secs(10),
            lease: Duration::from_secs(60),
            subscriptions_per_step: 16,
            events_per_claim: 100,
            disable_after: Duration::from_secs(3 * 24 * 3600),
            disable_min_failures: 10,
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Why the delivery worker could not start or make progress.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the HTTP client could not be built: {0}")]
    Client(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One POST's failure, in terms the resilience layer can classify.
#[derive(Debug)]
enum SendError {
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    Transport(&'static str),
    /// Our stored secret is unusable; counted as a failure so the subscription is eventually
    /// disabled rather than retried forever.
    Secret,
}

impl Classify for SendError {
    fn classify(&self) -> Failure {
        match self {
            Self::Status { code, retry_after } => Failure::for_http_status(*code, *retry_after),
            Self::Transport(kind) => Failure::retryable(*kind),
            Self::Secret => Failure::permanent("unusable signing secret"),
        }
    }
}

impl SendError {
    fn label(&self) -> String {
        match self {
            Self::Status { code, .. } => format!("http status {code}"),
            Self::Transport(kind) => (*kind).to_owned(),
            Self::Secret => "unusable signing secret".to_owned(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            Self::Transport(_) | Self::Secret => None,
        }
    }
}

/// How one attempt went.
enum Outcome {
    Delivered,
    /// 410: the receiver says the endpoint is gone for good.
    Gone,
    /// The breaker or the rate limit held the call back; nothing was sent.
    NotAttempted {
        retry_in: Duration,
    },
    Failed {
        reason: String,
        retry_after: Option<Duration>,
    },
}

/// Delivers events to subscriptions; one per process (cheap to share by reference).
#[derive(Debug)]
pub struct DeliveryWorker {
    store: Store,
    settings: DeliverySettings,
    /// This worker's lease identity.
    owner: String,
    client: reqwest::Client,
    resilient: Resilient,
}

impl DeliveryWorker {
    pub fn new(store: Store, settings: DeliverySettings) -> Result<Self, DeliveryError> {
        let client = reqwest::Client::builder()
            // A redirect could point a signed delivery anywhere; receivers give their final URL.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.attempt_timeout)
            .user_agent(concat!("aro-core-engine/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DeliveryError::Client(e.to_string()))?;
        let policy = DestinationPolicy::default()
            // One attempt per call: the schedule of retries is persisted, not slept in memory.
            .with_backoff(Backoff::default().with_max_attempts(1))
            .with_attempt_timeout(settings.attempt_timeout)
            .with_deadline(settings.attempt_timeout + Duration::from_secs(5));
        Ok(Self {
            store,
            owner: format!("delivery-{}", uuid::Uuid::new_v4().simple()),
            settings,
            client,
            resilient: Resilient::builder().defaults(policy).build(),
        })
    }

    /// The lease identity this worker writes into the rows it claims.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// One step: leases the due subscriptions that have undelivered events and delivers to
    /// each, in seq order, until it is caught up, fails, or has sent
    /// [`DeliverySettings::events_per_claim`]. Returns the number of attempts made.
    pub async fn claim_and_run_once(&self) -> Result<usize, DeliveryError> {
        let owner = self.owner.clone();
        let lease = self.settings.lease;
        let limit = self.settings.subscriptions_per_step;
        let now = Utc::now();
        let claimed = self
            .store
            .write(move |tx| {
                Box::pin(async move { tx.claim_subscriptions(&owner, now, lease, limit).await })
            })
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let results = futures::future::join_all(claimed.iter().map(|c| self.deliver(c))).await;
        let mut attempts = 0;
        for (claim, result) in claimed.iter().zip(results) {
            match result {
                Ok(n) => attempts += n,
                // The lease runs out and the subscription is claimed again: at least once.
                Err(e) => tracing::warn!(
                    subscription = %claim.subscription.id,
                    tenant = %claim.subscription.tenant_id,
                    error = %e,
                    "delivery progress could not be saved"
                ),
            }
        }
        Ok(attempts)
    }

    /// Runs steps until `shutdown`, waking early when events are appended in this process.
    pub async fn run(self, events_appended: Arc<Notify>, shutdown: CancellationToken) {
        tracing::info!(owner = %self.owner, "event delivery started");
        while !shutdown.is_cancelled() {
            let woken = events_appended.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let busy = match self.claim_and_run_once().await {
                Ok(attempts) => attempts > 0,
                Err(e) => {
                    tracing::warn!(error = %e, "event delivery step failed");
                    false
                }
            };
            if busy {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = &mut woken => {}
                () = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
        tracing::info!("event delivery stopped");
    }

    /// Delivers one leased subscription; returns the attempts made.
    #[tracing::instrument(skip_all, fields(subscription = %claim.subscription.id, tenant = %claim.subscription.tenant_id))]
    async fn deliver(&self, claim: &ClaimedSubscription) -> Result<usize, DeliveryError> {
        let sub = &claim.subscription;
        let mut state = DeliveryState::of(sub);
        let mut attempts = 0_usize;
        loop {
            let page = self.pending(claim, state.cursor).await?;
            if page.is_empty() {
                break;
            }
            for event in &page {
                if !sub.wants(&event.event_type) {
                    state.cursor = event.seq;
                    continue;
                }
                if attempts >= self.settings.events_per_claim as usize {
                    // Still due: released so the next step (on any replica) continues.
                    self.release(claim, &mut state, Utc::now()).await?;
                    return Ok(attempts);
                }
                attempts += 1;
                let outcome = self.send(claim, event).await;
                let now = Utc::now();
                match outcome {
                    Outcome::Delivered => {
                        state.cursor = event.seq;
                        state.failure_count = 0;
                        state.failing_since = None;
                        state.last_attempt_at = Some(now);
                        state.last_success_at = Some(now);
                        state.last_error = None;
                        state.next_attempt_at = now;
                        state.lease_until = Some(later(now, self.settings.lease));
                        if !self.save(claim, &state, now).await? {
                            tracing::info!(
                                "lease lost (replayed, deleted or taken over); stopping"
                            );
                            return Ok(attempts);
                        }
                    }
                    Outcome::Gone => {
                        tracing::warn!(
                            seq = event.seq,
                            "receiver answered 410 Gone; subscription disabled"
                        );
                        state.last_attempt_at = Some(now);
                        state.failure_count += 1;
                        state.failing_since.get_or_insert(now);
                        state.last_error = Some("http status 410".to_owned());
                        state.status = SubscriptionStatus::Disabled;
                        state.disabled_reason = Some(DISABLED_GONE.to_owned());
                        state.lease_until = None;
                        self.save(claim, &state, now).await?;
                        return Ok(attempts);
                    }
                    Outcome::NotAttempted { retry_in } => {
                        tracing::debug!(
                            seq = event.seq,
                            "destination held back by its breaker or rate limit"
                        );
                        attempts -= 1;
                        state.next_attempt_at = later(now, retry_in);
                        state.lease_until = None;
                        self.save(claim, &state, now).await?;
                        return Ok(attempts);
                    }
                    Outcome::Failed {
                        reason,
                        retry_after,
                    } => {
                        self.schedule_retry(&mut state, now, reason, retry_after, event.seq);
                        self.save(claim, &state, now).await?;
                        return Ok(attempts);
                    }
                }
            }
        }
        self.release(claim, &mut state, Utc::now()).await?;
        Ok(attempts)
    }

    /// Records a failed attempt: the next attempt's time, or disabling after sustained failure.
    fn schedule_retry(
        &self,
        state: &mut DeliveryState,
        now: DateTime<Utc>,
        reason: String,
        retry_after: Option<Duration>,
        seq: i64,
    ) {
        let retry = u32::try_from(state.failure_count).unwrap_or(u32::MAX);
        let delay = match retry_after {
            Some(wait) => wait.min(self.settings.max_retry_after),
            None => self.backoff(retry),
        };
        state.failure_count += 1;
        let failing_since = *state.failing_since.get_or_insert(now);
        state.last_attempt_at = Some(now);
        state.next_attempt_at = later(now, delay);
        state.lease_until = None;
        let failing_for = (now - failing_since).to_std().unwrap_or_default();
        if state.failure_count >= i64::from(self.settings.disable_min_failures)
            && failing_for >= self.settings.disable_after
        {
            tracing::warn!(
                seq,
                failures = state.failure_count,
                reason = %reason,
                "subscription disabled after sustained failure"
            );
            state.status = SubscriptionStatus::Disabled;
            state.disabled_reason = Some(DISABLED_FAILING.to_owned());
        } else {
            tracing::info!(
                seq,
                failures = state.failure_count,
                reason = %reason,
                retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "delivery failed; retry scheduled"
            );
        }
        state.last_error = Some(reason);
    }

    /// The wait before retry number `retry` (0 for the first retry).
    fn backoff(&self, retry: u32) -> Duration {
        let backoff = Backoff::new(self.settings.base_delay, self.settings.max_delay);
        match self.settings.jitter {
            Jitter::Full => backoff.delay(retry, &mut rand::rng()),
            Jitter::Ceiling => backoff.ceiling(retry),
        }
    }

    /// Releases the lease with the subscription caught up (or paused by the per-claim cap):
    /// due again as soon as new events arrive.
    async fn release(
        &self,
        claim: &ClaimedSubscription,
        state: &mut DeliveryState,
        now: DateTime<Utc>,
    ) -> Result<bool, DeliveryError> {
        if state.failure_count == 0 {
            state.next_attempt_at = now;
        }
        state.lease_until = None;
        self.save(claim, state, now).await
    }

    async fn save(
        &self,
        claim: &ClaimedSubscription,
        state: &DeliveryState,
        now: DateTime<Utc>,
    ) -> Result<bool, DeliveryError> {
        let tenant = claim.subscription.tenant_id.clone();
        let id = claim.subscription.id.clone();
        let owner = self.owner.clone();
        let state = state.clone();
        Ok(self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    tx.save_delivery_state(&tenant, &id, &owner, &state, now)
                        .await
                })
            })
            .await?)
    }

    /// The tenant's events after `cursor`, all types: the caller skips the unwanted ones and
    /// moves the cursor past them, so a subscription is not claimed again for events it will
    /// never receive.
    async fn pending(
        &self,
        claim: &ClaimedSubscription,
        cursor: i64,
    ) -> Result<Vec<Event>, DeliveryError> {
        let sub = &claim.subscription;
        let query = EventQuery {
            tenant_id: Some(sub.tenant_id.clone()),
            after: cursor,
            limit: PAGE,
            event_type: None,
            aggregate_id: None,
        };
        Ok(self
            .store
            .read(move |tx| Box::pin(async move { tx.events(&query).await }))
            .await?)
    }

    /// One signed POST of `event` through the destination's breaker, limiter and timeout.
    async fn send(&self, claim: &ClaimedSubscription, event: &Event) -> Outcome {
        let body = match serde_json::to_vec(event) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(seq = event.seq, error = %e, "event could not be serialised");
                return Outcome::Failed {
                    reason: "event could not be serialised".to_owned(),
                    retry_after: None,
                };
            }
        };
        let destination = destination_key(&claim.subscription.url);
        let result = self
            .resilient
            .call(&destination, |_attempt| {
                self.post(claim, &event.event_id, &body)
            })
            .await;
        match result {
            Ok(()) => Outcome::Delivered,
            Err(CallError::CircuitOpen { retry_in } | CallError::RateLimited { retry_in }) => {
                Outcome::NotAttempted { retry_in }
            }
            Err(CallError::Timeout { .. }) => Outcome::Failed {
                reason: "timeout".to_owned(),
                retry_after: None,
            },
            Err(
                CallError::Permanent(error)
                | CallError::Outcome(error)
                | CallError::Exhausted { last: error, .. },
            ) => match error {
                SendError::Status { code: 410, .. } => Outcome::Gone,
                other => Outcome::Failed {
                    reason: other.label(),
                    retry_after: other.retry_after(),
                },
            },
        }
    }

    async fn post(
        &self,
        claim: &ClaimedSubscription,
        msg_id: &str,
        body: &[u8],
    ) -> Result<(), SendError> {
        // The signing time is real time: receivers check it against their clocks.
        let timestamp = crate::auth::real_now_unix();
        let signature = standard_webhooks::sign(&claim.secret, msg_id, timestamp, body)
            .map_err(|_| SendError::Secret)?;
        let response = self
            .client
            .post(&claim.subscription.url)
            .header(standard_webhooks::ID_HEADER, msg_id)
            .header(standard_webhooks::TIMESTAMP_HEADER, timestamp.to_string())
            .header(standard_webhooks::SIGNATURE_HEADER, signature)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| SendError::Transport(transport_kind(&e)))?;
        let code = response.status().as_u16();
        if (200..300).contains(&code) {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                parse_retry_after(v, SystemTime::now(), self.settings.max_retry_after).ok()
            });
        Err(SendError::Status { code, retry_after })
    }
}

/// The breaker and rate-limit key: the receiving host and port, so many subscriptions to one
/// failing host trip one breaker.
fn destination_key(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(url) => format!(
            "webhook:{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        ),
        Err(_) => "webhook:invalid".to_owned(),
    }
}

/// A short, URL-free description of a transport failure.
fn transport_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "redirect refused"
    } else {
        "request failed"
    }
}

/// `now + wait`, saturating far in the future instead of overflowing.
fn later(now: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(wait)
        .ok()
        .and_then(|wait| now.checked_add_signed(wait))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The running delivery loop of this process.
#[derive(Debug)]
pub struct DeliveryTask {
    handle: JoinHandle<()>,
}

impl DeliveryTask {
    /// Waits for the loop to end (it ends on `AppState::shutdown`), abandoning an in-flight
    /// delivery after a short grace period; the delivery is retried after its lease expires.
    pub async fn stop(mut self) {
        if tokio::time::timeout(STOP_GRACE, &mut self.handle)
            .await
            .is_err()
        {
            self.handle.abort();
            let _ = (&mut self.handle).await;
        }
    }
}

impl Drop for DeliveryTask {
    /// A task dropped without [`DeliveryTask::stop`] (the service failed to start) must not
    /// outlive the service.
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Starts this process's delivery loop with the production settings; it runs until
/// `state.shutdown` is cancelled.
pub fn spawn(state: &AppState) -> Result<DeliveryTask, DeliveryError> {
    let worker = DeliveryWorker::new(state.store.clone(), DeliverySettings::default())?;
    let handle = tokio::spawn(worker.run(state.events_appended.clone(), state.shutdown.clone()));
    Ok(DeliveryTask { handle })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_keys_are_per_host_and_port() {
        assert_eq!(
            destination_key("https://hooks.example.org/a?x=1"),
            "webhook:hooks.example.org:443"
        );
        assert_eq!(
            destination_key("http://127.0.0.1:9000/in"),
            "webhook:127.0.0.1:9000"
        );
        assert_eq!(destination_key("::"), "webhook:invalid");
    }

    #[test]
    fn waits_saturate_instead_of_overflowing() {
        let now = Utc::now();
        assert_eq!(later(now, Duration::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(
            later(now, Duration::from_secs(5)),
            now + chrono::Duration::seconds(5)
        );
    }

    #[test]
    fn gone_and_server_errors_are_classified_apart() {
        let gone = SendError::Status {
            code: 410,
            retry_after: None,
        };
        assert_eq!(gone.classify().kind(), "permanent");
        let busy = SendError::Status {
            code: 503,
            retry_after: Some(Duration::from_secs(7)),
        };
        assert!(busy.classify().is_retryable());
        assert_eq!(busy.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(busy.label(), "http status 503");
        assert!(SendError::Transport("timeout").classify().is_retryable());
    }
}
