//! The profile's own rules for its texts, beyond what the domain checks (placeholders, length):
//! the engine must find every template it sends in every language; reminders ask for the pack's
//! reply codes; no text invites a carrier keyword such as CANCEL (carriers treat a bare CANCEL
//! as "stop all texts", issue 5 item 4), only STOP (to opt out) and START (to opt back in) are
//! named; every text names the clinic, and every text but the short fallbacks and the opt-out
//! confirmations carries the opt-out hint.

use aro_domain::TenantConfig;
use aro_domain::policy::Policies;
pub use aro_replies::RESERVED_KEYWORDS;
use aro_replies::{Intent, ReplyCodes};
use std::collections::BTreeSet;

/// Templates the engine sends besides the reminders (`reminder_<hours>h`, one per policy offset).
pub const ENGINE_TEMPLATES: &[&str] = &[
    "confirm_ack",
    "cancel_ack",
    "reschedule_ack",
    "help",
    "opt_out_confirmation",
    "opt_out_cancel_confirmation",
    "opt_in_confirmation",
    "review_request",
    "rebook_offer",
    "no_show_recovery",
    "deposit_request",
    "deposit_nudge",
];

/// Confirmations of an opt-out: the patient has just said STOP, so no opt-out hint.
const OPT_OUT_CONFIRMATIONS: &[&str] = &["opt_out_confirmation", "opt_out_cancel_confirmation"];

/// Carrier keywords a text may name: STOP (the opt-out hint) and START (after an opt-out).
pub const NAMEABLE_KEYWORDS: &[&str] = &["STOP", "START"];

/// Words that turn the next word into something to send back.
const ASKING_WORDS: &[&str] = &[
    "reply", "text", "send", "respond", "answer", "responda", "responde", "envie", "envíe",
    "escriba", "conteste",
];

/// The fallback suffix: sent when a real link is longer than its declared maximum.
pub const SHORT_SUFFIX: &str = "_short";

/// A broken rule, with the key path in the configuration (`templates.es.reminder_48h`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleViolation {
    pub field: String,
    pub reason: String,
}

/// Every template name the engine may ask for under these policies.
pub fn required_templates(policies: &Policies) -> Vec<String> {
    policies
        .reminder_offsets_hours
        .iter()
        .map(|h| format!("reminder_{h}h"))
        .chain(ENGINE_TEMPLATES.iter().map(|s| (*s).to_owned()))
        .collect()
}

/// The words of a text: runs of letters and digits.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// Whether `code` appears in the text as a word of its own, exactly as the patient would type it.
pub fn mentions_code(text: &str, code: &str) -> bool {
    words(text).any(|w| w == code.trim())
}

/// Carrier keywords the text invites other than STOP and START: written in capitals as a word
/// ("CANCEL"), or in any case right after a word like "reply" ("reply cancel").
pub fn invited_carrier_keywords(text: &str) -> Vec<&'static str> {
    let words: Vec<&str> = words(text).collect();
    let mut found = BTreeSet::new();
    for (i, word) in words.iter().enumerate() {
        let Some(keyword) = RESERVED_KEYWORDS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(word))
        else {
            continue;
        };
        if NAMEABLE_KEYWORDS.contains(keyword) {
            continue;
        }
        let capitals = word == keyword;
        let asked = i > 0
            && ASKING_WORDS
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&words[i - 1].to_lowercase()));
        if capitals || asked {
            found.insert(*keyword);
        }
    }
    found.into_iter().collect()
}

pub fn check(config: &TenantConfig, codes: &ReplyCodes) -> Result<(), RuleViolation> {
    let fail = |field: String, reason: String| Err(RuleViolation { field, reason });
    let template_languages: BTreeSet<&str> = config.templates.keys().map(String::as_str).collect();
    let code_languages: BTreeSet<&str> = codes.languages().collect();
    if template_languages.is_empty() {
        return fail("templates".into(), "the pack has no templates".into());
    }
    if let Some(l) = template_languages.difference(&code_languages).next() {
        return fail(
            format!("replyCodes.{l}"),
            format!("templates in `{l}` need reply codes in `{l}` for the reminders to ask for"),
        );
    }
    if let Some(l) = code_languages.difference(&template_languages).next() {
        return fail(
            format!("templates.{l}"),
            format!("reply codes in `{l}` but no templates/{l}.toml"),
        );
    }
    let required = required_templates(&config.policies);
    for (language, templates) in &config.templates {
        let field = |name: &str| format!("templates.{language}.{name}");
        if let Some(name) = required.iter().find(|n| !templates.contains_key(*n)) {
            return fail(
                field(name),
                "missing: the engine sends this text (a reminder per policy offset, and every \
                 acknowledgement and follow-up)"
                    .into(),
            );
        }
        let asked: Vec<&String> = [Intent::Confirm, Intent::Reschedule, Intent::Cancel]
            .into_iter()
            .flat_map(|i| codes.codes(language, i))
            .collect();
        for (name, text) in templates {
            let short = name.ends_with(SHORT_SUFFIX);
            if short && !templates.contains_key(name.trim_end_matches(SHORT_SUFFIX)) {
                return fail(
                    field(name),
                    "a short form of a template that does not exist".into(),
                );
            }
            if !text.contains("{{clinicName}}") {
                return fail(
                    field(name),
                    "every text names the clinic ({{clinicName}})".into(),
                );
            }
            if !short && text.contains("{{link}}") {
                let short_name = format!("{name}{SHORT_SUFFIX}");
                if !templates.contains_key(&short_name) {
                    return fail(
                        field(name),
                        format!(
                            "has a {{{{link}}}}, which can be longer than declared: add `{short_name}`"
                        ),
                    );
                }
            }
            if !short
                && !OPT_OUT_CONFIRMATIONS.contains(&name.as_str())
                && !mentions_code(text, "STOP")
            {
                return fail(
                    field(name),
                    "every text carries the opt-out hint (STOP)".into(),
                );
            }
            if let Some(keyword) = invited_carrier_keywords(text).first() {
                return fail(
                    field(name),
                    format!(
                        "names the carrier keyword {keyword}: carriers act on it themselves \
                         (CANCEL stops every text); ask for the reply codes instead"
                    ),
                );
            }
            if (name.starts_with("reminder_") || name == "help")
                && let Some(code) = asked.iter().find(|c| !mentions_code(text, c))
            {
                return fail(
                    field(name),
                    format!("must ask for the reply code `{code}` of its language"),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carrier_keywords_are_found_in_capitals_or_after_reply() {
        assert_eq!(
            invited_carrier_keywords("Reply CANCEL to cancel"),
            vec!["CANCEL"]
        );
        assert_eq!(invited_carrier_keywords("or text cancel"), vec!["CANCEL"]);
        assert_eq!(
            invited_carrier_keywords("Reply YES to confirm"),
            vec!["YES"]
        );
        assert!(
            invited_carrier_keywords("To cancel or change your visit: STOP to opt out").is_empty()
        );
        assert!(invited_carrier_keywords("Reply START to resubscribe").is_empty());
        assert!(invited_carrier_keywords("Para cancelar o cambiar su cita").is_empty());
    }

    #[test]
    fn codes_are_whole_words() {
        assert!(mentions_code("Reply C to confirm", "C"));
        assert!(!mentions_code("Call the Clinic", "C"));
        assert!(mentions_code("Responda S para confirmar", "S"));
    }
}
