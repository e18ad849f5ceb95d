//! Finding out whether the providers accept this executor's credentials before a patient's
//! text depends on it, and whether a tenant needs a provider nobody configured.
//!
//! Presence is checked when the configuration is read ([`crate::providers`]); acceptance only
//! the provider can tell. So at start, and then every [`CHECK_INTERVAL`], the executor makes
//! one cheap authenticated read per configured installation provider — Twilio `GET
//! /2010-04-01/Accounts/{AccountSid}.json`, Stripe `GET /v1/prices?limit=1`, Calendly `GET
//! /users/me` — through the resilience layer, each bounded by [`CHECK_BOUND`], without
//! delaying the worker or `/ready`. A 401/403 fails the provider's readiness check and is
//! logged once as an error naming the configuration keys (never a value); a network failure or
//! an outage leaves the credentials "unverified", logged as a warning, and the check passes.
//!
//! Tenants' needs: core offers the executor no list of tenants, so a tenant is reviewed once
//! the executor has claimed an execution for it (at once, then every round). When an
//! installation section is missing, its `GET /v1/tenant` says what its policies need
//! (reminders → Twilio, deposits → Stripe); a need with neither the section nor the tenant's
//! own credentials fails that provider's readiness check, naming the tenant, and is logged.
//! An execution that needed a provider nobody has credentials for is recorded the same way
//! ([`crate::providers::Providers::twilio_for`] and its siblings).

use std::collections::HashMap;
use std::time::Duration;

use aro_http::CancellationToken;
use aro_integrations::Provider;

use crate::core::CoreClient;
use crate::providers::{CredentialCheck, Providers, config_section};

/// How often the installation's credentials are checked again.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// The most one provider's check may take, retries included: start is never held up, and a
/// provider that does not answer in that time leaves its credentials unverified.
pub const CHECK_BOUND: Duration = Duration::from_secs(15);

/// Checks the installation's credentials now and every `every` until `shutdown`, and reviews
/// the needs of the tenants seen so far after each round.
pub async fn watch(
    providers: Providers,
    core: CoreClient,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut last: HashMap<Provider, CredentialCheck> = HashMap::new();
    for provider in [Provider::Twilio, Provider::Stripe, Provider::Calendly] {
        let configured = providers.configured().contains(&provider.as_str());
        if !configured {
            tracing::warn!(
                provider = provider.as_str(),
                section = config_section(provider),
                "no installation credentials for this provider: its executions fail for tenants without their own"
            );
        }
    }
    loop {
        let round = tokio::select! {
            round = providers.check_credentials(CHECK_BOUND) => round,
            () = shutdown.cancelled() => return,
        };
        for (provider, check) in round {
            report(provider, &check, last.get(&provider));
            last.insert(provider, check);
        }
        for tenant in providers.seen_tenants() {
            tokio::select! {
                () = providers.review_tenant_needs(&core, &tenant) => {}
                () = shutdown.cancelled() => return,
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// One log line per change: every result of the first round, then what changed.
fn report(provider: Provider, check: &CredentialCheck, before: Option<&CredentialCheck>) {
    if before == Some(check) {
        return;
    }
    let name = provider.as_str();
    match check {
        CredentialCheck::Accepted => {
            tracing::info!(
                provider = name,
                "the provider accepted the configured credentials"
            );
        }
        // Logged where the refusal is recorded (`Providers::observe`), once, with the keys.
        CredentialCheck::Refused(_) => {}
        CredentialCheck::Unverified(why) => tracing::warn!(
            provider = name,
            why = %why,
            "the configured credentials could not be verified: the provider could not be asked"
        ),
        CredentialCheck::Pending => {}
    }
}
