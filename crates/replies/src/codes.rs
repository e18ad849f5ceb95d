//! Reply codes: the short answers a template asks for ("Reply C to confirm, R to reschedule,
//! N to cancel"), per language, as data from the profile pack.
//!
//! A code must mean exactly one thing wherever it can arrive, so [`ReplyCodes::validate`]
//! refuses a pack where it would not: two intents for one code in a language, one code with
//! different intents in two languages (a patient's recorded language can be wrong), a carrier
//! keyword (the carrier acts on it first), or a code that the wording rules read as something
//! else (a confirm code "NO").
//!
//! The built-in Spanish set avoids "C" altogether: confirmar, cancelar and cambiar all start
//! with it, so no patient could be expected to know which one "C" is. Spanish uses S (sí) to
//! confirm, N (no) to cancel and R (reprogramar) to reschedule; N and R mean the same in both
//! built-in languages, and English C is never given another meaning in Spanish.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::carrier::{RESERVED_KEYWORDS, is_wrapping_punctuation};
use crate::classify::read_wording;
use crate::intent::{DEFAULT_THRESHOLD, Intent};
use crate::language::DEFAULT_LANGUAGE;
use crate::normalize::fold_word;

/// The longest code accepted; codes are meant to be typed on a phone.
pub const MAX_CODE_CHARS: usize = 16;

/// Reply codes per language: `{"en": {"confirm": ["C"], "cancel": ["N"], "reschedule": ["R"]}}`,
/// the `replyCodes` object of `tenant.update_config`.
///
/// Deserialising does not validate (so a loader can report every field it reads); call
/// [`ReplyCodes::validate`] before using a pack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReplyCodes(BTreeMap<String, BTreeMap<Intent, Vec<String>>>);

/// Why a set of reply codes is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyCodesError {
    /// The language key is not a two-letter lower-case code such as `en`.
    #[error("reply code language `{language}` is not a two-letter lower-case language code")]
    InvalidLanguage { language: String },
    /// Codes are offered for an intent a patient cannot choose by code.
    #[error("`{intent}` cannot have reply codes (language `{language}`)")]
    UncodableIntent { language: String, intent: Intent },
    /// A code is empty or only whitespace.
    #[error("an empty reply code for `{intent}` (language `{language}`)")]
    EmptyCode { language: String, intent: Intent },
    /// A code has characters other than letters and digits, or is too long.
    #[error(
        "reply code `{code}` for `{intent}` (language `{language}`) must be 1 to 16 letters or digits"
    )]
    MalformedCode {
        language: String,
        intent: Intent,
        code: String,
    },
    /// A code is a word the carrier (or Twilio) acts on by itself.
    #[error(
        "reply code `{code}` for `{intent}` (language `{language}`) is the carrier keyword {keyword}, which carriers act on before ARO sees it"
    )]
    CarrierKeyword {
        language: String,
        intent: Intent,
        code: String,
        keyword: &'static str,
    },
    /// One code means two intents in one language.
    #[error("reply code `{code}` means both `{first}` and `{second}` in language `{language}`")]
    Collision {
        language: String,
        code: String,
        first: Intent,
        second: Intent,
    },
    /// One code means different intents in two languages.
    #[error(
        "reply code `{code}` means `{first}` in `{first_language}` but `{second}` in `{second_language}`"
    )]
    CrossLanguageCollision {
        code: String,
        first_language: String,
        first: Intent,
        second_language: String,
        second: Intent,
    },
    /// The code is an ordinary word that clearly means another intent.
    #[error(
        "reply code `{code}` for `{intent}` (language `{language}`) reads as `{reads_as}` as a plain word"
    )]
    ContradictsWording {
        language: String,
        code: String,
        intent: Intent,
        reads_as: Intent,
    },
}

/// A code found for a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodeHit {
    pub intent: Intent,
    /// The language whose set holds the code (the preferred one when it does).
    pub language: String,
    /// Whether the code is in the preferred (hinted) language's set.
    pub in_preferred: bool,
}

impl ReplyCodes {
    /// No codes at all: replies are read by wording only.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in healthcare set: English C / N / R, Spanish S / N / R (see the module doc).
    pub fn healthcare_default() -> Self {
        Self::new()
            .with_codes("en", Intent::Confirm, ["C"])
            .with_codes("en", Intent::Cancel, ["N"])
            .with_codes("en", Intent::Reschedule, ["R"])
            .with_codes("es", Intent::Confirm, ["S"])
            .with_codes("es", Intent::Cancel, ["N"])
            .with_codes("es", Intent::Reschedule, ["R"])
    }

    /// Sets the codes of one intent in one language (replacing any), builder style.
    pub fn with_codes<I, S>(mut self, language: &str, intent: Intent, codes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.0
            .entry(language.to_owned())
            .or_default()
            .insert(intent, codes.into_iter().map(Into::into).collect());
        self
    }

    /// Whether no language has any code.
    pub fn is_empty(&self) -> bool {
        self.0
            .values()
            .all(|by_intent| by_intent.values().all(Vec::is_empty))
    }

    /// The languages that have codes, in sorted order.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The codes of one intent in one language (empty when none).
    pub fn codes(&self, language: &str, intent: Intent) -> &[String] {
        self.0
            .get(language)
            .and_then(|by_intent| by_intent.get(&intent))
            .map_or(&[], Vec::as_slice)
    }

    /// The intent a whole reply means as a code of `language` (case, surrounding whitespace
    /// and punctuation ignored: `" c. "` is `C`).
    pub fn lookup(&self, language: &str, reply: &str) -> Option<Intent> {
        let key = code_key(reply)?;
        self.intent_in(language, &key)
    }

    /// Checks every rule in the module doc; the first problem found (in language, intent and
    /// listing order) is returned.
    pub fn validate(&self) -> Result<(), ReplyCodesError> {
        // code key → (language, intent) where first seen, across the whole pack
        let mut everywhere: BTreeMap<String, (String, Intent)> = BTreeMap::new();
        for (language, by_intent) in &self.0 {
            if !is_language_code(language) {
                return Err(ReplyCodesError::InvalidLanguage {
                    language: language.clone(),
                });
            }
            let mut here: BTreeMap<String, Intent> = BTreeMap::new();
            for (&intent, codes) in by_intent {
                if codes.is_empty() {
                    continue;
                }
                if matches!(intent, Intent::Question | Intent::Unknown) {
                    return Err(ReplyCodesError::UncodableIntent {
                        language: language.clone(),
                        intent,
                    });
                }
                for code in codes {
                    let key = check_code(language, intent, code)?;
                    if let Some(&first) = here.get(&key) {
                        if first != intent {
                            return Err(ReplyCodesError::Collision {
                                language: language.clone(),
                                code: code.trim().to_owned(),
                                first,
                                second: intent,
                            });
                        }
                        continue;
                    }
                    here.insert(key.clone(), intent);
                    match everywhere.get(&key) {
                        Some((first_language, first)) if *first != intent => {
                            return Err(ReplyCodesError::CrossLanguageCollision {
                                code: code.trim().to_owned(),
                                first_language: first_language.clone(),
                                first: *first,
                                second_language: language.clone(),
                                second: intent,
                            });
                        }
                        Some(_) => {}
                        None => {
                            everywhere.insert(key, (language.clone(), intent));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn intent_in(&self, language: &str, key: &str) -> Option<Intent> {
        let by_intent = self.0.get(language)?;
        by_intent.iter().find_map(|(&intent, codes)| {
            codes
                .iter()
                .any(|code| code_key(code).as_deref() == Some(key))
                .then_some(intent)
        })
    }

    /// Finds a code, preferring the hinted language; without a hint, the default language and
    /// then the others in sorted order.
    pub(crate) fn find(&self, key: &str, preferred: Option<&str>) -> Option<CodeHit> {
        if let Some(language) = preferred
            && let Some(intent) = self.intent_in(language, key)
        {
            return Some(CodeHit {
                intent,
                language: language.to_owned(),
                in_preferred: true,
            });
        }
        let default_first = std::iter::once(DEFAULT_LANGUAGE)
            .chain(self.languages().filter(|l| *l != DEFAULT_LANGUAGE));
        default_first
            .filter(|language| Some(*language) != preferred)
            .find_map(|language| {
                self.intent_in(language, key).map(|intent| CodeHit {
                    intent,
                    language: language.to_owned(),
                    in_preferred: preferred.is_none(),
                })
            })
    }
}

/// Validates one code and returns its comparison key.
fn check_code(language: &str, intent: Intent, code: &str) -> Result<String, ReplyCodesError> {
    let trimmed = code.trim();
    if trimmed.is_empty() {
        return Err(ReplyCodesError::EmptyCode {
            language: language.to_owned(),
            intent,
        });
    }
    if trimmed.chars().count() > MAX_CODE_CHARS || !trimmed.chars().all(char::is_alphanumeric) {
        return Err(ReplyCodesError::MalformedCode {
            language: language.to_owned(),
            intent,
            code: trimmed.to_owned(),
        });
    }
    let key = fold_word(trimmed);
    if let Some(keyword) = RESERVED_KEYWORDS
        .iter()
        .copied()
        .find(|keyword| keyword.eq_ignore_ascii_case(&key))
    {
        return Err(ReplyCodesError::CarrierKeyword {
            language: language.to_owned(),
            intent,
            code: trimmed.to_owned(),
            keyword,
        });
    }
    let (reads_as, confidence) = read_wording(trimmed);
    if reads_as != intent && reads_as != Intent::Unknown && confidence >= DEFAULT_THRESHOLD {
        return Err(ReplyCodesError::ContradictsWording {
            language: language.to_owned(),
            code: trimmed.to_owned(),
            intent,
            reads_as,
        });
    }
    Ok(key)
}

/// The comparison key of a reply that is nothing but one word: folded, lower-case, without
/// surrounding whitespace or punctuation. `None` for anything longer.
pub(crate) fn code_key(reply: &str) -> Option<String> {
    let word = reply.trim_matches(|c: char| c.is_whitespace() || is_wrapping_punctuation(c));
    (!word.is_empty()
        && word.chars().count() <= MAX_CODE_CHARS
        && word.chars().all(char::is_alphanumeric))
    .then(|| fold_word(word))
}

fn is_language_code(language: &str) -> bool {
    language.len() == 2 && language.chars().all(|c| c.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_set_is_valid_and_shaped_like_the_contract() {
        let codes = ReplyCodes::healthcare_default();
        assert_eq!(codes.validate(), Ok(()));
        let json = serde_json::to_value(&codes).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({
                "en": {"confirm": ["C"], "cancel": ["N"], "reschedule": ["R"]},
                "es": {"confirm": ["S"], "cancel": ["N"], "reschedule": ["R"]}
            })
        );
    }

    #[test]
    fn lookup_ignores_case_space_and_punctuation() {
        let codes = ReplyCodes::healthcare_default();
        assert_eq!(codes.lookup("en", " c. "), Some(Intent::Confirm));
        assert_eq!(codes.lookup("es", "s!"), Some(Intent::Confirm));
        assert_eq!(codes.lookup("es", "C"), None);
        assert_eq!(codes.lookup("en", "c is fine"), None);
    }

    #[test]
    fn find_prefers_the_hinted_language_then_the_default() {
        let codes = ReplyCodes::healthcare_default();
        let hit = codes.find("c", Some("es"));
        assert_eq!(
            hit,
            Some(CodeHit {
                intent: Intent::Confirm,
                language: "en".to_owned(),
                in_preferred: false
            })
        );
        let unhinted = codes.find("n", None);
        assert_eq!(unhinted.map(|h| h.language), Some("en".to_owned()));
    }
}
