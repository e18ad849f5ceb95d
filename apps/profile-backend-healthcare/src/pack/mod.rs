//! The healthcare profile pack: the words (templates per language), numbers (policies), reply
//! codes and booking mappings this profile installs into core for every clinic.
//!
//! The pack is data, in `apps/profile-backend-healthcare/pack/`, embedded in the binary so the
//! BFF finds it from any working directory. It is checked here as strictly as core would check
//! it (the domain's own validation: placeholders, one SMS segment at the placeholders' maximum
//! lengths, policies, mappings; the reply classifier's code rules) plus the profile's own rules
//! ([`rules`]): a template for everything the engine sends, reminders that ask for the reply
//! codes and never for a carrier keyword, a clinic name and an opt-out hint in every text. A
//! mistake stops the BFF at start with the file and field named, not a patient's text later.

mod load;
pub mod rules;

use aro_domain::TenantConfig;
pub use aro_replies::ReplyCodes;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// Where the pack's files live in the repository; errors name files relative to it.
pub const PACK_DIR: &str = "apps/profile-backend-healthcare/pack";

/// The pack's files as text: what [`ProfilePack::load`] reads. The built-in pack is
/// [`PackSource::builtin`]; tests build others from strings.
#[derive(Debug, Clone, Copy)]
pub struct PackSource<'a> {
    /// `pack.toml`: id, version, policies, reply codes, mappings, booking link.
    pub manifest: &'a str,
    /// `templates/<language>.toml`, by language.
    pub templates: &'a [(&'a str, &'a str)],
    /// `clinics.toml`: per-clinic differences, by tenant id.
    pub clinics: &'a str,
}

const BUILTIN_TEMPLATES: &[(&str, &str)] = &[
    ("en", include_str!("../../pack/templates/en.toml")),
    ("es", include_str!("../../pack/templates/es.toml")),
];

impl PackSource<'static> {
    /// The files compiled into this binary.
    pub fn builtin() -> Self {
        Self {
            manifest: include_str!("../../pack/pack.toml"),
            templates: BUILTIN_TEMPLATES,
            clinics: include_str!("../../pack/clinics.toml"),
        }
    }
}

/// A refused pack: which file, which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("profile pack file {PACK_DIR}/{file}, field `{field}`: {reason}")]
pub struct PackError {
    /// Relative to [`PACK_DIR`]: `pack.toml`, `templates/es.toml`, `clinics.toml`.
    pub file: String,
    /// The key path inside the file (`policies.sendWindow`, `reminder_48h`, `default.bookingLink`).
    pub field: String,
    pub reason: String,
}

impl PackError {
    pub(crate) fn new(
        file: impl Into<String>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// What one clinic gets: the configuration core stores, and its content hash (the installed
/// marker: core keeps no pack metadata, so "installed" means "core's config equals this").
#[derive(Debug, Clone, PartialEq)]
pub struct ClinicConfig {
    pub config: TenantConfig,
    pub content_hash: String,
}

impl ClinicConfig {
    fn new(config: TenantConfig) -> Self {
        let content_hash = content_hash(&config);
        Self {
            config,
            content_hash,
        }
    }
}

/// SHA-256 of the configuration's JSON as core receives it. Serialisation is deterministic
/// (struct fields in order, maps sorted), so equal configurations hash equally.
pub fn content_hash(config: &TenantConfig) -> String {
    let bytes = serde_json::to_vec(config).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// A loaded, validated pack.
#[derive(Debug, Clone)]
pub struct ProfilePack {
    id: String,
    version: String,
    base: ClinicConfig,
    clinics: BTreeMap<String, ClinicConfig>,
    reply_codes: ReplyCodes,
}

impl ProfilePack {
    /// The pack compiled into this binary.
    pub fn builtin() -> Result<Self, PackError> {
        Self::load(&PackSource::builtin())
    }

    /// Reads and checks every file; the first problem is the error.
    pub fn load(source: &PackSource<'_>) -> Result<Self, PackError> {
        let loaded = load::load(source)?;
        let reply_codes = load::reply_codes(&loaded.base, "pack.toml", "")?;
        Ok(Self {
            id: loaded.id,
            version: loaded.version,
            base: ClinicConfig::new(loaded.base),
            clinics: loaded
                .clinics
                .into_iter()
                .map(|(id, c)| (id, ClinicConfig::new(c)))
                .collect(),
            reply_codes,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The pack's configuration before any clinic's differences.
    pub fn config(&self) -> &TenantConfig {
        &self.base.config
    }

    /// What `tenant_id` gets: its `clinics.toml` table merged over the pack, else the pack.
    pub fn for_tenant(&self, tenant_id: &str) -> &ClinicConfig {
        self.clinics.get(tenant_id).unwrap_or(&self.base)
    }

    /// Tenants with their own table in `clinics.toml`.
    pub fn clinics(&self) -> impl Iterator<Item = &str> {
        self.clinics.keys().map(String::as_str)
    }

    /// The pack's reply codes (validated by the classifier's rules).
    pub fn reply_codes(&self) -> &ReplyCodes {
        &self.reply_codes
    }

    /// A short fingerprint of the pack's own content, for logs and `/ready`.
    pub fn fingerprint(&self) -> &str {
        &self.base.content_hash[..12]
    }
}

impl fmt::Display for ProfilePack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.id, self.version, self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_pack_loads() {
        let pack = ProfilePack::builtin().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pack.id(), "healthcare");
        assert_eq!(pack.config().policies.reminder_offsets_hours, vec![48, 24]);
        assert_eq!(pack.for_tenant("no-such-clinic"), &pack.base);
    }

    #[test]
    fn equal_configurations_hash_equally() {
        let pack = ProfilePack::builtin().unwrap_or_else(|e| panic!("{e}"));
        let copy: TenantConfig =
            serde_json::from_value(serde_json::to_value(pack.config()).unwrap_or_default())
                .unwrap_or_default();
        assert_eq!(content_hash(&copy), pack.base.content_hash);
        let mut changed = copy;
        changed.policies.max_messages_per24h = 2;
        assert_ne!(content_hash(&changed), pack.base.content_hash);
    }
}
