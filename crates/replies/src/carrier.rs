//! The words carriers and Twilio act on by themselves, before ARO sees the meaning.
//!
//! A single-word reply of `STOP` (or one of its family) blocks the number at Twilio; `START`
//! lifts the block; `HELP` gets Twilio's own auto-reply. ARO has to agree with what already
//! happened at the carrier, so these words are recognised here exactly, separately from the
//! free-text rules, and no reply code may ever be one of them (see [`RESERVED_KEYWORDS`]).
//!
//! Decision (issue 5 item 4): a bare `CANCEL` is an opt-out. Twilio has already blocked the
//! number when ARO receives it, so reading it as "cancel my visit" would leave ARO unable to
//! answer anyway; the engine confirms the opt-out and tells the patient how to reach the clinic,
//! which [`carrier_keyword_match`] lets it detect (`keyword == "CANCEL"`).

use serde::{Deserialize, Serialize};

/// Twilio's default opt-out keywords (REVOKE and OPTOUT since May 2025, after the FCC rule).
/// Only the exact single-word message triggers the carrier block.
pub const OPT_OUT_KEYWORDS: [&str; 8] = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
    "REVOKE",
];

/// Twilio's default opt-in keywords: they lift a carrier block.
///
/// `YES` is one of them. A patient who is subscribed (the only kind who gets reminders) and
/// answers "yes" means "I confirm", so [`crate::classify`] reads it as `confirm`; the engine
/// should still consult [`carrier_keyword`] when the number is currently opted out, because
/// Twilio will have re-subscribed it.
pub const OPT_IN_KEYWORDS: [&str; 3] = ["START", "UNSTOP", "YES"];

/// Twilio's default help keywords: Twilio answers them with its own help text.
pub const HELP_KEYWORDS: [&str; 2] = ["HELP", "INFO"];

/// Every word a reply code may not be: whatever the pack means by it, the carrier (or Twilio)
/// acts on it first (blocking the number, re-subscribing it, or sending its own auto-reply),
/// so the same message would mean two things at once.
pub const RESERVED_KEYWORDS: [&str; 13] = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
    "REVOKE",
    "START",
    "UNSTOP",
    "YES",
    "HELP",
    "INFO",
];

/// What the carrier does with a keyword message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CarrierKeyword {
    /// The carrier blocks further messages to the number.
    OptOut,
    /// The carrier lifts its block.
    OptIn,
    /// The carrier (Twilio) sends its help auto-reply.
    Help,
}

/// A carrier keyword found in a reply, with its canonical upper-case spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CarrierKeywordMatch {
    /// The keyword as listed in the constants above, e.g. `"CANCEL"`.
    pub keyword: &'static str,
    /// What the carrier does with it.
    pub kind: CarrierKeyword,
}

/// Returns the carrier keyword a whole message is, if it is one: a single word, any case,
/// surrounded by any whitespace or punctuation (`" Stop!! "`, `"cancel."`).
///
/// Trailing punctuation is accepted although carriers may not match it: a revocation must be
/// honoured whatever the patient's keyboard added.
pub fn carrier_keyword_match(text: &str) -> Option<CarrierKeywordMatch> {
    let word = text.trim_matches(|c: char| c.is_whitespace() || is_wrapping_punctuation(c));
    if word.is_empty() || word.len() > 16 || !word.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let find = |list: &[&'static str], kind| {
        list.iter()
            .find(|keyword| keyword.eq_ignore_ascii_case(word))
            .map(|keyword| CarrierKeywordMatch { keyword, kind })
    };
    find(&OPT_OUT_KEYWORDS, CarrierKeyword::OptOut)
        .or_else(|| find(&OPT_IN_KEYWORDS, CarrierKeyword::OptIn))
        .or_else(|| find(&HELP_KEYWORDS, CarrierKeyword::Help))
}

/// What the carrier does with this message, if the whole message is a carrier keyword.
pub fn carrier_keyword(text: &str) -> Option<CarrierKeyword> {
    carrier_keyword_match(text).map(|found| found.kind)
}

/// Same as [`carrier_keyword`]; the name the engine's consent handling reads best with.
pub fn is_carrier_keyword(text: &str) -> Option<CarrierKeyword> {
    carrier_keyword(text)
}

/// Whether a code (compared case-insensitively, accents ignored) is a reserved carrier word.
#[cfg(test)]
fn reserved_keyword(code_upper: &str) -> Option<&'static str> {
    RESERVED_KEYWORDS.iter().copied().find(|k| *k == code_upper)
}

/// Punctuation people put around a one-word answer.
pub(crate) fn is_wrapping_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            c,
            '¡' | '¿' | '“' | '”' | '‘' | '’' | '«' | '»' | '…' | '。' | '！' | '？'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_keyword_is_reserved_for_codes() {
        for keyword in OPT_OUT_KEYWORDS
            .iter()
            .chain(OPT_IN_KEYWORDS.iter())
            .chain(HELP_KEYWORDS.iter())
        {
            assert_eq!(reserved_keyword(keyword), Some(*keyword));
        }
        assert_eq!(
            RESERVED_KEYWORDS.len(),
            OPT_OUT_KEYWORDS.len() + OPT_IN_KEYWORDS.len() + HELP_KEYWORDS.len()
        );
    }

    #[test]
    fn bare_cancel_is_the_carrier_opt_out() {
        let found = carrier_keyword_match("  Cancel. ");
        assert_eq!(
            found,
            Some(CarrierKeywordMatch {
                keyword: "CANCEL",
                kind: CarrierKeyword::OptOut
            })
        );
    }

    #[test]
    fn keywords_inside_longer_messages_are_not_carrier_keywords() {
        assert_eq!(carrier_keyword("cancel my appointment"), None);
        assert_eq!(carrier_keyword("please stop"), None);
        assert_eq!(carrier_keyword("stopping by later"), None);
        assert_eq!(carrier_keyword(""), None);
        assert_eq!(carrier_keyword("!!!"), None);
    }

    #[test]
    fn opt_in_and_help_keywords_are_recognised() {
        assert_eq!(carrier_keyword("start"), Some(CarrierKeyword::OptIn));
        assert_eq!(carrier_keyword("UNSTOP!"), Some(CarrierKeyword::OptIn));
        assert_eq!(carrier_keyword("Yes"), Some(CarrierKeyword::OptIn));
        assert_eq!(is_carrier_keyword("help?"), Some(CarrierKeyword::Help));
        assert_eq!(carrier_keyword("Info"), Some(CarrierKeyword::Help));
        assert_eq!(carrier_keyword("ayuda"), None);
    }
}
