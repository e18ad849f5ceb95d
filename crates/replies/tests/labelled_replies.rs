//! The classifier against a table of labelled replies (`fixtures/labelled_replies.tsv`):
//! realistic SMS in English and Spanish, typos, emoji and punctuation included. Each row says
//! the intent a person reads and whether that reading is clear (`high`: confidence at least
//! the default threshold) or genuinely unclear (`low`: below it, so the engine asks the LLM or
//! a person instead of acting).

use std::collections::BTreeSet;

use aro_replies::{DEFAULT_THRESHOLD, Intent, ReplyCodes, Source, classify};

const TABLE: &str = include_str!("fixtures/labelled_replies.tsv");

#[derive(Debug)]
struct Row {
    line: usize,
    text: String,
    language: String,
    expected: Intent,
    clear: bool,
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    let mut lines = TABLE.lines().enumerate();
    let header = lines.next().map(|(_, l)| l);
    assert_eq!(header, Some("text\tlanguage\texpected\tconfidence"));
    for (index, line) in lines {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 4, "line {}: {line:?}", index + 1);
        let expected = fields[2]
            .parse::<Intent>()
            .unwrap_or_else(|e| panic!("line {}: {e}", index + 1));
        let clear = match fields[3] {
            "high" => true,
            "low" => false,
            other => panic!(
                "line {}: confidence must be high or low, not {other}",
                index + 1
            ),
        };
        rows.push(Row {
            line: index + 1,
            text: fields[0].to_owned(),
            language: fields[1].to_owned(),
            expected,
            clear,
        });
    }
    rows
}

#[test]
fn the_table_is_large_and_covers_every_intent_in_both_languages() {
    let rows = rows();
    assert!(rows.len() >= 150, "only {} rows", rows.len());
    for language in ["en", "es"] {
        let covered: BTreeSet<Intent> = rows
            .iter()
            .filter(|r| r.language == language)
            .map(|r| r.expected)
            .collect();
        for intent in Intent::ALL {
            assert!(covered.contains(&intent), "no {intent} row in {language}");
        }
    }
}

#[test]
fn every_labelled_reply_is_classified_as_labelled() {
    let codes = ReplyCodes::healthcare_default();
    let rows = rows();
    let mut failures = Vec::new();
    for row in &rows {
        let got = classify(&row.text, Some(&row.language), &codes);
        let confidence_ok = if row.clear {
            got.confidence >= DEFAULT_THRESHOLD
        } else {
            got.confidence < DEFAULT_THRESHOLD
        };
        if got.intent != row.expected || !confidence_ok || got.source != Source::Rules {
            failures.push(format!(
                "line {}: {:?} ({}) expected {} ({}), got {} {:.2}",
                row.line,
                row.text,
                row.language,
                row.expected,
                if row.clear { "high" } else { "low" },
                got.intent,
                got.confidence
            ));
        }
        assert_eq!(got.language, row.language, "the hint is reported back");
    }
    let correct = rows.len() - failures.len();
    eprintln!(
        "labelled replies: {correct}/{} correct ({:.1} %)",
        rows.len(),
        100.0 * correct as f64 / rows.len() as f64
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_intent_does_not_depend_on_the_language_hint() {
    // The rules read both languages whatever the hint; only the reported language and the
    // trust in another language's code change.
    let codes = ReplyCodes::healthcare_default();
    let mut failures = Vec::new();
    for row in rows() {
        let hinted = classify(&row.text, Some(&row.language), &codes);
        let unhinted = classify(&row.text, None, &codes);
        if hinted.intent != unhinted.intent {
            failures.push(format!(
                "line {}: {:?} hinted {} unhinted {}",
                row.line, row.text, hinted.intent, unhinted.intent
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Removes the accents a phone keyboard may or may not add.
fn without_accents(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'á' => 'a',
            'é' => 'e',
            'í' => 'i',
            'ó' => 'o',
            'ú' | 'ü' => 'u',
            'ñ' => 'n',
            'Á' => 'A',
            'É' => 'E',
            'Í' => 'I',
            'Ó' => 'O',
            'Ú' => 'U',
            'Ñ' => 'N',
            other => other,
        })
        .collect()
}

#[test]
fn case_accents_spacing_and_exclamations_do_not_change_a_reading() {
    let codes = ReplyCodes::healthcare_default();
    let mut failures = Vec::new();
    for row in rows() {
        let variants = [
            row.text.to_uppercase(),
            row.text.to_lowercase(),
            without_accents(&row.text),
            format!(" \t{}  ", row.text),
            format!("{}!!", row.text),
        ];
        for variant in variants {
            let got = classify(&variant, Some(&row.language), &codes);
            let clear = got.confidence >= DEFAULT_THRESHOLD;
            if got.intent != row.expected || clear != row.clear {
                failures.push(format!(
                    "line {}: {variant:?} expected {}, got {} {:.2}",
                    row.line, row.expected, got.intent, got.confidence
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn without_a_hint_the_language_is_detected_from_the_words() {
    // Replies that are the same in both languages (shared codes, carrier keywords, "no") carry
    // no evidence; they are reported in the default language, English.
    let undecidable = ["N", "R", "C", "STOP", "START", "no"];
    let codes = ReplyCodes::healthcare_default();
    let mut failures = Vec::new();
    for row in rows() {
        let got = classify(&row.text, None, &codes);
        let expected = if undecidable.contains(&row.text.trim()) {
            "en"
        } else {
            row.language.as_str()
        };
        if got.language != expected {
            failures.push(format!(
                "line {}: {:?} detected {}",
                row.line, row.text, got.language
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
