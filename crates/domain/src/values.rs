//! Validated values. Each has a `parse` that is the only way in, so a `Phone` is always E.164, a
//! `Zone` always an IANA zone, and an amount of money always knows its currency.

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("not a phone number that can be dialled in {region}: {reason}")]
    Phone { region: String, reason: String },
    #[error("not an ISO 3166 region code (e.g. US, GB, ES)")]
    Region,
    #[error("not an IANA time zone (e.g. America/New_York)")]
    Zone,
    #[error("not an ISO 4217 currency code (three upper-case letters, e.g. USD)")]
    Currency,
    #[error("amount must not be negative")]
    NegativeAmount,
    #[error("not an email address")]
    Email,
    #[error("not a two-letter language code (e.g. en, es)")]
    Language,
}

/// A region for reading phone numbers written without a country code (`(415) 555-2671`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region(phonenumber::country::Id);

impl Region {
    pub const US: Region = Region(phonenumber::country::Id::US);

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let upper = raw.trim().to_ascii_uppercase();
        if upper.len() != 2 {
            return Err(ValueError::Region);
        }
        phonenumber::country::Id::from_str(&upper)
            .map(Region)
            .map_err(|_| ValueError::Region)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Region {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Region::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A phone number in E.164 form (`+14155552671`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct Phone {
    e164: String,
    text_capable: bool,
}

impl Phone {
    /// Reads a number as a patient or a booking form wrote it. Numbers without a `+` are read
    /// in `region`; Calendly's `text_reminder_number` is typed by hand and rarely normalised.
    pub fn parse(raw: &str, region: Region) -> Result<Self, ValueError> {
        let err = |reason: &str| ValueError::Phone {
            region: region.to_string(),
            reason: reason.to_owned(),
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(err("empty"));
        }
        if trimmed.len() > 40 {
            return Err(err("too long"));
        }
        let parsed =
            phonenumber::parse(Some(region.0), trimmed).map_err(|e| err(&e.to_string()))?;
        if !phonenumber::is_valid(&parsed) {
            return Err(err("not a valid number for its country"));
        }
        if parsed.extension().is_some() {
            return Err(err("extensions cannot receive text messages"));
        }
        let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
        use phonenumber::Type;
        let text_capable = !matches!(
            parsed.number_type(&phonenumber::metadata::DATABASE),
            Type::FixedLine
                | Type::TollFree
                | Type::PremiumRate
                | Type::SharedCost
                | Type::Pager
                | Type::Uan
                | Type::Voicemail
                | Type::Unknown
        );
        Ok(Self { e164, text_capable })
    }

    /// Reads a number that must already be E.164 (our own storage, provider callbacks).
    pub fn parse_e164(raw: &str) -> Result<Self, ValueError> {
        if !raw.starts_with('+') {
            return Err(ValueError::Phone {
                region: "international".into(),
                reason: "must start with +".into(),
            });
        }
        Self::parse(raw, Region::US)
    }

    pub fn as_str(&self) -> &str {
        &self.e164
    }

    /// Whether the number's kind can receive SMS (mobile, or a kind that may be mobile).
    /// Fixed lines, toll-free, premium and pager numbers cannot.
    pub fn is_text_capable(&self) -> bool {
        self.text_capable
    }
}

impl From<Phone> for String {
    fn from(value: Phone) -> Self {
        value.e164
    }
}

impl<'de> Deserialize<'de> for Phone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Phone::parse_e164(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

/// An IANA time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Zone(Tz);

impl Zone {
    pub const UTC: Zone = Zone(Tz::UTC);

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.len() > 64 {
            return Err(ValueError::Zone);
        }
        Tz::from_str(trimmed)
            .map(Zone)
            .map_err(|_| ValueError::Zone)
    }

    pub fn tz(&self) -> Tz {
        self.0
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Zone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Zone::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// An ISO 4217 currency code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let upper = raw.trim().to_ascii_uppercase();
        let bytes = upper.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(ValueError::Currency);
        }
        Ok(Currency([bytes[0], bytes[1], bytes[2]]))
    }

    pub fn as_str(&self) -> &str {
        // The bytes are ASCII upper-case letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Minor units per major unit, for the currencies that do not use two decimals.
    pub fn minor_digits(&self) -> u32 {
        match self.as_str() {
            "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" | "XAF" | "XOF" | "PYG" => 0,
            "BHD" | "JOD" | "KWD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Currency::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Money in minor units (cents) with its currency; never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Result<Self, ValueError> {
        if minor < 0 {
            return Err(ValueError::NegativeAmount);
        }
        Ok(Self { minor, currency })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.currency.minor_digits();
        if digits == 0 {
            return write!(f, "{} {}", self.minor, self.currency);
        }
        let scale = 10_i64.pow(digits);
        write!(
            f,
            "{}.{:0width$} {}",
            self.minor / scale,
            self.minor % scale,
            self.currency,
            width = digits as usize
        )
    }
}

/// An email address, checked for shape only (deliverability is the provider's business).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let trimmed = raw.trim();
        if trimmed.len() > 254 || trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ValueError::Email);
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or(ValueError::Email)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
            return Err(ValueError::Email);
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Email::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

/// A two-letter ISO 639-1 language code, lower-case (`en`, `es`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language(String);

impl Language {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        // Accept regional tags ("es-MX") and keep the language; templates are per language.
        let base = raw.trim().split(['-', '_']).next().unwrap_or_default();
        if base.len() != 2 || !base.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(ValueError::Language);
        }
        Ok(Self(base.to_ascii_lowercase()))
    }

    pub fn english() -> Self {
        Self("en".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Language {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Language::parse(&value)
    }
}

impl From<Language> for String {
    fn from(value: Language) -> Self {
        value.0
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn local_us_numbers_become_e164_in_the_tenant_region() {
        let p = Phone::parse("(415) 555-2671", Region::US).unwrap();
        assert_eq!(p.as_str(), "+14155552671");
        let p = Phone::parse("+44 7400 123456", Region::US).unwrap();
        assert_eq!(p.as_str(), "+447400123456");
        assert!(p.is_text_capable());
    }

    #[test]
    fn the_same_digits_mean_different_numbers_in_different_regions() {
        let gb = Region::parse("gb").unwrap();
        let p = Phone::parse("07400 123456", gb).unwrap();
        assert_eq!(p.as_str(), "+447400123456");
        assert!(Phone::parse("07400 123456", Region::US).is_err());
    }

    #[test]
    fn fixed_lines_are_not_text_capable() {
        // A London landline.
        let gb = Region::parse("GB").unwrap();
        let p = Phone::parse("020 7946 0018", gb).unwrap();
        assert!(!p.is_text_capable());
        // US toll-free.
        let p = Phone::parse("+1 800 555 0199", Region::US);
        if let Ok(p) = p {
            assert!(!p.is_text_capable());
        }
    }

    #[test]
    fn garbage_is_not_a_phone_number() {
        for raw in ["", "   ", "hello", "+", "+1", "12", "+999999999999999999"] {
            assert!(Phone::parse(raw, Region::US).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn zones_are_iana_names() {
        assert_eq!(
            Zone::parse("America/New_York").unwrap().name(),
            "America/New_York"
        );
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert!(Zone::parse("").is_err());
        assert!(Zone::parse("EST5EDT").is_ok());
    }

    #[test]
    fn money_formats_in_its_currency() {
        let usd = Currency::parse("usd").unwrap();
        assert_eq!(Money::new(12000, usd).unwrap().to_string(), "120.00 USD");
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Money::new(500, jpy).unwrap().to_string(), "500 JPY");
        assert_eq!(Money::new(-1, usd), Err(ValueError::NegativeAmount));
        assert!(Currency::parse("US").is_err());
        assert!(Currency::parse("U$D").is_err());
    }

    #[test]
    fn emails_are_checked_for_shape() {
        assert_eq!(
            Email::parse("Ada@Example.ORG").unwrap().as_str(),
            "Ada@example.org"
        );
        for bad in ["", "a", "a@b", "@b.com", "a@.com", "a b@c.com", "a@b..com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn languages_keep_the_base_tag() {
        assert_eq!(Language::parse("es-MX").unwrap().as_str(), "es");
        assert_eq!(Language::parse("EN").unwrap().as_str(), "en");
        assert!(Language::parse("eng").is_err());
    }

    proptest! {
        #[test]
        fn phone_parsing_never_panics_and_output_is_e164(raw in "\\PC{0,40}") {
            if let Ok(p) = Phone::parse(&raw, Region::US) {
                let s = p.as_str();
                prop_assert!(s.starts_with('+'));
                prop_assert!(s[1..].chars().all(|c| c.is_ascii_digit()));
                prop_assert!(s.len() <= 16);
            }
        }

        #[test]
        fn e164_round_trips(
            area in proptest::sample::select(vec![212u32, 305, 312, 415, 617, 713, 206]),
            exchange in 200u32..=999,
            line in 0u32..=9999,
        ) {
            // N11 exchanges (211, 311, …, 911) are service codes, never a subscriber's number.
            prop_assume!(exchange % 100 != 11);
            let raw = format!("+1{area}{exchange}{line:04}");
            let p = Phone::parse(&raw, Region::US);
            prop_assert!(p.is_ok(), "a valid US number is refused: {raw}: {p:?}");
            let p = p.unwrap();
            prop_assert_eq!(p.as_str(), raw.as_str());
            let again = Phone::parse_e164(p.as_str()).unwrap();
            prop_assert_eq!(again, p);
        }

        #[test]
        fn formatted_us_numbers_parse_to_the_same_e164(
            area in 201u32..=989, exchange in 200u32..=999, line in 0u32..=9999
        ) {
            let plain = format!("+1{area}{exchange}{line:04}");
            let pretty = format!("({area}) {exchange}-{line:04}");
            let national = format!("{area}.{exchange}.{line:04}");
            let parsed = [&plain, &pretty, &national].map(|raw| Phone::parse(raw, Region::US));
            match &parsed {
                [Ok(a), Ok(b), Ok(c)] => {
                    prop_assert_eq!(a, b);
                    prop_assert_eq!(a, c);
                    prop_assert_eq!(a.as_str(), plain.as_str());
                }
                [Err(_), Err(_), Err(_)] => {}
                other => prop_assert!(false, "disagree: {:?}", other),
            }
        }

        #[test]
        fn zone_parsing_never_panics(raw in "\\PC{0,70}") {
            let _ = Zone::parse(&raw);
        }

        #[test]
        fn every_known_zone_parses_by_name(idx in 0usize..chrono_tz::TZ_VARIANTS.len()) {
            let tz = chrono_tz::TZ_VARIANTS[idx];
            let z = Zone::parse(tz.name()).unwrap();
            prop_assert_eq!(z.name(), tz.name());
        }
    }
}
