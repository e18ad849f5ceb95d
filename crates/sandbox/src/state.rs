//! The sandbox's memory: one lock over every provider's objects (requests are tiny and never
//! hold it across an await), the settings, the webhook client, and the background deliveries
//! that must stop with the server.

use crate::calendly::CalendlyState;
use crate::faults::Faults;
use crate::settings::{SandboxError, SandboxSettings};
use crate::stripe::StripeState;
use crate::twilio::TwilioState;
use aro_http::CancellationToken;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::task::TaskTracker;

/// The sandbox: cheap to clone, shared by every handler and background delivery.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("self_url", &self.inner.settings.self_url.as_str())
            .finish_non_exhaustive()
    }
}

struct Inner {
    settings: SandboxSettings,
    /// When this sandbox started: the accounts' creation date.
    started_at: chrono::DateTime<chrono::Utc>,
    http: reqwest::Client,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    state: Mutex<State>,
}

/// Per-tenant switches (`POST /sandbox/settings`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TenantSwitches {
    /// Twilio's default opt-out handling (STOP/START/HELP auto-replies and blocking).
    pub twilio_opt_out_handling: bool,
}

impl Default for TenantSwitches {
    fn default() -> Self {
        Self {
            twilio_opt_out_handling: true,
        }
    }
}

/// Everything the sandbox remembers.
pub(crate) struct State {
    pub twilio: TwilioState,
    pub stripe: StripeState,
    pub calendly: CalendlyState,
    pub faults: Faults,
    pub tenants: HashMap<String, TenantSwitches>,
}

impl State {
    pub fn switches(&self, tenant: &str) -> TenantSwitches {
        self.tenants.get(tenant).copied().unwrap_or_default()
    }
}

impl Sandbox {
    /// A sandbox whose background work stops when `shutdown` is cancelled.
    pub fn new(
        settings: SandboxSettings,
        shutdown: CancellationToken,
    ) -> Result<Self, SandboxError> {
        let http = reqwest::Client::builder()
            // Providers never follow redirects when delivering webhooks.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timing.webhook_timeout)
            .build()?;
        let cap = settings.max_stored.max(1);
        let state = State {
            twilio: TwilioState::new(cap),
            stripe: StripeState::new(cap),
            calendly: CalendlyState::new(cap),
            faults: Faults::default(),
            tenants: HashMap::new(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                started_at: chrono::Utc::now(),
                http,
                shutdown,
                tasks: TaskTracker::new(),
                state: Mutex::new(state),
            }),
        })
    }

    /// Stops background deliveries and held requests, and waits for them to end.
    pub async fn shut_down(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    pub(crate) fn settings(&self) -> &SandboxSettings {
        &self.inner.settings
    }

    pub(crate) fn started_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.started_at
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The state, locked. A poisoned lock (a panic elsewhere while holding it) still holds
    /// consistent-enough test data, so it is used rather than turned into a panic here.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `work` in the background until it ends or the sandbox shuts down.
    pub(crate) fn spawn<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let token = self.inner.shutdown.clone();
        self.inner.tasks.spawn(async move {
            tokio::select! {
                () = work => {}
                () = token.cancelled() => {}
            }
        });
    }

    /// Sleeps for `duration`; `false` if the sandbox shut down meanwhile.
    pub(crate) async fn pause(&self, duration: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(duration) => true,
            () = self.inner.shutdown.cancelled() => false,
        }
    }
}

/// A map that keeps at most `cap` entries, forgetting the oldest insertion first, and iterates
/// in insertion order.
pub(crate) struct Bounded<V> {
    map: HashMap<String, V>,
    order: VecDeque<String>,
    cap: usize,
}

impl<V> Bounded<V> {
    pub fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    /// Inserts or replaces; a replaced entry keeps its place in the order.
    pub fn insert(&mut self, key: String, value: V) {
        if let Some(slot) = self.map.get_mut(&key) {
            *slot = value;
            return;
        }
        while self.order.len() >= self.cap {
            if let Some(oldest) = self.order.pop_front() {
                self.map.remove(&oldest);
            }
        }
        self.order.push_back(key.clone());
        self.map.insert(key, value);
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.map.get_mut(key)
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        let value = self.map.remove(key)?;
        self.order.retain(|k| k != key);
        Some(value)
    }

    /// Values, oldest first.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> {
        self.order.iter().filter_map(|k| self.map.get(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_map_forgets_the_oldest_and_keeps_order() {
        let mut map = Bounded::new(2);
        map.insert("a".into(), 1);
        map.insert("b".into(), 2);
        map.insert("a".into(), 10);
        assert_eq!(map.values().copied().collect::<Vec<_>>(), vec![10, 2]);
        map.insert("c".into(), 3);
        assert_eq!(map.get("a"), None);
        assert_eq!(map.values().copied().collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(map.remove("b"), Some(2));
        assert_eq!(map.values().copied().collect::<Vec<_>>(), vec![3]);
    }
}
