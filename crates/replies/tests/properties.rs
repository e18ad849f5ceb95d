//! Properties that must hold for any reply, not only the labelled ones.

use aro_replies::{
    CarrierKeyword, DEFAULT_THRESHOLD, Intent, OPT_OUT_KEYWORDS, ReplyCodes, carrier_keyword,
    classify,
};
use proptest::prelude::*;

/// Characters SMS replies are made of, weighted towards the ones the rules care about.
fn sms_text() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        4 => "[a-zA-Z]{1,8}",
        2 => Just(" ".to_owned()),
        1 => "[áéíóúñÁÉÍÓÚÑü¿¡]",
        1 => "[.,!?;:'\"()\\-\n\t]",
        1 => "[👍👎🙏❤️✅❌🎉😀🏽\u{fe0f}\u{200d}\u{301}]",
        1 => "[0-9]{1,4}",
        1 => prop::sample::select(vec![
            "stop", "no", "yes", "sí", "cancel", "can't", "should I", "reschedule", "cita",
            "no puedo", "texting", "?", "C", "N", "R", "S", "help", "start", "maybe",
        ])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec(pieces, 0..24).prop_map(|parts| parts.concat())
}

fn assert_well_formed(text: &str, hint: Option<&str>) -> Result<(), TestCaseError> {
    let codes = ReplyCodes::healthcare_default();
    let reading = classify(text, hint, &codes);
    prop_assert!(
        (0.0..=1.0).contains(&reading.confidence),
        "confidence {} for {text:?}",
        reading.confidence
    );
    prop_assert!(
        reading.language.len() == 2 && reading.language.chars().all(|c| c.is_ascii_lowercase()),
        "language {:?}",
        reading.language
    );
    if reading.intent == Intent::Unknown {
        prop_assert!(
            reading.confidence < DEFAULT_THRESHOLD,
            "a confident unknown"
        );
    }
    Ok(())
}

/// Random case, surrounding whitespace and trailing punctuation around a word.
fn decorate(word: &str, upper_mask: &[bool], before: &str, after: &str, punct: &str) -> String {
    let cased: String = word
        .chars()
        .zip(upper_mask.iter().cycle())
        .map(|(c, upper)| {
            if *upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    format!("{before}{cased}{punct}{after}")
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic_and_stay_in_range(text in any::<String>(), hint in proptest::option::of(any::<String>())) {
        assert_well_formed(&text, hint.as_deref())?;
    }

    #[test]
    fn sms_like_strings_never_panic_and_stay_in_range(text in sms_text(), hint in proptest::option::of("(en|es|EN|es-MX|fr|x)")) {
        assert_well_formed(&text, hint.as_deref())?;
    }

    #[test]
    fn a_code_keeps_its_intent_whatever_the_case_spacing_or_punctuation(
        pick in 0usize..6,
        upper_mask in prop::collection::vec(any::<bool>(), 1..4),
        before in "[ \t\n]{0,3}",
        after in "[ \t\n]{0,3}",
        punct in "[.!?,;:]{0,3}",
        hinted in any::<bool>(),
    ) {
        let codes = ReplyCodes::healthcare_default();
        let mut all: Vec<(String, Intent, String)> = Vec::new();
        for language in codes.languages() {
            for intent in [Intent::Confirm, Intent::Cancel, Intent::Reschedule] {
                for code in codes.codes(language, intent) {
                    all.push((language.to_owned(), intent, code.clone()));
                }
            }
        }
        prop_assert_eq!(all.len(), 6);
        let (language, intent, code) = &all[pick % all.len()];
        let text = decorate(code, &upper_mask, &before, &after, &punct);
        let hint = hinted.then_some(language.as_str());
        let reading = classify(&text, hint, &codes);
        prop_assert_eq!(reading.intent, *intent, "{:?}", text);
        prop_assert!(reading.confidence >= 0.99, "{:?} → {}", text, reading.confidence);
    }

    #[test]
    fn a_bare_stop_family_keyword_is_a_certain_opt_out(
        pick in 0usize..OPT_OUT_KEYWORDS.len(),
        upper_mask in prop::collection::vec(any::<bool>(), 1..12),
        before in "[ \t]{0,3}",
        after in "[ \t\n]{0,3}",
        punct in "[.!]{0,3}",
        hint in proptest::option::of("(en|es)"),
    ) {
        let text = decorate(OPT_OUT_KEYWORDS[pick], &upper_mask, &before, &after, &punct);
        prop_assert_eq!(carrier_keyword(&text), Some(CarrierKeyword::OptOut));
        let reading = classify(&text, hint.as_deref(), &ReplyCodes::healthcare_default());
        prop_assert_eq!(reading.intent, Intent::OptOut);
        prop_assert!((reading.confidence - 1.0).abs() < f32::EPSILON);
    }

    #[test]
    fn stopping_something_other_than_messages_in_a_question_is_a_question(
        opener in prop::sample::select(vec!["should I stop", "Do I stop", "when do I stop", "Should we stop"]),
        object in "[a-z]{3,10}",
        tail in prop::sample::select(vec!["?", " before the visit?", " the day before?"]),
    ) {
        // Objects that name messages ("stop texting") are revocations and excluded here.
        let message_words = ["text", "txt", "mes", "msg", "send", "contact", "email", "cal", "spam",
            "bother", "remind", "notif", "sms"];
        prop_assume!(!message_words.iter().any(|w| object.starts_with(w)));
        let text = format!("{opener} {object}{tail}");
        let reading = classify(&text, Some("en"), &ReplyCodes::healthcare_default());
        prop_assert_eq!(reading.intent, Intent::Question, "{:?}", text);
    }
}
