//! Business identifiers. Tenants choose their own short ids (`default`, `clinic-north`); every
//! other id is minted by core with a type prefix (`apt_…`, `cus_…`) so that an id pasted into a
//! support ticket says what it points at.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error(
        "may only contain lower-case letters, digits, '-' and '_', and must start with a letter or digit"
    )]
    BadCharacters,
}

/// An opaque id: 1–128 characters of `[A-Za-z0-9_.:-]`, printable and safe in URLs and logs.
/// Provider ids (a Calendly invitee URI) are not business ids; they are stored as external ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BusinessId(String);

impl BusinessId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        if raw.is_empty() {
            return Err(IdError::Empty);
        }
        if raw.len() > Self::MAX_LEN {
            return Err(IdError::TooLong { max: Self::MAX_LEN });
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        {
            return Err(IdError::BadCharacters);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BusinessId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<BusinessId> for String {
    fn from(value: BusinessId) -> Self {
        value.0
    }
}

impl fmt::Display for BusinessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant (clinic) id: lower-case, 1–63 characters, usable in URLs, file names and DNS labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    pub const MAX_LEN: usize = 63;

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let first_ok = raw
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if raw.is_empty() {
            return Err(IdError::Empty);
        }
        if raw.len() > Self::MAX_LEN {
            return Err(IdError::TooLong { max: Self::MAX_LEN });
        }
        if !first_ok
            || !raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(IdError::BadCharacters);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The prefixes core puts in front of the ids it mints.
pub mod prefix {
    pub const CUSTOMER: &str = "cus";
    pub const APPOINTMENT: &str = "apt";
    pub const MESSAGE: &str = "msg";
    pub const EVENT: &str = "evt";
    pub const WORKFLOW: &str = "wf";
    pub const COMMAND: &str = "cmd";
    pub const EXECUTION: &str = "exe";
    pub const TIMER: &str = "tmr";
    pub const ESCALATION: &str = "esc";
    pub const DEAD_LETTER: &str = "dlq";
    pub const SUBSCRIPTION: &str = "sub";
    pub const PAYMENT_LINK: &str = "pay";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_lower_case_url_safe_labels() {
        assert!(TenantId::parse("default").is_ok());
        assert!(TenantId::parse("clinic-north_2").is_ok());
        assert_eq!(TenantId::parse(""), Err(IdError::Empty));
        assert_eq!(TenantId::parse("Clinic"), Err(IdError::BadCharacters));
        assert_eq!(TenantId::parse("-x"), Err(IdError::BadCharacters));
        assert_eq!(TenantId::parse("a/b"), Err(IdError::BadCharacters));
        assert!(matches!(
            TenantId::parse(&"a".repeat(64)),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn business_ids_refuse_spaces_and_slashes() {
        assert!(BusinessId::parse("apt_01J9ZQ").is_ok());
        assert_eq!(BusinessId::parse("a b"), Err(IdError::BadCharacters));
        assert_eq!(BusinessId::parse("a/b"), Err(IdError::BadCharacters));
    }
}
