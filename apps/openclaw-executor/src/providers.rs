//! The providers this installation can reach, built once from `[providers.*]` and
//! `[classifier.llm]`, with what `/ready` says about them.
//!
//! Each provider gets its own resilience policy (rate limit, timeout, retries, breaker; see
//! [`policies`]) and its own share of the executor's slots, so a slow booking system or model
//! cannot hold every slot while reminders wait.
//!
//! Readiness names a provider whose credentials are missing or were refused at run time (a
//! 401/403 seen on a real call); it never shows a credential. A refusal is forgotten at the next
//! call the provider accepts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aro_config::Config;
use aro_http::Check;
use aro_integrations::calendly::CalendlyClient;
use aro_integrations::llm::LlmClient;
use aro_integrations::stripe::StripeClient;
use aro_integrations::twilio::TwilioClient;
use aro_integrations::{ErrorKind, Provider, ProviderError};
use aro_resilience::{
    Backoff, BreakerConfig, DestinationPolicy, RateLimit, Resilient, ResilientBuilder,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Tuning;
use crate::core::{CLAIM_DESTINATION, CORE_DESTINATION};

/// The resilience policies of every destination the executor calls.
///
/// Rates are the providers' published account limits (Twilio about 100 requests/s, Stripe 25/s
/// in live mode, Calendly's API far lower); the model gets a short timeout because a reply
/// waits on it. In-memory retries cover seconds only; longer waits go back to core's queue.
pub fn policies(config: &Config, tuning: &Tuning) -> ResilientBuilder {
    let breaker = BreakerConfig::default()
        .with_cool_down(tuning.breaker_cool_down, tuning.breaker_max_cool_down);
    let provider = |per_second: u32, timeout: Duration, deadline: Duration| {
        DestinationPolicy::default()
            .with_rate_limit(RateLimit::per_second(per_second))
            .with_breaker(breaker)
            .with_attempt_timeout(timeout)
            .with_deadline(deadline)
    };
    let llm_timeout = config
        .classifier
        .llm
        .as_ref()
        .map_or(5, |llm| llm.timeout_secs.max(1));
    let core = DestinationPolicy::default()
        .with_rate_limit(RateLimit::per_second(500))
        // Core restarting should pause claims briefly, not for the providers' half minute.
        .with_breaker(
            BreakerConfig::default()
                .with_cool_down(Duration::from_secs(2), Duration::from_secs(15)),
        )
        .with_attempt_timeout(Duration::from_secs(10))
        .with_deadline(Duration::from_secs(20));
    Resilient::builder()
        .destination(
            Provider::Twilio.as_str(),
            provider(100, Duration::from_secs(10), Duration::from_secs(25)),
        )
        .destination(
            Provider::Stripe.as_str(),
            provider(25, Duration::from_secs(10), Duration::from_secs(25)),
        )
        .destination(
            Provider::Calendly.as_str(),
            provider(10, Duration::from_secs(10), Duration::from_secs(25)),
        )
        .destination(
            Provider::Llm.as_str(),
            provider(
                10,
                Duration::from_secs(llm_timeout),
                Duration::from_secs(llm_timeout * 2 + 1),
            ),
        )
        .destination(CORE_DESTINATION, core)
        .destination(
            CLAIM_DESTINATION,
            core.with_backoff(Backoff::default().with_max_attempts(1)),
        )
}

/// A problem found in the configuration before any call.
#[derive(Debug, Clone)]
struct Misconfigured {
    provider: Provider,
    reason: &'static str,
}

/// The configured providers' clients and what is known about their credentials.
#[derive(Clone)]
pub struct Providers {
    pub twilio: Option<TwilioClient>,
    pub stripe: Option<StripeClient>,
    pub calendly: Option<CalendlyClient>,
    pub llm: Option<LlmClient>,
    misconfigured: Vec<Misconfigured>,
    /// Providers whose credentials were refused at run time, with the HTTP status.
    refused: Arc<Mutex<HashMap<Provider, u16>>>,
    slots: Arc<HashMap<Provider, Arc<Semaphore>>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("configured", &self.configured())
            .finish_non_exhaustive()
    }
}

fn blank(value: &str) -> bool {
    value.trim().is_empty()
}

impl Providers {
    /// Clients for every configured provider; `max_in_flight` bounds each one's slots.
    pub fn new(
        config: &Config,
        http: &reqwest::Client,
        resilient: &Resilient,
        max_in_flight: usize,
    ) -> Self {
        let p = &config.providers;
        let mut misconfigured = Vec::new();
        let mut problem = |provider, reason| misconfigured.push(Misconfigured { provider, reason });
        if let Some(t) = &p.twilio {
            if blank(&t.account_sid) || t.auth_token.is_empty() {
                problem(Provider::Twilio, "account_sid or auth_token missing");
            }
            let has_sender = t.from_number.as_deref().is_some_and(|n| !blank(n))
                || t.messaging_service_sid
                    .as_deref()
                    .is_some_and(|s| !blank(s));
            if !has_sender {
                problem(
                    Provider::Twilio,
                    "no sender: set from_number or messaging_service_sid",
                );
            }
        }
        if let Some(s) = &p.stripe
            && s.secret_key.is_empty()
        {
            problem(Provider::Stripe, "secret_key missing");
        }
        if let Some(c) = &p.calendly
            && c.api_token.is_empty()
        {
            problem(Provider::Calendly, "api_token missing");
        }
        if let Some(l) = &config.classifier.llm
            && blank(&l.model)
        {
            problem(Provider::Llm, "model missing");
        }
        let share = |cap: usize| Arc::new(Semaphore::new(cap.min(max_in_flight).max(1)));
        let slots = HashMap::from([
            (Provider::Twilio, share(max_in_flight)),
            (Provider::Stripe, share(8)),
            (Provider::Calendly, share(4)),
            (Provider::Llm, share(4)),
        ]);
        Self {
            twilio: p
                .twilio
                .as_ref()
                .map(|c| TwilioClient::new(c, http.clone(), resilient.clone())),
            stripe: p
                .stripe
                .as_ref()
                .map(|c| StripeClient::new(c, http.clone(), resilient.clone())),
            calendly: p
                .calendly
                .as_ref()
                .map(|c| CalendlyClient::new(c, http.clone(), resilient.clone())),
            llm: config
                .classifier
                .llm
                .as_ref()
                .map(|c| LlmClient::new(c, http.clone(), resilient.clone())),
            misconfigured,
            refused: Arc::new(Mutex::new(HashMap::new())),
            slots: Arc::new(slots),
        }
    }

    /// The configured providers' names, for the start-up log line.
    pub fn configured(&self) -> Vec<&'static str> {
        [
            (Provider::Twilio, self.twilio.is_some()),
            (Provider::Stripe, self.stripe.is_some()),
            (Provider::Calendly, self.calendly.is_some()),
            (Provider::Llm, self.llm.is_some()),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(p, _)| p.as_str())
        .collect()
    }

    /// One of the provider's slots, held for the duration of a call.
    pub async fn slot(&self, provider: Provider) -> Option<OwnedSemaphorePermit> {
        let semaphore = self.slots.get(&provider)?;
        Arc::clone(semaphore).acquire_owned().await.ok()
    }

    /// Notes what a call said about the provider's credentials.
    pub fn observe<T>(&self, provider: Provider, result: &Result<T, ProviderError>) {
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(_) => {
                refused.remove(&provider);
            }
            Err(error) if error.kind() == ErrorKind::CredentialRejected => {
                let status = error.http_status().unwrap_or(401);
                if refused.insert(provider, status).is_none() {
                    tracing::error!(
                        provider = provider.as_str(),
                        status,
                        "the provider refused the configured credentials"
                    );
                }
            }
            Err(_) => {}
        }
    }

    /// One readiness check per configured provider.
    pub fn checks(&self) -> Vec<Check> {
        let refused = self
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        self.configured()
            .into_iter()
            .map(|name| {
                let provider = match name {
                    "twilio" => Provider::Twilio,
                    "stripe" => Provider::Stripe,
                    "calendly" => Provider::Calendly,
                    _ => Provider::Llm,
                };
                if let Some(problem) = self.misconfigured.iter().find(|m| m.provider == provider) {
                    return Check::failed(name, problem.reason);
                }
                match refused.get(&provider) {
                    Some(status) => Check::failed(
                        name,
                        format!("credentials refused by the provider (HTTP {status})"),
                    ),
                    None => Check::ok(name),
                }
            })
            .collect()
    }
}
