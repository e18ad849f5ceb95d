//! The permission manifest (DESIGN.md "Tenants"): which execution types the executor may run
//! for a tenant. Deny by default: a type the tenant's list does not name is never performed,
//! and neither is anything for a tenant core does not know.
//!
//! The lists live in core; they are read through `GET /v1/tenant` and kept for a short time
//! per tenant, so a batch of two hundred reminders costs one read, and a permission withdrawn
//! in core stops being honoured here within [`PERMISSION_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::core::{CoreClient, CoreError};

/// How long a tenant's list is trusted before it is read again.
pub const PERMISSION_TTL: Duration = Duration::from_secs(30);

/// Whether an execution type may run for a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Not in the tenant's list, or the tenant is unknown to core.
    Denied,
}

#[derive(Debug, Clone)]
struct Entry {
    /// `None`: core does not know the tenant (or will not show it to us): everything denied.
    permissions: Option<Vec<String>>,
    read_at: Instant,
}

/// Per-tenant permission lists read from core, cached for [`PERMISSION_TTL`].
#[derive(Debug, Clone)]
pub struct PermissionCache {
    core: CoreClient,
    ttl: Duration,
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

impl PermissionCache {
    pub fn new(core: CoreClient) -> Self {
        Self {
            core,
            ttl: PERMISSION_TTL,
            entries: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Whether `command_type` may run for `tenant_id`. An error means the list could not be
    /// read: nothing may run, but a later try may find out.
    pub async fn check(&self, tenant_id: &str, command_type: &str) -> Result<Verdict, CoreError> {
        let permissions = self.permissions(tenant_id).await?;
        let allowed = permissions
            .as_ref()
            .is_some_and(|list| list.iter().any(|p| p == command_type));
        Ok(if allowed {
            Verdict::Allowed
        } else {
            Verdict::Denied
        })
    }

    async fn permissions(&self, tenant_id: &str) -> Result<Option<Vec<String>>, CoreError> {
        {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = entries.get(tenant_id)
                && entry.read_at.elapsed() < self.ttl
            {
                return Ok(entry.permissions.clone());
            }
        }
        let permissions = match self.core.tenant(tenant_id).await {
            Ok(tenant) => Some(tenant.permissions),
            // Unknown to core, not a tenant id, or outside our token's tenants: deny
            // everything. Any other refusal (a token without `events:read`) is ours to fix,
            // not the tenant's: nothing runs, but nothing is refused for good either.
            Err(CoreError::Status { status, code, .. })
                if status == 404 || code == "TENANT_FORBIDDEN" || code == "INVALID_TENANT" =>
            {
                tracing::warn!(
                    tenant = tenant_id,
                    code = %code,
                    "core does not show this tenant to the executor; denying its executions"
                );
                None
            }
            Err(error) => {
                if matches!(error.status(), Some(401 | 403)) {
                    tracing::error!(
                        error = %error,
                        "the executor's token cannot read tenants' permissions (it needs events:read)"
                    );
                }
                return Err(error);
            }
        };
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        // Bounded by the number of tenants; entries are refreshed, never piling up per call.
        entries.insert(
            tenant_id.to_owned(),
            Entry {
                permissions: permissions.clone(),
                read_at: Instant::now(),
            },
        );
        Ok(permissions)
    }
}
