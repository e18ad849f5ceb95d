//! How long to wait before the next attempt.
//!
//! Exponential backoff with *full* jitter: the wait before retry `n` is drawn uniformly from
//! `[0, min(cap, base * 2^n)]`. Full jitter spreads the retries of many workers that failed
//! together (a provider outage) over the whole window instead of letting them return in waves,
//! which is what keeps a recovering provider from being knocked over again.
//!
//! When the destination says how long to wait (`Retry-After`), that value replaces the
//! computed one, up to [`Backoff::max_retry_after`].
//!
//! The random source is a parameter so the arithmetic is a pure function that tests drive with
//! a seeded RNG.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with full jitter and a bounded number of attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    max_attempts: u32,
    max_retry_after: Duration,
}

impl Default for Backoff {
    /// 200 ms base, 5 s cap, 3 attempts in all, `Retry-After` honoured up to 10 s: a short
    /// in-memory window; longer schedules belong to the durable queue.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
            max_attempts: 3,
            max_retry_after: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// Backoff growing from `base`, never above `cap` (keeps the other defaults).
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            ..Self::default()
        }
    }

    /// Sets the number of attempts in all, the first one included. Zero is read as one: a
    /// call is always attempted once.
    #[must_use]
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// Sets the longest `Retry-After` that is honoured in memory.
    #[must_use]
    pub fn with_max_retry_after(mut self, max_retry_after: Duration) -> Self {
        self.max_retry_after = max_retry_after;
        self
    }

    /// The first wait's upper bound.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The largest upper bound any wait can have.
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// Attempts in all, the first one included (at least one).
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The longest `Retry-After` honoured in memory.
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// The upper bound of the wait before retry number `retry` (0 for the first retry):
    /// `min(cap, base * 2^retry)`, without overflow for any `retry`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait before retry number `retry` (0 for the first retry): uniform in
    /// `[0, ceiling(retry)]`.
    pub fn delay(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        // Nanoseconds in a u64 cover 584 years, far beyond any sensible cap.
        let ceiling = u64::try_from(self.ceiling(retry).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=ceiling))
    }

    /// The wait before retry number `retry`: the destination's `Retry-After` when it gave one
    /// (at most [`Self::max_retry_after`]), the jittered delay otherwise.
    pub fn retry_delay(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Duration {
        match retry_after {
            Some(wait) => wait.min(self.max_retry_after),
            None => self.delay(retry, rng),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn backoff() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(2))
    }

    #[test]
    fn ceiling_doubles_until_the_cap() {
        let backoff = backoff();
        let ceilings: Vec<Duration> = (0..7).map(|n| backoff.ceiling(n)).collect();
        for pair in ceilings.windows(2) {
            assert_eq!(pair[1], (pair[0] * 2).min(backoff.cap()));
        }
        assert_eq!(ceilings[0], backoff.base());
        assert_eq!(ceilings[6], backoff.cap());
    }

    #[test]
    fn huge_retry_numbers_stay_at_the_cap() {
        let backoff = backoff();
        let mut rng = StdRng::seed_from_u64(7);
        for retry in [31, 32, 63, 64, u32::MAX] {
            assert_eq!(backoff.ceiling(retry), backoff.cap());
            assert!(backoff.delay(retry, &mut rng) <= backoff.cap());
        }
    }

    #[test]
    fn jitter_uses_the_whole_window() {
        // Full jitter, not "half" or "equal" jitter: waits come close to zero and close to
        // the ceiling alike.
        let backoff = backoff();
        let ceiling = backoff.ceiling(3);
        let mut rng = StdRng::seed_from_u64(42);
        let samples: Vec<Duration> = (0..2_000).map(|_| backoff.delay(3, &mut rng)).collect();
        let smallest = samples.iter().min().copied().unwrap_or(ceiling);
        let largest = samples.iter().max().copied().unwrap_or(Duration::ZERO);
        assert!(smallest < ceiling / 20, "smallest {smallest:?}");
        assert!(largest > ceiling - ceiling / 20, "largest {largest:?}");
        assert!(largest <= ceiling);
    }

    #[test]
    fn average_wait_grows_with_each_retry() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(60));
        let mut rng = StdRng::seed_from_u64(3);
        let mean = |retry: u32, rng: &mut StdRng| -> Duration {
            (0..1_000)
                .map(|_| backoff.delay(retry, rng))
                .sum::<Duration>()
                / 1_000
        };
        let means: Vec<Duration> = (0..5).map(|retry| mean(retry, &mut rng)).collect();
        for pair in means.windows(2) {
            assert!(pair[1] > pair[0], "{means:?}");
        }
    }

    #[test]
    fn same_seed_gives_the_same_waits() {
        let backoff = backoff();
        let waits = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..10)
                .map(|retry| backoff.delay(retry, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(waits(9), waits(9));
        assert_ne!(waits(9), waits(10));
    }

    #[test]
    fn retry_after_replaces_the_computed_wait_up_to_its_maximum() {
        let backoff = backoff().with_max_retry_after(Duration::from_secs(10));
        let mut rng = StdRng::seed_from_u64(1);
        let asked = Duration::from_secs(7);
        assert_eq!(backoff.retry_delay(0, Some(asked), &mut rng), asked);
        assert_eq!(
            backoff.retry_delay(0, Some(Duration::from_secs(60)), &mut rng),
            Duration::from_secs(10)
        );
        assert!(backoff.retry_delay(0, None, &mut rng) <= backoff.ceiling(0));
    }

    #[test]
    fn zero_attempts_means_one() {
        assert_eq!(backoff().with_max_attempts(0).max_attempts(), 1);
    }

    proptest! {
        #[test]
        fn delay_is_never_above_its_ceiling(
            base_ms in 0u64..5_000,
            cap_ms in 0u64..120_000,
            retry in 0u32..80,
            seed in any::<u64>(),
        ) {
            let backoff = Backoff::new(Duration::from_millis(base_ms), Duration::from_millis(cap_ms));
            let mut rng = StdRng::seed_from_u64(seed);
            let delay = backoff.delay(retry, &mut rng);
            prop_assert!(delay <= backoff.ceiling(retry));
            prop_assert!(backoff.ceiling(retry) <= backoff.cap());
            prop_assert!(backoff.ceiling(retry) >= backoff.base().min(backoff.cap()));
        }
    }
}
