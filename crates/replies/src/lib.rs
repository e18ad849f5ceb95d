//! Understanding patients' SMS replies to appointment reminders, rules first.
//!
//! The engine asks one question of every inbound text: what did the patient mean? This crate
//! answers it without I/O, the same way every time, so it can run anywhere (core, executor,
//! `aro classify`) and be tested exhaustively. The LLM fallback lives elsewhere; it is asked
//! only when [`Classification::confidence`] is below the tenant's threshold.
//!
//! ```
//! use aro_replies::{classify, Intent, ReplyCodes};
//!
//! let codes = ReplyCodes::healthcare_default();
//! let reading = classify("Yes!! see you then 👍", None, &codes);
//! assert_eq!(reading.intent, Intent::Confirm);
//! assert_eq!(classify("STOP", None, &codes).intent, Intent::OptOut);
//! assert_eq!(classify("should I stop my medication?", None, &codes).intent, Intent::Question);
//! ```

mod carrier;
mod classify;
mod codes;
mod intent;
mod language;
mod normalize;
mod pattern;
mod rules;

pub use carrier::{
    CarrierKeyword, CarrierKeywordMatch, HELP_KEYWORDS, OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS,
    RESERVED_KEYWORDS, carrier_keyword, carrier_keyword_match, is_carrier_keyword,
};
pub use classify::classify;
pub use codes::{MAX_CODE_CHARS, ReplyCodes, ReplyCodesError};
pub use intent::{Classification, DEFAULT_THRESHOLD, Intent, Source, UnknownIntentName};
