//! A tenant's own provider credentials (docs/adr/0011-tenant-credentials.md), as the executor
//! learns them: from core (`GET /v1/executions/credentials/{provider}` with `X-Tenant-Id`), one
//! tenant and provider at a time, kept for [`CREDENTIALS_TTL`].
//!
//! A tenant without credentials of its own for a provider (core answers 404) uses the
//! installation's `[providers.*]` section; that answer is kept just as long, so a batch of two
//! hundred reminders costs one read, and a rotation or removal in core takes effect here within
//! the TTL. When core cannot say (unreachable, an error), nothing is sent on a guess: sending a
//! clinic's texts from the installation's account instead of its own is not a fallback but a
//! mistake, so the execution goes back to core's queue instead.
//!
//! Credentials live only in this cache's memory and in the clients built from them; they are
//! never logged (their `Debug` is redacted).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aro_domain::credentials::{CredentialProvider, ProviderCredentials};
use tokio::time::Instant;

use crate::core::{CoreClient, CoreError};

/// How long a tenant's answer (its own credentials, or none) is trusted before it is read again.
pub const CREDENTIALS_TTL: Duration = Duration::from_secs(60);

/// Whose credentials a provider call used.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CredentialOwner {
    /// The installation's `[providers.*]` section.
    Installation,
    /// The tenant's own, set through core's admin API.
    Tenant(String),
}

impl CredentialOwner {
    /// A label for log lines.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Installation => "installation",
            Self::Tenant(_) => "tenant",
        }
    }
}

/// What a look-up found.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The tenant's own credentials, or `None`: the installation's apply.
    pub own: Option<ProviderCredentials>,
    /// They differ from what the previous read found (set, rotated or removed since): what
    /// was learnt about the old ones (a refusal) no longer holds.
    pub changed: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    own: Option<ProviderCredentials>,
    read_at: Instant,
}

/// Tenants' own credentials read from core, cached per tenant and provider. Cheap to clone.
#[derive(Clone)]
pub struct TenantCredentials {
    core: CoreClient,
    ttl: Duration,
    entries: Arc<Mutex<HashMap<(String, CredentialProvider), Entry>>>,
}

impl std::fmt::Debug for TenantCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantCredentials")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TenantCredentials {
    pub fn new(core: CoreClient) -> Self {
        Self::with_ttl(core, CREDENTIALS_TTL)
    }

    /// A cache that trusts an answer for `ttl` (tests shorten it).
    pub fn with_ttl(core: CoreClient, ttl: Duration) -> Self {
        Self {
            core,
            ttl,
            entries: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The tenant's own credentials for `provider`. An error means core could not say.
    pub async fn get(
        &self,
        tenant_id: &str,
        provider: CredentialProvider,
    ) -> Result<Lookup, CoreError> {
        let key = (tenant_id.to_owned(), provider);
        let previous = {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            match entries.get(&key) {
                Some(entry) if entry.read_at.elapsed() < self.ttl => {
                    return Ok(Lookup {
                        own: entry.own.clone(),
                        changed: false,
                    });
                }
                Some(entry) => Some(entry.own.clone()),
                None => None,
            }
        };
        let own = self.core.tenant_credentials(tenant_id, provider).await?;
        let changed = previous.is_some_and(|before| before != own);
        if changed {
            tracing::info!(
                tenant = tenant_id,
                provider = provider.as_str(),
                own = own.is_some(),
                "the tenant's provider credentials changed"
            );
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        // Bounded by tenants × providers; entries are refreshed, never piling up per call.
        entries.insert(
            key,
            Entry {
                own: own.clone(),
                read_at: Instant::now(),
            },
        );
        Ok(Lookup { own, changed })
    }
}
