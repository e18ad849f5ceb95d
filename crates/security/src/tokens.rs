//! Service tokens: how one ARO app proves to another who it is and what it may do
//! (DESIGN.md "Service tokens").
//!
//! A service token is a JWT signed with HS256 under the installation's `[auth] signing_key`.
//! Its claims:
//!
//! | claim | meaning |
//! |---|---|
//! | `iss` | always `"aro"` |
//! | `sub` | who holds it, e.g. `"profile-backend-healthcare"` |
//! | `aud` | the service that accepts it, e.g. `"core"` |
//! | `scopes` | what it may do: `commands:write`, `events:read`, `executions:claim`, `admin` |
//! | `tenants` | `"*"` (every tenant, for the executor) or a list of tenant ids |
//! | `iat`, `exp` | issue and expiry time, Unix seconds |
//! | `nbf` | optional not-before time (we never issue it, but honour it) |
//! | `jti` | random token id (32 hex characters), for audit logs |
//!
//! The current time is passed in by the caller (real time: DESIGN.md "Time") and checked here
//! with a [`LEEWAY_SECS`] allowance for clock skew between machines; `jsonwebtoken`'s own time
//! checks are switched off because they read the system clock themselves.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The issuer every ARO service token carries.
pub const ISSUER: &str = "aro";
/// Shortest signing key accepted: HS256 is only as strong as its key.
pub const MIN_SIGNING_KEY_LEN: usize = 32;
/// Clock skew tolerated between the issuing and verifying machines.
pub const LEEWAY_SECS: i64 = 30;

/// One permission a token can carry. Serialised as `commands:write`, `events:read`,
/// `executions:claim` or `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// Send commands (`POST /v1/commands`).
    #[serde(rename = "commands:write")]
    CommandsWrite,
    /// Read and subscribe to events.
    #[serde(rename = "events:read")]
    EventsRead,
    /// Claim and report executions (the executor).
    #[serde(rename = "executions:claim")]
    ExecutionsClaim,
    /// Administer the installation (tenants, sandbox clock).
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    /// Every scope, in a stable order.
    pub const ALL: [Scope; 4] = [
        Scope::CommandsWrite,
        Scope::EventsRead,
        Scope::ExecutionsClaim,
        Scope::Admin,
    ];

    /// The scope's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CommandsWrite => "commands:write",
            Scope::EventsRead => "events:read",
            Scope::ExecutionsClaim => "executions:claim",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that is not one of [`Scope::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scope {0:?} (expected one of commands:write, events:read, executions:claim, admin)"
)]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

/// Which tenants a token may act for: `"*"` on the wire for all, else a list of tenant ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantGrant {
    /// Every tenant (the executor, which works for all of them).
    All,
    /// Only these tenants.
    Only(Vec<String>),
}

impl TenantGrant {
    /// Whether `tenant_id` is covered by this grant.
    pub fn allows(&self, tenant_id: &str) -> bool {
        match self {
            TenantGrant::All => true,
            TenantGrant::Only(tenants) => tenants.iter().any(|t| t == tenant_id),
        }
    }
}

impl Serialize for TenantGrant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            TenantGrant::All => serializer.serialize_str("*"),
            TenantGrant::Only(tenants) => tenants.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for TenantGrant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Star(String),
            List(Vec<String>),
        }
        match Wire::deserialize(deserializer)? {
            Wire::Star(s) if s == "*" => Ok(TenantGrant::All),
            Wire::Star(_) => Err(serde::de::Error::custom(
                "tenants must be \"*\" or a list of tenant ids",
            )),
            // "*" inside a list would read as "all" to a careless reader but grant nothing
            // here; refuse the ambiguity instead.
            Wire::List(list) if list.iter().any(|t| t == "*") => Err(serde::de::Error::custom(
                "\"*\" must stand alone, not inside a list of tenants",
            )),
            Wire::List(list) => Ok(TenantGrant::Only(list)),
        }
    }
}

/// The claims of a verified service token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceClaims {
    /// Issuer, always [`ISSUER`].
    pub iss: String,
    /// Who holds the token.
    pub sub: String,
    /// The service that accepts it.
    pub aud: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// For which tenants.
    pub tenants: TenantGrant,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Not valid before, Unix seconds (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Random token id.
    pub jti: String,
}

impl ServiceClaims {
    /// Whether the token may act for `tenant_id` (compare with `X-Tenant-Id`).
    pub fn allows_tenant(&self, tenant_id: &str) -> bool {
        self.tenants.allows(tenant_id)
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// Why a token could not be issued or was refused. Every verification failure maps to 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token was presented.
    #[error("no service token presented")]
    Missing,
    /// Not a JWT we can read: bad shape, encoding, algorithm or claims.
    #[error("service token is malformed: {0}")]
    Malformed(&'static str),
    /// The signature does not match our key (forged, tampered, or another installation's).
    #[error("service token signature is invalid")]
    BadSignature,
    /// The token's `exp` has passed (beyond the leeway).
    #[error("service token has expired")]
    Expired,
    /// The token's `nbf` or `iat` lies in the future (beyond the leeway).
    #[error("service token is not valid yet")]
    NotYetValid,
    /// The token was issued for another service.
    #[error("service token is for another service")]
    WrongAudience,
    /// The token was not issued by ARO.
    #[error("service token has an unknown issuer")]
    WrongIssuer,
    /// The signing key is too short to be safe.
    #[error("signing key is {len} bytes; at least {MIN_SIGNING_KEY_LEN} are required")]
    KeyTooShort {
        /// Length of the key given.
        len: usize,
    },
    /// The issue request itself is invalid (empty tenant list, zero TTL, …).
    #[error("cannot issue service token: {0}")]
    InvalidRequest(&'static str),
    /// Signing failed inside the JWT library.
    #[error("cannot sign service token: {0}")]
    Signing(String),
}

/// Issues and verifies service tokens with one HS256 key. `Debug` never shows the key.
#[derive(Clone)]
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenSigner {
    /// A signer for `signing_key`, which must be at least [`MIN_SIGNING_KEY_LEN`] bytes.
    pub fn new(signing_key: &[u8]) -> Result<Self, TokenError> {
        if signing_key.len() < MIN_SIGNING_KEY_LEN {
            return Err(TokenError::KeyTooShort {
                len: signing_key.len(),
            });
        }
        // Only HS256 is accepted, whatever the token's header claims; the time, audience and
        // issuer checks are ours (below), because the library would read the system clock.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        validation.leeway = 0;
        Ok(Self {
            encoding: EncodingKey::from_secret(signing_key),
            decoding: DecodingKey::from_secret(signing_key),
            validation,
        })
    }

    /// Issues a token for `subject` to present to `audience`, valid from `now_unix` for `ttl`.
    pub fn issue(
        &self,
        subject: &str,
        audience: &str,
        scopes: &[Scope],
        tenants: TenantGrant,
        ttl: Duration,
        now_unix: i64,
    ) -> Result<String, TokenError> {
        if subject.is_empty() {
            return Err(TokenError::InvalidRequest("subject is empty"));
        }
        if audience.is_empty() {
            return Err(TokenError::InvalidRequest("audience is empty"));
        }
        if matches!(&tenants, TenantGrant::Only(list) if list.is_empty()) {
            return Err(TokenError::InvalidRequest("no tenant granted"));
        }
        if matches!(&tenants, TenantGrant::Only(list) if list.iter().any(|t| t.is_empty() || t == "*"))
        {
            return Err(TokenError::InvalidRequest(
                "tenant ids must be non-empty; use TenantGrant::All for every tenant",
            ));
        }
        let ttl_secs = i64::try_from(ttl.as_secs())
            .ok()
            .filter(|secs| *secs > 0)
            .ok_or(TokenError::InvalidRequest(
                "ttl must be at least one second",
            ))?;
        let exp = now_unix
            .checked_add(ttl_secs)
            .ok_or(TokenError::InvalidRequest("ttl is too long"))?;
        let mut unique_scopes = scopes.to_vec();
        unique_scopes.sort_unstable();
        unique_scopes.dedup();
        let claims = ServiceClaims {
            iss: ISSUER.to_owned(),
            sub: subject.to_owned(),
            aud: audience.to_owned(),
            scopes: unique_scopes,
            tenants,
            iat: now_unix,
            exp,
            nbf: None,
            jti: new_token_id(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|err| TokenError::Signing(err.to_string()))
    }

    /// Verifies `token` for the service `expected_audience` at time `now_unix`.
    ///
    /// Checks, in order: shape and algorithm (HS256 only; `alg: none` and every other algorithm
    /// are refused), signature, claims shape, issuer, audience, expiry and not-before (each with
    /// [`LEEWAY_SECS`] of tolerance).
    pub fn verify(
        &self,
        token: &str,
        expected_audience: &str,
        now_unix: i64,
    ) -> Result<ServiceClaims, TokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let claims = jsonwebtoken::decode::<ServiceClaims>(token, &self.decoding, &self.validation)
            .map_err(|err| map_decode_error(err.kind()))?
            .claims;
        if claims.iss != ISSUER {
            return Err(TokenError::WrongIssuer);
        }
        if claims.aud != expected_audience {
            return Err(TokenError::WrongAudience);
        }
        // i128 so that hostile claim values near i64's limits cannot overflow.
        let now = i128::from(now_unix);
        let leeway = i128::from(LEEWAY_SECS);
        if i128::from(claims.exp) + leeway < now {
            return Err(TokenError::Expired);
        }
        let not_before = claims.nbf.map_or(claims.iat, |nbf| nbf.max(claims.iat));
        if i128::from(not_before) - leeway > now {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSigner(..)")
    }
}

fn map_decode_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::MissingAlgorithm => TokenError::Malformed("algorithm is not HS256"),
        ErrorKind::Base64(_) => TokenError::Malformed("invalid base64"),
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
            TokenError::Malformed("header or claims are not what a service token holds")
        }
        ErrorKind::InvalidClaimFormat(_) | ErrorKind::MissingRequiredClaim(_) => {
            TokenError::Malformed("claims are not what a service token holds")
        }
        ErrorKind::InvalidToken => TokenError::Malformed("not a JWT"),
        // Time, audience and issuer validation are disabled in the library; anything else is a
        // key or provider problem that a caller can only treat as "not authenticated".
        _ => TokenError::Malformed("token could not be verified"),
    }
}

/// 128 random bits as 32 hex characters.
fn new_token_id() -> String {
    use rand::RngCore;
    let mut id = [0_u8; 16];
    rand::rng().fill_bytes(&mut id);
    hex::encode(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef-test-key";
    const NOW: i64 = 1_800_000_000;
    const HOUR: Duration = Duration::from_secs(3600);

    fn signer() -> TokenSigner {
        TokenSigner::new(KEY).unwrap()
    }

    fn bff_token(signer: &TokenSigner) -> String {
        signer
            .issue(
                "profile-backend-healthcare",
                "core",
                &[Scope::CommandsWrite, Scope::EventsRead],
                TenantGrant::Only(vec!["default".into(), "north".into()]),
                HOUR,
                NOW,
            )
            .unwrap()
    }

    /// Re-signs arbitrary header and claims JSON with `key`, as an attacker holding (or
    /// guessing) a key would.
    fn hand_made(header: &str, claims: &serde_json::Value, key: &[u8]) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mac = crate::mac::hmac_sha256(key, &[signing_input.as_bytes()]);
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    fn valid_claims_json() -> serde_json::Value {
        serde_json::json!({
            "iss": "aro", "sub": "executor", "aud": "core",
            "scopes": ["executions:claim"], "tenants": "*",
            "iat": NOW, "exp": NOW + 600, "jti": "abc"
        })
    }

    #[test]
    fn issued_token_verifies_with_its_claims() {
        let signer = signer();
        let claims = signer
            .verify(&bff_token(&signer), "core", NOW + 10)
            .unwrap();
        assert_eq!(claims.iss, "aro");
        assert_eq!(claims.sub, "profile-backend-healthcare");
        assert_eq!(claims.aud, "core");
        assert_eq!(claims.iat, NOW);
        assert_eq!(claims.exp, NOW + 3600);
        assert_eq!(claims.jti.len(), 32);
        assert!(claims.has_scope(Scope::CommandsWrite));
        assert!(claims.has_scope(Scope::EventsRead));
        assert!(!claims.has_scope(Scope::Admin));
        assert!(claims.allows_tenant("default"));
        assert!(claims.allows_tenant("north"));
        assert!(!claims.allows_tenant("south"));
    }

    #[test]
    fn wildcard_grant_allows_every_tenant_and_is_a_star_on_the_wire() {
        let signer = signer();
        let token = signer
            .issue(
                "executor",
                "core",
                &[Scope::ExecutionsClaim],
                TenantGrant::All,
                HOUR,
                NOW,
            )
            .unwrap();
        let claims = signer.verify(&token, "core", NOW).unwrap();
        assert_eq!(claims.tenants, TenantGrant::All);
        assert!(claims.allows_tenant("any-clinic"));
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(json["tenants"], "*");
        assert_eq!(json["scopes"], serde_json::json!(["executions:claim"]));
    }

    #[test]
    fn tenant_grant_wire_forms() {
        let parse = |s: &str| serde_json::from_str::<TenantGrant>(s);
        assert_eq!(parse(r#""*""#).unwrap(), TenantGrant::All);
        assert_eq!(
            parse(r#"["a","b"]"#).unwrap(),
            TenantGrant::Only(vec!["a".into(), "b".into()])
        );
        assert!(parse(r#""a""#).is_err());
        assert!(parse(r#"["*"]"#).is_err());
        assert!(parse("3").is_err());
        assert_eq!(
            serde_json::to_string(&TenantGrant::Only(vec!["a".into()])).unwrap(),
            r#"["a"]"#
        );
    }

    #[test]
    fn scopes_parse_from_their_wire_names() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
            assert_eq!(
                serde_json::to_string(&scope).unwrap(),
                format!("\"{}\"", scope.as_str())
            );
        }
        assert!("commands:read".parse::<Scope>().is_err());
    }

    #[test]
    fn expiry_is_enforced_beyond_the_leeway_only() {
        let signer = signer();
        let token = bff_token(&signer);
        let exp = NOW + 3600;
        assert!(signer.verify(&token, "core", exp).is_ok());
        assert!(signer.verify(&token, "core", exp + LEEWAY_SECS).is_ok());
        assert_eq!(
            signer.verify(&token, "core", exp + LEEWAY_SECS + 1),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn token_from_the_future_is_refused() {
        let signer = signer();
        let token = bff_token(&signer);
        assert!(signer.verify(&token, "core", NOW - LEEWAY_SECS).is_ok());
        assert_eq!(
            signer.verify(&token, "core", NOW - LEEWAY_SECS - 1),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn nbf_claim_is_honoured() {
        let mut claims = valid_claims_json();
        claims["nbf"] = serde_json::json!(NOW + 300);
        let token = hand_made(r#"{"alg":"HS256","typ":"JWT"}"#, &claims, KEY);
        let signer = signer();
        assert_eq!(
            signer.verify(&token, "core", NOW),
            Err(TokenError::NotYetValid)
        );
        assert!(signer.verify(&token, "core", NOW + 300).is_ok());
    }

    #[test]
    fn token_for_another_service_is_refused() {
        let signer = signer();
        assert_eq!(
            signer.verify(&bff_token(&signer), "profile-backend-healthcare", NOW),
            Err(TokenError::WrongAudience)
        );
    }

    #[test]
    fn other_issuer_is_refused() {
        let mut claims = valid_claims_json();
        claims["iss"] = serde_json::json!("someone-else");
        let token = hand_made(r#"{"alg":"HS256","typ":"JWT"}"#, &claims, KEY);
        assert_eq!(
            signer().verify(&token, "core", NOW),
            Err(TokenError::WrongIssuer)
        );
    }

    #[test]
    fn hand_made_token_with_our_key_is_accepted_so_the_helpers_are_sound() {
        let token = hand_made(r#"{"alg":"HS256","typ":"JWT"}"#, &valid_claims_json(), KEY);
        assert!(signer().verify(&token, "core", NOW).is_ok());
    }

    #[test]
    fn token_signed_with_another_key_is_refused() {
        let other = TokenSigner::new(b"another-installation-key-of-32-bytes!").unwrap();
        assert_eq!(
            signer().verify(&bff_token(&other), "core", NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_claims_are_refused() {
        let signer = signer();
        let token = bff_token(&signer);
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["tenants"] = serde_json::json!("*");
        claims["scopes"] = serde_json::json!(["admin"]);
        let forged = URL_SAFE_NO_PAD.encode(claims.to_string());
        parts[1] = &forged;
        assert_eq!(
            signer.verify(&parts.join("."), "core", NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_signature_is_refused() {
        let signer = signer();
        let token = bff_token(&signer);
        let (rest, sig) = token.rsplit_once('.').unwrap();
        let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        sig[0] ^= 1;
        let token = format!("{rest}.{}", URL_SAFE_NO_PAD.encode(sig));
        assert_eq!(
            signer.verify(&token, "core", NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn alg_none_token_is_refused() {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(valid_claims_json().to_string())
        );
        for token in [format!("{signing_input}."), signing_input.clone()] {
            assert!(
                matches!(
                    signer().verify(&token, "core", NOW),
                    Err(TokenError::Malformed(_))
                ),
                "accepted {token}"
            );
        }
    }

    #[test]
    fn other_hmac_algorithm_is_refused_even_with_our_key() {
        // A valid HS256 MAC under a header claiming HS512 must not be accepted as HS256.
        let token = hand_made(r#"{"alg":"HS512","typ":"JWT"}"#, &valid_claims_json(), KEY);
        assert!(matches!(
            signer().verify(&token, "core", NOW),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_scope_or_missing_claim_is_malformed() {
        let mut unknown_scope = valid_claims_json();
        unknown_scope["scopes"] = serde_json::json!(["root"]);
        let mut no_exp = valid_claims_json();
        no_exp.as_object_mut().unwrap().remove("exp");
        for claims in [unknown_scope, no_exp] {
            let token = hand_made(r#"{"alg":"HS256","typ":"JWT"}"#, &claims, KEY);
            assert!(matches!(
                signer().verify(&token, "core", NOW),
                Err(TokenError::Malformed(_))
            ));
        }
    }

    #[test]
    fn empty_or_garbage_tokens_are_refused() {
        let signer = signer();
        assert_eq!(signer.verify("", "core", NOW), Err(TokenError::Missing));
        assert_eq!(signer.verify("  ", "core", NOW), Err(TokenError::Missing));
        for garbage in ["abc", "a.b", "a.b.c", "....", "é.é.é"] {
            assert!(matches!(
                signer.verify(garbage, "core", NOW),
                Err(TokenError::Malformed(_) | TokenError::BadSignature)
            ));
        }
    }

    #[test]
    fn short_signing_key_is_refused() {
        assert_eq!(
            TokenSigner::new(&[1; 31]).map(|_| ()),
            Err(TokenError::KeyTooShort { len: 31 })
        );
        assert!(TokenSigner::new(&[1; 32]).is_ok());
    }

    #[test]
    fn invalid_issue_requests_are_refused() {
        let signer = signer();
        let issue = |tenants, ttl| signer.issue("bff", "core", &[], tenants, ttl, NOW);
        assert!(issue(TenantGrant::Only(vec![]), HOUR).is_err());
        assert!(issue(TenantGrant::Only(vec!["*".into()]), HOUR).is_err());
        assert!(issue(TenantGrant::Only(vec![String::new()]), HOUR).is_err());
        assert!(issue(TenantGrant::All, Duration::ZERO).is_err());
        assert!(issue(TenantGrant::All, Duration::from_secs(u64::MAX)).is_err());
    }

    #[test]
    fn debug_of_the_signer_shows_no_key() {
        let text = format!("{:?}", signer());
        assert!(!text.contains("0123456789abcdef"));
        assert!(!text.contains(&format!("{:?}", &KEY[..4])));
    }

    #[test]
    fn each_token_gets_its_own_id() {
        let signer = signer();
        let a = signer.verify(&bff_token(&signer), "core", NOW).unwrap();
        let b = signer.verify(&bff_token(&signer), "core", NOW).unwrap();
        assert_ne!(a.jti, b.jti);
    }
}
