//! A tenant's own provider credentials (DESIGN.md "Tenants": "optional own provider
//! credentials"): the account a clinic brings for Twilio, Stripe or Calendly instead of the
//! installation's `[providers.*]` sections. Base URLs are not part of them: whether calls go to
//! the real APIs or the sandbox is the installation's choice.
//!
//! The values are validated here, once, with the rules `aro_config` applies to the
//! installation's sections, and every refusal names the field (in the API's camelCase) without
//! quoting its value. Secrets never reach `Debug`; [`ProviderCredentials::redacted`] is the
//! only view of them meant to be shown, and it keeps at most their last four characters.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::fmt;

/// The providers a tenant can bring its own account for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialProvider {
    Twilio,
    Stripe,
    Calendly,
}

impl CredentialProvider {
    pub const ALL: [Self; 3] = [Self::Twilio, Self::Stripe, Self::Calendly];

    /// The name in URLs, rows, logs and the configuration (`[providers.…]`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Twilio => "twilio",
            Self::Stripe => "stripe",
            Self::Calendly => "calendly",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }
}

impl fmt::Display for CredentialProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused credential: the field (camelCase, as in the API) and why, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct CredentialError {
    pub field: String,
    pub reason: &'static str,
}

fn refuse<T>(field: &str, reason: &'static str) -> Result<T, CredentialError> {
    Err(CredentialError {
        field: field.to_owned(),
        reason,
    })
}

/// The longest secret accepted; real ones are well under it.
const MAX_SECRET_CHARS: usize = 1024;

/// A secret: present, bounded, and free of characters a copy-and-paste would add by mistake.
fn check_secret(field: &str, value: &str) -> Result<(), CredentialError> {
    if value.trim().is_empty() {
        return refuse(field, "is empty");
    }
    if value.chars().count() > MAX_SECRET_CHARS {
        return refuse(field, "is longer than 1024 characters");
    }
    if value.trim() != value || value.chars().any(char::is_control) {
        return refuse(
            field,
            "has leading or trailing spaces or control characters (a pasted line end?)",
        );
    }
    Ok(())
}

/// A Twilio SID: two letters then 32 hex digits.
fn is_sid(value: &str, prefix: &str) -> bool {
    value.len() == 34
        && value.starts_with(prefix)
        && value.bytes().skip(2).all(|b| b.is_ascii_hexdigit())
}

/// `+` and 7–15 digits, as `aro_config` checks `from_number`.
fn is_e164(raw: &str) -> bool {
    (8..=16).contains(&raw.len())
        && raw.starts_with('+')
        && raw[1..].bytes().all(|b| b.is_ascii_digit())
}

/// A Twilio account: the SID and auth token authenticate sends, the auth token also signs the
/// account's webhooks; texts leave from `from_number` or through a Messaging Service (which
/// wins when both are set, as for the installation's section).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TwilioCredentials {
    pub account_sid: String,
    pub auth_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_service_sid: Option<String>,
}

impl TwilioCredentials {
    pub fn validate(&self) -> Result<(), CredentialError> {
        if !is_sid(&self.account_sid, "AC") {
            return refuse(
                "accountSid",
                "a Twilio Account SID is AC followed by 32 hex characters",
            );
        }
        check_secret("authToken", &self.auth_token)?;
        match (&self.from_number, &self.messaging_service_sid) {
            (None, None) => refuse("fromNumber", "set fromNumber or messagingServiceSid"),
            (Some(n), _) if !is_e164(n) => {
                refuse("fromNumber", "must be an E.164 number such as +14155550100")
            }
            (_, Some(m)) if !is_sid(m, "MG") => refuse(
                "messagingServiceSid",
                "a Messaging Service SID is MG followed by 32 hex characters",
            ),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for TwilioCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioCredentials")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"[redacted]")
            .field("from_number", &self.from_number)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .finish()
    }
}

/// A Stripe account: the API key payment links are created with, and the signing secret of
/// the webhook endpoint registered for this tenant (Stripe gives every endpoint its own).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StripeCredentials {
    pub secret_key: String,
    pub webhook_secret: String,
}

impl StripeCredentials {
    pub fn validate(&self) -> Result<(), CredentialError> {
        check_secret("secretKey", &self.secret_key)?;
        if !(self.secret_key.starts_with("sk_") || self.secret_key.starts_with("rk_")) {
            return refuse(
                "secretKey",
                "a Stripe secret or restricted key starts with sk_ or rk_",
            );
        }
        check_secret("webhookSecret", &self.webhook_secret)?;
        if !self.webhook_secret.starts_with("whsec_") {
            return refuse(
                "webhookSecret",
                "a Stripe webhook signing secret starts with whsec_",
            );
        }
        Ok(())
    }
}

impl fmt::Debug for StripeCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StripeCredentials { [redacted] }")
    }
}

/// A Calendly account: the token for look-ups, and the signing key given to Calendly when the
/// tenant's webhook subscription was created.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalendlyCredentials {
    pub api_token: String,
    pub webhook_signing_key: String,
}

impl CalendlyCredentials {
    pub fn validate(&self) -> Result<(), CredentialError> {
        check_secret("apiToken", &self.api_token)?;
        check_secret("webhookSigningKey", &self.webhook_signing_key)
    }
}

impl fmt::Debug for CalendlyCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CalendlyCredentials { [redacted] }")
    }
}

/// One provider's credentials of one tenant. Serialised with a `provider` tag
/// (`{"provider": "twilio", "accountSid": …}`): the form sealed at rest and handed to the
/// executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "lowercase")]
pub enum ProviderCredentials {
    Twilio(TwilioCredentials),
    Stripe(StripeCredentials),
    Calendly(CalendlyCredentials),
}

impl ProviderCredentials {
    /// Reads and validates `body` (the fields of one provider, camelCase, nothing else) as
    /// `provider`'s credentials.
    pub fn from_body(provider: CredentialProvider, body: Value) -> Result<Self, CredentialError> {
        check_shape(provider, &body)?;
        let shape = |_| CredentialError {
            field: "body".into(),
            reason: "does not have the provider's fields",
        };
        let credentials = match provider {
            CredentialProvider::Twilio => {
                Self::Twilio(serde_json::from_value(body).map_err(shape)?)
            }
            CredentialProvider::Stripe => {
                Self::Stripe(serde_json::from_value(body).map_err(shape)?)
            }
            CredentialProvider::Calendly => {
                Self::Calendly(serde_json::from_value(body).map_err(shape)?)
            }
        };
        credentials.validate()?;
        Ok(credentials)
    }

    pub fn provider(&self) -> CredentialProvider {
        match self {
            Self::Twilio(_) => CredentialProvider::Twilio,
            Self::Stripe(_) => CredentialProvider::Stripe,
            Self::Calendly(_) => CredentialProvider::Calendly,
        }
    }

    pub fn validate(&self) -> Result<(), CredentialError> {
        match self {
            Self::Twilio(c) => c.validate(),
            Self::Stripe(c) => c.validate(),
            Self::Calendly(c) => c.validate(),
        }
    }

    /// What may be shown: identifiers in full (the Account SID, the sending number, the
    /// Messaging Service), secrets as at most their last four characters.
    pub fn redacted(&self) -> Value {
        match self {
            Self::Twilio(c) => json!({
                "accountSid": c.account_sid,
                "authToken": redact(&c.auth_token),
                "fromNumber": c.from_number,
                "messagingServiceSid": c.messaging_service_sid,
            }),
            Self::Stripe(c) => json!({
                "secretKey": redact(&c.secret_key),
                "webhookSecret": redact(&c.webhook_secret),
            }),
            Self::Calendly(c) => json!({
                "apiToken": redact(&c.api_token),
                "webhookSigningKey": redact(&c.webhook_signing_key),
            }),
        }
    }

    /// The secret the provider signs this tenant's webhooks with.
    pub fn webhook_secret(&self) -> &str {
        match self {
            Self::Twilio(c) => &c.auth_token,
            Self::Stripe(c) => &c.webhook_secret,
            Self::Calendly(c) => &c.webhook_signing_key,
        }
    }
}

/// The body is an object of the provider's own fields, each a string (or null where optional),
/// with the required ones present: checked before serde so a refusal names the field and never
/// quotes a value.
fn check_shape(provider: CredentialProvider, body: &Value) -> Result<(), CredentialError> {
    let (required, optional): (&[&str], &[&str]) = match provider {
        CredentialProvider::Twilio => (
            &["accountSid", "authToken"],
            &["fromNumber", "messagingServiceSid"],
        ),
        CredentialProvider::Stripe => (&["secretKey", "webhookSecret"], &[]),
        CredentialProvider::Calendly => (&["apiToken", "webhookSigningKey"], &[]),
    };
    let Value::Object(map) = body else {
        return refuse("body", "must be a JSON object");
    };
    for (key, value) in map {
        if !required.contains(&key.as_str()) && !optional.contains(&key.as_str()) {
            return Err(CredentialError {
                field: key.chars().take(64).collect(),
                reason: "is not a field of this provider's credentials (base URLs are installation-wide)",
            });
        }
        if !(value.is_string() || value.is_null()) {
            return Err(CredentialError {
                field: key.clone(),
                reason: "must be a string",
            });
        }
    }
    for field in required {
        if map.get(*field).is_none_or(Value::is_null) {
            return refuse(field, "is missing");
        }
    }
    Ok(())
}

/// At most the last four characters of a secret, and none of a short one (whose last four
/// would be most of it). Known non-secret prefixes stay readable: `sk_live_…1234`.
pub fn redact(secret: &str) -> String {
    const PREFIXES: [&str; 5] = ["sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"];
    let prefix = PREFIXES
        .iter()
        .find(|p| secret.starts_with(**p))
        .copied()
        .unwrap_or("");
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 16 {
        return format!("{prefix}…");
    }
    let last: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}…{last}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "AC0123456789abcdef0123456789abcdef";

    fn twilio(body: Value) -> Result<ProviderCredentials, CredentialError> {
        ProviderCredentials::from_body(CredentialProvider::Twilio, body)
    }

    #[test]
    fn a_twilio_account_needs_a_sid_a_token_and_a_sender() {
        let ok = twilio(json!({"accountSid": SID, "authToken": "t0ken-t0ken-t0ken",
                               "fromNumber": "+14155550100"}));
        assert!(ok.is_ok(), "{ok:?}");
        let field = |body| twilio(body).err().map(|e| e.field);
        assert_eq!(
            field(json!({"accountSid": "AC1", "authToken": "x", "fromNumber": "+14155550100"})),
            Some("accountSid".to_owned())
        );
        assert_eq!(
            field(json!({"accountSid": SID, "authToken": " ", "fromNumber": "+14155550100"})),
            Some("authToken".to_owned())
        );
        assert_eq!(
            field(json!({"accountSid": SID, "authToken": "tok\n", "fromNumber": "+14155550100"})),
            Some("authToken".to_owned())
        );
        assert_eq!(
            field(json!({"accountSid": SID, "authToken": "x"})),
            Some("fromNumber".to_owned())
        );
        assert_eq!(
            field(json!({"accountSid": SID, "authToken": "x", "fromNumber": "4155550100"})),
            Some("fromNumber".to_owned())
        );
        assert_eq!(
            field(json!({"accountSid": SID, "authToken": "x", "messagingServiceSid": "MG1"})),
            Some("messagingServiceSid".to_owned())
        );
        assert_eq!(
            field(json!({"accountSid": SID, "fromNumber": "+14155550100"})),
            Some("authToken".to_owned())
        );
        assert_eq!(
            field(
                json!({"accountSid": SID, "authToken": "x", "fromNumber": "+14155550100",
                         "baseUrl": "http://x"})
            ),
            Some("baseUrl".to_owned()),
            "base URLs stay installation-wide"
        );
    }

    #[test]
    fn stripe_keys_and_secrets_have_their_prefixes() {
        let stripe = |body| ProviderCredentials::from_body(CredentialProvider::Stripe, body).err();
        assert!(stripe(json!({"secretKey": "sk_test_1", "webhookSecret": "whsec_1"})).is_none());
        assert!(stripe(json!({"secretKey": "rk_live_1", "webhookSecret": "whsec_1"})).is_none());
        assert_eq!(
            stripe(json!({"secretKey": "pk_test_1", "webhookSecret": "whsec_1"})).map(|e| e.field),
            Some("secretKey".to_owned())
        );
        assert_eq!(
            stripe(json!({"secretKey": "sk_test_1", "webhookSecret": "sec_1"})).map(|e| e.field),
            Some("webhookSecret".to_owned())
        );
    }

    #[test]
    fn calendly_needs_both_secrets() {
        let calendly =
            |body| ProviderCredentials::from_body(CredentialProvider::Calendly, body).err();
        assert!(calendly(json!({"apiToken": "a", "webhookSigningKey": "b"})).is_none());
        assert_eq!(
            calendly(json!({"apiToken": "", "webhookSigningKey": "b"})).map(|e| e.field),
            Some("apiToken".to_owned())
        );
        assert_eq!(
            calendly(json!({"apiToken": "a"})).map(|e| e.field),
            Some("webhookSigningKey".to_owned())
        );
    }

    #[test]
    fn secrets_show_at_most_their_last_four_characters() {
        assert_eq!(redact("sk_live_0123456789abcdefWXYZ"), "sk_live_…WXYZ");
        assert_eq!(redact("0123456789abcdef0123"), "…0123");
        assert_eq!(redact("short"), "…");
        let c = ProviderCredentials::Twilio(TwilioCredentials {
            account_sid: SID.into(),
            auth_token: "super-secret-auth-token-9876".into(),
            from_number: Some("+14155550100".into()),
            messaging_service_sid: None,
        });
        let shown = c.redacted().to_string() + &format!("{c:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(shown.contains(SID) && shown.contains("…9876"), "{shown}");
    }

    #[test]
    fn the_tagged_form_round_trips() {
        let c = ProviderCredentials::Stripe(StripeCredentials {
            secret_key: "sk_test_1".into(),
            webhook_secret: "whsec_1".into(),
        });
        let text = serde_json::to_string(&c).unwrap();
        assert!(text.contains(r#""provider":"stripe""#), "{text}");
        assert_eq!(
            serde_json::from_str::<ProviderCredentials>(&text).unwrap(),
            c
        );
        assert_eq!(c.webhook_secret(), "whsec_1");
        assert_eq!(CredentialProvider::parse("stripe"), Some(c.provider()));
        assert_eq!(CredentialProvider::parse("acuity"), None);
    }
}
