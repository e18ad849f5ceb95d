//! Per-destination settings.
//!
//! A destination is the string key every limiter and breaker is kept under: a provider account
//! (`twilio:AC123`, `stripe:acct_1`) or an event subscription id. Providers publish limits per
//! provider, not per account, so an override can be keyed by a prefix made of whole
//! `:`-separated segments: an override for `twilio` applies to `twilio:AC123` unless
//! `twilio:AC123` has its own.

use std::collections::HashMap;

/// A default value plus overrides for some destinations or destination prefixes.
#[derive(Debug, Clone)]
pub struct PerDestination<T> {
    default: T,
    overrides: HashMap<String, T>,
}

impl<T> PerDestination<T> {
    /// Every destination gets `default` until an override says otherwise.
    pub fn new(default: T) -> Self {
        Self {
            default,
            overrides: HashMap::new(),
        }
    }

    /// Replaces the default, keeping the overrides.
    #[must_use]
    pub fn with_default(mut self, default: T) -> Self {
        self.default = default;
        self
    }

    /// Uses `value` for the destination `key` and for every destination that starts with
    /// `key:` (unless a longer key matches it). A later call with the same key replaces it.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: T) -> Self {
        self.overrides.insert(key.into(), value);
        self
    }

    /// The value for `destination`: the override with the longest matching key made of
    /// whole segments, or the default.
    pub fn get(&self, destination: &str) -> &T {
        let mut key = destination;
        loop {
            if let Some(value) = self.overrides.get(key) {
                return value;
            }
            match key.rfind(':') {
                Some(end) => key = &key[..end],
                None => return &self.default,
            }
        }
    }

    /// The default value, used for destinations without an override.
    pub fn default_value(&self) -> &T {
        &self.default
    }

    /// The same keys with each value transformed, so one table of policies can feed the
    /// limiter and the breaker registries.
    pub fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> PerDestination<U> {
        PerDestination {
            default: f(&self.default),
            overrides: self
                .overrides
                .iter()
                .map(|(key, value)| (key.clone(), f(value)))
                .collect(),
        }
    }
}

impl<T: Default> Default for PerDestination<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_key_wins_over_its_prefix() {
        let table = PerDestination::new(1)
            .with("twilio", 2)
            .with("twilio:AC1", 3);
        assert_eq!(*table.get("twilio:AC1"), 3);
        assert_eq!(*table.get("twilio:AC2"), 2);
        assert_eq!(*table.get("twilio"), 2);
    }

    #[test]
    fn prefix_matches_whole_segments_only() {
        let table = PerDestination::new(1).with("twilio", 2);
        assert_eq!(*table.get("twiliox:AC1"), 1);
        assert_eq!(*table.get("stripe:acct"), 1);
    }

    #[test]
    fn longest_prefix_applies_to_nested_destinations() {
        let table = PerDestination::new(1).with("llm", 2).with("llm:openai", 3);
        assert_eq!(*table.get("llm:openai:small"), 3);
        assert_eq!(*table.get("llm:local:small"), 2);
    }

    #[test]
    fn map_keeps_overrides() {
        let table = PerDestination::new(1).with("stripe", 25).map(|v| v * 2);
        assert_eq!(*table.get("stripe:acct"), 50);
        assert_eq!(*table.get("calendly"), 2);
        assert_eq!(*table.default_value(), 2);
    }
}
