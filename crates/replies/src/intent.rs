//! The vocabulary every part of ARO uses to talk about a reply: what the patient meant
//! (`Intent`), who decided (`Source`) and how sure it is (`Classification`). These shapes are
//! part of the wire contract (`reply.classified` events, `aro classify`), so they are fixed here
//! once rather than re-declared by each service.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Below this confidence a rules answer is not acted on (DESIGN.md's default
/// `classificationThreshold`); the engine asks the LLM or escalates instead.
pub const DEFAULT_THRESHOLD: f32 = 0.7;

/// What a patient meant by a reply to an appointment message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// The patient will come.
    Confirm,
    /// The patient will not come (ARO never cancels: staff act on it).
    Cancel,
    /// The patient wants another time.
    Reschedule,
    /// The patient revokes consent to be texted.
    OptOut,
    /// The patient gives consent to be texted again.
    OptIn,
    /// The patient asks who is texting or how to reach the clinic.
    Help,
    /// The patient asks something a person has to answer.
    Question,
    /// Nothing recognisable.
    Unknown,
}

impl Intent {
    /// Every intent, in declaration order.
    pub const ALL: [Intent; 8] = [
        Intent::Confirm,
        Intent::Cancel,
        Intent::Reschedule,
        Intent::OptOut,
        Intent::OptIn,
        Intent::Help,
        Intent::Question,
        Intent::Unknown,
    ];

    /// The wire name (snake_case), as in events and `aro classify` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Confirm => "confirm",
            Intent::Cancel => "cancel",
            Intent::Reschedule => "reschedule",
            Intent::OptOut => "opt_out",
            Intent::OptIn => "opt_in",
            Intent::Help => "help",
            Intent::Question => "question",
            Intent::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Returned when a string is not one of the wire names of [`Intent`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown intent `{0}`")]
pub struct UnknownIntentName(pub String);

impl FromStr for Intent {
    type Err = UnknownIntentName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Intent::ALL
            .into_iter()
            .find(|intent| intent.as_str() == s)
            .ok_or_else(|| UnknownIntentName(s.to_owned()))
    }
}

/// Who produced a classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The deterministic rules in this crate.
    Rules,
    /// An LLM, asked only when the rules were not confident enough.
    Llm,
}

impl Source {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Rules => "rules",
            Source::Llm => "llm",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reading of one reply.
///
/// Serialises as `{"intent": "confirm", "confidence": 0.97, "source": "rules", "language": "en"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Classification {
    /// What the patient meant.
    pub intent: Intent,
    /// How sure the reading is, in `[0, 1]`; compare with the tenant's threshold.
    pub confidence: f32,
    /// Who produced it.
    pub source: Source,
    /// The reply's language as a two-letter code (`en`, `es`): the hint when one was given,
    /// else what the words suggest.
    pub language: String,
}

impl Classification {
    /// Whether the engine may act on this reading without asking anyone else.
    pub fn is_confident(&self, threshold: f32) -> bool {
        self.confidence >= threshold
    }
}
