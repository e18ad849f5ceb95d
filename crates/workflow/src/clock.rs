//! Business time. Timers, reminders and everything a clinic would call "when" read this clock;
//! security and liveness (tokens, signatures, leases, breakers) read real time instead. In the
//! sandbox the clock can be moved forward (never back) by an offset persisted in the database,
//! so a demo or a test can live through two days in seconds.

use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn with_offset_ms(offset_ms: i64) -> Self {
        Self {
            offset_ms: Arc::new(AtomicI64::new(offset_ms.max(0))),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        aro_store::micros(Utc::now() + Duration::milliseconds(self.offset_ms()))
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::SeqCst)
    }

    /// Moves the offset forward to `offset_ms`; a smaller value is ignored (time never runs back).
    pub fn advance_to(&self, offset_ms: i64) {
        self.offset_ms.fetch_max(offset_ms, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_only_moves_forward() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance_to(3_600_000);
        assert!(clock.now() >= before + Duration::minutes(59));
        clock.advance_to(1_000);
        assert_eq!(clock.offset_ms(), 3_600_000);
    }
}
