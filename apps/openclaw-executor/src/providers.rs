//! The providers this installation can reach, built once from `[providers.*]` and
//! `[classifier.llm]`, with what `/ready` says about them.
//!
//! Each provider gets its own resilience policy (rate limit, timeout, retries, breaker; see
//! [`policies`]) and its own share of the executor's slots, so a slow booking system or model
//! cannot hold every slot while reminders wait.
//!
//! Readiness (`/ready`) has one check per provider, `twilio`, `stripe` and `calendly` always
//! (and `llm` when configured), and never shows a credential. A check fails when the section
//! is incomplete, when the provider refused the configured credentials (HTTP 401/403, seen by
//! the check made at start and every few minutes — [`crate::credential_checks`] — or by a real
//! call), naming the configuration keys to fix, or when the section is missing but a tenant
//! needs it and has no credentials of its own. A refusal is forgotten at the next call the
//! provider accepts. A provider that could not be asked (unreachable, an outage) is
//! "unverified": the check passes and says so, since nothing is known against the credentials.
//!
//! A tenant with credentials of its own ([`crate::credentials`]) gets clients built from them
//! ([`Providers::twilio_for`] and its siblings), on the installation's base URLs; their
//! resilience destinations are per account (`twilio:{AccountSid}`) or, where an API key names
//! no account, per tenant (`stripe:tenant:{id}`, `calendly:tenant:{id}`), so one clinic's
//! refused key or outage never opens the breaker of another. A refusal of a tenant's own
//! credentials fails a readiness check of its own, `{provider}:{tenant}`.

use std::collections::{HashMap, HashSet};
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

/// Tenants remembered for the review of their needs: bounded, as everything kept per tenant.
const MAX_SEEN_TENANTS: usize = 10_000;

/// At most this many tenants are named in one readiness detail.
const MAX_NAMED_TENANTS: usize = 5;

/// Why a tenant needs a provider: an execution of its own needed it.
const NEEDED_BY_AN_EXECUTION: &str = "an execution needed it";

/// What the last check of the installation's credentials for a provider found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialCheck {
    /// Not checked yet.
    Pending,
    /// The provider accepted them.
    Accepted,
    /// The provider refused them, with this HTTP status.
    Refused(u16),
    /// The provider could not be asked (unreachable, an outage, no answer in time): nothing is
    /// known against the credentials. Says why, in words without a secret.
    Unverified(String),
}

/// Where each provider's installation credentials are configured, for messages that tell an
/// operator what to fix (never the values).
pub fn config_keys(provider: Provider) -> &'static str {
    match provider {
        Provider::Twilio => "[providers.twilio] account_sid and auth_token",
        Provider::Stripe => "[providers.stripe] secret_key",
        Provider::Calendly => "[providers.calendly] api_token",
        Provider::Llm => "[classifier.llm] api_key",
    }
}

/// The section a provider's installation settings live in.
pub fn config_section(provider: Provider) -> &'static str {
    match provider {
        Provider::Twilio => "[providers.twilio]",
        Provider::Stripe => "[providers.stripe]",
        Provider::Calendly => "[providers.calendly]",
        Provider::Llm => "[classifier.llm]",
    }
}

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
    /// What the last check of the installation's credentials found, per provider.
    checked: Arc<Mutex<HashMap<Provider, CredentialCheck>>>,
    /// Tenants that need a provider nobody has credentials for here (no installation section,
    /// none of their own), with why.
    unmet: Arc<Mutex<HashMap<(Provider, String), &'static str>>>,
    /// Tenants this executor has run executions for, whose needs are reviewed.
    seen: Arc<Mutex<HashSet<String>>>,
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
            checked: Arc::new(Mutex::new(HashMap::new())),
            unmet: Arc::new(Mutex::new(HashMap::new())),
            seen: Arc::new(Mutex::new(HashSet::new())),
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
                self.met(Provider::Twilio, tenant_id);
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
            None => {
                Ok(self.installation_or_unmet(Provider::Twilio, tenant_id, self.twilio.clone()))
            }
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
                self.met(Provider::Stripe, tenant_id);
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
            None => {
                Ok(self.installation_or_unmet(Provider::Stripe, tenant_id, self.stripe.clone()))
            }
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
                self.met(Provider::Calendly, tenant_id);
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
            None => Ok(self.installation_or_unmet(
                Provider::Calendly,
                tenant_id,
                self.calendly.clone(),
            )),
        }
    }

    /// The installation's client when there is one; otherwise the tenant needs a provider
    /// nobody has credentials for here, which readiness names.
    fn installation_or_unmet<C>(
        &self,
        provider: Provider,
        tenant_id: &str,
        installation: Option<C>,
    ) -> Option<(C, CredentialOwner)> {
        match installation {
            Some(client) => Some((client, CredentialOwner::Installation)),
            None => {
                self.unmet_need(provider, tenant_id, NEEDED_BY_AN_EXECUTION);
                None
            }
        }
    }

    /// Records that `tenant_id` needs `provider` (for `why`) and nobody has credentials for it
    /// here; logged once.
    fn unmet_need(&self, provider: Provider, tenant_id: &str, why: &'static str) {
        let mut unmet = self.unmet.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (provider, tenant_id.to_owned());
        let first = !unmet.contains_key(&key);
        // A policy's reason says more than "an execution needed it"; it is kept once known.
        if first || why != NEEDED_BY_AN_EXECUTION {
            unmet.insert(key, why);
        }
        if first {
            tracing::error!(
                provider = provider.as_str(),
                tenant = tenant_id,
                why,
                section = config_section(provider),
                "a tenant needs a provider this executor has no credentials for: configure the section or give the tenant its own credentials"
            );
        }
    }

    /// The tenant's need of `provider` is met (it has credentials of its own now).
    fn met(&self, provider: Provider, tenant_id: &str) {
        let removed = self
            .unmet
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(provider, tenant_id.to_owned()))
            .is_some();
        if removed {
            tracing::info!(
                provider = provider.as_str(),
                tenant = tenant_id,
                "the tenant's need of a provider is met"
            );
        }
    }

    /// Remembers a tenant this executor runs executions for; `true` the first time.
    pub fn note_tenant(&self, tenant_id: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX_SEEN_TENANTS || seen.contains(tenant_id) {
            return false;
        }
        seen.insert(tenant_id.to_owned())
    }

    /// The tenants noted so far.
    pub fn seen_tenants(&self) -> Vec<String> {
        let mut tenants: Vec<String> = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        tenants.sort();
        tenants
    }

    /// The providers whose installation section is missing and which a tenant's policies can
    /// need: only these make reviewing tenants' needs worth a read.
    pub fn missing_sections(&self) -> Vec<Provider> {
        [
            (Provider::Twilio, self.twilio.is_none()),
            (Provider::Stripe, self.stripe.is_none()),
        ]
        .into_iter()
        .filter_map(|(provider, missing)| missing.then_some(provider))
        .collect()
    }

    /// Reviews what `tenant_id`'s installed policies need (read through core's `GET
    /// /v1/tenant`) against the providers configured here and the tenant's own credentials:
    /// reminders need Twilio, deposits Stripe. Does nothing when every such section is
    /// configured. A tenant core cannot describe now keeps what was known.
    pub async fn review_tenant_needs(&self, core: &crate::core::CoreClient, tenant_id: &str) {
        let missing = self.missing_sections();
        if missing.is_empty() {
            return;
        }
        let profile = match core.tenant_profile(tenant_id).await {
            Ok(profile) => profile,
            Err(error) => {
                tracing::debug!(tenant = tenant_id, error = %error, "the tenant's needs could not be read");
                return;
            }
        };
        let needs = needs_of(&profile);
        for provider in missing {
            let kind = match provider {
                Provider::Twilio => CredentialProvider::Twilio,
                Provider::Stripe => CredentialProvider::Stripe,
                _ => continue,
            };
            let need = needs
                .iter()
                .find(|(p, _)| *p == provider)
                .map(|(_, why)| *why);
            match self.own_credentials(tenant_id, provider, kind).await {
                Ok(Some(_)) => self.met(provider, tenant_id),
                Ok(None) => match need {
                    Some(why) => self.unmet_need(provider, tenant_id, why),
                    None => self.policy_need_gone(provider, tenant_id),
                },
                // Core could not say: what was known stands.
                Err(_) => {}
            }
        }
    }

    /// A need read from the tenant's policies no longer holds (deposits turned off); one an
    /// execution showed stays until the tenant has credentials.
    fn policy_need_gone(&self, provider: Provider, tenant_id: &str) {
        let mut unmet = self.unmet.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (provider, tenant_id.to_owned());
        if unmet
            .get(&key)
            .is_some_and(|why| *why != NEEDED_BY_AN_EXECUTION)
        {
            unmet.remove(&key);
        }
    }

    /// The tenants that need a provider nobody has credentials for here: `(provider, tenant,
    /// why)`, sorted.
    pub fn unmet_needs(&self) -> Vec<(Provider, String, &'static str)> {
        let mut needs: Vec<(Provider, String, &'static str)> = self
            .unmet
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|((provider, tenant), why)| (*provider, tenant.clone(), *why))
            .collect();
        needs.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
        needs
    }

    /// Checks the installation's credentials of every configured provider (Twilio, Stripe,
    /// Calendly) with one cheap authenticated read each, concurrently, through the resilience
    /// layer, each given at most `bound`; records and returns what each found. A 401/403 marks
    /// the credentials refused (readiness fails, naming the keys); a network failure or an
    /// outage leaves them unverified. An incomplete section is not checked (it fails readiness
    /// already).
    pub async fn check_credentials(&self, bound: Duration) -> Vec<(Provider, CredentialCheck)> {
        let complete = |provider| !self.misconfigured.iter().any(|m| m.provider == provider);
        let twilio = self
            .twilio
            .clone()
            .filter(|_| complete(Provider::Twilio))
            .map(|client| async move { client.verify_credentials().await });
        let stripe = self
            .stripe
            .clone()
            .filter(|_| complete(Provider::Stripe))
            .map(|client| async move { client.verify_credentials().await });
        let calendly = self
            .calendly
            .clone()
            .filter(|_| complete(Provider::Calendly))
            .map(|client| async move { client.verify_credentials().await });
        let (twilio, stripe, calendly) = tokio::join!(
            bounded(twilio, bound),
            bounded(stripe, bound),
            bounded(calendly, bound),
        );
        let mut found = Vec::new();
        for (provider, outcome) in [
            (Provider::Twilio, twilio),
            (Provider::Stripe, stripe),
            (Provider::Calendly, calendly),
        ] {
            let Some(outcome) = outcome else { continue };
            let check = match outcome {
                Ok(result) => {
                    self.observe(provider, &result);
                    match result {
                        Ok(()) => CredentialCheck::Accepted,
                        Err(error) if error.kind() == ErrorKind::CredentialRejected => {
                            CredentialCheck::Refused(error.http_status().unwrap_or(401))
                        }
                        Err(error) => CredentialCheck::Unverified(error.to_string()),
                    }
                }
                Err(()) => CredentialCheck::Unverified(format!(
                    "no answer within {} s",
                    bound.as_secs().max(1)
                )),
            };
            self.checked
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(provider, check.clone());
            found.push((provider, check));
        }
        found
    }

    /// What the last check of the installation's `provider` credentials found.
    pub fn credential_check(&self, provider: Provider) -> CredentialCheck {
        self.checked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&provider)
            .cloned()
            .unwrap_or(CredentialCheck::Pending)
    }

    /// Whether every configured provider with a complete section has been checked at least
    /// once (whatever the check found).
    pub fn credentials_checked(&self) -> bool {
        [
            (Provider::Twilio, self.twilio.is_some()),
            (Provider::Stripe, self.stripe.is_some()),
            (Provider::Calendly, self.calendly.is_some()),
        ]
        .into_iter()
        .filter(|(provider, configured)| {
            *configured && !self.misconfigured.iter().any(|m| m.provider == *provider)
        })
        .all(|(provider, _)| self.credential_check(provider) != CredentialCheck::Pending)
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
                            check = config_keys(provider),
                            "the provider refused the configured credentials; its executions will fail"
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

    /// One readiness check per provider: `twilio`, `stripe`, `calendly` always, `llm` when
    /// configured, then `{provider}:{tenant}` for each tenant whose own credentials were
    /// refused.
    pub fn checks(&self) -> Vec<Check> {
        let refused = self
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let unmet = self.unmet_needs();
        let mut checks: Vec<Check> = [
            (Provider::Twilio, self.twilio.is_some()),
            (Provider::Stripe, self.stripe.is_some()),
            (Provider::Calendly, self.calendly.is_some()),
        ]
        .into_iter()
        .map(|(provider, configured)| {
            if configured {
                self.installation_check(provider, &refused)
            } else {
                missing_check(provider, &unmet)
            }
        })
        .collect();
        if self.llm.is_some() {
            checks.push(self.installation_check(Provider::Llm, &refused));
        }
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
        checks.extend(tenants.into_iter().map(|(provider, tenant, status)| {
            Check::failed(
                format!("{provider}:{tenant}"),
                format!(
                    "tenant {tenant}'s own {provider} credentials refused by the provider (HTTP {status})"
                ),
            )
        }));
        checks
    }

    /// The check of a configured provider's section and credentials.
    fn installation_check(
        &self,
        provider: Provider,
        refused: &HashMap<(Provider, CredentialOwner), u16>,
    ) -> Check {
        let name = provider.as_str();
        if let Some(problem) = self.misconfigured.iter().find(|m| m.provider == provider) {
            return Check::failed(
                name,
                format!(
                    "{} incomplete: {}",
                    config_section(provider),
                    problem.reason
                ),
            );
        }
        if let Some(status) = refused.get(&(provider, CredentialOwner::Installation)) {
            return Check::failed(
                name,
                format!(
                    "{name} refused the configured credentials (HTTP {status}): check {}",
                    config_keys(provider)
                ),
            );
        }
        let detail = match self.credential_check(provider) {
            _ if provider == Provider::Llm => return Check::ok(name),
            CredentialCheck::Pending => "credentials not verified yet".to_owned(),
            // Refused earlier, accepted by a call since.
            CredentialCheck::Accepted | CredentialCheck::Refused(_) => {
                "credentials accepted by the provider".to_owned()
            }
            CredentialCheck::Unverified(why) => format!(
                "credentials not verified (the provider could not be asked: {why}); checked again every {} minutes",
                crate::credential_checks::CHECK_INTERVAL.as_secs() / 60
            ),
        };
        Check {
            detail: Some(detail),
            ..Check::ok(name)
        }
    }
}

/// The check of a provider whose installation section is missing: fine until a tenant needs
/// it without credentials of its own.
fn missing_check(provider: Provider, unmet: &[(Provider, String, &'static str)]) -> Check {
    let name = provider.as_str();
    let section = config_section(provider);
    let needing: Vec<String> = unmet
        .iter()
        .filter(|(p, _, _)| *p == provider)
        .map(|(_, tenant, why)| format!("{tenant} ({why})"))
        .collect();
    if needing.is_empty() {
        return Check {
            detail: Some(format!(
                "not configured ({section}); no tenant seen so far needs it without credentials of its own"
            )),
            ..Check::ok(name)
        };
    }
    let mut named = needing
        .iter()
        .take(MAX_NAMED_TENANTS)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if needing.len() > MAX_NAMED_TENANTS {
        named.push_str(&format!(" and {} more", needing.len() - MAX_NAMED_TENANTS));
    }
    Check::failed(
        name,
        format!(
            "not configured ({section}), but needed by tenant {named}, without {name} credentials of its own: set {section} or the tenant's own credentials"
        ),
    )
}

/// What a tenant's profile (`GET /v1/tenant`) says it needs: reminders need Twilio, deposits
/// Stripe, each only when the tenant allows the executor to perform them.
fn needs_of(profile: &serde_json::Value) -> Vec<(Provider, &'static str)> {
    let allowed = |kind: &str| {
        profile["permissions"]
            .as_array()
            .is_some_and(|list| list.iter().any(|p| p.as_str() == Some(kind)))
    };
    let policies = &profile["config"]["policies"];
    let mut needs = Vec::new();
    let reminders = policies["reminderOffsetsHours"]
        .as_array()
        .is_some_and(|offsets| !offsets.is_empty());
    if reminders && allowed("messaging.send_reminder") {
        needs.push((Provider::Twilio, "it sends reminders"));
    }
    if policies["depositMinor"]
        .as_i64()
        .is_some_and(|minor| minor > 0)
        && allowed("payments.generate_deposit_link")
    {
        needs.push((Provider::Stripe, "deposits are on"));
    }
    needs
}

/// Runs `call` (if there is one) for at most `bound`: `Err(())` when it took longer.
async fn bounded<F>(
    call: Option<F>,
    bound: Duration,
) -> Option<Result<Result<(), ProviderError>, ()>>
where
    F: std::future::Future<Output = Result<(), ProviderError>>,
{
    let call = call?;
    Some(tokio::time::timeout(bound, call).await.map_err(|_| ()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile(permissions: &[&str], reminders: &[u32], deposit_minor: i64) -> serde_json::Value {
        json!({"id": "clinic-a", "permissions": permissions, "config": {"policies": {
            "reminderOffsetsHours": reminders, "depositMinor": deposit_minor}}})
    }

    #[test]
    fn reminders_need_twilio_and_deposits_stripe_when_the_tenant_allows_them() {
        let all = ["messaging.send_reminder", "payments.generate_deposit_link"];
        assert_eq!(
            needs_of(&profile(&all, &[48, 24], 2500)),
            [
                (Provider::Twilio, "it sends reminders"),
                (Provider::Stripe, "deposits are on")
            ]
        );
        // Deposits off, no reminders, or not allowed: no need.
        assert!(needs_of(&profile(&all, &[], 0)).is_empty());
        assert!(needs_of(&profile(&[], &[48], 2500)).is_empty());
        assert!(needs_of(&json!({})).is_empty());
    }

    #[test]
    fn a_missing_section_fails_readiness_only_when_a_tenant_needs_it() {
        let fine = missing_check(Provider::Stripe, &[]);
        assert!(fine.ok);
        assert!(
            fine.detail
                .as_deref()
                .unwrap_or("")
                .contains("[providers.stripe]")
        );
        let needs: Vec<(Provider, String, &'static str)> = (0..7)
            .map(|n| (Provider::Stripe, format!("clinic-{n}"), "deposits are on"))
            .chain([(Provider::Twilio, "other".to_owned(), "it sends reminders")])
            .collect();
        let failed = missing_check(Provider::Stripe, &needs);
        assert!(!failed.ok);
        let detail = failed.detail.unwrap_or_default();
        assert!(detail.contains("clinic-0 (deposits are on)"), "{detail}");
        assert!(detail.contains("and 2 more"), "{detail}");
        assert!(detail.contains("set [providers.stripe]"), "{detail}");
        assert!(!detail.contains("other"), "{detail}");
    }

    #[test]
    fn messages_name_the_keys_to_fix() {
        assert!(config_keys(Provider::Twilio).contains("auth_token"));
        assert!(config_keys(Provider::Stripe).contains("secret_key"));
        assert!(config_keys(Provider::Calendly).contains("api_token"));
    }
}
