//! Circuit breaking, one breaker per destination.
//!
//! When a provider or a subscriber's endpoint is down, every call to it costs a timeout and a
//! worker, and the retries add to the load that keeps it down. A breaker notices (five
//! consecutive failures, or at least half of the last twenty calls) and fails calls at once for
//! a cool-down, then lets a few probe calls through: a healthy probe closes it, a failed one
//! opens it again for a longer cool-down (doubling up to a cap).
//!
//! The breaker judges whether the destination is *available*, so only retryable failures
//! count against it. A permanent refusal of our request or a business outcome means the
//! destination answered deliberately, which counts as healthy.
//!
//! Results are tied to the breaker state they were admitted under (an epoch): a slow call that
//! started before a trip cannot close a half-open breaker, and only the probes decide. A probe
//! whose future is dropped gives its slot back.
//!
//! Time is tokio's clock (real time, never business time); the open → half-open step happens
//! on the next admission or [`CircuitBreakers::state`] query after the cool-down.
//! Every transition updates the gauge `aro_circuit_breaker_state{destination}` (0 closed,
//! 1 half-open, 2 open) and the counter `aro_circuit_breaker_transitions_total{destination,to}`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::classify::Failure;
use crate::destination::PerDestination;

/// What callers turned away while probes are in flight are told to wait.
pub const PROBE_BUSY_RETRY: Duration = Duration::from_secs(1);

/// Closed breakers untouched for this long are forgotten (a new one starts clean).
const FORGET_IDLE_AFTER: Duration = Duration::from_secs(600);

/// How often idle breakers are looked for (on the next admission after this much time).
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Where a destination's breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls flow; failures are being counted.
    Closed,
    /// A limited number of probe calls are allowed to test the destination.
    HalfOpen,
    /// Calls are refused until the cool-down ends.
    Open,
}

impl BreakerState {
    /// The label used in metrics and logs: `closed`, `half_open`, `open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }

    /// The value of the `aro_circuit_breaker_state` gauge: 0 closed, 1 half-open, 2 open.
    pub fn gauge_value(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::HalfOpen => 1.0,
            Self::Open => 2.0,
        }
    }
}

/// When a breaker trips and how it recovers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    consecutive_failures: u32,
    failure_rate_percent: u8,
    window: u32,
    cool_down: Duration,
    max_cool_down: Duration,
    half_open_probes: u32,
}

impl Default for BreakerConfig {
    /// Trips on 5 consecutive failures or on ≥ 50 % failures over the last 20 calls; open for
    /// 30 s, doubling on repeated trips up to 5 min; one probe at a time when half-open.
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            failure_rate_percent: 50,
            window: 20,
            cool_down: Duration::from_secs(30),
            max_cool_down: Duration::from_secs(300),
            half_open_probes: 1,
        }
    }
}

impl BreakerConfig {
    /// Trips after `failures` consecutive failures; 0 turns this trip off.
    #[must_use]
    pub fn with_consecutive_failures(mut self, failures: u32) -> Self {
        self.consecutive_failures = failures;
        self
    }

    /// Trips when at least `percent` % of the last `window` calls failed, judged once
    /// `window` calls have been seen (low-volume destinations rely on the consecutive trip).
    /// `percent` is clamped to 1..=100; a `window` of 0 turns this trip off.
    #[must_use]
    pub fn with_failure_rate(mut self, percent: u8, window: u32) -> Self {
        self.failure_rate_percent = percent.clamp(1, 100);
        self.window = window;
        self
    }

    /// Open for `cool_down` after the first trip, doubling on each trip that follows without
    /// a close in between, never longer than `max_cool_down` (raised to `cool_down` if lower).
    #[must_use]
    pub fn with_cool_down(mut self, cool_down: Duration, max_cool_down: Duration) -> Self {
        self.cool_down = cool_down;
        self.max_cool_down = max_cool_down.max(cool_down);
        self
    }

    /// How many probe calls may be in flight while half-open (at least one).
    #[must_use]
    pub fn with_half_open_probes(mut self, probes: u32) -> Self {
        self.half_open_probes = probes.max(1);
        self
    }

    /// The cool-down after `trips` trips in a row (1 for the first).
    pub fn cool_down_after(&self, trips: u32) -> Duration {
        let factor = 1u32
            .checked_shl(trips.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.cool_down
            .saturating_mul(factor)
            .min(self.max_cool_down)
    }
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { probes_in_flight: u32 },
}

#[derive(Debug)]
struct Breaker {
    phase: Phase,
    /// Changes on every transition; results from another epoch are ignored.
    epoch: u64,
    consecutive_failures: u32,
    /// The last calls' results, `true` for a failure.
    recent: VecDeque<bool>,
    recent_failures: u32,
    /// Trips since the breaker last closed, for the growing cool-down.
    trips: u32,
    last_activity: Instant,
}

/// A fresh epoch, unique in the process, so no two breaker states ever share one.
fn new_epoch() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Breaker {
    fn state(&self) -> BreakerState {
        match self.phase {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    fn forget_results(&mut self) {
        self.consecutive_failures = 0;
        self.recent.clear();
        self.recent_failures = 0;
    }

    fn remember(&mut self, failed: bool, config: &BreakerConfig) {
        if failed {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        } else {
            self.consecutive_failures = 0;
        }
        if config.window == 0 {
            return;
        }
        self.recent.push_back(failed);
        if failed {
            self.recent_failures += 1;
        }
        while self.recent.len() > config.window as usize {
            if self.recent.pop_front() == Some(true) {
                self.recent_failures -= 1;
            }
        }
    }

    fn should_trip(&self, config: &BreakerConfig) -> bool {
        let consecutive = config.consecutive_failures > 0
            && self.consecutive_failures >= config.consecutive_failures;
        let rate = config.window > 0
            && self.recent.len() >= config.window as usize
            && u64::from(self.recent_failures) * 100
                >= u64::from(config.failure_rate_percent) * u64::from(config.window);
        consecutive || rate
    }

    fn new(now: Instant) -> Self {
        Self {
            phase: Phase::Closed,
            epoch: new_epoch(),
            consecutive_failures: 0,
            recent: VecDeque::new(),
            recent_failures: 0,
            trips: 0,
            last_activity: now,
        }
    }

    /// Moves to `phase`, with the bookkeeping, metrics and log line that go with it.
    fn transition(&mut self, destination: &str, phase: Phase, now: Instant) {
        self.phase = phase;
        self.epoch = new_epoch();
        self.forget_results();
        let state = self.state();
        match phase {
            Phase::Closed => {
                self.trips = 0;
                tracing::info!(destination, "circuit breaker closed");
            }
            Phase::HalfOpen { .. } => {
                tracing::info!(destination, "circuit breaker half-open, probing");
            }
            Phase::Open { until } => {
                let cool_down = until.saturating_duration_since(now);
                tracing::warn!(
                    destination,
                    trips = self.trips,
                    cool_down_ms = u64::try_from(cool_down.as_millis()).unwrap_or(u64::MAX),
                    "circuit breaker opened"
                );
            }
        }
        metrics::gauge!("aro_circuit_breaker_state", "destination" => destination.to_owned())
            .set(state.gauge_value());
        metrics::counter!(
            "aro_circuit_breaker_transitions_total",
            "destination" => destination.to_owned(),
            "to" => state.as_str(),
        )
        .increment(1);
    }

    fn trip(&mut self, destination: &str, config: &BreakerConfig, now: Instant) {
        self.trips = self.trips.saturating_add(1);
        let until = now + config.cool_down_after(self.trips);
        self.transition(destination, Phase::Open { until }, now);
    }

    /// The time-driven step: an open breaker whose cool-down is over becomes half-open.
    fn advance(&mut self, destination: &str, now: Instant) {
        if matches!(self.phase, Phase::Open { until } if now >= until) {
            let probing = Phase::HalfOpen {
                probes_in_flight: 0,
            };
            self.transition(destination, probing, now);
        }
    }
}

#[derive(Debug)]
struct Registry {
    breakers: HashMap<String, Breaker>,
    last_prune: Instant,
}

impl Registry {
    fn prune(&mut self, now: Instant) {
        self.breakers.retain(|_, breaker| {
            !matches!(breaker.phase, Phase::Closed)
                || now.saturating_duration_since(breaker.last_activity) < FORGET_IDLE_AFTER
        });
        self.last_prune = now;
    }
}

#[derive(Debug)]
struct Shared {
    configs: PerDestination<BreakerConfig>,
    registry: Mutex<Registry>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        // Nothing panics while the lock is held; a poisoned lock still guards consistent data.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies the result of a call admitted under `epoch`.
    fn settle(&self, destination: &str, epoch: u64, failed: bool) {
        let now = Instant::now();
        let config = *self.configs.get(destination);
        let mut registry = self.lock();
        let Some(breaker) = registry.breakers.get_mut(destination) else {
            return;
        };
        if breaker.epoch != epoch {
            // Admitted under an earlier state (before a trip, or a previous probe round).
            return;
        }
        breaker.last_activity = now;
        match breaker.phase {
            Phase::Closed => {
                breaker.remember(failed, &config);
                if breaker.should_trip(&config) {
                    breaker.trip(destination, &config, now);
                }
            }
            Phase::HalfOpen { .. } if failed => breaker.trip(destination, &config, now),
            Phase::HalfOpen { .. } => breaker.transition(destination, Phase::Closed, now),
            // Unreachable in practice (a transition changes the epoch); nothing to record.
            Phase::Open { .. } => {}
        }
    }
}

/// Circuit breakers per destination. Cheap to clone; clones share the breakers.
#[derive(Debug, Clone)]
pub struct CircuitBreakers {
    shared: Arc<Shared>,
}

impl CircuitBreakers {
    /// Breakers applying `configs` (a default plus per-destination overrides).
    pub fn new(configs: PerDestination<BreakerConfig>) -> Self {
        Self {
            shared: Arc::new(Shared {
                configs,
                registry: Mutex::new(Registry {
                    breakers: HashMap::new(),
                    last_prune: Instant::now(),
                }),
            }),
        }
    }

    /// The configuration that applies to `destination`.
    pub fn config(&self, destination: &str) -> BreakerConfig {
        *self.shared.configs.get(destination)
    }

    /// Asks to make a call to `destination`. Refused with the time to wait while the breaker
    /// is open, or while half-open with every probe slot taken. The permit must be given the
    /// call's result; dropping it unused records nothing (and frees a probe slot).
    pub fn admit(&self, destination: &str) -> Result<BreakerPermit, Duration> {
        let now = Instant::now();
        let config = self.config(destination);
        let mut registry = self.shared.lock();
        if now.saturating_duration_since(registry.last_prune) >= PRUNE_EVERY {
            registry.prune(now);
        }
        let breaker = registry
            .breakers
            .entry(destination.to_owned())
            .or_insert_with(|| {
                metrics::gauge!("aro_circuit_breaker_state", "destination" => destination.to_owned())
                    .set(BreakerState::Closed.gauge_value());
                Breaker::new(now)
            });
        breaker.advance(destination, now);
        breaker.last_activity = now;
        let probe = match &mut breaker.phase {
            Phase::Closed => false,
            Phase::Open { until } => return Err(until.saturating_duration_since(now)),
            Phase::HalfOpen { probes_in_flight } if *probes_in_flight < config.half_open_probes => {
                *probes_in_flight += 1;
                true
            }
            Phase::HalfOpen { .. } => return Err(PROBE_BUSY_RETRY),
        };
        Ok(BreakerPermit {
            shared: Arc::clone(&self.shared),
            destination: destination.to_owned(),
            epoch: breaker.epoch,
            probe,
            settled: false,
        })
    }

    /// The breaker's state for `destination` (closed if it was never called). Applies the
    /// open → half-open step if the cool-down is over.
    pub fn state(&self, destination: &str) -> BreakerState {
        let now = Instant::now();
        let mut registry = self.shared.lock();
        match registry.breakers.get_mut(destination) {
            Some(breaker) => {
                breaker.advance(destination, now);
                breaker.state()
            }
            None => BreakerState::Closed,
        }
    }
}

/// Leave to make one call, to be handed the result.
#[derive(Debug)]
pub struct BreakerPermit {
    shared: Arc<Shared>,
    destination: String,
    epoch: u64,
    probe: bool,
    settled: bool,
}

impl BreakerPermit {
    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The destination answered (a success, or a deliberate refusal or outcome).
    pub fn record_success(mut self) {
        self.settle(false);
    }

    /// The destination failed in a way that counts against it (a retryable failure).
    pub fn record_failure(mut self) {
        self.settle(true);
    }

    /// Records a classified failure: only retryable ones count against the destination.
    pub fn record(self, failure: &Failure) {
        if failure.is_retryable() {
            self.record_failure();
        } else {
            self.record_success();
        }
    }

    fn settle(&mut self, failed: bool) {
        self.settled = true;
        self.shared.settle(&self.destination, self.epoch, failed);
    }
}

impl Drop for BreakerPermit {
    fn drop(&mut self) {
        if self.settled || !self.probe {
            return;
        }
        // A probe abandoned without a result (its future was dropped): free the slot so the
        // breaker does not stay half-open with no probe ever allowed again.
        let mut registry = self.shared.lock();
        let Some(breaker) = registry.breakers.get_mut(&self.destination) else {
            return;
        };
        if breaker.epoch != self.epoch {
            return;
        }
        if let Phase::HalfOpen { probes_in_flight } = &mut breaker.phase {
            *probes_in_flight = probes_in_flight.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEST: &str = "twilio:AC1";

    fn breakers(config: BreakerConfig) -> CircuitBreakers {
        CircuitBreakers::new(PerDestination::new(config))
    }

    fn fail(breakers: &CircuitBreakers, times: u32) {
        for _ in 0..times {
            if let Ok(permit) = breakers.admit(DEST) {
                permit.record_failure();
            }
        }
    }

    fn succeed(breakers: &CircuitBreakers, times: u32) {
        for _ in 0..times {
            if let Ok(permit) = breakers.admit(DEST) {
                permit.record_success();
            }
        }
    }

    #[test]
    fn the_state_gauge_follows_every_transition() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let gauge = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("aro_circuit_breaker_state{destination=\"twilio:AC1\"}"))
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_owned)
        };
        let b = breakers(
            consecutive_only()
                .with_consecutive_failures(3)
                .with_cool_down(Duration::ZERO, Duration::ZERO),
        );
        metrics::with_local_recorder(&recorder, || succeed(&b, 1));
        assert_eq!(gauge(&handle.render()).as_deref(), Some("0"), "closed");
        metrics::with_local_recorder(&recorder, || fail(&b, 3));
        assert_eq!(gauge(&handle.render()).as_deref(), Some("2"), "open");
        // No cool-down: the next call is a half-open probe, and its success closes it.
        metrics::with_local_recorder(&recorder, || {
            let probe = b.admit(DEST).expect("a probe is let through");
            assert!(probe.is_probe());
            assert_eq!(b.state(DEST), BreakerState::HalfOpen);
        });
        assert_eq!(gauge(&handle.render()).as_deref(), Some("1"), "half-open");
        metrics::with_local_recorder(&recorder, || succeed(&b, 1));
        assert_eq!(
            gauge(&handle.render()).as_deref(),
            Some("0"),
            "closed again"
        );
        assert!(handle.render().contains(
            "aro_circuit_breaker_transitions_total{destination=\"twilio:AC1\",to=\"open\"} 1"
        ));
    }

    /// Only the consecutive trip, to test it alone.
    fn consecutive_only() -> BreakerConfig {
        BreakerConfig::default().with_failure_rate(50, 0)
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_open_the_breaker() {
        let breakers = breakers(consecutive_only());
        fail(&breakers, 4);
        assert_eq!(breakers.state(DEST), BreakerState::Closed);
        fail(&breakers, 1);
        assert_eq!(breakers.state(DEST), BreakerState::Open);
        assert_eq!(breakers.admit(DEST).err(), Some(Duration::from_secs(30)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_consecutive_count() {
        let breakers = breakers(consecutive_only());
        fail(&breakers, 4);
        succeed(&breakers, 1);
        fail(&breakers, 4);
        assert_eq!(breakers.state(DEST), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_high_failure_rate_opens_the_breaker_without_a_streak() {
        let breakers = breakers(BreakerConfig::default());
        // Alternating: never two failures in a row, but 50 % of 20 calls.
        for _ in 0..9 {
            fail(&breakers, 1);
            succeed(&breakers, 1);
        }
        fail(&breakers, 1);
        assert_eq!(breakers.state(DEST), BreakerState::Closed);
        succeed(&breakers, 1);
        assert_eq!(breakers.state(DEST), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_rate_below_the_threshold_keeps_it_closed() {
        let breakers = breakers(BreakerConfig::default());
        // 9 failures in every 20 calls (45 %), spread out, over several windows.
        for _ in 0..3 {
            for n in 0..20 {
                if n % 2 == 0 && n < 18 {
                    fail(&breakers, 1);
                } else {
                    succeed(&breakers, 1);
                }
            }
        }
        assert_eq!(breakers.state(DEST), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_trip_waits_for_a_full_window() {
        let breakers = breakers(BreakerConfig::default().with_consecutive_failures(0));
        fail(&breakers, 19);
        assert_eq!(breakers.state(DEST), BreakerState::Closed);
        fail(&breakers, 1);
        assert_eq!(breakers.state(DEST), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_turns_half_open_after_the_cool_down() {
        let breakers = breakers(consecutive_only());
        fail(&breakers, 5);
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(breakers.state(DEST), BreakerState::Open);
        assert_eq!(breakers.admit(DEST).err(), Some(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(breakers.state(DEST), BreakerState::HalfOpen);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_admits_only_the_configured_probes() {
        let breakers = breakers(consecutive_only().with_half_open_probes(2));
        fail(&breakers, 5);
        tokio::time::advance(Duration::from_secs(30)).await;
        let first = breakers.admit(DEST);
        let second = breakers.admit(DEST);
        assert!(first.as_ref().is_ok_and(BreakerPermit::is_probe));
        assert!(second.is_ok());
        assert_eq!(breakers.admit(DEST).err(), Some(PROBE_BUSY_RETRY));
    }

    #[tokio::test(start_paused = true)]
    async fn a_successful_probe_closes_the_breaker() {
        let breakers = breakers(consecutive_only());
        fail(&breakers, 5);
        tokio::time::advance(Duration::from_secs(30)).await;
        succeed(&breakers, 1);
        assert_eq!(breakers.state(DEST), BreakerState::Closed);
        // Closed again with a clean slate and the first cool-down.
        fail(&breakers, 5);
        assert_eq!(breakers.admit(DEST).err(), Some(Duration::from_secs(30)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_with_a_longer_cool_down_up_to_the_cap() {
        let breakers = breakers(
            consecutive_only().with_cool_down(Duration::from_secs(30), Duration::from_secs(100)),
        );
        fail(&breakers, 5);
        let mut expected = Vec::new();
        let mut seen = Vec::new();
        for cool_down in [30, 60, 100, 100] {
            expected.push(Some(Duration::from_secs(cool_down)));
            seen.push(breakers.admit(DEST).err());
            tokio::time::advance(Duration::from_secs(cool_down)).await;
            fail(&breakers, 1);
            assert_eq!(breakers.state(DEST), BreakerState::Open);
        }
        assert_eq!(seen, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_frees_its_slot() {
        let breakers = breakers(consecutive_only());
        fail(&breakers, 5);
        tokio::time::advance(Duration::from_secs(30)).await;
        let probe = breakers.admit(DEST);
        assert!(probe.is_ok());
        assert!(breakers.admit(DEST).is_err());
        drop(probe);
        assert!(breakers.admit(DEST).is_ok_and(|permit| permit.is_probe()));
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_and_outcomes_do_not_trip_it() {
        let breakers = breakers(BreakerConfig::default());
        for _ in 0..30 {
            if let Ok(permit) = breakers.admit(DEST) {
                permit.record(&Failure::permanent("http status 400"));
            }
            if let Ok(permit) = breakers.admit(DEST) {
                permit.record(&Failure::outcome("opted_out"));
            }
        }
        assert_eq!(breakers.state(DEST), BreakerState::Closed);
        for _ in 0..5 {
            if let Ok(permit) = breakers.admit(DEST) {
                permit.record(&Failure::retryable("http status 503"));
            }
        }
        assert_eq!(breakers.state(DEST), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn results_admitted_before_a_trip_do_not_decide_the_probe() {
        let breakers = breakers(consecutive_only());
        let slow_call = breakers.admit(DEST);
        fail(&breakers, 5);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(breakers.state(DEST), BreakerState::HalfOpen);
        if let Ok(permit) = slow_call {
            permit.record_success();
        }
        assert_eq!(breakers.state(DEST), BreakerState::HalfOpen);
    }

    #[tokio::test(start_paused = true)]
    async fn destinations_have_separate_breakers() {
        let breakers = breakers(consecutive_only());
        fail(&breakers, 5);
        assert_eq!(breakers.state(DEST), BreakerState::Open);
        assert_eq!(breakers.state("twilio:AC2"), BreakerState::Closed);
        assert!(breakers.admit("twilio:AC2").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_closed_breakers_are_forgotten_but_open_ones_kept() {
        let breakers = breakers(
            consecutive_only()
                .with_cool_down(Duration::from_secs(3_600), Duration::from_secs(3_600)),
        );
        fail(&breakers, 5);
        let other = "stripe:acct_1";
        for _ in 0..4 {
            if let Ok(permit) = breakers.admit(other) {
                permit.record_failure();
            }
        }
        tokio::time::advance(FORGET_IDLE_AFTER).await;
        // This admission prunes: the closed breaker's four failures are forgotten.
        if let Ok(permit) = breakers.admit(other) {
            permit.record_failure();
        }
        assert_eq!(breakers.state(other), BreakerState::Closed);
        assert_eq!(breakers.state(DEST), BreakerState::Open);
    }

    #[test]
    fn cool_down_grows_without_overflow() {
        let config = BreakerConfig::default();
        assert_eq!(config.cool_down_after(1), Duration::from_secs(30));
        assert_eq!(config.cool_down_after(2), Duration::from_secs(60));
        assert_eq!(config.cool_down_after(u32::MAX), Duration::from_secs(300));
    }
}
