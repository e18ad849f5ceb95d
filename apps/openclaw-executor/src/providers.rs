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
//!
//! A tenant with credentials of its own ([`crate::credentials`]) gets clients built from them
//! ([`Providers::twilio_for`] and its siblings), on the installation's base URLs; their
//! resilience destinations are per account (`twilio:{AccountSid}`) or, where an API key names
//! no account, per tenant (`stripe:tenant:{id}`, `calendly:tenant:{id}`), so one clinic's
//! refused key or outage never opens the breaker of another. A refusal of a tenant's own
//! credentials fails a readiness check of its own, `{provider}:{tenant}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aro_config::{CalendlyConfig, Config, Secret, StripeConfig, TwilioConfig};
use aro_domain::credentials::{CredentialProvider, ProviderCredentials};
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
use crate::credentials::{CredentialOwner, TenantCredentials};
use crate::outcome::ExecutionFailure;

/// How long to wait before the next try when a tenant's credentials could not be read.
const CREDENTIALS_RETRY_AFTER: Duration = Duration::from_secs(5);

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
    /// Credentials refused at run time (the installation's, or a tenant's own), with the HTTP
    /// status.
    refused: Arc<Mutex<HashMap<(Provider, CredentialOwner), u16>>>,
    slots: Arc<HashMap<Provider, Arc<Semaphore>>>,
    /// Tenants' own credentials; `None` uses the installation's for every tenant.
    tenant_credentials: Option<TenantCredentials>,
    /// What clients for tenants' own credentials are built with.
    http: reqwest::Client,
    resilient: Resilient,
    base_urls: BaseUrls,
}

/// The providers' base URLs, the installation's choice (the real APIs or the sandbox) for
/// tenants' own credentials too.
#[derive(Clone)]
struct BaseUrls {
    twilio: url::Url,
    stripe: url::Url,
    calendly: url::Url,
}

impl BaseUrls {
    fn from_config(config: &Config) -> Self {
        let p = &config.providers;
        let public = |raw: &str| url::Url::parse(raw).ok();
        // The literals are valid URLs; a section's own base URL wins.
        let pick = |configured: Option<&url::Url>, default: &str| {
            configured
                .cloned()
                .or_else(|| public(default))
                .unwrap_or_else(|| config.services.core.url.clone())
        };
        Self {
            twilio: pick(
                p.twilio.as_ref().map(|t| &t.base_url),
                "https://api.twilio.com",
            ),
            stripe: pick(
                p.stripe.as_ref().map(|s| &s.base_url),
                "https://api.stripe.com",
            ),
            calendly: pick(
                p.calendly.as_ref().map(|c| &c.base_url),
                "https://api.calendly.com",
            ),
        }
    }
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
            tenant_credentials: None,
            http: http.clone(),
            resilient: resilient.clone(),
            base_urls: BaseUrls::from_config(config),
        }
    }

    /// Uses tenants' own credentials where core has some (else the installation's).
    #[must_use]
    pub fn with_tenant_credentials(mut self, credentials: TenantCredentials) -> Self {
        self.tenant_credentials = Some(credentials);
        self
    }

    /// The tenant's own credentials for `provider`, if it has some. A change since the last
    /// read clears what was learnt about the old ones.
    async fn own_credentials(
        &self,
        tenant_id: &str,
        provider: Provider,
        kind: CredentialProvider,
    ) -> Result<Option<ProviderCredentials>, ExecutionFailure> {
        let Some(cache) = &self.tenant_credentials else {
            return Ok(None);
        };
        let lookup = cache.get(tenant_id, kind).await.map_err(|error| {
            tracing::warn!(tenant = tenant_id, provider = provider.as_str(), error = %error, "the tenant's provider credentials could not be read");
            ExecutionFailure::retryable(
                "TENANT_CREDENTIALS_UNAVAILABLE",
                format!("the tenant's {} credentials could not be read from core", provider.as_str()),
                Some(CREDENTIALS_RETRY_AFTER),
            )
        })?;
        if lookup.changed {
            self.refused
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&(provider, CredentialOwner::Tenant(tenant_id.to_owned())));
        }
        Ok(lookup.own)
    }

    /// The Twilio client for `tenant_id`: its own account when it has one, else the
    /// installation's; `None` when neither exists.
    pub async fn twilio_for(
        &self,
        tenant_id: &str,
    ) -> Result<Option<(TwilioClient, CredentialOwner)>, ExecutionFailure> {
        match self
            .own_credentials(tenant_id, Provider::Twilio, CredentialProvider::Twilio)
            .await?
        {
            Some(ProviderCredentials::Twilio(own)) => {
                let config = TwilioConfig {
                    account_sid: own.account_sid,
                    auth_token: Secret::new(own.auth_token),
                    from_number: own.from_number,
                    messaging_service_sid: own.messaging_service_sid,
                    base_url: self.base_urls.twilio.clone(),
                };
                // Destination `twilio:{AccountSid}`: per account.
                let client = TwilioClient::new(&config, self.http.clone(), self.resilient.clone());
                Ok(Some((
                    client,
                    CredentialOwner::Tenant(tenant_id.to_owned()),
                )))
            }
            Some(_) => Err(mismatched(Provider::Twilio)),
            None => Ok(self
                .twilio
                .clone()
                .map(|client| (client, CredentialOwner::Installation))),
        }
    }

    /// The Stripe client for `tenant_id` (see [`Self::twilio_for`]).
    pub async fn stripe_for(
        &self,
        tenant_id: &str,
    ) -> Result<Option<(StripeClient, CredentialOwner)>, ExecutionFailure> {
        match self
            .own_credentials(tenant_id, Provider::Stripe, CredentialProvider::Stripe)
            .await?
        {
            Some(ProviderCredentials::Stripe(own)) => {
                let config = StripeConfig {
                    secret_key: Secret::new(own.secret_key),
                    webhook_secret: Secret::new(own.webhook_secret),
                    base_url: self.base_urls.stripe.clone(),
                };
                let client = StripeClient::new(&config, self.http.clone(), self.resilient.clone())
                    .with_destination(format!("stripe:tenant:{tenant_id}"));
                Ok(Some((
                    client,
                    CredentialOwner::Tenant(tenant_id.to_owned()),
                )))
            }
            Some(_) => Err(mismatched(Provider::Stripe)),
            None => Ok(self
                .stripe
                .clone()
                .map(|client| (client, CredentialOwner::Installation))),
        }
    }

    /// The Calendly client for `tenant_id` (see [`Self::twilio_for`]).
    pub async fn calendly_for(
        &self,
        tenant_id: &str,
    ) -> Result<Option<(CalendlyClient, CredentialOwner)>, ExecutionFailure> {
        match self
            .own_credentials(tenant_id, Provider::Calendly, CredentialProvider::Calendly)
            .await?
        {
            Some(ProviderCredentials::Calendly(own)) => {
                let config = CalendlyConfig {
                    api_token: Secret::new(own.api_token),
                    webhook_signing_key: Secret::new(own.webhook_signing_key),
                    base_url: self.base_urls.calendly.clone(),
                };
                let client =
                    CalendlyClient::new(&config, self.http.clone(), self.resilient.clone())
                        .with_destination(format!("calendly:tenant:{tenant_id}"));
                Ok(Some((
                    client,
                    CredentialOwner::Tenant(tenant_id.to_owned()),
                )))
            }
            Some(_) => Err(mismatched(Provider::Calendly)),
            None => Ok(self
                .calendly
                .clone()
                .map(|client| (client, CredentialOwner::Installation))),
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

    /// Notes what a call with the installation's credentials said about them.
    pub fn observe<T>(&self, provider: Provider, result: &Result<T, ProviderError>) {
        self.observe_as(provider, &CredentialOwner::Installation, result);
    }

    /// Notes what a call said about the credentials it used (`owner`'s).
    pub fn observe_as<T>(
        &self,
        provider: Provider,
        owner: &CredentialOwner,
        result: &Result<T, ProviderError>,
    ) {
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (provider, owner.clone());
        match result {
            Ok(_) => {
                refused.remove(&key);
            }
            Err(error) if error.kind() == ErrorKind::CredentialRejected => {
                let status = error.http_status().unwrap_or(401);
                if refused.insert(key, status).is_none() {
                    match owner {
                        CredentialOwner::Installation => tracing::error!(
                            provider = provider.as_str(),
                            status,
                            "the provider refused the configured credentials"
                        ),
                        CredentialOwner::Tenant(tenant) => tracing::error!(
                            provider = provider.as_str(),
                            tenant = %tenant,
                            status,
                            "the provider refused the tenant's own credentials"
                        ),
                    }
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
        let installation = self.configured().into_iter().map(|name| {
            let provider = match name {
                "twilio" => Provider::Twilio,
                "stripe" => Provider::Stripe,
                "calendly" => Provider::Calendly,
                _ => Provider::Llm,
            };
            if let Some(problem) = self.misconfigured.iter().find(|m| m.provider == provider) {
                return Check::failed(name, problem.reason);
            }
            match refused.get(&(provider, CredentialOwner::Installation)) {
                Some(status) => Check::failed(
                    name,
                    format!("credentials refused by the provider (HTTP {status})"),
                ),
                None => Check::ok(name),
            }
        });
        // Only refused tenants are named: a check per tenant would grow with the installation.
        let mut tenants: Vec<(String, String, u16)> = refused
            .iter()
            .filter_map(|((provider, owner), status)| match owner {
                CredentialOwner::Tenant(tenant) => {
                    Some((provider.as_str().to_owned(), tenant.clone(), *status))
                }
                CredentialOwner::Installation => None,
            })
            .collect();
        tenants.sort();
        let tenants = tenants.into_iter().map(|(provider, tenant, status)| {
            Check::failed(
                format!("{provider}:{tenant}"),
                format!(
                    "tenant {tenant}'s own {provider} credentials refused by the provider (HTTP {status})"
                ),
            )
        });
        installation.chain(tenants).collect()
    }
}

/// Core handed out another provider's credentials: never used, and never guessed around.
fn mismatched(provider: Provider) -> ExecutionFailure {
    ExecutionFailure::retryable(
        "TENANT_CREDENTIALS_UNAVAILABLE",
        format!(
            "core answered with credentials of another provider than {}",
            provider.as_str()
        ),
        Some(CREDENTIALS_RETRY_AFTER),
    )
}
