//! A tenant is one clinic: its identity, where its texts come from, and the pack-supplied
//! configuration (policies, templates, reply codes, mappings) core applies without knowing which
//! profile it came from.

use crate::ids::TenantId;
use crate::policy::{Policies, PolicyError};
use crate::template::{PlaceholderLimits, TemplateLoadError, TemplateSet};
use crate::values::{Currency, Language, Phone, Region, Zone};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a tenant's LLM classification runs: never both (ADR-0006 "Classification Residency").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClassificationResidency {
    CoreEngine,
    #[default]
    OpenclawExecutor,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub zone: Zone,
    pub region: Region,
    pub clinic_phone: Option<Phone>,
    pub review_link: Option<String>,
    pub default_language: Language,
    pub classification_residency: ClassificationResidency,
    /// Execution types the executor may run for this tenant; anything absent is denied.
    pub permissions: Vec<String>,
    pub config: TenantConfig,
    pub created_at: DateTime<Utc>,
}

/// The execution types a clinic normally allows (`aro up` grants them to `default`).
pub const STANDARD_PERMISSIONS: &[&str] = &[
    "messaging.send_reminder",
    "messaging.send_message",
    "booking.fetch_invitee",
    "booking.request_reschedule_link",
    "payments.generate_deposit_link",
    "classification.classify_reply",
];

/// What a booking provider's event type means to the clinic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceMapping {
    pub service: String,
    pub price_minor: Option<i64>,
    pub currency: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Mappings {
    pub event_types: BTreeMap<String, ServiceMapping>,
}

/// The `tenant.update_config` payload, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TenantConfig {
    pub policies: Policies,
    /// language → template name → template text.
    pub templates: BTreeMap<String, BTreeMap<String, String>>,
    /// language → intent → codes; validated by the reply classifier.
    pub reply_codes: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    pub mappings: Mappings,
    pub placeholder_limits: Option<PlaceholderLimits>,
    /// The clinic's booking page, for rebooking offers and no-show recovery texts.
    pub booking_link: Option<String>,
}

/// A refused configuration, naming the field under `payload`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

impl From<PolicyError> for ConfigError {
    fn from(e: PolicyError) -> Self {
        Self {
            field: format!("policies.{}", e.field),
            reason: e.reason,
        }
    }
}

impl From<TemplateLoadError> for ConfigError {
    fn from(e: TemplateLoadError) -> Self {
        Self {
            field: format!("templates.{}.{}", e.language, e.name),
            reason: e.error.to_string(),
        }
    }
}

impl TenantConfig {
    /// Checks everything that can be checked without the reply classifier and returns the
    /// parsed templates.
    pub fn validate(&self) -> Result<TemplateSet, ConfigError> {
        self.policies.validate()?;
        for language in self.templates.keys().chain(self.reply_codes.keys()) {
            if Language::parse(language)
                .map(|l| l.as_str() != language)
                .unwrap_or(true)
            {
                return Err(ConfigError {
                    field: format!("templates.{language}"),
                    reason: "languages are two lower-case letters (en, es)".into(),
                });
            }
        }
        for (name, mapping) in &self.mappings.event_types {
            let field = format!("mappings.eventTypes.{name}");
            if mapping.service.trim().is_empty() {
                return Err(ConfigError {
                    field: format!("{field}.service"),
                    reason: "must not be empty".into(),
                });
            }
            if mapping.price_minor.is_some_and(|p| p < 0) {
                return Err(ConfigError {
                    field: format!("{field}.priceMinor"),
                    reason: "must not be negative".into(),
                });
            }
            if mapping.price_minor.is_some() != mapping.currency.is_some() {
                return Err(ConfigError {
                    field: format!("{field}.currency"),
                    reason: "give priceMinor and currency together".into(),
                });
            }
            if let Some(c) = &mapping.currency {
                Currency::parse(c).map_err(|e| ConfigError {
                    field: format!("{field}.currency"),
                    reason: e.to_string(),
                })?;
            }
        }
        if let Some(link) = &self.booking_link
            && !(link.starts_with("https://") || link.starts_with("http://"))
        {
            return Err(ConfigError {
                field: "bookingLink".into(),
                reason: "must be an http(s) URL".into(),
            });
        }
        let limits = self.placeholder_limits.clone().unwrap_or_default();
        Ok(TemplateSet::load(&self.templates, limits)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_design_example_is_a_valid_config() {
        let raw = r#"{"policies": {"reminderOffsetsHours": [48, 24], "sendWindow": {"start": "08:00", "end": "21:00"},
           "maxMessagesPer24h": 3, "classificationThreshold": 0.7, "correctionWindowHours": 72},
           "templates": {"en": {"reminder_48h": "Hi {{firstName}}, see you {{date}} at {{time}}."}},
           "replyCodes": {"en": {"confirm": ["C"]}},
           "mappings": {"eventTypes": {"checkup": {"service": "Checkup", "priceMinor": 12000, "currency": "USD"}}}}"#;
        let config: TenantConfig = serde_json::from_str(raw).unwrap();
        let set = config.validate().unwrap();
        assert!(set.get("en", "reminder_48h").is_some());
    }

    #[test]
    fn errors_name_the_field() {
        let mut config = TenantConfig::default();
        config.templates.insert(
            "en".into(),
            BTreeMap::from([("reminder_48h".into(), "Hi {{lastName}}".into())]),
        );
        assert_eq!(
            config.validate().unwrap_err().field,
            "templates.en.reminder_48h"
        );
        let mut config = TenantConfig::default();
        config.mappings.event_types.insert(
            "checkup".into(),
            ServiceMapping {
                service: "Checkup".into(),
                price_minor: Some(100),
                currency: None,
            },
        );
        assert_eq!(
            config.validate().unwrap_err().field,
            "mappings.eventTypes.checkup.currency"
        );
    }
}
