//! Validation of a pack's reply codes: a code must mean one thing wherever it can arrive.

use aro_replies::{Classification, Intent, ReplyCodes, ReplyCodesError, Source, classify};

#[test]
fn the_built_in_healthcare_codes_are_valid() {
    assert_eq!(ReplyCodes::healthcare_default().validate(), Ok(()));
}

#[test]
fn a_spanish_c_for_both_confirmar_and_cancelar_is_refused() {
    let codes = ReplyCodes::new()
        .with_codes("es", Intent::Confirm, ["C"])
        .with_codes("es", Intent::Cancel, ["c"]);
    assert_eq!(
        codes.validate(),
        Err(ReplyCodesError::Collision {
            language: "es".to_owned(),
            code: "c".to_owned(),
            first: Intent::Confirm,
            second: Intent::Cancel,
        })
    );
}

#[test]
fn a_code_meaning_different_things_in_two_languages_is_refused() {
    let codes = ReplyCodes::new()
        .with_codes("en", Intent::Confirm, ["C"])
        .with_codes("es", Intent::Cancel, ["C"]);
    assert_eq!(
        codes.validate(),
        Err(ReplyCodesError::CrossLanguageCollision {
            code: "C".to_owned(),
            first_language: "en".to_owned(),
            first: Intent::Confirm,
            second_language: "es".to_owned(),
            second: Intent::Cancel,
        })
    );
    // The same meaning in both languages is fine (N and R in the built-in set).
    let shared = ReplyCodes::new()
        .with_codes("en", Intent::Cancel, ["N"])
        .with_codes("es", Intent::Cancel, ["N"]);
    assert_eq!(shared.validate(), Ok(()));
}

#[test]
fn carrier_keywords_are_refused_as_codes() {
    for (code, keyword) in [
        ("STOP", "STOP"),
        ("cancel", "CANCEL"),
        ("Yes", "YES"),
        ("START", "START"),
        ("help", "HELP"),
        ("INFO", "INFO"),
        ("unstop", "UNSTOP"),
        ("Revoke", "REVOKE"),
    ] {
        let codes = ReplyCodes::new().with_codes("en", Intent::Confirm, [code]);
        assert_eq!(
            codes.validate(),
            Err(ReplyCodesError::CarrierKeyword {
                language: "en".to_owned(),
                intent: Intent::Confirm,
                code: code.to_owned(),
                keyword,
            }),
            "{code}"
        );
    }
}

#[test]
fn empty_and_malformed_codes_are_refused() {
    let empty = ReplyCodes::new().with_codes("en", Intent::Cancel, ["N", "  "]);
    assert_eq!(
        empty.validate(),
        Err(ReplyCodesError::EmptyCode {
            language: "en".to_owned(),
            intent: Intent::Cancel
        })
    );
    for code in ["C!", "C D", "ABCDEFGHIJKLMNOPQ"] {
        let codes = ReplyCodes::new().with_codes("en", Intent::Confirm, [code]);
        assert!(
            matches!(codes.validate(), Err(ReplyCodesError::MalformedCode { .. })),
            "{code}"
        );
    }
}

#[test]
fn languages_must_be_two_lower_case_letters() {
    for language in ["EN", "eng", "e1", "", "es-MX"] {
        let codes = ReplyCodes::new().with_codes(language, Intent::Confirm, ["C"]);
        assert_eq!(
            codes.validate(),
            Err(ReplyCodesError::InvalidLanguage {
                language: language.to_owned()
            }),
            "{language:?}"
        );
    }
}

#[test]
fn questions_and_unknown_cannot_have_codes() {
    for intent in [Intent::Question, Intent::Unknown] {
        let codes = ReplyCodes::new().with_codes("en", intent, ["Q"]);
        assert_eq!(
            codes.validate(),
            Err(ReplyCodesError::UncodableIntent {
                language: "en".to_owned(),
                intent
            })
        );
    }
}

#[test]
fn a_code_that_is_a_word_with_another_clear_meaning_is_refused() {
    let codes = ReplyCodes::new().with_codes("es", Intent::Cancel, ["SI"]);
    assert_eq!(
        codes.validate(),
        Err(ReplyCodesError::ContradictsWording {
            language: "es".to_owned(),
            code: "SI".to_owned(),
            intent: Intent::Cancel,
            reads_as: Intent::Confirm,
        })
    );
    let opt_out_word = ReplyCodes::new().with_codes("es", Intent::Confirm, ["BAJA"]);
    assert!(matches!(
        opt_out_word.validate(),
        Err(ReplyCodesError::ContradictsWording {
            reads_as: Intent::OptOut,
            ..
        })
    ));
    // A word that agrees with its code is fine.
    let agreeing = ReplyCodes::new().with_codes("es", Intent::Confirm, ["SI"]);
    assert_eq!(agreeing.validate(), Ok(()));
}

#[test]
fn codes_deserialise_from_the_tenant_config_shape() -> Result<(), serde_json::Error> {
    let codes: ReplyCodes = serde_json::from_str(r#"{"en": {"confirm": ["C"]}}"#)?;
    assert_eq!(codes.validate(), Ok(()));
    assert_eq!(codes.lookup("en", "c"), Some(Intent::Confirm));
    assert_eq!(codes.codes("en", Intent::Confirm), ["C".to_owned()]);
    assert!(codes.codes("es", Intent::Confirm).is_empty());

    let unknown_intent = serde_json::from_str::<ReplyCodes>(r#"{"en": {"confirmed": ["C"]}}"#);
    assert!(unknown_intent.is_err());
    Ok(())
}

#[test]
fn a_pack_code_is_used_by_classify() {
    let codes = ReplyCodes::new().with_codes("en", Intent::Reschedule, ["2"]);
    assert_eq!(codes.validate(), Ok(()));
    let reading = classify(" 2. ", Some("en"), &codes);
    assert_eq!(reading.intent, Intent::Reschedule);
    assert!(reading.confidence >= 0.99);
    // Without the pack, "2" means nothing.
    assert_eq!(
        classify("2", Some("en"), &ReplyCodes::new()).intent,
        Intent::Unknown
    );
}

#[test]
fn a_classification_prints_as_the_contract_says() -> Result<(), serde_json::Error> {
    let reading = Classification {
        intent: Intent::OptOut,
        confidence: 0.97,
        source: Source::Rules,
        language: "en".to_owned(),
    };
    assert_eq!(
        serde_json::to_string(&reading)?,
        r#"{"intent":"opt_out","confidence":0.97,"source":"rules","language":"en"}"#
    );
    let back: Classification = serde_json::from_str(&serde_json::to_string(&reading)?)?;
    assert_eq!(back, reading);
    Ok(())
}
