//! Creating tenants (clinics). A tenant is created once, with a `tenant.created` event; creating
//! it again is a no-op that returns the existing one.

use crate::clock::Clock;
use aro_domain::EventType;
use aro_domain::ids::TenantId;
use aro_domain::tenant::{ClassificationResidency, STANDARD_PERMISSIONS, Tenant, TenantConfig};
use aro_domain::values::{Language, Phone, Region, Zone};
use aro_store::{AggregateRef, EventMetadata, NewEvent, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What it takes to create a tenant.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewTenant {
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", example = "default"))]
    pub id: TenantId,
    pub name: String,
    /// An IANA time zone.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "America/New_York"))]
    pub timezone: Zone,
    /// The ISO 3166 region phone numbers are read in (default `US`).
    #[serde(default = "default_region")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "US"))]
    pub region: Region,
    /// The default ISO 639-1 language of patients (default `en`).
    #[serde(default = "Language::english")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "en"))]
    pub language: Language,
    #[serde(default)]
    pub clinic_phone: Option<String>,
    #[serde(default)]
    pub review_link: Option<String>,
    /// Where LLM classification runs: `core-engine` or `openclaw-executor` (the default).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "openclaw-executor"))]
    pub classification_residency: ClassificationResidency,
    /// Execution types the executor may run for this tenant (deny by default); `None` grants
    /// the standard set a clinic needs.
    #[serde(default)]
    pub permissions: Option<Vec<String>>,
}

fn default_region() -> Region {
    Region::US
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NewTenant {
    /// The tenant `aro up` creates on first start.
    pub fn demo_default() -> Self {
        Self {
            id: TenantId::parse("default").expect("static tenant id"),
            name: "Demo Clinic".into(),
            timezone: Zone::parse("America/New_York").expect("static zone"),
            region: Region::US,
            language: Language::english(),
            clinic_phone: Some("+15005550100".into()),
            review_link: Some("https://example.org/review-us".into()),
            classification_residency: ClassificationResidency::OpenclawExecutor,
            permissions: None,
        }
    }

    fn into_tenant(self, clock: &Clock) -> Result<Tenant, TenantError> {
        if self.name.trim().is_empty() || self.name.len() > 120 {
            return Err(TenantError::Invalid {
                field: "name".into(),
                reason: "give a name of 1–120 characters".into(),
            });
        }
        let clinic_phone = self
            .clinic_phone
            .as_deref()
            .map(|p| Phone::parse(p, self.region))
            .transpose()
            .map_err(|e| TenantError::Invalid {
                field: "clinicPhone".into(),
                reason: e.to_string(),
            })?;
        if let Some(link) = &self.review_link
            && !(link.starts_with("https://") || link.starts_with("http://"))
        {
            return Err(TenantError::Invalid {
                field: "reviewLink".into(),
                reason: "must be an http(s) URL".into(),
            });
        }
        let permissions = self.permissions.unwrap_or_else(|| {
            STANDARD_PERMISSIONS
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        });
        Ok(Tenant {
            id: self.id,
            name: self.name.trim().to_owned(),
            zone: self.timezone,
            region: self.region,
            clinic_phone,
            review_link: self.review_link,
            default_language: self.language,
            classification_residency: self.classification_residency,
            permissions,
            config: TenantConfig::default(),
            created_at: clock.now(),
        })
    }
}

/// Creates the tenant unless it exists; returns it and whether it was created now.
pub async fn create(
    store: &Store,
    clock: &Clock,
    spec: NewTenant,
    actor: &str,
) -> Result<(Tenant, bool), TenantError> {
    let tenant = spec.into_tenant(clock)?;
    let now = clock.now();
    let actor = actor.to_owned();
    let result = store
        .write(move |tx| {
            Box::pin(async move {
                if let Some((existing, _)) = tx.get_tenant(tenant.id.as_str()).await? {
                    return Ok::<_, StoreError>((existing, false));
                }
                tx.insert_tenant(&tenant).await?;
                tx.append_event(
                    NewEvent {
                        tenant_id: tenant.id.to_string(),
                        event_type: EventType::TenantCreated,
                        aggregate: AggregateRef::new("tenant", tenant.id.as_str()),
                        occurred_at: now,
                        profile: None,
                        payload: json!({
                            "tenantId": tenant.id,
                            "name": tenant.name,
                            "timezone": tenant.zone,
                            "region": tenant.region,
                            "language": tenant.default_language,
                            "actor": actor,
                        }),
                        pii: None,
                        metadata: EventMetadata::default(),
                    },
                    now,
                )
                .await?;
                Ok((tenant, true))
            })
        })
        .await?;
    Ok(result)
}
