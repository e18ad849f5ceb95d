//! Reading one reply, rules only, in a fixed order of trust:
//!
//! 1. a carrier keyword as the whole message (`STOP`, bare `CANCEL`, `START`, `HELP`) — the
//!    carrier has already acted on it, so ARO agrees with certainty;
//! 2. one of the pack's reply codes as the whole message (`C`, `c.`, ` R `);
//! 3. a code leading a longer message (`C - see you then`, `N, sorry`), checked against the
//!    rest;
//! 4. the wording rules ([`crate::rules`]) sentence by sentence, then one decision for the
//!    message: a revocation always wins; mixed or hedged signals get a confidence below the
//!    default threshold rather than a confident wrong answer.

use crate::carrier::{CarrierKeyword, carrier_keyword_match, is_wrapping_punctuation};
use crate::codes::{CodeHit, ReplyCodes, code_key};
use crate::intent::{Classification, Intent, Source};
use crate::language::{DEFAULT_LANGUAGE, detect, normalize_hint};
use crate::normalize::{Normalized, Sentence, normalize};
use crate::rules::{self, AMBIGUOUS, Effect, Opener, POLITE, RULES, STRONG, Scope, WEAK};

/// A carrier keyword: the carrier has acted already.
const CERTAIN: f32 = 1.0;
/// The pack's code in the patient's language.
const EXACT_CODE: f32 = 0.99;
/// A code leading a longer message that agrees with it.
const LEADING_CODE: f32 = 0.9;
/// A code leading a question about the same request ("R - what about friday?").
const LEADING_CODE_WITH_QUESTION: f32 = 0.85;
/// Conflicting signals, or a code the patient's own templates never offered: a person (or the
/// LLM) should look.
const MIXED: f32 = 0.6;
/// What a faint contrary signal costs the winning reading.
const RIVAL_PENALTY: f32 = 0.1;
/// Only a hedge ("maybe").
const HEDGE_ONLY: f32 = 0.4;
/// Nothing recognised.
const NOTHING: f32 = 0.2;

/// Characters that may separate a leading code from the rest ("C - see you", "N, sorry").
const CODE_SEPARATORS: &[char] = &[',', '.', '-', ':', '!', ';', '–', '—', ')', '\n'];

/// Classifies a reply with the rules only.
///
/// `language_hint` is the patient's language from the booking (`"es"`, `"es-MX"`); when it is
/// absent or not a language code, the language is detected from the words (default `en`).
/// Never panics; the confidence is always within `[0, 1]`.
pub fn classify(text: &str, language_hint: Option<&str>, codes: &ReplyCodes) -> Classification {
    let normalized = normalize(text);
    let hinted = language_hint.and_then(normalize_hint);
    let detected = detect(&normalized);
    let language = |fallback: Option<&str>| -> String {
        hinted
            .clone()
            .or_else(|| detected.map(str::to_owned))
            .or_else(|| fallback.map(str::to_owned))
            .unwrap_or_else(|| DEFAULT_LANGUAGE.to_owned())
    };
    let answer = |intent: Intent, confidence: f32, language: String| Classification {
        intent,
        confidence: confidence.clamp(0.0, 1.0),
        source: Source::Rules,
        language,
    };

    if let Some(found) = carrier_keyword_match(text) {
        // YES is an opt-in keyword only for a blocked number; a subscribed patient answering a
        // reminder with "yes" confirms (see `carrier::OPT_IN_KEYWORDS`).
        if found.keyword != "YES" {
            let intent = match found.kind {
                CarrierKeyword::OptOut => Intent::OptOut,
                CarrierKeyword::OptIn => Intent::OptIn,
                CarrierKeyword::Help => Intent::Help,
            };
            return answer(intent, CERTAIN, language(Some("en")));
        }
    }

    if let Some(hit) = code_key(text).and_then(|key| codes.find(&key, hinted.as_deref())) {
        let confidence = code_confidence(&hit, EXACT_CODE);
        return answer(hit.intent, confidence, language(Some(&hit.language)));
    }

    if let Some((hit, rest)) = leading_code(text, codes, hinted.as_deref()) {
        let (intent, confidence) = with_leading_code(&hit, &rest);
        return answer(intent, confidence, language(Some(&hit.language)));
    }

    let (intent, confidence) = read(&normalized);
    answer(intent, confidence, language(None))
}

/// The wording rules alone, for checking that a reply code is not an ordinary word that
/// means something else.
pub(crate) fn read_wording(text: &str) -> (Intent, f32) {
    read(&normalize(text))
}

fn code_confidence(hit: &CodeHit, in_language: f32) -> f32 {
    if hit.in_preferred {
        in_language
    } else {
        // The patient's templates offered other codes: "C" from a Spanish-speaking patient
        // could be confirmar, cancelar or cambiar.
        MIXED
    }
}

/// A code followed by a separator and more text: `("C", " see you then")`.
fn leading_code(
    text: &str,
    codes: &ReplyCodes,
    preferred: Option<&str>,
) -> Option<(CodeHit, String)> {
    let start = text.trim_start_matches(|c: char| c.is_whitespace() || is_wrapping_punctuation(c));
    let word_end = start
        .char_indices()
        .find(|(_, c)| !c.is_alphanumeric())
        .map_or(start.len(), |(index, _)| index);
    let (word, after) = start.split_at(word_end);
    let after_space = after.trim_start_matches([' ', '\t']);
    let rest = after_space.strip_prefix(CODE_SEPARATORS)?;
    let hit = codes.find(&code_key(word)?, preferred)?;
    Some((hit, rest.to_owned()))
}

/// Combines a leading code with what follows it.
fn with_leading_code(hit: &CodeHit, rest: &str) -> (Intent, f32) {
    let (rest_intent, rest_confidence) = read(&normalize(rest));
    match rest_intent {
        Intent::OptOut => (Intent::OptOut, rest_confidence),
        Intent::Unknown => (hit.intent, code_confidence(hit, LEADING_CODE)),
        same if same == hit.intent => (hit.intent, code_confidence(hit, LEADING_CODE)),
        Intent::Question if matches!(hit.intent, Intent::Cancel | Intent::Reschedule) => {
            (hit.intent, code_confidence(hit, LEADING_CODE_WITH_QUESTION))
        }
        _ => (hit.intent, MIXED.min(code_confidence(hit, LEADING_CODE))),
    }
}

/// The strongest signal seen for each reading, across sentences (0 = none).
#[derive(Debug, Default, Clone, Copy)]
struct Signals {
    opt_out: f32,
    opt_in: f32,
    confirm: f32,
    cancel: f32,
    reschedule: f32,
    help: f32,
    question: f32,
    unclear: bool,
}

impl Signals {
    fn raise(&mut self, intent: Intent, strength: f32) {
        let slot = match intent {
            Intent::OptOut => &mut self.opt_out,
            Intent::OptIn => &mut self.opt_in,
            Intent::Confirm => &mut self.confirm,
            Intent::Cancel => &mut self.cancel,
            Intent::Reschedule => &mut self.reschedule,
            Intent::Help => &mut self.help,
            Intent::Question => &mut self.question,
            Intent::Unknown => return,
        };
        *slot = slot.max(strength);
    }
}

/// Reads a normalised reply with the wording rules.
fn read(normalized: &Normalized) -> (Intent, f32) {
    let mut signals = Signals::default();
    for sentence in &normalized.sentences {
        read_sentence(sentence, &mut signals);
    }
    decide(signals)
}

fn read_sentence(sentence: &Sentence, signals: &mut Signals) {
    let tokens = &sentence.tokens;
    let mut consumed = vec![false; tokens.len()];
    let mut found: Vec<(Effect, bool)> = Vec::new();
    // Every opener (how-to included) makes the sentence ask something, whatever it names.
    let statement =
        !sentence.question_mark && rules::opener(tokens, sentence.question_mark) == Opener::None;

    for rule in RULES.iter() {
        if rule.scope.statement_only() && !statement {
            continue;
        }
        match rule.scope {
            Scope::Whole | Scope::Acknowledged => {
                if consumed.iter().any(|c| *c) {
                    continue;
                }
                let set_aside = if rule.scope == Scope::Whole {
                    rules::is_courtesy
                } else {
                    rules::is_acknowledgement
                };
                let core: Vec<String> = tokens.iter().filter(|t| !set_aside(t)).cloned().collect();
                if rule.pattern.covers(&core) {
                    consumed.iter_mut().for_each(|c| *c = true);
                    found.push((rule.effect, rule.beats_question));
                }
            }
            Scope::Opening | Scope::Closing => {
                if let Some(hits) =
                    rules::find_at_edge(rule.scope, &rule.pattern, tokens, &consumed)
                {
                    hits.iter().for_each(|&index| consumed[index] = true);
                    found.push((rule.effect, rule.beats_question));
                }
            }
            Scope::Anywhere => {
                while let Some(hits) = rule.pattern.find(tokens, &consumed) {
                    if hits.is_empty() {
                        break;
                    }
                    hits.iter().for_each(|&index| consumed[index] = true);
                    found.push((rule.effect, rule.beats_question));
                }
            }
        }
    }

    let names_an_action = found.iter().any(|(effect, _)| {
        matches!(
            effect,
            Effect::Intent(Intent::Confirm | Intent::Cancel | Intent::Reschedule, _)
        )
    });
    let opener = match rules::opener(tokens, sentence.question_mark) {
        Opener::HowTo if names_an_action => Opener::Request,
        Opener::HowTo => Opener::Info,
        other => other,
    };
    let question_like = sentence.question_mark || opener != Opener::None;

    let mut kept_a_reading = false;
    for (effect, beats_question) in found {
        match effect {
            Effect::Intent(intent, strength) => {
                let is_action = matches!(
                    intent,
                    Intent::Confirm | Intent::Cancel | Intent::Reschedule | Intent::Help
                );
                if opener == Opener::Info && is_action && !beats_question {
                    // "what if I need to reschedule?" mentions an action; it does not ask for it.
                    continue;
                }
                let strength = if question_like && intent == Intent::Confirm {
                    // "Confirmed?" / "can you confirm my time?" is not a confirmation.
                    strength.min(MIXED)
                } else {
                    strength
                };
                signals.raise(intent, strength);
                kept_a_reading = true;
            }
            Effect::Question(strength) => signals.raise(Intent::Question, strength),
            Effect::Unclear => signals.unclear = true,
            Effect::Neutral => {}
        }
    }

    match opener {
        Opener::Info => {
            let strength = if sentence.question_mark { STRONG } else { 0.85 };
            signals.raise(Intent::Question, strength);
        }
        Opener::Request if !kept_a_reading => signals.raise(Intent::Question, 0.85),
        _ if question_like && !kept_a_reading => signals.raise(Intent::Question, 0.8),
        _ => {}
    }
}

/// One decision for the whole message.
fn decide(mut s: Signals) -> (Intent, f32) {
    // Consent first: a revocation is honoured whatever else the message says.
    if s.opt_out > 0.0 {
        return (Intent::OptOut, s.opt_out);
    }
    if s.opt_in > 0.0 {
        return (Intent::OptIn, s.opt_in);
    }
    // "Can't make it, can we reschedule?" wants another time, not only to cancel.
    if s.reschedule > 0.0 && s.cancel > 0.0 {
        s.cancel = 0.0;
    }
    // Thanks and "ok" are courtesy next to anything more specific.
    let something_else = s.cancel.max(s.reschedule).max(s.help).max(s.question);
    if s.confirm > 0.0
        && ((s.confirm <= POLITE && something_else > 0.0)
            || (s.confirm <= WEAK && (s.cancel.max(s.reschedule) >= WEAK || s.question > 0.0)))
    {
        s.confirm = 0.0;
    }
    // Asking for help next to an action is just the way of asking.
    if s.help > 0.0 && s.confirm.max(s.cancel).max(s.reschedule) > 0.0 {
        s.help = 0.0;
    }

    // Highest strength first; ties go to the reading that needs the clinic's attention most.
    let mut readings = [
        (Intent::Reschedule, s.reschedule),
        (Intent::Cancel, s.cancel),
        (Intent::Confirm, s.confirm),
        (Intent::Help, s.help),
    ];
    readings.sort_by(|a, b| b.1.total_cmp(&a.1));
    let [(best, strength), (_, rival), ..] = readings;

    if strength <= 0.0 {
        return if s.question > 0.0 {
            (Intent::Question, s.question)
        } else if s.unclear {
            (Intent::Unknown, HEDGE_ONLY)
        } else {
            (Intent::Unknown, NOTHING)
        };
    }
    if best == Intent::Confirm && s.question > 0.0 {
        // Confirmed and asked something: only a person can do both.
        return (Intent::Question, MIXED);
    }
    let mut confidence = strength;
    if rival >= WEAK {
        // Two real readings ("yes, can't make it"): do not pick one confidently.
        confidence = confidence.min(MIXED);
    } else if rival > 0.0 {
        // A faint contrary note ("no, I'll be there"): still readable, a little less sure,
        // never pushed below a bare hedge.
        confidence = (strength - RIVAL_PENALTY).max(AMBIGUOUS.min(strength));
    }
    if s.unclear {
        confidence = confidence.min(MIXED);
    }
    (best, confidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(text: &str) -> (Intent, f32) {
        read_wording(text)
    }

    #[test]
    fn a_stop_inside_a_question_is_a_question() {
        assert_eq!(
            read_text("should I stop my medication?").0,
            Intent::Question
        );
        assert_eq!(read_text("Do I stop eating before?").0, Intent::Question);
        assert_eq!(read_text("can you stop texting me?").0, Intent::OptOut);
    }

    #[test]
    fn a_stop_word_in_a_statement_wins_over_a_confirmation() {
        for text in [
            "yes stop",
            "sí, stop",
            "stop all",
            "C stop",
            "Stop, I'll be there",
        ] {
            assert_eq!(read_text(text).0, Intent::OptOut, "{text}");
        }
        // The same words asked, negated, or as a noun are not a revocation.
        for text in [
            "stop by tomorrow?",
            "yes I'll stop by",
            "don't stop",
            "I'm at the bus stop",
            "the bleeding won't stop",
        ] {
            assert_ne!(read_text(text).0, Intent::OptOut, "{text}");
        }
    }

    #[test]
    fn mixed_signals_stay_below_the_threshold() {
        let (intent, confidence) = read_text("yes but can we move it");
        assert_eq!(intent, Intent::Reschedule);
        assert!(confidence < 0.7, "{confidence}");
        let (intent, confidence) = read_text("no");
        assert_eq!(intent, Intent::Cancel);
        assert!(confidence < 0.7, "{confidence}");
    }

    #[test]
    fn a_leading_code_is_checked_against_the_rest() {
        let codes = ReplyCodes::healthcare_default();
        let agree = classify("C - see you then", Some("en"), &codes);
        assert_eq!(agree.intent, Intent::Confirm);
        assert!(agree.confidence >= 0.85);
        let conflict = classify("C, can't make it", Some("en"), &codes);
        assert!(conflict.confidence < 0.7);
        // Without a separator "R u open" is text speak, not a code.
        let text_speak = classify("R u open saturday?", Some("en"), &codes);
        assert_eq!(text_speak.intent, Intent::Question);
    }

    #[test]
    fn a_code_from_another_language_is_not_trusted() {
        let codes = ReplyCodes::healthcare_default();
        let spanish_c = classify("C", Some("es"), &codes);
        assert_eq!(spanish_c.intent, Intent::Confirm);
        assert!(spanish_c.confidence < 0.7);
        assert_eq!(spanish_c.language, "es");
        let english_c = classify("C", None, &codes);
        assert!(english_c.confidence >= 0.99);
        assert_eq!(english_c.language, "en");
    }
}
