//! Outbound rate limiting, one token bucket per destination.
//!
//! Providers cap how fast an account may call them (Twilio around 100 requests/s, Stripe 25/s)
//! and answer 429 beyond that; a subscriber's endpoint deserves the same courtesy. Spacing our
//! own calls is cheaper than collecting 429s and retrying them.
//!
//! Buckets are kept in integer fixed point (one token = `per` nanoseconds' worth of units), so
//! refills and waits are exact and never drift (tokio's timer then rounds each sleep up to the
//! millisecond, which only ever errs on the slow side). They use tokio's clock, i.e. real time (never business time). Buckets are
//! created on first use; a bucket that has refilled to capacity is indistinguishable from a new
//! one, so such buckets are dropped now and then to bound memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::destination::PerDestination;

/// How often idle buckets are looked for (on the next acquisition after this much time).
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// A token bucket's shape: `tokens` are added every `per`, up to `capacity` (the burst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    capacity: u32,
    tokens: u32,
    per: Duration,
}

impl Default for RateLimit {
    /// 20 calls per second with a burst of 20, per destination.
    fn default() -> Self {
        Self::per_second(20)
    }
}

impl RateLimit {
    /// `tokens` calls every `per`, with a burst of `tokens`. Zero tokens is read as one and a
    /// zero period as one nanosecond, so the limit always lets calls through eventually.
    pub fn new(tokens: u32, per: Duration) -> Self {
        let tokens = tokens.max(1);
        Self {
            capacity: tokens,
            tokens,
            per: per.max(Duration::from_nanos(1)),
        }
    }

    /// `calls` per second, with a burst of `calls`.
    pub fn per_second(calls: u32) -> Self {
        Self::new(calls, Duration::from_secs(1))
    }

    /// Sets how many calls may go out back to back after a quiet period (at least one).
    #[must_use]
    pub fn with_burst(mut self, capacity: u32) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// The burst size.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The steady-state spacing between calls: `per / tokens`.
    pub fn interval(&self) -> Duration {
        self.per / self.tokens
    }

    fn units_per_token(&self) -> u128 {
        self.per.as_nanos()
    }

    fn full(&self) -> u128 {
        self.units_per_token() * u128::from(self.capacity)
    }
}

#[derive(Debug)]
struct Bucket {
    /// Fixed point: a token is `per` (in ns) units; a nanosecond refills `tokens` units.
    level: u128,
    updated: Instant,
}

impl Bucket {
    fn full(limit: &RateLimit, now: Instant) -> Self {
        Self {
            level: limit.full(),
            updated: now,
        }
    }

    fn refill(&mut self, limit: &RateLimit, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_nanos();
        let added = elapsed.saturating_mul(u128::from(limit.tokens));
        self.level = self.level.saturating_add(added).min(limit.full());
        self.updated = now;
    }

    fn take(&mut self, limit: &RateLimit) -> Result<(), Duration> {
        let cost = limit.units_per_token();
        if self.level >= cost {
            self.level -= cost;
            return Ok(());
        }
        let missing = cost - self.level;
        let wait_nanos = missing.div_ceil(u128::from(limit.tokens));
        Err(Duration::from_nanos(
            u64::try_from(wait_nanos).unwrap_or(u64::MAX),
        ))
    }
}

#[derive(Debug)]
struct Buckets {
    by_destination: HashMap<String, Bucket>,
    last_prune: Instant,
}

#[derive(Debug)]
struct Shared {
    limits: PerDestination<RateLimit>,
    buckets: Mutex<Buckets>,
}

/// Token buckets per destination. Cheap to clone; clones share the buckets.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    shared: Arc<Shared>,
}

impl RateLimiter {
    /// A limiter applying `limits` (a default plus per-destination overrides).
    pub fn new(limits: PerDestination<RateLimit>) -> Self {
        Self {
            shared: Arc::new(Shared {
                limits,
                buckets: Mutex::new(Buckets {
                    by_destination: HashMap::new(),
                    last_prune: Instant::now(),
                }),
            }),
        }
    }

    /// The limit that applies to `destination`.
    pub fn limit(&self, destination: &str) -> RateLimit {
        *self.shared.limits.get(destination)
    }

    /// Takes a token for `destination` now, or says how long until one is available.
    pub fn try_acquire(&self, destination: &str) -> Result<(), Duration> {
        let limit = self.limit(destination);
        let now = Instant::now();
        // Nothing below can panic, so a poisoned lock only means another thread panicked
        // elsewhere while holding it; the buckets themselves are still consistent.
        let mut buckets = self
            .shared
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if now.saturating_duration_since(buckets.last_prune) >= PRUNE_EVERY {
            prune(&mut buckets, &self.shared.limits, now);
        }
        let bucket = match buckets.by_destination.get_mut(destination) {
            Some(bucket) => {
                bucket.refill(&limit, now);
                bucket
            }
            None => buckets
                .by_destination
                .entry(destination.to_owned())
                .or_insert_with(|| Bucket::full(&limit, now)),
        };
        bucket.take(&limit)
    }

    /// Waits until a token for `destination` is available and takes it.
    pub async fn acquire(&self, destination: &str) {
        while let Err(wait) = self.try_acquire(destination) {
            tokio::time::sleep(wait).await;
        }
    }

    /// Waits for a token unless that means waiting past `deadline`; then returns how long the
    /// wait would have been from now, without waiting.
    pub async fn acquire_before(
        &self,
        destination: &str,
        deadline: Instant,
    ) -> Result<(), Duration> {
        loop {
            match self.try_acquire(destination) {
                Ok(()) => return Ok(()),
                Err(wait) if Instant::now() + wait > deadline => return Err(wait),
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Drops the buckets that have refilled to capacity (they would be recreated identical).
    /// Runs by itself every minute of use; exposed for hosts that want to trim after a burst.
    pub fn prune_idle(&self) {
        let mut buckets = self
            .shared
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        prune(&mut buckets, &self.shared.limits, Instant::now());
    }

    /// How many destinations currently have a bucket.
    pub fn tracked_destinations(&self) -> usize {
        self.shared
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_destination
            .len()
    }
}

fn prune(buckets: &mut Buckets, limits: &PerDestination<RateLimit>, now: Instant) {
    buckets.by_destination.retain(|destination, bucket| {
        let limit = limits.get(destination);
        bucket.refill(limit, now);
        bucket.level < limit.full()
    });
    buckets.last_prune = now;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(limit: RateLimit) -> RateLimiter {
        RateLimiter::new(PerDestination::new(limit))
    }

    #[tokio::test(start_paused = true)]
    async fn burst_passes_then_the_next_call_waits_one_interval() {
        let limiter = limiter(RateLimit::per_second(4));
        for _ in 0..4 {
            assert_eq!(limiter.try_acquire("sub_1"), Ok(()));
        }
        assert_eq!(
            limiter.try_acquire("sub_1"),
            Err(Duration::from_millis(250))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn calls_over_capacity_are_spaced_by_the_refill_rate() {
        let limiter = limiter(RateLimit::per_second(2));
        let start = Instant::now();
        for _ in 0..6 {
            limiter.acquire("twilio:AC1").await;
        }
        // Two from the burst, then four more at one every 500 ms.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn uneven_rates_do_not_drift() {
        // 1 s / 3 is 333_333_333.3 ns: waits are rounded up, but the remainder is carried
        // (below the burst capacity), so three waits add up to exactly one second.
        let limiter = limiter(RateLimit::new(3, Duration::from_secs(1)).with_burst(2));
        assert_eq!(limiter.try_acquire("stripe"), Ok(()));
        assert_eq!(limiter.try_acquire("stripe"), Ok(()));
        let mut waited = Duration::ZERO;
        for _ in 0..3 {
            let wait = limiter.try_acquire("stripe").err().unwrap_or_default();
            assert!(wait > Duration::ZERO);
            tokio::time::advance(wait).await;
            waited += wait;
            assert_eq!(limiter.try_acquire("stripe"), Ok(()));
        }
        assert_eq!(waited, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn destinations_do_not_share_tokens() {
        let limiter = limiter(RateLimit::per_second(1));
        assert_eq!(limiter.try_acquire("sub_a"), Ok(()));
        assert!(limiter.try_acquire("sub_a").is_err());
        assert_eq!(limiter.try_acquire("sub_b"), Ok(()));
        assert_eq!(limiter.tracked_destinations(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_provider_override_applies_to_each_account_separately() {
        let limiter = RateLimiter::new(
            PerDestination::new(RateLimit::per_second(1))
                .with("twilio", RateLimit::per_second(100)),
        );
        for _ in 0..100 {
            assert_eq!(limiter.try_acquire("twilio:AC1"), Ok(()));
        }
        assert_eq!(
            limiter.try_acquire("twilio:AC1"),
            Err(Duration::from_millis(10))
        );
        assert_eq!(limiter.try_acquire("twilio:AC2"), Ok(()));
        assert_eq!(limiter.limit("calendly").capacity(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_past_a_deadline_is_refused_without_sleeping() {
        let limiter = limiter(RateLimit::per_second(1));
        limiter.acquire("sub_1").await;
        let start = Instant::now();
        let refused = limiter
            .acquire_before("sub_1", start + Duration::from_millis(500))
            .await;
        assert_eq!(refused, Err(Duration::from_secs(1)));
        assert_eq!(start.elapsed(), Duration::ZERO);
        let granted = limiter
            .acquire_before("sub_1", start + Duration::from_secs(1))
            .await;
        assert_eq!(granted, Ok(()));
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn refilled_buckets_are_pruned_and_busy_ones_kept() {
        let limiter = limiter(RateLimit::new(1, Duration::from_secs(120)));
        assert_eq!(limiter.try_acquire("sub_idle"), Ok(()));
        tokio::time::advance(Duration::from_secs(100)).await;
        assert_eq!(limiter.try_acquire("sub_busy"), Ok(()));
        tokio::time::advance(Duration::from_secs(30)).await;
        limiter.prune_idle();
        // sub_idle refilled after 120 s; sub_busy has 90 s to go and must keep its debt.
        assert_eq!(limiter.tracked_destinations(), 1);
        assert_eq!(
            limiter.try_acquire("sub_busy"),
            Err(Duration::from_secs(90))
        );
        assert_eq!(limiter.try_acquire("sub_idle"), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn pruning_happens_during_normal_use() {
        let limiter = limiter(RateLimit::per_second(1));
        for n in 0..10 {
            assert_eq!(limiter.try_acquire(&format!("sub_{n}")), Ok(()));
        }
        tokio::time::advance(PRUNE_EVERY).await;
        assert_eq!(limiter.try_acquire("sub_new"), Ok(()));
        assert_eq!(limiter.tracked_destinations(), 1);
    }
}
